//! The catalog of known model types (generated into `mappings.rs` from `manifests/`), the
//! resolution of a `(model_type, task)` pair to a registered constructor with the error that
//! says why there is none, and the model type guessed from a repo name.

use autocandle_core::registry::{ModelRegistration, Registry};
use autocandle_core::{Error, Result, Task};

use crate::mappings::{feature_enabled, MODEL_TYPES};

/// One model type `transformers` knows, with the Auto tasks it has.
#[derive(Debug, Clone, Copy)]
pub struct ModelTypeInfo {
    /// The `model_type` of `config.json` (`bert`).
    pub model_type: &'static str,
    /// Display name (`BERT`).
    pub name: &'static str,
    /// The `transformers` config class (`BertConfig`).
    pub config_class: &'static str,
    /// The slow tokenizer class `transformers` maps it to (`BertTokenizer`), if any.
    pub tokenizer_class: Option<&'static str>,
    /// The fast tokenizer class (`BertTokenizerFast`), if any.
    pub tokenizer_fast_class: Option<&'static str>,
    /// The crate implementing it, when autocandle implements it.
    pub crate_name: Option<&'static str>,
    /// The autocandle feature that compiles it in.
    pub feature: Option<&'static str>,
    /// Every task `transformers` has for it (empty for a type no Auto model class loads).
    pub tasks: &'static [TaskClass],
}

impl ModelTypeInfo {
    /// Whether autocandle has an implementation of this model type (compiled in or not).
    pub fn is_implemented(&self) -> bool {
        self.crate_name.is_some()
    }

    /// The `transformers` class of `task`, when `transformers` has that head.
    pub fn task_class(&self, task: Task) -> Option<&'static TaskClass> {
        self.tasks.iter().find(|t| t.task == task)
    }
}

/// A task of a model type and its `transformers` class.
#[derive(Debug, Clone, Copy)]
pub struct TaskClass {
    /// The task (the Auto class that loads it).
    pub task: Task,
    /// The `transformers` model class for it (`BertForMaskedLM`).
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
    // `cargo xtask gen-mappings` emits the catalog sorted by `model_type`.
    MODEL_TYPES.binary_search_by(|m| m.model_type.cmp(model_type)).ok().map(|i| &MODEL_TYPES[i])
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

/// The model type a repo name or folder name points at, for a `config.json` without
/// `model_type` (`transformers`' `AutoConfig.from_pretrained` fallback): every known model
/// type (the catalog's and those registered at run time) is a pattern, the longest first, and
/// the first one that occurs in `name` wins, so `my-xlm-roberta-model` is `xlm-roberta`, not
/// `roberta`. Equally long patterns are tried in alphabetical order. Matching is
/// case-sensitive, as in `transformers`.
pub fn model_type_from_name(name: &str) -> Option<&'static str> {
    let mut patterns: Vec<&'static str> = match Registry::global() {
        Ok(registry) => known_model_types(registry),
        Err(_) => MODEL_TYPES.iter().map(|m| m.model_type).collect(),
    };
    // Stable: alphabetical within one length.
    patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
    patterns.into_iter().find(|p| name.contains(p))
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
    if registry.try_config(model_type)?.is_some() || model_type_info(model_type).is_some() {
        Ok(())
    } else {
        Err(unknown_model_type(model_type))
    }
}

