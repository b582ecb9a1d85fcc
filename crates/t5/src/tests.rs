//! Unit tests: config defaults and the LM head rules of `transformers` 5.23, relative position
//! buckets against `transformers`, registration, incremental decoding against whole-sequence
//! runs (on the parity fixtures' weights), beams following the cache, half precision, and
//! input and config errors.
//!
//! `testdata/relative_buckets.json` holds `T5Attention._relative_position_bucket` of
//! `transformers` 5.23 for positions -300..=300 and a few bucket settings; it was made with
//! `torch.tensor(range(-300, 301))` for each `(num_buckets, max_distance, bidirectional)`.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde_json::{json, Value};

use autocandle_core::registry::Registry;
use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Activation, Error, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification, ForTextEncoding, LoadModel,
    Model, ModelInputs, PretrainedConfig, Seq2SeqCache, Task,
};

use crate::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn config_of(name: &str) -> T5Config {
    let config = PretrainedConfig::from_file(&fixture(name).join("config.json")).unwrap();
    config.downcast::<T5Config>().unwrap().clone()
}

fn load<M: LoadModel<Config = T5Config>>(name: &str, dtype: DType) -> (M, HashMap<String, Tensor>) {
    let dir = fixture(name);
    let config = config_of(name);
    let checkpoint = Arc::new(Checkpoint::open(vec![dir.join("model.safetensors")]).unwrap());
    let (vb, _) = checkpoint_var_builder(checkpoint, M::BASE_MODEL_PREFIX, dtype, &Device::Cpu);
    let model = M::load(vb, &config).unwrap();
    let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    (model, reference)
}

fn parse(value: Value) -> T5Config {
    serde_json::from_value(value).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn fresh<M: LoadModel<Config = T5Config>>(config: &T5Config) -> autocandle_core::Result<M> {
    let varmap = VarMap::new();
    M::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config)
}

/// A tiny config for models with fresh weights.
fn tiny() -> T5Config {
    parse(json!({
        "vocab_size": 20, "d_model": 8, "d_kv": 3, "num_heads": 2, "d_ff": 12, "num_layers": 2,
        "num_decoder_layers": 3, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 12,
        "decoder_start_token_id": 0
    }))
}

fn ids(rows: &[&[u32]]) -> Tensor {
    let width = rows[0].len();
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), width), &Device::Cpu).unwrap()
}

// ---- config ---------------------------------------------------------------

// `T5Config()` and `MT5Config().to_dict()` of transformers 5.23.
#[test]
fn defaults_are_those_of_transformers() {
    let config = parse(json!({}));
    assert_eq!(config, T5Config::default());
    assert_eq!(
        (config.vocab_size, config.d_model, config.d_kv, config.d_ff, config.num_layers, config.num_heads),
        (32128, 512, 64, 2048, 6, 8)
    );
    assert_eq!((config.relative_attention_num_buckets, config.relative_attention_max_distance), (32, 128));
    assert_eq!((config.dropout_rate, config.layer_norm_epsilon, config.initializer_factor), (0.1, 1e-6, 1.0));
    assert_eq!(config.feed_forward_proj, "relu");
    assert_eq!((config.pad_token_id, config.eos_token_id.clone()), (Some(0), Some(TokenIds::One(1))));
    assert_eq!((config.bos_token_id, config.decoder_start_token_id), (None, None));
    assert!(config.is_encoder_decoder && config.use_cache && !config.is_decoder);
    assert_eq!(config.classifier_dropout, 0.0);
    let spec = config.t5_spec().unwrap();
    assert_eq!(spec.num_decoder_layers, 6, "num_decoder_layers defaults to num_layers");
    assert_eq!((spec.activation, spec.gated), (Activation::Relu, false));
    assert!(spec.scale_decoder_outputs);
    assert_eq!(spec.num_labels, 2);
    assert_eq!(spec.inner_dim(), 512);
}

