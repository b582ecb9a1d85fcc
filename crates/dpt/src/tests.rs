//! Unit tests: config parsing and validation, the heads on fresh weights, bad inputs.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForDepthEstimation, ForSemanticSegmentation, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{DPTConfig, DPTForDepthEstimation, DPTForSemanticSegmentation, DPTModel, Readout};

fn tiny() -> DPTConfig {
    serde_json::from_str(
        r#"{"hidden_size": 12, "num_hidden_layers": 4, "num_attention_heads": 3, "intermediate_size": 16,
            "image_size": 16, "patch_size": 4, "backbone_out_indices": [0, 1, 2, 3],
            "neck_hidden_sizes": [5, 6, 7, 9], "fusion_hidden_size": 8, "readout_type": "add", "num_labels": 3}"#,
    )
    .unwrap()
}

fn load<M: LoadModel<Config = DPTConfig>>(cfg: &DPTConfig) -> autocandle_core::Result<M> {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: DPTConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, DPTConfig::default());
    assert_eq!((cfg.readout_type, cfg.reassemble_factors[3], cfg.head_dim()), (Readout::Project, 0.5, 64));
    cfg.validate().unwrap();
    assert_eq!(cfg.validate_neck().unwrap(), [2, 5, 8, 11]);
    // `transformers` writes `null` for the ViT fields of a DPT with a backbone.
    let with_backbone: DPTConfig = serde_json::from_str(
        r#"{"num_hidden_layers": null, "image_size": null, "patch_size": null, "qkv_bias": null,
            "backbone_config": {"model_type": "dinov2"}}"#,
    )
    .unwrap();
    assert!(with_backbone.validate().unwrap_err().to_string().contains("`backbone_config`"));
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_attention_heads = 5;
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.is_hybrid = true;
    assert!(cfg.validate().unwrap_err().to_string().contains("DPT-Hybrid"));
    let mut cfg = tiny();
    cfg.backbone_out_indices = Some(vec![0, 1, 1, 2]);
    assert!(cfg.validate_neck().unwrap_err().to_string().contains("one entry per `neck_hidden_sizes`"));
    let mut cfg = tiny();
    cfg.backbone_out_indices = Some(vec![0, 1, 2, 7]);
    assert!(cfg.validate_neck().unwrap_err().to_string().contains("the ViT has 4 layers"));
    let mut cfg = tiny();
    cfg.head_in_index = 4;
    assert!(load::<DPTForDepthEstimation>(&cfg).unwrap_err().to_string().contains("`head_in_index`"));
    let mut cfg = tiny();
    cfg.reassemble_factors = vec![4.0, 2.0, 1.0, 0.0];
    assert!(load::<DPTForDepthEstimation>(&cfg).unwrap_err().to_string().contains("must be positive"));
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: DPTModel = load(&cfg).unwrap();
    let out = base.forward(&pixels(2, 3, 20, 20)).unwrap();
    assert_eq!((out.last_hidden_state.dims(), out.pooler_output.unwrap().dims()), (&[2, 26, 12][..], &[2, 12][..]));
    let depth: DPTForDepthEstimation = load(&cfg).unwrap();
    assert_eq!(depth.forward(&pixels(2, 3, 16, 16)).unwrap().predicted_depth.dims(), [2, 64, 64]);
    let mut cfg = tiny();
    cfg.readout_type = Readout::Project;
    cfg.use_batch_norm_in_fusion_residual = Some(true);
    let seg: DPTForSemanticSegmentation = load(&cfg).unwrap();
    assert_eq!(seg.forward(&pixels(1, 3, 12, 12)).unwrap().logits.dims(), [1, 3, 64, 64]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: DPTModel = load(&tiny()).unwrap();
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 1, 16, 16)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 16, 16)).contains("no images"));
    assert!(err(pixels(1, 3, 3, 16)).contains("smaller than one 4x4 patch"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 16, 16), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
}

#[test]
fn segmentation_needs_labels() {
    let mut cfg = tiny();
    cfg.labels = serde_json::from_str(r#"{"num_labels": 0}"#).unwrap();
    assert!(load::<DPTForSemanticSegmentation>(&cfg).unwrap_err().to_string().contains("at least one label"));
}
