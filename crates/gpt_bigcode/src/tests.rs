//! Unit tests: config defaults and `attribute_map` names, bad configs, the registered heads,
//! and the key/value cache with one or several key/value heads (whole sequence, step by step,
//! rows selected as beam search does). Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Activation, Error, ForCausalLm, ModelInputs, Task};
use autocandle_testing::{cached_vs_whole, check_heads, fresh, ids, selected_rows_vs_alone};
use candle_core::{Device, IndexOp, Tensor};

use crate::*;

fn tiny() -> GPTBigCodeConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "n_embd": 32, "n_inner": 48, "n_layer": 2, "n_head": 4, "n_positions": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: GPTBigCodeConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GPTBigCodeConfig::default());
    assert!(cfg.multi_query && cfg.scale_attn_weights && cfg.tie_word_embeddings);
    assert_eq!((cfg.kv_heads(), cfg.inner_dim(), cfg.activation_function), (1, 3072, Activation::GeluTanh));
}

#[test]
fn config_reads_attribute_map_names() {
    let cfg: GPTBigCodeConfig = serde_json::from_str(
        r#"{"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 8, "max_position_embeddings": 128,
            "multi_query": false}"#,
    )
    .unwrap();
    assert_eq!((cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_positions, cfg.kv_heads()), (64, 3, 8, 128, 8));
    let back: GPTBigCodeConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = GPTBigCodeConfig { n_head: 5, ..tiny() }.validate().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("multiple of `n_head`"), "{err}");
    let err = GPTBigCodeConfig { add_cross_attention: true, ..tiny() }.validate().unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = GPTBigCodeConfig { n_positions: 0, ..tiny() }.validate().unwrap_err();
    assert!(err.to_string().contains("`n_positions`"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    for multi_query in [true, false] {
        let p = "transformer";
        check_heads(
            &GPTBigCodeConfig { multi_query, ..tiny() },
            &[
                (Task::Base, "GPTBigCodeModel".into(), p),
                (Task::CausalLm, "GPTBigCodeForCausalLM".into(), p),
                (Task::SequenceClassification, "GPTBigCodeForSequenceClassification".into(), p),
                (Task::TokenClassification, "GPTBigCodeForTokenClassification".into(), p),
            ],
        )
        .unwrap();
    }
}

#[test]
fn cached_decoding_equals_the_whole_sequence_and_rows_can_be_selected() {
    for multi_query in [true, false] {
        let cfg = GPTBigCodeConfig { multi_query, ..tiny() };
        let m: GPTBigCodeForCausalLM = fresh(&cfg);
        let all = ids(&[&[1, 5, 7, 9, 11, 13], &[3, 8, 8, 21, 49, 2]]);
        let (diff, cache) = cached_vs_whole(&m, &all, None, 3);
        assert!(diff < 1e-4, "multi_query {multi_query}");
        // One cached key/value head with multi_query.
        assert_eq!(cache.get(0).unwrap().0.dim(1).unwrap(), if multi_query { 1 } else { 4 });
        // Keep row 1 only (as beam search reorders its beams), then continue it.
        assert!(selected_rows_vs_alone(&m, &all.i((.., 0..5)).unwrap(), None, &[1], &[2]) < 1e-4);
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let m: GPTBigCodeForCausalLM = fresh(&tiny());
    let err = m.forward(&ModelInputs::new(ids(&[&[1, 50]]))).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 50, .. }), "{err}");
    let long = Tensor::ones((1, 17), candle_core::DType::U32, &Device::Cpu).unwrap();
    let err = m.forward(&ModelInputs::new(long)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 17, max: 16 }), "{err}");
    let types = Tensor::new(&[[0i64, 50]], &Device::Cpu).unwrap();
    let err = m.forward(&ModelInputs::new(ids(&[&[1, 2]])).with_token_type_ids(types)).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "token_type_ids", .. }), "{err}");
}

#[test]
fn half_precision_runs() {
    autocandle_testing::half_precision_runs::<GPTBigCodeForCausalLM>(&tiny());
}
