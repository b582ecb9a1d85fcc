//! `#[derive(AutoRegister)]`: registers architecture configs and models with autocandle.
//!
//! Use it through `autocandle_core::AutoRegister`; the generated code names only
//! `::autocandle_core` (and its hidden `__private` re-exports), or the path given by
//! `#[auto(crate = "...")]`, so architecture crates need no other dependency for it.
//!
//! - `attr`: reads and checks `#[auto(...)]`, gathering every error;
//! - `task`: the task names (from `autocandle-tasks`), with the core task variant and trait of each;
//! - `expand`: the generated impls and `inventory` submissions.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod attr;
mod expand;
mod task;

/// The `| task | trait |` rows of the derive's docs, from the task table.
macro_rules! task_rows {
    ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
        concat!($($("| `", $name, "` | `", stringify!($trait), "` |\n",)?)*)
    };
}

/// Register a config or a model with autocandle's registry.
///
/// # On a config struct
///
/// `#[auto(config, model_type = "...")]`, with an optional `class = "..."` (the
/// `transformers` config class; the struct's name by default). The struct must implement
/// `Debug`, `serde::Serialize` and `serde::Deserialize`. The derive implements
/// `ArchConfig` and `RegisteredConfig` and registers the type as the parser of
/// `config.json` files whose `model_type` is the given one.
///
/// # On a model struct
///
/// `#[auto(task = "...")]`, with an optional `class = "..."` (the `transformers` model class;
/// the struct's name by default). The struct must implement `LoadModel` and the task's trait;
/// it is registered for the model type of its config type (`LoadModel::Config`, whose
/// `RegisteredConfig::MODEL_TYPE` the config derive sets), so the model type is written once,
/// on the config. A `model_type = "..."` on a model is still accepted when it is that same
/// model type, and is a compile error ("is not the model type of the config type") otherwise.
///
/// | `task` | trait |
/// |--------|-------|
#[doc = autocandle_tasks::for_each_task!(task_rows)]
///
/// (the tasks of the task table in `autocandle-tasks` that have a model trait).
///
/// # Outside the workspace
///
/// The generated code names `::autocandle_core`. Code that reaches it by another path (a crate
/// that depends only on the `autocandle` facade) says so with `crate = "..."`, as with serde's
/// `#[serde(crate = "...")]`: `#[auto(crate = "autocandle::arch_api", task = "masked-lm")]`.
///
/// `model_type` uses only `a-z`, `0-9`, `_` and `-`, as `config.json` spells it. Unknown or
/// repeated keys, unknown tasks, enums, unions and generic structs are compile errors.
///
/// ```
/// use autocandle_core::{AutoRegister, LoadModel};
/// # use autocandle_core::{ForMaskedLm, MaskedLmOutput, ModelInputs, PreTrainedModel};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
/// #[auto(config, model_type = "tiny")]
/// struct TinyConfig {
///     vocab_size: usize,
/// }
///
/// #[derive(Debug, AutoRegister)]
/// #[auto(task = "masked-lm", class = "TinyForMaskedLM")]
/// struct TinyForMaskedLm {
///     device: candle_core::Device,
/// }
///
/// impl LoadModel for TinyForMaskedLm {
///     type Config = TinyConfig;
///     const BASE_MODEL_PREFIX: &'static str = "tiny";
///
///     fn load(vb: candle_nn::VarBuilder<'_>, _config: &TinyConfig) -> autocandle_core::Result<Self> {
///         Ok(Self { device: vb.device().clone() })
///     }
/// }
/// # impl PreTrainedModel for TinyForMaskedLm {
/// #     fn device(&self) -> &candle_core::Device { &self.device }
/// #     fn dtype(&self) -> candle_core::DType { candle_core::DType::F32 }
/// # }
/// # impl ForMaskedLm for TinyForMaskedLm {
/// #     fn forward(&self, inputs: &ModelInputs) -> autocandle_core::Result<MaskedLmOutput> {
/// #         Ok(MaskedLmOutput::new(inputs.input_ids()?.clone()))
/// #     }
/// # }
/// // ... plus `impl PreTrainedModel` and `impl ForMaskedLm` for `TinyForMaskedLm`.
///
/// let registry = autocandle_core::registry::Registry::global().unwrap();
/// assert_eq!(registry.config("tiny").unwrap().config_class, "TinyConfig");
/// let head = registry.model("tiny", autocandle_core::Task::MaskedLm).unwrap();
/// assert_eq!(head.class_name, "TinyForMaskedLM");
/// ```
#[proc_macro_derive(AutoRegister, attributes(auto))]
pub fn derive_auto_register(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::expand(input).unwrap_or_else(syn::Error::into_compile_error).into()
}
