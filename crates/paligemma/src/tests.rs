//! Unit tests: config defaults and checks.

use serde_json::json;

use crate::PaliGemmaConfig;

#[test]
fn defaults_follow_transformers() {
    let config: PaliGemmaConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config.image_token_index, 256000);
    let vision = config.vision().unwrap();
    assert_eq!((vision.hidden_size, vision.patch_size, vision.image_size), (1152, 14, 224));
    assert!(!vision.vision_use_head);
    let text = config.text_spec().unwrap();
    assert_eq!((text.hidden_size, text.vocab_size), (2048, 257152));
    assert!(text.options.scaled_embedding_layer);
    assert_eq!(config.num_image_tokens().unwrap(), 256);
}

#[test]
fn reads_saved_configs() {
    let config: PaliGemmaConfig = serde_json::from_value(json!({
        "image_token_id": 7, "projection_dim": 16,
        "vision_config": {"hidden_size": 8, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
                          "image_size": 12, "patch_size": 4, "vision_use_head": true},
        "text_config": {"model_type": "gemma2", "hidden_size": 16, "intermediate_size": 8, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "vocab_size": 30,
                        "use_bidirectional_attention": true}
    }))
    .unwrap();
    assert_eq!(config.image_token_index, 7);
    assert!(!config.vision().unwrap().vision_use_head);
    assert_eq!(config.validate().unwrap().1.vocab_size, 30);
    let bad = PaliGemmaConfig { projection_dim: 12, ..config.clone() };
    assert!(bad.validate().unwrap_err().to_string().contains("projection_dim"));
    let other = PaliGemmaConfig { text_config: Some(json!({"model_type": "gpt2"})), ..config };
    assert!(other.text_spec().unwrap_err().to_string().contains("gpt2"));
}

mod inputs {
    use std::path::PathBuf;

    use autocandle_core::{ForImageTextToText, LoadModel, ModelInputs};
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;

    use crate::{PaliGemmaConfig, PaliGemmaForImageTextToText};

    /// The model of the `paligemma-image-text-to-text` fixture: 25 image tokens (id 61) per
    /// 30x30 image.
    fn fixture_model() -> PaliGemmaForImageTextToText {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/paligemma-image-text-to-text");
        let config: PaliGemmaConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        PaliGemmaForImageTextToText::load(vb, &config).unwrap()
    }

    fn prompt(image_tokens: usize) -> Tensor {
        let mut ids = vec![61u32; image_tokens];
        ids.extend([2, 5, 6, 3]);
        let n = ids.len();
        Tensor::from_vec(ids, (1, n), &Device::Cpu).unwrap()
    }

    fn pixels(n: usize, size: usize) -> Tensor {
        Tensor::zeros((n, 3, size, size), DType::F32, &Device::Cpu).unwrap()
    }

    fn error(model: &PaliGemmaForImageTextToText, inputs: ModelInputs) -> String {
        model.forward(&inputs).unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let model = fixture_model();
        let ok = ModelInputs::new(prompt(25)).with_pixel_values(pixels(1, 30));
        let out = model.forward(&ok).unwrap();
        assert_eq!(out.logits.dims(), [1, 29, 62]);
        assert_eq!(out.image_hidden_states.unwrap().dims(), [1, 25, 32]);

        let more_images = error(&model, ModelInputs::new(prompt(25)).with_pixel_values(pixels(2, 30)));
        assert!(more_images.contains("25 image tokens") && more_images.contains("50 features"), "{more_images}");
        let more_tokens = error(&model, ModelInputs::new(prompt(50)).with_pixel_values(pixels(1, 30)));
        assert!(more_tokens.contains("50 image tokens") && more_tokens.contains("25 features"), "{more_tokens}");
        // Image tokens without images are ordinary tokens, as in transformers.
        assert!(ForImageTextToText::forward(&model, &ModelInputs::new(prompt(25))).is_ok());
        let small = error(&model, ModelInputs::new(prompt(25)).with_pixel_values(pixels(1, 5)));
        assert!(small.contains("(5x5) doesn't match the model (30x30)"), "{small}");
        let rank = ModelInputs::new(prompt(25))
            .with_pixel_values(Tensor::zeros((3, 30, 30), DType::F32, &Device::Cpu).unwrap());
        let rank = error(&model, rank);
        assert!(rank.contains("pixel_values"), "{rank}");
        let types = ModelInputs::new(prompt(25))
            .with_pixel_values(pixels(1, 30))
            .with_token_type_ids(Tensor::zeros((1, 3), DType::U32, &Device::Cpu).unwrap());
        let types = error(&model, types);
        assert!(types.contains("token_type_ids"), "{types}");
    }
}
