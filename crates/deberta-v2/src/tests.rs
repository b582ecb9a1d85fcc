//! Unit tests: configs and their errors, the log buckets, every head's output shapes from
//! fresh weights.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification, ForTextEncoding,
    ForTokenClassification, LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> DebertaV2Config {
    DebertaV2Config {
        vocab_size: 40,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 20,
        max_position_embeddings: 16,
        relative_attention: true,
        pos_att_type: vec!["c2p".into(), "p2c".into()],
        position_buckets: 4,
        share_att_key: true,
        norm_rel_ebd: "layer_norm".into(),
        conv_kernel_size: 3,
        ..DebertaV2Config::default()
    }
}

fn fresh<M: LoadModel>(cfg: &M::Config) -> M {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), cfg).unwrap()
}

fn inputs(rows: usize) -> ModelInputs {
    let ids: Vec<u32> = (0..rows * 7).map(|i| (i % 39) as u32 + 1).collect();
    let mask: Vec<u32> = (0..rows * 7).map(|i| u32::from(i % 7 < 5 || i < 7)).collect();
    let ids = Tensor::from_vec(ids, (rows, 7), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, (rows, 7), &Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

fn config_error(json: &str) -> String {
    let config: DebertaV2Config = serde_json::from_str(json).unwrap();
    DebertaSpec::from_v2(&config).unwrap_err().to_string()
}

#[test]
fn pos_att_type_reads_every_form() {
    let parse = |v: &str| serde_json::from_str::<DebertaV2Config>(&format!("{{\"pos_att_type\": {v}}}")).unwrap();
    assert_eq!(parse("\"P2C| c2p\"").pos_att_type, ["p2c", "c2p"]);
    assert_eq!(parse("[\"c2p\"]").pos_att_type, ["c2p"]);
    assert!(parse("null").pos_att_type.is_empty());
    let spec = DebertaSpec::from_v2(&tiny()).unwrap();
    assert_eq!(spec.scale_factor, 3);
    let rel = spec.relative.unwrap();
    assert_eq!((rel.span, rel.max_relative_positions, rel.buckets), (4, 16, Some(4)));
    assert!(rel.share_att_key && rel.norm_rel_ebd);
}

#[test]
fn log_buckets_follow_transformers() {
    // torch: make_log_bucket_position(torch.arange(-12, 13), 6, 9)
    let want = [-6, -6, -6, -6, -5, -5, -5, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 6, 6];
    let got: Vec<i64> = (-12..=12).map(|r| log_bucket_position(r, 6, 9)).collect();
    assert_eq!(got, want);
    // Within half the buckets, positions are kept.
    assert_eq!(log_bucket_position(-128, 256, 512), -128);
}

#[test]
fn bad_configs_are_refused_with_what_to_do() {
    let err = config_error(r#"{"hidden_size": 30, "num_attention_heads": 4}"#);
    assert!(err.contains("multiple of `num_attention_heads`"), "{err}");
    let err = config_error(r#"{"relative_attention": true, "position_buckets": 256, "max_relative_positions": 100}"#);
    assert!(err.contains("`position_buckets` (256)") && err.contains("set `position_buckets` to -1"), "{err}");
    let err = config_error(r#"{"conv_kernel_size": 4}"#);
    assert!(err.contains("must be odd"), "{err}");
    let err = config_error(r#"{"conv_kernel_size": 3, "conv_groups": 7}"#);
    assert!(err.contains("`conv_groups` (7) must divide"), "{err}");
    let err = config_error(r#"{"pooler_hidden_size": 8}"#);
    assert!(err.contains("must equal `hidden_size`"), "{err}");
    let err = config_error(r#"{"attention_head_size": 32}"#);
    assert!(err.contains("remove `attention_head_size`"), "{err}");
    let err = config_error(r#"{"vocab_size": 0}"#);
    assert!(err.contains("`vocab_size` must be at least 1"), "{err}");
    let enhanced = DebertaV2Config { legacy: false, embedding_size: Some(8), ..tiny() };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = DebertaV2ForMaskedLM::load(vb, &enhanced).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("set `legacy` to true"), "{err}");
}

#[test]
fn every_head_has_the_transformers_shapes() {
    for cfg in [
        tiny(),
        DebertaV2Config { relative_attention: false, type_vocab_size: 2, ..tiny() },
        DebertaV2Config { pos_att_type: vec![], embedding_size: Some(8), position_biased_input: false, ..tiny() },
        DebertaV2Config { legacy: false, share_att_key: false, position_buckets: -1, ..tiny() },
    ] {
        let x = inputs(2);
        let base: DebertaV2Model = fresh(&cfg);
        assert_eq!(Model::forward(&base, &x).unwrap().last_hidden_state.dims(), [2, 7, 16]);
        let enc: DebertaV2TextEncoding = fresh(&cfg);
        assert_eq!(ForTextEncoding::forward(&enc, &x).unwrap().last_hidden_state.dims(), [2, 7, 16]);
        let lm: DebertaV2ForMaskedLM = fresh(&cfg);
        assert_eq!(lm.forward(&x).unwrap().logits.dims(), [2, 7, 40]);
        let seq: DebertaV2ForSequenceClassification = fresh(&cfg);
        assert_eq!(seq.forward(&x).unwrap().logits.dims(), [2, 2]);
        let tok: DebertaV2ForTokenClassification = fresh(&cfg);
        assert_eq!(tok.forward(&x).unwrap().logits.dims(), [2, 7, 2]);
        let qa: DebertaV2ForQuestionAnswering = fresh(&cfg);
        assert_eq!(qa.forward(&x).unwrap().start_logits.dims(), [2, 7]);
        let mc: DebertaV2ForMultipleChoice = fresh(&cfg);
        let flat = inputs(6);
        let choices = ModelInputs::new(flat.input_ids().unwrap().reshape((2, 3, 7)).unwrap())
            .with_attention_mask(flat.attention_mask.unwrap().reshape((2, 3, 7)).unwrap());
        assert_eq!(mc.forward(&choices).unwrap().logits.dims(), [2, 3]);
    }
}

#[test]
fn long_inputs_are_refused_only_with_absolute_positions() {
    let ids = Tensor::ones((1, 20), DType::U32, &Device::Cpu).unwrap();
    let base: DebertaV2Model = fresh(&tiny());
    let err = Model::forward(&base, &ModelInputs::new(ids.clone())).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 20, max: 16 }), "{err}");
    let relative_only: DebertaV2Model = fresh(&DebertaV2Config { position_biased_input: false, ..tiny() });
    assert_eq!(Model::forward(&relative_only, &ModelInputs::new(ids)).unwrap().last_hidden_state.dims(), [1, 20, 16]);
}
