//! Unit tests: the config and its errors, every head's output shapes from fresh weights.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    ForMaskedLm, ForQuestionAnswering, ForSequenceClassification, ForTextEncoding, ForTokenClassification, LoadModel,
    Model, ModelInputs,
};

use crate::*;

fn tiny() -> DebertaConfig {
    DebertaConfig {
        vocab_size: 40,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 20,
        max_position_embeddings: 16,
        relative_attention: true,
        max_relative_positions: 4,
        pos_att_type: vec!["c2p".into(), "p2c".into()],
        talking_head: true,
        ..DebertaConfig::default()
    }
}

fn fresh<M: LoadModel>(cfg: &M::Config) -> M {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), cfg).unwrap()
}

#[test]
fn config_reads_v1_fields_and_checks() {
    let cfg: DebertaConfig = serde_json::from_str(r#"{"pos_att_type": "c2p|p2c", "talking_head": true}"#).unwrap();
    let spec = cfg.spec().unwrap();
    assert_eq!(spec.scale_factor, 3);
    assert!(spec.talking_head && spec.relative.is_none());
    let bad: DebertaConfig = serde_json::from_str(r#"{"hidden_size": 10, "num_attention_heads": 4}"#).unwrap();
    let err = bad.spec().unwrap_err().to_string();
    assert!(err.contains("`deberta`") && err.contains("multiple of `num_attention_heads`"), "{err}");
    let bad: DebertaConfig = serde_json::from_str(r#"{"pooler_hidden_size": 100}"#).unwrap();
    assert!(bad.spec().unwrap_err().to_string().contains("`pooler_hidden_size` (100) must equal"));
}

#[test]
fn every_head_has_the_transformers_shapes() {
    let ids = Tensor::new(&[[1u32, 5, 7, 9, 2, 3, 4], [1, 8, 2, 0, 0, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]], &Device::Cpu).unwrap();
    let x = ModelInputs::new(ids).with_attention_mask(mask);
    for cfg in [tiny(), DebertaConfig { legacy: false, relative_attention: false, talking_head: false, ..tiny() }] {
        let base: DebertaModel = fresh(&cfg);
        assert_eq!(Model::forward(&base, &x).unwrap().last_hidden_state.dims(), [2, 7, 16]);
        let enc: DebertaTextEncoding = fresh(&cfg);
        assert_eq!(ForTextEncoding::forward(&enc, &x).unwrap().last_hidden_state.dims(), [2, 7, 16]);
        let lm: DebertaForMaskedLM = fresh(&cfg);
        assert_eq!(lm.forward(&x).unwrap().logits.dims(), [2, 7, 40]);
        let seq: DebertaForSequenceClassification = fresh(&cfg);
        assert_eq!(seq.forward(&x).unwrap().logits.dims(), [2, 2]);
        let tok: DebertaForTokenClassification = fresh(&cfg);
        assert_eq!(tok.forward(&x).unwrap().logits.dims(), [2, 7, 2]);
        let qa: DebertaForQuestionAnswering = fresh(&cfg);
        assert_eq!(qa.forward(&x).unwrap().end_logits.dims(), [2, 7]);
    }
}
