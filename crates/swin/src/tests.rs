//! Unit tests: config parsing and validation, the window machinery against straightforward
//! versions of `transformers`' code, bad inputs, and the backbone against its `transformers`
//! reference (`tests/fixtures/backbones/swin-backbone`). Parity of the Auto classes is checked
//! by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, ForMaskedImageModeling, Model, ModelInputs, PreTrainedModel};
use autocandle_testing::{fixture, fresh, max_diff, CPU};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::window::{bicubic_resize, merge_gather, relative_position_index, shift_mask, windowed, WindowShift};
use crate::{Size2, SwinBackbone, SwinConfig, SwinForImageClassification, SwinForMaskedImageModeling, SwinModel};

fn tiny() -> SwinConfig {
    serde_json::from_str(
        r#"{"image_size": 32, "patch_size": 4, "embed_dim": 6, "depths": [2, 1], "num_heads": [2, 3],
            "window_size": 3, "encoder_stride": 8, "num_labels": 3}"#,
    )
    .unwrap()
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::randn(0f32, 1.0, (batch, channels, h, w), CPU).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: SwinConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, SwinConfig::default());
    assert_eq!((cfg.num_features(), cfg.patch_grid(), cfg.mlp_dim(96)), (768, (56, 56), 384));
    assert_eq!(cfg.stage_names(), ["stem", "stage1", "stage2", "stage3", "stage4"]);
    assert_eq!(cfg.backbone_stages().unwrap(), [4]);
    let cfg: SwinConfig =
        serde_json::from_str(r#"{"image_size": [30, 42], "out_features": ["stem", "stage2"], "out_indices": [0, 2]}"#)
            .unwrap();
    assert_eq!(cfg.image_size, Size2::HeightWidth([30, 42]));
    assert_eq!(cfg.backbone_stages().unwrap(), [0, 2]);
    let cfg: SwinConfig = serde_json::from_str(r#"{"out_indices": [1, -1]}"#).unwrap();
    assert_eq!(cfg.backbone_stages().unwrap(), [1, 4]);
    let back: SwinConfig = serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap();
    assert_eq!(back, tiny());
}

#[test]
fn invalid_configs_are_errors() {
    let err = |edit: fn(&mut SwinConfig)| {
        let mut cfg = tiny();
        edit(&mut cfg);
        cfg.validate().unwrap_err().to_string()
    };
    assert!(err(|c| c.window_size = 0).contains("`window_size` must be at least 1"));
    assert!(err(|c| c.window_size = 1000).contains("at most 64 is supported"));
    assert!(err(|c| c.num_heads = vec![2]).contains("`depths` has 2 stages but `num_heads` has 1 entries"));
    assert!(err(|c| c.num_heads = vec![4, 3]).contains("stage 1 is 6 wide"));
    assert!(err(|c| c.num_heads = vec![2, 5]).contains("not a multiple of its 5 heads"));
    assert!(err(|c| c.depths.clear()).contains("`depths` is empty"));
    assert!(err(|c| c.patch_size = Size2::Square(0)).contains("`patch_size` must be at least 1"));
    assert!(err(|c| c.mlp_ratio = 0.0).contains("`mlp_ratio` must be positive"));
    assert!(err(|c| c.out_features = Some(vec!["stage9".into()])).contains("`stage9`"));
    assert!(err(|c| c.out_indices = Some(vec![7])).contains("outside the 3 stages"));
    // The model refuses to load with it, before touching any weight.
    let mut cfg = tiny();
    cfg.window_size = 0;
    let map = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, CPU);
    assert!(SwinModel::new(vb, &cfg, true, false).unwrap_err().to_string().contains("`window_size`"));
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg = tiny();
    let base: SwinModel = fresh(&cfg);
    let out = base.forward(&pixels(2, 3, 30, 42)).unwrap();
    // 30x42 -> 8x11 patches -> 4x6 after merging.
    assert_eq!(out.last_hidden_state.dims(), [2, 24, 12]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 12]);
    let cls: SwinForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&pixels(2, 3, 32, 32)).unwrap().logits.dims(), [2, 3]);
    assert_eq!(cls.dtype(), DType::F32);
    let mim: SwinForMaskedImageModeling = fresh(&cfg);
    let mask = Tensor::zeros((1, 64), DType::U32, CPU).unwrap();
    let out = mim.forward(&pixels(1, 3, 32, 32).with_bool_masked_pos(mask)).unwrap();
    assert_eq!(out.reconstruction.dims(), [1, 3, 32, 32]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: SwinModel = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 3, 40)).contains("smaller than one patch (4x4)"));
    assert!(err(pixels(1, 1, 32, 32)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 32, 32)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 32, 32), DType::F32, CPU).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
    // 16x16 -> 4x4 patches -> 2x2 in stage 2, smaller than the 3-patch window.
    assert!(
        err(pixels(1, 3, 16, 16)).contains("stage 2 works on a 2x2 grid of patches, smaller than `window_size` (3)")
    );
    let mask = Tensor::zeros((1, 64), DType::U32, CPU).unwrap();
    assert!(err(pixels(1, 3, 32, 32).with_bool_masked_pos(mask)).contains("mask token"));

    let mim: SwinForMaskedImageModeling = fresh(&tiny());
    let mask = Tensor::zeros((1, 10), DType::U32, CPU).unwrap();
    let err = mim.forward(&pixels(1, 3, 32, 32).with_bool_masked_pos(mask)).unwrap_err().to_string();
    assert!(err.contains("`bool_masked_pos` must be [batch, num_patches] = [1, 64]"), "{err}");
    let err = mim.forward(&pixels(1, 3, 32, 48)).unwrap_err().to_string();
    assert!(err.contains("square grid"), "{err}");

    let mut cfg = tiny();
    cfg.use_absolute_embeddings = true;
    let abs: SwinModel = fresh(&cfg);
    let err = abs.forward(&pixels(1, 3, 24, 40)).unwrap_err().to_string();
    assert!(err.contains("set `interpolate_pos_encoding`"), "{err}");
    let err = abs.forward(&pixels(1, 3, 26, 40).with_interpolate_pos_encoding(true)).unwrap_err().to_string();
    assert!(err.contains("must be a multiple of the patch size"), "{err}");
    assert_eq!(
        abs.forward(&pixels(1, 3, 24, 40).with_interpolate_pos_encoding(true)).unwrap().last_hidden_state.dims(),
        [1, 15, 12]
    );
}

