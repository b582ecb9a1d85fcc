//! The model on the parity fixtures of `tests/fixtures/gemma3-*` loaded directly (without the
//! Auto classes): outputs, cached against uncached passes, and the errors of bad inputs.

use std::collections::HashMap;
use std::path::PathBuf;

use autocandle_core::{ForImageTextToText, KvCache, LoadModel, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{Gemma3Config, Gemma3ForConditionalGeneration};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn config(name: &str) -> Gemma3Config {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("config.json")).unwrap()).unwrap()
}

fn load(name: &str) -> (Gemma3ForConditionalGeneration, HashMap<String, Tensor>) {
    let weights = candle_core::safetensors::load(fixture(name).join("model.safetensors"), &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let model = Gemma3ForConditionalGeneration::load(vb, &config(name)).unwrap();
    let reference = candle_core::safetensors::load(fixture(name).join("reference.safetensors"), &Device::Cpu).unwrap();
    (model, reference)
}

fn inputs(reference: &HashMap<String, Tensor>, names: &[&str]) -> ModelInputs {
    let mut inputs = ModelInputs::default();
    for name in names {
        inputs.set(name, reference[*name].clone()).unwrap();
    }
    inputs
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

const ALL: [&str; 4] = ["input_ids", "attention_mask", "pixel_values", "token_type_ids"];

#[test]
fn config_reads_the_saved_names_and_checks_the_pooling() {
    let cfg = config("gemma3-image-text-to-text");
    assert_eq!((cfg.image_token_index, cfg.boi_token_index, cfg.mm_tokens_per_image), (62, 60, 4));
    let aliased: Gemma3Config = serde_json::from_value(serde_json::json!({"image_token_id": 7})).unwrap();
    assert_eq!(aliased.image_token_index, 7);
    let mut bad = cfg.clone();
    bad.mm_tokens_per_image = 5;
    assert!(bad.pool_sizes().unwrap_err().to_string().contains("square"));
    bad.mm_tokens_per_image = 9;
    let err = bad.pool_sizes().unwrap_err().to_string();
    assert!(err.contains("4x4 patch grid") && err.contains("3x3"), "{err}");
    assert_eq!(cfg.pool_sizes().unwrap().kernel, 2);
}

#[test]
fn logits_and_image_features_match_transformers() {
    let (model, reference) = load("gemma3-image-text-to-text");
    let out = model.forward(&inputs(&reference, &ALL)).unwrap();
    let mask = reference["attention_mask"].to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let got = out.logits.broadcast_mul(&mask).unwrap();
    let want = reference["logits"].broadcast_mul(&mask).unwrap();
    assert!(max_diff(&got, &want) < 1e-4);
    let features = out.image_hidden_states.unwrap();
    assert_eq!(features.dims(), [2, 4, 20]);
    assert!(max_diff(&features, &reference["image_hidden_states"]) < 1e-4);
    // The image blocks matter: without `token_type_ids` the logits move.
    let causal = model.forward(&inputs(&reference, &ALL[..3])).unwrap();
    assert!(max_diff(&causal.logits.broadcast_mul(&mask).unwrap(), &want) > 1e-2);
}

#[test]
fn prefill_with_images_then_cached_steps_match_the_full_pass() {
    let (model, reference) = load("gemma3-image-text-to-text");
    let ids = &reference["gen.prompt_ids"];
    let out_ids = &reference["gen.output_ids"];
    let prompt_len = ids.dim(1).unwrap();
    let mut cache = KvCache::new();
    let prefill = inputs(&reference, &[]);
    let mut prefill = prefill;
    prefill.input_ids = Some(ids.clone());
    prefill.pixel_values = Some(reference["gen.pixel_values"].clone());
    prefill.token_type_ids = Some(reference["gen.token_type_ids"].clone());
    let first = model.forward_with_cache(&prefill, &mut cache).unwrap().logits;
    let next = out_ids.narrow(1, prompt_len, 1).unwrap();
    let step = model.forward_with_cache(&ModelInputs::new(next), &mut cache).unwrap().logits;
    // The whole sequence at once, with the prompt's token types extended by 0.
    let full_ids = out_ids.narrow(1, 0, prompt_len + 1).unwrap();
    let types =
        Tensor::cat(&[&reference["gen.token_type_ids"], &Tensor::zeros((1, 1), DType::I64, &Device::Cpu).unwrap()], 1)
            .unwrap();
    let mut full = ModelInputs::new(full_ids);
    full.pixel_values = Some(reference["gen.pixel_values"].clone());
    full.token_type_ids = Some(types);
    let all = model.forward(&full).unwrap().logits;
    assert!(max_diff(&first, &all.narrow(1, 0, prompt_len).unwrap()) < 1e-5);
    assert!(max_diff(&step, &all.narrow(1, prompt_len, 1).unwrap()) < 1e-5);
}

#[test]
fn bad_image_inputs_are_clear_errors() {
    let (model, reference) = load("gemma3-image-text-to-text");
    let base = inputs(&reference, &ALL);
    let pixels = &reference["pixel_values"];
    let run = |edit: &dyn Fn(&mut ModelInputs)| {
        let mut i = base.clone();
        edit(&mut i);
        model.forward(&i).unwrap_err().to_string()
    };
    // More images than runs of image tokens, and fewer.
    let three = Tensor::cat(&[pixels, &pixels.narrow(0, 0, 1).unwrap()], 0).unwrap();
    let err = run(&|i| i.pixel_values = Some(three.clone()));
    assert!(err.contains("8 image tokens") && err.contains("12 features"), "{err}");
    let err = run(&|i| i.pixel_values = Some(pixels.narrow(0, 0, 1).unwrap()));
    assert!(err.contains("8 image tokens") && err.contains("4 features"), "{err}");
    // Images of another size, or not images at all.
    let small = Tensor::zeros((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let err = run(&|i| i.pixel_values = Some(small.clone()));
    assert!(err.contains("[images, channels, 16, 16]"), "{err}");
    let flat = pixels.flatten_from(1).unwrap();
    let err = run(&|i| i.pixel_values = Some(flat.clone()));
    assert!(err.contains("pixel_values"), "{err}");
    // Image tokens without images are ordinary tokens, as in transformers.
    let mut text_only = base.clone();
    text_only.pixel_values = None;
    assert!(model.forward(&text_only).is_ok());
    // `token_type_ids` of another shape.
    let err = run(&|i| i.token_type_ids = Some(reference["token_type_ids"].narrow(1, 0, 3).unwrap()));
    assert!(err.contains("token_type_ids"), "{err}");
}

#[test]
fn text_only_prompts_run_without_images() {
    let (model, reference) = load("gemma3-causal-lm-text-only");
    let out = model.forward(&inputs(&reference, &["input_ids", "attention_mask"])).unwrap();
    assert!(out.image_hidden_states.is_none());
    let mask = reference["attention_mask"].to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let diff = max_diff(&out.logits.broadcast_mul(&mask).unwrap(), &reference["logits"].broadcast_mul(&mask).unwrap());
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn module_layout_loads_too() {
    // `model.language_model.*`, `model.vision_tower.vision_model.*`, `lm_head`: the module
    // names of `Gemma3ForConditionalGeneration` (and SigLIP's older `vision_model.` level).
    let name = "gemma3-multimodal-lm-untied-softcap";
    let (original, reference) = load(name);
    let weights = candle_core::safetensors::load(fixture(name).join("model.safetensors"), &Device::Cpu).unwrap();
    let renamed: HashMap<String, Tensor> = weights
        .into_iter()
        .map(|(k, v)| {
            let k = if let Some(rest) = k.strip_prefix("language_model.model.") {
                format!("model.language_model.{rest}")
            } else if let Some(rest) = k.strip_prefix("language_model.lm_head.") {
                format!("lm_head.{rest}")
            } else if let Some(rest) = k.strip_prefix("vision_tower.") {
                format!("model.vision_tower.vision_model.{rest}")
            } else {
                format!("model.{k}")
            };
            (k, v)
        })
        .collect();
    assert!(renamed.contains_key("lm_head.weight"));
    let vb = VarBuilder::from_tensors(renamed, DType::F32, &Device::Cpu);
    let modules = Gemma3ForConditionalGeneration::load(vb, &config(name)).unwrap();
    let i = inputs(&reference, &ALL);
    let (a, b) = (original.forward(&i).unwrap().logits, modules.forward(&i).unwrap().logits);
    assert_eq!(max_diff(&a, &b), 0.0);
}
