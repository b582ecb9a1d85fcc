//! Unit tests: the config defaults of `transformers`, the weight names (no token types, no
//! pooler, `lm_head.decoder`), and bad configs as clear errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForCausalLm, LoadModel, Model, ModelInputs, RegisteredConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::*;

fn tiny() -> BertGenerationConfig {
    BertGenerationConfig {
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        max_position_embeddings: 12,
        ..BertGenerationConfig::default()
    }
}

fn load<M: LoadModel<Config = BertGenerationConfig>>(
    cfg: &BertGenerationConfig,
) -> (autocandle_core::Result<M>, VarMap) {
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
    let cfg: BertGenerationConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, BertGenerationConfig::default());
    assert_eq!(<BertGenerationConfig as RegisteredConfig>::MODEL_TYPE, "bert-generation");
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers), (50358, 1024, 24));
    assert_eq!((cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id), (Some(0), Some(2), Some(TokenIds::One(1))));
}

#[test]
fn no_token_types_no_pooler_and_a_bare_decoder() {
    let (model, varmap) = load::<BertGenerationDecoder>(&BertGenerationConfig { is_decoder: true, ..tiny() });
    let model = model.unwrap();
    let logits = ForCausalLm::forward(&model, &ids()).unwrap().logits;
    assert_eq!(logits.dims(), &[2, 5, 50]);
    // Token type ids are ignored.
    let types = Tensor::ones((2, 5), DType::I64, &Device::Cpu).unwrap();
    let again = ForCausalLm::forward(&model, &ids().with_token_type_ids(types)).unwrap().logits;
    let diff = (logits - again).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0);
    let names = varmap.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(names.contains(&"lm_head.bias".to_owned()), "{names:?}");
    assert!(names.contains(&"bert.embeddings.LayerNorm.weight".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("token_type") || n.contains("pooler") || n.contains("transform")));
    let (model, _) = load::<BertGenerationEncoder>(&tiny());
    let out = Model::forward(&model.unwrap(), &ids()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 5, 16]);
    assert!(out.pooler_output.is_none());
}

#[test]
fn bad_configs_are_clear_errors() {
    let (err, _) = load::<BertGenerationEncoder>(&BertGenerationConfig { hidden_size: 18, ..tiny() });
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { model_type, .. } if model_type == "bert-generation"), "{err}");
}