#[test]
fn attribute_map_aliases() {
    let config = parse(json!({"hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 3, "head_dim": 4}));
    assert_eq!((config.d_model, config.num_heads, config.num_layers, config.d_kv), (16, 2, 3, 4));
}

// `T5Config.__post_init__` of 5.23: `scale_decoder_outputs = tie_word_embeddings is not False`
// unless the config holds `scale_decoder_outputs` itself.
#[test]
fn decoder_output_scaling_follows_the_saved_config() {
    let scale = |v: Value| parse(v).t5_spec().unwrap().scale_decoder_outputs;
    assert!(scale(json!({})), "original T5 configs (no key) scale");
    assert!(scale(json!({"tie_word_embeddings": true})));
    assert!(!scale(json!({"tie_word_embeddings": false})), "v1.1 / flan-t5 configs do not");
    assert!(!scale(json!({"tie_word_embeddings": true, "scale_decoder_outputs": false})), "5.x config wins");
    assert!(scale(json!({"tie_word_embeddings": false, "scale_decoder_outputs": true})));
    // The fixtures: a 5.x config that scales, an old-style v1.1 one, a 5.x one that does not.
    assert!(config_of("t5-seq2seq-lm").scale_decoder_outputs());
    assert!(!config_of("t5-seq2seq-lm-v1_1").scale_decoder_outputs());
    assert!(!config_of("t5-seq2seq-lm-depths").scale_decoder_outputs());
    // Round trip keeps what was read.
    let config = config_of("t5-seq2seq-lm-v1_1");
    assert_eq!(serde_json::from_value::<T5Config>(serde_json::to_value(&config).unwrap()).unwrap(), config);
}

#[test]
fn feed_forward_projection() {
    let ff = |v: Value| {
        let spec = parse(v).t5_spec().unwrap();
        (spec.activation, spec.gated)
    };
    assert_eq!(ff(json!({"feed_forward_proj": "relu"})), (Activation::Relu, false));
    assert_eq!(ff(json!({"feed_forward_proj": "gated-gelu"})), (Activation::GeluTanh, true), "gelu_new");
    assert_eq!(ff(json!({"feed_forward_proj": "gated-silu"})), (Activation::Silu, true));
    assert_eq!(ff(json!({"feed_forward_proj": "gelu"})), (Activation::Gelu, false));
    // Saved `dense_act_fn` / `is_gated_act` win, as in transformers.
    assert_eq!(ff(json!({"feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu"})), (Activation::Gelu, true));
    assert_eq!(ff(json!({"feed_forward_proj": "gated-gelu", "is_gated_act": false})), (Activation::GeluTanh, false));
    for bad in ["foo-gelu", "gated-gelu-x"] {
        let err = parse(json!({"feed_forward_proj": bad})).t5_spec().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("gated-ACT"), "{err}");
    }
    let err = parse(json!({"feed_forward_proj": "gated-nope"})).t5_spec().unwrap_err();
    assert!(err.to_string().contains("`nope`") && err.to_string().contains("known activations"), "{err}");
}

#[test]
fn malformed_configs_are_errors() {
    for (field, value, needle) in [
        ("num_heads", json!(0), "`num_heads` must be at least 1"),
        ("d_kv", json!(0), "`d_kv` must be at least 1"),
        ("vocab_size", json!(0), "`vocab_size`"),
        ("relative_attention_num_buckets", json!(2), "at least 4"),
        ("relative_attention_max_distance", json!(16), "must be larger than half"),
        ("layer_norm_epsilon", json!(-1.0), "layer_norm_epsilon"),
    ] {
        let err = parse(json!({ field: value })).t5_spec().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{field}: {err}");
        assert!(err.to_string().contains(needle), "{field}: {err}");
    }
    // A wrongly typed field names itself.
    let err = PretrainedConfig::from_value(json!({"model_type": "t5", "d_model": "wide"}), "x".as_ref()).unwrap_err();
    assert!(err.to_string().contains("d_model"), "{err}");
    // Loading checks the config too.
    let mut config = tiny();
    config.num_heads = 0;
    assert!(matches!(fresh::<T5ForConditionalGeneration>(&config).unwrap_err(), Error::InvalidConfig { .. }));
}

// ---- relative position buckets --------------------------------------------

#[test]
fn relative_position_buckets_match_transformers() {
    let data: Value = serde_json::from_str(include_str!("../testdata/relative_buckets.json")).unwrap();
    let first = data["first"].as_i64().unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let num_buckets = case["num_buckets"].as_u64().unwrap() as usize;
        let max_distance = case["max_distance"].as_u64().unwrap() as usize;
        let bidirectional = case["bidirectional"].as_bool().unwrap();
        for (i, want) in case["buckets"].as_array().unwrap().iter().enumerate() {
            let relative = first + i as i64;
            let got = relative_position_bucket(relative, bidirectional, num_buckets, max_distance);
            assert_eq!(
                i64::from(got),
                want.as_i64().unwrap(),
                "bucket of {relative} ({num_buckets} buckets, max distance {max_distance}, bidirectional \
                 {bidirectional})"
            );
        }
    }
}

// ---- registration ---------------------------------------------------------

#[test]
fn heads_are_registered_under_their_transformers_classes() {
    let registry = Registry::global().unwrap();
    let expected = [
        (Task::Base, "T5Model"),
        (Task::Seq2SeqLm, "T5ForConditionalGeneration"),
        (Task::TextEncoding, "T5EncoderModel"),
        (Task::SequenceClassification, "T5ForSequenceClassification"),
        (Task::TokenClassification, "T5ForTokenClassification"),
        (Task::QuestionAnswering, "T5ForQuestionAnswering"),
    ];
    assert_eq!(registry.heads("t5").len(), expected.len());
    for (task, class) in expected {
        let reg = registry.model("t5", task).unwrap();
        assert_eq!((reg.class_name, reg.base_model_prefix), (class, "transformer"), "{task:?}");
    }
    assert_eq!(registry.config("t5").unwrap().config_class, "T5Config");
}

// ---- incremental decoding -------------------------------------------------

fn fixture_inputs(reference: &HashMap<String, Tensor>, decoder_mask: bool) -> ModelInputs {
    let mut inputs = ModelInputs::new(reference["input_ids"].clone())
        .with_attention_mask(reference["attention_mask"].clone())
        .with_decoder_input_ids(reference["decoder_input_ids"].clone());
    if decoder_mask {
        inputs = inputs.with_decoder_attention_mask(reference["decoder_attention_mask"].clone());
    }
    inputs
}

/// Decode the fixture's decoder inputs in `chunks` after encoding once, and compare with the
/// whole-sequence forward (no decoder mask, so every position counts).
fn check_decode_equals_forward(name: &str, chunks: &[usize]) {
    let (model, reference) = load::<T5ForConditionalGeneration>(name, DType::F32);
    let inputs = fixture_inputs(&reference, false);
    let full = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
    let encoder = model.encode(&inputs).unwrap();
    let decoder_ids = &reference["decoder_input_ids"];
    let total = decoder_ids.dim(1).unwrap();
    assert_eq!(chunks.iter().sum::<usize>(), total);
    let mut cache = Seq2SeqCache::new();
    let mut start = 0;
    let mut steps = Vec::new();
    for &len in chunks {
        assert_eq!(cache.seq_len(), start);
        steps.push(model.decode(&decoder_ids.narrow(1, start, len).unwrap(), &encoder, &mut cache).unwrap());
        start += len;
    }
    let stepped = Tensor::cat(&steps, 1).unwrap();
    let diff = max_abs_diff(&stepped, &full);
    assert!(diff < 1e-5, "{name} {chunks:?}: decode differs from forward by {diff}");
}

#[test]
fn decode_token_by_token_equals_forward() {
    for name in ["t5-seq2seq-lm", "t5-seq2seq-lm-v1_1", "t5-seq2seq-lm-depths"] {
        check_decode_equals_forward(name, &[1; 7]);
    }
}

#[test]
fn decode_in_chunks_equals_forward() {
    check_decode_equals_forward("t5-seq2seq-lm", &[3, 1, 3]);
    check_decode_equals_forward("t5-seq2seq-lm-v1_1", &[7]);
    check_decode_equals_forward("t5-seq2seq-lm-depths", &[2, 5]);
}

// The cross-attention keys are computed once; beams reorder both caches.
#[test]
fn cache_rows_follow_beams() {
    let (model, reference) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm", DType::F32);
    let inputs = fixture_inputs(&reference, false);
    let encoder = model.encode(&inputs).unwrap();
    let decoder_ids = &reference["decoder_input_ids"];
    let mut cache = Seq2SeqCache::new();
    model.decode(&decoder_ids.narrow(1, 0, 3).unwrap(), &encoder, &mut cache).unwrap();
    // Follow row 1 twice: the cache and the encoder output both switch to rows [1, 1].
    let rows = Tensor::new(&[1u32, 1], &Device::Cpu).unwrap();
    cache.select_rows(&rows).unwrap();
    let encoder_rows = autocandle_core::EncoderOutput {
        last_hidden_state: encoder.last_hidden_state.index_select(&rows, 0).unwrap(),
        attention_mask: encoder.attention_mask.as_ref().map(|m| m.index_select(&rows, 0).unwrap()),
    };
    let next = decoder_ids.narrow(1, 3, 1).unwrap().contiguous().unwrap().index_select(&rows, 0).unwrap();
    let stepped = model.decode(&next, &encoder_rows, &mut cache).unwrap();
    let full = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
    let want = full.i((1..2, 3..4)).unwrap();
    for row in 0..2 {
        let diff = max_abs_diff(&stepped.i((row..row + 1, ..)).unwrap(), &want);
        assert!(diff < 1e-5, "row {row}: {diff}");
    }
}

#[test]
fn forward_matches_the_fixture_and_reports_the_decoder_start() {
    let (model, reference) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm-v1_1", DType::F32);
    let out = ForSeq2SeqLm::forward(&model, &fixture_inputs(&reference, true)).unwrap();
    // Row 0 has no padding on either side.
    let diff = max_abs_diff(&out.logits.i(0).unwrap(), &reference["logits"].i(0).unwrap());
    assert!(diff < 1e-4, "{diff}");
    assert_eq!(model.decoder_start_token_id(), Some(0));
    assert_eq!(model.max_source_positions(), None);
    // `T5Config()` has no `decoder_start_token_id`.
    assert_eq!(
        fresh::<T5ForConditionalGeneration>(&T5Config { vocab_size: 8, ..tiny_default() })
            .unwrap()
            .decoder_start_token_id(),
        None
    );
}

fn tiny_default() -> T5Config {
    T5Config { decoder_start_token_id: None, ..tiny() }
}

// The tied head is the shared matrix; with a separate `lm_head.weight` the head is its own.
#[test]
fn lm_head_tying_follows_the_checkpoint() {
    let (tied, _) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm", DType::F32);
    let shared = tied.inner().model().shared().clone();
    let hidden = Tensor::ones((1, 1, 24), DType::F32, &Device::Cpu).unwrap();
    let want = (hidden.matmul(&shared.t().unwrap().unsqueeze(0).unwrap()).unwrap() * (24f64).powf(-0.5)).unwrap();
    assert!(max_abs_diff(&tied.inner().logits(&hidden).unwrap(), &want) < 1e-6);
    let (own, _) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm-v1_1", DType::F32);
    let shared = own.inner().model().shared().clone();
    let unscaled_tied = hidden.matmul(&shared.t().unwrap().unsqueeze(0).unwrap()).unwrap();
    assert!(max_abs_diff(&own.inner().logits(&hidden).unwrap(), &unscaled_tied) > 1e-2);
}

#[test]
fn half_precision_runs_close_to_f32() {
    let (model, reference) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm-v1_1", DType::F32);
    let inputs = fixture_inputs(&reference, false);
    let want = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
    for dtype in [DType::F16, DType::BF16] {
        let (model, _) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm-v1_1", dtype);
        let got = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
        assert_eq!(got.dtype(), dtype);
        let diff = max_abs_diff(&got, &want);
        assert!(diff < 0.1, "{dtype:?}: {diff}");
        // The cache works in half precision too.
        let encoder = model.encode(&inputs).unwrap();
        let mut cache = Seq2SeqCache::new();
        let first = model.decode(&reference["decoder_input_ids"].narrow(1, 0, 1).unwrap(), &encoder, &mut cache);
        assert_eq!(first.unwrap().dims(), &[2, 1, 64]);
    }
}

#[test]
fn base_and_encoder_outputs() {
    let (base, reference) = load::<T5Model>("t5-base", DType::F32);
    let out = Model::forward(&base, &fixture_inputs(&reference, true)).unwrap();
    let diff = max_abs_diff(&out.last_hidden_state.i(0).unwrap(), &reference["last_hidden_state"].i(0).unwrap());
    assert!(diff < 1e-4, "{diff}");
    let encoder = out.extra("encoder_last_hidden_state").unwrap();
    let diff = max_abs_diff(&encoder.i(0).unwrap(), &reference["encoder_last_hidden_state"].i(0).unwrap());
    assert!(diff < 1e-4, "{diff}");
    let (encoder_model, reference) = load::<T5EncoderModel>("t5-text-encoding", DType::F32);
    let inputs =
        ModelInputs::new(reference["input_ids"].clone()).with_attention_mask(reference["attention_mask"].clone());
    let out = ForTextEncoding::forward(&encoder_model, &inputs).unwrap();
    let diff = max_abs_diff(&out.last_hidden_state.i(0).unwrap(), &reference["last_hidden_state"].i(0).unwrap());
    assert!(diff < 1e-4, "{diff}");
}

// ---- input errors ---------------------------------------------------------

#[test]
fn missing_decoder_inputs_are_explained() {
    let model = fresh::<T5ForConditionalGeneration>(&tiny()).unwrap();
    let inputs = ModelInputs::new(ids(&[&[3, 4, 1]]));
    let err = ForSeq2SeqLm::forward(&model, &inputs).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("`decoder_input_ids` is required") && message.contains("`decoder_start_token_id` 0"));
    assert!(message.contains("labels"), "{message}");
    let base = fresh::<T5Model>(&tiny()).unwrap();
    assert!(Model::forward(&base, &inputs).unwrap_err().to_string().contains("decoder_input_ids"));
    // No input_ids at all.
    let err = ForSeq2SeqLm::forward(&model, &ModelInputs::default()).unwrap_err();
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");
}

