//! Unit tests: config parsing and validation, output shapes of every head, the key/value
//! cache against whole-sequence runs, padding, input errors, weight tying and loading from
//! saved checkpoints.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Activation, Error, ForCausalLm, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification, KvCache,
    LoadModel, Model, ModelInputs,
};

use crate::*;

fn tiny() -> GPT2Config {
    GPT2Config {
        vocab_size: 50,
        n_positions: 12,
        n_embd: 16,
        n_layer: 2,
        n_head: 4,
        // Large enough that the fresh weights give outputs that differ visibly.
        initializer_range: 0.5,
        ..GPT2Config::default()
    }
}

fn fresh<M: LoadModel<Config = GPT2Config>>(cfg: &GPT2Config) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

fn ids() -> Tensor {
    Tensor::new(&[[1u32, 5, 7, 9, 11], [2, 3, 4, 0, 0]], &Device::Cpu).unwrap()
}

fn mask() -> Tensor {
    Tensor::new(&[[1i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap()
}

fn inputs() -> ModelInputs {
    ModelInputs::new(ids()).with_attention_mask(mask())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn logits(m: &GPT2LMHeadModel, x: ModelInputs) -> Tensor {
    ForCausalLm::forward(m, &x).unwrap().logits
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: GPT2Config = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, GPT2Config::default());
    assert_eq!((cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head), (50257, 1024, 768, 12, 12));
    assert_eq!(cfg.inner_dim(), 3072);
    assert_eq!(cfg.activation_function, Activation::GeluTanh);
    assert_eq!(cfg.layer_norm_epsilon, 1e-5);
    assert_eq!((cfg.bos_token_id, cfg.eos_token_id.clone()), (Some(50256), Some(TokenIds::One(50256))));
    assert_eq!(cfg.pad_token_id, None);
    assert!(cfg.tie_word_embeddings && cfg.scale_attn_weights && cfg.use_cache);
    assert!(!cfg.add_cross_attention && !cfg.scale_attn_by_inverse_layer_idx && !cfg.reorder_and_upcast_attn);
    assert_eq!(cfg.summary_type, "cls_index");
    assert_eq!(cfg.labels.num_labels(), 2);
}

#[test]
fn config_reads_a_transformers_config_json() {
    // openai-community/gpt2's config.json, plus labels.
    let json = r#"{
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
        "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null,
        "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
        "summary_use_proj": true, "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
        "vocab_size": 50257, "id2label": {"0": "NEG", "1": "NEU", "2": "POS"}, "pad_token_id": 50256
    }"#;
    let cfg: GPT2Config = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.labels.num_labels(), 3);
    assert_eq!(cfg.pad_token_id, Some(50256));
    assert_eq!(cfg.n_inner, None);

    // `attribute_map` names, `null` special tokens and an EOS list.
    let json = r#"{"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 8,
        "max_position_embeddings": 128, "n_inner": 100, "bos_token_id": null, "eos_token_id": [1, 2]}"#;
    let cfg: GPT2Config = serde_json::from_str(json).unwrap();
    assert_eq!((cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_positions, cfg.inner_dim()), (64, 3, 8, 128, 100));
    assert_eq!((cfg.bos_token_id, cfg.eos_token_id.clone()), (None, Some(TokenIds::Many(vec![1, 2]))));

    // As in transformers, the common name wins when a config holds both.
    let both: GPT2Config = serde_json::from_str(r#"{"hidden_size": 64, "n_embd": 32, "n_head": 2}"#).unwrap();
    assert_eq!((both.n_embd, both.n_head), (64, 2));
    let err = serde_json::from_str::<GPT2Config>(r#"{"n_layer": "two"}"#).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");

    // A round trip writes the `transformers` names.
    let value = serde_json::to_value(&cfg).unwrap();
    assert_eq!(value["n_embd"], 64);
    assert!(value.get("hidden_size").is_none());
    assert_eq!(serde_json::from_value::<GPT2Config>(value).unwrap(), cfg);
}

#[test]
fn invalid_configs_fail_at_load() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = GPT2Model::load(vb.clone(), &GPT2Config { n_head: 5, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("multiple of `n_head`"), "{err}");
    let err = GPT2LMHeadModel::load(vb.clone(), &GPT2Config { add_cross_attention: true, ..tiny() }).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("add_cross_attention"), "{err}");
    let err = GPT2Model::load(vb, &GPT2Config { n_positions: 0, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("`n_positions`"), "{err}");
}

#[test]
fn every_head_has_the_transformers_shapes() {
    let mut cfg = tiny();
    cfg.labels.num_labels = Some(3);
    cfg.pad_token_id = Some(0);
    let x = inputs();

    let (m, _) = fresh::<GPT2Model>(&cfg);
    let out = Model::forward(&m, &x).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 5, 16]);
    assert!(out.pooler_output.is_none());

    let (m, _) = fresh::<GPT2LMHeadModel>(&cfg);
    assert_eq!(ForCausalLm::forward(&m, &x).unwrap().logits.dims(), [2, 5, 50]);
    assert!(m.supports_cache());
    assert_eq!(m.max_positions(), Some(12));

    let (m, _) = fresh::<GPT2ForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&m, &x).unwrap().logits.dims(), [2, 3]);

    let (m, _) = fresh::<GPT2ForTokenClassification>(&cfg);
    assert_eq!(ForTokenClassification::forward(&m, &x).unwrap().logits.dims(), [2, 5, 3]);

    // Two outputs whatever `num_labels` says, as in transformers.
    let (m, _) = fresh::<GPT2ForQuestionAnswering>(&cfg);
    let out = ForQuestionAnswering::forward(&m, &x).unwrap();
    assert_eq!(out.start_logits.dims(), [2, 5]);
    assert_eq!(out.end_logits.dims(), [2, 5]);
}

