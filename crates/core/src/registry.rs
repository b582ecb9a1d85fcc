//! Registrations collected with `inventory`, and the read-only registry built from them.
//!
//! `#[derive(AutoRegister)]` submits a [`ConfigRegistration`] for a config type and a
//! [`ModelRegistration`] for each model type; [`Registry::global`] gathers them once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use candle_nn::VarBuilder;
use serde_json::Value;

use crate::config::ArchConfig;
use crate::error::{Error, Result};
use crate::models::{
    ForCausalLm, ForImageClassification, ForMaskedImageModeling, ForMaskedLm, ForMultipleChoice,
    ForNextSentencePrediction, ForPreTraining, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, ForZeroShotImageClassification, Model,
};
use crate::Task;

/// Parses a `config.json` object into the typed config.
pub type ConfigParser = fn(Value) -> Result<Arc<dyn ArchConfig>>;

/// Builds a model of trait object type `M` from its typed config and weights.
pub type Ctor<M> = for<'a> fn(&dyn ArchConfig, VarBuilder<'a>) -> Result<Box<M>>;

/// `model_type -> config parser`, submitted by `#[derive(AutoRegister)]` on a config type.
#[derive(Debug)]
pub struct ConfigRegistration {
    pub model_type: &'static str,
    /// The `transformers` config class (`BertConfig`).
    pub config_class: &'static str,
    /// Rust path of the registering type, for error messages.
    pub source: &'static str,
    pub parse: ConfigParser,
}

/// `(model_type, task) -> constructor`, submitted by `#[derive(AutoRegister)]` on a model type.
#[derive(Debug)]
pub struct ModelRegistration {
    pub model_type: &'static str,
    pub task: Task,
    /// The `transformers` class name (`BertForMaskedLM`).
    pub class_name: &'static str,
    /// Rust path of the registering type, for error messages.
    pub source: &'static str,
    /// `transformers`' `base_model_prefix` (`bert`): the attribute holding the base model.
    pub base_model_prefix: &'static str,
    /// The `model_type` of the config type the model is built from.
    pub config_model_type: &'static str,
    pub constructor: Constructor,
}

