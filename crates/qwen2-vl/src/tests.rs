//! Tests on the `qwen2_vl-image-text-to-text` fixture: the cache path against the full pass,
//! and the errors for inputs that do not fit.

use std::collections::HashMap;
use std::path::PathBuf;

use autocandle_core::{ForImageTextToText, KvCache, LoadModel, ModelInputs};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::{Qwen2VLConfig, Qwen2VLForConditionalGeneration, ROPE_DELTAS};

fn fixture() -> (Qwen2VLForConditionalGeneration, HashMap<String, Tensor>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen2_vl-image-text-to-text");
    let config: Qwen2VLConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let model = Qwen2VLForConditionalGeneration::load(vb, &config).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
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
    let mut cache = KvCache::new();
    let first = model.forward_with_cache(&prompt, &mut cache).unwrap().logits;
    assert!(max_diff(&first, &full) < 1e-5);
    assert_eq!(cache.state(ROPE_DELTAS).unwrap().dims(), [2, 1]);
    // One more token per row, without position_ids: the mask's cumsum plus the deltas.
    let next =
        first.narrow(1, first.dim(1).unwrap() - 1, 1).unwrap().argmax(D::Minus1).unwrap().to_dtype(DType::I64).unwrap();
    let ones = Tensor::ones((2, 1), DType::I64, &Device::Cpu).unwrap();
    let mask = Tensor::cat(&[&t["attention_mask"], &ones], 1).unwrap();
    let mut step = ModelInputs::new(next.clone());
    step.attention_mask = Some(mask.clone());
    let stepped = model.forward_with_cache(&step, &mut cache).unwrap().logits;
    let mut longer = inputs(&t);
    longer.input_ids = Some(Tensor::cat(&[&t["input_ids"], &next], 1).unwrap());
    longer.attention_mask = Some(mask);
    longer.mm_token_type_ids = Some(Tensor::cat(&[&t["mm_token_type_ids"], &ones.zeros_like().unwrap()], 1).unwrap());
    let again = ForImageTextToText::forward(&model, &longer).unwrap().logits;
    let last = again.narrow(1, again.dim(1).unwrap() - 1, 1).unwrap();
    assert!(max_diff(&stepped, &last) < 1e-5, "{}", max_diff(&stepped, &last));
}

fn error_of(model: &Qwen2VLForConditionalGeneration, inputs: &ModelInputs) -> String {
    ForImageTextToText::forward(model, inputs).unwrap_err().to_string()
}

#[test]
fn inputs_that_do_not_fit_are_errors() {
    let (model, t) = fixture();
    // One image fewer than the prompt has runs of image tokens.
    let mut fewer = inputs(&t);
    fewer.image_grid_thw = Some(t["image_grid_thw"].narrow(0, 0, 2).unwrap());
    let n: usize = 16 + 12;
    fewer.pixel_values = Some(t["pixel_values"].narrow(0, 0, n).unwrap());
    let err = error_of(&model, &fewer);
    assert!(err.contains("image tokens"), "{err}");
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
    let err = error_of(&model, &none);
    assert!(err.contains("no `pixel_values`"), "{err}");
    let mut grid_only = inputs(&t);
    grid_only.pixel_values = None;
    assert!(error_of(&model, &grid_only).contains("without `pixel_values`"));
    let mut pixels_only = inputs(&t);
    pixels_only.image_grid_thw = None;
    assert!(error_of(&model, &pixels_only).contains("image_grid_thw"));
}

#[test]
fn flat_and_nested_text_configs_read_alike() {
    let nested: Qwen2VLConfig = serde_json::from_value(serde_json::json!({
        "text_config": {"hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 8,
                        "num_hidden_layers": 1, "vocab_size": 30, "rope_scaling": {"type": "mrope", "mrope_section": [1, 2, 1]}},
        "vision_config": {"depth": 1, "embed_dim": 8, "hidden_size": 16, "num_heads": 2}
    }))
    .unwrap();
    let flat: Qwen2VLConfig = serde_json::from_value(serde_json::json!({
        "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 8,
        "num_hidden_layers": 1, "vocab_size": 30, "rope_scaling": {"type": "mrope", "mrope_section": [1, 2, 1]},
        "vision_config": {"depth": 1, "embed_dim": 8, "hidden_size": 16, "num_heads": 2}
    }))
    .unwrap();
    let (a, b) = (nested.settings().unwrap(), flat.settings().unwrap());
    assert_eq!((a.text.hidden_size, a.text.vocab_size, &a.mrope_section), (16, 30, &vec![1, 2, 1]));
    assert_eq!((b.text.hidden_size, b.text.vocab_size, &b.mrope_section), (16, 30, &vec![1, 2, 1]));
    let bad: Qwen2VLConfig = serde_json::from_value(serde_json::json!({
        "text_config": {"hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "rope_parameters": {"mrope_section": [2, 2, 2]}},
        "vision_config": {"hidden_size": 16}
    }))
    .unwrap();
    assert!(bad.settings().unwrap_err().to_string().contains("mrope_section"));
}

#[test]
fn both_weight_layouts_and_the_base_model_load() {
    let (legacy, t) = fixture();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen2_vl-image-text-to-text");
    let config: Qwen2VLConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    // transformers 5's module names: `model.visual.*`, `model.language_model.*`, `lm_head`.
    let renamed: HashMap<String, Tensor> = weights
        .iter()
        .map(|(k, v)| {
            let k = if let Some(rest) = k.strip_prefix("visual.") {
                format!("model.visual.{rest}")
            } else if let Some(rest) = k.strip_prefix("model.") {
                format!("model.language_model.{rest}")
            } else {
                k.clone()
            };
            (k, v.clone())
        })
        .collect();
    let vb = VarBuilder::from_tensors(renamed, DType::F32, &Device::Cpu);
    let current = Qwen2VLForConditionalGeneration::load(vb, &config).unwrap();
    let want = ForImageTextToText::forward(&legacy, &inputs(&t)).unwrap().logits;
    let got = ForImageTextToText::forward(&current, &inputs(&t)).unwrap().logits;
    assert_eq!(max_diff(&want, &got), 0.0);
    // The base model from the head model's (original-layout) checkpoint.
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let base = crate::Qwen2VLModel::load(vb, &config).unwrap();
    let out = autocandle_core::Model::forward(&base, &inputs(&t)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 19, 36]);
    assert_eq!(out.extra("image_hidden_states").unwrap().dims(), [16 / 4 + 12 / 4 + 24 / 4, 36]);
}
