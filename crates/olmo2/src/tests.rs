//! Unit tests: config defaults and parsing, and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, NormStyle};
use autocandle_testing::check_heads;

use crate::Olmo2Config;

fn tiny() -> Olmo2Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Olmo2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Olmo2Config::default());
    let back: Olmo2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.decoder_spec().unwrap();
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "Olmo2Model".to_owned(), "model"),
        (Task::CausalLm, "Olmo2ForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "Olmo2ForSequenceClassification".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}

#[test]
fn post_norms_and_whole_projection_qk_norms() {
    let spec = tiny().decoder_spec().unwrap();
    let o = &spec.options;
    assert!(o.post_norms && o.qk_norm_full && !o.qk_norm && !o.sandwich_norms);
    assert_eq!(o.norm_style, NormStyle::WeightInF32);
    assert_eq!(spec.rms_norm_eps, 1e-5);
}

#[test]
fn bad_configs_are_clear_errors() {
    let mut cfg = tiny();
    cfg.num_key_value_heads = Some(3);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("must be a multiple of `num_key_value_heads`"), "{err}");
    let mut spec = tiny().decoder_spec().unwrap();
    spec.options.qk_norm = true;
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("cannot both be on"), "{err}");
}
