//! Runtime test of `#[derive(AutoRegister)]`: a toy config and one toy head per supported task
//! land in the global registry, parse `config.json` values, and build through `LoadModel`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use autocandle_core::load::build_fresh;
use autocandle_core::registry::{Registry, TaskHead};
use autocandle_core::{
    AutoRegister, BaseModelOutput, CausalLmOutput, Error, ForCausalLm, ForMaskedLm, ForMultipleChoice,
    ForNextSentencePrediction, ForPreTraining, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification,
    LoadModel, MaskedLmOutput, Model, ModelInputs, MultipleChoiceOutput, NextSentencePredictorOutput, PreTrainedModel,
    PreTrainingOutput, PretrainedConfig, QuestionAnsweringOutput, RegisteredConfig, SequenceClassifierOutput, Task,
    TokenClassifierOutput,
};
use autocandle_core::{
    ForImageClassification, ForMaskedImageModeling, ForSeq2SeqLm, ForTextEncoding, ForZeroShotImageClassification,
    ImageClassifierOutput, MaskedImageModelingOutput, Seq2SeqLmOutput, ZeroShotImageClassificationOutput,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::json;

const MODEL_TYPE: &str = "toy-codegen";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config, model_type = "toy-codegen", class = "ToyCodegenConfig")]
struct ToyConfig {
    hidden_size: usize,
    #[serde(default = "default_vocab_size")]
    vocab_size: usize,
}

fn default_vocab_size() -> usize {
    7
}

/// A second config type, registered under its own model type and with the default class name.
#[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config, model_type = "toy_codegen_other")]
struct OtherToyConfig {}

/// How many times any toy head's `LoadModel::load` ran.
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// Defines a toy head per task: `load` reads a `[hidden_size]` weight under `vb`, and
/// `forward` returns it in every output field, so a test can see the typed config arrive.
macro_rules! toy_heads {
    ($($name:ident: $task:literal, $class:literal, $trait:ident -> $out:ident($($field:ident),*);)*) => {$(
        #[derive(Debug, AutoRegister)]
        #[auto(model_type = "toy-codegen", task = $task, class = $class)]
        struct $name {
            weight: Tensor,
        }

        impl LoadModel for $name {
            type Config = ToyConfig;
            const BASE_MODEL_PREFIX: &'static str = "toy";

            fn load(vb: VarBuilder<'_>, config: &ToyConfig) -> autocandle_core::Result<Self> {
                LOADS.fetch_add(1, Ordering::SeqCst);
                let weight = vb.pp("head").get(config.hidden_size, "weight")?;
                Ok(Self { weight })
            }
        }

        impl PreTrainedModel for $name {
            fn device(&self) -> &Device {
                self.weight.device()
            }

            fn dtype(&self) -> DType {
                self.weight.dtype()
            }
        }

        impl $trait for $name {
            fn forward(&self, _inputs: &ModelInputs) -> autocandle_core::Result<$out> {
                Ok($out::new($(toy_field!(self, $field)),*))
            }
        }
    )*};
}

macro_rules! toy_field {
    ($self:ident, none) => {
        None
    };
    ($self:ident, $field:ident) => {
        $self.weight.clone()
    };
}

toy_heads! {
    ToyModel: "base", "ToyModel", Model -> BaseModelOutput(weight, none);
    ToyForPreTraining: "pretraining", "ToyForPreTraining", ForPreTraining -> PreTrainingOutput(weight, weight);
    ToyForCausalLm: "causal-lm", "ToyForCausalLM", ForCausalLm -> CausalLmOutput(weight);
    ToyForMaskedLm: "masked-lm", "ToyForMaskedLM", ForMaskedLm -> MaskedLmOutput(weight);
    ToyForSequenceClassification: "sequence-classification", "ToyForSequenceClassification",
        ForSequenceClassification -> SequenceClassifierOutput(weight);
    ToyForMultipleChoice: "multiple-choice", "ToyForMultipleChoice", ForMultipleChoice -> MultipleChoiceOutput(weight);
    ToyForNextSentencePrediction: "next-sentence-prediction", "ToyForNextSentencePrediction",
        ForNextSentencePrediction -> NextSentencePredictorOutput(weight);
    ToyForTokenClassification: "token-classification", "ToyForTokenClassification",
        ForTokenClassification -> TokenClassifierOutput(weight);
    ToyForQuestionAnswering: "question-answering", "ToyForQuestionAnswering",
        ForQuestionAnswering -> QuestionAnsweringOutput(weight, weight);
    ToyForSeq2SeqLm: "seq2seq-lm", "ToyForConditionalGeneration", ForSeq2SeqLm -> Seq2SeqLmOutput(weight, weight);
    ToyEncoderModel: "text-encoding", "ToyEncoderModel", ForTextEncoding -> BaseModelOutput(weight, none);
    ToyForImageClassification: "image-classification", "ToyForImageClassification",
        ForImageClassification -> ImageClassifierOutput(weight);
    ToyDualModel: "zero-shot-image-classification", "ToyDualModel",
        ForZeroShotImageClassification -> ZeroShotImageClassificationOutput(weight, weight, weight, weight);
    ToyForMaskedImageModeling: "masked-image-modeling", "ToyForMaskedImageModeling",
        ForMaskedImageModeling -> MaskedImageModelingOutput(weight);
}

