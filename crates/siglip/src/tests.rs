//! Unit tests: configs (defaults, partial sub-configs), the heads on fresh weights, pooling
//! and masking, errors, and loading the towers from the parity fixtures' folders.
//! Parity of the registered heads with `transformers` is checked by `tests/parity.rs`.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_clip::layers::l2_normalize;
use autocandle_core::{
    Activation, Error, ForImageClassification, ForZeroShotImageClassification, LoadModel, Model, ModelInputs,
    ModelOutput,
};
use autocandle_testing::{fresh, ids, max_diff, path, pixels, reference, CPU};
use candle_core::{DType, IndexOp, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use crate::{
    SiglipConfig, SiglipForImageClassification, SiglipModel, SiglipTextConfig, SiglipTextModel, SiglipVisionConfig,
    SiglipVisionModel,
};

fn tiny() -> SiglipConfig {
    serde_json::from_str(
        r#"{"num_labels": 3,
            "text_config": {"vocab_size": 20, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
                            "num_attention_heads": 2, "max_position_embeddings": 6, "projection_size": 12},
            "vision_config": {"hidden_size": 12, "intermediate_size": 10, "num_hidden_layers": 2,
                              "num_attention_heads": 3, "image_size": 10, "patch_size": 3}}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let config: SiglipConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, SiglipConfig::default());
    assert_eq!(config.initializer_factor, 1.0);
    let text = &config.text_config;
    assert_eq!(
        (text.vocab_size, text.hidden_size, text.intermediate_size, text.num_hidden_layers),
        (32000, 768, 3072, 12)
    );
    assert_eq!((text.max_position_embeddings, text.hidden_act, text.layer_norm_eps), (64, Activation::GeluTanh, 1e-6));
    assert_eq!((text.projection_size, text.projection_size()), (None, 768));
    let vision = &config.vision_config;
    assert_eq!(
        (vision.hidden_size, vision.num_attention_heads, vision.image_size, vision.patch_size),
        (768, 12, 224, 16)
    );
    assert_eq!((vision.hidden_act, vision.layer_norm_eps, vision.vision_use_head), (Activation::GeluTanh, 1e-6, true));
    assert_eq!(serde_json::from_str::<SiglipTextConfig>("{}").unwrap(), SiglipTextConfig::default());
    assert_eq!(serde_json::from_str::<SiglipVisionConfig>("{}").unwrap(), SiglipVisionConfig::default());

    // Partial or null sub-configs take the defaults for what they leave out.
    let config: SiglipConfig =
        serde_json::from_str(r#"{"text_config": {"hidden_size": 64, "projection_size": null}, "vision_config": null}"#)
            .unwrap();
    assert_eq!((config.text_config.hidden_size, config.text_config.projection_size()), (64, 64));
    assert_eq!(config.text_config.vocab_size, 32000);
    assert_eq!(config.vision_config, SiglipVisionConfig::default());
    let config = tiny();
    let back: SiglipConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn invalid_configs_are_errors() {
    let map = VarMap::new();
    let build = |config: &SiglipConfig| {
        SiglipModel::load(VarBuilder::from_varmap(&map, DType::F32, CPU), config).unwrap_err().to_string()
    };
    let mut config = tiny();
    config.vision_config.vision_use_head = false;
    assert!(build(&config).contains("`vision_config.vision_use_head` is false"));
    let mut config = tiny();
    config.text_config.projection_size = Some(8);
    assert!(build(&config).contains("text `projection_size` (8) differs from the vision `hidden_size` (12)"));
    let mut config = tiny();
    config.vision_config.num_attention_heads = 5;
    assert!(build(&config).contains("multiple of `num_attention_heads`"));
}

#[test]
fn heads_run_on_fresh_weights() {
    let config = tiny();
    let inputs = ModelInputs::new(ids(&[&[2, 7, 9, 1, 1, 1], &[2, 5, 6, 7, 8, 1]])).with_pixel_values(pixels(3, 3, 10));

    let model: SiglipModel = fresh(&config);
    let out = Model::forward(&model, &inputs).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [3, 9, 12]);
    assert_eq!(out.pooler_output.as_ref().unwrap().dims(), [3, 12]);
    assert_eq!(out.get("text_model_output.last_hidden_state").unwrap().dims(), [2, 6, 8]);
    assert_eq!(out.get("text_model_output.pooler_output").unwrap().dims(), [2, 12]);

    let zero_shot = ForZeroShotImageClassification::forward(&model, &inputs).unwrap();
    assert_eq!(
        (zero_shot.logits_per_image.dims(), zero_shot.logits_per_text.dims()),
        ([3, 2].as_slice(), [2, 3].as_slice())
    );
    // logits = exp(logit_scale) * cos + logit_bias.
    let cos = zero_shot.text_embeds.matmul(&zero_shot.image_embeds.t().unwrap()).unwrap();
    let scalar = |t: &Tensor| f64::from(t.i(0).unwrap().to_scalar::<f32>().unwrap());
    let (scale, bias) = (scalar(&model.logit_scale).exp(), scalar(&model.logit_bias));
    assert!(max_diff(&cos.affine(scale, bias).unwrap(), &zero_shot.logits_per_text) < 1e-5);
    let norms = zero_shot.image_embeds.sqr().unwrap().sum(D::Minus1).unwrap();
    assert!(max_diff(&norms, &Tensor::ones(3, DType::F32, CPU).unwrap()) < 1e-5);
    let features = model.get_text_features(&inputs).unwrap();
    assert_eq!(max_diff(&l2_normalize(&features).unwrap(), &zero_shot.text_embeds), 0.0);
    assert_eq!(max_diff(&model.get_image_features(&inputs).unwrap(), out.pooler_output.as_ref().unwrap()), 0.0);

    let classifier: SiglipForImageClassification = fresh(&config);
    assert_eq!(classifier.forward(&inputs).unwrap().logits.dims(), [3, 3]);

    let mut no_head = config.vision_config.clone();
    no_head.vision_use_head = false;
    let vision: SiglipVisionModel = fresh(&no_head);
    let out = Model::forward(&vision, &inputs).unwrap();
    assert!(!vision.has_head() && out.pooler_output.is_none());
    assert_eq!(out.fields().len(), 1);

    let map = VarMap::new();
    let text = SiglipTextModel::new(VarBuilder::from_varmap(&map, DType::F32, CPU), &config.text_config).unwrap();
    let out = Model::forward(&text, &inputs).unwrap();
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 12]);
}

