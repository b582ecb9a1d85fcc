//! Unit tests: config defaults and parsing, and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::check_heads;

use crate::{Gemma3TextConfig, GEMMA3_GLOBAL_ROPE_THETA, GEMMA3_LOCAL_ROPE_THETA};

fn tiny() -> Gemma3TextConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "head_dim": 8, "sliding_window": 3, "sliding_window_pattern": 2, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Gemma3TextConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Gemma3TextConfig::default());
    let back: Gemma3TextConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.decoder_spec().unwrap();
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "Gemma3TextModel".to_owned(), "model"),
        (Task::CausalLm, "Gemma3ForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "Gemma3TextForSequenceClassification".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}

fn parse(json: &str) -> Gemma3TextConfig {
    serde_json::from_str(json).unwrap()
}

#[test]
fn defaults_slide_five_layers_of_six_with_two_rope_bases() {
    let spec = Gemma3TextConfig::default().decoder_spec().unwrap();
    let full: Vec<usize> =
        spec.layer_types.iter().enumerate().filter(|(_, t)| **t == LayerType::Full).map(|(i, _)| i).collect();
    assert_eq!(full, [5, 11, 17, 23]);
    let o = &spec.options;
    assert!(o.qk_norm && o.sandwich_norms && o.scale_embeddings);
    assert_eq!((o.attn_logit_softcapping, o.final_logit_softcapping), (None, None));
    assert_eq!(o.attention_scale, Some(1.0 / 16.0));
    let cfg = Gemma3TextConfig::default();
    assert_eq!(cfg.rope.full_attention.theta(), GEMMA3_GLOBAL_ROPE_THETA);
    assert_eq!(cfg.rope.sliding_attention.theta(), GEMMA3_LOCAL_ROPE_THETA);
    assert!(o.sliding_rope.is_some());
}

#[test]
fn layer_types_win_over_the_pattern() {
    let spec = tiny().decoder_spec().unwrap();
    assert_eq!(spec.layer_types, [LayerType::Sliding, LayerType::Full]);
    let mut cfg = tiny();
    cfg.layer_types = Some(vec!["full_attention".into(), "sliding_attention".into()]);
    assert_eq!(cfg.decoder_spec().unwrap().layer_types, [LayerType::Full, LayerType::Sliding]);
}

#[test]
fn old_rope_keys_read_as_transformers_converts_them() {
    let cfg = parse(
        r#"{"rope_theta": 500000.0, "rope_local_base_freq": 77.0,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0}}"#,
    );
    assert_eq!(cfg.rope.full_attention.theta(), 500000.0);
    assert_eq!(cfg.rope.full_attention.rope_type(), "linear");
    assert_eq!(cfg.rope.full_attention.factor, Some(8.0));
    assert_eq!((cfg.rope.sliding_attention.theta(), cfg.rope.sliding_attention.rope_type()), (77.0, "default"));
    // Written back as nested `rope_parameters`, which reads the same.
    let saved = serde_json::to_value(&cfg).unwrap();
    assert!(saved.get("rope_theta").is_none() && saved["rope_parameters"]["full_attention"].is_object());
    let back: Gemma3TextConfig = serde_json::from_value(saved).unwrap();
    assert_eq!(back.rope, cfg.rope);
}

#[test]
fn nested_rope_parameters_and_their_defaults() {
    let cfg = parse(r#"{"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 3.0}}}"#);
    assert_eq!(cfg.rope.full_attention.theta(), 3.0);
    assert_eq!(cfg.rope.sliding_attention.theta(), GEMMA3_LOCAL_ROPE_THETA);
    // Flat keys are not layer types: `transformers` ignores them.
    let cfg = parse(r#"{"rope_parameters": {"rope_type": "linear", "factor": 8.0}}"#);
    assert_eq!(cfg.rope, Gemma3TextConfig::default().rope);
}

#[test]
fn bad_configs_are_clear_errors() {
    let mut cfg = tiny();
    cfg.layer_types = Some(vec!["full_attention".into(), "chunked_attention".into()]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("unknown layer type `chunked_attention`"), "{err}");
    let mut cfg = tiny();
    cfg.layer_types = Some(vec!["full_attention".into()]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`layer_types` has 1 entries"), "{err}");
    let mut cfg = tiny();
    cfg.sliding_window_pattern = Some(0);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`sliding_window_pattern` must be at least 1"), "{err}");
    let mut cfg = tiny();
    cfg.sliding_window = None;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("no `sliding_window`"), "{err}");
    let mut cfg = tiny();
    cfg.use_bidirectional_attention = Some(true);
    assert!(cfg.decoder_spec().is_err());
    let err = serde_json::from_str::<Gemma3TextConfig>(r#"{"rope_theta": "big"}"#).unwrap_err().to_string();
    assert!(err.contains("`rope_theta` must be a number"), "{err}");
    let mut cfg = tiny();
    cfg.rope.sliding_attention.rope_type = Some("fancy".into());
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("rope type `fancy`"), "{err}");
}