/// `(task, class name, Rust type name)` of every toy head.
const HEADS: &[(Task, &str, &str)] = &[
    (Task::Base, "ToyModel", "ToyModel"),
    (Task::PreTraining, "ToyForPreTraining", "ToyForPreTraining"),
    (Task::CausalLm, "ToyForCausalLM", "ToyForCausalLm"),
    (Task::MaskedLm, "ToyForMaskedLM", "ToyForMaskedLm"),
    (Task::SequenceClassification, "ToyForSequenceClassification", "ToyForSequenceClassification"),
    (Task::MultipleChoice, "ToyForMultipleChoice", "ToyForMultipleChoice"),
    (Task::NextSentencePrediction, "ToyForNextSentencePrediction", "ToyForNextSentencePrediction"),
    (Task::TokenClassification, "ToyForTokenClassification", "ToyForTokenClassification"),
    (Task::QuestionAnswering, "ToyForQuestionAnswering", "ToyForQuestionAnswering"),
    (Task::Seq2SeqLm, "ToyForConditionalGeneration", "ToyForSeq2SeqLm"),
    (Task::TextEncoding, "ToyEncoderModel", "ToyEncoderModel"),
    (Task::ImageClassification, "ToyForImageClassification", "ToyForImageClassification"),
    (Task::ZeroShotImageClassification, "ToyDualModel", "ToyDualModel"),
    (Task::MaskedImageModeling, "ToyForMaskedImageModeling", "ToyForMaskedImageModeling"),
];

fn toy_config(hidden_size: usize) -> PretrainedConfig {
    PretrainedConfig::from_value(json!({"model_type": MODEL_TYPE, "hidden_size": hidden_size}), Path::new("x"))
        .expect("toy config parses")
}

#[test]
fn config_is_registered() {
    let registry = Registry::global().expect("registry builds");
    let reg = registry.config(MODEL_TYPE).expect("toy config registered");
    assert_eq!(reg.model_type, MODEL_TYPE);
    assert_eq!(reg.config_class, "ToyCodegenConfig");
    assert_eq!(reg.source, "register::ToyConfig");

    let other = registry.config("toy_codegen_other").expect("other config registered");
    assert_eq!(other.config_class, "OtherToyConfig", "class defaults to the struct name");
    assert_eq!(<ToyConfig as RegisteredConfig>::MODEL_TYPE, MODEL_TYPE);
}

#[test]
fn config_parses_to_typed_config() {
    let config = toy_config(3);
    let typed = config.downcast::<ToyConfig>().expect("typed config downcasts");
    assert_eq!(typed, &ToyConfig { hidden_size: 3, vocab_size: 7 });
    assert!(config.downcast::<OtherToyConfig>().is_none());

    let arch = config.arch().expect("typed config present");
    assert_eq!(arch.model_type(), MODEL_TYPE);
    assert_eq!(arch.config_class(), "ToyCodegenConfig");
    assert_eq!(arch.to_json().unwrap(), json!({"hidden_size": 3, "vocab_size": 7}));

    let err = PretrainedConfig::from_value(json!({"model_type": MODEL_TYPE}), Path::new("x"))
        .expect_err("hidden_size is required");
    assert!(err.to_string().contains("hidden_size"), "{err}");
    assert!(err.to_string().contains(MODEL_TYPE), "{err}");
}

