//! The catalog of known model types (generated into `mappings.rs` from `manifests/`) and
//! the resolution of a `(model_type, task)` pair to a registered constructor.

use autocandle_core::registry::{ModelRegistration, Registry};
use autocandle_core::{Error, Result, Task};

use crate::mappings::{feature_enabled, MODEL_TYPES};

/// One model type `transformers` knows, with the Auto tasks it has.
#[derive(Debug, Clone, Copy)]
pub struct ModelTypeInfo {
    pub model_type: &'static str,
    /// Display name (`BERT`).
    pub name: &'static str,
    pub config_class: &'static str,
    pub tokenizer_class: Option<&'static str>,
    pub tokenizer_fast_class: Option<&'static str>,
    /// The crate implementing it, when autocandle implements it.
    pub crate_name: Option<&'static str>,
    /// The autocandle feature that compiles it in.
    pub feature: Option<&'static str>,
    pub tasks: &'static [TaskClass],
}

/// A task of a model type and its `transformers` class.
#[derive(Debug, Clone, Copy)]
pub struct TaskClass {
    pub task: Task,
    pub class_name: &'static str,
    /// Whether autocandle implements this head.
    pub implemented: bool,
}

/// Every model type autocandle knows, sorted by `model_type`.
pub fn model_types() -> &'static [ModelTypeInfo] {
    MODEL_TYPES
}

/// The catalog entry of `model_type`.
pub fn model_type_info(model_type: &str) -> Option<&'static ModelTypeInfo> {
    MODEL_TYPES.iter().find(|m| m.model_type == model_type)
}

/// Whether the architecture feature `feature` is compiled in.
pub fn is_feature_enabled(feature: &str) -> bool {
    feature_enabled(feature)
}

/// Every known model type name: the catalog's and the registered ones.
fn known_model_types(registry: &Registry) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = MODEL_TYPES.iter().map(|m| m.model_type).chain(registry.model_types()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The error for a model type nobody knows, with the closest known names.
pub(crate) fn unknown_model_type(model_type: &str) -> Error {
    let known = Registry::global().map(known_model_types).unwrap_or_default();
    let mut scored: Vec<(f64, &str)> =
        known.iter().map(|k| (strsim::jaro_winkler(model_type, k), *k)).filter(|(s, _)| *s > 0.8).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let suggestion = match scored.as_slice() {
        [] => String::new(),
        [(_, one)] => format!(" (did you mean `{one}`?)"),
        many => format!(
            " (did you mean one of {}?)",
            many.iter().take(3).map(|(_, k)| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    Error::UnknownModelType { model_type: model_type.to_owned(), suggestion, known: known.join(", ") }
}

/// Check that `model_type` can be configured in this build: registered, or known to the
/// catalog (a generic config is kept then).
pub(crate) fn check_known(model_type: &str) -> Result<()> {
    let registry = Registry::global()?;
    if registry.config(model_type).is_some() || model_type_info(model_type).is_some() {
        Ok(())
    } else {
        Err(unknown_model_type(model_type))
    }
}

/// The registration serving `task` for `model_type`, or an error saying exactly why none does.
pub fn resolve_head(model_type: &str, task: Task) -> Result<&'static ModelRegistration> {
    let registry = Registry::global()?;
    if let Some(reg) = registry.model(model_type, task) {
        return Ok(reg);
    }
    let info = model_type_info(model_type);
    if let Some(feature) = info.and_then(|i| i.feature) {
        if !feature_enabled(feature) {
            return Err(Error::NotCompiledIn { model_type: model_type.to_owned(), feature: feature.to_owned() });
        }
    }
    let registered = registry.heads(model_type);
    if registered.is_empty() && info.is_none() {
        return Err(unknown_model_type(model_type));
    }
    if let Some(tc) = info.and_then(|i| i.tasks.iter().find(|t| t.task == task)) {
        return Err(Error::Unsupported(format!(
            "`{model_type}` has the {task} head {} in transformers, but autocandle does not implement it yet; \
             see docs/models.md for what is implemented",
            tc.class_name
        )));
    }
    let mut available: Vec<String> = registered.iter().map(|r| format!("{} ({})", r.task, r.class_name)).collect();
    if available.is_empty() {
        if let Some(info) = info {
            available = info.tasks.iter().map(|t| format!("{} ({}, not implemented)", t.task, t.class_name)).collect();
        }
    }
    Err(Error::NoHeadForTask {
        model_type: model_type.to_owned(),
        task,
        auto_class: task.auto_class(),
        available: if available.is_empty() { "none".to_owned() } else { available.join(", ") },
    })
}