macro_rules! constructors {
    ($($variant:ident($trait:ident)),* $(,)?) => {
        /// A model constructor, typed by the task's trait.
        #[derive(Clone, Copy)]
        #[non_exhaustive]
        pub enum Constructor {
            $($variant(Ctor<dyn $trait>),)*
        }

        impl Constructor {
            /// The task this constructor builds a head for.
            pub fn task(&self) -> Task {
                match self { $(Constructor::$variant(_) => Task::$variant,)* }
            }
        }

        impl fmt::Debug for Constructor {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "Constructor::{:?}", self.task())
            }
        }

        $(
            impl TaskHead for dyn $trait {
                const TASK: Task = Task::$variant;
                fn constructor(c: &Constructor) -> Option<Ctor<Self>> {
                    match c {
                        Constructor::$variant(f) => Some(*f),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*
    };
}

/// A task trait object type (`dyn ForMaskedLm`) with its task and constructor.
pub trait TaskHead {
    const TASK: Task;
    fn constructor(c: &Constructor) -> Option<Ctor<Self>>;
}

constructors! {
    Base(Model),
    PreTraining(ForPreTraining),
    CausalLm(ForCausalLm),
    MaskedLm(ForMaskedLm),
    Seq2SeqLm(ForSeq2SeqLm),
    SequenceClassification(ForSequenceClassification),
    MultipleChoice(ForMultipleChoice),
    NextSentencePrediction(ForNextSentencePrediction),
    TokenClassification(ForTokenClassification),
    QuestionAnswering(ForQuestionAnswering),
    TextEncoding(ForTextEncoding),
    ImageClassification(ForImageClassification),
    ZeroShotImageClassification(ForZeroShotImageClassification),
    MaskedImageModeling(ForMaskedImageModeling),
}

inventory::collect!(ConfigRegistration);
inventory::collect!(ModelRegistration);

/// Every registration, keyed by model type and task. Built once, read-only afterwards.
#[derive(Debug, Default)]
pub struct Registry {
    configs: BTreeMap<&'static str, &'static ConfigRegistration>,
    models: BTreeMap<(&'static str, Task), &'static ModelRegistration>,
}

impl Registry {
    /// Build a registry, failing on a duplicate key or a model whose config type does not
    /// match its model type.
    pub fn build(
        configs: impl IntoIterator<Item = &'static ConfigRegistration>,
        models: impl IntoIterator<Item = &'static ModelRegistration>,
    ) -> Result<Self> {
        let mut registry = Registry::default();
        for reg in configs {
            if let Some(first) = registry.configs.insert(reg.model_type, reg) {
                return Err(Error::DuplicateRegistration {
                    what: format!("config for model type `{}`", reg.model_type),
                    first: format!("{} (`{}`)", first.config_class, first.source),
                    second: format!("{} (`{}`)", reg.config_class, reg.source),
                });
            }
        }
        for reg in models {
            if reg.config_model_type != reg.model_type {
                return Err(Error::config(
                    reg.model_type,
                    format!(
                        "{} (`{}`) is registered for model type `{}` but is built from the config of `{}`",
                        reg.class_name, reg.source, reg.model_type, reg.config_model_type
                    ),
                ));
            }
            if reg.constructor.task() != reg.task {
                return Err(Error::config(
                    reg.model_type,
                    format!(
                        "{} registers task `{}` with a constructor for `{}`",
                        reg.source,
                        reg.task,
                        reg.constructor.task()
                    ),
                ));
            }
            if let Some(first) = registry.models.insert((reg.model_type, reg.task), reg) {
                return Err(Error::DuplicateRegistration {
                    what: format!("the {} head of model type `{}`", reg.task, reg.model_type),
                    first: format!("{} (`{}`)", first.class_name, first.source),
                    second: format!("{} (`{}`)", reg.class_name, reg.source),
                });
            }
        }
        Ok(registry)
    }

    /// The registry of everything linked into this binary.
    pub fn global() -> Result<&'static Registry> {
        static GLOBAL: OnceLock<Result<Registry, String>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                Registry::build(inventory::iter::<ConfigRegistration>(), inventory::iter::<ModelRegistration>())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|msg| Error::config("registry", msg.clone()))
    }

    /// The config registration of `model_type`.
    pub fn config(&self, model_type: &str) -> Option<&'static ConfigRegistration> {
        self.configs.get(model_type).copied()
    }

    /// The model registration of `(model_type, task)`.
    pub fn model(&self, model_type: &str, task: Task) -> Option<&'static ModelRegistration> {
        self.models.get(&(model_type, task)).copied()
    }

    /// Every registered model type (from configs and models), sorted.
    pub fn model_types(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.configs.keys().copied().chain(self.models.keys().map(|(m, _)| *m)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every model registration of `model_type`, in task order.
    pub fn heads(&self, model_type: &str) -> Vec<&'static ModelRegistration> {
        self.models.values().filter(|r| r.model_type == model_type).copied().collect()
    }

    /// Every model registration, sorted by model type and task.
    pub fn models(&self) -> impl Iterator<Item = &'static ModelRegistration> + '_ {
        self.models.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_parse(_: Value) -> Result<Arc<dyn ArchConfig>> {
        Err(Error::config("x", "unused"))
    }

    fn no_model(_: &dyn ArchConfig, _: VarBuilder<'_>) -> Result<Box<dyn ForMaskedLm>> {
        Err(Error::config("x", "unused"))
    }

    static CONFIG_A: ConfigRegistration = ConfigRegistration {
        model_type: "toy",
        config_class: "ToyConfig",
        source: "crate_a::ToyConfig",
        parse: no_parse,
    };
    static CONFIG_B: ConfigRegistration = ConfigRegistration {
        model_type: "toy",
        config_class: "OtherToyConfig",
        source: "crate_b::OtherToyConfig",
        parse: no_parse,
    };
    static MODEL_A: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "ToyForMaskedLM",
        source: "crate_a::ToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "toy",
        constructor: Constructor::MaskedLm(no_model),
    };
    static MODEL_B: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "OtherToyForMaskedLM",
        source: "crate_b::OtherToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "toy",
        constructor: Constructor::MaskedLm(no_model),
    };
    static MODEL_WRONG_CONFIG: ModelRegistration = ModelRegistration {
        model_type: "toy",
        task: Task::MaskedLm,
        class_name: "ToyForMaskedLM",
        source: "crate_a::ToyForMaskedLM",
        base_model_prefix: "toy",
        config_model_type: "other",
        constructor: Constructor::MaskedLm(no_model),
    };

    #[test]
    fn duplicate_config_names_both() {
        let err = Registry::build([&CONFIG_A, &CONFIG_B], []).unwrap_err().to_string();
        assert!(err.contains("crate_a::ToyConfig") && err.contains("crate_b::OtherToyConfig"), "{err}");
    }

    #[test]
    fn duplicate_model_names_both() {
        let err = Registry::build([&CONFIG_A], [&MODEL_A, &MODEL_B]).unwrap_err().to_string();
        assert!(err.contains("crate_a::ToyForMaskedLM") && err.contains("crate_b::OtherToyForMaskedLM"), "{err}");
        assert!(err.contains("masked-lm"), "{err}");
    }

    #[test]
    fn model_with_foreign_config_is_rejected() {
        let err = Registry::build([&CONFIG_A], [&MODEL_WRONG_CONFIG]).unwrap_err().to_string();
        assert!(err.contains("config of `other`"), "{err}");
    }

    #[test]
    fn lookups() {
        let r = Registry::build([&CONFIG_A], [&MODEL_A]).unwrap();
        assert_eq!(r.model("toy", Task::MaskedLm).unwrap().class_name, "ToyForMaskedLM");
        assert!(r.model("toy", Task::Base).is_none());
        assert_eq!(r.model_types(), vec!["toy"]);
        assert!(<dyn ForMaskedLm as TaskHead>::constructor(&MODEL_A.constructor).is_some());
        assert!(<dyn Model as TaskHead>::constructor(&MODEL_A.constructor).is_none());
    }
}
