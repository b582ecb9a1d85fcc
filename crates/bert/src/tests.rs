//! Unit tests: config parsing and validation, output shapes of every head, input errors,
//! masking, weight tying and loading from a saved checkpoint.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Error, ForCausalLm, ForMaskedLm, ForMultipleChoice, ForNextSentencePrediction, ForPreTraining,
    ForQuestionAnswering, ForSequenceClassification, ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> BertConfig {
    BertConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 32,
        max_position_embeddings: 12,
        type_vocab_size: 2,
        ..BertConfig::default()
    }
}

fn fresh<M: LoadModel<Config = BertConfig>>(cfg: &BertConfig) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

fn ids() -> Tensor {
    Tensor::new(&[[1u32, 5, 7, 9, 11], [2, 3, 4, 0, 0]], &Device::Cpu).unwrap()
}

fn mask() -> Tensor {
    Tensor::new(&[[1i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap()
}

fn inputs() -> ModelInputs {
    ModelInputs::new(ids()).with_attention_mask(mask())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: BertConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, BertConfig::default());
    assert_eq!(cfg.vocab_size, 30522);
    assert_eq!(cfg.hidden_act, autocandle_core::Activation::Gelu);
    assert_eq!(cfg.layer_norm_eps, 1e-12);
    assert_eq!(cfg.pad_token_id, Some(0));
    assert!(cfg.tie_word_embeddings && cfg.use_cache && !cfg.is_decoder);
    assert_eq!(cfg.labels.num_labels(), 2);
}

#[test]
fn config_reads_a_transformers_config_json() {
    let json = r#"{
        "architectures": ["BertForTokenClassification"], "model_type": "bert",
        "hidden_act": "gelu_new", "hidden_dropout_prob": 0, "eos_token_id": [1, 2],
        "id2label": {"0": "O", "1": "B-PER", "2": "I-PER"}, "label2id": {"O": 0, "B-PER": 1, "I-PER": 2},
        "transformers_version": "5.23.0", "classifier_dropout": null, "pad_token_id": null
    }"#;
    let cfg: BertConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.labels.num_labels(), 3);
    assert_eq!(cfg.hidden_act, autocandle_core::Activation::GeluTanh);
    assert_eq!(cfg.eos_token_id, Some(TokenIds::Many(vec![1, 2])));
    assert_eq!(cfg.pad_token_id, None);
    // Round trip keeps every field.
    let back: BertConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    let err = serde_json::from_str::<BertConfig>(r#"{"hidden_act": "gelu_nope"}"#).unwrap_err();
    assert!(err.to_string().contains("gelu_nope"), "{err}");
}

#[test]
fn invalid_configs_are_refused_at_load() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let load = |cfg: BertConfig| BertModel::new(vb.clone(), &cfg, false).unwrap_err();

    let err = load(BertConfig { hidden_size: 18, ..tiny() });
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("multiple of `num_attention_heads`"), "{err}");

    let err = load(BertConfig { vocab_size: 0, ..tiny() });
    assert!(err.to_string().contains("`vocab_size`"), "{err}");

    let err = load(BertConfig { position_embedding_type: "relative_key".into(), ..tiny() });
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("relative_key"), "{err}");

    let err = load(BertConfig { add_cross_attention: true, ..tiny() });
    assert!(err.to_string().contains("is_decoder"), "{err}");

    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let err = BertForQuestionAnswering::load(vb.clone(), &cfg).unwrap_err();
    assert!(err.to_string().contains("needs 2 labels"), "{err}");
}

