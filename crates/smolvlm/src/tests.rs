//! Unit tests: the config is Idefics3's under another model type, and an all-padding batch
//! keeps its first image (where Idefics3 drops them all). Parity with `transformers` is
//! checked by `tests/parity.rs`.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{ArchConfig, ForImageTextToText, ModelInputs};
use autocandle_idefics3::{Idefics3Config, Idefics3ForConditionalGeneration};
use autocandle_testing::{fresh_with_weights, CPU};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::{SmolVLMConfig, SmolVLMForConditionalGeneration};

fn tiny() -> SmolVLMConfig {
    serde_json::from_str(
        r#"{"image_token_id": 5,
            "vision_config": {"hidden_size": 6, "intermediate_size": 7, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "image_size": 8, "patch_size": 2},
            "text_config": {"vocab_size": 20, "hidden_size": 8, "intermediate_size": 9, "num_hidden_layers": 1,
                            "num_attention_heads": 2, "num_key_value_heads": 1}}"#,
    )
    .unwrap()
}

#[test]
fn config_is_idefics3s() {
    let config: SmolVLMConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config.0, Idefics3Config::default());
    assert_eq!(config.model_type(), "smolvlm");
    assert_eq!(tiny().image_token_id, 5);
}

#[test]
fn all_padding_keeps_the_first_image() {
    let (model, map): (SmolVLMForConditionalGeneration, _) = fresh_with_weights(&tiny());
    let ids = Tensor::new(&[[1u32, 5, 5, 5, 5, 7]], CPU).unwrap();
    let mut x = ModelInputs::new(ids.clone());
    x.pixel_values = Some(Tensor::zeros((1, 2, 3, 8, 8), DType::F32, CPU).unwrap());
    let out = ForImageTextToText::forward(&model, &x).unwrap();
    assert_eq!(out.image_hidden_states.unwrap().dims(), [1, 4, 8]);
    // Idefics3 on the same weights drops both: the 4 image tokens then have no features.
    let idefics3 = Idefics3ForConditionalGeneration::load_as(
        VarBuilder::from_varmap(&map, DType::F32, CPU),
        &tiny().0,
        autocandle_idefics3::Flavor::Idefics3,
    )
    .unwrap();
    let err = ForImageTextToText::forward(&idefics3, &x).unwrap_err().to_string();
    assert!(err.contains("4 image tokens") && err.contains("0 features"), "{err}");
}
