//! Unit tests: configs (defaults, partial sub-configs), the heads on fresh weights, pooling
//! and masking rules, errors, and loading the towers from the parity fixtures' folders.
//! Parity of the registered heads with `transformers` is checked by `tests/parity.rs`.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{
    Activation, Error, ForImageClassification, ForTextEncoding, ForZeroShotImageClassification, LoadModel, LoadOptions,
    Model, ModelInputs, ModelOutput,
};
use candle_core::{DType, IndexOp, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use crate::layers::l2_normalize;
use crate::{
    CLIPConfig, CLIPForImageClassification, CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
    CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection, TokenIds,
};
use autocandle_testing::{fresh, ids, max_diff, path, pixels, reference, CPU};

fn tiny() -> CLIPConfig {
    serde_json::from_str(
        r#"{"projection_dim": 6, "num_labels": 3,
            "text_config": {"vocab_size": 20, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
                            "num_attention_heads": 2, "max_position_embeddings": 7, "eos_token_id": 3},
            "vision_config": {"hidden_size": 12, "intermediate_size": 10, "num_hidden_layers": 2,
                              "num_attention_heads": 3, "image_size": 10, "patch_size": 3}}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let config: CLIPConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, CLIPConfig::default());
    assert_eq!((config.projection_dim, config.logit_scale_init_value), (512, 2.6592));
    let text = &config.text_config;
    assert_eq!(
        (text.vocab_size, text.hidden_size, text.intermediate_size, text.num_hidden_layers, text.num_attention_heads),
        (49408, 512, 2048, 12, 8)
    );
    assert_eq!((text.max_position_embeddings, text.hidden_act, text.layer_norm_eps), (77, Activation::QuickGelu, 1e-5));
    assert_eq!(
        (text.pad_token_id, text.bos_token_id, &text.eos_token_id),
        (Some(1), Some(49406), &Some(TokenIds::One(49407)))
    );
    let vision = &config.vision_config;
    assert_eq!(
        (vision.hidden_size, vision.intermediate_size, vision.num_hidden_layers, vision.num_attention_heads),
        (768, 3072, 12, 12)
    );
    assert_eq!((vision.image_size, vision.patch_size, vision.num_channels, vision.grid()), (224, 32, 3, 7));
    assert_eq!(vision.hidden_act, Activation::QuickGelu);
    // Each tower's own config parses alone too (model types `clip_text_model`, `clip_vision_model`).
    assert_eq!(serde_json::from_str::<CLIPTextConfig>("{}").unwrap(), CLIPTextConfig::default());
    assert_eq!(serde_json::from_str::<CLIPVisionConfig>("{}").unwrap(), CLIPVisionConfig::default());
}

#[test]
fn partial_and_legacy_sub_configs() {
    let config: CLIPConfig = serde_json::from_str(
        r#"{"text_config": {"hidden_size": 64, "eos_token_id": [2, 5]}, "vision_config": null, "projection_dim": 32,
            "architectures": ["CLIPModel"], "model_type": "clip"}"#,
    )
    .unwrap();
    assert_eq!(config.text_config.hidden_size, 64);
    assert_eq!(config.text_config.vocab_size, 49408);
    assert_eq!(config.text_config.eos_token_id, Some(TokenIds::Many(vec![2, 5])));
    assert_eq!(config.vision_config, CLIPVisionConfig::default());
    // `text_config_dict` (old checkpoints) wins over `text_config`, as in transformers.
    let config: CLIPConfig =
        serde_json::from_str(r#"{"text_config": {"hidden_size": 64}, "text_config_dict": {"hidden_size": 128}}"#)
            .unwrap();
    assert_eq!(config.text_config.hidden_size, 128);
    // The serialised form reads back the same.
    let config = tiny();
    let back: CLIPConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(back, config);
    assert_eq!(config.labels.num_labels(), 3);
}

