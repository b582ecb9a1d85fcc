//! Unit tests: the config defaults of `transformers`, the weight prefix of the heads, and bad
//! configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForMaskedLm, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> Data2VecTextConfig {
    Data2VecTextConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..Data2VecTextConfig::default()
    }
}

fn load<M: LoadModel<Config = Data2VecTextConfig>>(cfg: &Data2VecTextConfig) -> (autocandle_core::Result<M>, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    (M::load(vb, cfg), varmap)
}

fn ids() -> ModelInputs {
    let ids = Tensor::new(&[[0u32, 5, 7, 1, 2], [0, 3, 2, 1, 1]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: Data2VecTextConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Data2VecTextConfig::default());
    assert_eq!(<Data2VecTextConfig as RegisteredConfig>::MODEL_TYPE, "data2vec-text");
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers), (30522, 768, 12));
    assert_eq!((cfg.pad_token_id, cfg.bos_token_id), (Some(1), Some(0)));
    assert_eq!((cfg.max_position_embeddings, cfg.type_vocab_size, cfg.layer_norm_eps), (512, 2, 1e-12));
    assert!(cfg.tie_word_embeddings && !cfg.is_decoder);
}

#[test]
fn heads_find_the_base_model_under_its_prefix() {
    let (model, varmap) = load::<Data2VecTextForMaskedLM>(&tiny());
    let logits = ForMaskedLm::forward(&model.unwrap(), &ids()).unwrap().logits;
    assert_eq!(logits.dims(), &[2, 5, 50]);
    let names = varmap.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(names.contains(&"data2vec_text.embeddings.word_embeddings.weight".to_owned()), "{names:?}");
    assert!(names.contains(&"lm_head.dense.weight".to_owned()), "{names:?}");
    let (model, _) = load::<Data2VecTextModel>(&tiny());
    let out = Model::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 5, 16]);
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<Data2VecTextModel>(&Data2VecTextConfig { pad_token_id: Some(60), ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "data2vec-text"), "{err}");
    assert!(err.to_string().contains("`pad_token_id` (60)"), "{err}");
    let (err, _) = load::<Data2VecTextModel>(&Data2VecTextConfig { hidden_size: 18, ..tiny() });
    let err = err.unwrap_err();
    assert!(err.to_string().contains("multiple of `num_attention_heads`"), "{err}");
}
