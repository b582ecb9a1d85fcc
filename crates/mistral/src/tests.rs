//! Unit tests: config defaults and parsing, the sliding window, and the registered heads.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::MistralConfig;

fn tiny() -> MistralConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "sliding_window": 2, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: MistralConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, MistralConfig::default());
    assert_eq!((cfg.intermediate_size, cfg.max_position_embeddings, cfg.sliding_window), (14336, 131072, Some(4096)));
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.num_key_value_heads, spec.head_dim), (8, 128));
    assert_eq!(spec.sliding_window, Some(4096));
    assert!(spec.layer_types.iter().all(|t| *t == LayerType::Sliding));
}

#[test]
fn a_null_window_attends_everywhere_and_layer_types_are_ignored() {
    // Mistral-7B-v0.2 and later save `"sliding_window": null`.
    let cfg: MistralConfig = serde_json::from_str(
        r#"{"sliding_window": null, "rope_theta": 1000000.0, "head_dim": 128, "hidden_size": 5120,
            "num_attention_heads": 32, "layer_types": ["sliding_attention"]}"#,
    )
    .unwrap();
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!(spec.sliding_window, None);
    assert!(spec.layer_types.iter().all(|t| *t == LayerType::Full));
    assert_eq!((spec.head_dim, spec.rope.rotary_dim), (128, 128));
    let back: MistralConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn every_head_is_registered_and_runs() {
    check_heads(&tiny(), &llama_like_heads("Mistral", "model")).unwrap();
}
