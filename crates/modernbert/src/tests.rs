//! Unit tests: config spellings and their errors, the masks, output shapes of every head and
//! weight tying.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification,
    LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> ModernBertConfig {
    ModernBertConfig {
        vocab_size: 40,
        hidden_size: 12,
        intermediate_size: 10,
        num_hidden_layers: 4,
        num_attention_heads: 3,
        local_attention: 4,
        pad_token_id: Some(0),
        ..ModernBertConfig::default()
    }
}

fn parse(json: &str) -> ModernBertConfig {
    serde_json::from_str(json).unwrap()
}

fn config_error(cfg: &ModernBertConfig) -> String {
    match cfg.spec().unwrap_err() {
        Error::InvalidConfig { model_type, message } => {
            assert_eq!(model_type, "modernbert");
            message
        }
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

fn fresh<M: LoadModel>(cfg: &M::Config) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

fn inputs() -> ModelInputs {
    let cpu = &Device::Cpu;
    let ids = Tensor::new(&[[1u32, 5, 7, 9, 11, 2], [1, 3, 2, 0, 0, 0]], cpu).unwrap();
    let mask = Tensor::new(&[[1i64, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn defaults_are_modernbert_base() {
    let spec = ModernBertConfig::default().spec().unwrap();
    assert_eq!(spec.layers.len(), 22);
    let globals: Vec<usize> =
        spec.layers.iter().enumerate().filter(|(_, k)| **k == LayerKind::Global).map(|(i, _)| i).collect();
    assert_eq!(globals, [0, 3, 6, 9, 12, 15, 18, 21]);
    assert_eq!(spec.half_window, 64);
    assert_eq!(spec.pooling, ClassifierPooling::Cls);
    // inv_freq[1] = theta ^ (-2 / 64).
    let freq = |s: &autocandle_decoder::RopeSpec| s.inv_freq(0)[1];
    assert!((freq(&spec.global_rope) - 160_000f32.powf(-2.0 / 64.0)).abs() < 1e-7);
    assert!((freq(&spec.local_rope) - 10_000f32.powf(-2.0 / 64.0)).abs() < 1e-7);
}

#[test]
fn both_spellings_agree() {
    let old = parse(
        r#"{"num_hidden_layers": 5, "global_attn_every_n_layers": 2, "global_rope_theta": 500.0,
            "local_rope_theta": 40.0, "local_attention": 7}"#,
    )
    .spec()
    .unwrap();
    let new = parse(
        r#"{"num_hidden_layers": 5, "local_attention": 7,
            "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention",
                            "full_attention"],
            "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 500.0},
                                "sliding_attention": {"rope_type": "default", "rope_theta": 40.0}}}"#,
    )
    .spec()
    .unwrap();
    assert_eq!(old.layers, new.layers);
    assert_eq!(old.global_rope, new.global_rope);
    assert_eq!(old.local_rope, new.local_rope);
    assert_eq!(old.half_window, 3);
    // `layer_types` wins over `global_attn_every_n_layers`; a `rope_theta` in the dict wins
    // over the legacy key; a missing layer type falls back to it.
    let mixed = parse(
        r#"{"num_hidden_layers": 2, "global_attn_every_n_layers": 1,
            "layer_types": ["sliding_attention", "full_attention"], "global_rope_theta": 7.0,
            "rope_parameters": {"full_attention": {"rope_theta": 500.0}}}"#,
    )
    .spec()
    .unwrap();
    assert_eq!(mixed.layers, [LayerKind::Sliding, LayerKind::Global]);
    assert_eq!(mixed.global_rope, old.global_rope);
    assert_eq!(mixed.local_rope, ModernBertConfig::default().spec().unwrap().local_rope);
}

#[test]
fn rope_scaling_applies_to_both_layer_types() {
    let spec = parse(r#"{"rope_scaling": {"rope_type": "linear", "factor": 2.0}}"#).spec().unwrap();
    let plain = ModernBertConfig::default().spec().unwrap();
    for (scaled, base) in [(&spec.global_rope, &plain.global_rope), (&spec.local_rope, &plain.local_rope)] {
        let (a, b) = (scaled.inv_freq(0), base.inv_freq(0));
        assert!(a.iter().zip(&b).all(|(x, y)| (x * 2.0 - y).abs() < 1e-7));
    }
}

#[test]
fn bad_configs_are_invalid_config_errors() {
    let cases: Vec<(ModernBertConfig, &str)> = vec![
        (ModernBertConfig { num_attention_heads: 5, ..tiny() }, "must be a multiple of `num_attention_heads`"),
        (ModernBertConfig { hidden_size: 0, ..tiny() }, "`hidden_size` must be at least 1"),
        (ModernBertConfig { norm_eps: f64::NAN, ..tiny() }, "`norm_eps` must be a finite number"),
        (ModernBertConfig { classifier_pooling: "max".to_owned(), ..tiny() }, "must be `cls` or `mean`, got `max`"),
        (ModernBertConfig { global_attn_every_n_layers: Some(0), ..tiny() }, "must be at least 1"),
        (
            ModernBertConfig { layer_types: Some(vec!["full_attention".to_owned()]), ..tiny() },
            "`layer_types` has 1 entries but `num_hidden_layers` is 4",
        ),
        (
            ModernBertConfig {
                num_hidden_layers: 1,
                layer_types: Some(vec!["chunked_attention".to_owned()]),
                ..tiny()
            },
            "`layer_types[0]` is `chunked_attention`",
        ),
        (
            ModernBertConfig { rope_parameters: Some(serde_json::json!({"rope_theta": 10.0})), ..tiny() },
            "keyed by layer type",
        ),
        (
            ModernBertConfig { rope_parameters: Some(serde_json::json!([1, 2])), ..tiny() },
            "must be an object keyed by layer type",
        ),
        (ModernBertConfig { global_rope_theta: Some(0.5), ..tiny() }, "`rope_theta` must be a finite number > 1"),
        (parse(r#"{"rope_scaling": {"rope_type": "linear"}}"#), "`rope_parameters` of type `linear` needs `factor`"),
    ];
    for (cfg, want) in cases {
        let message = config_error(&cfg);
        assert!(message.contains(want), "{message:?} lacks {want:?}");
    }
    let err = parse(r#"{"rope_scaling": {"rope_type": "su"}}"#).spec().unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("rope type `su`"), "{err}");
}

#[test]
fn question_answering_needs_two_labels() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = ModernBertConfig { labels: serde_json::from_str(r#"{"num_labels": 3}"#).unwrap(), ..tiny() };
    let err = ModernBertForQuestionAnswering::load(vb, &cfg).unwrap_err().to_string();
    assert!(err.contains("ModernBertForQuestionAnswering needs 2 labels"), "{err}");
}

#[test]
fn every_head_has_its_shape() {
    let cfg = tiny();
    let (base, _) = fresh::<ModernBertModel>(&cfg);
    let hidden = Model::forward(&base, &inputs()).unwrap().last_hidden_state;
    assert_eq!(hidden.dims(), [2, 6, 12]);
    let (mlm, _) = fresh::<ModernBertForMaskedLM>(&cfg);
    assert_eq!(ForMaskedLm::forward(&mlm, &inputs()).unwrap().logits.dims(), [2, 6, 40]);
    let (seq, _) = fresh::<ModernBertForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&seq, &inputs()).unwrap().logits.dims(), [2, 2]);
    let (tok, _) = fresh::<ModernBertForTokenClassification>(&cfg);
    assert_eq!(ForTokenClassification::forward(&tok, &inputs()).unwrap().logits.dims(), [2, 6, 2]);
    let (qa, _) = fresh::<ModernBertForQuestionAnswering>(&ModernBertConfig {
        labels: serde_json::from_str(r#"{"num_labels": 2}"#).unwrap(),
        ..cfg.clone()
    });
    let out = ForQuestionAnswering::forward(&qa, &inputs()).unwrap();
    assert_eq!((out.start_logits.dims(), out.end_logits.dims()), ([2, 6].as_slice(), [2, 6].as_slice()));
    let (mc, _) = fresh::<ModernBertForMultipleChoice>(&ModernBertConfig { classifier_pooling: "mean".into(), ..cfg });
    let flat = inputs();
    let choices = ModelInputs::new(flat.input_ids().unwrap().reshape((1, 2, 6)).unwrap())
        .with_attention_mask(flat.attention_mask.unwrap().reshape((1, 2, 6)).unwrap());
    assert_eq!(ForMultipleChoice::forward(&mc, &choices).unwrap().logits.dims(), [1, 2]);
}

#[test]
fn padding_does_not_change_the_real_tokens() {
    let (base, _) = fresh::<ModernBertModel>(&tiny());
    let padded = Model::forward(&base, &inputs()).unwrap().last_hidden_state;
    let short = ModelInputs::new(Tensor::new(&[[1u32, 3, 2]], &Device::Cpu).unwrap());
    let alone = Model::forward(&base, &short).unwrap().last_hidden_state;
    let diff = (padded.narrow(0, 1, 1).unwrap().narrow(1, 0, 3).unwrap() - alone).unwrap().abs().unwrap();
    assert!(diff.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-5);
}

#[test]
fn the_decoder_is_tied_to_the_embeddings() {
    let (mlm, varmap) = fresh::<ModernBertForMaskedLM>(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "decoder.bias"), "{names:?}");
    assert!(!names.iter().any(|n| n == "decoder.weight"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("layers.0.attn_norm")), "layer 0 has no attn_norm: {names:?}");
    assert!(names.iter().any(|n| n.contains("layers.1.attn_norm.weight")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("norm.bias") || n.ends_with("Wqkv.bias")), "{names:?}");
    drop(mlm);
}

#[test]
fn config_round_trips() {
    let cfg = parse(r#"{"global_attn_every_n_layers": 2, "global_rope_theta": 5.0e2, "num_labels": 3}"#);
    let again: ModernBertConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(cfg, again);
}

#[test]
fn a_4x_hub_config_reads() {
    // The keys of answerdotai/ModernBERT-base's config.json (transformers 4.47), extra keys included.
    let cfg = parse(
        r#"{"architectures": ["ModernBertForMaskedLM"], "attention_bias": false, "attention_dropout": 0.0,
            "bos_token_id": 50281, "classifier_activation": "gelu", "classifier_bias": false,
            "classifier_dropout": 0.0, "classifier_pooling": "mean", "cls_token_id": 50281,
            "decoder_bias": true, "deterministic_flash_attn": false, "embedding_dropout": 0.0,
            "eos_token_id": 50282, "global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
            "gradient_checkpointing": false, "hidden_activation": "gelu", "hidden_size": 768,
            "initializer_cutoff_factor": 2.0, "initializer_range": 0.02, "intermediate_size": 1152,
            "layer_norm_eps": 1e-05, "local_attention": 128, "local_rope_theta": 10000.0,
            "max_position_embeddings": 8192, "mlp_bias": false, "mlp_dropout": 0.0, "model_type": "modernbert",
            "norm_bias": false, "norm_eps": 1e-05, "num_attention_heads": 12, "num_hidden_layers": 22,
            "pad_token_id": 50283, "position_embedding_type": "absolute", "reference_compile": true,
            "repad_logits_with_grad": false, "sep_token_id": 50282, "sparse_pred_ignore_index": -100,
            "sparse_prediction": false, "tie_word_embeddings": true, "torch_dtype": "float32",
            "transformers_version": "4.47.0.dev0", "vocab_size": 50368}"#,
    );
    let spec = cfg.spec().unwrap();
    let default = ModernBertConfig::default().spec().unwrap();
    assert_eq!((spec.layers, spec.half_window, spec.pooling), (default.layers, 64, ClassifierPooling::Mean));
    assert_eq!((spec.global_rope, spec.local_rope), (default.global_rope, default.local_rope));
}
