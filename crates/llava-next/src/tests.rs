//! Unit tests: config defaults, resolution selection, errors of bad inputs on fresh weights.
//! Parity with `transformers` is checked by `tests/parity.rs` on the `llava_next-*` fixtures.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageTextToText, LoadModel, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{select_best_resolution, LlavaNextConfig, LlavaNextForConditionalGeneration};

fn tiny() -> LlavaNextConfig {
    serde_json::from_str(
        r#"{"image_token_id": 30, "image_grid_pinpoints": [[8, 16], [16, 8]],
            "vision_config": {"hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "image_size": 8, "patch_size": 4},
            "text_config": {"model_type": "qwen2", "hidden_size": 16, "intermediate_size": 8,
                            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                            "vocab_size": 32}}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults() {
    let config: LlavaNextConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, LlavaNextConfig::default());
    assert_eq!(config.pinpoints().unwrap().len(), 5);
    assert_eq!(config.vision().unwrap().image_size, 336);
    assert_eq!(tiny().image_token_index, 30);
    let bad: LlavaNextConfig = serde_json::from_str(r#"{"image_grid_pinpoints": [[300, 672]]}"#).unwrap();
    assert!(bad.pinpoints().unwrap_err().to_string().contains("multiples"));
}

#[test]
fn best_resolution() {
    let pins = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];
    assert_eq!(select_best_resolution((500, 300), &pins).unwrap(), (672, 336));
    assert_eq!(select_best_resolution((300, 500), &pins).unwrap(), (336, 672));
    assert_eq!(select_best_resolution((800, 800), &pins).unwrap(), (672, 672));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let model = LlavaNextForConditionalGeneration::load(vb, &tiny()).unwrap();
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[1u32, 30, 30, 2]], &dev).unwrap();
    let mut inputs = ModelInputs::default();
    inputs.input_ids = Some(ids);
    // 3 tiles (base + 2) of 8 px for a 10x20 image.
    inputs.pixel_values = Some(Tensor::zeros((1, 3, 3, 8, 8), DType::F32, &dev).unwrap());
    let err = ForImageTextToText::forward(&model, &inputs).unwrap_err();
    assert!(err.to_string().contains("image_sizes"), "{err}");
    inputs.image_sizes = Some(Tensor::new(&[[10i64, 20]], &dev).unwrap());
    let err = ForImageTextToText::forward(&model, &inputs).unwrap_err();
    assert!(err.to_string().contains("tokens"), "{err}");
    inputs.pixel_values = Some(Tensor::zeros((1, 2, 3, 8, 8), DType::F32, &dev).unwrap());
    let err = ForImageTextToText::forward(&model, &inputs).unwrap_err();
    assert!(err.to_string().contains("needs 3 tiles"), "{err}");
    inputs.pixel_values = Some(Tensor::zeros((3, 8, 8), DType::F32, &dev).unwrap());
    let err = ForImageTextToText::forward(&model, &inputs).unwrap_err();
    assert!(err.to_string().contains("must have shape"), "{err}");
}
