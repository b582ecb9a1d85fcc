//! Unit tests: the config defaults of `transformers`, the pre-LayerNorm weight names, and bad
//! configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForPreTraining, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> MegatronBertConfig {
    MegatronBertConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..MegatronBertConfig::default()
    }
}

fn load<M: LoadModel<Config = MegatronBertConfig>>(cfg: &MegatronBertConfig) -> (autocandle_core::Result<M>, VarMap) {
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
    let cfg: MegatronBertConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, MegatronBertConfig::default());
    assert_eq!(<MegatronBertConfig as RegisteredConfig>::MODEL_TYPE, "megatron-bert");
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers), (29056, 1024, 24));
    assert_eq!((cfg.num_attention_heads, cfg.intermediate_size, cfg.pad_token_id), (16, 4096, Some(0)));
    assert!(cfg.tie_word_embeddings && !cfg.is_decoder);
}

#[test]
fn the_network_is_pre_layer_norm_under_bert_heads() {
    let (model, varmap) = load::<MegatronBertForPreTraining>(&tiny());
    let out = ForPreTraining::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.prediction_logits().unwrap().dims(), &[2, 5, 50]);
    assert_eq!(out.seq_relationship_logits().unwrap().dims(), &[2, 2]);
    let names = varmap.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
    for name in [
        "bert.encoder.layer.1.attention.ln.weight",
        "bert.encoder.layer.1.ln.bias",
        "bert.encoder.ln.weight",
        "bert.pooler.dense.weight",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.seq_relationship.weight",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} not in {names:?}");
    }
    for name in ["bert.embeddings.LayerNorm.weight", "bert.encoder.layer.0.output.LayerNorm.weight"] {
        assert!(!names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    let (model, _) = load::<MegatronBertModel>(&tiny());
    assert_eq!(Model::forward(&model.unwrap(), &ids()).unwrap().last_hidden_state.dims(), &[2, 5, 16]);
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<MegatronBertModel>(&MegatronBertConfig { hidden_size: 18, ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "megatron-bert"), "{err}");
    assert!(err.to_string().contains("multiple of `num_attention_heads`"), "{err}");
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    let (err, _) = load::<MegatronBertForQuestionAnswering>(&cfg);
    let err = err.unwrap_err();
    assert!(err.to_string().contains("MegatronBertForQuestionAnswering needs 2 labels"), "{err}");
}
