//! Unit tests: config defaults and parsing, the switches StarCoder2 sets, bad configs, and the
//! registered heads. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::{DecoderConfig, LayerType, MlpKind, NormKind};
use autocandle_testing::check_heads;

use crate::Starcoder2Config;

fn tiny() -> Starcoder2Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Starcoder2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Starcoder2Config::default());
    let back: Starcoder2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.head_dim, spec.rope.rotary_dim, spec.num_key_value_heads), (128, 128, 2));
    let o = &spec.options;
    assert_eq!(o.norm_kind, NormKind::LayerNorm { bias: true });
    assert_eq!(o.mlp_kind, MlpKind::Plain { up: "c_fc", down: "c_proj" });
    assert!(o.qkv_bias && o.o_bias && o.mlp_bias && !o.parallel_block && spec.tie_word_embeddings);
    assert_eq!(spec.layer_types, vec![LayerType::Full; 30]);
}

#[test]
fn use_bias_and_sliding_window_are_read() {
    let mut cfg = tiny();
    cfg.use_bias = false;
    cfg.sliding_window = Some(3);
    let spec = cfg.decoder_spec().unwrap();
    assert!(!spec.options.qkv_bias && !spec.options.o_bias && !spec.options.mlp_bias);
    assert_eq!((spec.layer_types, spec.sliding_window), (vec![LayerType::Sliding; 2], Some(3)));
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = |json: &str| {
        let cfg: Starcoder2Config = serde_json::from_str(json).unwrap();
        cfg.decoder_spec().unwrap_err().to_string()
    };
    let e = err(r#"{"sliding_window": 0}"#);
    assert!(e.contains("`sliding_window` must be at least 1"), "{e}");
    let e = err(r#"{"num_key_value_heads": 5}"#);
    assert!(e.contains("must be a multiple of `num_key_value_heads` (5)"), "{e}");
    let e = err(r#"{"norm_epsilon": -1.0}"#);
    assert!(e.contains("`norm_epsilon` must be a finite number >= 0"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "Starcoder2Model".to_owned(), "model"),
        (Task::CausalLm, "Starcoder2ForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "Starcoder2ForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "Starcoder2ForTokenClassification".to_owned(), "model"),
    ];
    check_heads(&tiny(), &expected).unwrap();
    let mut cfg = tiny();
    cfg.use_bias = false;
    cfg.sliding_window = Some(3);
    check_heads(&cfg, &expected).unwrap();
}
