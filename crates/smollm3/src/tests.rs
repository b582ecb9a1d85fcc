//! Unit tests: config defaults and parsing, and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::check_heads;

use crate::{SmolLM3Config, SMOLLM3_DEFAULT_ROPE_THETA};

fn tiny() -> SmolLM3Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: SmolLM3Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, SmolLM3Config::default());
    let back: SmolLM3Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.decoder_spec().unwrap();
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "SmolLM3Model".to_owned(), "model"),
        (Task::CausalLm, "SmolLM3ForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "SmolLM3ForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "SmolLM3ForTokenClassification".to_owned(), "model"),
        (Task::QuestionAnswering, "SmolLM3ForQuestionAnswering".to_owned(), "transformer"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}

#[test]
fn every_fourth_layer_has_no_rope_by_default() {
    let spec = tiny().decoder_spec().unwrap();
    assert_eq!(spec.options.skip_rope, [false, false, false, true]);
    assert!(!spec.has_sliding_layers());
    let mut cfg = tiny();
    cfg.no_rope_layer_interval = 2;
    assert_eq!(cfg.decoder_spec().unwrap().options.skip_rope, [false, true, false, true]);
}

#[test]
fn no_rope_layers_one_means_rope() {
    let mut cfg = tiny();
    cfg.no_rope_layers = Some(vec![0, 1, 0, 1, 1]); // longer lists are allowed: the first entries count
    assert_eq!(cfg.decoder_spec().unwrap().options.skip_rope, [true, false, true, false]);
}

#[test]
fn the_nope_layers_slide_with_use_sliding_window() {
    let mut cfg = tiny();
    cfg.sliding_window = Some(3);
    assert!(!cfg.decoder_spec().unwrap().has_sliding_layers());
    cfg.use_sliding_window = true;
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!(spec.layer_types, [LayerType::Full, LayerType::Full, LayerType::Full, LayerType::Sliding]);
    assert_eq!(spec.sliding_window, Some(3));
}

#[test]
fn the_rope_base_defaults_to_two_million() {
    let cfg = tiny();
    assert_eq!(cfg.rope.0.parameters.theta(), SMOLLM3_DEFAULT_ROPE_THETA);
    let cfg: SmolLM3Config = serde_json::from_str(r#"{"rope_theta": 5000.0}"#).unwrap();
    assert_eq!(cfg.rope.0.parameters.theta(), 5000.0);
    let cfg: SmolLM3Config =
        serde_json::from_str(r#"{"rope_parameters": {"rope_type": "default", "rope_theta": 7.0}}"#).unwrap();
    assert_eq!(cfg.rope.0.parameters.theta(), 7.0);
    let cfg: SmolLM3Config =
        serde_json::from_str(r#"{"rope_parameters": {"rope_type": "linear", "factor": 2.0}}"#).unwrap();
    assert_eq!((cfg.rope.0.parameters.theta(), cfg.rope.0.parameters.factor), (SMOLLM3_DEFAULT_ROPE_THETA, Some(2.0)));
}

#[test]
fn bad_configs_are_clear_errors() {
    let mut cfg = tiny();
    cfg.no_rope_layers = Some(vec![1, 0, 1]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`no_rope_layers` has 3 entries but the model has 4 layers"), "{err}");
    let mut cfg = tiny();
    cfg.no_rope_layer_interval = 0;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`no_rope_layer_interval` must be at least 1"), "{err}");
    let mut cfg = tiny();
    cfg.layer_types =
        Some(vec!["full_attention".into(), "local".into(), "full_attention".into(), "full_attention".into()]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("unknown layer type `local`"), "{err}");
    let mut cfg = tiny();
    cfg.layer_types = Some(vec!["sliding_attention".into(); 4]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("no `sliding_window`"), "{err}");
}
