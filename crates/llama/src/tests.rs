//! Unit tests: config defaults and parsing, the decoder settings each field turns into, and
//! the registered heads. Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Activation, Error};
use autocandle_decoder::{DecoderConfig, LayerType, RopeKind, TokenIds};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::LlamaConfig;

fn tiny() -> LlamaConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: LlamaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, LlamaConfig::default());
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.max_position_embeddings), (32000, 4096, 2048));
    assert_eq!(cfg.eos_token_id, Some(TokenIds::One(2)));
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.num_key_value_heads, spec.head_dim, spec.rms_norm_eps), (32, 128, 1e-6));
    assert_eq!(spec.hidden_act, Activation::Silu);
    assert_eq!(spec.max_positions(), Some(2048));
    assert!(spec.layer_types.iter().all(|t| *t == LayerType::Full));
    assert!(!spec.options.qkv_bias && !spec.options.mlp_bias && !spec.tie_word_embeddings);
}

#[test]
fn config_reads_a_llama_3_config_json() {
    // The shape of meta-llama/Llama-3.1-8B's config.json (transformers 4.x spelling).
    let json = r#"{
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
    }"#;
    let cfg: LlamaConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.eos_token_id, Some(TokenIds::Many(vec![128001, 128008, 128009])));
    assert_eq!(cfg.rope.parameters.rope_type(), "llama3");
    assert_eq!(cfg.rope.parameters.theta(), 500000.0);
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.num_key_value_heads, spec.head_dim, spec.rope.rotary_dim), (8, 128, 128));
    assert!(matches!(spec.rope.kind, RopeKind::Fixed { .. }));
    // Written back in the transformers 5 form, and read again unchanged.
    let back: LlamaConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn options_and_validation() {
    let cfg = LlamaConfig { attention_bias: true, mlp_bias: true, head_dim: Some(16), ..tiny() };
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qkv_bias && spec.options.o_bias && spec.options.mlp_bias);
    assert_eq!(spec.head_dim, 16);

    // `validate_architecture`: hidden_size must divide by the heads even with head_dim given.
    let err = LlamaConfig { hidden_size: 30, head_dim: Some(8), ..tiny() }.decoder_spec().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let err = LlamaConfig { num_key_value_heads: Some(3), ..tiny() }.decoder_spec().unwrap_err();
    assert!(err.to_string().contains("num_key_value_heads"), "{err}");
    let err = serde_json::from_str::<LlamaConfig>(r#"{"rope_scaling": {"type": "ntk-by-parts", "factor": 2}}"#)
        .unwrap()
        .decoder_spec()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("ntk-by-parts"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    check_heads(&tiny(), &llama_like_heads("Llama", "transformer")).unwrap();
}