#[test]
fn every_head_has_the_transformers_output_shapes() {
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let x = inputs();

    let (base, _) = fresh::<BertModel>(&cfg);
    let out = Model::forward(&base, &x).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 5, 16]);
    assert!(out.pooler_output.is_none(), "fresh weights have no pooler.dense.weight");

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let pooled = BertModel::new(vb, &cfg, true).unwrap();
    let out = Model::forward(&pooled, &x).unwrap();
    assert_eq!(out.pooler_output.unwrap().dims(), [2, 16]);

    let (m, _) = fresh::<BertForPreTraining>(&cfg);
    let out = ForPreTraining::forward(&m, &x).unwrap();
    assert_eq!(out.prediction_logits().unwrap().dims(), [2, 5, 50]);
    assert_eq!(out.seq_relationship_logits().unwrap().dims(), [2, 2]);

    let (m, _) = fresh::<BertLMHeadModel>(&cfg);
    assert_eq!(ForCausalLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 50]);

    let (m, _) = fresh::<BertForMaskedLM>(&cfg);
    assert_eq!(ForMaskedLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 50]);

    let (m, _) = fresh::<BertForNextSentencePrediction>(&cfg);
    assert_eq!(ForNextSentencePrediction::forward(&m, &x).unwrap().logits.dims(), [2, 2]);

    let (m, _) = fresh::<BertForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&m, &x).unwrap().logits.dims(), [2, 3]);

    let (m, _) = fresh::<BertForTokenClassification>(&cfg);
    assert_eq!(ForTokenClassification::forward(&m, &x).unwrap().logits.dims(), [2, 5, 3]);

    cfg.labels.num_labels = Some(2);
    let (m, _) = fresh::<BertForQuestionAnswering>(&cfg);
    let out = ForQuestionAnswering::forward(&m, &x).unwrap();
    assert_eq!(out.start_logits.dims(), [2, 5]);
    assert_eq!(out.end_logits.dims(), [2, 5]);
}

