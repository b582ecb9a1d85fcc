//! Unit tests: config parsing and validation, every head through the registry, the
//! key/value cache against whole-sequence runs, the interleaved partial rotary embedding,
//! padding, input errors and the LM head's bias.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, IndexOp, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{Activation, Error, ForCausalLm, KvCache, LoadModel, Model, ModelInputs, Task};
use autocandle_testing::{cached_vs_whole, fresh_with_weights, ids, logits, max_diff, selected_rows_vs_alone};

use crate::*;

fn tiny() -> GPTJConfig {
    let mut cfg = GPTJConfig {
        vocab_size: 50,
        n_positions: 12,
        n_embd: 16,
        n_layer: 2,
        n_head: 2,
        rotary_dim: Some(4),
        n_inner: Some(24),
        pad_token_id: Some(0),
        ..GPTJConfig::default()
    };
    cfg.labels.num_labels = Some(3);
    cfg
}

fn fresh_lm(cfg: &GPTJConfig) -> (GPTJForCausalLM, VarMap) {
    fresh_with_weights(cfg)
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: GPTJConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GPTJConfig::default());
    assert_eq!((cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head), (50400, 2048, 4096, 28, 16));
    assert_eq!((cfg.rotary_dim, cfg.head_dim(), cfg.inner_dim()), (Some(64), 256, 16384));
    assert_eq!(cfg.activation_function, Activation::GeluTanh);
    assert!(!cfg.tie_word_embeddings);

    // `attribute_map` names win over GPT-J's own, as in transformers.
    let json = r#"{"hidden_size": 64, "n_embd": 32, "num_attention_heads": 4, "num_hidden_layers": 3,
        "max_position_embeddings": 128, "rotary_dim": null}"#;
    let cfg: GPTJConfig = serde_json::from_str(json).unwrap();
    assert_eq!((cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.n_positions, cfg.rotary_dims()), (64, 4, 3, 128, 16));
    let value = serde_json::to_value(&cfg).unwrap();
    assert!(value.get("hidden_size").is_none());
    assert_eq!(serde_json::from_value::<GPTJConfig>(value).unwrap(), cfg);
}