/// `get_attn_mask` as `transformers` 4 wrote it: label the nine slices, compare labels.
fn reference_mask(hp: usize, wp: usize, window: usize, shift: usize) -> Vec<f32> {
    let slices = |size: usize| [(0, size - window), (size - window, size - shift), (size - shift, size)];
    let mut labels = vec![0usize; hp * wp];
    let mut count = 0;
    for (h0, h1) in slices(hp) {
        for (w0, w1) in slices(wp) {
            for y in h0..h1 {
                for x in w0..w1 {
                    labels[y * wp + x] = count;
                }
            }
            count += 1;
        }
    }
    let mut mask = Vec::new();
    for wy in 0..hp / window {
        for wx in 0..wp / window {
            let win: Vec<usize> = (0..window * window)
                .map(|k| labels[(wy * window + k / window) * wp + wx * window + k % window])
                .collect();
            for &a in &win {
                mask.extend(win.iter().map(|&b| if a == b { 0.0 } else { -100.0 }));
            }
        }
    }
    mask
}

#[test]
fn shift_mask_matches_the_slice_labels() {
    for (hp, wp, window, shift) in [(6, 9, 3, 1), (14, 7, 7, 3), (4, 4, 2, 1)] {
        let got: Vec<f32> =
            shift_mask(hp, wp, WindowShift { window, shift }, CPU).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, reference_mask(hp, wp, window, shift), "{hp}x{wp} window {window} shift {shift}");
    }
}

