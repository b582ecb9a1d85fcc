//! The example architecture loads through the Auto classes under both model types, the one
//! registered by `#[derive(AutoRegister)]` and the one registered at run time, and every
//! misuse of the `register` functions is an error.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use autocandle::arch_api::{
    ArchConfig, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, RegisteredConfig,
};
use autocandle::registry::Registry;
use autocandle::{
    AutoConfig, AutoModel, AutoModelForImageSegmentation, AutoModelForSequenceClassification, Error, Task, TaskModel,
};
use autocandle_example_custom::{
    register_runtime, RuntimeConfig, RuntimeForSequenceClassification, RuntimeModel, TinyMlpConfig,
    TinyMlpForSequenceClassification, TinyMlpModel, TINY_MLP, TINY_MLP_RUNTIME,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::{input_ids, max_abs_diff, Checkpoint, HIDDEN_SIZE, NUM_LABELS};

/// Register `tiny-mlp-runtime` once for every test of this binary (they run in parallel).
fn registered() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| register_runtime(false).map_err(|e| e.to_string())).clone().unwrap();
}

/// `AutoModel` and `AutoModelForSequenceClassification` on a checkpoint of `model_type`
/// give what the network computes by hand.
fn check_loads(model_type: &str) {
    let checkpoint = Checkpoint::write(model_type).unwrap();
    let ids = input_ids().unwrap();
    let (hidden, logits) = checkpoint.expected(&ids).unwrap();
    let inputs = ModelInputs::new(ids);

    let base = AutoModel::from_pretrained(&checkpoint.path()).unwrap();
    let out = base.forward(&inputs).unwrap();
    assert!(max_abs_diff(&out.last_hidden_state, &hidden).unwrap() < 1e-5);

    let classifier = AutoModelForSequenceClassification::from_pretrained(&checkpoint.path()).unwrap();
    let out = classifier.forward(&inputs).unwrap();
    assert_eq!(out.logits.dims(), [2, NUM_LABELS]);
    assert!(max_abs_diff(&out.logits, &logits).unwrap() < 1e-5);

    let model = TaskModel::from_pretrained(Task::SequenceClassification, &checkpoint.path()).unwrap();
    let out = model.forward(&inputs).unwrap();
    assert!(max_abs_diff(out.get("logits").unwrap(), &logits).unwrap() < 1e-5);
}

#[test]
fn derive_registered_model_type_loads() {
    check_loads(TINY_MLP);
    let config = AutoConfig::from_pretrained(&Checkpoint::write(TINY_MLP).unwrap().path()).unwrap();
    assert_eq!(config.downcast::<TinyMlpConfig>().unwrap().labels.num_labels(), NUM_LABELS);
}

#[test]
fn runtime_registered_model_type_loads() {
    registered();
    check_loads(TINY_MLP_RUNTIME);

    let checkpoint = Checkpoint::write(TINY_MLP_RUNTIME).unwrap();
    let config = AutoConfig::from_pretrained(&checkpoint.path()).unwrap();
    let typed = config.downcast::<RuntimeConfig>().unwrap();
    assert_eq!((typed.0.vocab_size, typed.0.hidden_size), (common::VOCAB_SIZE, HIDDEN_SIZE));
    assert_eq!(config.arch().unwrap().config_class(), "RuntimeConfig");

    let fresh = AutoModelForSequenceClassification::from_config(&config, &Device::Cpu).unwrap();
    let out = fresh.forward(&ModelInputs::new(input_ids().unwrap())).unwrap();
    assert_eq!(out.logits.dims(), [2, NUM_LABELS]);
    assert!(matches!(TaskModel::from_config(Task::Base, &config, &Device::Cpu).unwrap(), TaskModel::Base(_)));

    let registry = Registry::global().unwrap();
    assert_eq!(registry.model(TINY_MLP_RUNTIME, Task::Base).unwrap().class_name, "RuntimeModel");
    let heads: Vec<Task> = registry.heads(TINY_MLP_RUNTIME).iter().map(|r| r.task).collect();
    assert_eq!(heads, [Task::Base, Task::SequenceClassification]);
}

#[test]
fn a_task_without_model_trait_names_the_runtime_model_type() {
    registered();
    let checkpoint = Checkpoint::write(TINY_MLP_RUNTIME).unwrap();
    let err = AutoModelForImageSegmentation::from_pretrained(&checkpoint.path()).unwrap_err().to_string();
    assert!(err.contains("AutoModelForImageSegmentation: `tiny-mlp-runtime` has no `image-segmentation`"), "{err}");
    assert!(err.contains("sequence-classification (RuntimeForSequenceClassification)"), "{err}");
}

