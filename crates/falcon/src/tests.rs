//! Unit tests: config defaults, layouts and bad configs, ALiBi slopes, the registered heads,
//! and the key/value cache in every architecture (whole sequence, step by step, with padding,
//! rows selected as beam search does). Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForCausalLm, KvCache, ModelInputs, Task};
use autocandle_testing::{check_heads, fresh, ids, max_diff};
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
fn alibi_slopes_match_build_alibi_tensor() {
    // transformers' build_alibi_tensor for 4 and 6 heads (2^-2k; then 2^-1, 2^-3 for the extra heads).
    assert_eq!(alibi_slopes(4), [0.25, 0.0625, 0.015625, 0.00390625]);
    assert_eq!(alibi_slopes(6), [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]);
    assert_eq!(alibi_slopes(8)[0], 0.5);
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
        let whole = m.forward(&ModelInputs::new(all.clone()).with_attention_mask(mask.clone())).unwrap().logits;
        let mut cache = KvCache::new();
        let x = ModelInputs::new(all.i((.., 0..3)).unwrap()).with_attention_mask(mask.i((.., 0..3)).unwrap());
        m.forward_with_cache(&x, &mut cache).unwrap();
        assert_eq!(cache.get(0).unwrap().0.dim(1).unwrap(), cfg.kv_heads());
        for t in 3..6 {
            let x =
                ModelInputs::new(all.i((.., t..t + 1)).unwrap()).with_attention_mask(mask.i((.., 0..t + 1)).unwrap());
            let step = m.forward_with_cache(&x, &mut cache).unwrap();
            assert!(max_diff(&step.logits, &whole.i((.., t..t + 1)).unwrap()) < 1e-4, "step {t}: {cfg:?}");
        }
        let mut cache = KvCache::new();
        let x = ModelInputs::new(all.i((.., 0..5)).unwrap()).with_attention_mask(mask.i((.., 0..5)).unwrap());
        m.forward_with_cache(&x, &mut cache).unwrap();
        cache.select_rows(&Tensor::new(&[1u32], &Device::Cpu).unwrap()).unwrap();
        let x = ModelInputs::new(all.i((1..2, 5..6)).unwrap()).with_attention_mask(mask.i(1..2).unwrap());
        let step = m.forward_with_cache(&x, &mut cache).unwrap();
        assert!(max_diff(&step.logits, &whole.i((1..2, 5..6)).unwrap()) < 1e-4);
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
    for dtype in [candle_core::DType::F16, candle_core::DType::BF16] {
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let m = <FalconForCausalLM as autocandle_core::LoadModel>::load(vb, &tiny()).unwrap();
        let x = ModelInputs::new(ids(&[&[1, 5, 7], &[0, 3, 8]])).with_attention_mask(ids(&[&[1, 1, 1], &[0, 1, 1]]));
        let mut cache = KvCache::new();
        let out = m.forward_with_cache(&x, &mut cache).unwrap().logits;
        assert_eq!(out.dtype(), dtype);
        let sum = out.to_dtype(candle_core::DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?}");
    }
}