#[test]
fn invalid_configs_are_errors() {
    let mut config = tiny();
    config.text_config.num_attention_heads = 3;
    assert!(config.validate().unwrap_err().to_string().contains("multiple of `num_attention_heads`"));
    let mut config = tiny();
    config.vision_config.patch_size = 11;
    assert!(config.validate().unwrap_err().to_string().contains("larger than `image_size`"));
    let mut config = tiny();
    config.text_config.vocab_size = 0;
    let map = VarMap::new();
    let err = CLIPModel::load(VarBuilder::from_varmap(&map, DType::F32, CPU), &config).unwrap_err();
    assert!(err.to_string().contains("`vocab_size` must be at least 1"), "{err}");
}

#[test]
fn heads_run_on_fresh_weights() {
    let config = tiny();
    let inputs = ModelInputs::new(ids(&[&[1, 7, 9, 3, 0], &[1, 5, 3, 0, 0], &[1, 3, 0, 0, 0]]))
        .with_attention_mask(ids(&[&[1, 1, 1, 1, 0], &[1, 1, 1, 0, 0], &[1, 1, 0, 0, 0]]))
        .with_pixel_values(pixels(2, 3, 10));

    let model: CLIPModel = fresh(&config);
    let out = Model::forward(&model, &inputs).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 10, 12]);
    assert_eq!(out.pooler_output.as_ref().unwrap().dims(), [2, 6]);
    assert_eq!(out.get("logits_per_image").unwrap().dims(), [2, 3]);
    assert_eq!(out.get("text_model_output.last_hidden_state").unwrap().dims(), [3, 5, 8]);
    assert_eq!(out.get("text_model_output.pooler_output").unwrap().dims(), [3, 6]);

    let zero_shot = ForZeroShotImageClassification::forward(&model, &inputs).unwrap();
    assert_eq!(zero_shot.logits_per_text.dims(), [3, 2]);
    assert_eq!(max_diff(&zero_shot.logits_per_image, &zero_shot.logits_per_text.t().unwrap()), 0.0);
    let norms = zero_shot.text_embeds.sqr().unwrap().sum(D::Minus1).unwrap();
    assert!(max_diff(&norms, &Tensor::ones(3, DType::F32, CPU).unwrap()) < 1e-5);
    // The logits are exp(logit_scale) times the cosine similarities.
    let cos = zero_shot.text_embeds.matmul(&zero_shot.image_embeds.t().unwrap()).unwrap();
    let scale = model.logit_scale.exp().unwrap().to_scalar::<f32>().unwrap();
    assert!(max_diff(&(cos * f64::from(scale)).unwrap(), &zero_shot.logits_per_text) < 1e-5);
    // The projected features are what get_*_features return.
    let features = model.get_image_features(&inputs).unwrap();
    assert_eq!(max_diff(&features, out.pooler_output.as_ref().unwrap()), 0.0);
    assert_eq!(
        max_diff(&l2_normalize(&model.get_text_features(&inputs).unwrap()).unwrap(), &zero_shot.text_embeds),
        0.0
    );

    let classifier: CLIPForImageClassification = fresh(&config);
    assert_eq!(classifier.forward(&inputs).unwrap().logits.dims(), [2, 3]);
    let mut no_labels = config.clone();
    no_labels.labels.num_labels = Some(0);
    let identity: CLIPForImageClassification = fresh(&no_labels);
    assert_eq!(identity.forward(&inputs).unwrap().logits.dims(), [2, 12]);

    let text: CLIPTextModel = fresh(&config.text_config);
    let out = Model::forward(&text, &inputs).unwrap();
    assert_eq!(
        (out.last_hidden_state.dims(), out.pooler_output.unwrap().dims()),
        ([3, 5, 8].as_slice(), [3, 8].as_slice())
    );
    let encoded = ForTextEncoding::forward(&text, &inputs).unwrap();
    assert_eq!(max_diff(&encoded.last_hidden_state, &out.last_hidden_state), 0.0);
    let vision: CLIPVisionModel = fresh(&config.vision_config);
    let out = Model::forward(&vision, &inputs).unwrap();
    assert_eq!(
        (out.last_hidden_state.dims(), out.pooler_output.unwrap().dims()),
        ([2, 10, 12].as_slice(), [2, 12].as_slice())
    );

    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, CPU);
    let text = CLIPTextModelWithProjection::new(vb.clone(), &config.text_config).unwrap();
    let out = text.forward(&inputs).unwrap();
    assert_eq!((out.text_embeds.dims(), out.last_hidden_state.dims()), ([3, 512].as_slice(), [3, 5, 8].as_slice()));
    assert_eq!(out.fields().len(), 2);
    let vision = CLIPVisionModelWithProjection::new(vb, &config.vision_config).unwrap();
    assert_eq!(vision.forward(&inputs).unwrap().get("image_embeds").unwrap().dims(), [2, 512]);
}

