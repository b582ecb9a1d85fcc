//! Unit tests: the config defaults of `transformers`, the weight prefix, the task type
//! embeddings, and bad configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForMaskedLm, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> ErnieConfig {
    ErnieConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..ErnieConfig::default()
    }
}

fn load<M: LoadModel<Config = ErnieConfig>>(cfg: &ErnieConfig) -> (autocandle_core::Result<M>, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    (M::load(vb, cfg), varmap)
}

fn ids() -> ModelInputs {
    let ids = Tensor::new(&[[2u32, 5, 7, 9, 3], [2, 3, 4, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

fn names(varmap: &VarMap) -> Vec<String> {
    varmap.data().lock().unwrap().keys().cloned().collect()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: ErnieConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, ErnieConfig::default());
    assert_eq!(<ErnieConfig as RegisteredConfig>::MODEL_TYPE, "ernie");
    assert_eq!((cfg.vocab_size, cfg.task_type_vocab_size, cfg.use_task_id), (30522, 3, false));
    assert_eq!(cfg.variant(), autocandle_bert::BertVariant::default());
    let cfg: ErnieConfig = serde_json::from_str(r#"{"use_task_id": true, "task_type_vocab_size": 16}"#).unwrap();
    assert_eq!(cfg.variant().task_type_vocab_size, Some(16));
}

#[test]
fn heads_find_the_base_model_under_ernie_and_task_types_are_loaded() {
    let (model, varmap) = load::<ErnieForMaskedLM>(&tiny());
    let logits = ForMaskedLm::forward(&model.unwrap(), &ids()).unwrap().logits;
    assert_eq!(logits.dims(), &[2, 5, 50]);
    let names_plain = names(&varmap);
    assert!(names_plain.contains(&"ernie.embeddings.LayerNorm.weight".to_owned()), "{names_plain:?}");
    assert!(!names_plain.iter().any(|n| n.contains("task_type")), "{names_plain:?}");

    let cfg = ErnieConfig { use_task_id: true, task_type_vocab_size: 5, ..tiny() };
    let (model, varmap) = load::<ErnieModel>(&cfg);
    let out = Model::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 5, 16]);
    assert!(names(&varmap).contains(&"embeddings.task_type_embeddings.weight".to_owned()));
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<ErnieModel>(&ErnieConfig { use_task_id: true, task_type_vocab_size: 0, ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "ernie"), "{err}");
    assert!(err.to_string().contains("`task_type_vocab_size` must be at least 1"), "{err}");
    let (err, _) = load::<ErnieModel>(&ErnieConfig { vocab_size: 0, ..tiny() });
    assert!(err.unwrap_err().to_string().contains("`vocab_size` must be at least 1"));
}
