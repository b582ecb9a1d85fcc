//! Unit tests: the config's defaults and its BEiT form, the segmentation model's stages and
//! fixed grid. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForSemanticSegmentation, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Data2VecVisionConfig, Data2VecVisionForSemanticSegmentation, Data2VecVisionModel};

fn tiny() -> Data2VecVisionConfig {
    serde_json::from_str(
        r#"{"hidden_size": 8, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 12,
            "image_size": 16, "patch_size": 4, "use_relative_position_bias": true, "out_indices": [4, 2, 3, 1],
            "pool_scales": [1, 2], "auxiliary_channels": 4, "num_labels": 3}"#,
    )
    .unwrap()
}

fn fresh<M: LoadModel<Config = Data2VecVisionConfig>>(cfg: &Data2VecVisionConfig) -> autocandle_core::Result<M> {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg)
}

fn pixels(h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::ones((1, 3, h, w), DType::F32, &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_and_stages() {
    let cfg: Data2VecVisionConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Data2VecVisionConfig::default());
    assert_eq!(cfg.hidden_state_indices(), [2, 4, 6, 10]);
    assert_eq!(tiny().hidden_state_indices(), [0, 1, 2, 3]);
    assert_eq!(tiny().to_beit().hidden_size, 8);
}

#[test]
fn base_has_no_pooler_and_segmentation_needs_the_config_size() {
    let base: Data2VecVisionModel = fresh(&tiny()).unwrap();
    let out = base.forward(&pixels(16, 16)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [1, 17, 8]);
    assert!(out.pooler_output.is_none());
    let seg: Data2VecVisionForSemanticSegmentation = fresh(&tiny()).unwrap();
    assert_eq!(seg.forward(&pixels(16, 16)).unwrap().logits.dims(), [1, 3, 16, 16]);
    let err = seg.forward(&pixels(16, 20)).unwrap_err().to_string();
    assert!(err.contains("config's 4x4 grid"), "{err}");
    let mut cfg = tiny();
    cfg.out_indices = vec![1, 2, 3, 99];
    let err = fresh::<Data2VecVisionForSemanticSegmentation>(&cfg).unwrap_err().to_string();
    assert!(err.contains("4 stages"), "{err}");
}