#[test]
fn text_is_pooled_at_the_first_eos_or_the_largest_id() {
    let mut config = tiny().text_config;
    let rows = ids(&[&[1, 19, 3, 3, 3], &[1, 5, 6, 3, 18]]);
    let inputs = ModelInputs::new(rows);
    let pooled_at = |model: &CLIPTextModel, expected: [usize; 2]| {
        let out = Model::forward(model, &inputs).unwrap();
        for (row, position) in expected.into_iter().enumerate() {
            let want = out.last_hidden_state.i((row, position)).unwrap();
            assert_eq!(max_diff(&out.pooler_output.as_ref().unwrap().i(row).unwrap(), &want), 0.0, "row {row}");
        }
    };
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, CPU);
    pooled_at(&CLIPTextModel::new(vb.clone(), &config).unwrap(), [2, 3]);
    config.eos_token_id = Some(TokenIds::One(2));
    pooled_at(&CLIPTextModel::new(vb.clone(), &config).unwrap(), [1, 4]);
    config.eos_token_id = Some(TokenIds::Many(vec![6, 19]));
    pooled_at(&CLIPTextModel::new(vb.clone(), &config).unwrap(), [1, 2]);
    config.eos_token_id = Some(TokenIds::One(17));
    pooled_at(&CLIPTextModel::new(vb, &config).unwrap(), [0, 0]);
}

#[test]
fn text_tower_is_causal_and_masks_padding() {
    let model: CLIPTextModel = fresh(&tiny().text_config);
    let run = |inputs: &ModelInputs| Model::forward(&model, inputs).unwrap().last_hidden_state;
    let a = run(&ModelInputs::new(ids(&[&[1, 7, 9, 3, 4]])));
    let b = run(&ModelInputs::new(ids(&[&[1, 7, 9, 3, 11]])));
    assert!(max_diff(&a.narrow(1, 0, 4).unwrap(), &b.narrow(1, 0, 4).unwrap()) < 1e-6);
    assert!(max_diff(&a.narrow(1, 4, 1).unwrap(), &b.narrow(1, 4, 1).unwrap()) > 1e-4);
    // A masked key changes the positions after it; an i64 mask means the same as a u32 one.
    let mask = Tensor::new(&[[1i64, 0, 1, 1, 1]], CPU).unwrap();
    let masked = run(&ModelInputs::new(ids(&[&[1, 7, 9, 3, 4]])).with_attention_mask(mask.clone()));
    assert!(max_diff(&a.narrow(1, 0, 1).unwrap(), &masked.narrow(1, 0, 1).unwrap()) < 1e-6);
    assert!(max_diff(&a.narrow(1, 2, 1).unwrap(), &masked.narrow(1, 2, 1).unwrap()) > 1e-4);
    let as_u32 =
        run(&ModelInputs::new(ids(&[&[1, 7, 9, 3, 4]])).with_attention_mask(mask.to_dtype(DType::U32).unwrap()));
    assert_eq!(max_diff(&masked, &as_u32), 0.0);
    // Explicit default positions change nothing.
    let positions = Tensor::arange(0u32, 5, CPU).unwrap().unsqueeze(0).unwrap();
    let explicit = run(&ModelInputs::new(ids(&[&[1, 7, 9, 3, 4]])).with_position_ids(positions));
    assert_eq!(max_diff(&a, &explicit), 0.0);
}