#[test]
fn a_config_over_a_compiled_in_one_needs_exist_ok() {
    let err = AutoConfig::register::<TinyMlpConfig>(TINY_MLP, false).unwrap_err();
    assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
    let err = err.to_string();
    assert!(err.contains("config for model type `tiny-mlp`") && err.contains("exist_ok = true"), "{err}");
    assert!(err.contains("autocandle_example_custom::TinyMlpConfig"), "{err}");
}

#[test]
fn a_config_under_another_model_type_is_rejected() {
    let err = AutoConfig::register::<RuntimeConfig>("tiny-mlp-renamed", true).unwrap_err().to_string();
    assert!(err.contains("has model type `tiny-mlp-runtime`, not `tiny-mlp-renamed`"), "{err}");
    assert!(Registry::global().unwrap().config("tiny-mlp-renamed").is_none());
}

#[test]
fn a_model_for_a_config_it_is_not_built_from_is_rejected() {
    registered();
    // Even with `exist_ok`: the model cannot load that config.
    let err = AutoModel::register::<TinyMlpConfig, RuntimeModel>(true).unwrap_err().to_string();
    assert!(err.contains("RuntimeModel") && err.contains("is built from the config"), "{err}");
    assert!(err.contains("RuntimeConfig") && err.contains("TinyMlpConfig"), "{err}");
    let err = AutoModelForSequenceClassification::register::<RuntimeConfig, TinyMlpForSequenceClassification>(true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("TinyMlpForSequenceClassification"), "{err}");
    assert_eq!(Registry::global().unwrap().model(TINY_MLP, Task::Base).unwrap().class_name, "TinyMlpModel");
}

#[test]
fn a_model_over_a_compiled_in_head_needs_exist_ok() {
    let err = AutoModel::register::<TinyMlpConfig, TinyMlpModel>(false).unwrap_err();
    assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
    let err = err.to_string();
    assert!(err.contains("the base head of model type `tiny-mlp`") && err.contains("exist_ok"), "{err}");
    // With `exist_ok` the run-time registration replaces it (here with the same model).
    AutoModel::register::<TinyMlpConfig, TinyMlpModel>(true).unwrap();
}

#[test]
fn registering_twice_at_run_time_needs_exist_ok() {
    registered();
    let err = register_runtime(false).unwrap_err();
    assert!(matches!(err, Error::DuplicateRegistration { .. }), "{err}");
    assert!(err.to_string().contains("registered at run time"), "{err}");
    let err = AutoModelForSequenceClassification::register::<RuntimeConfig, RuntimeForSequenceClassification>(false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the sequence-classification head of model type `tiny-mlp-runtime`"), "{err}");
    register_runtime(true).unwrap();
}

/// A config type that nobody registers, and a model built from it.
#[derive(Debug)]
struct OrphanConfig;

impl ArchConfig for OrphanConfig {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }
    fn config_class(&self) -> &'static str {
        "OrphanConfig"
    }
    fn to_json(&self) -> autocandle::Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl RegisteredConfig for OrphanConfig {
    const MODEL_TYPE: &'static str = "tiny-mlp-orphan";
}

#[derive(Debug)]
struct OrphanModel(Tensor);

impl LoadModel for OrphanModel {
    type Config = OrphanConfig;
    const BASE_MODEL_PREFIX: &'static str = "";

    fn load(vb: VarBuilder<'_>, _config: &OrphanConfig) -> autocandle::Result<Self> {
        Ok(Self(vb.get(1, "weight")?))
    }
}

impl PreTrainedModel for OrphanModel {
    fn device(&self) -> &Device {
        self.0.device()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
}

impl Model for OrphanModel {
    fn forward(&self, _inputs: &ModelInputs) -> autocandle::Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.0.clone(), None))
    }
}

#[test]
fn a_model_without_a_registered_config_is_rejected() {
    let err = AutoModel::register::<OrphanConfig, OrphanModel>(true).unwrap_err().to_string();
    assert!(err.contains("`tiny-mlp-orphan`, which has no config registration"), "{err}");
    assert!(err.contains("AutoConfig::register"), "{err}");
    assert!(Registry::global().unwrap().model("tiny-mlp-orphan", Task::Base).is_none());
}
