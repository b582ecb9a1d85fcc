//! Unit tests: config defaults and the heads on fresh weights. Parity with `transformers` is
//! checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageClassification, LoadModel, Model, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{ConvNextV2Backbone, ConvNextV2Config, ConvNextV2ForImageClassification, ConvNextV2Model};

#[test]
fn config_defaults_match_transformers() {
    let cfg: ConvNextV2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, ConvNextV2Config::default());
    assert_eq!(cfg.to_convnext().layer_scale_init_value, 0.0);
}

#[test]
fn heads_run_on_fresh_weights() {
    let cfg: ConvNextV2Config = serde_json::from_str(
        r#"{"hidden_sizes": [8, 12], "depths": [2, 1], "num_stages": 2, "num_labels": 5, "out_features": ["stage1"]}"#,
    )
    .unwrap();
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let pixels = Tensor::ones((2, 3, 9, 16), DType::F32, &Device::Cpu).unwrap();
    let inputs = ModelInputs::from_pixel_values(pixels.clone());
    let out = ConvNextV2Model::load(vb.clone(), &cfg).unwrap().forward(&inputs).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 12, 1, 2]);
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 12]);
    let maps = ConvNextV2Backbone::load(vb.clone(), &cfg).unwrap().forward(&pixels).unwrap();
    assert_eq!(maps[0].dims(), [2, 8, 2, 4]);
    let cls = ConvNextV2ForImageClassification::load(vb, &cfg).unwrap();
    assert_eq!(cls.forward(&inputs).unwrap().logits.dims(), [2, 5]);
    let small = ModelInputs::from_pixel_values(Tensor::ones((1, 3, 7, 16), DType::F32, &Device::Cpu).unwrap());
    assert!(cls.forward(&small).unwrap_err().to_string().contains("too small for this convnextv2"));
}