#[test]
fn relative_position_index_matches_transformers() {
    // torch: coords (dy + w - 1) * (2w - 1) + (dx + w - 1) for window 2.
    assert_eq!(
        relative_position_index(2),
        [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4].iter().map(|&v| v as u32).collect::<Vec<_>>()
    );
    assert!(relative_position_index(7).iter().all(|&i| i < 169));
}

#[test]
fn merge_gather_orders_the_neighbours_as_transformers() {
    // A 3x3 grid of one channel (value = 10 * row + col), padded to 4x4.
    let x = Tensor::new(&[0f32, 1., 2., 10., 11., 12., 20., 21., 22.], CPU).unwrap().reshape((1, 9, 1)).unwrap();
    let got: Vec<f32> = merge_gather(&x, (3, 3)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    // Per merged patch: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2].
    assert_eq!(got, [0., 10., 1., 11., 2., 12., 0., 0., 20., 0., 21., 0., 22., 0., 0., 0.]);
}

#[test]
fn windowed_round_trips_with_padding_and_shift() {
    let x = Tensor::randn(0f32, 1.0, (2, 5 * 7, 4), CPU).unwrap();
    for geometry in [WindowShift { window: 3, shift: 1 }, WindowShift { window: 3, shift: 0 }] {
        let same = windowed(&x, (5, 7), geometry, |w, mask| {
            assert_eq!(w.dims(), [2 * 2 * 3, 9, 4]);
            assert_eq!(mask.map(|m| m.dims().to_vec()), (geometry.shift > 0).then(|| vec![6, 9, 9]));
            Ok(w.clone())
        })
        .unwrap();
        assert_eq!(max_diff(&same, &x), 0.0);
    }
}

#[test]
fn bicubic_resize_keeps_sizes_and_constants() {
    let grid = Tensor::randn(0f32, 1.0, (1, 12, 3), CPU).unwrap();
    assert!(max_diff(&bicubic_resize(&grid, (3, 4), (3, 4)).unwrap(), &grid) < 1e-6);
    let flat = Tensor::full(0.5f32, (1, 16, 2), CPU).unwrap();
    let up = bicubic_resize(&flat, (4, 4), (5, 9)).unwrap();
    assert_eq!(up.dims(), [1, 45, 2]);
    assert!(max_diff(&up, &Tensor::full(0.5f32, (1, 45, 2), CPU).unwrap()) < 1e-6);
}

#[test]
fn backbone_matches_transformers() {
    let dir = fixture("backbones/swin-backbone");
    let cfg: SwinConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), CPU).unwrap();
    let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), CPU).unwrap();
    let backbone = SwinBackbone::load(&cfg, VarBuilder::from_tensors(weights.clone(), DType::F32, CPU)).unwrap();
    assert_eq!(backbone.channels(), [6, 6, 24]);
    let maps = backbone.forward(&reference["pixel_values"]).unwrap();
    assert_eq!(maps.len(), 3);
    for (i, map) in maps.iter().enumerate() {
        let want = &reference[&format!("feature_maps.{i}")];
        let diff = max_diff(map, want);
        assert!(diff < 1e-4, "feature map {i}: max diff {diff}");
    }
    // transformers' module names (`swin.embeddings.*`) load too.
    let nested = weights
        .into_iter()
        .map(|(k, v)| if k.starts_with("hidden_states_norms") { (k, v) } else { (format!("swin.{k}"), v) })
        .collect();
    let again = SwinBackbone::load(&cfg, VarBuilder::from_tensors(nested, DType::F32, CPU)).unwrap();
    assert_eq!(max_diff(&again.forward(&reference["pixel_values"]).unwrap()[2], &maps[2]), 0.0);
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::BF16, DType::F16] {
        let map = candle_nn::VarMap::new();
        let model = SwinModel::new(VarBuilder::from_varmap(&map, dtype, CPU), &tiny(), true, false).unwrap();
        let out = model.forward(&pixels(2, 3, 30, 42)).unwrap();
        assert_eq!((out.last_hidden_state.dtype(), out.last_hidden_state.dims()), (dtype, [2, 24, 12].as_slice()));
        let sum: f32 = out.pooler_output.unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(sum.is_finite());
    }
}