#[test]
fn bad_inputs_are_errors() {
    let config = tiny();
    let model: CLIPModel = fresh(&config);
    let err = |inputs: ModelInputs| Model::forward(&model, &inputs).unwrap_err();
    let text = || ModelInputs::new(ids(&[&[1, 7, 3]]));
    let good = || pixels(1, 3, 10);

    assert!(err(text()).to_string().contains("needs both `input_ids`"));
    assert!(err(ModelInputs::from_pixel_values(good())).to_string().contains("needs both `input_ids`"));
    assert!(err(text().with_pixel_values(pixels(1, 3, 12))).to_string().contains("doesn't match the model (10x10)"));
    assert!(err(text().with_pixel_values(pixels(1, 1, 10))).to_string().contains("1 channels but the model takes 3"));
    assert!(err(text().with_pixel_values(pixels(0, 3, 10))).to_string().contains("no images"));
    let flat = Tensor::zeros((3, 10, 10), DType::F32, CPU).unwrap();
    assert!(err(text().with_pixel_values(flat)).to_string().contains("[batch, channels, height, width]"));
    let int_pixels = Tensor::zeros((1, 3, 10, 10), DType::U32, CPU).unwrap();
    assert!(err(text().with_pixel_values(int_pixels)).to_string().contains("must hold floats"));

    let with = |input_ids: Tensor| ModelInputs::new(input_ids).with_pixel_values(good());
    let e = err(with(ids(&[&[1, 20]])));
    assert!(matches!(e, Error::TokenIdOutOfRange { input: "input_ids", id: 20, vocab_size: 20 }), "{e}");
    let e = err(with(Tensor::new(&[[1i64, -4]], CPU).unwrap()));
    assert!(matches!(e, Error::TokenIdOutOfRange { id: -4, .. }), "{e}");
    let e = err(with(ids(&[&[1; 8]])));
    assert!(matches!(e, Error::SequenceTooLong { len: 8, max: 7 }), "{e}");
    assert!(err(with(Tensor::new(&[1u32, 2], CPU).unwrap())).to_string().contains("[batch, seq]"));
    assert!(err(with(Tensor::new(&[[1f32, 2.0]], CPU).unwrap())).to_string().contains("must hold integers"));
    assert!(err(with(Tensor::zeros((1, 0), DType::U32, CPU).unwrap())).to_string().contains("is empty"));
    let bad_mask = with(ids(&[&[1, 7, 3]])).with_attention_mask(ids(&[&[1, 1]]));
    assert!(err(bad_mask).to_string().contains("`attention_mask` has shape [1, 2]"));
    let bad_positions = with(ids(&[&[1, 7, 3]])).with_position_ids(ids(&[&[0, 1, 7]]));
    assert!(err(bad_positions).to_string().contains("position 7 in `position_ids` is out of range"));
    let bad_positions = with(ids(&[&[1, 7, 3]])).with_position_ids(ids(&[&[0, 1]]));
    assert!(err(bad_positions).to_string().contains("`position_ids` must have shape"));
}

// ---- loading the towers from the parity fixtures' folders (`crate::testing`)

