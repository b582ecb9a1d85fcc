//! Unit tests: config parsing and validation, the model on fresh weights, bad inputs.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForDepthEstimation, LoadModel, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{DepthAnythingConfig, DepthAnythingForDepthEstimation, DepthEstimationType};

fn tiny() -> DepthAnythingConfig {
    serde_json::from_str(
        r#"{"backbone_config": {"model_type": "dinov2", "hidden_size": 12, "num_hidden_layers": 4,
              "num_attention_heads": 3, "mlp_ratio": 2, "image_size": 16, "patch_size": 4,
              "out_indices": [1, 2, 3, 4], "reshape_hidden_states": false},
            "patch_size": 4, "reassemble_hidden_size": 12, "neck_hidden_sizes": [5, 6, 7, 9],
            "fusion_hidden_size": 8, "head_hidden_size": 6}"#,
    )
    .unwrap()
}

fn load(cfg: &DepthAnythingConfig) -> autocandle_core::Result<DepthAnythingForDepthEstimation> {
    let map = VarMap::new();
    DepthAnythingForDepthEstimation::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: DepthAnythingConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, DepthAnythingConfig::default());
    assert_eq!(
        (cfg.patch_size, cfg.fusion_hidden_size, cfg.depth_estimation_type),
        (14, 64, DepthEstimationType::Relative)
    );
    let backbone = cfg.backbone().unwrap();
    assert_eq!((backbone.hidden_size, backbone.out_indices().unwrap()), (384, vec![9, 10, 11, 12]));
    assert!(!backbone.reshape_hidden_states);
    cfg.validate().unwrap();
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.backbone_config = Some(serde_json::json!({"model_type": "swin"}));
    assert!(load(&cfg).unwrap_err().to_string().contains("`swin` backbone is not supported"));
    let mut cfg = tiny();
    cfg.neck_hidden_sizes = vec![5, 6];
    cfg.reassemble_factors = vec![4.0, 2.0];
    assert!(load(&cfg).unwrap_err().to_string().contains("the backbone outputs 4 stages"));
    let mut cfg = tiny();
    cfg.head_in_index = -5;
    assert!(cfg.validate().unwrap_err().to_string().contains("`head_in_index`"));
    let mut cfg = tiny();
    cfg.depth_estimation_type = DepthEstimationType::Metric;
    cfg.max_depth = None;
    assert!(load(&cfg).unwrap_err().to_string().contains("`max_depth`"));
    assert!(serde_json::from_str::<DepthAnythingConfig>(r#"{"depth_estimation_type": "absolute"}"#).is_err());
}

#[test]
fn runs_on_fresh_weights() {
    let model = load(&tiny()).unwrap();
    assert_eq!(model.forward(&pixels(2, 3, 22, 18)).unwrap().predicted_depth.dims(), [2, 20, 16]);
    let mut metric = tiny();
    metric.depth_estimation_type = DepthEstimationType::Metric;
    metric.max_depth = Some(10.0);
    let depth = load(&metric).unwrap().forward(&pixels(1, 3, 16, 16)).unwrap().predicted_depth;
    let max = depth.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(max <= 10.0);
}

#[test]
fn bad_pixel_values_are_errors() {
    let model = load(&tiny()).unwrap();
    let err = |inputs: ModelInputs| model.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 3, 16)).contains("smaller than one 4x4 patch"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 16, 16), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
    assert!(err(pixels(1, 1, 16, 16)).contains("channel"));
}
