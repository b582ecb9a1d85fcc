//! Unit tests.

use super::*;

#[test]
fn reads_a_nested_config() {
    let config: Qwen3VLConfig = serde_json::from_str(
        r#"{"model_type": "qwen3_vl", "image_token_id": 151655, "tie_word_embeddings": true,
            "text_config": {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 500,
              "rope_parameters": {"rope_type": "default", "rope_theta": 5000000, "mrope_section": [3, 3, 2],
                                  "mrope_interleaved": true}},
            "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2,
              "out_hidden_size": 64, "patch_size": 4, "num_position_embeddings": 17,
              "deepstack_visual_indexes": [0, 1]}}"#,
    )
    .unwrap();
    let s = config.settings().unwrap();
    assert_eq!((s.text.hidden_size, s.text.head_dim, s.text.num_hidden_layers), (64, 16, 3));
    assert!(s.text.options.qk_norm && s.text.tie_word_embeddings);
    assert_eq!(s.mrope_section, [3, 3, 2]);
    assert_eq!((s.vision.num_grid_per_side(), s.vision.patch_values()), (4, 3 * 2 * 4 * 4));
    let mut bad = config.clone();
    bad.vision_config.out_hidden_size = 7;
    assert!(bad.settings().unwrap_err().to_string().contains("hidden_size"));
}
