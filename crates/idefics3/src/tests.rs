//! Unit tests: config defaults, bucketized position ids (values from `transformers`), the
//! cache against whole-sequence runs, and the errors on bad inputs. Parity of the
//! registered heads with `transformers` is checked by `tests/parity.rs`.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Activation, ForImageTextToText, KvCache, ModelInputs};
use autocandle_testing::{fresh, max_diff, CPU};
use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Idefics3Config, Idefics3ForConditionalGeneration, Idefics3VisionConfig, Idefics3VisionTransformer};

const IMAGE: u32 = 5;

fn tiny() -> Idefics3Config {
    serde_json::from_str(
        r#"{"image_token_id": 5, "scale_factor": 2,
            "vision_config": {"hidden_size": 6, "intermediate_size": 7, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "image_size": 8, "patch_size": 2},
            "text_config": {"vocab_size": 20, "hidden_size": 8, "intermediate_size": 9, "num_hidden_layers": 2,
                            "num_attention_heads": 2, "num_key_value_heads": 1}}"#,
    )
    .unwrap()
}

/// `[1, images, 3, 8, 8]` random pixels.
fn pixels(images: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (1, images, 3, 8, 8), CPU).unwrap()
}

/// A prompt with `runs` runs of 4 image tokens (one image each: a 4x4 grid shuffled by 2).
fn prompt(runs: usize) -> Vec<u32> {
    let mut ids = vec![1, 7];
    for _ in 0..runs {
        ids.extend([IMAGE; 4]);
        ids.push(9);
    }
    ids.push(11);
    ids
}

fn inputs(ids: &[u32], pixel_values: Option<Tensor>) -> ModelInputs {
    let mut x = ModelInputs::new(Tensor::new(ids, CPU).unwrap().unsqueeze(0).unwrap());
    x.pixel_values = pixel_values;
    x
}

fn error(model: &Idefics3ForConditionalGeneration, x: &ModelInputs) -> String {
    ForImageTextToText::forward(model, x).unwrap_err().to_string()
}

#[test]
fn config_defaults_match_transformers() {
    let config: Idefics3Config = serde_json::from_str("{}").unwrap();
    assert_eq!(config, Idefics3Config::default());
    assert_eq!((config.image_token_id, config.scale_factor, config.tie_word_embeddings), (128257, 2, false));
    let v = &config.vision_config;
    assert_eq!((v.hidden_size, v.intermediate_size, v.num_hidden_layers, v.num_attention_heads), (1152, 3072, 12, 16));
    assert_eq!((v.image_size, v.patch_size, v.hidden_act, v.layer_norm_eps), (224, 32, Activation::GeluTanh, 1e-6));
    // No text_config: `LlamaConfig(rms_norm_eps=1e-5)`.
    let spec = config.text_spec("idefics3").unwrap();
    assert_eq!((spec.hidden_size, spec.vocab_size, spec.rms_norm_eps), (4096, 32000, 1e-5));
    let config: Idefics3Config =
        serde_json::from_str(r#"{"vision_config": null, "tie_word_embeddings": true}"#).unwrap();
    assert_eq!(config.vision_config, Idefics3VisionConfig::default());
    assert!(config.text_spec("idefics3").unwrap().tie_word_embeddings);
    let bad: Idefics3Config = serde_json::from_str(r#"{"scale_factor": 0}"#).unwrap();
    assert!(bad.validate("idefics3").unwrap_err().to_string().contains("scale_factor"));
}

#[test]
fn position_ids_match_transformers() {
    // From `Idefics3VisionEmbeddings` (transformers 5.25) on a grid of `side` patches per side
    // with the real patches in the top-left `rows x cols`.
    let cases: [(usize, usize, usize, &[u32]); 3] = [
        (4, 3, 4, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0]),
        (5, 5, 2, &[0, 2, 0, 0, 0, 5, 7, 0, 0, 0, 10, 12, 0, 0, 0, 15, 17, 0, 0, 0, 20, 22, 0, 0, 0]),
        (3, 2, 3, &[0, 1, 2, 3, 4, 5, 0, 0, 0]),
    ];
    for (side, rows, cols, want) in cases {
        let config = Idefics3VisionConfig {
            hidden_size: 4,
            num_attention_heads: 1,
            num_hidden_layers: 0,
            image_size: side * 2,
            patch_size: 2,
            ..Default::default()
        };
        let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, CPU);
        let vision = Idefics3VisionTransformer::load(vb, &config).unwrap();
        let mask: Vec<bool> = (0..side * side).map(|i| i / side < rows && i % side < cols).collect();
        assert_eq!(vision.position_ids(&mask, side, side), want, "{side} {rows} {cols}");
    }
}