#[test]
fn invalid_configs_are_clear_errors() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let load = |cfg: GPTJConfig| GPTJModel::load(vb.clone(), &cfg).unwrap_err();
    let err = load(GPTJConfig { n_head: 3, ..tiny() });
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("multiple of `n_head`"), "{err}");
    let err = load(GPTJConfig { rotary_dim: Some(10), ..tiny() });
    assert!(err.to_string().contains("`rotary_dim` (10) is larger than the head size"), "{err}");
    let err = load(GPTJConfig { rotary_dim: Some(3), ..tiny() });
    assert!(err.to_string().contains("must be even"), "{err}");
    let err = load(GPTJConfig { rotary_dim: Some(0), ..tiny() });
    assert!(err.to_string().contains("`rotary_dim` must be at least 2"), "{err}");
    let err = load(GPTJConfig { layer_norm_epsilon: f64::NAN, ..tiny() });
    assert!(err.to_string().contains("layer_norm_epsilon"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    use autocandle_core::registry::{Constructor, Registry};
    use autocandle_core::PretrainedConfig;

    // (autocandle_testing::check_heads reads `hidden_size`, which GPT-J calls `n_embd`.)
    let registry = Registry::global().unwrap();
    let heads = [
        (Task::Base, "GPTJModel"),
        (Task::CausalLm, "GPTJForCausalLM"),
        (Task::SequenceClassification, "GPTJForSequenceClassification"),
        (Task::QuestionAnswering, "GPTJForQuestionAnswering"),
    ];
    assert_eq!(registry.heads("gptj").len(), heads.len());
    for cfg in [tiny(), GPTJConfig { tie_word_embeddings: true, rotary_dim: None, ..tiny() }] {
        let serde_json::Value::Object(fields) = serde_json::to_value(&cfg).unwrap() else { panic!("an object") };
        let config = PretrainedConfig::for_model("gptj", fields).unwrap();
        assert_eq!(config.downcast::<GPTJConfig>(), Some(&cfg));
        let x = ModelInputs::new(ids(&[&[1, 2, 1], &[2, 1, 0]])).with_attention_mask(ids(&[&[1, 1, 1], &[1, 1, 0]]));
        for (task, class) in heads {
            let reg = registry.model("gptj", task).unwrap();
            assert_eq!((reg.class_name, reg.base_model_prefix), (class, "transformer"));
            let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
            let dims = match reg.constructor {
                Constructor::Base(f) => f(&cfg, vb).unwrap().forward(&x).unwrap().last_hidden_state.dims().to_vec(),
                Constructor::CausalLm(f) => {
                    let model = f(&cfg, vb).unwrap();
                    assert!(model.supports_cache());
                    model.forward(&x).unwrap().logits.dims().to_vec()
                }
                Constructor::SequenceClassification(f) => {
                    f(&cfg, vb).unwrap().forward(&x).unwrap().logits.dims().to_vec()
                }
                Constructor::QuestionAnswering(f) => {
                    f(&cfg, vb).unwrap().forward(&x).unwrap().start_logits.dims().to_vec()
                }
                other => panic!("unexpected constructor {other:?}"),
            };
            let want = match task {
                Task::Base => vec![2, 3, 16],
                Task::CausalLm => vec![2, 3, 50],
                Task::SequenceClassification => vec![2, 3],
                _ => vec![2, 3],
            };
            assert_eq!(dims, want, "{class}");
        }
    }
}

#[test]
fn cached_decoding_equals_the_whole_sequence() {
    for rotary_dim in [Some(2), Some(4), Some(8), None] {
        let (m, _) = fresh_lm(&GPTJConfig { rotary_dim, ..tiny() });
        let all = ids(&[&[3, 5, 7, 9, 11, 13], &[2, 4, 6, 8, 10, 12]]);
        assert!(cached_vs_whole(&m, &all, None, 2).0 < 1e-5, "{rotary_dim:?}");
    }
}

/// `rotate_every_two`: the pairs (x0, x1), (x2, x3), ... rotate; past `rotary_dim` nothing does.
#[test]
fn rotary_embedding_is_interleaved_and_partial() {
    let cfg = tiny();
    let rotary = crate::model::tests_support::rotate(&cfg, &[0, 1, 3]);
    // Position 0 leaves every vector as it was.
    let x = crate::model::tests_support::input(&cfg);
    assert!(max_diff(&rotary.i((.., .., 0)).unwrap(), &x.i((.., .., 0)).unwrap()) < 1e-6);
    // The last `head_dim - rotary_dim` dimensions never move.
    let pass = |t: &Tensor| t.narrow(D::Minus1, 4, 4).unwrap();
    assert!(max_diff(&pass(&rotary), &pass(&x)) < 1e-6);
    // At position p, dims 0 and 1 turn by p * inv_freq[0] = p radians.
    let (x0, x1) = (
        x.i((0, 0, 2, 0)).unwrap().to_scalar::<f32>().unwrap(),
        x.i((0, 0, 2, 1)).unwrap().to_scalar::<f32>().unwrap(),
    );
    let y0 = rotary.i((0, 0, 2, 0)).unwrap().to_scalar::<f32>().unwrap();
    let y1 = rotary.i((0, 0, 2, 1)).unwrap().to_scalar::<f32>().unwrap();
    let a = 3f32;
    assert!((y0 - (x0 * a.cos() - x1 * a.sin())).abs() < 1e-5);
    assert!((y1 - (x1 * a.cos() + x0 * a.sin())).abs() < 1e-5);
}

#[test]
fn left_padding_with_positions_equals_the_row_alone() {
    let (m, _) = fresh_lm(&tiny());
    let x = ModelInputs::new(ids(&[&[0, 0, 5, 7, 9]]))
        .with_attention_mask(ids(&[&[0, 0, 1, 1, 1]]))
        .with_position_ids(Tensor::new(&[[0i64, 0, 0, 1, 2]], &Device::Cpu).unwrap());
    let alone = logits(&m, &ModelInputs::new(ids(&[&[5, 7, 9]])));
    assert!(max_diff(&logits(&m, &x).i((.., 2..)).unwrap(), &alone) < 1e-5);
}

#[test]
fn packed_sequences_without_a_cache() {
    // `use_cache` false: `position_ids` that restart mark packed sequences (no mask given).
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let m = GPTJModel::load(vb, &GPTJConfig { use_cache: false, ..tiny() }).unwrap();
    let x = ModelInputs::new(ids(&[&[3, 5, 7, 9, 11]]))
        .with_position_ids(Tensor::new(&[[0i64, 1, 0, 1, 2]], &Device::Cpu).unwrap());
    let packed = Model::forward(&m, &x).unwrap().last_hidden_state;
    let second = Model::forward(&m, &ModelInputs::new(ids(&[&[7, 9, 11]]))).unwrap().last_hidden_state;
    assert!(max_diff(&packed.i((.., 2..)).unwrap(), &second) < 1e-5);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (m, _) = fresh_lm(&tiny());
    let run = |x: ModelInputs| ForCausalLm::forward(&m, &x).unwrap_err();
    let err = run(ModelInputs::new(ids(&[&[1, 50]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 50, vocab_size: 50, .. }), "{err}");
    let err = run(ModelInputs::new(Tensor::ones((1, 13), DType::U32, &Device::Cpu).unwrap()));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");
    let err = run(ModelInputs::new(ids(&[&[1, 2]])).with_attention_mask(ids(&[&[1, 1, 1]])));
    assert!(err.to_string().contains("attention_mask"), "{err}");
    let positions = Tensor::new(&[[0i64, 12]], &Device::Cpu).unwrap();
    let err = run(ModelInputs::new(ids(&[&[1, 2]])).with_position_ids(positions));
    assert!(err.to_string().contains("position 12"), "{err}");
    let mut cache = KvCache::new();
    m.forward_with_cache(&ModelInputs::new(ids(&[&[1, 2], &[3, 4]])), &mut cache).unwrap();
    let err = m.forward_with_cache(&ModelInputs::new(ids(&[&[1]])), &mut cache).unwrap_err();
    assert!(err.to_string().contains("cache holds 2 rows"), "{err}");
}

#[test]
fn the_lm_head_has_a_bias_even_when_tied() {
    let (_, varmap) = fresh_lm(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "lm_head.weight") && names.iter().any(|n| n == "lm_head.bias"), "{names:?}");
    let (m, varmap) = fresh_lm(&GPTJConfig { tie_word_embeddings: true, ..tiny() });
    let data = varmap.data().lock().unwrap();
    assert!(!data.contains_key("lm_head.weight") && data.contains_key("lm_head.bias"));
    let wte = m.inner().transformer().word_embeddings().embeddings().unwrap();
    assert_eq!(max_diff(&m.inner().lm_head().weight().unwrap(), wte), 0.0);
    assert!(m.inner().lm_head().bias().is_some());
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
    autocandle_testing::half_precision_runs::<GPTJForCausalLM>(&tiny());
}
