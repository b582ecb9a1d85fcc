//! Unit tests: config parsing and the registered heads and backbone on fresh weights. Parity
//! with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::resize::Resample;
use autocandle_core::{ForImageClassification, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{
    Dinov2WithRegistersBackbone, Dinov2WithRegistersConfig, Dinov2WithRegistersForImageClassification,
    Dinov2WithRegistersModel,
};

fn tiny() -> Dinov2WithRegistersConfig {
    serde_json::from_str(
        r#"{"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_ratio": 2,
            "image_size": 8, "patch_size": 4, "num_register_tokens": 3, "num_labels": 2,
            "out_indices": [-1]}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = Dinov2WithRegistersConfig>>(cfg: &Dinov2WithRegistersConfig) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn image(batch: usize, h: usize, w: usize) -> Tensor {
    Tensor::ones((batch, 3, h, w), DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Dinov2WithRegistersConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Dinov2WithRegistersConfig::default());
    assert_eq!((cfg.num_register_tokens, cfg.patch_size.hw()), (4, (16, 16)));
    let spec = cfg.spec();
    assert_eq!((spec.num_register_tokens, spec.resample, spec.use_mask_token), (4, Resample::BicubicAntialias, true));
}

#[test]
fn heads_and_backbone_run_on_fresh_weights() {
    let cfg = tiny();
    let base: Dinov2WithRegistersModel = fresh(&cfg);
    let out = base.forward(&ModelInputs::from_pixel_values(image(2, 12, 17))).unwrap();
    // [CLS], 3 registers, a 3x4 grid.
    assert_eq!(out.last_hidden_state.dims(), [2, 16, 16]);
    let cls: Dinov2WithRegistersForImageClassification = fresh(&cfg);
    assert_eq!(cls.forward(&ModelInputs::from_pixel_values(image(1, 8, 8))).unwrap().logits.dims(), [1, 2]);
    let map = VarMap::new();
    let backbone =
        Dinov2WithRegistersBackbone::load(&cfg, VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu)).unwrap();
    assert_eq!(backbone.inner().out_indices(), [2]);
    let maps = backbone.forward(&image(2, 12, 17)).unwrap();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].dims(), [2, 16, 3, 4]);
}

#[test]
fn backbone_matches_transformers() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/backbones/dinov2_with_registers");
    let config: Dinov2WithRegistersConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let backbone =
        Dinov2WithRegistersBackbone::load(&config, VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu))
            .unwrap();
    let reference = candle_core::safetensors::load(dir.join("backbone.safetensors"), &Device::Cpu).unwrap();
    let got = backbone.forward(&reference["pixel_values"]).unwrap();
    assert_eq!(got.len(), 2);
    for (i, g) in got.iter().enumerate() {
        let want = &reference[&format!("feature_maps.{i}")];
        assert_eq!(g.dims(), want.dims());
        let diff: f32 = (g - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(diff < 1e-4, "feature map {i} is off by {diff}");
    }
}
