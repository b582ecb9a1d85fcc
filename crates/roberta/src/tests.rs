//! Unit tests: configs, RoBERTa's position ids, output shapes of every head, input and config
//! errors, weight tying, loading from a saved checkpoint and the registrations.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Error, ForCausalLm, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> RobertaConfig {
    RobertaConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 32,
        max_position_embeddings: 12,
        type_vocab_size: 1,
        ..RobertaConfig::default()
    }
}

fn tiny_xlm(vocab_size: usize) -> XLMRobertaConfig {
    let t = tiny();
    XLMRobertaConfig {
        vocab_size,
        hidden_size: t.hidden_size,
        num_hidden_layers: t.num_hidden_layers,
        num_attention_heads: t.num_attention_heads,
        intermediate_size: t.intermediate_size,
        max_position_embeddings: t.max_position_embeddings,
        type_vocab_size: t.type_vocab_size,
        ..XLMRobertaConfig::default()
    }
}

fn fresh<M: LoadModel>(cfg: &M::Config) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

/// A row with a padding token (1) inside, and a right-padded row.
fn ids() -> Tensor {
    Tensor::new(&[[0u32, 5, 7, 1, 11], [0, 3, 2, 1, 1]], &Device::Cpu).unwrap()
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
    let cfg: RobertaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, RobertaConfig::default());
    assert_eq!(cfg.vocab_size, 50265);
    assert_eq!((cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id), (Some(1), Some(0), Some(TokenIds::One(2))));
    assert_eq!((cfg.max_position_embeddings, cfg.type_vocab_size, cfg.layer_norm_eps), (512, 2, 1e-12));
    assert!(cfg.tie_word_embeddings && !cfg.is_decoder);

    let xlm: XLMRobertaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(xlm, XLMRobertaConfig::default());
    assert_eq!(xlm.vocab_size, 30522);
    assert_eq!(xlm.pad_token_id, Some(1));
}

#[test]
fn config_reads_a_roberta_base_config_json() {
    // FacebookAI/roberta-base's config.json, as on the Hub.
    let json = r#"{
        "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
        "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
        "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12,
        "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265
    }"#;
    let cfg: RobertaConfig = serde_json::from_str(json).unwrap();
    assert_eq!((cfg.max_position_embeddings, cfg.type_vocab_size, cfg.layer_norm_eps), (514, 1, 1e-5));
    let bert = cfg.bert_config();
    assert_eq!((bert.vocab_size, bert.pad_token_id, bert.max_position_embeddings), (50265, Some(1), 514));
    let back: RobertaConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn position_ids_count_from_the_padding_token() {
    // transformers: mask = ids != pad; (cumsum(mask) * mask) + pad.
    let ids = Tensor::new(&[[0i64, 5, 1, 6, 2], [1, 1, 0, 7, 2]], &Device::Cpu).unwrap();
    let positions = create_position_ids_from_input_ids(&ids, 1).unwrap();
    assert_eq!(positions.to_vec2::<u32>().unwrap(), [[2, 3, 1, 4, 5], [1, 1, 2, 3, 4]]);
    let positions = create_position_ids_from_input_ids(&ids, 0).unwrap();
    assert_eq!(positions.to_vec2::<u32>().unwrap(), [[0, 1, 2, 3, 4], [1, 2, 0, 3, 4]]);
    let err = create_position_ids_from_input_ids(&Tensor::new(&[1u32, 2], &Device::Cpu).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("[batch, seq]"), "{err}");
}