#[test]
fn attention_is_causal() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let a = logits(&m, ModelInputs::new(Tensor::new(&[[1u32, 5, 7, 9, 11]], &Device::Cpu).unwrap()));
    let b = logits(&m, ModelInputs::new(Tensor::new(&[[1u32, 5, 7, 20, 30]], &Device::Cpu).unwrap()));
    assert!(max_abs_diff(&a.i((.., 0..3)).unwrap(), &b.i((.., 0..3)).unwrap()) < 1e-5);
    assert!(max_abs_diff(&a.i((.., 3..)).unwrap(), &b.i((.., 3..)).unwrap()) > 1e-3);
}

#[test]
fn cached_decoding_equals_the_whole_sequence() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let ids = Tensor::new(&[[1u32, 5, 7, 9, 11, 13, 2, 40], [3, 8, 8, 21, 49, 0, 17, 6]], &Device::Cpu).unwrap();
    let whole = logits(&m, ModelInputs::new(ids.clone()));

    let mut cache = KvCache::new();
    let prefill = m.forward_with_cache(&ModelInputs::new(ids.i((.., 0..3)).unwrap()), &mut cache).unwrap().logits;
    assert_eq!(cache.seq_len(), 3);
    assert!(max_abs_diff(&prefill, &whole.i((.., 0..3)).unwrap()) < 1e-5);
    for t in 3..8 {
        let step = m.forward_with_cache(&ModelInputs::new(ids.i((.., t..t + 1)).unwrap()), &mut cache).unwrap();
        assert_eq!(step.logits.dims(), [2, 1, 50]);
        let diff = max_abs_diff(&step.logits, &whole.i((.., t..t + 1)).unwrap());
        assert!(diff < 1e-5, "step {t}: {diff}");
    }
    assert_eq!(cache.seq_len(), 8);

    // Several new tokens at once after a prefill.
    let mut cache = KvCache::new();
    m.forward_with_cache(&ModelInputs::new(ids.i((.., 0..2)).unwrap()), &mut cache).unwrap();
    let chunk = m.forward_with_cache(&ModelInputs::new(ids.i((.., 2..6)).unwrap()), &mut cache).unwrap().logits;
    assert!(max_abs_diff(&chunk, &whole.i((.., 2..6)).unwrap()) < 1e-5);
}

/// Row 1 is `[5, 7, 9]` left-padded to 5 columns; `position_ids` restart at its first token.
fn left_padded() -> (Tensor, Tensor, Tensor) {
    let cpu = &Device::Cpu;
    let ids = Tensor::new(&[[1u32, 5, 7, 9, 11], [0, 0, 5, 7, 9]], cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [0, 0, 1, 1, 1]], cpu).unwrap();
    let positions = Tensor::new(&[[0i64, 1, 2, 3, 4], [1, 1, 0, 1, 2]], cpu).unwrap();
    (ids, mask, positions)
}

