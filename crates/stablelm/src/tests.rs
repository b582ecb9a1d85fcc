//! Unit tests: config defaults and parsing, the switches StableLM sets, bad configs, and the
//! registered heads. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, MlpKind, NormKind, QkLayerNorm};
use autocandle_testing::check_heads;

use crate::StableLmConfig;

fn tiny() -> StableLmConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3, "partial_rotary_factor": 0.5}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: StableLmConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, StableLmConfig::default());
    let back: StableLmConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    // head_dim 80, partial_rotary_factor 0.25 by default.
    assert_eq!((spec.head_dim, spec.rope.rotary_dim), (80, 20));
    let o = &spec.options;
    assert_eq!((o.norm_kind, o.mlp_kind), (NormKind::LayerNorm { bias: true }, MlpKind::Gated));
    assert!(!o.qkv_bias && !o.o_bias && !o.mlp_bias && !o.parallel_block && o.qk_layernorm.is_none());
}

#[test]
fn switches_are_read() {
    let mut cfg = tiny();
    cfg.use_qkv_bias = true;
    cfg.qk_layernorm = true;
    cfg.use_parallel_residual = true;
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!(spec.rope.rotary_dim, 4);
    let o = &spec.options;
    assert!(o.qkv_bias && o.parallel_block);
    assert_eq!(o.qk_layernorm, Some(QkLayerNorm::PerHeadList));
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = |json: &str| {
        let cfg: StableLmConfig = serde_json::from_str(json).unwrap();
        cfg.decoder_spec().unwrap_err().to_string()
    };
    let e = err(r#"{"hidden_size": 30, "num_attention_heads": 4}"#);
    assert!(e.contains("`hidden_size` (30) must be a multiple of `num_attention_heads` (4)"), "{e}");
    let e = err(r#"{"num_key_value_heads": 5}"#);
    assert!(e.contains("must be a multiple of `num_key_value_heads` (5)"), "{e}");
    let e = err(r#"{"partial_rotary_factor": 0.0}"#);
    assert!(e.contains("`partial_rotary_factor` must be in (0, 1]"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "StableLmModel".to_owned(), "model"),
        (Task::CausalLm, "StableLmForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "StableLmForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "StableLmForTokenClassification".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
    let mut cfg = tiny();
    cfg.qk_layernorm = true;
    cfg.use_parallel_residual = true;
    cfg.use_qkv_bias = true;
    check_heads(&cfg, &expected).unwrap();
}
