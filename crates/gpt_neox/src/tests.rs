//! Unit tests: config defaults and the Pythia config form, bad configs, the registered heads,
//! and the key/value cache (whole sequence, step by step, rows selected as beam search does).
//! Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Error, ForCausalLm, KvCache, ModelInputs, Task};
use autocandle_testing::{cached_vs_whole, check_heads, fresh, ids, max_diff, selected_rows_vs_alone};
use candle_core::{Device, IndexOp, Tensor};

use crate::*;

fn tiny() -> GPTNeoXConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 16, "rotary_pct": 0.5,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: GPTNeoXConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GPTNeoXConfig::default());
    assert!(cfg.use_parallel_residual && cfg.attention_bias && !cfg.tie_word_embeddings);
    // rotary_pct defaults to 0.25: 24 of the 96 dimensions of a head rotate.
    let spec = cfg.rope_spec().unwrap();
    assert_eq!((cfg.head_dim(), spec.rotary_dim), (96, 24));
}

#[test]
fn config_reads_the_pythia_form_and_the_new_one() {
    // EleutherAI/pythia-70m's config.json.
    let json = r#"{
        "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "classifier_dropout": 0.1,
        "eos_token_id": 0, "hidden_act": "gelu", "hidden_size": 512, "initializer_range": 0.02,
        "intermediate_size": 2048, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
        "model_type": "gpt_neox", "num_attention_heads": 8, "num_hidden_layers": 6, "rotary_emb_base": 10000,
        "rotary_pct": 0.25, "tie_word_embeddings": false, "torch_dtype": "float16",
        "transformers_version": "4.24.0", "use_cache": true, "use_parallel_residual": true, "vocab_size": 50304
    }"#;
    let cfg: GPTNeoXConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.rope_spec().unwrap().rotary_dim, 16);
    let back: GPTNeoXConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    // A base other than the default, in the legacy key.
    let cfg: GPTNeoXConfig = serde_json::from_str(r#"{"rotary_emb_base": 500}"#).unwrap();
    assert_eq!(cfg.rope_config().parameters.theta(), 500.0);
    // transformers 5's form wins over the legacy keys.
    let cfg: GPTNeoXConfig = serde_json::from_str(
        r#"{"rotary_pct": 0.25, "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0,
            "partial_rotary_factor": 1.0}}"#,
    )
    .unwrap();
    let rope = cfg.rope_config();
    assert_eq!((rope.parameters.theta(), rope.parameters.partial_rotary_factor), (1000.0, Some(1.0)));
}

#[test]
fn bad_configs_are_clear_errors() {
    let err = GPTNeoXConfig { num_attention_heads: 5, ..tiny() }.validate().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("multiple of"), "{err}");
    let err = GPTNeoXConfig { rotary_pct: Some(0.2), ..tiny() }.validate().unwrap_err();
    assert!(err.to_string().contains("rotary dimension"), "{err}");
    let err = GPTNeoXConfig { vocab_size: 0, ..tiny() }.validate().unwrap_err();
    assert!(err.to_string().contains("`vocab_size`"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let p = "gpt_neox";
    check_heads(
        &tiny(),
        &[
            (Task::Base, "GPTNeoXModel".into(), p),
            (Task::CausalLm, "GPTNeoXForCausalLM".into(), p),
            (Task::SequenceClassification, "GPTNeoXForSequenceClassification".into(), p),
            (Task::TokenClassification, "GPTNeoXForTokenClassification".into(), p),
            (Task::QuestionAnswering, "GPTNeoXForQuestionAnswering".into(), p),
        ],
    )
    .unwrap();
}

#[test]
fn cached_decoding_equals_the_whole_sequence_and_rows_can_be_selected() {
    for parallel in [true, false] {
        let cfg = GPTNeoXConfig { use_parallel_residual: parallel, ..tiny() };
        let m: GPTNeoXForCausalLM = fresh(&cfg);
        let all = ids(&[&[1, 5, 7, 9, 11, 13], &[3, 8, 8, 21, 49, 2]]);
        assert!(cached_vs_whole(&m, &all, None, 3).0 < 1e-4, "parallel {parallel}");
        // Keep row 1 only (as beam search reorders its beams), then continue it.
        assert!(selected_rows_vs_alone(&m, &all.i((.., 0..5)).unwrap(), None, &[1], &[2]) < 1e-4);
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let m: GPTNeoXForCausalLM = fresh(&tiny());
    let err = m.forward(&ModelInputs::new(ids(&[&[1, 50]]))).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 50, .. }), "{err}");
    let long = Tensor::ones((1, 17), candle_core::DType::U32, &Device::Cpu).unwrap();
    let err = m.forward(&ModelInputs::new(long)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 17, max: 16 }), "{err}");
    let mut cache = KvCache::new();
    m.forward_with_cache(&ModelInputs::new(ids(&[&[1, 2], &[3, 4]])), &mut cache).unwrap();
    let err = m.forward_with_cache(&ModelInputs::new(ids(&[&[1]])), &mut cache).unwrap_err();
    assert!(err.to_string().contains("cache holds 2 rows"), "{err}");
}

#[test]
fn half_precision_runs() {
    autocandle_testing::half_precision_runs::<GPTNeoXForCausalLM>(&tiny());
}

#[test]
fn loads_a_pythia_checkpoint_with_its_buffers_and_either_head_name() {
    use autocandle_core::weights::{checkpoint_var_builder, loading_report, Checkpoint};
    use std::collections::HashMap;
    use std::sync::Arc;

    let cpu = &Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, cpu);
    let m = <GPTNeoXForCausalLM as autocandle_core::LoadModel>::load(vb, &tiny()).unwrap();
    let x = ModelInputs::new(ids(&[&[1, 5, 7, 9]]));
    let want = m.forward(&x).unwrap().logits;
    let mut tensors: HashMap<String, Tensor> =
        varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    assert!(tensors.contains_key("lm_head.weight"));
    for i in 0..2 {
        let layer = format!("gpt_neox.layers.{i}.attention");
        tensors.insert(format!("{layer}.bias"), Tensor::ones((1, 1, 16, 16), candle_core::DType::U8, cpu).unwrap());
        tensors.insert(format!("{layer}.masked_bias"), Tensor::new(-1e9f32, cpu).unwrap());
        tensors.insert(format!("{layer}.rotary_emb.inv_freq"), Tensor::ones(2, candle_core::DType::F32, cpu).unwrap());
    }
    for head in ["lm_head.weight", "embed_out.weight"] {
        let mut saved = tensors.clone();
        let weight = saved.remove("lm_head.weight").unwrap();
        saved.insert(head.to_owned(), weight);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&saved, &path).unwrap();
        let checkpoint = Arc::new(Checkpoint::open(vec![path]).unwrap());
        let (vb, tracker) = checkpoint_var_builder(checkpoint.clone(), "gpt_neox", candle_core::DType::F32, cpu);
        let loaded = <GPTNeoXForCausalLM as autocandle_core::LoadModel>::load(vb, &tiny()).unwrap();
        assert_eq!(max_diff(&loaded.forward(&x).unwrap().logits, &want), 0.0, "{head}");
        let report = loading_report(&checkpoint, &tracker);
        assert!(report.unexpected_keys.is_empty() && report.missing_keys.is_empty(), "{head}: {report:?}");
    }
}
