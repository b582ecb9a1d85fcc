//! Unit tests: config parsing and validation, the heads on fresh weights, bad inputs.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForSemanticSegmentation, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{SegformerConfig, SegformerForImageClassification, SegformerForSemanticSegmentation, SegformerModel};

fn tiny() -> SegformerConfig {
    serde_json::from_str(
        r#"{"num_encoder_blocks": 2, "depths": [1, 2], "sr_ratios": [2, 1], "hidden_sizes": [8, 12],
            "patch_sizes": [7, 3], "strides": [4, 2], "num_attention_heads": [1, 3], "mlp_ratios": [2, 2],
            "decoder_hidden_size": 10, "num_labels": 3}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = SegformerConfig>>(cfg: &SegformerConfig) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: SegformerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, SegformerConfig::default());
    assert_eq!((cfg.hidden_sizes[3], cfg.sr_ratios[0], cfg.decoder_hidden_size), (256, 8, 256));
    let alias: SegformerConfig = serde_json::from_str(r#"{"num_hidden_layers": 3}"#).unwrap();
    assert_eq!(alias.num_encoder_blocks, 3);
    cfg.validate().unwrap();
    tiny().validate().unwrap();
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.depths = vec![1];
    assert!(cfg.validate().unwrap_err().to_string().contains("`depths` must have one entry per stage"));
    let mut cfg = tiny();
    cfg.num_attention_heads = vec![3, 3];
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.strides = vec![0, 2];
    assert!(cfg.validate().unwrap_err().to_string().contains("`strides` must be at least 1"));
    let mut cfg = tiny();
    cfg.num_encoder_blocks = 0;
    assert!(cfg.validate().unwrap_err().to_string().contains("`num_encoder_blocks` must be at least 1"));
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: SegformerModel = fresh(&cfg);
    assert_eq!(base.forward(&pixels(2, 3, 36, 52)).unwrap().last_hidden_state.dims(), [2, 12, 5, 7]);
    let cls: SegformerForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&pixels(2, 3, 36, 52)).unwrap().logits.dims(), [2, 3]);
    let seg: SegformerForSemanticSegmentation = fresh(&cfg);
    assert_eq!(seg.forward(&pixels(2, 3, 36, 52)).unwrap().logits.dims(), [2, 3, 9, 13]);

    let mut flat = tiny();
    flat.reshape_last_stage = false;
    let base: SegformerModel = fresh(&flat);
    assert_eq!(base.forward(&pixels(1, 3, 36, 52)).unwrap().last_hidden_state.dims(), [1, 35, 12]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: SegformerModel = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 1, 32, 32)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 32, 32)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 32, 32), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
    // 2x2 pixels: the first stage's map is 1x1, too small for its 2x2 sequence reduction.
    assert!(err(pixels(1, 3, 2, 2)).contains("smaller than the 2x2 convolution kernel"));
}

#[test]
fn semantic_segmentation_needs_labels() {
    let mut cfg = tiny();
    cfg.labels = serde_json::from_str(r#"{"num_labels": 0}"#).unwrap();
    let map = VarMap::new();
    let err = SegformerForSemanticSegmentation::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), &cfg)
        .unwrap_err();
    assert!(err.to_string().contains("at least one label"));
}
