//! Unit tests: config parsing and validation, and the heads on fresh weights.
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForObjectDetection, LoadModel, Model, ModelInputs, PreTrainedModel};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Size2, YolosConfig, YolosForObjectDetection, YolosModel};

fn tiny() -> YolosConfig {
    serde_json::from_str(
        r#"{"hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 24,
            "image_size": [12, 8], "patch_size": 4, "num_detection_tokens": 3, "num_labels": 2}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = YolosConfig>>(cfg: &YolosConfig) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, channels, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: YolosConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, YolosConfig::default());
    assert_eq!((cfg.patch_grid(), cfg.head_dim(), cfg.num_detection_tokens), ((32, 54), 64, 100));
    assert_eq!(cfg.image_size, Size2::HeightWidth([512, 864]));
    let back: YolosConfig = serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap();
    assert_eq!(back, tiny());
}

#[test]
fn invalid_configs_are_errors() {
    let check = |edit: fn(&mut YolosConfig), want: &str| {
        let mut cfg = tiny();
        edit(&mut cfg);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    };
    check(|c| c.num_attention_heads = 3, "multiple of `num_attention_heads`");
    check(|c| c.patch_size = Size2::HeightWidth([4, 2]), "square patches");
    check(|c| c.patch_size = Size2::Square(16), "larger than `image_size`");
    check(|c| c.num_detection_tokens = 0, "`num_detection_tokens` must be at least 1");
    check(|c| c.image_size = Size2::HeightWidth([14, 8]), "must be a multiple of `patch_size`");
    let mut cfg = tiny();
    cfg.image_size = Size2::HeightWidth([14, 8]);
    cfg.use_mid_position_embeddings = false;
    cfg.validate().unwrap();
}

#[test]
fn heads_run_at_any_size() {
    let cfg = tiny();
    let base: YolosModel = fresh(&cfg);
    // The config's 3x2 grid, then 5x4 (interpolated) with pixels past the last whole patch.
    let out = base.forward(&pixels(2, 3, 12, 8)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 1 + 6 + 3, 16]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 16]);
    assert_eq!(base.forward(&pixels(1, 3, 22, 17)).unwrap().last_hidden_state.dims(), [1, 1 + 20 + 3, 16]);
    let det: YolosForObjectDetection = fresh(&cfg);
    let out = det.forward(&pixels(2, 3, 9, 14)).unwrap();
    assert_eq!(out.logits.dims(), [2, 3, 3]);
    assert_eq!(out.pred_boxes.dims(), [2, 3, 4]);
    assert_eq!(out.last_hidden_state.dims(), [2, 1 + 6 + 3, 16]);
    assert!(out.encoder_last_hidden_state.is_none());
    assert_eq!(det.dtype(), DType::F32);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: YolosModel = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 3, 8)).contains("smaller than one 4x4 patch"));
    assert!(err(pixels(1, 1, 12, 8)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 12, 8)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 12, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
}
