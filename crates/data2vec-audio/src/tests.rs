//! Unit tests: config defaults and checks. Parity with `transformers` is checked by the
//! fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use crate::Data2VecAudioConfig;

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Data2VecAudioConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Data2VecAudioConfig::default());
    let back: Data2VecAudioConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.validate().unwrap();
    assert_eq!(cfg.to_wav2vec2().num_conv_pos_embeddings, 19);
}

#[test]
fn bad_conv_lists_are_config_errors() {
    let cfg = Data2VecAudioConfig { conv_stride: vec![5, 2], ..Default::default() };
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("data2vec-audio") && err.contains("same length"), "{err}");
}