#[test]
fn a_left_padded_row_equals_the_row_alone() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let (padded_ids, padded_mask, positions) = left_padded();
    let batch =
        logits(&m, ModelInputs::new(padded_ids.clone()).with_attention_mask(padded_mask).with_position_ids(positions));
    let alone = logits(&m, ModelInputs::new(padded_ids.i((1..2, 2..)).unwrap()));
    assert!(max_abs_diff(&batch.i((1..2, 2..)).unwrap(), &alone) < 1e-5);
    let first = logits(&m, ModelInputs::new(padded_ids.i(0..1).unwrap()));
    assert!(max_abs_diff(&batch.i(0..1).unwrap(), &first) < 1e-5);

    // Right padding needs neither positions nor anything but the mask.
    let (base, _) = fresh::<GPT2Model>(&tiny());
    let padded = Model::forward(&base, &inputs()).unwrap().last_hidden_state;
    let short = Model::forward(&base, &ModelInputs::new(padded_ids.i((1..2, 2..)).unwrap())).unwrap().last_hidden_state;
    let row = Tensor::new(&[[2u32, 3, 4]], &Device::Cpu).unwrap();
    let row = Model::forward(&base, &ModelInputs::new(row)).unwrap().last_hidden_state;
    assert!(max_abs_diff(&padded.i((1..2, 0..3)).unwrap(), &row) < 1e-5);
    assert!(max_abs_diff(&short, &row) > 1e-3, "different tokens give different states");

    // u32, i64, f32 and u8 masks mean the same.
    for dtype in [DType::I64, DType::F32, DType::U8] {
        let x = ModelInputs::new(ids()).with_attention_mask(mask().to_dtype(dtype).unwrap());
        let out = Model::forward(&base, &x).unwrap().last_hidden_state;
        assert!(max_abs_diff(&out, &padded) == 0.0, "{dtype:?}");
    }
}

#[test]
fn left_padded_cached_decoding_equals_each_row_alone() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let cpu = &Device::Cpu;
    let (ids, mask, positions) = left_padded();
    let next = Tensor::new(&[[13u32], [21]], cpu).unwrap();
    let mut cache = KvCache::new();
    let x = ModelInputs::new(ids.clone()).with_attention_mask(mask.clone()).with_position_ids(positions);
    m.forward_with_cache(&x, &mut cache).unwrap();
    let mask = Tensor::cat(&[&mask, &Tensor::ones((2, 1), DType::U32, cpu).unwrap()], 1).unwrap();
    let step_positions = Tensor::new(&[[5i64], [3]], cpu).unwrap();
    let x = ModelInputs::new(next.clone()).with_attention_mask(mask).with_position_ids(step_positions);
    let step = m.forward_with_cache(&x, &mut cache).unwrap().logits;

    let row1 = Tensor::cat(&[&ids.i((1..2, 2..)).unwrap(), &next.i(1..2).unwrap()], 1).unwrap();
    let alone = logits(&m, ModelInputs::new(row1));
    assert!(max_abs_diff(&step.i(1..2).unwrap(), &alone.i((.., 3..)).unwrap()) < 1e-5);
    let row0 = Tensor::cat(&[&ids.i(0..1).unwrap(), &next.i(0..1).unwrap()], 1).unwrap();
    let alone = logits(&m, ModelInputs::new(row0));
    assert!(max_abs_diff(&step.i(0..1).unwrap(), &alone.i((.., 5..)).unwrap()) < 1e-5);
}