#[test]
fn towers_load_from_a_clip_checkpoint() {
    let (inputs, want) = reference("clip-base");
    let close = |got: &Tensor, name: &str| {
        let diff = max_diff(got, &want[name]);
        assert!(diff < 1e-4, "{name}: {diff}");
    };

    let text = CLIPTextModel::from_pretrained(&path("clip-base")).unwrap();
    let out = Model::forward(&text, &inputs).unwrap();
    close(&out.last_hidden_state, "text_model_output.last_hidden_state");
    let vision = CLIPVisionModel::from_pretrained(&path("clip-base")).unwrap();
    close(&Model::forward(&vision, &inputs).unwrap().last_hidden_state, "last_hidden_state");

    // The projections' width comes from the clip config's `projection_dim` (20), not the
    // towers' own default (512).
    let text = CLIPTextModelWithProjection::from_pretrained(&path("clip-base")).unwrap();
    let out = text.forward(&inputs).unwrap();
    close(&out.text_embeds, "text_model_output.pooler_output");
    close(&l2_normalize(&out.text_embeds).unwrap(), "text_embeds");
    let vision = CLIPVisionModelWithProjection::from_pretrained(&path("clip-base")).unwrap();
    let out = vision.forward(&inputs).unwrap();
    close(&out.image_embeds, "pooler_output");
    close(&l2_normalize(&out.image_embeds).unwrap(), "image_embeds");

    // Overrides reach the tower's config; unknown ones come back.
    let opts = LoadOptions::new().config_override("eos_token_id", 2).config_override("not_a_field", 1);
    let loaded = CLIPTextModel::from_pretrained_with(&path("clip-base"), &opts).unwrap();
    assert_eq!(loaded.value.eos_token_id, Some(TokenIds::One(2)));
    assert_eq!(loaded.unused_kwargs.keys().collect::<Vec<_>>(), ["not_a_field"]);
}

#[test]
fn towers_load_from_their_own_checkpoints() {
    let (inputs, want) = reference("clip-text-model");
    let text = CLIPTextModel::from_pretrained(&path("clip-text-model")).unwrap();
    let out = Model::forward(&text, &inputs).unwrap();
    assert!(max_diff(&out.last_hidden_state, &want["last_hidden_state"]) < 1e-4);
    assert!(max_diff(out.pooler_output.as_ref().unwrap(), &want["pooler_output"]) < 1e-4);
    let (inputs, want) = reference("clip-vision-model");
    let vision = CLIPVisionModel::from_pretrained(&path("clip-vision-model")).unwrap();
    assert!(max_diff(&Model::forward(&vision, &inputs).unwrap().last_hidden_state, &want["last_hidden_state"]) < 1e-4);

    // A saved CLIPTextModel has no projection, and a vision checkpoint no text tower.
    let err = CLIPTextModelWithProjection::from_pretrained(&path("clip-text-model")).unwrap_err();
    assert!(matches!(&err, Error::TensorNotFound { name, .. } if name == "text_projection.weight"), "{err}");
    let err = CLIPTextModel::from_pretrained(&path("clip-vision-model")).unwrap_err();
    assert!(err.to_string().contains("model type `clip_text_model` or `clip`, not `clip_vision_model`"), "{err}");
}

#[test]
fn interpolate_pos_encoding_takes_other_image_sizes() {
    let model: CLIPModel = fresh(&tiny());
    let text = || ModelInputs::new(ids(&[&[1, 7, 3]]));
    let err = |inputs: ModelInputs| Model::forward(&model, &inputs).unwrap_err().to_string();
    assert!(err(text().with_pixel_values(pixels(1, 3, 12))).contains("set `interpolate_pos_encoding`"));
    // 13 px with 3 px patches: a 4x4 grid from the learned 3x3.
    let out = Model::forward(&model, &text().with_pixel_values(pixels(2, 3, 13)).with_interpolate_pos_encoding(true));
    assert_eq!(out.unwrap().last_hidden_state.dims(), [2, 17, 12]);
    let tiny_image = text().with_pixel_values(pixels(1, 3, 2)).with_interpolate_pos_encoding(true);
    assert!(err(tiny_image).contains("smaller than one patch"));
}
