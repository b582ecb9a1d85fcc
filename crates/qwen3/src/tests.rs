//! Unit tests: config defaults and parsing, q/k norms and head_dim, and the registered heads.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::Qwen3Config;

fn tiny() -> Qwen3Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 16,
            "layer_types": ["full_attention", "sliding_attention"], "use_sliding_window": true,
            "sliding_window": 2, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Qwen3Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Qwen3Config::default());
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qk_norm && !spec.options.qkv_bias && !spec.options.o_bias);
    assert_eq!((spec.head_dim, spec.num_key_value_heads, spec.sliding_window), (128, 32, None));
}

#[test]
fn config_reads_a_qwen3_config_json() {
    // The shape of Qwen/Qwen3-0.6B's config.json: head_dim 128 with 16 heads of 1024.
    let json = r#"{
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
        "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
        "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
        "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
    }"#;
    let cfg: Qwen3Config = serde_json::from_str(json).unwrap();
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.head_dim, spec.num_attention_heads * spec.head_dim, spec.hidden_size), (128, 2048, 1024));
    assert_eq!(cfg.rope.parameters.theta(), 1e6);
    assert!(spec.tie_word_embeddings);
    assert_eq!(tiny().decoder_spec().unwrap().layer_types, [LayerType::Full, LayerType::Sliding]);
    let back: Qwen3Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn every_head_is_registered_and_runs() {
    check_heads(&tiny(), &llama_like_heads("Qwen3", "transformer")).unwrap();
}