#[test]
fn multiple_choice_scores_each_choice_on_its_own() {
    let cfg = tiny();
    let (m, _) = fresh::<BertForMultipleChoice>(&cfg);
    // [batch 2, choices 3, seq 4]
    let ids = Tensor::arange(0u32, 24, &Device::Cpu).unwrap().reshape((2, 3, 4)).unwrap();
    let mask = Tensor::ones((2, 3, 4), DType::I64, &Device::Cpu).unwrap();
    let logits =
        ForMultipleChoice::forward(&m, &ModelInputs::new(ids.clone()).with_attention_mask(mask)).unwrap().logits;
    assert_eq!(logits.dims(), [2, 3]);

    // The score of choice (1, 2) does not depend on the other choices.
    let alone = ids.i((1, 2)).unwrap().reshape((1, 1, 4)).unwrap();
    let single = ForMultipleChoice::forward(&m, &ModelInputs::new(alone)).unwrap().logits;
    let want = logits.i((1, 2)).unwrap().to_scalar::<f32>().unwrap();
    let got = single.i((0, 0)).unwrap().to_scalar::<f32>().unwrap();
    assert!((want - got).abs() < 1e-5, "{want} vs {got}");

    let err = ForMultipleChoice::forward(&m, &inputs()).unwrap_err();
    assert!(err.to_string().contains("[batch, choices, seq]"), "{err}");
    let bad_mask = Tensor::ones((2, 3, 5), DType::I64, &Device::Cpu).unwrap();
    let err = ForMultipleChoice::forward(&m, &ModelInputs::new(ids).with_attention_mask(bad_mask)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn padding_does_not_change_the_unpadded_tokens() {
    let (m, _) = fresh::<BertModel>(&tiny());
    let short = Tensor::new(&[[2u32, 3, 4]], &Device::Cpu).unwrap();
    let alone = Model::forward(&m, &ModelInputs::new(short)).unwrap().last_hidden_state;
    let padded = Model::forward(&m, &inputs()).unwrap().last_hidden_state;
    let row = padded.i((1..2, 0..3)).unwrap();
    assert!(max_abs_diff(&alone, &row) < 1e-5);

    // Without the mask, padding does change them.
    let unmasked = Model::forward(&m, &ModelInputs::new(ids())).unwrap().last_hidden_state;
    assert!(max_abs_diff(&alone, &unmasked.i((1..2, 0..3)).unwrap()) > 1e-3);

    // u32 and f32 masks mean the same as i64 ones.
    for dtype in [DType::U32, DType::F32, DType::U8] {
        let x = ModelInputs::new(ids()).with_attention_mask(mask().to_dtype(dtype).unwrap());
        let out = Model::forward(&m, &x).unwrap().last_hidden_state;
        assert!(max_abs_diff(&out, &padded) == 0.0, "{dtype:?}");
    }
}

#[test]
fn decoder_attention_is_causal() {
    let cfg = BertConfig { is_decoder: true, ..tiny() };
    let (m, _) = fresh::<BertLMHeadModel>(&cfg);
    let a = Tensor::new(&[[1u32, 5, 7, 9, 11]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[1u32, 5, 7, 20, 30]], &Device::Cpu).unwrap();
    let la = ForCausalLm::forward(&m, &ModelInputs::new(a)).unwrap().logits;
    let lb = ForCausalLm::forward(&m, &ModelInputs::new(b)).unwrap().logits;
    assert!(max_abs_diff(&la.i((.., 0..3)).unwrap(), &lb.i((.., 0..3)).unwrap()) < 1e-5);
    assert!(max_abs_diff(&la.i((.., 3..)).unwrap(), &lb.i((.., 3..)).unwrap()) > 1e-3);

    // Padding combines with the causal mask: left padding does not leak into the tokens.
    let padded = Tensor::new(&[[0u32, 0, 1, 5, 7]], &Device::Cpu).unwrap();
    let pad_mask = Tensor::new(&[[0u32, 0, 1, 1, 1]], &Device::Cpu).unwrap();
    let positions = Tensor::new(&[[0u32, 0, 0, 1, 2]], &Device::Cpu).unwrap();
    let x = ModelInputs::new(padded).with_attention_mask(pad_mask).with_position_ids(positions);
    let lp = ForCausalLm::forward(&m, &x).unwrap().logits;
    assert!(max_abs_diff(&lp.i((.., 2..)).unwrap(), &la.i((.., 0..3)).unwrap()) < 1e-4);

    // An encoder sees the future.
    let (enc, _) = fresh::<BertForMaskedLM>(&tiny());
    let a = Tensor::new(&[[1u32, 5, 7, 9, 11]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[1u32, 5, 7, 20, 30]], &Device::Cpu).unwrap();
    let la = ForMaskedLm::forward(&enc, &ModelInputs::new(a)).unwrap().logits;
    let lb = ForMaskedLm::forward(&enc, &ModelInputs::new(b)).unwrap().logits;
    assert!(max_abs_diff(&la.i((.., 0..3)).unwrap(), &lb.i((.., 0..3)).unwrap()) > 1e-3);
}

#[test]
fn default_token_types_and_positions_are_zeros_and_arange() {
    let (m, _) = fresh::<BertModel>(&tiny());
    let plain = Model::forward(&m, &inputs()).unwrap().last_hidden_state;
    let explicit = inputs()
        .with_token_type_ids(Tensor::zeros((2, 5), DType::I64, &Device::Cpu).unwrap())
        .with_position_ids(Tensor::arange(0i64, 5, &Device::Cpu).unwrap().unsqueeze(0).unwrap());
    let out = Model::forward(&m, &explicit).unwrap().last_hidden_state;
    assert!(max_abs_diff(&plain, &out) < 1e-6);

    let types = Tensor::new(&[[0u32, 0, 1, 1, 1], [0, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let out = Model::forward(&m, &inputs().with_token_type_ids(types)).unwrap().last_hidden_state;
    assert!(max_abs_diff(&plain, &out) > 1e-3);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (m, _) = fresh::<BertModel>(&tiny());
    let run = |x: ModelInputs| Model::forward(&m, &x).unwrap_err();
    let cpu = &Device::Cpu;

    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[1u32, 2], cpu).unwrap()));
    assert!(err.to_string().contains("[batch, seq]"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[1f32, 2.]], cpu).unwrap()));
    assert!(err.to_string().contains("integers"), "{err}");

    let err = run(ModelInputs::new(Tensor::zeros((1, 0), DType::U32, cpu).unwrap()));
    assert!(err.to_string().contains("empty"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[1u32, 50]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: 50, vocab_size: 50 }), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[-3i64, 2]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: -3, .. }), "{err}");

    let types = Tensor::new(&[[0i64, 2]], cpu).unwrap();
    let err = run(ModelInputs::new(Tensor::new(&[[1u32, 2]], cpu).unwrap()).with_token_type_ids(types));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "token_type_ids", id: 2, vocab_size: 2 }), "{err}");

    let err = run(ModelInputs::new(Tensor::ones((1, 13), DType::U32, cpu).unwrap()));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");

    let err = run(ModelInputs::new(ids()).with_attention_mask(Tensor::ones((2, 4), DType::I64, cpu).unwrap()));
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("attention_mask"), "{err}");

    let err = run(ModelInputs::new(ids()).with_token_type_ids(Tensor::zeros((1, 5), DType::I64, cpu).unwrap()));
    assert!(err.to_string().contains("token_type_ids"), "{err}");

    let positions = Tensor::new(&[[0u32, 1, 2, 3, 12]], cpu).unwrap();
    let err = run(ModelInputs::new(ids()).with_position_ids(positions));
    assert!(err.to_string().contains("position 12"), "{err}");
}

