//! Unit tests: config defaults and parsing, and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::DecoderConfig;
use autocandle_testing::check_heads;

use crate::GraniteConfig;

fn tiny() -> GraniteConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: GraniteConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GraniteConfig::default());
    let back: GraniteConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.decoder_spec().unwrap();
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "GraniteModel".to_owned(), "model"),
        (Task::CausalLm, "GraniteForCausalLM".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}

#[test]
fn multipliers_become_options_unless_one() {
    let spec = tiny().decoder_spec().unwrap();
    let o = &spec.options;
    assert_eq!((o.embedding_multiplier, o.residual_multiplier, o.logits_scaling), (None, None, None));
    assert_eq!(o.attention_scale, Some(1.0));
    let mut cfg = tiny();
    cfg.embedding_multiplier = 12.0;
    cfg.residual_multiplier = 0.22;
    cfg.attention_multiplier = 0.0078125;
    cfg.logits_scaling = 8.0;
    let spec = cfg.decoder_spec().unwrap();
    let o = &spec.options;
    assert_eq!((o.embedding_multiplier, o.residual_multiplier, o.logits_scaling), (Some(12.0), Some(0.22), Some(8.0)));
    assert_eq!(o.attention_scale, Some(0.0078125));
}

#[test]
fn bad_multipliers_are_clear_errors() {
    let mut cfg = tiny();
    cfg.logits_scaling = 0.0;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`logits_scaling` must be a finite, non-zero number"), "{err}");
    let mut cfg = tiny();
    cfg.attention_multiplier = -1.0;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("attention scale must be a finite number > 0"), "{err}");
    let mut cfg = tiny();
    cfg.residual_multiplier = f64::INFINITY;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`residual_multiplier`"), "{err}");
}
