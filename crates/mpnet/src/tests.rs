//! Unit tests: the relative position buckets against `transformers`, config errors, output
//! shapes of every head from fresh weights, and the registrations.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification,
    LoadModel, Model, ModelInputs,
};

use crate::*;

/// `MPNetEncoder.relative_position_bucket(torch.arange(-300, 301))` in `transformers` 5.25.
const PYTHON_BUCKETS: &[u32] = &[
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8,
    8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19, 20, 21, 22, 23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 26, 26,
    26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 29, 29, 29, 29, 29,
    29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
];

fn tiny() -> MPNetConfig {
    MPNetConfig {
        vocab_size: 40,
        hidden_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 3,
        intermediate_size: 17,
        max_position_embeddings: 40,
        ..MPNetConfig::default()
    }
}

fn fresh<M: LoadModel<Config = MPNetConfig>>(config: &MPNetConfig) -> autocandle_core::Result<M> {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config)
}

fn inputs() -> ModelInputs {
    let ids = Tensor::new(&[[0u32, 5, 6, 7, 2, 1], [0, 8, 2, 1, 1, 1]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn buckets_match_transformers() {
    assert_eq!(PYTHON_BUCKETS.len(), 601);
    for (i, &want) in PYTHON_BUCKETS.iter().enumerate() {
        let rel = i as i64 - 300;
        assert_eq!(relative_position_bucket(rel), want, "relative position {rel}");
    }
}

#[test]
fn bad_configs_are_refused() {
    let cases: [(MPNetConfig, &str); 4] = [
        (MPNetConfig { num_attention_heads: 5, ..tiny() }, "multiple of `num_attention_heads`"),
        (MPNetConfig { relative_attention_num_buckets: 16, ..tiny() }, "`relative_attention_num_buckets` (16)"),
        (MPNetConfig { max_position_embeddings: 2, ..tiny() }, "`max_position_embeddings` (2)"),
        (MPNetConfig { hidden_size: 0, ..tiny() }, "`hidden_size` must be at least 1"),
    ];
    for (config, want) in cases {
        let err = config.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(fresh::<MPNetModel>(&config).is_err());
    }
    assert!(tiny().validate().is_ok());
}

#[test]
fn every_head_runs_with_the_right_shapes() {
    let config = tiny();
    let out = Model::forward(&fresh::<MPNetModel>(&config).unwrap(), &inputs()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 6, 12]);
    let lm = fresh::<MPNetForMaskedLM>(&config).unwrap();
    assert_eq!(ForMaskedLm::forward(&lm, &inputs()).unwrap().logits.dims(), [2, 6, 40]);
    let seq = fresh::<MPNetForSequenceClassification>(&config).unwrap();
    assert_eq!(ForSequenceClassification::forward(&seq, &inputs()).unwrap().logits.dims(), [2, 2]);
    let tok = fresh::<MPNetForTokenClassification>(&config).unwrap();
    assert_eq!(ForTokenClassification::forward(&tok, &inputs()).unwrap().logits.dims(), [2, 6, 2]);
    let qa = fresh::<MPNetForQuestionAnswering>(&config).unwrap();
    assert_eq!(ForQuestionAnswering::forward(&qa, &inputs()).unwrap().start_logits.dims(), [2, 6]);
    let mc = fresh::<MPNetForMultipleChoice>(&config).unwrap();
    let choices = ModelInputs::new(Tensor::zeros((1, 2, 6), DType::U32, &Device::Cpu).unwrap());
    assert_eq!(ForMultipleChoice::forward(&mc, &choices).unwrap().logits.dims(), [1, 2]);
}

#[test]
fn too_long_inputs_are_refused() {
    let model = fresh::<MPNetModel>(&tiny()).unwrap();
    let ids = Tensor::from_vec(vec![5u32; 39], (1, 39), &Device::Cpu).unwrap();
    let err = Model::forward(&model, &ModelInputs::new(ids)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 39, max: 38 }), "{err}");
}