#[test]
fn tied_decoder_shares_the_word_embeddings() {
    let (_, varmap) = fresh::<BertForMaskedLM>(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "cls.predictions.bias"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("cls.predictions.decoder")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("bert.pooler")), "{names:?}");

    let untied = BertConfig { tie_word_embeddings: false, ..tiny() };
    let (_, varmap) = fresh::<BertForPreTraining>(&untied);
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "cls.predictions.decoder.weight"), "{names:?}");
    assert!(names.iter().any(|n| n == "bert.pooler.dense.weight"), "{names:?}");
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::F16, DType::BF16] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let m = BertForMaskedLM::load(vb, &tiny()).unwrap();
        let logits = ForMaskedLm::forward(&m, &inputs()).unwrap().logits;
        assert_eq!(logits.dtype(), dtype);
        let sum = logits.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?}");
    }
}

/// Save `varmap` as safetensors and open it as a checkpoint.
fn save(varmap: &VarMap, dir: &tempfile::TempDir) -> Arc<Checkpoint> {
    let path = dir.path().join("model.safetensors");
    varmap.save(&path).unwrap();
    Arc::new(Checkpoint::open(vec![path]).unwrap())
}

#[test]
fn loads_from_a_head_checkpoint() {
    let cfg = tiny();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let pretraining = BertForPreTraining::load(vb, &cfg).unwrap();
    let want = ForPreTraining::forward(&pretraining, &inputs()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = save(&varmap, &dir);
    assert!(!checkpoint.names().contains("cls.predictions.decoder.weight"));

    // The same head from the checkpoint: tied decoder, same logits.
    let (vb, _) = checkpoint_var_builder(checkpoint.clone(), "bert", DType::F32, &Device::Cpu);
    let loaded = BertForPreTraining::load(vb, &cfg).unwrap();
    let got = ForPreTraining::forward(&loaded, &inputs()).unwrap();
    assert_eq!(max_abs_diff(want.prediction_logits().unwrap(), got.prediction_logits().unwrap()), 0.0);
    assert_eq!(max_abs_diff(want.seq_relationship_logits().unwrap(), got.seq_relationship_logits().unwrap()), 0.0);

    // The base model from a head checkpoint finds `bert.*` and the pooler.
    let (vb, tracker) = checkpoint_var_builder(checkpoint.clone(), "bert", DType::F32, &Device::Cpu);
    let base = BertModel::load(vb, &cfg).unwrap();
    assert!(base.has_pooler());
    assert!(tracker.used().contains("bert.pooler.dense.weight"));
    let out = Model::forward(&base, &inputs()).unwrap();
    assert!(out.pooler_output.is_some());

    // A missing tensor is a typed error naming it.
    let (vb, tracker) = checkpoint_var_builder(checkpoint, "bert", DType::F32, &Device::Cpu);
    let cfg3 = BertConfig { num_hidden_layers: 3, ..cfg };
    assert!(BertModel::load(vb, &cfg3).is_err());
    let err = tracker.take_error().unwrap();
    assert!(err.to_string().contains("encoder.layer.2"), "{err}");
}

#[test]
fn an_untied_decoder_in_a_tied_config_is_used() {
    // transformers keeps a checkpoint's own decoder weight when it differs from the
    // embeddings, even with `tie_word_embeddings`.
    let cfg = tiny();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let untied_cfg = BertConfig { tie_word_embeddings: false, ..tiny() };
    let untied = BertForMaskedLM::load(vb, &untied_cfg).unwrap();
    let want = ForMaskedLm::forward(&untied, &inputs()).unwrap().logits;
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = save(&varmap, &dir);
    assert!(checkpoint.names().contains("cls.predictions.decoder.weight"));

    let (vb, _) = checkpoint_var_builder(checkpoint, "bert", DType::F32, &Device::Cpu);
    let tied = BertForMaskedLM::load(vb, &cfg).unwrap();
    let got = ForMaskedLm::forward(&tied, &inputs()).unwrap().logits;
    assert_eq!(max_abs_diff(&want, &got), 0.0);
}

#[test]
fn every_head_is_registered_and_builds_from_the_registry() {
    use autocandle_core::load::build_fresh;
    use autocandle_core::registry::Registry;
    use autocandle_core::{PretrainedConfig, Task};

    let registry = Registry::global().unwrap();
    let tasks = [
        (Task::Base, "BertModel"),
        (Task::PreTraining, "BertForPreTraining"),
        (Task::CausalLm, "BertLMHeadModel"),
        (Task::MaskedLm, "BertForMaskedLM"),
        (Task::NextSentencePrediction, "BertForNextSentencePrediction"),
        (Task::SequenceClassification, "BertForSequenceClassification"),
        (Task::MultipleChoice, "BertForMultipleChoice"),
        (Task::TokenClassification, "BertForTokenClassification"),
        (Task::QuestionAnswering, "BertForQuestionAnswering"),
        (Task::TextEncoding, "BertModel"),
    ];
    for (task, class) in tasks {
        let reg = registry.model("bert", task).unwrap();
        assert_eq!(reg.class_name, class);
        assert_eq!(reg.base_model_prefix, "bert");
    }
    assert_eq!(registry.heads("bert").len(), tasks.len());

    let serde_json::Value::Object(fields) = serde_json::to_value(tiny()).unwrap() else {
        panic!("a config serialises to an object")
    };
    let config = PretrainedConfig::for_model("bert", fields).unwrap();
    assert_eq!(config.downcast::<BertConfig>(), Some(&tiny()));
    let reg = registry.model("bert", Task::MaskedLm).unwrap();
    let model = build_fresh::<dyn ForMaskedLm>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().logits.dims(), [2, 5, 50]);
    let reg = registry.model("bert", Task::QuestionAnswering).unwrap();
    let model = build_fresh::<dyn ForQuestionAnswering>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().start_logits.dims(), [2, 5]);

    // An unsupported value in config.json fails at load, not at parse.
    let mut fields = serde_json::Map::new();
    fields.insert("position_embedding_type".into(), "relative_key_query".into());
    let config = PretrainedConfig::for_model("bert", fields).unwrap();
    let reg = registry.model("bert", Task::Base).unwrap();
    let err = build_fresh::<dyn Model>(&config, reg, DType::F32, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("`relative_key_query`"), "{err}");
}
