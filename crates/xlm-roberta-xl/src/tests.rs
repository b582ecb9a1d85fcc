//! Unit tests: the config defaults of `transformers`, the pre-LayerNorm weight names, and bad
//! configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForMaskedLm, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> XLMRobertaXLConfig {
    XLMRobertaXLConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..XLMRobertaXLConfig::default()
    }
}

fn load<M: LoadModel<Config = XLMRobertaXLConfig>>(cfg: &XLMRobertaXLConfig) -> (autocandle_core::Result<M>, VarMap) {
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
    let cfg: XLMRobertaXLConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, XLMRobertaXLConfig::default());
    assert_eq!(<XLMRobertaXLConfig as RegisteredConfig>::MODEL_TYPE, "xlm-roberta-xl");
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers), (250880, 2560, 36));
    assert_eq!((cfg.num_attention_heads, cfg.intermediate_size), (32, 10240));
    assert_eq!((cfg.max_position_embeddings, cfg.type_vocab_size, cfg.layer_norm_eps), (514, 1, 1e-5));
    assert_eq!((cfg.pad_token_id, cfg.bos_token_id), (Some(1), Some(0)));
    assert!(cfg.tie_word_embeddings && !cfg.is_decoder);
}

#[test]
fn the_network_is_pre_layer_norm() {
    let (model, varmap) = load::<XLMRobertaXLForMaskedLM>(&tiny());
    let logits = ForMaskedLm::forward(&model.unwrap(), &ids()).unwrap().logits;
    assert_eq!(logits.dims(), &[2, 5, 50]);
    let names = varmap.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
    for name in [
        "roberta.encoder.layer.1.attention.self_attn_layer_norm.weight",
        "roberta.encoder.layer.1.LayerNorm.bias",
        "roberta.encoder.LayerNorm.weight",
        "lm_head.layer_norm.weight",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} not in {names:?}");
    }
    for name in ["roberta.embeddings.LayerNorm.weight", "roberta.encoder.layer.0.output.LayerNorm.weight"] {
        assert!(!names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    let (model, _) = load::<XLMRobertaXLModel>(&tiny());
    let out = Model::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 5, 16]);
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<XLMRobertaXLModel>(&XLMRobertaXLConfig { pad_token_id: Some(60), ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "xlm-roberta-xl"), "{err}");
    let (err, _) = load::<XLMRobertaXLModel>(&XLMRobertaXLConfig { num_attention_heads: 0, ..tiny() });
    let err = err.unwrap_err();
    assert!(err.to_string().contains("`num_attention_heads` must be at least 1"), "{err}");
}
