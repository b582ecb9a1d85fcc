//! Unit tests: config defaults and parsing, the switches Phi sets, bad configs, and the
//! registered heads. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, MlpKind, NormKind, QkLayerNorm};
use autocandle_testing::check_heads;

use crate::PhiConfig;

fn tiny() -> PhiConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: PhiConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, PhiConfig::default());
    let back: PhiConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    // head_dim 64, partial_rotary_factor 0.5 by default.
    assert_eq!((spec.head_dim, spec.rope.rotary_dim, spec.num_key_value_heads), (64, 32, 32));
    let o = &spec.options;
    assert_eq!(o.norm_kind, NormKind::LayerNorm { bias: true });
    assert_eq!(o.mlp_kind, MlpKind::Plain { up: "fc1", down: "fc2" });
    assert!(o.parallel_block && o.lm_head_bias && o.qkv_bias && o.o_bias && o.mlp_bias);
    assert_eq!((o.o_proj_name, o.final_norm_name, o.qk_layernorm), ("dense", "final_layernorm", None));
}

#[test]
fn partial_rotary_factor_and_qk_layernorm_are_read() {
    let mut cfg = tiny();
    cfg.qk_layernorm = true;
    cfg.rope.parameters.partial_rotary_factor = Some(0.75);
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!(spec.rope.rotary_dim, 6);
    assert_eq!(spec.options.qk_layernorm, Some(QkLayerNorm::Shared));
    let top: PhiConfig = serde_json::from_str(r#"{"partial_rotary_factor": 0.25}"#).unwrap();
    assert_eq!(top.decoder_spec().unwrap().rope.rotary_dim, 16);
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = |json: &str| {
        let cfg: PhiConfig = serde_json::from_str(json).unwrap();
        cfg.decoder_spec().unwrap_err().to_string()
    };
    let e = err(r#"{"hidden_size": 30, "num_attention_heads": 4}"#);
    assert!(e.contains("`hidden_size` (30) must be a multiple of `num_attention_heads` (4)"), "{e}");
    let e = err(r#"{"hidden_size": 32, "num_attention_heads": 4, "partial_rotary_factor": 0.1}"#);
    assert!(e.contains("must be even and at least 2"), "{e}");
    let e = err(r#"{"partial_rotary_factor": 1.5}"#);
    assert!(e.contains("`partial_rotary_factor` must be in (0, 1]"), "{e}");
    let e = err(r#"{"num_attention_heads": 32, "num_key_value_heads": 5}"#);
    assert!(e.contains("must be a multiple of `num_key_value_heads` (5)"), "{e}");
    let e = err(r#"{"layer_norm_eps": -1.0}"#);
    assert!(e.contains("`layer_norm_eps` must be a finite number >= 0"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "PhiModel".to_owned(), "model"),
        (Task::CausalLm, "PhiForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "PhiForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "PhiForTokenClassification".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
    let mut cfg = tiny();
    cfg.qk_layernorm = true;
    cfg.tie_word_embeddings = true;
    check_heads(&cfg, &expected).unwrap();
}
