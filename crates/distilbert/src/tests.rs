//! Unit tests: config parsing (attribute map), sinusoidal positions, output shapes of every
//! head, input and config errors, weight tying, loading from a checkpoint and registrations.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Activation, Error, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> DistilBertConfig {
    DistilBertConfig {
        vocab_size: 50,
        dim: 16,
        n_layers: 2,
        n_heads: 4,
        hidden_dim: 32,
        max_position_embeddings: 12,
        ..DistilBertConfig::default()
    }
}

fn fresh<M: LoadModel<Config = DistilBertConfig>>(cfg: &DistilBertConfig) -> (M, VarMap) {
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

fn names(varmap: &VarMap) -> Vec<String> {
    varmap.data().lock().unwrap().keys().cloned().collect()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: DistilBertConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, DistilBertConfig::default());
    assert_eq!((cfg.vocab_size, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.hidden_dim), (30522, 768, 6, 12, 3072));
    assert_eq!((cfg.activation, cfg.pad_token_id, cfg.sinusoidal_pos_embds), (Activation::Gelu, Some(0), false));
    assert_eq!(cfg.labels.num_labels(), 2);
}

#[test]
fn config_reads_distilbert_names_and_the_attribute_map() {
    // distilbert/distilbert-base-uncased-finetuned-sst-2-english's config.json, shortened.
    let json = r#"{
        "activation": "gelu", "architectures": ["DistilBertForSequenceClassification"],
        "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "finetuning_task": "sst-2",
        "hidden_dim": 3072, "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
        "label2id": {"NEGATIVE": 0, "POSITIVE": 1}, "max_position_embeddings": 512,
        "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "output_past": true,
        "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522
    }"#;
    let cfg: DistilBertConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.labels.num_labels(), 2);
    assert_eq!(cfg.dim, 768);
    let back: DistilBertConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    // The common names win over DistilBERT's, as setting them does in Python.
    let cfg: DistilBertConfig =
        serde_json::from_str(r#"{"dim": 8, "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4}"#)
            .unwrap();
    assert_eq!((cfg.dim, cfg.n_layers, cfg.n_heads), (64, 3, 4));

    let err = serde_json::from_str::<DistilBertConfig>(r#"{"activation": "gelu_nope"}"#).unwrap_err();
    assert!(err.to_string().contains("gelu_nope"), "{err}");
}

#[test]
fn sinusoidal_positions_match_transformers() {
    // `create_sinusoidal_embeddings(10, 16, ...)` in transformers, row 1 and row 9.
    let table = sinusoidal_position_embeddings(10, 16, &Device::Cpu).unwrap();
    let row1: Vec<f32> = table.i(1).unwrap().to_vec1().unwrap();
    for (got, want) in row1.iter().zip([0.841_470_96f32, 0.540_302_3, 0.310_983_24, 0.950_415_3]) {
        assert!((got - want).abs() < 1e-6, "{row1:?}");
    }
    let row0: Vec<f32> = table.i(0).unwrap().to_vec1().unwrap();
    assert_eq!(row0, [0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1.]);

    // A model without weights gets the table; one with weights reads them.
    let cfg = DistilBertConfig { sinusoidal_pos_embds: true, ..tiny() };
    let (_, varmap) = fresh::<DistilBertModel>(&cfg);
    assert!(!names(&varmap).iter().any(|n| n.contains("position_embeddings")), "{:?}", names(&varmap));
    let (_, varmap) = fresh::<DistilBertModel>(&tiny());
    assert!(names(&varmap).iter().any(|n| n == "embeddings.position_embeddings.weight"));
}

#[test]
fn every_head_has_the_transformers_output_shapes() {
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let x = inputs();

    let (base, _) = fresh::<DistilBertModel>(&cfg);
    let out = Model::forward(&base, &x).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 5, 16]);
    assert!(out.pooler_output.is_none());
    let encoded = ForTextEncoding::forward(&base, &x).unwrap();
    assert_eq!(max_abs_diff(&encoded.last_hidden_state, &out.last_hidden_state), 0.0);

    let (m, _) = fresh::<DistilBertForMaskedLM>(&cfg);
    assert_eq!(ForMaskedLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 50]);
    let (m, _) = fresh::<DistilBertForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&m, &x).unwrap().logits.dims(), [2, 3]);
    let (m, _) = fresh::<DistilBertForTokenClassification>(&cfg);
    assert_eq!(ForTokenClassification::forward(&m, &x).unwrap().logits.dims(), [2, 5, 3]);
    cfg.labels.num_labels = Some(2);
    let (m, _) = fresh::<DistilBertForQuestionAnswering>(&cfg);
    let out = ForQuestionAnswering::forward(&m, &x).unwrap();
    assert_eq!(out.start_logits.dims(), [2, 5]);
    assert_eq!(out.end_logits.dims(), [2, 5]);
}

