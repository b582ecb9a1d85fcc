//! The `AutoModel*` classes: `config.json` -> `model_type` -> the registered head -> weights.

use std::any::{type_name, TypeId};
use std::sync::Arc;

use autocandle_core::gguf::{self, GgufCheckpoint, GgufFile, GgufQuantSource};
use autocandle_core::load::{
    build_fresh, build_from_checkpoint_with, construct, resolve_dtype, select_registration, BuildOptions,
};
use autocandle_core::quant::QuantSettings;
use autocandle_core::registry::{Constructor, ModelRegistration, Registry, TaskHead};
use autocandle_core::weights::{find_weight_files, Checkpoint};
use autocandle_core::{
    ArchConfig, DTypeChoice, Error, LoadModel, LoadOptions, Loaded, ModelInputs, ModelOutput, PretrainedConfig,
    RegisteredConfig, Result, Task,
};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::catalog::{check_known, model_type_info, resolve_head};
use crate::config::AutoConfig;

/// Load the `M` head of the model at `id_or_path`.
///
/// The head is the one registered for the config's `model_type` and `M`'s task; when several
/// registered classes of the model type serve the task, the first one named in the config's
/// `architectures` wins (`transformers`' `_get_model_class`). The weights are the options'
/// variant and formats (safetensors, else PyTorch `.bin`); a head model loaded from a
/// checkpoint without its head (a base checkpoint, another head's) gets fresh head weights,
/// reported in `report.missing_keys`, and checkpoint tensors it does not use are reported in
/// `report.unexpected_keys`. Mismatched shapes are errors unless `ignore_mismatched_sizes`.
pub fn load_head<M: TaskHead + ?Sized>(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Box<M>>> {
    let _span = tracing::info_span!("load_model", task = %M::TASK, model = id_or_path).entered();
    let started = std::time::Instant::now();
    let (source, gguf) = gguf::locate(id_or_path, opts)?;
    tracing::debug!(source = %source.describe(), gguf = ?gguf, "model source");
    let (mut config, gguf) = match gguf {
        Some(path) => {
            let file = GgufFile::open(&path)?;
            let map = gguf::config_map(&file)?;
            let config = PretrainedConfig::from_value(serde_json::Value::Object(map), &path)?;
            (config, Some(file))
        }
        // Without `model_type`, the longest known model type in the repo or folder name.
        None => (
            PretrainedConfig::from_file_or_guess(&source.file("config.json")?, || {
                crate::catalog::model_type_from_name(&crate::config::name_to_match(id_or_path)).map(str::to_owned)
            })?,
            None,
        ),
    };
    check_known(config.model_type())?;
    let unused_kwargs = config.apply_overrides(&opts.config_overrides)?;
    let default = resolve_head(config.model_type(), M::TASK)?;
    let candidates: Vec<&ModelRegistration> = Registry::global()?
        .heads(config.model_type())
        .into_iter()
        .filter(|r| M::constructor(&r.constructor).is_some())
        .collect();
    let registration = select_registration(&candidates, &config.architectures()).unwrap_or(default);
    tracing::debug!(
        model_type = config.model_type(),
        task = %M::TASK,
        architectures = ?config.architectures(),
        class = registration.class_name,
        source = registration.source,
        candidates = candidates.len(),
        "class picked from the registry"
    );
    let mut quant = QuantSettings { source: None, quantize: opts.quantize };
    let (checkpoint, dtype) = match gguf {
        Some(file) => {
            let serde_json::Value::Object(map) = config.to_json() else {
                return Err(Error::config(config.model_type(), "the config is not a JSON object"));
            };
            let gguf = Arc::new(GgufCheckpoint::from_file(file, &map)?);
            // A float dtype asked for, or another quantization: dequantize, as transformers does.
            // Otherwise the linear layers keep the file's blocks and compute in f32.
            let dequantize = matches!(opts.dtype, DTypeChoice::Fixed(_)) || opts.quantize.is_some();
            if !dequantize {
                quant.source = Some(Arc::new(GgufQuantSource::new(Arc::clone(&gguf), registration.base_model_prefix)));
            }
            let dtype = match opts.dtype {
                DTypeChoice::Fixed(d) => d,
                DTypeChoice::Auto => DType::F32,
            };
            tracing::debug!(dequantize, ?dtype, quantize = ?opts.quantize, "GGUF weights");
            (Arc::new(Checkpoint::from_gguf(gguf)), dtype)
        }
        None => (Arc::new(Checkpoint::open(find_weight_files(&source)?)?), resolve_dtype(opts.dtype, &config)),
    };
    tracing::debug!(
        ?dtype,
        requested = ?opts.dtype,
        config_dtype = ?config.dtype(),
        device = ?opts.device.location(),
        "dtype and device"
    );
    let mut build =
        BuildOptions::from_pretrained(&config, registration, dtype, &opts.device, opts.ignore_mismatched_sizes);
    build.quant = quant;
    let files = checkpoint.files().len();
    let (model, report) = build_from_checkpoint_with::<M>(&config, registration, checkpoint, &build)?;
    tracing::info!(
        class = registration.class_name,
        source = %source.describe(),
        ?dtype,
        device = ?opts.device.location(),
        weight_files = files,
        elapsed = ?started.elapsed(),
        "model loaded"
    );
    Ok(Loaded { value: model, unused_kwargs, report })
}

/// Build the `M` head for `config` with freshly initialised weights.
pub fn head_from_config<M: TaskHead + ?Sized>(config: &PretrainedConfig, device: &Device) -> Result<Box<M>> {
    let registration = resolve_head(config.model_type(), M::TASK)?;
    tracing::debug!(model_type = config.model_type(), task = %M::TASK, class = registration.class_name, "from_config");
    build_fresh::<M>(config, registration, resolve_dtype(DTypeChoice::Auto, config), device)
}

/// A type's name without its module path (`TinyForMaskedLm`), the class name of a run-time
/// registration.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = type_name::<T>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

/// Register `M` as the head of `constructor`'s task for the config type `C` (the body of every
/// `AutoModelFor*::register`).
fn register_head<C: RegisteredConfig, M: LoadModel + 'static>(constructor: Constructor, exist_ok: bool) -> Result<()> {
    if TypeId::of::<M::Config>() != TypeId::of::<C>() {
        return Err(Error::config(
            C::MODEL_TYPE,
            format!(
                "{} (`{}`) is built from the config `{}` (model type `{}`), not from `{}`: register it for the \
                 config type its `LoadModel::Config` names",
                short_type_name::<M>(),
                type_name::<M>(),
                type_name::<M::Config>(),
                <M::Config as RegisteredConfig>::MODEL_TYPE,
                type_name::<C>(),
            ),
        ));
    }
    let registration = ModelRegistration {
        model_type: C::MODEL_TYPE,
        task: constructor.task(),
        class_name: short_type_name::<M>(),
        source: type_name::<M>(),
        base_model_prefix: M::BASE_MODEL_PREFIX,
        config_model_type: <M::Config as RegisteredConfig>::MODEL_TYPE,
        constructor,
    };
    Registry::global()?.register_model(registration, exist_ok).map(drop)
}

