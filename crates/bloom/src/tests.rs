//! Unit tests: config parsing and validation, BLOOM's GELU, every head through the
//! registry, the key/value cache against whole-sequence runs, padding, input errors and
//! weight tying.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{Error, ForCausalLm, KvCache, LoadModel, Model, ModelInputs, Task};
use autocandle_testing::{
    cached_vs_whole, check_heads, fresh_with_weights, ids, logits, max_diff, reloaded, selected_rows_vs_alone,
};

use crate::*;

fn tiny() -> BloomConfig {
    let mut cfg = BloomConfig {
        vocab_size: 50,
        hidden_size: 16,
        n_layer: 2,
        n_head: 4,
        pad_token_id: Some(0),
        ..BloomConfig::default()
    };
    cfg.labels.num_labels = Some(3);
    cfg
}

fn fresh_lm(cfg: &BloomConfig) -> (BloomForCausalLM, VarMap) {
    fresh_with_weights(cfg)
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: BloomConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, BloomConfig::default());
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.n_layer, cfg.n_head), (250880, 64, 2, 8));
    assert!(cfg.tie_word_embeddings && !cfg.apply_residual_connection_post_layernorm);
    assert_eq!((cfg.bos_token_id, cfg.pad_token_id), (Some(1), None));

    // bigscience/bloom-560m's config.json (abridged): the old `n_embed`, and attribute_map names.
    let json = r#"{"apply_residual_connection_post_layernorm": false, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "hidden_dropout": 0.0, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "bloom", "n_embed": 1024, "n_inner": null, "n_layer": 24,
        "num_attention_heads": 16, "offset_alibi": 100, "pad_token_id": 3, "pretraining_tp": 1,
        "slow_but_exact": false, "unk_token_id": 0, "use_cache": true, "vocab_size": 250880}"#;
    let cfg: BloomConfig = serde_json::from_str(json).unwrap();
    assert_eq!((cfg.hidden_size, cfg.n_layer, cfg.n_head, cfg.head_dim()), (1024, 24, 16, 64));
    let both: BloomConfig = serde_json::from_str(r#"{"n_embed": 48, "hidden_size": 32}"#).unwrap();
    assert_eq!(both.hidden_size, 48);
    let value = serde_json::to_value(&cfg).unwrap();
    assert_eq!(serde_json::from_value::<BloomConfig>(value).unwrap(), cfg);
}