#[test]
fn every_task_is_registered() {
    let registry = Registry::global().expect("registry builds");
    for &(task, class, rust_name) in HEADS {
        let reg = registry.model(MODEL_TYPE, task).unwrap_or_else(|| panic!("no {task} head registered"));
        assert_eq!(reg.task, task);
        assert_eq!(reg.constructor.task(), task, "{class}");
        assert_eq!(reg.class_name, class);
        assert_eq!(reg.source, format!("register::{rust_name}"));
        assert_eq!(reg.base_model_prefix, "toy");
        assert_eq!(reg.config_model_type, MODEL_TYPE);
    }
    assert_eq!(registry.heads(MODEL_TYPE).len(), HEADS.len());
}

/// Build the `M` head of `task` through its registered constructor and run it.
fn build<M: TaskHead + ?Sized>(task: Task, config: &PretrainedConfig) -> Box<M> {
    let reg = Registry::global().expect("registry builds").model(MODEL_TYPE, task).expect("registered");
    build_fresh::<M>(config, reg, DType::F32, &Device::Cpu).unwrap_or_else(|e| panic!("{task}: {e}"))
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.dims().to_vec()
}

#[test]
fn registered_constructors_call_load() {
    let config = toy_config(5);
    let inputs = ModelInputs::new(Tensor::zeros((1, 2), DType::U32, &Device::Cpu).expect("tensor"));
    let before = LOADS.load(Ordering::SeqCst);

    let out = build::<dyn Model>(Task::Base, &config).forward(&inputs).expect("forward");
    assert_eq!(dims(&out.last_hidden_state), [5]);
    assert!(out.pooler_output.is_none());
    let out = build::<dyn ForPreTraining>(Task::PreTraining, &config).forward(&inputs).expect("forward");
    assert_eq!(dims(out.seq_relationship_logits().expect("seq_relationship_logits")), [5]);
    let out = build::<dyn ForCausalLm>(Task::CausalLm, &config).forward(&inputs).expect("forward");
    assert_eq!(dims(&out.logits), [5]);
    let out = build::<dyn ForMaskedLm>(Task::MaskedLm, &config).forward(&inputs).expect("forward");
    assert_eq!(dims(&out.logits), [5]);
    let model = build::<dyn ForSequenceClassification>(Task::SequenceClassification, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits), [5]);
    let model = build::<dyn ForMultipleChoice>(Task::MultipleChoice, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits), [5]);
    let model = build::<dyn ForNextSentencePrediction>(Task::NextSentencePrediction, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits), [5]);
    let model = build::<dyn ForTokenClassification>(Task::TokenClassification, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits), [5]);
    let model = build::<dyn ForQuestionAnswering>(Task::QuestionAnswering, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").end_logits), [5]);
    assert_eq!(model.dtype(), DType::F32);
    let model = build::<dyn ForSeq2SeqLm>(Task::Seq2SeqLm, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").encoder_last_hidden_state), [5]);
    let model = build::<dyn ForTextEncoding>(Task::TextEncoding, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").last_hidden_state), [5]);
    let model = build::<dyn ForImageClassification>(Task::ImageClassification, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits), [5]);
    let model = build::<dyn ForZeroShotImageClassification>(Task::ZeroShotImageClassification, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").logits_per_image), [5]);
    let model = build::<dyn ForMaskedImageModeling>(Task::MaskedImageModeling, &config);
    assert_eq!(dims(&model.forward(&inputs).expect("forward").reconstruction), [5]);

    // Other tests may build heads concurrently, so only a lower bound holds.
    assert!(LOADS.load(Ordering::SeqCst) - before >= HEADS.len());
}

#[test]
fn constructor_rejects_a_foreign_config() {
    let reg = Registry::global().expect("registry builds").model(MODEL_TYPE, Task::MaskedLm).expect("registered");
    let ctor = <dyn ForMaskedLm as TaskHead>::constructor(&reg.constructor).expect("masked-lm constructor");
    assert!(<dyn Model as TaskHead>::constructor(&reg.constructor).is_none());

    let foreign = OtherToyConfig {};
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    match ctor(&foreign, vb) {
        Err(Error::ConfigTypeMismatch { expected, got }) => {
            assert!(expected.ends_with("ToyConfig"), "{expected}");
            assert_eq!(got, "OtherToyConfig");
        }
        other => panic!("expected a config type mismatch, got {other:?}"),
    }
}

/// Two compiled-in registrations of one key make only that key fail, as with typetag: its
/// lookups return an error naming both, every other key works (model types of their own, so
/// the toy model type above is untouched).
mod duplicate {

    use std::path::Path;

    use autocandle_core::load::build_fresh;
    use autocandle_core::registry::Registry;
    use autocandle_core::{
        AutoRegister, BaseModelOutput, Error, ForMaskedLm, LoadModel, MaskedLmOutput, Model, ModelInputs,
        PreTrainedModel, PretrainedConfig, Task,
    };
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use serde_json::json;

    #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
    #[auto(config, model_type = "toy-duplicate")]
    struct ToyConfig {
        hidden_size: usize,
    }

    /// Two config types for one model type.
    #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
    #[auto(config, model_type = "toy-duplicate-config")]
    struct FirstConfig {}

    #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
    #[auto(config, model_type = "toy-duplicate-config")]
    struct SecondConfig {}

    macro_rules! toy_head {
        ($name:ident: $task:literal, $trait:ident -> $out:ident($($arg:expr),*)) => {
            #[derive(Debug, AutoRegister)]
            #[auto(task = $task)]
            struct $name {
                weight: Tensor,
            }

            impl LoadModel for $name {
                type Config = ToyConfig;
                const BASE_MODEL_PREFIX: &'static str = "toy";

                fn load(vb: VarBuilder<'_>, config: &ToyConfig) -> autocandle_core::Result<Self> {
                    Ok(Self { weight: vb.get(config.hidden_size, "weight")? })
                }
            }

            impl PreTrainedModel for $name {
                fn device(&self) -> &Device {
                    self.weight.device()
                }

                fn dtype(&self) -> DType {
                    self.weight.dtype()
                }
            }

            impl $trait for $name {
                fn forward(&self, _inputs: &ModelInputs) -> autocandle_core::Result<$out> {
                    let weight = self.weight.clone();
                    Ok($out::new(weight $(, $arg)*))
                }
            }
        };
    }

    // Two masked-LM heads for `toy-duplicate`, and one base model.
    toy_head!(ToyForMaskedLm: "masked-lm", ForMaskedLm -> MaskedLmOutput());
    toy_head!(OtherToyForMaskedLm: "masked-lm", ForMaskedLm -> MaskedLmOutput());
    toy_head!(ToyModel: "base", Model -> BaseModelOutput(None));

    #[test]
    fn a_duplicated_head_fails_only_its_own_lookups() {
        let registry = Registry::global().expect("a duplicate does not break the whole registry");
        let err = registry.try_model("toy-duplicate", Task::MaskedLm).expect_err("the duplicated key fails");
        assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains("duplicate::ToyForMaskedLm") && err.contains("duplicate::OtherToyForMaskedLm"), "{err}");
        assert!(err.contains("masked-lm") && err.contains("toy-duplicate"), "{err}");
        assert!(registry.model("toy-duplicate", Task::MaskedLm).is_none());

        // The other head and the config of the same model type work.
        let base = registry.try_model("toy-duplicate", Task::Base).unwrap().expect("base head registered");
        assert_eq!(base.class_name, "ToyModel");
        let config =
            PretrainedConfig::from_value(json!({"model_type": "toy-duplicate", "hidden_size": 3}), Path::new("x"))
                .unwrap();
        let model = build_fresh::<dyn Model>(&config, base, DType::F32, &Device::Cpu).unwrap();
        let inputs = ModelInputs::new(Tensor::zeros((1, 2), DType::U32, &Device::Cpu).unwrap());
        assert_eq!(model.forward(&inputs).unwrap().last_hidden_state.dims(), [3]);
    }

    #[test]
    fn a_duplicated_config_fails_only_its_own_lookups() {
        let registry = Registry::global().unwrap();
        let err = registry.try_config("toy-duplicate-config").expect_err("the duplicated key fails").to_string();
        assert!(err.contains("duplicate::FirstConfig") && err.contains("duplicate::SecondConfig"), "{err}");
        // Loading a `config.json` of that model type says why.
        let err = PretrainedConfig::from_value(json!({"model_type": "toy-duplicate-config"}), Path::new("x"))
            .expect_err("the config cannot be parsed")
            .to_string();
        assert!(err.contains("duplicate::FirstConfig") && err.contains("duplicate::SecondConfig"), "{err}");

        assert_eq!(registry.config("toy-duplicate").unwrap().config_class, "ToyConfig");
        assert_eq!(registry.problems().len(), 2, "{:?}", registry.problems());
    }
}
