//! Unit tests: config errors, output shapes of every head from fresh weights.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForCausalLm, ForMaskedLm, ForMultipleChoice, ForPreTraining, ForQuestionAnswering,
    ForSequenceClassification, ForTextEncoding, ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> ElectraConfig {
    ElectraConfig {
        vocab_size: 40,
        embedding_size: 10,
        hidden_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 3,
        intermediate_size: 17,
        max_position_embeddings: 16,
        ..ElectraConfig::default()
    }
}

fn fresh<M: LoadModel<Config = ElectraConfig>>(config: &ElectraConfig) -> autocandle_core::Result<M> {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config)
}

fn inputs() -> ModelInputs {
    let ids = Tensor::new(&[[2u32, 5, 6, 7, 3, 9], [2, 8, 3, 0, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn bad_configs_are_refused() {
    let cases: [(ElectraConfig, &str); 4] = [
        (ElectraConfig { num_attention_heads: 5, ..tiny() }, "multiple of `num_attention_heads`"),
        (ElectraConfig { embedding_size: 0, ..tiny() }, "`embedding_size` must be at least 1"),
        (ElectraConfig { summary_type: "attn".to_owned(), ..tiny() }, "`summary_type` `attn`"),
        (ElectraConfig { type_vocab_size: 0, ..tiny() }, "`type_vocab_size` must be at least 1"),
    ];
    for (config, want) in cases {
        let err = config.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(fresh::<ElectraModel>(&config).is_err());
    }
    let unknown = ElectraConfig { summary_activation: Some("nope".to_owned()), ..tiny() };
    assert!(unknown.validate().unwrap_err().to_string().contains("activation `nope`"));
    assert!(ElectraConfig { summary_activation: Some(String::new()), ..tiny() }.validate().is_ok());
}

#[test]
fn every_head_runs_with_the_right_shapes() {
    for embedding_size in [10, 12] {
        let config = ElectraConfig { embedding_size, ..tiny() };
        let out = Model::forward(&fresh::<ElectraModel>(&config).unwrap(), &inputs()).unwrap();
        assert_eq!(out.last_hidden_state.dims(), [2, 6, 12]);
        assert!(out.pooler_output.is_none());
        let enc = fresh::<ElectraTextEncoding>(&config).unwrap();
        assert_eq!(ForTextEncoding::forward(&enc, &inputs()).unwrap().last_hidden_state.dims(), [2, 6, 12]);
        let pre = fresh::<ElectraForPreTraining>(&config).unwrap();
        let pre = ForPreTraining::forward(&pre, &inputs()).unwrap();
        assert_eq!(pre.logits().unwrap().dims(), [2, 6]);
        assert!(pre.prediction_logits().is_none());
        let lm = fresh::<ElectraForMaskedLM>(&config).unwrap();
        assert_eq!(ForMaskedLm::forward(&lm, &inputs()).unwrap().logits.dims(), [2, 6, 40]);
        let causal = fresh::<ElectraForCausalLM>(&ElectraConfig { is_decoder: true, ..config.clone() }).unwrap();
        assert_eq!(ForCausalLm::forward(&causal, &inputs()).unwrap().logits.dims(), [2, 6, 40]);
        let seq = fresh::<ElectraForSequenceClassification>(&config).unwrap();
        assert_eq!(ForSequenceClassification::forward(&seq, &inputs()).unwrap().logits.dims(), [2, 2]);
        let tok = fresh::<ElectraForTokenClassification>(&config).unwrap();
        assert_eq!(ForTokenClassification::forward(&tok, &inputs()).unwrap().logits.dims(), [2, 6, 2]);
        let qa = fresh::<ElectraForQuestionAnswering>(&config).unwrap();
        assert_eq!(ForQuestionAnswering::forward(&qa, &inputs()).unwrap().end_logits.dims(), [2, 6]);
        for summary_type in ["first", "last", "mean", "cls_index"] {
            let config = ElectraConfig { summary_type: summary_type.to_owned(), ..config.clone() };
            let mc = fresh::<ElectraForMultipleChoice>(&config).unwrap();
            let choices = ModelInputs::new(Tensor::zeros((1, 3, 6), DType::U32, &Device::Cpu).unwrap());
            assert_eq!(ForMultipleChoice::forward(&mc, &choices).unwrap().logits.dims(), [1, 3]);
        }
    }
}
