//! Every Auto class of `transformers` exists, one per `Task`, and the classes whose task has no
//! model trait yet fail with an error that names the class, the task and the model type.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use autocandle::{
    AutoConfig, AutoModelForCTC, AutoModelForImageSegmentation, AutoModelForMaskedLM, AutoModelForObjectDetection,
    AutoModelForTDT, Device, Error, LoadOptions, Task, TaskModel, AUTO_MODEL_CLASSES,
};
use autocandle_tests::fixture;

#[test]
fn every_task_has_its_auto_class() {
    for &task in Task::ALL {
        let classes: Vec<&str> = AUTO_MODEL_CLASSES.iter().filter(|(t, _)| *t == task).map(|(_, c)| *c).collect();
        assert_eq!(classes, [task.auto_class()], "the classes whose `TASK` is `{task}`");
    }
    let names: BTreeSet<&str> = AUTO_MODEL_CLASSES.iter().map(|(_, c)| *c).collect();
    assert_eq!(names.len(), AUTO_MODEL_CLASSES.len(), "a class name is listed twice");
    assert_eq!(AUTO_MODEL_CLASSES.len(), Task::ALL.len(), "a class has no task of `Task::ALL`");
    let order: Vec<Task> = AUTO_MODEL_CLASSES.iter().map(|(t, _)| *t).collect();
    assert_eq!(order, Task::ALL, "`AUTO_MODEL_CLASSES` follows `Task::ALL`");
    assert_eq!(AutoModelForCTC::TASK, Task::Ctc);
    assert_eq!(AutoModelForTDT::TASK.auto_class(), "AutoModelForTDT");
    assert_eq!(AutoModelForMaskedLM::TASK, Task::MaskedLm);
}

fn bert_base() -> String {
    fixture("bert-base").to_string_lossy().into_owned()
}

fn assert_no_trait_error(err: &Error) {
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let text = err.to_string();
    for part in ["AutoModelForImageSegmentation", "`bert`", "`image-segmentation`", "no model trait"] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
    // The heads that do exist are listed.
    assert!(text.contains("masked-lm (BertForMaskedLM)"), "{text}");
}

#[test]
fn a_task_without_model_trait_names_class_task_and_model_type() {
    let err = AutoModelForImageSegmentation::from_pretrained(&bert_base()).unwrap_err();
    assert_no_trait_error(&err);
    assert!(err.to_string().contains("transformers has no image-segmentation head for `bert` either"), "{err}");

    let err = AutoModelForImageSegmentation::from_pretrained_with(&bert_base(), &LoadOptions::default()).unwrap_err();
    assert_no_trait_error(&err);

    let config = AutoConfig::from_pretrained(&bert_base()).unwrap();
    let err = AutoModelForImageSegmentation::from_config(&config, &Device::Cpu).unwrap_err();
    assert_no_trait_error(&err);

    let err = TaskModel::from_pretrained(Task::ImageSegmentation, &bert_base()).unwrap_err();
    assert_no_trait_error(&err);
    let err = TaskModel::from_config(Task::ImageSegmentation, &config, &Device::Cpu).unwrap_err();
    assert_no_trait_error(&err);
}

#[test]
fn tasks_with_a_trait_still_load_through_task_model() {
    let model = TaskModel::from_config(Task::Base, &AutoConfig::from_pretrained(&bert_base()).unwrap(), &Device::Cpu);
    assert_eq!(model.unwrap().task(), Task::Base);
    assert_eq!(TaskModel::from_pretrained(Task::Base, &bert_base()).unwrap().task(), Task::Base);
}

/// A folder holding only `config.json` with these fields.
fn config_dir(config: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn the_catalog_errors_come_first() {
    // Known to transformers, not implemented here: the catalog's error, with the class name.
    let dir = config_dir(serde_json::json!({ "model_type": "sew" }));
    let err = AutoModelForCTC::from_pretrained(&dir.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("`sew`") && err.to_string().contains("SEWForCTC"), "{err}");

    // Unknown: the unknown-model-type error with suggestions.
    let dir = config_dir(serde_json::json!({ "model_type": "bertt" }));
    let err = AutoModelForObjectDetection::from_pretrained(&dir.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::UnknownModelType { .. }), "{err}");
    assert!(err.to_string().contains("did you mean"), "{err}");

    // No config at all: the file error, as for every Auto class.
    let dir = tempfile::tempdir().unwrap();
    let err = AutoModelForObjectDetection::from_pretrained(&dir.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err}");
}

/// `use autocandle::*;` must leave the standard library's names usable: nothing the facade
/// exports at its root may be called `core`, `std` or `alloc`.
mod glob_import {
    #[allow(unused_imports)]
    use autocandle::*;

    #[test]
    fn glob_import_keeps_the_standard_core_crate() {
        // With a facade item named `core`, the glob import would shadow the extern prelude's
        // `core` and this path would not resolve.
        assert_eq!(core::mem::size_of::<u8>(), 1);
        assert_eq!(std::mem::size_of::<u16>(), 2);
        let _device: Device = Device::Cpu;
    }
}
