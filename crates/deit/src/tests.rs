//! Unit tests: config parsing and validation, the choice of classifier by `architectures`,
//! bad inputs, and the heads on fresh weights. Parity with `transformers` is checked by the
//! fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForMaskedImageModeling, LoadModel, Model, ModelInputs};
use autocandle_vit::Size2;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{DeiTConfig, DeiTForImageClassification, DeiTForMaskedImageModeling, DeiTModel};

fn tiny() -> DeiTConfig {
    serde_json::from_str(
        r#"{"hidden_size": 12, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 20,
            "image_size": [12, 8], "patch_size": 4, "encoder_stride": 4, "num_labels": 3}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = DeiTConfig>>(cfg: &DeiTConfig) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn pixels(batch: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, 3, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: DeiTConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, DeiTConfig::default());
    assert_eq!((cfg.patch_grid(), cfg.pooler_output_size()), ((14, 14), 768));
    let back: DeiTConfig = serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap();
    assert_eq!(back, tiny());
}

#[test]
fn architectures_pick_the_classifier() {
    let mut cfg = tiny();
    assert!(!cfg.with_teacher());
    cfg.architectures = vec!["DeiTForImageClassificationWithTeacher".into()];
    assert!(cfg.with_teacher());
    let teacher: DeiTForImageClassification = fresh(&cfg);
    assert!(teacher.with_teacher());
    let out = teacher.forward(&pixels(2, 12, 8)).unwrap();
    assert_eq!(out.logits.dims(), [2, 3]);
    assert!(out.extra.iter().any(|(n, _)| *n == "distillation_logits"));
    // The first classifier named wins, as in transformers' `_get_model_class`.
    cfg.architectures =
        vec!["DeiTModel".into(), "DeiTForImageClassification".into(), "DeiTForImageClassificationWithTeacher".into()];
    assert!(!cfg.with_teacher());
    let plain: DeiTForImageClassification = fresh(&cfg);
    assert!(!plain.with_teacher());
    assert!(plain.forward(&pixels(1, 12, 8)).unwrap().extra.is_empty());
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_attention_heads = 5;
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.patch_size = Size2::Square(16);
    assert!(cfg.validate().unwrap_err().to_string().contains("larger than `image_size`"));
    let mut cfg = tiny();
    cfg.encoder_stride = 0;
    let map = VarMap::new();
    let err = DeiTForMaskedImageModeling::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), &cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`encoder_stride` must be at least 1"), "{err}");
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: DeiTModel = fresh(&cfg);
    let out = base.forward(&pixels(2, 12, 8)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 8, 12]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 12]);
    let mut square = tiny();
    square.image_size = Size2::Square(8);
    let mim: DeiTForMaskedImageModeling = fresh(&square);
    let mask = Tensor::new(&[[1u32, 0, 0, 1]], &Device::Cpu).unwrap();
    assert_eq!(mim.forward(&pixels(1, 8, 8).with_bool_masked_pos(mask)).unwrap().reconstruction.dims(), [1, 3, 8, 8]);
    // Another size with `interpolate_pos_encoding`.
    let out = mim.forward(&pixels(1, 16, 16).with_interpolate_pos_encoding(true)).unwrap();
    assert_eq!(out.reconstruction.dims(), [1, 3, 16, 16]);
    let err = mim.forward(&pixels(1, 8, 12).with_interpolate_pos_encoding(true)).unwrap_err().to_string();
    assert!(err.contains("square grid"), "{err}");
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: DeiTModel = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 8, 8)).contains("doesn't match the model (12x8)"));
    assert!(err(pixels(1, 8, 8)).contains("`interpolate_pos_encoding`"));
    assert!(err(pixels(1, 2, 8).with_interpolate_pos_encoding(true)).contains("smaller than one patch"));
    let gray = ModelInputs::from_pixel_values(Tensor::ones((1, 1, 12, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(gray).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 12, 8)).contains("no images"));
    let mask = Tensor::new(&[[1u32; 6]], &Device::Cpu).unwrap();
    assert!(err(pixels(1, 12, 8).with_bool_masked_pos(mask)).contains("mask token"));
    // Position embeddings of a non-square grid cannot be resized (transformers cannot either).
    assert!(err(pixels(1, 16, 16).with_interpolate_pos_encoding(true)).contains("square grid"));
}