#[test]
fn invalid_configs_are_clear_errors() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = BloomModel::load(vb.clone(), &BloomConfig { n_head: 5, ..tiny() }).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("multiple of `n_head`"), "{err}");
    let err = BloomForCausalLM::load(vb.clone(), &BloomConfig { n_head: 0, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("`n_head` must be at least 1"), "{err}");
    let err = BloomModel::load(vb, &BloomConfig { layer_norm_epsilon: -1.0, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("layer_norm_epsilon"), "{err}");
}

#[test]
fn bloom_gelu_uses_its_own_constant() {
    let x = Tensor::new(&[-3f32, -1.0, 0.0, 0.5, 2.0], &Device::Cpu).unwrap();
    let got = bloom_gelu(&x).unwrap().to_vec1::<f32>().unwrap();
    for (g, x) in got.iter().zip([-3f32, -1.0, 0.0, 0.5, 2.0]) {
        let x = f64::from(x);
        let want = x * 0.5 * (1.0 + (0.797_884_56 * x * (1.0 + 0.044715 * x * x)).tanh());
        assert!((f64::from(*g) - want).abs() < 1e-6, "{x}: {g} vs {want}");
    }
}

#[test]
fn every_head_is_registered_and_runs() {
    let heads = [
        (Task::Base, "BloomModel".to_owned(), "transformer"),
        (Task::CausalLm, "BloomForCausalLM".to_owned(), "transformer"),
        (Task::SequenceClassification, "BloomForSequenceClassification".to_owned(), "transformer"),
        (Task::TokenClassification, "BloomForTokenClassification".to_owned(), "transformer"),
        (Task::QuestionAnswering, "BloomForQuestionAnswering".to_owned(), "transformer"),
    ];
    check_heads(&tiny(), &heads).unwrap();
    check_heads(&BloomConfig { n_head: 8, apply_residual_connection_post_layernorm: true, ..tiny() }, &heads).unwrap();
}

#[test]
fn cached_decoding_equals_the_whole_sequence() {
    for cfg in
        [tiny(), BloomConfig { hidden_size: 12, n_head: 6, apply_residual_connection_post_layernorm: true, ..tiny() }]
    {
        let (m, _) = fresh_lm(&cfg);
        let all = ids(&[&[3, 5, 7, 9, 11, 13], &[2, 4, 6, 8, 10, 12]]);
        // Random weights give logits of a few tens: the two paths round differently by a few
        // 1e-6 (up to 1.1e-5 seen), so 1e-5 failed now and then; a cache bug is far larger.
        let diff = cached_vs_whole(&m, &all, None, 2).0;
        assert!(diff < 5e-5, "{diff} {cfg:?}");
    }
}

/// ALiBi counts positions over the attended tokens, so a left-padded row gives the logits of
/// the row alone, with and without a cache; position ids are ignored.
#[test]
fn left_padding_equals_the_row_alone() {
    let (m, _) = fresh_lm(&tiny());
    let alone = logits(&m, &ModelInputs::new(ids(&[&[5, 7, 9]])));
    let x = ModelInputs::new(ids(&[&[0, 0, 5, 7, 9]])).with_attention_mask(ids(&[&[0, 0, 1, 1, 1]]));
    assert!(max_diff(&logits(&m, &x).i((.., 2..)).unwrap(), &alone) < 1e-5);
    let ignored = x.clone().with_position_ids(Tensor::new(&[[7i64, 7, 7, 7, 7]], &Device::Cpu).unwrap());
    assert_eq!(max_diff(&logits(&m, &ignored), &logits(&m, &x)), 0.0);

    let mut cache = KvCache::new();
    let x = ModelInputs::new(ids(&[&[0, 0, 5, 7]])).with_attention_mask(ids(&[&[0, 0, 1, 1]]));
    m.forward_with_cache(&x, &mut cache).unwrap();
    let x = ModelInputs::new(ids(&[&[9]])).with_attention_mask(ids(&[&[0, 0, 1, 1, 1]]));
    let step = m.forward_with_cache(&x, &mut cache).unwrap().logits;
    assert!(max_diff(&step, &alone.i((.., 2..)).unwrap()) < 1e-5);
}

#[test]
fn the_residual_switch_changes_the_output() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let x = ModelInputs::new(ids(&[&[3, 5, 7, 9]]));
    let run =
        |cfg: BloomConfig| Model::forward(&BloomModel::load(vb.clone(), &cfg).unwrap(), &x).unwrap().last_hidden_state;
    let plain = run(tiny());
    let post = run(BloomConfig { apply_residual_connection_post_layernorm: true, ..tiny() });
    assert!(max_diff(&plain, &post) > 1e-3);
    let data = varmap.data().lock().unwrap();
    assert_eq!(data["h.0.self_attention.query_key_value.weight"].as_tensor().dims(), [48, 16]);
    assert!(data.contains_key("word_embeddings_layernorm.weight") && data.contains_key("h.1.mlp.dense_4h_to_h.bias"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (m, _) = fresh_lm(&tiny());
    let run = |x: ModelInputs| ForCausalLm::forward(&m, &x).unwrap_err();
    let err = run(ModelInputs::new(ids(&[&[1, 50]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 50, vocab_size: 50, .. }), "{err}");
    let err = run(ModelInputs::new(ids(&[&[1, 2]])).with_attention_mask(ids(&[&[1, 1, 1]])));
    assert!(err.to_string().contains("attention_mask"), "{err}");
    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");
    let mut cache = KvCache::new();
    m.forward_with_cache(&ModelInputs::new(ids(&[&[1, 2], &[3, 4]])), &mut cache).unwrap();
    let err = m.forward_with_cache(&ModelInputs::new(ids(&[&[1]])), &mut cache).unwrap_err();
    assert!(err.to_string().contains("cache holds 2 rows"), "{err}");
    let x = ModelInputs::new(ids(&[&[1], &[2]])).with_attention_mask(ids(&[&[1, 1], &[1, 1]]));
    let err = m.forward_with_cache(&x, &mut cache).unwrap_err();
    assert!(err.to_string().contains("cached plus the new tokens"), "{err}");
}

#[test]
fn the_head_is_tied_as_transformers_ties_it() {
    let (m, varmap) = fresh_lm(&tiny());
    assert!(!varmap.data().lock().unwrap().contains_key("lm_head.weight"));
    let embed = m.inner().transformer().word_embeddings().embeddings().unwrap().clone();
    assert_eq!(max_diff(&m.inner().lm_head().weight().unwrap(), &embed), 0.0);

    // A base-model checkpoint (no `transformer.` prefix) loads into the LM head, tied.
    let rename = |k: &str| k.strip_prefix("transformer.").unwrap_or(k).to_owned();
    let loaded: BloomForCausalLM = reloaded(&varmap, rename, "transformer", &tiny());
    let x = ModelInputs::new(ids(&[&[3, 5, 7]]));
    assert_eq!(max_diff(&logits(&loaded, &x), &logits(&m, &x)), 0.0);
}

/// Beam search reorders the cache with `KvCache::select_rows`: a row carried over continues
/// as if it had been alone.
#[test]
fn selected_cache_rows_continue_alone() {
    let (m, _) = fresh_lm(&tiny());
    let prompt = ids(&[&[3, 5, 7], &[4, 6, 8]]);
    assert!(selected_rows_vs_alone(&m, &prompt, None, &[1, 1, 0], &[9, 10, 11]) < 1e-5);
}

#[test]
fn half_precision_runs() {
    autocandle_testing::half_precision_runs::<BloomForCausalLM>(&tiny());
}
