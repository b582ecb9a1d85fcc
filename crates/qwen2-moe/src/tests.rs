//! Unit tests: config defaults and parsing, sparse and sliding layers, bad configs and the
//! registered heads. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::check_heads;

use crate::Qwen2MoeConfig;

fn tiny() -> Qwen2MoeConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "moe_intermediate_size": 8, "shared_expert_intermediate_size": 12, "num_experts": 4,
            "num_experts_per_tok": 2, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

fn with(edit: &str) -> Qwen2MoeConfig {
    let mut value = serde_json::to_value(tiny()).unwrap();
    let patch: serde_json::Value = serde_json::from_str(edit).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Qwen2MoeConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Qwen2MoeConfig::default());
    let back: Qwen2MoeConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qkv_bias && !spec.options.o_bias && !spec.options.qk_norm);
    let moe = spec.options.moe.unwrap();
    assert_eq!((moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size), (60, 4, 1408));
    assert_eq!(moe.shared_expert_intermediate_size, Some(5632));
}

#[test]
fn sparse_and_sliding_layers_follow_transformers() {
    let spec = |cfg: Qwen2MoeConfig| cfg.decoder_spec().unwrap();
    let moe = spec(with(r#"{"decoder_sparse_step": 2, "mlp_only_layers": [1]}"#)).options.moe.unwrap();
    assert_eq!(moe.sparse_layers, [false, false, false]);
    let moe = spec(with(r#"{"mlp_only_layers": [0]}"#)).options.moe.unwrap();
    assert_eq!(moe.sparse_layers, [false, true, true]);
    // `(i + 1) % 2 and i < max_window_layers`: the even layers below it.
    let sliding = spec(with(r#"{"use_sliding_window": true, "sliding_window": 4, "max_window_layers": 2}"#));
    assert_eq!(sliding.layer_types, [LayerType::Sliding, LayerType::Full, LayerType::Full]);
    assert_eq!(spec(tiny()).layer_types, [LayerType::Full; 3]);
    let named = spec(with(
        r#"{"use_sliding_window": true, "sliding_window": 4,
            "layer_types": ["full_attention", "sliding_attention", "full_attention"]}"#,
    ));
    assert_eq!(named.layer_types, [LayerType::Full, LayerType::Sliding, LayerType::Full]);
}

#[test]
fn bad_expert_settings_are_clear_errors() {
    let err = |edit: &str| with(edit).decoder_spec().unwrap_err().to_string();
    let e = err(r#"{"num_experts_per_tok": 5}"#);
    assert!(e.contains("`num_experts_per_tok` (5) must be between 1 and `num_experts` (4)"), "{e}");
    let e = err(r#"{"shared_expert_intermediate_size": 0}"#);
    assert!(e.contains("`shared_expert_intermediate_size` must be at least 1"), "{e}");
    let e = err(r#"{"mlp_only_layers": [0, 7]}"#);
    assert!(e.contains("`mlp_only_layers` names layer 7"), "{e}");
    let e = err(r#"{"layer_types": ["full_attention"]}"#);
    assert!(e.contains("`layer_types` has 1 entries"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "Qwen2MoeModel".to_owned(), "model"),
        (Task::CausalLm, "Qwen2MoeForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "Qwen2MoeForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "Qwen2MoeForTokenClassification".to_owned(), "model"),
        (Task::QuestionAnswering, "Qwen2MoeForQuestionAnswering".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}