#[test]
fn ids_out_of_range_and_bad_shapes_are_errors() {
    let model = fresh::<T5ForConditionalGeneration>(&tiny()).unwrap();
    let good = ModelInputs::new(ids(&[&[3, 4, 1]])).with_decoder_input_ids(ids(&[&[0, 5]]));
    assert_eq!(ForSeq2SeqLm::forward(&model, &good).unwrap().logits.dims(), &[1, 2, 20]);
    let err = ForSeq2SeqLm::forward(&model, &good.clone().with_decoder_input_ids(ids(&[&[0, 20]]))).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "decoder_input_ids", id: 20, vocab_size: 20 }), "{err}");
    let mut bad = good.clone();
    bad.input_ids = Some(Tensor::new(&[[3i64, -1]], &Device::Cpu).unwrap());
    let err = ForSeq2SeqLm::forward(&model, &bad).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: -1, .. }), "{err}");
    bad.input_ids = Some(Tensor::new(&[[3f32, 4.0]], &Device::Cpu).unwrap());
    assert!(ForSeq2SeqLm::forward(&model, &bad).unwrap_err().to_string().contains("must hold integers"));
    bad.input_ids = Some(Tensor::new(&[3u32, 4], &Device::Cpu).unwrap());
    assert!(ForSeq2SeqLm::forward(&model, &bad).unwrap_err().to_string().contains("[batch, seq]"));
    bad.input_ids = Some(Tensor::zeros((1, 0), DType::U32, &Device::Cpu).unwrap());
    assert!(ForSeq2SeqLm::forward(&model, &bad).unwrap_err().to_string().contains("is empty"));
    let masked = good.clone().with_attention_mask(ids(&[&[1, 1]]));
    assert!(ForSeq2SeqLm::forward(&model, &masked).unwrap_err().to_string().contains("`attention_mask` has shape"));
    let masked = good.clone().with_decoder_attention_mask(ids(&[&[1, 1, 1]]));
    let err = ForSeq2SeqLm::forward(&model, &masked).unwrap_err();
    assert!(err.to_string().contains("`decoder_attention_mask` has shape"), "{err}");
}

