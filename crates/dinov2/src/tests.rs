//! Unit tests: config parsing and validation, the backbone's stage selection, and the
//! registered heads on fresh weights. Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, LoadModel, Model, ModelInputs, PreTrainedModel};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Dinov2Backbone, Dinov2Config, Dinov2ForImageClassification, Dinov2Model, Size2};

fn tiny() -> Dinov2Config {
    serde_json::from_str(
        r#"{"hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2, "mlp_ratio": 2,
            "image_size": 8, "patch_size": 4, "num_labels": 3}"#,
    )
    .unwrap()
}

fn varbuilder(map: &VarMap) -> VarBuilder<'_> {
    VarBuilder::from_varmap(map, DType::F32, &Device::Cpu)
}

fn fresh<M: LoadModel<Config = Dinov2Config>>(cfg: &Dinov2Config) -> M {
    let map = VarMap::new();
    M::load(varbuilder(&map), cfg).unwrap()
}

fn pixels(batch: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((batch, 3, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Dinov2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Dinov2Config::default());
    assert_eq!((cfg.patch_grid(), cfg.head_dim(), cfg.ffn_size()), ((16, 16), 64, 3072));
    assert_eq!(cfg.out_indices().unwrap(), [12]);
    let back: Dinov2Config = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn swiglu_width_is_rounded_as_transformers() {
    // dinov2-giant: hidden 1536, mlp_ratio 4 -> int(6144 * 2 / 3) = 4096.
    let mut cfg = Dinov2Config { hidden_size: 1536, use_swiglu_ffn: true, ..Dinov2Config::default() };
    assert_eq!(cfg.ffn_size(), 4096);
    // hidden 20, ratio 4: 80 -> int(53.33) = 53 -> 56.
    cfg.hidden_size = 20;
    assert_eq!(cfg.ffn_size(), 56);
    cfg.use_swiglu_ffn = false;
    cfg.mlp_ratio = 2.5;
    assert_eq!(cfg.ffn_size(), 50);
}

#[test]
fn backbone_stages_align_as_transformers() {
    let parse = |extra: &str| -> Dinov2Config {
        serde_json::from_str(&format!(r#"{{"num_hidden_layers": 4, {extra}}}"#)).unwrap()
    };
    assert_eq!(parse(r#""out_features": ["stem", "stage2"]"#).out_indices().unwrap(), [0, 2]);
    assert_eq!(parse(r#""out_indices": [1, -1]"#).out_indices().unwrap(), [1, 4]);
    assert_eq!(parse(r#""out_indices": [2], "out_features": ["stage2"]"#).out_indices().unwrap(), [2]);
    let err = |extra: &str| parse(extra).out_indices().unwrap_err().to_string();
    assert!(err(r#""out_features": ["stage9"]"#).contains("not a stage"));
    assert!(err(r#""out_indices": [7]"#).contains("out of range"));
    assert!(err(r#""out_indices": [3, 1]"#).contains("in the order"));
    assert!(err(r#""out_indices": [1], "out_features": ["stage2"]"#).contains("different stages"));
}

#[test]
fn invalid_configs_are_errors() {
    let mut cfg = tiny();
    cfg.num_attention_heads = 3;
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut cfg = tiny();
    cfg.patch_size = Size2::Square(16);
    assert!(cfg.validate().unwrap_err().to_string().contains("larger than `image_size`"));
    let mut cfg = tiny();
    cfg.mlp_ratio = 0.0;
    assert!(cfg.validate().unwrap_err().to_string().contains("`mlp_ratio`"));
}

#[test]
fn heads_run_on_fresh_weights_at_any_size() {
    let cfg = tiny();
    let base: Dinov2Model = fresh(&cfg);
    // 13x21 with 4 px patches: a 3x5 grid, interpolated from the learned 2x2.
    let out = base.forward(&pixels(2, 13, 21)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 16, 16]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 16]);
    let cls: Dinov2ForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&pixels(2, 8, 8)).unwrap().logits.dims(), [2, 3]);
    assert_eq!(cls.dtype(), DType::F32);
    let mut swiglu = tiny();
    swiglu.use_swiglu_ffn = true;
    let base: Dinov2Model = fresh(&swiglu);
    let mask = Tensor::new(&[[1i64, 0, 0, 1]], &Device::Cpu).unwrap();
    let out = base.forward(&pixels(1, 8, 8).with_bool_masked_pos(mask)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [1, 5, 16]);
}

#[test]
fn backbone_gives_feature_maps() {
    let mut cfg = tiny();
    cfg.out_features = Some(vec!["stem".into(), "stage2".into()]);
    let map = VarMap::new();
    let backbone = Dinov2Backbone::load(&cfg, varbuilder(&map)).unwrap();
    let maps = backbone.forward(&Tensor::ones((2, 3, 12, 9), DType::F32, &Device::Cpu).unwrap()).unwrap();
    assert_eq!(maps.len(), 2);
    assert_eq!(maps[1].dims(), [2, 16, 3, 2]);
    cfg.reshape_hidden_states = false;
    let backbone = Dinov2Backbone::load(&cfg, varbuilder(&map)).unwrap();
    let maps = backbone.forward(&Tensor::ones((1, 3, 12, 9), DType::F32, &Device::Cpu).unwrap()).unwrap();
    assert_eq!(maps[0].dims(), [1, 7, 16]);
}

#[test]
fn bad_pixel_values_are_errors() {
    let base: Dinov2Model = fresh(&tiny());
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 3, 8)).contains("smaller than one patch"));
    let gray = ModelInputs::from_pixel_values(Tensor::ones((1, 1, 8, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(err(gray).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 8, 8)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let mask = Tensor::new(&[[1u32; 6]], &Device::Cpu).unwrap();
    assert!(err(pixels(1, 8, 8).with_bool_masked_pos(mask)).contains("[batch, num_patches] = [1, 4]"));
    let mut no_mask = tiny();
    no_mask.use_mask_token = false;
    let base: Dinov2Model = fresh(&no_mask);
    let mask = Tensor::new(&[[1u32; 4]], &Device::Cpu).unwrap();
    assert!(base.forward(&pixels(1, 8, 8).with_bool_masked_pos(mask)).unwrap_err().to_string().contains("mask token"));
}

/// Load `tests/fixtures/backbones/<name>` (a saved `Dinov2Backbone` of transformers and its
/// `backbone.safetensors`): the config, the backbone, `pixel_values` and the expected maps.
pub(crate) fn backbone_fixture(name: &str) -> (serde_json::Value, VarBuilder<'static>, Tensor, Vec<Tensor>) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/backbones").join(name);
    let config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let mut reference = candle_core::safetensors::load(dir.join("backbone.safetensors"), &Device::Cpu).unwrap();
    let pixels = reference.remove("pixel_values").unwrap();
    let maps = (0..reference.len()).map(|i| reference.remove(&format!("feature_maps.{i}")).unwrap()).collect();
    (config, vb, pixels, maps)
}

/// The largest absolute difference between `got` and `want` (same shapes).
pub(crate) fn max_abs_diff(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims());
    (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn backbone_matches_transformers() {
    for (name, stages) in [("dinov2", [0usize, 1, 3].as_slice()), ("dinov2-no-reshape", &[2, 3])] {
        let (config, vb, pixels, want) = backbone_fixture(name);
        let config: Dinov2Config = serde_json::from_value(config).unwrap();
        let backbone = Dinov2Backbone::load(&config, vb).unwrap();
        assert_eq!(backbone.out_indices(), stages);
        let got = backbone.forward(&pixels).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let diff = max_abs_diff(g, w);
            assert!(diff < 1e-4, "{name}: feature map {i} is off by {diff}");
        }
    }
}