#[test]
fn token_types_are_embedded_with_the_token_embeddings() {
    let (m, _) = fresh::<GPT2Model>(&tiny());
    let plain = Model::forward(&m, &inputs()).unwrap().last_hidden_state;
    let types = Tensor::new(&[[0u32, 0, 1, 1, 1], [0, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let typed = Model::forward(&m, &inputs().with_token_type_ids(types)).unwrap().last_hidden_state;
    assert!(max_abs_diff(&plain, &typed) > 1e-3);
    // Ids up to vocab_size - 1 are fine, as they index `wte`.
    let types = Tensor::full(49u32, (2, 5), &Device::Cpu).unwrap();
    Model::forward(&m, &inputs().with_token_type_ids(types)).unwrap();
}

#[test]
fn sequence_classification_pools_the_last_non_pad_token() {
    let cpu = &Device::Cpu;
    let mut cfg = GPT2Config { pad_token_id: Some(0), ..tiny() };
    cfg.labels.num_labels = Some(3);
    let (m, varmap) = fresh::<GPT2ForSequenceClassification>(&cfg);
    let classify = |m: &GPT2ForSequenceClassification, ids: Tensor| {
        ForSequenceClassification::forward(m, &ModelInputs::new(ids)).unwrap().logits
    };

    // Right padding, no padding and all padding (transformers then takes token 0).
    let padded = Tensor::new(&[[2u32, 3, 4, 0, 0], [1, 5, 7, 9, 11], [0, 0, 0, 0, 0]], cpu).unwrap();
    let pooled = classify(&m, padded.clone());
    let hidden = m.inner().encoder().run(&ModelInputs::new(padded), None).unwrap();
    let score = varmap.get((3, 16), "score.weight", candle_nn::Init::Const(0.0), DType::F32, cpu).unwrap();
    let want = |row: usize, col: usize| hidden.i((row, col)).unwrap().unsqueeze(0).unwrap().matmul(&score.t().unwrap());
    for (row, col) in [(0, 2), (1, 4), (2, 0)] {
        assert!(max_abs_diff(&pooled.i(row..row + 1).unwrap(), &want(row, col).unwrap()) < 1e-5, "row {row}");
    }

    // Without a pad token: the last column, and only for a batch of one.
    let cfg = GPT2Config { pad_token_id: None, ..cfg };
    let (m, _) = fresh::<GPT2ForSequenceClassification>(&cfg);
    assert_eq!(classify(&m, ids().i(0..1).unwrap()).dims(), [1, 3]);
    let err = ForSequenceClassification::forward(&m, &inputs()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("without a padding token"), "{err}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let run = |x: ModelInputs| ForCausalLm::forward(&m, &x).unwrap_err();
    let cpu = &Device::Cpu;

    let err = run(ModelInputs::default());
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[1u32, 2], cpu).unwrap()));
    assert!(err.to_string().contains("[batch, seq]"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[1f32, 2.]], cpu).unwrap()));
    assert!(err.to_string().contains("integers"), "{err}");

    let err = run(ModelInputs::new(Tensor::zeros((1, 0), DType::U32, cpu).unwrap()));
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("empty"), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[1u32, 50]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: 50, vocab_size: 50 }), "{err}");

    let err = run(ModelInputs::new(Tensor::new(&[[-3i64, 2]], cpu).unwrap()));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: -3, .. }), "{err}");

    let types = Tensor::new(&[[0i64, 50]], cpu).unwrap();
    let err = run(ModelInputs::new(Tensor::new(&[[1u32, 2]], cpu).unwrap()).with_token_type_ids(types));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "token_type_ids", id: 50, .. }), "{err}");

    let err = run(ModelInputs::new(Tensor::ones((1, 13), DType::U32, cpu).unwrap()));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");

    let err = run(ModelInputs::new(ids()).with_attention_mask(Tensor::ones((2, 4), DType::I64, cpu).unwrap()));
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("attention_mask"), "{err}");

    let positions = Tensor::new(&[[0u32, 1, 2, 3, 12]], cpu).unwrap();
    let err = run(ModelInputs::new(ids()).with_position_ids(positions));
    assert!(err.to_string().contains("position 12"), "{err}");

    let positions = Tensor::new(&[[0u32, 1, 2]], cpu).unwrap();
    let err = run(ModelInputs::new(ids()).with_position_ids(positions));
    assert!(err.to_string().contains("position_ids"), "{err}");
}

#[test]
fn bad_cached_inputs_are_clear_errors() {
    let (m, _) = fresh::<GPT2LMHeadModel>(&tiny());
    let cpu = &Device::Cpu;
    let mut cache = KvCache::new();
    m.forward_with_cache(&ModelInputs::new(Tensor::ones((2, 10), DType::U32, cpu).unwrap()), &mut cache).unwrap();

    // Past + new beyond n_positions.
    let three = Tensor::ones((2, 3), DType::U32, cpu).unwrap();
    let err = m.forward_with_cache(&ModelInputs::new(three), &mut cache).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");

    // The mask must cover the cached positions too.
    let one = Tensor::ones((2, 1), DType::U32, cpu).unwrap();
    let short_mask = Tensor::ones((2, 1), DType::U32, cpu).unwrap();
    let x = ModelInputs::new(one.clone()).with_attention_mask(short_mask);
    let err = m.forward_with_cache(&x, &mut cache).unwrap_err();
    assert!(err.to_string().contains("cached plus the new tokens"), "{err}");

    // A cache filled for another batch size.
    let err = m.forward_with_cache(&ModelInputs::new(one.i(0..1).unwrap()), &mut cache).unwrap_err();
    assert!(err.to_string().contains("cache holds 2 rows"), "{err}");

    // Errors leave the cache as it was; the right inputs still work.
    assert_eq!(cache.seq_len(), 10);
    let x = ModelInputs::new(one).with_attention_mask(Tensor::ones((2, 11), DType::U32, cpu).unwrap());
    m.forward_with_cache(&x, &mut cache).unwrap();
    assert_eq!(cache.seq_len(), 11);
}

