//! Unit tests: config defaults and parsing, biases and sliding-window layers, and the
//! registered heads. Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Error;
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::Qwen2Config;

fn tiny() -> Qwen2Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "use_sliding_window": true, "sliding_window": 2, "max_window_layers": 1,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Qwen2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Qwen2Config::default());
    assert_eq!((cfg.vocab_size, cfg.max_position_embeddings, cfg.max_window_layers), (151936, 32768, 28));
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qkv_bias && !spec.options.o_bias && !spec.options.qk_norm);
    assert_eq!((spec.num_key_value_heads, spec.head_dim), (32, 128));
    // `use_sliding_window` is off: the window is ignored.
    assert_eq!(spec.sliding_window, None);
    assert!(spec.layer_types.iter().all(|t| *t == LayerType::Full));
}

#[test]
fn sliding_layers_follow_max_window_layers_or_layer_types() {
    let spec = tiny().decoder_spec().unwrap();
    assert_eq!(spec.sliding_window, Some(2));
    assert_eq!(spec.layer_types, [LayerType::Full, LayerType::Sliding, LayerType::Sliding]);

    let cfg = Qwen2Config {
        layer_types: Some(vec!["sliding_attention".into(), "full_attention".into(), "full_attention".into()]),
        ..tiny()
    };
    assert_eq!(cfg.decoder_spec().unwrap().layer_types, [LayerType::Sliding, LayerType::Full, LayerType::Full]);
    // Sliding layers without `use_sliding_window` have no window: transformers fails too.
    let err = Qwen2Config { use_sliding_window: false, ..cfg }.decoder_spec().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("use_sliding_window"), "{err}");

    // `head_dim` is not declared but honoured, as transformers keeps it as an attribute.
    let cfg: Qwen2Config = serde_json::from_str(
        r#"{"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 32}"#,
    )
    .unwrap();
    assert_eq!(cfg.decoder_spec().unwrap().head_dim, 32);
    let back: Qwen2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn every_head_is_registered_and_runs() {
    check_heads(&tiny(), &llama_like_heads("Qwen2", "transformer")).unwrap();
}
