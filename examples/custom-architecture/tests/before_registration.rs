//! A run-time registration is what makes a model type loadable: before `register_runtime` the
//! Auto classes do not know `tiny-mlp-runtime`, after it they load it. One test, so that
//! nothing registers it earlier.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use autocandle::{AutoConfig, AutoModel, AutoModelForSequenceClassification, Error, ModelInputs};
use autocandle_example_custom::{register_runtime, TINY_MLP_RUNTIME};
use common::{input_ids, max_abs_diff, Checkpoint};

#[test]
fn runtime_model_type_loads_only_once_registered() {
    let checkpoint = Checkpoint::write(TINY_MLP_RUNTIME).unwrap();
    let err = AutoConfig::from_pretrained(&checkpoint.path()).unwrap_err();
    assert!(matches!(err, Error::UnknownModelType { .. }), "{err}");
    let err = AutoModel::from_pretrained(&checkpoint.path()).unwrap_err();
    assert!(matches!(err, Error::UnknownModelType { .. }), "{err}");
    // The derive-registered type is known already, so it is suggested.
    assert!(err.to_string().contains("`tiny-mlp`"), "{err}");

    register_runtime(false).unwrap();

    assert_eq!(AutoConfig::from_pretrained(&checkpoint.path()).unwrap().model_type(), TINY_MLP_RUNTIME);
    let ids = input_ids().unwrap();
    let (_, logits) = checkpoint.expected(&ids).unwrap();
    let model = AutoModelForSequenceClassification::from_pretrained(&checkpoint.path()).unwrap();
    let out = model.forward(&ModelInputs::new(ids)).unwrap();
    assert!(max_abs_diff(&out.logits, &logits).unwrap() < 1e-5);
}