#[test]
fn cache_matches_the_whole_sequence() {
    let model: Idefics3ForConditionalGeneration = fresh(&tiny());
    let ids = prompt(2);
    let px = pixels(2);
    let whole = ForImageTextToText::forward(&model, &inputs(&ids, Some(px.clone()))).unwrap();
    assert_eq!(whole.image_hidden_states.as_ref().unwrap().dims(), [2, 4, 8]);
    let n = ids.len();
    let mut cache = KvCache::new();
    let first = model.forward_with_cache(&inputs(&ids[..n - 2], Some(px)), &mut cache).unwrap();
    let mut step_inputs = inputs(&ids[n - 2..], None);
    let rest = model.forward_with_cache(&step_inputs, &mut cache).unwrap();
    let joined = Tensor::cat(&[first.logits, rest.logits], 1).unwrap();
    assert!(max_diff(&joined, &whole.logits) < 1e-5);
    // Text only, no images at all.
    step_inputs = inputs(&[1, 7, 9], None);
    assert!(ForImageTextToText::forward(&model, &step_inputs).unwrap().image_hidden_states.is_none());
}

#[test]
fn padded_image_slots_are_dropped() {
    let model: Idefics3ForConditionalGeneration = fresh(&tiny());
    let px = pixels(1);
    let padded = Tensor::cat(&[px.clone(), Tensor::zeros((1, 1, 3, 8, 8), DType::F32, CPU).unwrap()], 1).unwrap();
    let one = ForImageTextToText::forward(&model, &inputs(&prompt(1), Some(px))).unwrap();
    let with_pad = ForImageTextToText::forward(&model, &inputs(&prompt(1), Some(padded))).unwrap();
    assert!(max_diff(&one.logits, &with_pad.logits) < 1e-6);
    // Idefics3 drops every image of an all-padding batch: a text-only prompt then runs.
    let zeros = Tensor::zeros((1, 2, 3, 8, 8), DType::F32, CPU).unwrap();
    let out = ForImageTextToText::forward(&model, &inputs(&prompt(0), Some(zeros))).unwrap();
    assert_eq!(out.image_hidden_states.unwrap().dims(), [0, 4, 8]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let model: Idefics3ForConditionalGeneration = fresh(&tiny());
    let e = error(&model, &inputs(&prompt(1), Some(pixels(2))));
    assert!(e.contains("4 image tokens") && e.contains("8 features"), "{e}");
    let e = error(&model, &inputs(&prompt(2), Some(pixels(1))));
    assert!(e.contains("8 image tokens") && e.contains("4 features"), "{e}");
    // Image tokens without images are ordinary tokens, as in transformers.
    assert!(ForImageTextToText::forward(&model, &inputs(&prompt(1), None)).is_ok());
    let small = Tensor::randn(0f32, 1.0, (1, 1, 3, 1, 8), CPU).unwrap();
    let e = error(&model, &inputs(&prompt(1), Some(small)));
    assert!(e.contains("too small"), "{e}");
    let flat = Tensor::randn(0f32, 1.0, (1, 3, 8, 8), CPU).unwrap();
    let e = error(&model, &inputs(&prompt(1), Some(flat)));
    assert!(e.contains("[batch, images, channels, height, width]"), "{e}");
    let gray = Tensor::randn(0f32, 1.0, (1, 1, 1, 8, 8), CPU).unwrap();
    let e = error(&model, &inputs(&prompt(1), Some(gray)));
    assert!(e.contains("channels"), "{e}");
    let wide = Tensor::randn(0f32, 1.0, (1, 1, 3, 8, 16), CPU).unwrap();
    let e = error(&model, &inputs(&prompt(1), Some(wide)));
    assert!(e.contains("square grid"), "{e}");
    let mut x = inputs(&prompt(1), Some(pixels(1)));
    x.pixel_attention_mask = Some(Tensor::ones((1, 1, 8, 4), DType::I64, CPU).unwrap());
    let e = error(&model, &x);
    assert!(e.contains("`pixel_attention_mask` has shape"), "{e}");
}

#[test]
fn half_precision_runs() {
    let config = tiny();
    let (model, map): (Idefics3ForConditionalGeneration, _) = autocandle_testing::fresh_with_weights(&config);
    // The same weights in f16.
    let weights: std::collections::HashMap<String, Tensor> = map
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().to_dtype(DType::F16).unwrap()))
        .collect();
    let half = Idefics3ForConditionalGeneration::load_as(
        VarBuilder::from_tensors(weights, DType::F16, CPU),
        &config,
        crate::Flavor::Idefics3,
    )
    .unwrap();
    let x = inputs(&prompt(1), Some(pixels(1)));
    let want = ForImageTextToText::forward(&model, &x).unwrap().logits;
    let got = ForImageTextToText::forward(&half, &x).unwrap().logits;
    assert_eq!(got.dtype(), DType::F16);
    let diff = max_diff(&got.to_dtype(DType::F32).unwrap(), &want);
    assert!(diff < 0.1, "{diff}");
}
