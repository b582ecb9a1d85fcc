//! Unit tests: config parsing and validation, the backbone's stage selection, and the heads
//! on fresh weights. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{LayerType, ResNetBackbone, ResNetConfig, ResNetForImageClassification, ResNetModel};

fn tiny(layer_type: &str) -> ResNetConfig {
    serde_json::from_str(&format!(
        r#"{{"embedding_size": 8, "hidden_sizes": [8, 12, 16], "depths": [1, 2, 1], "layer_type": "{layer_type}",
            "num_labels": 3, "out_features": ["stem", "stage2", "stage3"]}}"#
    ))
    .unwrap()
}

fn vb(map: &VarMap) -> VarBuilder<'static> {
    VarBuilder::from_varmap(map, DType::F32, &Device::Cpu)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> Tensor {
    Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: ResNetConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, ResNetConfig::default());
    assert_eq!(cfg.out_stage_indices().unwrap(), [4]);
    assert_eq!(cfg.stage_names(), ["stem", "stage1", "stage2", "stage3", "stage4"]);
    assert_eq!(tiny("basic").layer_type, LayerType::Basic);
    let back: ResNetConfig = serde_json::from_value(serde_json::to_value(tiny("basic")).unwrap()).unwrap();
    assert_eq!(back, tiny("basic"));
}

#[test]
fn out_features_and_indices_align_as_transformers() {
    let mut cfg = tiny("basic");
    assert_eq!(cfg.out_stage_indices().unwrap(), [0, 2, 3]);
    cfg.out_indices = Some(vec![0, -2, -1]);
    assert_eq!(cfg.out_stage_indices().unwrap(), [0, 2, 3]);
    cfg.out_indices = Some(vec![1]);
    assert!(cfg.validate().unwrap_err().to_string().contains("name different stages"));
    cfg.out_features = Some(vec!["stage9".into()]);
    cfg.out_indices = None;
    assert!(cfg.validate().unwrap_err().to_string().contains("`stage9`, which is none of"));
    cfg.out_features = Some(vec!["stage2".into(), "stage1".into()]);
    assert!(cfg.validate().unwrap_err().to_string().contains("in the order of the stages"));
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny("bottleneck");
    cfg.depths.push(1);
    assert!(cfg.validate().unwrap_err().to_string().contains("one of each per stage"));
    let mut cfg = tiny("bottleneck");
    cfg.hidden_sizes[0] = 2;
    assert!(cfg.validate().unwrap_err().to_string().contains("needs at least 4 channels"));
    let bad: Result<ResNetConfig, _> = serde_json::from_str(r#"{"layer_type": "wide"}"#);
    assert!(bad.is_err());
}

#[test]
fn heads_and_backbone_run_on_fresh_weights() {
    for layer_type in ["basic", "bottleneck"] {
        let cfg = tiny(layer_type);
        let map = VarMap::new();
        let base = ResNetModel::load(vb(&map), &cfg).unwrap();
        let out = base.forward(&ModelInputs::from_pixel_values(pixels(2, 3, 37, 45))).unwrap();
        // 37x45 -> stem 19x23 -> pool 10x12 -> stage2 5x6 -> stage3 3x3.
        assert_eq!(out.last_hidden_state.dims(), [2, 16, 3, 3]);
        assert_eq!(out.pooler_output.unwrap().dims(), [2, 16, 1, 1]);
        let backbone = ResNetBackbone::load(vb(&map), &cfg).unwrap();
        let maps = backbone.forward(&pixels(2, 3, 37, 45)).unwrap();
        let dims: Vec<_> = maps.iter().map(|m| m.dims().to_vec()).collect();
        assert_eq!(dims, [vec![2, 8, 10, 12], vec![2, 12, 5, 6], vec![2, 16, 3, 3]]);
        assert_eq!(backbone.channels(), [8, 12, 16]);
        let map = VarMap::new();
        let cls = ResNetForImageClassification::load(vb(&map), &cfg).unwrap();
        let logits = cls.forward(&ModelInputs::from_pixel_values(pixels(2, 3, 5, 3))).unwrap().logits;
        assert_eq!(logits.dims(), [2, 3]);
    }
}

#[test]
fn bad_pixel_values_are_errors() {
    let map = VarMap::new();
    let base = ResNetModel::load(vb(&map), &tiny("basic")).unwrap();
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(ModelInputs::from_pixel_values(pixels(1, 1, 8, 8))).contains("1 channels but the model takes 3"));
    assert!(err(ModelInputs::from_pixel_values(pixels(0, 3, 8, 8))).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 12, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
}