/// The error for a model type the catalog knows but autocandle does not implement at all.
fn not_implemented(info: &ModelTypeInfo, task: Task) -> Error {
    let head = match info.task_class(task) {
        Some(tc) => format!("`transformers` loads it as {} for {}", tc.class_name, task.auto_class()),
        None if info.tasks.is_empty() => "`transformers` has no Auto model class for it either".to_owned(),
        None => format!(
            "`transformers` has no {} head for it either (its heads: {})",
            task,
            info.tasks.iter().map(|t| t.task.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    Error::Unsupported(format!(
        "model type `{}` ({}) is known but autocandle does not implement it yet ({head}); \
         `AutoConfig` reads its config, and docs/models.md lists the model types autocandle implements",
        info.model_type, info.name
    ))
}

/// The registration serving `task` for `model_type`, or an error saying exactly why none does:
/// unknown model type (with the closest names), known but not compiled in (with the feature to
/// enable), known but not implemented (pointing at docs/models.md), or implemented without
/// this head (with the heads there are).
pub fn resolve_head(model_type: &str, task: Task) -> Result<&'static ModelRegistration> {
    let registry = Registry::global()?;
    if let Some(reg) = registry.try_model(model_type, task)? {
        return Ok(reg);
    }
    let info = model_type_info(model_type);
    if let Some(feature) = info.and_then(|i| i.feature) {
        if !feature_enabled(feature) {
            return Err(Error::NotCompiledIn { model_type: model_type.to_owned(), feature: feature.to_owned() });
        }
    }
    let registered = registry.heads(model_type);
    if registered.is_empty() {
        match info {
            None => return Err(unknown_model_type(model_type)),
            Some(info) if !info.is_implemented() => return Err(not_implemented(info, task)),
            Some(_) => {}
        }
    }
    if let Some(tc) = info.and_then(|i| i.task_class(task)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_unique_so_lookups_can_bisect() {
        for pair in MODEL_TYPES.windows(2) {
            assert!(pair[0].model_type < pair[1].model_type, "{} before {}", pair[0].model_type, pair[1].model_type);
        }
        for m in MODEL_TYPES {
            assert_eq!(model_type_info(m.model_type).map(|i| i.model_type), Some(m.model_type));
        }
        assert!(model_type_info("no-such-type").is_none());
        assert!(model_type_info("").is_none());
    }

    #[test]
    fn longest_model_type_in_the_name_wins() {
        assert_eq!(model_type_from_name("my-xlm-roberta-model"), Some("xlm-roberta"));
        assert_eq!(model_type_from_name("FacebookAI/xlm-roberta-large"), Some("xlm-roberta"));
        assert_eq!(model_type_from_name("xlm-roberta-xl-checkpoint"), Some("xlm-roberta-xl"));
        assert_eq!(model_type_from_name("my-roberta-model"), Some("roberta"));
        assert_eq!(model_type_from_name("distilbert-base-uncased"), Some("distilbert"));
        assert_eq!(model_type_from_name("bert-base-uncased"), Some("bert"));
        assert_eq!(model_type_from_name("Qwen3-0.6B"), None, "matching is case-sensitive");
        assert_eq!(model_type_from_name("nothing here"), None);
    }

    #[test]
    fn types_not_compiled_in_name_their_feature() {
        let mut checked = 0;
        for m in MODEL_TYPES {
            let (Some(feature), Some(tc)) = (m.feature, m.tasks.iter().find(|t| t.implemented)) else { continue };
            if feature_enabled(feature) {
                continue;
            }
            let err = resolve_head(m.model_type, tc.task).expect_err("not compiled in");
            assert!(matches!(err, Error::NotCompiledIn { .. }), "{err}");
            assert!(err.to_string().contains(&format!("enable the `{feature}` feature of autocandle")), "{err}");
            checked += 1;
        }
        if checked == 0 {
            println!("every architecture feature is enabled in this build: nothing to check");
        }
    }

    #[test]
    fn known_but_unimplemented_types_say_so() {
        let Some(info) = MODEL_TYPES.iter().find(|m| !m.is_implemented() && !m.tasks.is_empty()) else {
            return;
        };
        let task = info.tasks[0].task;
        let err = resolve_head(info.model_type, task).expect_err("not implemented").to_string();
        assert!(err.contains("is known but autocandle does not implement it yet"), "{err}");
        assert!(err.contains(info.tasks[0].class_name) && err.contains("docs/models.md"), "{err}");
    }
}
