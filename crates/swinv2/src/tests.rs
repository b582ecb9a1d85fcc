//! Unit tests: config parsing and validation, the per-stage windows, the continuous position
//! bias coordinates, bad inputs, and the backbone against its `transformers` reference
//! (`tests/fixtures/backbones/swinv2-backbone`). Parity of the Auto classes is checked by the
//! fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForMaskedImageModeling, Model, ModelInputs};
use autocandle_swin::Size2;
use autocandle_testing::{fixture, fresh, max_diff, CPU};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::model::relative_coords_table;
use crate::{Swinv2Backbone, Swinv2Config, Swinv2ForImageClassification, Swinv2ForMaskedImageModeling, Swinv2Model};

fn tiny() -> Swinv2Config {
    serde_json::from_str(
        r#"{"image_size": 32, "patch_size": 4, "embed_dim": 6, "depths": [2, 1], "num_heads": [2, 3],
            "window_size": 3, "encoder_stride": 8, "num_labels": 3, "pretrained_window_sizes": [0, 4]}"#,
    )
    .unwrap()
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::randn(0f32, 1.0, (batch, channels, h, w), CPU).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Swinv2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Swinv2Config::default());
    assert_eq!((cfg.swin.num_features(), cfg.swin.window_size, cfg.pretrained_window_sizes.len()), (768, 7, 4));
    let cfg = tiny();
    assert_eq!((cfg.swin.embed_dim, cfg.swin.labels.num_labels(), cfg.pretrained_window_size(1)), (6, 3, 4));
    let back: Swinv2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn stage_windows_follow_the_config_height() {
    // 48x20 at patch 4: a 12x5 grid; stages see 12, 6, 3 rows (the width is not looked at).
    let mut cfg = tiny();
    cfg.swin.image_size = Size2::HeightWidth([48, 20]);
    cfg.swin.window_size = 5;
    assert_eq!([cfg.stage_window(0), cfg.stage_window(1), cfg.stage_window(2)], [(5, 2), (5, 2), (3, 0)]);
    cfg.swin.image_size = Size2::Square(20);
    assert_eq!(cfg.stage_window(0), (5, 0));
}

#[test]
fn invalid_configs_are_errors() {
    let err = |edit: fn(&mut Swinv2Config)| {
        let mut cfg = tiny();
        edit(&mut cfg);
        cfg.validate().unwrap_err().to_string()
    };
    assert!(err(|c| c.swin.window_size = 0).contains("`window_size` must be at least 1"));
    assert!(err(|c| c.swin.depths = vec![1, 1, 1]).contains("`depths` has 3 stages but `num_heads` has 2"));
    assert!(err(|c| c.swin.num_heads = vec![4, 3]).contains("not a multiple of its 4 heads"));
    assert!(err(|c| c.pretrained_window_sizes = vec![0]).contains("1 entries for 2 stages"));
    assert!(err(|c| c.pretrained_window_sizes = vec![1, 0]).contains("must be 0 (none) or at least 2"));
    assert!(err(|c| c.swin.image_size = Size2::Square(4)).contains("leaves stage 2 no patches"));
    assert!(err(|c| c.swin.use_absolute_embeddings = true).contains("`use_absolute_embeddings`"));
}

#[test]
fn relative_coords_are_log_spaced() {
    // Window 2: offsets -1, 0, 1, divided by (2 - 1), times 8: sign * log2(9) / 3.
    let table = relative_coords_table(2, 0);
    let v = 9f32.log2() / 3.0;
    assert_eq!(table.len(), 9 * 2);
    assert_eq!(&table[..4], &[-v, -v, -v, 0.0]);
    assert_eq!(&table[16..], &[v, v]);
    // Pretrained window 5: divided by 4.
    assert_eq!(relative_coords_table(2, 5)[0], -(3f32.log2() / 3.0));
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: Swinv2Model = fresh(&cfg);
    let out = base.forward(&pixels(2, 3, 30, 42)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 24, 12]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 12]);
    // Unlike Swin v1, grids smaller than the window are padded to it.
    assert_eq!(base.forward(&pixels(1, 3, 8, 8)).unwrap().last_hidden_state.dims(), [1, 1, 12]);
    let cls: Swinv2ForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&pixels(2, 3, 32, 32)).unwrap().logits.dims(), [2, 3]);
    let mim: Swinv2ForMaskedImageModeling = fresh(&cfg);
    let mask = Tensor::ones((1, 64), DType::U32, CPU).unwrap();
    let out = mim.forward(&pixels(1, 3, 32, 32).with_bool_masked_pos(mask)).unwrap();
    assert_eq!(out.reconstruction.dims(), [1, 3, 32, 32]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: Swinv2Model = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 2, 40)).contains("smaller than one patch (4x4)"));
    assert!(err(pixels(1, 4, 32, 32)).contains("4 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 32, 32)).contains("no images"));
    let mask = Tensor::zeros((1, 64), DType::U32, CPU).unwrap();
    assert!(err(pixels(1, 3, 32, 32).with_bool_masked_pos(mask)).contains("mask token"));
}

#[test]
fn backbone_matches_transformers() {
    let dir = fixture("backbones/swinv2-backbone");
    let cfg: Swinv2Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), CPU).unwrap();
    let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), CPU).unwrap();
    let backbone = Swinv2Backbone::load(&cfg, VarBuilder::from_tensors(weights, DType::F32, CPU)).unwrap();
    assert_eq!(backbone.channels(), [6, 12, 24]);
    let maps = backbone.forward(&reference["pixel_values"]).unwrap();
    assert_eq!(maps.len(), 3);
    for (i, map) in maps.iter().enumerate() {
        let diff = max_diff(map, &reference[&format!("feature_maps.{i}")]);
        assert!(diff < 5e-4, "feature map {i}: max diff {diff}");
    }
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::BF16, DType::F16] {
        let map = candle_nn::VarMap::new();
        let model = Swinv2Model::new(VarBuilder::from_varmap(&map, dtype, CPU), &tiny(), true, false).unwrap();
        let out = model.forward(&pixels(2, 3, 30, 42)).unwrap();
        assert_eq!((out.last_hidden_state.dtype(), out.last_hidden_state.dims()), (dtype, [2, 24, 12].as_slice()));
        let sum: f32 = out.pooler_output.unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(sum.is_finite());
    }
}
