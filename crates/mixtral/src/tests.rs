//! Unit tests: config defaults (rope base 1e6) and parsing, bad configs and the registered
//! heads. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::check_heads;

use crate::MixtralConfig;

const TINY: &str = r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
    "num_local_experts": 4, "pad_token_id": 0, "num_labels": 3"#;

/// The tiny config with the `, "key": value` pairs of `extra` set (replacing any in it).
fn with(extra: &str) -> MixtralConfig {
    let mut value: serde_json::Value = serde_json::from_str(&format!("{TINY}}}")).unwrap();
    let patch: serde_json::Value = serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: MixtralConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, MixtralConfig::default());
    assert_eq!(cfg.rope.parameters.theta(), 1e6);
    let back: MixtralConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let moe = cfg.decoder_spec().unwrap().options.moe.unwrap();
    assert!(moe.norm_topk_prob && moe.f32_routing_weights);
    assert_eq!((moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size), (8, 2, 14336));
}

#[test]
fn config_reads_rope_and_expert_keys() {
    assert_eq!(with(r#", "rope_theta": 5000.0"#).rope.parameters.theta(), 5000.0);
    let saved = with(r#", "rope_parameters": {"rope_type": "default", "rope_theta": 2000.0}"#);
    assert_eq!(saved.rope.parameters.theta(), 2000.0);
    assert_eq!(with("").rope.parameters.theta(), 1e6);
    let cfg: MixtralConfig = serde_json::from_str(r#"{"num_experts": 3}"#).unwrap();
    assert_eq!(cfg.num_local_experts, 3);
    let spec = with(r#", "sliding_window": 4"#).decoder_spec().unwrap();
    assert_eq!((spec.layer_types.as_slice(), spec.sliding_window), ([LayerType::Sliding; 2].as_slice(), Some(4)));
}

#[test]
fn bad_expert_settings_are_clear_errors() {
    let err = |extra: &str| with(extra).decoder_spec().unwrap_err().to_string();
    let e = err(r#", "num_experts_per_tok": 5"#);
    assert!(e.contains("`num_experts_per_tok` (5) must be between 1 and `num_experts` (4)"), "{e}");
    let e = err(r#", "num_local_experts": 0"#);
    assert!(e.contains("`num_experts` must be at least 1"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "MixtralModel".to_owned(), "model"),
        (Task::CausalLm, "MixtralForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "MixtralForSequenceClassification".to_owned(), "model"),
    ];
    check_heads(&with(""), &expected).unwrap();
}
