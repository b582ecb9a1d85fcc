//! Unit tests: config defaults and checks, input checks, frame lengths. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use crate::Wav2Vec2Config;

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Wav2Vec2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Wav2Vec2Config::default());
    let back: Wav2Vec2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.validate().unwrap();
}