#[test]
fn decode_checks_the_encoder_output_and_the_cache() {
    let model = fresh::<T5ForConditionalGeneration>(&tiny()).unwrap();
    let encoder = model.encode(&ModelInputs::new(ids(&[&[3, 4, 1], &[5, 1, 0]]))).unwrap();
    let mut cache = Seq2SeqCache::new();
    let err = model.decode(&ids(&[&[0]]), &encoder, &mut cache).unwrap_err();
    assert!(err.to_string().contains("the encoder output has shape"), "{err}");
    model.decode(&ids(&[&[0], &[0]]), &encoder, &mut cache).unwrap();
    assert_eq!(cache.seq_len(), 1);
    let one_row = model.encode(&ModelInputs::new(ids(&[&[3, 4, 1]]))).unwrap();
    let err = model.decode(&ids(&[&[0]]), &one_row, &mut cache).unwrap_err();
    assert!(err.to_string().contains("the decoder cache holds 2 rows"), "{err}");
}

#[test]
fn classification_heads_check_their_inputs() {
    let mut config = tiny();
    config.labels.num_labels = Some(3);
    let model = fresh::<T5ForSequenceClassification>(&config).unwrap();
    let run = |rows: &[&[u32]]| ForSequenceClassification::forward(&model, &ModelInputs::new(ids(rows)));
    assert_eq!(run(&[&[3, 4, 1], &[5, 1, 0]]).unwrap().logits.dims(), &[2, 3]);
    let err = run(&[&[3, 1, 1], &[5, 1, 0]]).unwrap_err();
    assert!(err.to_string().contains("same number of <eos> tokens"), "{err}");
    let err = run(&[&[3, 4, 5]]).unwrap_err();
    assert!(err.to_string().contains("at least one <eos> token"), "{err}");
    // Without `decoder_start_token_id` the decoder input cannot be made.
    let no_start = fresh::<T5ForSequenceClassification>(&T5Config { labels: config.labels.clone(), ..tiny_default() });
    let err = ForSequenceClassification::forward(&no_start.unwrap(), &ModelInputs::new(ids(&[&[3, 1]]))).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("decoder_start_token_id"), "{err}");
    // Question answering needs two labels, and shifts `input_ids` too.
    let err = fresh::<T5ForQuestionAnswering>(&config).unwrap_err();
    assert!(err.to_string().contains("needs 2 labels"), "{err}");
    let qa = fresh::<T5ForQuestionAnswering>(&tiny()).unwrap();
    let out = ForQuestionAnswering::forward(&qa, &ModelInputs::new(ids(&[&[3, 4, 1]]))).unwrap();
    assert_eq!(out.start_logits.dims(), &[1, 3]);
}

