//! Unit tests: config defaults, layouts and bad configs, the registered heads,
//! and the key/value cache in every architecture (whole sequence, step by step, with padding,
//! rows selected as beam search does). Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForCausalLm, ModelInputs, Task};
use autocandle_testing::{cached_vs_whole, check_heads, fresh, ids, selected_rows_vs_alone};
use candle_core::{Device, IndexOp, Tensor};

use crate::*;

fn tiny() -> FalconConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "ffn_hidden_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 16, "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

/// The switches of every fixture: (new arch, kv heads, multi_query, parallel, alibi, ln count).
fn variants() -> Vec<FalconConfig> {
    let t = tiny();
    vec![
        t.clone(),
        FalconConfig { new_decoder_architecture: true, num_kv_heads: Some(2), bias: true, ..t.clone() },
        FalconConfig {
            new_decoder_architecture: true,
            num_kv_heads: Some(1),
            num_ln_in_parallel_attn: Some(1),
            ..t.clone()
        },
        FalconConfig { parallel_attn: false, ..t.clone() },
        FalconConfig { alibi: true, multi_query: false, parallel_attn: false, ..t.clone() },
        FalconConfig { alibi: true, hidden_size: 48, num_attention_heads: 6, ..t },
    ]
}

#[test]
fn config_defaults_and_layouts() {
    let cfg: FalconConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, FalconConfig::default());
    assert_eq!((cfg.head_dim(), cfg.kv_heads(), cfg.ffn_dim()), (64, 1, 4 * 4544));
    assert_eq!((cfg.qkv_layout(), cfg.block_layout()), (QkvLayout::MultiQuery, BlockLayout::Parallel));
    // tiiuae/falcon-40b: the new architecture with 8 key/value groups.
    let cfg: FalconConfig = serde_json::from_str(
        r#"{"hidden_size": 8192, "num_attention_heads": 128, "num_kv_heads": 8, "new_decoder_architecture": true,
            "num_hidden_layers": 60, "parallel_attn": true, "bias": false, "alibi": false}"#,
    )
    .unwrap();
    assert_eq!((cfg.qkv_layout(), cfg.block_layout(), cfg.kv_heads()), (QkvLayout::Grouped, BlockLayout::TwoNorms, 8));
    assert_eq!(cfg.qkv_dim(), (128 + 16) * 64);
    // `n_embed` wins over `hidden_size`.
    let cfg: FalconConfig =
        serde_json::from_str(r#"{"n_embed": 64, "hidden_size": 32, "num_attention_heads": 4}"#).unwrap();
    assert_eq!(cfg.head_dim(), 16);
    let back: FalconConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let old = FalconConfig { multi_query: false, parallel_attn: false, ..tiny() };
    assert_eq!(
        (old.qkv_layout(), old.block_layout(), old.kv_heads()),
        (QkvLayout::Interleaved, BlockLayout::Sequential, 4)
    );
}

#[test]
fn bad_configs_are_clear_errors() {
    let check = |cfg: FalconConfig, want: &str| {
        let err = cfg.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains(want), "{err}");
    };
    check(FalconConfig { num_attention_heads: 5, ..tiny() }, "multiple of `num_attention_heads`");
    check(FalconConfig { new_decoder_architecture: true, num_kv_heads: Some(3), ..tiny() }, "must divide");
    check(FalconConfig { multi_query: false, num_kv_heads: Some(2), ..tiny() }, "must equal");
    check(FalconConfig { new_decoder_architecture: true, parallel_attn: false, ..tiny() }, "`parallel_attn`");
    check(FalconConfig { num_ln_in_parallel_attn: Some(2), ..tiny() }, "needs `new_decoder_architecture`");
    check(FalconConfig { num_ln_in_parallel_attn: Some(3), ..tiny() }, "1 or 2");
}

#[test]
fn every_head_is_registered_and_runs() {
    let p = "transformer";
    for cfg in variants() {
        check_heads(
            &cfg,
            &[
                (Task::Base, "FalconModel".into(), p),
                (Task::CausalLm, "FalconForCausalLM".into(), p),
                (Task::SequenceClassification, "FalconForSequenceClassification".into(), p),
                (Task::TokenClassification, "FalconForTokenClassification".into(), p),
                (Task::QuestionAnswering, "FalconForQuestionAnswering".into(), p),
            ],
        )
        .unwrap();
    }
}

#[test]
fn cached_decoding_equals_the_whole_sequence_and_rows_can_be_selected() {
    for cfg in variants() {
        let m: FalconForCausalLM = fresh(&cfg);
        let all = ids(&[&[1, 5, 7, 9, 11, 13], &[0, 0, 8, 21, 49, 2]]);
        let mask = ids(&[&[1, 1, 1, 1, 1, 1], &[0, 0, 1, 1, 1, 1]]);
        let (diff, cache) = cached_vs_whole(&m, &all, Some(&mask), 3);
        assert!(diff < 1e-4, "{cfg:?}");
        assert_eq!(cache.get(0).unwrap().0.dim(1).unwrap(), cfg.kv_heads());
        let prompt = (all.i((.., 0..5)).unwrap(), mask.i((.., 0..5)).unwrap());
        assert!(selected_rows_vs_alone(&m, &prompt.0, Some(&prompt.1), &[1], &[2]) < 1e-4, "{cfg:?}");
    }
}

#[test]
fn alibi_needs_no_position_limit_and_rotary_has_one() {
    let rotary: FalconForCausalLM = fresh(&tiny());
    assert_eq!(rotary.max_positions(), Some(16));
    let long = Tensor::ones((1, 17), candle_core::DType::U32, &Device::Cpu).unwrap();
    let err = rotary.forward(&ModelInputs::new(long.clone())).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 17, max: 16 }), "{err}");
    let alibi: FalconForCausalLM = fresh(&FalconConfig { alibi: true, ..tiny() });
    assert_eq!(alibi.max_positions(), None);
    assert_eq!(alibi.forward(&ModelInputs::new(long)).unwrap().logits.dims(), [1, 17, 50]);
}

#[test]
fn half_precision_runs() {
    autocandle_testing::half_precision_runs::<FalconForCausalLM>(&tiny());
}
