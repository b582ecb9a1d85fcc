//! Unit tests: config defaults and checks, input checks, frame lengths and masks. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForCtc, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{feature_vector_lengths, FeatExtractNorm, Wav2Vec2Config, Wav2Vec2ForCtc};
use autocandle_core::LoadModel;

fn tiny() -> Wav2Vec2Config {
    serde_json::from_str(
        r#"{"vocab_size": 7, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 12, "conv_dim": [4, 4], "conv_stride": [3, 2], "conv_kernel": [5, 3],
            "num_conv_pos_embeddings": 4, "num_conv_pos_embedding_groups": 2}"#,
    )
    .unwrap()
}

fn err_of(cfg: Wav2Vec2Config) -> String {
    cfg.validate().unwrap_err().to_string()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Wav2Vec2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Wav2Vec2Config::default());
    let back: Wav2Vec2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.validate().unwrap();
    assert_eq!(cfg.min_samples(), 400);
    // 1 s at 16 kHz makes 49 frames in wav2vec2-base.
    assert_eq!(cfg.feat_extract_output_length(16_000, false), 49);
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = err_of(Wav2Vec2Config { conv_stride: vec![5], ..tiny() });
    assert!(err.contains("wav2vec2") && err.contains("same length") && err.contains("got 2, 1 and 2"), "{err}");
    let err = err_of(Wav2Vec2Config { conv_kernel: vec![5], ..tiny() });
    assert!(err.contains("`conv_dim`, `conv_stride` and `conv_kernel` must have the same length"), "{err}");
    let err = err_of(Wav2Vec2Config { num_attention_heads: 3, ..tiny() });
    assert!(err.contains("multiple of `num_attention_heads` (3)"), "{err}");
    let err = err_of(Wav2Vec2Config { num_conv_pos_embedding_groups: 3, ..tiny() });
    assert!(err.contains("`num_conv_pos_embedding_groups` (3)"), "{err}");
    let err = err_of(Wav2Vec2Config { conv_dim: vec![], conv_stride: vec![], conv_kernel: vec![], ..tiny() });
    assert!(err.contains("`conv_dim` is empty"), "{err}");
    let err = err_of(Wav2Vec2Config { conv_stride: vec![3, 0], ..tiny() });
    assert!(err.contains("`conv_stride[1]` must be at least 1"), "{err}");
    let err = err_of(Wav2Vec2Config { num_conv_pos_embeddings: 0, ..tiny() });
    assert!(err.contains("`num_conv_pos_embeddings` must be at least 1"), "{err}");
    let err =
        Wav2Vec2Config { tdnn_kernel: vec![3], ..tiny() }.validate_xvector_as("wav2vec2").unwrap_err().to_string();
    assert!(err.contains("`tdnn_dim`, `tdnn_kernel` and `tdnn_dilation` must have the same"), "{err}");
    // Unknown names are serde errors naming the field.
    assert!(serde_json::from_str::<Wav2Vec2Config>(r#"{"feat_extract_norm": "batch"}"#).is_err());
    assert!(serde_json::from_str::<Wav2Vec2Config>(r#"{"hidden_act": "nope"}"#).is_err());
    let layer: Wav2Vec2Config = serde_json::from_str(r#"{"feat_extract_norm": "layer"}"#).unwrap();
    assert_eq!(layer.feat_extract_norm, FeatExtractNorm::Layer);
}

fn tiny_ctc() -> Wav2Vec2ForCtc {
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    Wav2Vec2ForCtc::load(vb, &tiny()).unwrap()
}

#[test]
fn bad_inputs_are_clear_errors() {
    let model = tiny_ctc();
    let cpu = &Device::Cpu;
    let short = ModelInputs::from_input_values(Tensor::zeros((1, 10), DType::F32, cpu).unwrap());
    let err = model.forward(&short).unwrap_err().to_string();
    assert!(err.contains("10 samples, fewer than the 11"), "{err}");
    let rank3 = ModelInputs::from_input_values(Tensor::zeros((1, 1, 40), DType::F32, cpu).unwrap());
    let err = model.forward(&rank3).unwrap_err().to_string();
    assert!(err.contains("[batch, samples]") && err.contains("[1, 1, 40]"), "{err}");
    let mask = Tensor::ones((2, 40), DType::I64, cpu).unwrap();
    let mismatched =
        ModelInputs::from_input_values(Tensor::zeros((2, 41), DType::F32, cpu).unwrap()).with_attention_mask(mask);
    let err = model.forward(&mismatched).unwrap_err().to_string();
    assert!(err.contains("`attention_mask` has shape [2, 40]"), "{err}");
    let missing = ModelInputs::default();
    assert!(model.forward(&missing).unwrap_err().to_string().contains("input_values"));
    let ok = ModelInputs::from_input_values(Tensor::zeros((2, 40), DType::F32, cpu).unwrap());
    let logits = model.forward(&ok).unwrap().logits;
    assert_eq!(logits.dims(), [2, 5, 7]);
}

#[test]
fn frame_lengths_follow_transformers() {
    let cfg = tiny();
    // 40 samples: (40 - 5) / 3 + 1 = 12, (12 - 3) / 2 + 1 = 5 frames.
    assert_eq!(cfg.feat_extract_output_length(40, false), 5);
    assert_eq!(cfg.feat_extract_output_length(3, false), -1);
    let mut mask = vec![1i64; 80];
    mask[60..].fill(0);
    let mask = Tensor::from_vec(mask, (2, 40), &Device::Cpu).unwrap();
    // Row 0: 40 real samples, row 1: 20 ((20 - 5) / 3 + 1 = 6, (6 - 3) / 2 + 1 = 2).
    assert_eq!(feature_vector_lengths(&cfg, 5, &mask, false).unwrap(), vec![5, 2]);
    // Python's `mask[b, n - 1] = 1` wraps a 0-frame clip to the last frame: every frame real.
    let one = Tensor::from_vec(vec![1i64, 1, 1, 1, 0, 0, 0, 0, 0, 0], (1, 10), &Device::Cpu).unwrap();
    assert_eq!(feature_vector_lengths(&cfg, 5, &one, false).unwrap(), vec![4]);
}