#[test]
fn multiple_choice_scores_each_choice_on_its_own() {
    let (m, _) = fresh::<DistilBertForMultipleChoice>(&tiny());
    let ids = Tensor::arange(0u32, 24, &Device::Cpu).unwrap().reshape((2, 3, 4)).unwrap();
    let mask = Tensor::ones((2, 3, 4), DType::I64, &Device::Cpu).unwrap();
    let logits =
        ForMultipleChoice::forward(&m, &ModelInputs::new(ids.clone()).with_attention_mask(mask)).unwrap().logits;
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
fn padding_and_token_types_do_not_change_the_tokens() {
    let (m, _) = fresh::<DistilBertModel>(&tiny());
    let short = Tensor::new(&[[2u32, 3, 4]], &Device::Cpu).unwrap();
    let alone = Model::forward(&m, &ModelInputs::new(short)).unwrap().last_hidden_state;
    let padded = Model::forward(&m, &inputs()).unwrap().last_hidden_state;
    assert!(max_abs_diff(&alone, &padded.i((1..2, 0..3)).unwrap()) < 1e-5);

    // DistilBERT has no token types: a BERT tokenizer's are ignored.
    let types = Tensor::ones((2, 5), DType::I64, &Device::Cpu).unwrap();
    let typed = Model::forward(&m, &inputs().with_token_type_ids(types)).unwrap().last_hidden_state;
    assert_eq!(max_abs_diff(&typed, &padded), 0.0);

    // Default positions are 0..T.
    let positions = Tensor::arange(0i64, 5, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let explicit = Model::forward(&m, &inputs().with_position_ids(positions)).unwrap().last_hidden_state;
    assert_eq!(max_abs_diff(&explicit, &padded), 0.0);
    let shifted = Tensor::arange(1i64, 6, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let other = Model::forward(&m, &inputs().with_position_ids(shifted)).unwrap().last_hidden_state;
    assert!(max_abs_diff(&other, &padded) > 1e-3);
}

#[test]
fn bad_inputs_and_configs_are_clear_errors() {
    let (m, _) = fresh::<DistilBertModel>(&tiny());
    let run = |x: ModelInputs| Model::forward(&m, &x).unwrap_err();
    let cpu = &Device::Cpu;
    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[[1f32, 2.]], cpu).unwrap()));
    assert!(err.to_string().contains("integers"), "{err}");
    let err = run(ModelInputs::new(Tensor::new(&[[1u32, 50]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: 50, vocab_size: 50 }), "{err}");
    let err = run(ModelInputs::new(Tensor::ones((1, 13), DType::U32, cpu).unwrap()));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");
    let err = run(ModelInputs::new(ids()).with_attention_mask(Tensor::ones((2, 4), DType::I64, cpu).unwrap()));
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("attention_mask"), "{err}");
    let err = run(ModelInputs::new(ids()).with_position_ids(Tensor::new(&[[0u32, 1, 2, 3, 12]], cpu).unwrap()));
    assert!(err.to_string().contains("position 12"), "{err}");

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, cpu);
    let err = DistilBertModel::load(vb.clone(), &DistilBertConfig { dim: 18, ..tiny() }).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "distilbert"), "{err}");
    assert!(err.to_string().contains("`n_heads` (4) must divide `dim` (18)"), "{err}");
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let err = DistilBertForQuestionAnswering::load(vb, &cfg).unwrap_err();
    assert!(err.to_string().contains("needs 2 labels"), "{err}");
}

