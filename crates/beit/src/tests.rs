//! Unit tests: config parsing and validation, bad inputs, and the registered heads on fresh
//! weights. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForSemanticSegmentation, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{BeitConfig, BeitForImageClassification, BeitForSemanticSegmentation, BeitModel};

fn tiny() -> BeitConfig {
    serde_json::from_str(
        r#"{"hidden_size": 8, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 12,
            "image_size": 16, "patch_size": 4, "use_relative_position_bias": true,
            "use_shared_relative_position_bias": true, "use_absolute_position_embeddings": true,
            "out_indices": [1, 2, 3, 4], "pool_scales": [1, 2], "auxiliary_channels": 4, "num_labels": 3}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = BeitConfig>>(cfg: &BeitConfig) -> autocandle_core::Result<M> {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: BeitConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, BeitConfig::default());
    assert_eq!((cfg.patch_grid(), cfg.head_dim(), cfg.stage_indices().unwrap()), ((14, 14), 64, vec![12]));
    assert!(cfg.use_mean_pooling && cfg.layer_scale_init_value == 0.1 && cfg.pool_scales == [1, 2, 3, 6]);
    let back: BeitConfig = serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap();
    assert_eq!(back, tiny());
}

#[test]
fn stages_resolve_like_transformers() {
    let mut cfg = tiny();
    cfg.out_indices = Some(vec![-1, 0, 2]);
    assert_eq!(cfg.stage_indices().unwrap(), [4, 0, 2]);
    cfg.out_indices = None;
    cfg.out_features = Some(vec!["stem".into(), "stage3".into()]);
    assert_eq!(cfg.stage_indices().unwrap(), [0, 3]);
    cfg.out_features = Some(vec!["stage9".into()]);
    assert!(cfg.stage_indices().unwrap_err().to_string().contains("`stage9`"));
    cfg.out_features = None;
    cfg.out_indices = Some(vec![7]);
    assert!(cfg.stage_indices().unwrap_err().to_string().contains("outside the 5 stages"));
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_attention_heads = 3;
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.patch_size = 32;
    assert!(cfg.validate().unwrap_err().to_string().contains("larger than `image_size`"));
    let mut cfg = tiny();
    cfg.patch_size = 0;
    assert!(cfg.validate().unwrap_err().to_string().contains("`patch_size` must be at least 1"));
    let mut cfg = tiny();
    cfg.out_indices = Some(vec![1, 2, 3]);
    let err = fresh::<BeitForSemanticSegmentation>(&cfg).unwrap_err().to_string();
    assert!(err.contains("needs `out_indices` to name 4 stages"), "{err}");
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(0);
    let err = fresh::<BeitForSemanticSegmentation>(&cfg).unwrap_err().to_string();
    assert!(err.contains("`num_labels` of at least 1"), "{err}");
}

#[test]
fn heads_run_on_fresh_weights_at_any_size() {
    let cfg = tiny();
    let base: BeitModel = fresh(&cfg).unwrap();
    let out = base.forward(&pixels(2, 3, 16, 16)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 17, 8]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 8]);
    // Another, non-square size: the biases and embeddings are resized.
    let out = base.forward(&pixels(1, 3, 12, 21)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [1, 16, 8]);
    let cls: BeitForImageClassification = fresh(&cfg).unwrap();
    assert_eq!(cls.forward(&pixels(2, 3, 16, 16)).unwrap().logits.dims(), [2, 3]);
    let seg: BeitForSemanticSegmentation = fresh(&cfg).unwrap();
    assert_eq!(seg.forward(&pixels(1, 3, 16, 24)).unwrap().logits.dims(), [1, 3, 16, 24]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: BeitModel = fresh(&tiny()).unwrap();
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 3, 16)).contains("smaller than one patch (4x4)"));
    assert!(err(pixels(1, 1, 16, 16)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 16, 16)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 16, 16), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
    let mask = Tensor::new(&[[1u32; 16]], &Device::Cpu).unwrap();
    assert!(err(pixels(1, 3, 16, 16).with_bool_masked_pos(mask)).contains("mask token"));
    // Absolute embeddings of a non-square grid cannot be resized (transformers cannot either).
    let mut cfg = tiny();
    cfg.image_size = autocandle_vit::Size2::HeightWidth([8, 16]);
    let base: BeitModel = fresh(&cfg).unwrap();
    let err = base.forward(&pixels(1, 3, 16, 16)).unwrap_err().to_string();
    assert!(err.contains("square grid"), "{err}");
}
