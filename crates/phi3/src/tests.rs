//! Unit tests: config defaults and parsing, the legacy rope types, partial rotary, and the
//! registered heads. Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::Phi3Config;

fn tiny() -> Phi3Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "original_max_position_embeddings": 8, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Phi3Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Phi3Config::default());
    let spec = cfg.decoder_spec().unwrap();
    let o = &spec.options;
    assert!(o.fused_qkv && o.fused_gate_up && o.longrope_cache_reset);
    assert_eq!((spec.head_dim, spec.num_key_value_heads, spec.sliding_window), (96, 32, None));
    assert_eq!(spec.rope.rotary_dim, 96);
}

#[test]
fn legacy_su_and_yarn_read_as_longrope() {
    for legacy in ["su", "yarn", "longrope"] {
        let json = format!(
            r#"{{"hidden_size": 32, "num_attention_heads": 4, "max_position_embeddings": 64,
                "original_max_position_embeddings": 8,
                "rope_scaling": {{"type": "{legacy}", "short_factor": [1, 1, 1, 1], "long_factor": [2, 2, 2, 2]}}}}"#
        );
        let cfg: Phi3Config = serde_json::from_str(&json).unwrap();
        let spec = cfg.decoder_spec().unwrap();
        assert_eq!(spec.rope.long_context_threshold(), Some(8), "{legacy}");
    }
    let cfg: Phi3Config = serde_json::from_str(r#"{"rope_scaling": {"type": "linear", "factor": 2.0}}"#).unwrap();
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("unknown rope type `linear`"), "{err}");
}

#[test]
fn partial_rotary_factor_rotates_part_of_each_head() {
    let mut cfg = tiny();
    cfg.rope.parameters.partial_rotary_factor = Some(0.5);
    assert_eq!(cfg.decoder_spec().unwrap().rope.rotary_dim, 4);
}

#[test]
fn sliding_window_applies_to_every_layer() {
    let mut cfg = tiny();
    cfg.sliding_window = Some(3);
    assert_eq!(cfg.decoder_spec().unwrap().layer_types, [LayerType::Sliding; 2]);
}

#[test]
fn every_head_is_registered_and_runs() {
    let mut heads = llama_like_heads("Phi3", "model");
    heads.pop(); // no question answering head
    check_heads(&tiny(), &heads).unwrap();
}
