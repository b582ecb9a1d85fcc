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
    let with = |f: &dyn Fn(&mut WavLMConfig)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let msg = invalid(&with(&|c| c.wav2vec2.num_attention_heads = 5));
    assert!(msg.contains("multiple of `num_attention_heads`"), "{msg}");
    let msg = invalid(&with(&|c| c.wav2vec2.conv_stride = vec![5, 2]));
    assert!(msg.contains("`conv_stride`"), "{msg}");
    let msg = invalid(&with(&|c| c.num_buckets = 3));
    assert!(msg.contains("`num_buckets` must be at least 4"), "{msg}");
    let msg = invalid(&with(&|c| {
        c.num_buckets = 40;
        c.max_bucket_distance = 10;
    }));
    assert!(msg.contains("`max_bucket_distance` (10)"), "{msg}");
}

#[test]
fn config_json_reads_the_wavlm_and_the_shared_fields() {
    let config: WavLMConfig = serde_json::from_str(
        r#"{"model_type": "wavlm", "num_buckets": 11, "max_bucket_distance": 12, "hidden_size": 24,
            "num_attention_heads": 3, "num_conv_pos_embedding_groups": 3, "feat_extract_norm": "layer", "do_stable_layer_norm": true}"#,
    )
    .unwrap();
    assert_eq!((config.num_buckets, config.max_bucket_distance), (11, 12));
    assert_eq!(config.wav2vec2.hidden_size, 24);
    assert!(config.wav2vec2.do_stable_layer_norm);
    assert!(config.validate().is_ok());
    let bad: Result<WavLMConfig, _> = serde_json::from_str(r#"{"feat_extract_norm": "batch"}"#);
    assert!(bad.is_err());
}

#[test]
fn the_position_bias_reads_one_bucket_per_offset() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    let config = WavLMConfig { num_buckets: 11, max_bucket_distance: 12, ..WavLMConfig::default() };
    let (heads, d) = (config.wav2vec2.num_attention_heads, config.wav2vec2.hidden_size);
    let dev = Device::Cpu;
    // rel_attn_embed row b holds b + 100 h for head h.
    let embed: Vec<f32> = (0..11).flat_map(|b| (0..heads).map(move |h| (b + 100 * h) as f32)).collect();
    let mut tensors = std::collections::HashMap::new();
    tensors.insert("rel_attn_embed.weight".to_owned(), Tensor::from_vec(embed, (11, heads), &dev).unwrap());
    for name in ["q_proj", "k_proj", "v_proj", "out_proj"] {
        tensors.insert(format!("{name}.weight"), Tensor::zeros((d, d), DType::F32, &dev).unwrap());
        tensors.insert(format!("{name}.bias"), Tensor::zeros(d, DType::F32, &dev).unwrap());
    }
    let hd = d / heads;
    tensors.insert("gru_rel_pos_linear.weight".to_owned(), Tensor::zeros((8, hd), DType::F32, &dev).unwrap());
    tensors.insert("gru_rel_pos_linear.bias".to_owned(), Tensor::zeros(8, DType::F32, &dev).unwrap());
    tensors.insert("gru_rel_pos_const".to_owned(), Tensor::ones((1, heads, 1, 1), DType::F32, &dev).unwrap());
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
    let attention = crate::WavLMAttention::load(vb, &config, true).unwrap();
    let len = 40;
    let bias = attention.position_bias(len, DType::F32).unwrap();
    assert_eq!(bias.dims(), [1, heads, len, len]);
    let head1 = bias.get(0).unwrap().get(1).unwrap().to_vec2::<f32>().unwrap();
    for (q, row) in head1.iter().enumerate() {
        for (k, &value) in row.iter().enumerate() {
            let bucket = relative_position_bucket(k as i64 - q as i64, 11, 12);
            assert_eq!(value, (bucket + 100) as f32, "query {q}, key {k}");
        }
    }
}

/// `WavLMConfig().to_json_string()` of `transformers` 5.25 (every field, as a saved
/// config.json has them) reads as the defaults.
#[test]
fn transformers_default_config_json_reads_as_the_defaults() {
    let config: WavLMConfig = serde_json::from_str(include_str!("../tests/data/wavlm-base-config.json")).unwrap();
    config.validate().unwrap();
    let defaults = WavLMConfig::default();
    assert_eq!((config.num_buckets, config.max_bucket_distance), (320, 800));
    assert_eq!(config.wav2vec2.labels.num_labels(), 2);
    let mut expected = defaults;
    // `transformers` saves the `output_hidden_size` it derived (`hidden_size`).
    expected.wav2vec2.output_hidden_size = Some(768);
    expected.wav2vec2.labels = config.wav2vec2.labels.clone();
    assert_eq!(config, expected);
}