/// Why the `task` head of `model_type` cannot be built, for a task without a model trait.
///
/// A model type that autocandle does not implement gets the catalog's error (unknown, not
/// compiled in, known but not implemented); an implemented one is told that the task itself
/// has no model trait yet.
fn no_model_trait(model_type: &str, task: Task) -> Error {
    let registry = match Registry::global() {
        Ok(registry) => registry,
        Err(e) => return e,
    };
    let heads = registry.heads(model_type);
    if heads.is_empty() && registry.config(model_type).is_none() {
        if let Err(e) = resolve_head(model_type, task) {
            return e;
        }
    }
    let in_transformers = match model_type_info(model_type).and_then(|i| i.tasks.iter().find(|t| t.task == task)) {
        Some(tc) => format!("transformers' class for it is {}", tc.class_name),
        None => format!("transformers has no {task} head for `{model_type}` either"),
    };
    let available = match heads.as_slice() {
        [] => "none".to_owned(),
        heads => heads.iter().map(|r| format!("{} ({})", r.task, r.class_name)).collect::<Vec<_>>().join(", "),
    };
    Error::Unsupported(format!(
        "{}: `{model_type}` has no `{task}` implementation in autocandle yet: the task has no model trait in \
         autocandle ({in_transformers}); heads available for `{model_type}`: {available}",
        task.auto_class()
    ))
}

