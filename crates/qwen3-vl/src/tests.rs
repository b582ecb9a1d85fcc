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

mod on_the_fixture {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use autocandle_core::{ForImageTextToText, KvCache, LoadModel, ModelInputs};
    use candle_core::{DType, Device, Tensor, D};
    use candle_nn::VarBuilder;

    use crate::{Qwen3VLConfig, Qwen3VLForConditionalGeneration};

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl-image-text-to-text")
    }

    fn config() -> Qwen3VLConfig {
        serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap()
    }

    fn weights() -> HashMap<String, Tensor> {
        candle_core::safetensors::load(dir().join("model.safetensors"), &Device::Cpu).unwrap()
    }

    fn fixture() -> (Qwen3VLForConditionalGeneration, HashMap<String, Tensor>) {
        let vb = VarBuilder::from_tensors(weights(), DType::F32, &Device::Cpu);
        let model = Qwen3VLForConditionalGeneration::load(vb, &config()).unwrap();
        let tensors = candle_core::safetensors::load(dir().join("reference.safetensors"), &Device::Cpu).unwrap();
        (model, tensors)
    }

    fn inputs(t: &HashMap<String, Tensor>) -> ModelInputs {
        let mut inputs = ModelInputs::default();
        for name in ["input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids"] {
            inputs.set(name, t[name].clone()).unwrap();
        }
        inputs
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn cached_steps_match_the_full_pass() {
        let (model, t) = fixture();
        let prompt = inputs(&t);
        let full = ForImageTextToText::forward(&model, &prompt).unwrap().logits;
        // Row 0 has no padding (the padded positions of row 1 are not compared).
        let row0 = |x: &Tensor| x.narrow(0, 0, 1).unwrap();
        assert!(max_diff(&row0(&full), &row0(&t["logits"])) < 1e-4);
        let mut cache = KvCache::new();
        let first = model.forward_with_cache(&prompt, &mut cache).unwrap().logits;
        assert!(max_diff(&first, &full) < 1e-5);
        let next = first
            .narrow(1, first.dim(1).unwrap() - 1, 1)
            .unwrap()
            .argmax(D::Minus1)
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap();
        let ones = Tensor::ones((2, 1), DType::I64, &Device::Cpu).unwrap();
        let mask = Tensor::cat(&[&t["attention_mask"], &ones], 1).unwrap();
        let mut step = ModelInputs::new(next.clone());
        step.attention_mask = Some(mask.clone());
        let stepped = model.forward_with_cache(&step, &mut cache).unwrap().logits;
        let mut longer = inputs(&t);
        longer.input_ids = Some(Tensor::cat(&[&t["input_ids"], &next], 1).unwrap());
        longer.attention_mask = Some(mask);
        longer.mm_token_type_ids =
            Some(Tensor::cat(&[&t["mm_token_type_ids"], &ones.zeros_like().unwrap()], 1).unwrap());
        let again = ForImageTextToText::forward(&model, &longer).unwrap().logits;
        let last = again.narrow(1, again.dim(1).unwrap() - 1, 1).unwrap();
        assert!(max_diff(&stepped, &last) < 1e-5, "{}", max_diff(&stepped, &last));
    }

    fn error_of(model: &Qwen3VLForConditionalGeneration, inputs: &ModelInputs) -> String {
        ForImageTextToText::forward(model, inputs).unwrap_err().to_string()
    }

    #[test]
    fn inputs_that_do_not_fit_are_errors() {
        let (model, t) = fixture();
        // One image fewer than the prompt has runs of image tokens.
        let mut fewer = inputs(&t);
        fewer.image_grid_thw = Some(t["image_grid_thw"].narrow(0, 0, 2).unwrap());
        fewer.pixel_values = Some(t["pixel_values"].narrow(0, 0, 16 + 12).unwrap());
        let err = error_of(&model, &fewer);
        assert!(err.contains("image tokens"), "{err}");
        // One image more.
        let mut more = inputs(&t);
        more.image_grid_thw =
            Some(Tensor::cat(&[&t["image_grid_thw"], &t["image_grid_thw"].narrow(0, 0, 1).unwrap()], 0).unwrap());
        more.pixel_values =
            Some(Tensor::cat(&[&t["pixel_values"], &t["pixel_values"].narrow(0, 0, 16).unwrap()], 0).unwrap());
        let err = error_of(&model, &more);
        assert!(err.contains("image tokens") || err.contains("images"), "{err}");
        // Pixel rows of the wrong width.
        let mut wide = inputs(&t);
        wide.pixel_values = Some(Tensor::zeros((52, 25), DType::F32, &Device::Cpu).unwrap());
        let err = error_of(&model, &wide);
        assert!(err.contains("pixel_values") && err.contains("[52, 24]"), "{err}");
        // A grid smaller than one merge square.
        let mut small = inputs(&t);
        small.image_grid_thw = Some(Tensor::new(&[[1i64, 1, 52]], &Device::Cpu).unwrap());
        let err = error_of(&model, &small);
        assert!(err.contains("spatial_merge_size"), "{err}");
        // Image tokens without pixel_values; a grid without pixels; pixels without a grid.
        let mut none = inputs(&t);
        none.pixel_values = None;
        none.image_grid_thw = None;
        assert!(error_of(&model, &none).contains("no `pixel_values`"));
        let mut grid_only = inputs(&t);
        grid_only.pixel_values = None;
        assert!(error_of(&model, &grid_only).contains("without `pixel_values`"));
        let mut pixels_only = inputs(&t);
        pixels_only.image_grid_thw = None;
        assert!(error_of(&model, &pixels_only).contains("image_grid_thw"));
    }

    #[test]
    fn the_base_model_loads_from_the_head_checkpoint() {
        let (head, t) = fixture();
        let vb = VarBuilder::from_tensors(weights(), DType::F32, &Device::Cpu);
        let base = crate::Qwen3VLModel::load(vb, &config()).unwrap();
        let out = autocandle_core::Model::forward(&base, &inputs(&t)).unwrap();
        assert_eq!(out.last_hidden_state.dims(), [2, 19, 36]);
        assert_eq!(out.extra("image_hidden_states").unwrap().dims(), [13, 36]);
        let _ = head;
    }
}