#[test]
fn default_positions_are_roberta_s_and_token_types_zeros() {
    let (m, _) = fresh::<RobertaModel>(&tiny());
    let plain = Model::forward(&m, &inputs()).unwrap().last_hidden_state;
    let positions = create_position_ids_from_input_ids(&ids(), 1).unwrap();
    let explicit = inputs()
        .with_position_ids(positions)
        .with_token_type_ids(Tensor::zeros((2, 5), DType::I64, &Device::Cpu).unwrap());
    let out = Model::forward(&m, &explicit).unwrap().last_hidden_state;
    assert_eq!(max_abs_diff(&plain, &out), 0.0);

    // BERT's positions (0, 1, ...) are something else.
    let bert_positions = Tensor::arange(0u32, 5, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let out = Model::forward(&m, &inputs().with_position_ids(bert_positions)).unwrap().last_hidden_state;
    assert!(max_abs_diff(&plain, &out) > 1e-3);
}

#[test]
fn padding_does_not_change_the_unpadded_tokens() {
    let (m, _) = fresh::<RobertaForMaskedLM>(&tiny());
    let short = Tensor::new(&[[0u32, 3, 2]], &Device::Cpu).unwrap();
    let alone = ForMaskedLm::forward(&m, &ModelInputs::new(short)).unwrap().logits;
    let padded = ForMaskedLm::forward(&m, &inputs()).unwrap().logits;
    // Randomly initialised logits reach ~10: the bound is relative to their size (f32 sums
    // in another batch shape differ by a few ulps; 1e-5 absolute failed now and then).
    let scale = alone.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
    let diff = max_abs_diff(&alone, &padded.i((1..2, 0..3)).unwrap());
    assert!(diff < 1e-5 * scale, "diff {diff}, logits up to {scale}");
}

#[test]
fn sequence_length_is_bounded_by_the_positions_after_the_padding_token() {
    let (m, _) = fresh::<RobertaModel>(&tiny());
    let run = |ids: Tensor| Model::forward(&m, &ModelInputs::new(ids));
    // 12 positions, padding 1: positions 2..=11 hold 10 tokens.
    assert!(run(Tensor::full(5u32, (1, 10), &Device::Cpu).unwrap()).is_ok());
    let err = run(Tensor::full(5u32, (1, 11), &Device::Cpu).unwrap()).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 11, max: 10 }), "{err}");
    // Padding tokens take no position.
    let mut row = vec![5u32; 10];
    row.extend([1, 1]);
    assert!(run(Tensor::new(row.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap()).is_ok());
}

#[test]
fn bad_inputs_and_configs_are_clear_errors() {
    let (m, _) = fresh::<RobertaModel>(&tiny());
    let run = |x: ModelInputs| Model::forward(&m, &x).unwrap_err();
    let cpu = &Device::Cpu;
    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[[1f32, 2.]], cpu).unwrap()));
    assert!(err.to_string().contains("integers"), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[[0u32, 50]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: 50, vocab_size: 50 }), "{err}");
    let types = Tensor::new(&[[0i64, 1]], cpu).unwrap();
    let err = run(ModelInputs::new(Tensor::new(&[[0u32, 2]], cpu).unwrap()).with_token_type_ids(types));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "token_type_ids", id: 1, vocab_size: 1 }), "{err}");
    let err = run(ModelInputs::new(ids()).with_attention_mask(Tensor::ones((2, 4), DType::I64, cpu).unwrap()));
    assert!(err.to_string().contains("attention_mask"), "{err}");

    // No padding token: positions must be given.
    let cfg = RobertaConfig { pad_token_id: None, ..tiny() };
    let (m, _) = fresh::<RobertaModel>(&cfg);
    let err = Model::forward(&m, &inputs()).unwrap_err();
    assert!(err.to_string().contains("pad_token_id") && err.to_string().contains("position_ids"), "{err}");
    let positions = Tensor::arange(2u32, 7, cpu).unwrap().unsqueeze(0).unwrap();
    assert!(Model::forward(&m, &inputs().with_position_ids(positions)).is_ok());

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, cpu);
    let err =
        XLMRobertaModel::load(vb.clone(), &XLMRobertaConfig { pad_token_id: Some(60), ..tiny_xlm(70) }).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "xlm-roberta"), "{err}");
    assert!(err.to_string().contains("`pad_token_id` (60)"), "{err}");
    let err = RobertaModel::load(vb.clone(), &RobertaConfig { hidden_size: 18, ..tiny() }).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "roberta"), "{err}");
    let err =
        RobertaModel::load(vb.clone(), &RobertaConfig { position_embedding_type: "relative_key".into(), ..tiny() })
            .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("`roberta`"), "{err}");
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let err = RobertaForQuestionAnswering::load(vb, &cfg).unwrap_err();
    assert!(err.to_string().contains("needs 2 labels"), "{err}");
}

