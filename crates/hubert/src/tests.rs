//! Unit tests: config defaults and checks. Parity with `transformers` is checked by the
//! fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use crate::HubertConfig;

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: HubertConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, HubertConfig::default());
    let back: HubertConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.validate().unwrap();
}

#[test]
fn hubert_switches_and_shared_fields_parse() {
    let cfg: HubertConfig = serde_json::from_str(
        r#"{"hidden_size": 16, "feat_proj_layer_norm": false, "conv_pos_batch_norm": true, "num_labels": 3}"#,
    )
    .unwrap();
    assert!(!cfg.feat_proj_layer_norm && cfg.conv_pos_batch_norm);
    assert_eq!(cfg.wav2vec2.hidden_size, 16);
    assert_eq!(cfg.wav2vec2.labels.num_labels(), 3);
    let err = HubertConfig {
        wav2vec2: autocandle_wav2vec2::Wav2Vec2Config { hidden_size: 10, ..Default::default() },
        ..Default::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("hubert") && err.contains("num_attention_heads"), "{err}");
}