/// The `config.json` of the released Qwen3-VL-2B-Instruct checkpoint (`rope_scaling` and
/// `rope_theta` in `text_config`, as transformers 4.57 wrote it).
#[test]
fn reads_the_released_config() {
    let config: Qwen3VLConfig = serde_json::from_str(
        r#"{"architectures": ["Qwen3VLForConditionalGeneration"], "image_token_id": 151655, "model_type": "qwen3_vl",
        "text_config": {"attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
          "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
          "intermediate_size": 6144, "max_position_embeddings": 262144, "model_type": "qwen3_vl_text",
          "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
          "rope_scaling": {"mrope_interleaved": true, "mrope_section": [24, 20, 20], "rope_type": "default"},
          "rope_theta": 5000000, "tie_word_embeddings": true, "use_cache": true, "vocab_size": 151936},
        "tie_word_embeddings": true, "transformers_version": "4.57.0.dev0", "video_token_id": 151656,
        "vision_config": {"deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
          "hidden_size": 1024, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4096,
          "model_type": "qwen3_vl", "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 2048,
          "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2},
        "vision_end_token_id": 151653, "vision_start_token_id": 151652}"#,
    )
    .unwrap();
    let s = config.settings().unwrap();
    assert_eq!((s.text.hidden_size, s.text.head_dim, s.text.num_hidden_layers), (2048, 128, 28));
    assert!(s.text.tie_word_embeddings && s.text.options.qk_norm);
    let inv = s.text.rope.inv_freq(0);
    assert!((f64::from(inv[1]) - 5_000_000f64.powf(-2.0 / 128.0)).abs() < 1e-6, "{}", inv[1]);
    assert_eq!(s.mrope_section, [24, 20, 20]);
    assert_eq!((s.vision.num_grid_per_side(), s.vision.patch_values()), (48, 3 * 2 * 16 * 16));
    assert_eq!(s.vision.deepstack_visual_indexes, [5, 11, 17]);
}