#[test]
fn tied_projector_shares_the_word_embeddings() {
    let (_, varmap) = fresh::<DistilBertForMaskedLM>(&tiny());
    let names = names(&varmap);
    assert!(names.iter().any(|n| n == "vocab_projector.bias"), "{names:?}");
    assert!(!names.iter().any(|n| n == "vocab_projector.weight"), "{names:?}");
    let (_, varmap) = fresh::<DistilBertForMaskedLM>(&DistilBertConfig { tie_word_embeddings: false, ..tiny() });
    assert!(self::names(&varmap).iter().any(|n| n == "vocab_projector.weight"));
}

#[test]
fn loads_from_a_head_checkpoint() {
    let cfg = tiny();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mlm = DistilBertForMaskedLM::load(vb, &cfg).unwrap();
    let want = ForMaskedLm::forward(&mlm, &inputs()).unwrap().logits;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    varmap.save(&path).unwrap();
    let checkpoint = Arc::new(Checkpoint::open(vec![path]).unwrap());

    let (vb, _) = checkpoint_var_builder(checkpoint.clone(), "distilbert", DType::F32, &Device::Cpu);
    let loaded = DistilBertForMaskedLM::load(vb, &cfg).unwrap();
    assert_eq!(max_abs_diff(&want, &ForMaskedLm::forward(&loaded, &inputs()).unwrap().logits), 0.0);

    let (vb, tracker) = checkpoint_var_builder(checkpoint, "distilbert", DType::F32, &Device::Cpu);
    let base = DistilBertModel::load(vb, &cfg).unwrap();
    let hidden = Model::forward(&base, &inputs()).unwrap().last_hidden_state;
    assert_eq!(
        max_abs_diff(&hidden, &Model::forward(loaded.inner().distilbert(), &inputs()).unwrap().last_hidden_state),
        0.0
    );
    assert!(tracker.used().contains("distilbert.transformer.layer.1.ffn.lin2.weight"));
}

#[test]
fn every_head_is_registered_and_builds_from_the_registry() {
    use autocandle_core::load::build_fresh;
    use autocandle_core::registry::Registry;
    use autocandle_core::{PretrainedConfig, Task};

    let registry = Registry::global().unwrap();
    let tasks = [
        (Task::Base, "DistilBertModel"),
        (Task::TextEncoding, "DistilBertModel"),
        (Task::MaskedLm, "DistilBertForMaskedLM"),
        (Task::SequenceClassification, "DistilBertForSequenceClassification"),
        (Task::MultipleChoice, "DistilBertForMultipleChoice"),
        (Task::TokenClassification, "DistilBertForTokenClassification"),
        (Task::QuestionAnswering, "DistilBertForQuestionAnswering"),
    ];
    for (task, class) in tasks {
        let reg = registry.model("distilbert", task).unwrap();
        assert_eq!(reg.class_name, class);
        assert_eq!(reg.base_model_prefix, "distilbert");
    }
    assert_eq!(registry.heads("distilbert").len(), tasks.len());

    let serde_json::Value::Object(fields) = serde_json::to_value(tiny()).unwrap() else {
        panic!("a config serialises to an object")
    };
    let config = PretrainedConfig::for_model("distilbert", fields).unwrap();
    assert_eq!(config.downcast::<DistilBertConfig>(), Some(&tiny()));
    let reg = registry.model("distilbert", Task::SequenceClassification).unwrap();
    let model = build_fresh::<dyn ForSequenceClassification>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().logits.dims(), [2, 2]);
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::F16, DType::BF16] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let m = DistilBertForMaskedLM::load(vb, &DistilBertConfig { sinusoidal_pos_embds: true, ..tiny() }).unwrap();
        let logits = ForMaskedLm::forward(&m, &inputs()).unwrap().logits;
        assert_eq!(logits.dtype(), dtype);
        let sum = logits.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?}");
    }
}
