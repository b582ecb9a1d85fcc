//! Unit tests: config defaults and parsing, bad configs and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::DecoderConfig;
use autocandle_testing::check_heads;

use crate::OlmoeConfig;

const TINY: &str = r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
    "num_experts": 8, "pad_token_id": 0, "num_labels": 3"#;

/// The tiny config with the `, "key": value` pairs of `extra` set (replacing any in it).
fn with(extra: &str) -> OlmoeConfig {
    let mut value: serde_json::Value = serde_json::from_str(&format!("{TINY}}}")).unwrap();
    let patch: serde_json::Value = serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: OlmoeConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, OlmoeConfig::default());
    let back: OlmoeConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qk_norm_full && !spec.options.qk_norm && spec.options.clip_qkv.is_none());
    let moe = spec.options.moe.unwrap();
    assert_eq!((moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size), (64, 8, 2048));
    let saved: OlmoeConfig = serde_json::from_str(r#"{"num_local_experts": 5}"#).unwrap();
    assert_eq!(saved.num_experts, 5);
    assert_eq!(with(r#", "clip_qkv": 8.0"#).decoder_spec().unwrap().options.clip_qkv, Some(8.0));
}

#[test]
fn bad_settings_are_clear_errors() {
    let err = |extra: &str| with(extra).decoder_spec().unwrap_err().to_string();
    let e = err(r#", "num_experts_per_tok": 9"#);
    assert!(e.contains("`num_experts_per_tok` (9) must be between 1 and `num_experts` (8)"), "{e}");
    let e = err(r#", "num_experts": 0"#);
    assert!(e.contains("`num_experts` must be at least 1"), "{e}");
    let e = err(r#", "clip_qkv": -1.0"#);
    assert!(e.contains("`clip_qkv` must be a finite number > 0"), "{e}");
    let e = err(r#", "hidden_size": 30"#);
    assert!(e.contains("must be a multiple of `num_attention_heads`"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected =
        vec![(Task::Base, "OlmoeModel".to_owned(), "model"), (Task::CausalLm, "OlmoeForCausalLM".to_owned(), "model")];
    check_heads(&with(""), &expected).unwrap();
}
