//! Unit tests: config defaults and aliases, errors of bad inputs on fresh weights. Parity with
//! `transformers` is checked by `tests/parity.rs` on the `llava-*` fixtures.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ForImageTextToText, LoadModel, ModelInputs};
use candle_core::{Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{LlavaConfig, LlavaForConditionalGeneration, SelectStrategy, VisionFeatureLayer};

fn tiny() -> LlavaConfig {
    serde_json::from_str(
        r#"{"image_token_id": 30, "vision_feature_layer": [-1, 0],
            "vision_config": {"hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "image_size": 8, "patch_size": 4},
            "text_config": {"model_type": "qwen2", "hidden_size": 16, "intermediate_size": 8,
                            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                            "vocab_size": 32}}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_and_alias() {
    let config: LlavaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, LlavaConfig::default());
    let vision = config.vision().unwrap();
    assert_eq!(
        (vision.hidden_size, vision.image_size, vision.patch_size, vision.num_hidden_layers),
        (1024, 336, 14, 24)
    );
    assert_eq!(config.text_spec().unwrap().hidden_size, 4096);
    assert_eq!(config.vision_feature_layer, VisionFeatureLayer::One(-2));
    assert_eq!(config.vision_feature_select_strategy, SelectStrategy::Default);
    let tiny = tiny();
    assert_eq!((tiny.image_token_index, tiny.vision_feature_layer.indices()), (30, vec![-1, 0]));
    let siglip: LlavaConfig =
        serde_json::from_str(r#"{"vision_config": {"model_type": "siglip_vision_model"}}"#).unwrap();
    assert!(siglip.vision().unwrap_err().to_string().contains("siglip_vision_model"));
    assert!(serde_json::from_str::<LlavaConfig>(r#"{"vision_feature_select_strategy": "cls"}"#).is_err());
    let tied: LlavaConfig = serde_json::from_str(r#"{"text_config": {"tie_word_embeddings": true}}"#).unwrap();
    assert!(tied.tied() && tied.text_spec().unwrap().tie_word_embeddings);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let vb = VarBuilder::from_varmap(&VarMap::new(), candle_core::DType::F32, &Device::Cpu);
    let model = LlavaForConditionalGeneration::load(vb, &tiny()).unwrap();
    let dev = Device::Cpu;
    // (8 / 4)^2 = 4 patches per image, the class token dropped.
    let ids = Tensor::new(&[[1i64, 30, 30, 30, 30, 5]], &dev).unwrap();
    let pixels = Tensor::zeros((1, 3, 8, 8), candle_core::DType::F32, &dev).unwrap();
    let mut inputs = ModelInputs::new(ids.clone());
    inputs.pixel_values = Some(pixels.clone());
    let out = model.forward(&inputs).unwrap();
    assert_eq!(out.logits.dims(), [1, 6, 32]);
    assert_eq!(out.image_hidden_states.unwrap().dims(), [1, 4, 16]);
    // Two images, one run of image tokens.
    inputs.pixel_values = Some(Tensor::cat(&[&pixels, &pixels], 0).unwrap());
    let err = model.forward(&inputs).unwrap_err().to_string();
    assert!(err.contains("4 image tokens") && err.contains("8 features"), "{err}");
    // Image tokens without images are ordinary tokens, as in transformers.
    inputs.pixel_values = None;
    assert!(model.forward(&inputs).is_ok());
    // Images of the wrong size, and of the wrong rank.
    inputs.pixel_values = Some(Tensor::zeros((1, 3, 6, 6), candle_core::DType::F32, &dev).unwrap());
    assert!(model.forward(&inputs).is_err());
    inputs.pixel_values = Some(Tensor::zeros((3, 8, 8), candle_core::DType::F32, &dev).unwrap());
    let err = model.forward(&inputs).unwrap_err().to_string();
    assert!(err.contains("[images, channels, height, width]"), "{err}");
    // Text alone.
    let text = ModelInputs::new(Tensor::new(&[[1i64, 2, 3]], &dev).unwrap());
    assert_eq!(model.forward(&text).unwrap().logits.dims(), [1, 3, 32]);
    // A feature layer past the tower.
    let mut bad = tiny();
    bad.vision_feature_layer = VisionFeatureLayer::One(3);
    let vb = VarBuilder::from_varmap(&VarMap::new(), candle_core::DType::F32, &Device::Cpu);
    assert!(LlavaForConditionalGeneration::load(vb, &bad).unwrap_err().to_string().contains("out of range"));
}