#[test]
fn every_head_has_the_transformers_output_shapes() {
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let x = inputs();

    let (base, _) = fresh::<RobertaModel>(&cfg);
    let out = Model::forward(&base, &x).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 5, 16]);
    assert!(out.pooler_output.is_none() && !base.inner().has_pooler(), "fresh weights have no pooler.dense.weight");
    let encoded = ForTextEncoding::forward(base.inner(), &x).unwrap();
    assert_eq!(max_abs_diff(&encoded.last_hidden_state, &out.last_hidden_state), 0.0);

    let (m, _) = fresh::<RobertaForCausalLM>(&cfg);
    assert_eq!(ForCausalLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 50]);
    assert_eq!(m.max_positions(), Some(12));
    let (m, _) = fresh::<XLMRobertaForMaskedLM>(&tiny_xlm(40));
    assert_eq!(ForMaskedLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 40]);
    let (m, _) = fresh::<RobertaForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&m, &x).unwrap().logits.dims(), [2, 3]);
    let (m, _) = fresh::<RobertaForTokenClassification>(&cfg);
    assert_eq!(ForTokenClassification::forward(&m, &x).unwrap().logits.dims(), [2, 5, 3]);
    cfg.labels.num_labels = Some(2);
    let (m, _) = fresh::<RobertaForQuestionAnswering>(&cfg);
    let out = ForQuestionAnswering::forward(&m, &x).unwrap();
    assert_eq!((out.start_logits.dims(), out.end_logits.dims()), ([2, 5].as_slice(), [2, 5].as_slice()));
}

#[test]
fn multiple_choice_scores_each_choice_on_its_own() {
    let (m, _) = fresh::<RobertaForMultipleChoice>(&tiny());
    let ids = Tensor::arange(2u32, 26, &Device::Cpu).unwrap().reshape((2, 3, 4)).unwrap();
    let logits = ForMultipleChoice::forward(&m, &ModelInputs::new(ids.clone())).unwrap().logits;
    assert_eq!(logits.dims(), [2, 3]);
    let alone = ids.i((1, 2)).unwrap().reshape((1, 1, 4)).unwrap();
    let single = ForMultipleChoice::forward(&m, &ModelInputs::new(alone)).unwrap().logits;
    let (want, got) =
        (logits.i((1, 2)).unwrap().to_scalar::<f32>().unwrap(), single.i((0, 0)).unwrap().to_scalar::<f32>().unwrap());
    assert!((want - got).abs() < 1e-5, "{want} vs {got}");
    let err = ForMultipleChoice::forward(&m, &inputs()).unwrap_err();
    assert!(err.to_string().contains("[batch, choices, seq]"), "{err}");
}

#[test]
fn decoder_attention_is_causal() {
    let cfg = RobertaConfig { is_decoder: true, ..tiny() };
    let (m, _) = fresh::<RobertaForCausalLM>(&cfg);
    let a = Tensor::new(&[[0u32, 5, 7, 9, 11]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[0u32, 5, 7, 20, 30]], &Device::Cpu).unwrap();
    let la = ForCausalLm::forward(&m, &ModelInputs::new(a)).unwrap().logits;
    let lb = ForCausalLm::forward(&m, &ModelInputs::new(b)).unwrap().logits;
    assert!(max_abs_diff(&la.i((.., 0..3)).unwrap(), &lb.i((.., 0..3)).unwrap()) < 1e-5);
    assert!(max_abs_diff(&la.i((.., 3..)).unwrap(), &lb.i((.., 3..)).unwrap()) > 1e-3);
}

#[test]
fn tied_decoder_shares_the_word_embeddings() {
    let (_, varmap) = fresh::<RobertaForMaskedLM>(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "lm_head.bias"), "{names:?}");
    assert!(names.iter().any(|n| n == "lm_head.layer_norm.weight"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("lm_head.decoder")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("roberta.pooler")), "{names:?}");

    let (_, varmap) = fresh::<RobertaForCausalLM>(&RobertaConfig { tie_word_embeddings: false, ..tiny() });
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "lm_head.decoder.weight"), "{names:?}");

    let (_, varmap) = fresh::<RobertaForMultipleChoice>(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "roberta.pooler.dense.weight"), "{names:?}");
}

