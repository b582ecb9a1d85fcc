//! Two compiled-in registrations of one key make only that key fail, as with typetag: its
//! lookups return an error naming both, every other key works. (A test binary of its own, so
//! that the duplicates do not reach the other tests' registry.)

use std::path::Path;

use autocandle_core::load::build_fresh;
use autocandle_core::registry::Registry;
use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForMaskedLm, LoadModel, MaskedLmOutput, Model, ModelInputs, PreTrainedModel,
    PretrainedConfig, Task,
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
        PretrainedConfig::from_value(json!({"model_type": "toy-duplicate", "hidden_size": 3}), Path::new("x")).unwrap();
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
