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
