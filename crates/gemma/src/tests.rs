//! Unit tests: config defaults and parsing, the legacy `gelu`, and the registered heads.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Activation;
use autocandle_decoder::{DecoderConfig, NormStyle};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::GemmaConfig;

fn tiny() -> GemmaConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: GemmaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GemmaConfig::default());
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!(spec.options.norm_style, NormStyle::OnePlusWeight);
    assert!(spec.options.scale_embeddings && spec.tie_word_embeddings);
    assert_eq!((spec.head_dim, spec.num_key_value_heads, spec.hidden_act), (256, 16, Activation::GeluTanh));
}

#[test]
fn legacy_gelu_reads_as_the_tanh_approximation() {
    // google/gemma-2b's config.json says `"hidden_act": "gelu"`.
    let cfg: GemmaConfig = serde_json::from_str(r#"{"hidden_act": "gelu", "head_dim": 256}"#).unwrap();
    assert_eq!(cfg.hidden_act, Activation::GeluTanh);
    let cfg: GemmaConfig = serde_json::from_str(r#"{"hidden_act": "silu"}"#).unwrap();
    assert_eq!(cfg.hidden_act, Activation::Silu);
    let back: GemmaConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn bidirectional_attention_is_refused() {
    let cfg: GemmaConfig = serde_json::from_str(r#"{"use_bidirectional_attention": true}"#).unwrap();
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("use_bidirectional_attention"), "{err}");
    let cfg: GemmaConfig = serde_json::from_str(r#"{"use_bidirectional_attention": false}"#).unwrap();
    cfg.decoder_spec().unwrap();
}

#[test]
fn every_head_is_registered_and_runs() {
    let mut heads = llama_like_heads("Gemma", "model");
    heads.pop(); // no question answering head
    check_heads(&tiny(), &heads).unwrap();
}
