//! Unit tests: config errors, the layer-to-group mapping, output shapes of every head from
//! fresh weights.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForMaskedLm, ForMultipleChoice, ForPreTraining, ForQuestionAnswering, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> AlbertConfig {
    AlbertConfig {
        vocab_size: 40,
        embedding_size: 10,
        hidden_size: 12,
        num_hidden_layers: 3,
        num_hidden_groups: 2,
        inner_group_num: 2,
        num_attention_heads: 3,
        intermediate_size: 17,
        max_position_embeddings: 16,
        ..AlbertConfig::default()
    }
}

fn fresh<M: LoadModel<Config = AlbertConfig>>(config: &AlbertConfig) -> autocandle_core::Result<M> {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config)
}

fn inputs() -> ModelInputs {
    let ids = Tensor::new(&[[2u32, 5, 6, 7, 3, 9], [2, 8, 3, 0, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn layers_map_to_groups_as_transformers() {
    // int(i / (L / G)) in floating point.
    let groups = |layers: usize, groups: usize| -> Vec<usize> {
        let cfg = AlbertConfig { num_hidden_layers: layers, num_hidden_groups: groups, ..tiny() };
        (0..layers).map(|i| cfg.group_of(i)).collect()
    };
    assert_eq!(groups(3, 2), [0, 0, 1]);
    assert_eq!(groups(4, 2), [0, 0, 1, 1]);
    assert_eq!(groups(12, 1), [0; 12]);
    assert_eq!(groups(5, 3), [0, 0, 1, 1, 2]);
    assert_eq!(groups(2, 4), [0, 2]);
}

#[test]
fn bad_configs_are_refused() {
    let cases: [(AlbertConfig, &str); 4] = [
        (AlbertConfig { num_attention_heads: 5, ..tiny() }, "multiple of `num_attention_heads`"),
        (AlbertConfig { num_hidden_groups: 0, ..tiny() }, "`num_hidden_groups` must be at least 1"),
        (AlbertConfig { inner_group_num: 0, ..tiny() }, "`inner_group_num` must be at least 1"),
        (AlbertConfig { embedding_size: 0, ..tiny() }, "`embedding_size` must be at least 1"),
    ];
    for (config, want) in cases {
        let err = config.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(fresh::<AlbertModel>(&config).is_err());
    }
}

#[test]
fn every_head_runs_with_the_right_shapes() {
    let config = tiny();
    let out = Model::forward(&fresh::<AlbertModel>(&config).unwrap(), &inputs()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 6, 12]);
    let enc = fresh::<AlbertTextEncoding>(&config).unwrap();
    assert_eq!(ForTextEncoding::forward(&enc, &inputs()).unwrap().last_hidden_state.dims(), [2, 6, 12]);
    let pre = ForPreTraining::forward(&fresh::<AlbertForPreTraining>(&config).unwrap(), &inputs()).unwrap();
    assert_eq!(pre.prediction_logits().unwrap().dims(), [2, 6, 40]);
    assert_eq!(autocandle_core::ModelOutput::get(&pre, "sop_logits").unwrap().dims(), [2, 2]);
    assert!(pre.seq_relationship_logits().is_none());
    let lm = fresh::<AlbertForMaskedLM>(&config).unwrap();
    assert_eq!(ForMaskedLm::forward(&lm, &inputs()).unwrap().logits.dims(), [2, 6, 40]);
    let seq = fresh::<AlbertForSequenceClassification>(&config).unwrap();
    assert_eq!(ForSequenceClassification::forward(&seq, &inputs()).unwrap().logits.dims(), [2, 2]);
    let tok = fresh::<AlbertForTokenClassification>(&config).unwrap();
    assert_eq!(ForTokenClassification::forward(&tok, &inputs()).unwrap().logits.dims(), [2, 6, 2]);
    let qa = fresh::<AlbertForQuestionAnswering>(&config).unwrap();
    assert_eq!(ForQuestionAnswering::forward(&qa, &inputs()).unwrap().start_logits.dims(), [2, 6]);
    let mc = fresh::<AlbertForMultipleChoice>(&config).unwrap();
    let choices = ModelInputs::new(Tensor::zeros((1, 3, 6), DType::U32, &Device::Cpu).unwrap());
    assert_eq!(ForMultipleChoice::forward(&mc, &choices).unwrap().logits.dims(), [1, 3]);
}
