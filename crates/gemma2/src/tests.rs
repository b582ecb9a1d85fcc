//! Unit tests: config defaults and parsing, the alternating layers, and the registered heads.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::Gemma2Config;

fn tiny() -> Gemma2Config {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 16,
            "query_pre_attn_scalar": 24, "sliding_window": 2, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Gemma2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Gemma2Config::default());
    let spec = cfg.decoder_spec().unwrap();
    let o = &spec.options;
    assert!(o.sandwich_norms && o.scale_embeddings);
    assert_eq!((o.attn_logit_softcapping, o.final_logit_softcapping), (Some(50.0), Some(30.0)));
    assert_eq!(o.attention_scale, Some(1.0 / 16.0));
    assert_eq!((spec.sliding_window, spec.layer_types.len()), (Some(4096), 26));
}

#[test]
fn layers_alternate_sliding_and_full_unless_named() {
    let spec = tiny().decoder_spec().unwrap();
    assert_eq!(spec.layer_types, [LayerType::Sliding, LayerType::Full, LayerType::Sliding]);
    assert_eq!(spec.options.attention_scale, Some(24f64.powf(-0.5)));
    let mut cfg = tiny();
    cfg.layer_types = Some(vec!["full_attention".into(); 3]);
    assert!(!cfg.decoder_spec().unwrap().has_sliding_layers());
    cfg.layer_types = Some(vec!["full_attention".into(); 2]);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("`layer_types` has 2 entries"), "{err}");
}

#[test]
fn softcapping_can_be_off_and_must_be_positive() {
    let mut cfg = tiny();
    cfg.attn_logit_softcapping = None;
    cfg.final_logit_softcapping = None;
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.options.attn_logit_softcapping, spec.options.final_logit_softcapping), (None, None));
    cfg.final_logit_softcapping = Some(0.0);
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("final_logit_softcapping"), "{err}");
}

#[test]
fn hidden_size_must_divide_into_heads() {
    let mut cfg = tiny();
    cfg.hidden_size = 30;
    let err = cfg.decoder_spec().unwrap_err().to_string();
    assert!(err.contains("must be a multiple of `num_attention_heads`"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let mut heads = llama_like_heads("Gemma2", "model");
    heads.pop(); // no question answering head
    check_heads(&tiny(), &heads).unwrap();
}