#[test]
fn text_tower_is_bidirectional_and_pools_the_last_position() {
    let config = tiny().text_config;
    let map = VarMap::new();
    let model = SiglipTextModel::new(VarBuilder::from_varmap(&map, DType::F32, CPU), &config).unwrap();
    let run = |inputs: &ModelInputs| Model::forward(&model, inputs).unwrap();
    let a = run(&ModelInputs::new(ids(&[&[2, 7, 9, 3, 1, 1]])));
    let b = run(&ModelInputs::new(ids(&[&[2, 7, 9, 3, 1, 4]])));
    assert!(max_diff(&a.last_hidden_state.i((0, 0)).unwrap(), &b.last_hidden_state.i((0, 0)).unwrap()) > 1e-4);
    // The pooled output only sees the last position's state.
    let c = run(&ModelInputs::new(ids(&[&[2, 7, 9, 3, 1, 4], &[5, 5, 5, 5, 5, 4]])));
    assert!(
        max_diff(&c.pooler_output.as_ref().unwrap().i(0).unwrap(), &b.pooler_output.as_ref().unwrap().i(0).unwrap())
            < 1e-6
    );
    // Masked keys are not attended to: masked padding is as good as no padding.
    let short = run(&ModelInputs::new(ids(&[&[2, 7, 9, 3]])));
    let mask = Tensor::new(&[[1i64, 1, 1, 1, 0, 0]], CPU).unwrap();
    let masked = run(&ModelInputs::new(ids(&[&[2, 7, 9, 3, 1, 4]])).with_attention_mask(mask));
    let kept = masked.last_hidden_state.narrow(1, 0, 4).unwrap();
    assert!(max_diff(&kept, &short.last_hidden_state) < 1e-5);
}