/// The `TaskModel::from_pretrained_with` of a task without a model trait: the config is read
/// and checked like every load, then the error says why no head can be built.
fn no_model_trait_from_pretrained(task: Task, id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<TaskModel>> {
    let config = AutoConfig::from_pretrained_with(id_or_path, opts)?.value;
    Err(no_model_trait(config.model_type(), task))
}

/// One Auto class: with a model trait, it loads and registers that trait's heads; without one,
/// it resolves the model type and returns the error that says why no head can be built.
macro_rules! auto_model_class {
    ($name:ident, $variant:ident, [$trait:ident, $doc:literal]) => {
        #[doc = concat!($doc, " (`transformers.", stringify!($name), "`).")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $name {
            /// The task this class selects.
            pub const TASK: Task = <dyn autocandle_core::$trait as TaskHead>::TASK;

            /// Load from a Hub repo id or a local folder, with default options.
            pub fn from_pretrained(id_or_path: &str) -> Result<Box<dyn autocandle_core::$trait>> {
                load_head::<dyn autocandle_core::$trait>(id_or_path, &LoadOptions::default()).map(|l| l.value)
            }

            /// Load with options (revision, cache, device, dtype, config overrides, ...);
            /// overrides that match no config field come back in `unused_kwargs`.
            pub fn from_pretrained_with(
                id_or_path: &str,
                opts: &LoadOptions,
            ) -> Result<Loaded<Box<dyn autocandle_core::$trait>>> {
                load_head::<dyn autocandle_core::$trait>(id_or_path, opts)
            }

            /// The architecture of `config` with freshly initialised weights.
            pub fn from_config(config: &PretrainedConfig, device: &Device) -> Result<Box<dyn autocandle_core::$trait>> {
                head_from_config::<dyn autocandle_core::$trait>(config, device)
            }

            /// Register the model `M` as this class's head for the config type `C`, at run
            /// time (`transformers`' `register(config_class, model_class, exist_ok)`), for
            /// architectures defined outside autocandle without `#[derive(AutoRegister)]`.
            ///
            /// From then on every `from_pretrained` / `from_config` of this class, and
            /// `TaskModel`, build `M` for configs of `C::MODEL_TYPE`. Errors: `M` is built
            /// from another config type than `C` (its `LoadModel::Config`); `C`'s model type
            /// has no config registration (call [`AutoConfig::register`] first); the head is
            /// already registered (compiled in or at run time) and `exist_ok` is false (with
            /// `exist_ok`, `M` replaces it).
            pub fn register<C, M>(exist_ok: bool) -> Result<()>
            where
                C: RegisteredConfig,
                M: LoadModel + autocandle_core::$trait + 'static,
            {
                fn construct_boxed<M: LoadModel + autocandle_core::$trait + 'static>(
                    config: &dyn ArchConfig,
                    vb: VarBuilder<'_>,
                ) -> Result<Box<dyn autocandle_core::$trait>> {
                    Ok(Box::new(construct::<M>(config, vb)?))
                }
                register_head::<C, M>(Constructor::$variant(construct_boxed::<M>), exist_ok)
            }
        }
    };
    ($name:ident, $variant:ident, []) => {
        #[doc = concat!(
                    "`transformers.", stringify!($name), "`, whose task has no model trait in autocandle yet.\n\n",
                    "Its constructors resolve the config and model type like every Auto class, then return the ",
                    "error that says why no head can be built: the catalog's (unknown model type, architecture ",
                    "not compiled in or not implemented), else that the task has no model trait yet.",
                )]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $name {
            /// The task this class selects.
            pub const TASK: Task = Task::$variant;

            /// Load from a Hub repo id or a local folder, with default options.
            pub fn from_pretrained(id_or_path: &str) -> Result<TaskModel> {
                TaskModel::from_pretrained(Self::TASK, id_or_path)
            }

            /// Load with options (revision, cache, device, dtype, config overrides, ...).
            pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<TaskModel>> {
                TaskModel::from_pretrained_with(Self::TASK, id_or_path, opts)
            }

            /// The architecture of `config` with freshly initialised weights.
            pub fn from_config(config: &PretrainedConfig, device: &Device) -> Result<TaskModel> {
                TaskModel::from_config(Self::TASK, config, device)
            }
        }
    };
}