#[test]
fn loads_from_a_head_checkpoint() {
    let cfg = tiny();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mlm = RobertaForMaskedLM::load(vb, &cfg).unwrap();
    let want = ForMaskedLm::forward(&mlm, &inputs()).unwrap().logits;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    varmap.save(&path).unwrap();
    let checkpoint = Arc::new(Checkpoint::open(vec![path]).unwrap());

    let (vb, _) = checkpoint_var_builder(checkpoint.clone(), "roberta", DType::F32, &Device::Cpu);
    let loaded = RobertaForMaskedLM::load(vb, &cfg).unwrap();
    assert_eq!(max_abs_diff(&want, &ForMaskedLm::forward(&loaded, &inputs()).unwrap().logits), 0.0);

    // The base model from a head checkpoint finds `roberta.*`; there is no pooler.
    let (vb, tracker) = checkpoint_var_builder(checkpoint, "roberta", DType::F32, &Device::Cpu);
    let base = RobertaModel::load(vb, &cfg).unwrap();
    assert!(!base.inner().has_pooler());
    assert!(tracker.used().contains("roberta.encoder.layer.1.output.LayerNorm.weight"));
}

#[test]
fn every_head_is_registered_and_builds_from_the_registry() {
    use autocandle_core::load::build_fresh;
    use autocandle_core::registry::Registry;
    use autocandle_core::{PretrainedConfig, Task};

    let registry = Registry::global().unwrap();
    let heads = [
        (Task::Base, "Model"),
        (Task::CausalLm, "ForCausalLM"),
        (Task::MaskedLm, "ForMaskedLM"),
        (Task::SequenceClassification, "ForSequenceClassification"),
        (Task::MultipleChoice, "ForMultipleChoice"),
        (Task::TokenClassification, "ForTokenClassification"),
        (Task::QuestionAnswering, "ForQuestionAnswering"),
    ];
    for (model_type, prefix) in [("roberta", "Roberta"), ("xlm-roberta", "XLMRoberta")] {
        for (task, suffix) in heads {
            let reg = registry.model(model_type, task).unwrap();
            assert_eq!(reg.class_name, format!("{prefix}{suffix}"));
            assert_eq!(reg.base_model_prefix, "roberta");
        }
    }
    assert_eq!(registry.model("roberta", Task::TextEncoding).unwrap().class_name, "RobertaModel");
    assert_eq!(registry.model("xlm-roberta", Task::TextEncoding).unwrap().class_name, "XLMRobertaModel");
    assert_eq!(registry.heads("roberta").len(), heads.len() + 1);
    assert_eq!(registry.heads("xlm-roberta").len(), heads.len() + 1);

    let serde_json::Value::Object(fields) = serde_json::to_value(tiny()).unwrap() else {
        panic!("a config serialises to an object")
    };
    let config = PretrainedConfig::for_model("xlm-roberta", fields).unwrap();
    assert!(config.downcast::<XLMRobertaConfig>().is_some());
    let reg = registry.model("xlm-roberta", Task::MaskedLm).unwrap();
    let model = build_fresh::<dyn ForMaskedLm>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().logits.dims(), [2, 5, 50]);
    let reg = registry.model("roberta", Task::TextEncoding).unwrap();
    let config =
        PretrainedConfig::for_model("roberta", serde_json::from_value(serde_json::to_value(tiny()).unwrap()).unwrap())
            .unwrap();
    let model = build_fresh::<dyn ForTextEncoding>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().last_hidden_state.dims(), [2, 5, 16]);
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::F16, DType::BF16] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let m = RobertaForMaskedLM::load(vb, &tiny()).unwrap();
        let logits = ForMaskedLm::forward(&m, &inputs()).unwrap().logits;
        assert_eq!(logits.dtype(), dtype);
        let sum = logits.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?}");
    }
}
