//! Unit tests: config parsing and validation, the backbone, and the heads on fresh weights.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{ConvNextBackbone, ConvNextConfig, ConvNextForImageClassification, ConvNextModel, Size2, Variant};

fn tiny() -> ConvNextConfig {
    serde_json::from_str(
        r#"{"hidden_sizes": [8, 12, 16], "depths": [1, 2, 1], "num_stages": 3, "patch_size": 2,
            "num_labels": 3, "out_indices": [0, 2, 3]}"#,
    )
    .unwrap()
}

fn vb(map: &VarMap) -> VarBuilder<'static> {
    VarBuilder::from_varmap(map, DType::F32, &Device::Cpu)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: ConvNextConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, ConvNextConfig::default());
    assert_eq!((cfg.last_hidden_size(), cfg.layer_norm_eps), (768, 1e-12));
    let cfg: ConvNextConfig = serde_json::from_str(r#"{"patch_size": [2, 3]}"#).unwrap();
    assert_eq!(cfg.patch_size, Size2::HeightWidth([2, 3]));
    let back: ConvNextConfig = serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap();
    assert_eq!(back, tiny());
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_stages = 4;
    assert!(cfg.validate("convnext").unwrap_err().to_string().contains("give one per stage"));
    let mut cfg = tiny();
    cfg.patch_size = Size2::Square(0);
    assert!(cfg.validate("convnext").unwrap_err().to_string().contains("`patch_size` must be at least 1"));
}

#[test]
fn heads_and_backbone_run_on_fresh_weights() {
    let cfg = tiny();
    let map = VarMap::new();
    let base = ConvNextModel::load(vb(&map), &cfg).unwrap();
    let out = base.forward(&pixels(2, 3, 37, 45)).unwrap();
    // 37x45 -> patch 18x22 -> 9x11 -> 4x5.
    assert_eq!(out.last_hidden_state.dims(), [2, 16, 4, 5]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 16]);
    let backbone = ConvNextBackbone::load(vb(&map), &cfg, Variant::V1).unwrap();
    let maps = backbone.forward(&pixels(2, 3, 37, 45).pixel_values.unwrap()).unwrap();
    let dims: Vec<_> = maps.iter().map(|m| m.dims().to_vec()).collect();
    assert_eq!(dims, [vec![2, 8, 18, 22], vec![2, 12, 9, 11], vec![2, 16, 4, 5]]);
    assert_eq!(backbone.channels(), [8, 12, 16]);
    let map = VarMap::new();
    let cls = ConvNextForImageClassification::load(vb(&map), &cfg).unwrap();
    assert_eq!(cls.forward(&pixels(2, 3, 8, 8)).unwrap().logits.dims(), [2, 3]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let map = VarMap::new();
    let base = ConvNextModel::load(vb(&map), &tiny()).unwrap();
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 7, 8)).contains("need at least 8x8 pixels"));
    assert!(err(pixels(1, 1, 8, 8)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 8, 8)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
}
