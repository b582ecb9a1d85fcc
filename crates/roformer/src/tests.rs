//! Unit tests: the config defaults of `transformers`, the rotary table, weight names with
//! `embedding_size != hidden_size`, and bad configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForMaskedLm, ForMultipleChoice, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> RoFormerConfig {
    RoFormerConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..RoFormerConfig::default()
    }
}

fn load<M: LoadModel<Config = RoFormerConfig>>(cfg: &RoFormerConfig) -> (autocandle_core::Result<M>, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    (M::load(vb, cfg), varmap)
}

fn ids() -> ModelInputs {
    let ids = Tensor::new(&[[2u32, 5, 7, 9, 3], [2, 3, 4, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: RoFormerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, RoFormerConfig::default());
    assert_eq!(<RoFormerConfig as RegisteredConfig>::MODEL_TYPE, "roformer");
    assert_eq!((cfg.vocab_size, cfg.max_position_embeddings, cfg.embedding_size()), (50000, 1536, 768));
    assert!(!cfg.rotary_value && cfg.tie_word_embeddings);
}

#[test]
fn factorised_embeddings_and_heads() {
    let cfg = RoFormerConfig { embedding_size: Some(10), rotary_value: true, ..tiny() };
    let (model, varmap) = load::<RoFormerForMaskedLM>(&cfg);
    let logits = ForMaskedLm::forward(&model.unwrap(), &ids()).unwrap().logits;
    assert_eq!(logits.dims(), &[2, 5, 50]);
    let names = varmap.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
    for name in [
        "roformer.embeddings_project.weight",
        "roformer.embeddings.LayerNorm.weight",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.bias",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} not in {names:?}");
    }
    let (model, _) = load::<RoFormerModel>(&cfg);
    let out = Model::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 5, 16]);
    assert!(out.pooler_output.is_none());
    let (model, _) = load::<RoFormerForMultipleChoice>(&tiny());
    let choices = Tensor::new(&[[[2u32, 5, 7], [2, 3, 4]]], &Device::Cpu).unwrap();
    let out = ForMultipleChoice::forward(&model.unwrap(), &ModelInputs::new(choices)).unwrap();
    assert_eq!(out.logits.dims(), &[1, 2]);
}

#[test]
fn rotary_scores_depend_on_relative_positions_only() {
    let (model, _) = load::<RoFormerModel>(&tiny());
    let model = model.unwrap();
    // The same token at two positions, with nothing else to attend to but itself and a copy.
    let ids = Tensor::new(&[[7u32, 7]], &Device::Cpu).unwrap();
    let out = Model::forward(&model, &ModelInputs::new(ids)).unwrap().last_hidden_state;
    let diff = (out.narrow(1, 0, 1).unwrap() - out.narrow(1, 1, 1).unwrap()).unwrap();
    // Both attend to two identical keys and values: without values rotated the outputs match.
    assert!(diff.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-5);
    let too_long = Tensor::zeros((1, 13), DType::U32, &Device::Cpu).unwrap();
    let err = Model::forward(&model, &ModelInputs::new(too_long)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<RoFormerModel>(&RoFormerConfig { hidden_size: 12, num_attention_heads: 4, ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "roformer"), "{err}");
    assert!(err.to_string().contains("must be even"), "{err}");
    let (err, _) = load::<RoFormerModel>(&RoFormerConfig { embedding_size: Some(0), ..tiny() });
    assert!(err.unwrap_err().to_string().contains("`embedding_size` must be at least 1"));
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let (err, _) = load::<RoFormerForQuestionAnswering>(&cfg);
    assert!(err.unwrap_err().to_string().contains("RoFormerForQuestionAnswering needs 2 labels"));
}