#[test]
fn attention_scaling_options_change_the_output() {
    // One set of weights, several configs.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let plain = logits(&GPT2LMHeadModel::load(vb.clone(), &tiny()).unwrap(), inputs());
    let same = |cfg: GPT2Config| logits(&GPT2LMHeadModel::load(vb.clone(), &cfg).unwrap(), inputs());
    let by_layer = same(GPT2Config { scale_attn_by_inverse_layer_idx: true, ..tiny() });
    assert!(max_abs_diff(&plain, &by_layer) > 1e-4);
    let unscaled = same(GPT2Config { scale_attn_weights: false, ..tiny() });
    assert!(max_abs_diff(&plain, &unscaled) > 1e-4);
    // In f32, upcasting changes nothing.
    let upcast = same(GPT2Config { reorder_and_upcast_attn: true, ..tiny() });
    assert!(max_abs_diff(&plain, &upcast) < 1e-6);
}

#[test]
fn half_precision_runs() {
    for dtype in [DType::F16, DType::BF16] {
        for upcast in [false, true] {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
            let cfg = GPT2Config { reorder_and_upcast_attn: upcast, ..tiny() };
            let m = GPT2LMHeadModel::load(vb, &cfg).unwrap();
            let out = logits(&m, inputs());
            assert_eq!(out.dtype(), dtype);
            let sum = out.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(sum.is_finite(), "{dtype:?}");
            let mut cache = KvCache::new();
            m.forward_with_cache(&inputs(), &mut cache).unwrap();
        }
    }
}

/// Save `tensors` as safetensors and open them as a checkpoint.
fn save(tensors: &std::collections::HashMap<String, Tensor>, dir: &tempfile::TempDir) -> Arc<Checkpoint> {
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(tensors, &path).unwrap();
    Arc::new(Checkpoint::open(vec![path]).unwrap())
}

fn varmap_tensors(varmap: &VarMap) -> std::collections::HashMap<String, Tensor> {
    varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
}

fn load_lm(checkpoint: &Arc<Checkpoint>, cfg: &GPT2Config) -> GPT2LMHeadModel {
    let (vb, _) = checkpoint_var_builder(checkpoint.clone(), "transformer", DType::F32, &Device::Cpu);
    GPT2LMHeadModel::load(vb, cfg).unwrap()
}

#[test]
fn tied_head_shares_the_token_embeddings() {
    let (m, varmap) = fresh::<GPT2LMHeadModel>(&tiny());
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().any(|n| n == "transformer.wte.weight"), "{names:?}");
    assert!(names.iter().any(|n| n == "transformer.h.1.attn.c_attn.weight"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("lm_head")), "{names:?}");
    assert_eq!(max_abs_diff(m.inner().lm_head(), m.inner().transformer().word_embeddings()), 0.0);
    // Conv1D weights are [in, out].
    let c_attn = varmap.data().lock().unwrap()["transformer.h.0.attn.c_attn.weight"].as_tensor().dims().to_vec();
    assert_eq!(c_attn, [16, 48]);

    let untied = GPT2Config { tie_word_embeddings: false, ..tiny() };
    let (_, varmap) = fresh::<GPT2LMHeadModel>(&untied);
    assert!(varmap.data().lock().unwrap().contains_key("lm_head.weight"));
}

