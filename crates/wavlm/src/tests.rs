//! Unit tests: the relative position buckets against `transformers`, config validation.

use autocandle_core::Error;
use serde::Deserialize;

use crate::{relative_position_bucket, WavLMConfig};

#[derive(Deserialize)]
struct BucketCase {
    num_buckets: usize,
    max_distance: usize,
    first_offset: i64,
    buckets: Vec<usize>,
}

/// `WavLMAttention._relative_positions_bucket` for offsets -500..=500, written by
/// `tests/fixtures/make_wavlm_fixtures.py buckets`.
#[test]
fn buckets_match_transformers() {
    let cases: Vec<BucketCase> = serde_json::from_str(include_str!("../tests/data/buckets.json")).unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        assert_eq!(case.buckets.len(), 1001);
        for (i, &want) in case.buckets.iter().enumerate() {
            let offset = case.first_offset + i as i64;
            let got = relative_position_bucket(offset, case.num_buckets, case.max_distance);
            assert_eq!(
                got, want,
                "offset {offset} with num_buckets {} and max_distance {}",
                case.num_buckets, case.max_distance
            );
        }
    }
}

fn invalid(config: &WavLMConfig) -> String {
    match config.validate() {
        Err(Error::InvalidConfig { model_type, message }) => {
            assert_eq!(model_type, "wavlm");
            message
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn defaults_are_valid() {
    WavLMConfig::default().validate().unwrap();
    let config: WavLMConfig = serde_json::from_str(r#"{"model_type": "wavlm"}"#).unwrap();
    assert_eq!(config, WavLMConfig::default());
}

#[test]
fn bad_configs_are_rejected_with_a_reason() {
    let base = WavLMConfig::default();
    let msg = invalid(&WavLMConfig { num_attention_heads: 5, ..base.clone() });
    assert!(msg.contains("multiple of `num_attention_heads`"), "{msg}");
    let msg = invalid(&WavLMConfig { conv_stride: vec![5, 2], ..base.clone() });
    assert!(msg.contains("one entry per convolution"), "{msg}");
    let msg = invalid(&WavLMConfig { feat_extract_norm: "batch".to_owned(), ..base.clone() });
    assert!(msg.contains("`group`, `layer`"), "{msg}");
    let msg = invalid(&WavLMConfig { num_buckets: 3, ..base.clone() });
    assert!(msg.contains("`num_buckets` must be at least 4"), "{msg}");
    let msg = invalid(&WavLMConfig { num_buckets: 40, max_bucket_distance: 10, ..base.clone() });
    assert!(msg.contains("`max_bucket_distance` (10)"), "{msg}");
    let msg = invalid(&WavLMConfig { conv_kernel: vec![10, 3, 3, 3, 3, 2, 0], ..base.clone() });
    assert!(msg.contains("`conv_kernel`"), "{msg}");
    let msg = invalid(&WavLMConfig { num_conv_pos_embedding_groups: 7, ..base.clone() });
    assert!(msg.contains("`num_conv_pos_embedding_groups`"), "{msg}");
    let bad_tdnn = WavLMConfig { tdnn_kernel: vec![5, 3], ..base };
    match bad_tdnn.validate_xvector() {
        Err(Error::InvalidConfig { message, .. }) => assert!(message.contains("one entry per TDNN layer")),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