#[test]
fn bad_inputs_are_errors() {
    let model: SiglipModel = fresh(&tiny());
    let err = |inputs: ModelInputs| Model::forward(&model, &inputs).unwrap_err();
    let text = || ModelInputs::new(ids(&[&[2, 7, 1]]));
    assert!(err(text()).to_string().contains("needs both `input_ids`"));
    // Pixels past the last whole patch are dropped, as SigLIP's convolution does: 11 px works,
    // 12 px would make a 4x4 grid where the model has 3x3.
    assert!(Model::forward(&model, &text().with_pixel_values(pixels(1, 3, 11))).is_ok());
    assert!(err(text().with_pixel_values(pixels(1, 3, 12))).to_string().contains("doesn't match the model (10x10)"));
    let gray = Tensor::zeros((1, 1, 10, 10), DType::F32, CPU).unwrap();
    assert!(err(text().with_pixel_values(gray)).to_string().contains("1 channels but the model takes 3"));
    let with = |input_ids: Tensor| ModelInputs::new(input_ids).with_pixel_values(pixels(1, 3, 10));
    let e = err(with(ids(&[&[2, 25]])));
    assert!(matches!(e, Error::TokenIdOutOfRange { input: "input_ids", id: 25, vocab_size: 20 }), "{e}");
    let e = err(with(ids(&[&[1; 7]])));
    assert!(matches!(e, Error::SequenceTooLong { len: 7, max: 6 }), "{e}");
    let bad_mask = with(ids(&[&[2, 7, 1]])).with_attention_mask(ids(&[&[1, 1, 1], &[1, 1, 1]]));
    assert!(err(bad_mask).to_string().contains("`attention_mask` has shape [2, 3]"));
}

// ---- loading the towers from the parity fixtures' folders (`autocandle_testing`)

#[test]
fn towers_load_from_a_siglip_checkpoint() {
    let (inputs, want) = reference("siglip-base");
    let close = |got: &Tensor, name: &str| {
        let diff = max_diff(got, &want[name]);
        assert!(diff < 1e-4, "{name}: {diff}");
    };
    let text = SiglipTextModel::from_pretrained(&path("siglip-base")).unwrap();
    let out = Model::forward(&text, &inputs).unwrap();
    close(&out.last_hidden_state, "text_model_output.last_hidden_state");
    close(out.pooler_output.as_ref().unwrap(), "text_model_output.pooler_output");
    let vision = SiglipVisionModel::from_pretrained(&path("siglip-base")).unwrap();
    let out = Model::forward(&vision, &inputs).unwrap();
    close(&out.last_hidden_state, "last_hidden_state");
    close(out.pooler_output.as_ref().unwrap(), "pooler_output");

    let (inputs, want) = reference("siglip-vision-model-no-head");
    let vision = SiglipVisionModel::from_pretrained(&path("siglip-vision-model-no-head")).unwrap();
    assert!(!vision.has_head());
    assert!(max_diff(&Model::forward(&vision, &inputs).unwrap().last_hidden_state, &want["last_hidden_state"]) < 1e-4);
    let err = SiglipTextModel::from_pretrained(&path("siglip-vision-model")).unwrap_err();
    assert!(err.to_string().contains("`siglip_text_model` or `siglip`, not `siglip_vision_model`"), "{err}");
}

#[test]
fn interpolate_pos_encoding_takes_other_image_sizes() {
    let model: SiglipModel = fresh(&tiny());
    let text = || ModelInputs::new(ids(&[&[2, 7, 1]]));
    let err = |inputs: ModelInputs| Model::forward(&model, &inputs).unwrap_err().to_string();
    assert!(err(text().with_pixel_values(pixels(1, 3, 12))).contains("set `interpolate_pos_encoding`"));
    let out = Model::forward(&model, &text().with_pixel_values(pixels(2, 3, 13)).with_interpolate_pos_encoding(true));
    assert_eq!(out.unwrap().last_hidden_state.dims(), [2, 16, 12]);
    let tiny_image = text().with_pixel_values(pixels(1, 3, 2)).with_interpolate_pos_encoding(true);
    assert!(err(tiny_image).contains("smaller than one patch"));
}