#[test]
fn loads_from_checkpoints_as_transformers_ties_them() {
    let cfg = tiny();
    let dir = tempfile::tempdir().unwrap();
    let (m, varmap) = fresh::<GPT2LMHeadModel>(&cfg);
    let want = logits(&m, inputs());
    let mut tensors = varmap_tensors(&varmap);

    // Old checkpoints hold the causal-mask buffers; they are ignored.
    for i in 0..2 {
        let bias = Tensor::ones((1, 1, 12, 12), DType::U8, &Device::Cpu).unwrap();
        tensors.insert(format!("transformer.h.{i}.attn.bias"), bias);
        tensors.insert(format!("transformer.h.{i}.attn.masked_bias"), Tensor::new(-1e4f32, &Device::Cpu).unwrap());
    }
    let checkpoint = save(&tensors, &dir);
    assert_eq!(max_abs_diff(&logits(&load_lm(&checkpoint, &cfg), inputs()), &want), 0.0);

    // A base-model checkpoint (no `transformer.` prefix) loads into the LM head, tied.
    let base: std::collections::HashMap<String, Tensor> =
        tensors.iter().filter_map(|(k, v)| k.strip_prefix("transformer.").map(|k| (k.to_owned(), v.clone()))).collect();
    let dir2 = tempfile::tempdir().unwrap();
    let checkpoint = save(&base, &dir2);
    assert_eq!(max_abs_diff(&logits(&load_lm(&checkpoint, &cfg), inputs()), &want), 0.0);
    let (vb, _) = checkpoint_var_builder(checkpoint, "transformer", DType::F32, &Device::Cpu);
    let base_model = GPT2Model::load(vb, &cfg).unwrap();
    Model::forward(&base_model, &inputs()).unwrap();

    // Only `lm_head.weight`, no `wte`: tied the other way round.
    let mut swapped = tensors.clone();
    let wte = swapped.remove("transformer.wte.weight").unwrap();
    swapped.insert("lm_head.weight".to_owned(), wte);
    let dir3 = tempfile::tempdir().unwrap();
    let checkpoint = save(&swapped, &dir3);
    assert_eq!(max_abs_diff(&logits(&load_lm(&checkpoint, &cfg), inputs()), &want), 0.0);

    // Both, different: a tied config keeps them apart, as transformers does.
    let mut both = tensors.clone();
    let own_head = Tensor::randn(0f32, 1., (50, 16), &Device::Cpu).unwrap();
    both.insert("lm_head.weight".to_owned(), own_head.clone());
    let dir4 = tempfile::tempdir().unwrap();
    let checkpoint = save(&both, &dir4);
    let loaded = load_lm(&checkpoint, &cfg);
    assert_eq!(max_abs_diff(loaded.inner().lm_head(), &own_head), 0.0);
    assert!(max_abs_diff(&logits(&loaded, inputs()), &want) > 1e-3);

    // Untied config without `lm_head.weight`: a typed error naming it.
    let (vb, tracker) = checkpoint_var_builder(
        Arc::new(Checkpoint::open(vec![dir.path().join("model.safetensors")]).unwrap()),
        "transformer",
        DType::F32,
        &Device::Cpu,
    );
    assert!(GPT2LMHeadModel::load(vb, &GPT2Config { tie_word_embeddings: false, ..cfg }).is_err());
    let err = tracker.take_error().unwrap();
    assert!(matches!(&err, Error::TensorNotFound { name, .. } if name == "lm_head.weight"), "{err}");
}

#[test]
fn every_head_is_registered_and_builds_from_the_registry() {
    use autocandle_core::load::build_fresh;
    use autocandle_core::registry::Registry;
    use autocandle_core::{PretrainedConfig, Task};

    let registry = Registry::global().unwrap();
    let tasks = [
        (Task::Base, "GPT2Model"),
        (Task::CausalLm, "GPT2LMHeadModel"),
        (Task::SequenceClassification, "GPT2ForSequenceClassification"),
        (Task::TokenClassification, "GPT2ForTokenClassification"),
        (Task::QuestionAnswering, "GPT2ForQuestionAnswering"),
    ];
    for (task, class) in tasks {
        let reg = registry.model("gpt2", task).unwrap();
        assert_eq!(reg.class_name, class);
        assert_eq!(reg.base_model_prefix, "transformer");
    }
    assert_eq!(registry.heads("gpt2").len(), tasks.len());

    let serde_json::Value::Object(fields) = serde_json::to_value(tiny()).unwrap() else {
        panic!("a config serialises to an object")
    };
    let config = PretrainedConfig::for_model("gpt2", fields).unwrap();
    assert_eq!(config.downcast::<GPT2Config>(), Some(&tiny()));
    let reg = registry.model("gpt2", Task::CausalLm).unwrap();
    let model = build_fresh::<dyn ForCausalLm>(&config, reg, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&inputs()).unwrap().logits.dims(), [2, 5, 50]);
    assert!(model.supports_cache());
}