// Every position of a padded encoder row is masked out of the cross-attention: changing the
// padded ids changes nothing.
#[test]
fn encoder_padding_is_masked() {
    let (model, reference) = load::<T5ForConditionalGeneration>("t5-seq2seq-lm", DType::F32);
    let inputs = fixture_inputs(&reference, false);
    let base = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
    let mut changed = inputs.clone();
    let input_ids = reference["input_ids"].to_dtype(DType::U32).unwrap();
    let mut rows: Vec<Vec<u32>> = input_ids.to_vec2().unwrap();
    for id in rows[1].iter_mut().skip(7) {
        *id = 9;
    }
    changed.input_ids = Some(Tensor::new(rows.clone(), &Device::Cpu).unwrap());
    let other = ForSeq2SeqLm::forward(&model, &changed).unwrap().logits;
    assert!(max_abs_diff(&other, &base) < 1e-6);
    // ... whereas a real token does.
    rows[1][6] = 9;
    changed.input_ids = Some(Tensor::new(rows, &Device::Cpu).unwrap());
    let other = ForSeq2SeqLm::forward(&model, &changed).unwrap().logits;
    assert!(max_abs_diff(&other.i(1).unwrap(), &base.i(1).unwrap()) > 1e-3);
    assert!(max_abs_diff(&other.i(0).unwrap(), &base.i(0).unwrap()) < 1e-6);
}

/// T5 has no position limit: an input whose attention scores would take more than 4 GiB is
/// refused before anything is computed (a 1 MB line of text once took 9.5 GB).
#[test]
fn an_absurdly_long_input_is_refused_before_attention() {
    let model = fresh::<T5EncoderModel>(&tiny()).unwrap();
    let long = Tensor::zeros((1, 40_000), DType::U32, &Device::Cpu).unwrap();
    let err = autocandle_core::ForTextEncoding::forward(&model, &ModelInputs::new(long)).unwrap_err().to_string();
    assert!(err.contains("too long") && err.contains("no position limit") && err.contains("GiB"), "{err}");
}