/// The Auto classes, `AUTO_MODEL_CLASSES` and `TaskModel`, from the task table of
/// `autocandle-tasks`.
macro_rules! auto_model_classes {
    ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
        /// The `AutoModel*` classes, one per task of [`Task::ALL`].
        pub mod classes {
            use super::*;

            $(auto_model_class!($auto, $variant, [$($trait, $doc)?]);)*
        }

        /// Every `AutoModel*` class, as `(task, class name)`, in [`Task::ALL`] order: one per
        /// task, named as `Task::auto_class` names it.
        pub const AUTO_MODEL_CLASSES: &[(Task, &str)] = &[$((classes::$auto::TASK, stringify!($auto)),)*];

        /// A model of any task, for code that picks the task at run time.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum TaskModel {
            $($(
                #[doc = concat!("A `", stringify!($auto), "` model.")]
                $variant(Box<dyn autocandle_core::$trait>),
            )?)*
        }

        impl TaskModel {
            /// Load the head for `task` with default options.
            pub fn from_pretrained(task: Task, id_or_path: &str) -> Result<TaskModel> {
                Self::from_pretrained_with(task, id_or_path, &LoadOptions::default()).map(|l| l.value)
            }

            /// Load the head for `task` (an `AutoModelFor*` chosen at run time).
            pub fn from_pretrained_with(task: Task, id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<TaskModel>> {
                match task {
                    $($(Task::$variant => load_head::<dyn autocandle_core::$trait>(id_or_path, opts).map(|l| Loaded {
                        value: TaskModel::$variant(l.value),
                        unused_kwargs: l.unused_kwargs,
                        report: l.report,
                    }),)?)*
                    other => no_model_trait_from_pretrained(other, id_or_path, opts),
                }
            }

            /// The head for `task` of the architecture of `config`, with freshly initialised weights.
            pub fn from_config(task: Task, config: &PretrainedConfig, device: &Device) -> Result<TaskModel> {
                match task {
                    $($(Task::$variant => {
                        head_from_config::<dyn autocandle_core::$trait>(config, device).map(TaskModel::$variant)
                    })?)*
                    other => Err(no_model_trait(config.model_type(), other)),
                }
            }

            /// The task of the loaded head.
            pub fn task(&self) -> Task {
                match self { $($(TaskModel::$variant(_) => <dyn autocandle_core::$trait as TaskHead>::TASK,)?)* }
            }

            /// Run the model; the output's fields are reachable by name.
            pub fn forward(&self, inputs: &ModelInputs) -> Result<Box<dyn ModelOutput>> {
                match self {
                    $($(TaskModel::$variant(m) => Ok(Box::new(<dyn autocandle_core::$trait>::forward(&**m, inputs)?)),)?)*
                }
            }
        }
    };
}

autocandle_tasks::for_each_task!(auto_model_classes);
