//! Unit tests: config parsing and validation, and the registered heads on fresh weights.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForMaskedImageModeling, LoadModel, Model, ModelInputs, PreTrainedModel};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Size2, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling, ViTModel};

fn tiny() -> ViTConfig {
    serde_json::from_str(
        r#"{"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24,
            "image_size": [12, 8], "patch_size": 4, "encoder_stride": 4, "num_labels": 3}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = ViTConfig>>(cfg: &ViTConfig) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn pixels(batch: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, 3, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: ViTConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, ViTConfig::default());
    assert_eq!((cfg.patch_grid(), cfg.pooler_output_size(), cfg.head_dim()), ((14, 14), 768, 64));
    let cfg = tiny();
    assert_eq!((cfg.image_size, cfg.patch_size), (Size2::HeightWidth([12, 8]), Size2::Square(4)));
    let back: ViTConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_attention_heads = 3;
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.patch_size = Size2::Square(16);
    assert!(cfg.validate().unwrap_err().to_string().contains("larger than `image_size`"));
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: ViTModel = fresh(&cfg);
    let out = base.forward(&pixels(2, 12, 8)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 7, 16]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 16]);
    let cls: ViTForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&pixels(2, 12, 8)).unwrap().logits.dims(), [2, 3]);
    assert_eq!(cls.dtype(), DType::F32);

    let mut square = tiny();
    square.image_size = Size2::Square(8);
    let mim: ViTForMaskedImageModeling = fresh(&square);
    let mask = Tensor::new(&[[1u32, 0, 0, 1]], &Device::Cpu).unwrap();
    let out = mim.forward(&pixels(1, 8, 8).with_bool_masked_pos(mask)).unwrap();
    assert_eq!(out.reconstruction.dims(), [1, 3, 8, 8]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: ViTModel = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 8, 8)).contains("doesn't match the model (12x8)"));
    let gray = ModelInputs::from_pixel_values(Tensor::ones((1, 1, 12, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(gray).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 12, 8)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 12, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
    let mask = Tensor::new(&[[1u32; 6]], &Device::Cpu).unwrap();
    assert!(err(pixels(1, 12, 8).with_bool_masked_pos(mask)).contains("mask token"));
}

#[test]
fn interpolate_pos_encoding_takes_other_image_sizes() {
    let mut square = tiny();
    square.image_size = Size2::Square(8);
    let base: ViTModel = fresh(&square);
    assert!(base.forward(&pixels(1, 12, 8)).unwrap_err().to_string().contains("set `interpolate_pos_encoding`"));
    // 16x13 with 4 px patches: a 4x3 grid from the learned 2x2.
    let out = base.forward(&pixels(2, 16, 13).with_interpolate_pos_encoding(true)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 13, 16]);
    let err = base.forward(&pixels(1, 3, 16).with_interpolate_pos_encoding(true)).unwrap_err().to_string();
    assert!(err.contains("smaller than one patch"), "{err}");
    // The learned grid of `tiny` (3x2) is not square: transformers cannot interpolate it either.
    let base: ViTModel = fresh(&tiny());
    let err = base.forward(&pixels(1, 16, 16).with_interpolate_pos_encoding(true)).unwrap_err().to_string();
    assert!(err.contains("square grid"), "{err}");
}
