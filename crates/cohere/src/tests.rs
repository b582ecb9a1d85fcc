//! Unit tests: config defaults and parsing (the default `rope_theta` included), the switches
//! Cohere sets, bad configs, and the registered heads. Parity with `transformers` is checked
//! by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, MlpKind, NormKind, QkLayerNorm};
use autocandle_testing::check_heads;

use crate::CohereConfig;

fn tiny() -> CohereConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: CohereConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, CohereConfig::default());
    let back: CohereConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.head_dim, spec.rope.rotary_dim, spec.num_key_value_heads), (128, 128, 64));
    let o = &spec.options;
    assert_eq!((o.norm_kind, o.mlp_kind), (NormKind::LayerNorm { bias: false }, MlpKind::Gated));
    assert!(o.parallel_block && o.interleaved_rope && spec.tie_word_embeddings && !o.qkv_bias);
    assert_eq!((o.logit_scale, o.qk_layernorm), (Some(0.0625), None));
}

#[test]
fn rope_theta_defaults_to_500000_unless_given() {
    assert_eq!(tiny().rope.parameters.rope_theta, Some(500_000.0));
    for json in [
        r#"{"rope_theta": 7.0}"#,
        r#"{"rope_parameters": {"rope_type": "default", "rope_theta": 7.0}}"#,
        r#"{"rope_theta": 7.0, "rope_scaling": null}"#,
    ] {
        let cfg: CohereConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.rope.parameters.rope_theta, Some(7.0), "{json}");
    }
    let cfg: CohereConfig =
        serde_json::from_str(r#"{"rope_scaling": {"type": "linear", "factor": 2.0}, "num_labels": 4}"#).unwrap();
    assert_eq!(cfg.rope.parameters.rope_theta, Some(500_000.0));
    assert_eq!(cfg.rope.parameters.rope_type(), "linear");
    assert_eq!(cfg.labels.num_labels(), 4);
}

#[test]
fn switches_are_read() {
    let mut cfg = tiny();
    cfg.use_qk_norm = true;
    cfg.attention_bias = true;
    cfg.logit_scale = Some(0.5);
    let spec = cfg.decoder_spec().unwrap();
    let o = &spec.options;
    assert!(o.qkv_bias && o.o_bias);
    assert_eq!((o.qk_layernorm, o.logit_scale), (Some(QkLayerNorm::PerHead), Some(0.5)));
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = |json: &str| {
        let cfg: CohereConfig = serde_json::from_str(json).unwrap();
        cfg.decoder_spec().unwrap_err().to_string()
    };
    let e = err(r#"{"logit_scale": null}"#);
    assert!(e.contains("`logit_scale` must be a number, got null"), "{e}");
    let e = err(r#"{"num_key_value_heads": 5}"#);
    assert!(e.contains("must be a multiple of `num_key_value_heads` (5)"), "{e}");
    let e = err(r#"{"layer_norm_eps": -1.0}"#);
    assert!(e.contains("`layer_norm_eps` must be a finite number >= 0"), "{e}");
    let e = err(r#"{"rope_theta": 0.5}"#);
    assert!(e.contains("`rope_theta` must be a finite number > 1"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "CohereModel".to_owned(), "model"),
        (Task::CausalLm, "CohereForCausalLM".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
    let mut cfg = tiny();
    cfg.use_qk_norm = true;
    cfg.attention_bias = true;
    cfg.tie_word_embeddings = false;
    check_heads(&cfg, &expected).unwrap();
}
