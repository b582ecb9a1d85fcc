//! Unit tests: config parsing and errors, input-shape errors, the incremental decoder
//! against the full forward pass (one token and several at a time, batched), cache checks,
//! weight tying, and the audio classifier's weighted layer sum.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{
    Error, ForAudioClassification, ForCausalLm, ForSeq2SeqLm, KvCache, LoadModel, Model, ModelInputs, ModelOutput,
    Seq2SeqCache,
};

use crate::*;

fn tiny() -> WhisperConfig {
    WhisperConfig {
        vocab_size: 40,
        num_mel_bins: 5,
        d_model: 12,
        encoder_layers: 2,
        decoder_layers: 2,
        encoder_attention_heads: 3,
        decoder_attention_heads: 2,
        encoder_ffn_dim: 16,
        decoder_ffn_dim: 20,
        max_source_positions: 4,
        max_target_positions: 10,
        decoder_start_token_id: Some(3),
        classifier_proj_size: 6,
        ..WhisperConfig::default()
    }
}

fn fresh<M: LoadModel<Config = WhisperConfig>>(cfg: &WhisperConfig) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

fn features(batch: usize, mel: usize, frames: usize) -> Tensor {
    let n = batch * mel * frames;
    let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    Tensor::from_vec(v, (batch, mel, frames), &Device::Cpu).unwrap()
}

fn ids(rows: &[&[i64]]) -> Tensor {
    let width = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), width), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn invalid_config(cfg: &WhisperConfig) -> String {
    match cfg.validate() {
        Err(e @ Error::InvalidConfig { .. }) => e.to_string(),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn config_reads_transformers_names_and_defaults() {
    let json = serde_json::json!({
        "model_type": "whisper", "hidden_size": 20, "num_hidden_layers": 3, "num_attention_heads": 4,
        "decoder_layers": 2, "decoder_attention_heads": 5, "num_mel_bins": 128, "max_source_positions": 1500
    });
    let cfg: WhisperConfig = serde_json::from_value(json).unwrap();
    assert_eq!((cfg.d_model, cfg.encoder_layers, cfg.encoder_attention_heads), (20, 3, 4));
    assert_eq!((cfg.decoder_layers, cfg.num_mel_bins), (2, 128));
    assert_eq!(cfg.expected_frames(), 3000);
    assert_eq!(cfg.max_target_positions, 448);
    assert_eq!(cfg.begin_suppress_tokens, Some(vec![220, 50256]));
    assert!(cfg.tie_word_embeddings);
    cfg.validate().unwrap();
}

#[test]
fn config_errors_say_what_is_wrong() {
    let cfg = WhisperConfig { d_model: 13, ..tiny() };
    let msg = invalid_config(&cfg);
    assert!(msg.contains("`d_model` (13) must be a multiple of `encoder_attention_heads` (3)"), "{msg}");
    let cfg = WhisperConfig { decoder_attention_heads: 5, ..tiny() };
    assert!(invalid_config(&cfg).contains("`decoder_attention_heads` (5)"));
    for (field, cfg) in [
        ("num_mel_bins", WhisperConfig { num_mel_bins: 0, ..tiny() }),
        ("max_source_positions", WhisperConfig { max_source_positions: 0, ..tiny() }),
        ("max_target_positions", WhisperConfig { max_target_positions: 0, ..tiny() }),
        ("vocab_size", WhisperConfig { vocab_size: 0, ..tiny() }),
        ("encoder_attention_heads", WhisperConfig { encoder_attention_heads: 0, ..tiny() }),
    ] {
        let msg = invalid_config(&cfg);
        assert!(msg.contains(&format!("`{field}` must be at least 1")), "{msg}");
    }
    let cfg = WhisperConfig { max_source_positions: usize::MAX, ..tiny() };
    assert!(invalid_config(&cfg).contains("too large"));
    // A bad config is refused when a model is built, not only by `validate`.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = WhisperModel::load(vb, &WhisperConfig { d_model: 13, ..tiny() }).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
}

#[test]
fn a_bad_activation_is_a_parse_error() {
    let json = serde_json::json!({ "activation_function": "no-such-activation" });
    assert!(serde_json::from_value::<WhisperConfig>(json).is_err());
}

#[test]
fn wrong_frame_count_mel_count_and_rank_are_errors() {
    let cfg = tiny();
    let (model, _) = fresh::<WhisperForConditionalGeneration>(&cfg);
    let run = |f: Tensor| model.encode(&ModelInputs::from_input_features(f)).unwrap_err().to_string();
    let msg = run(features(1, 5, 7));
    assert!(msg.contains("length 8") && msg.contains("found 7") && msg.contains("pad or truncate"), "{msg}");
    let msg = run(features(1, 5, 16));
    assert!(msg.contains("found 16"), "{msg}");
    let msg = run(features(1, 80, 8));
    assert!(msg.contains("80 mel bins") && msg.contains("takes 5"), "{msg}");
    let msg = run(Tensor::zeros((5, 8), DType::F32, &Device::Cpu).unwrap());
    assert!(msg.contains("[batch, num_mel_bins, frames]"), "{msg}");
    let msg = run(Tensor::zeros((1, 5, 8), DType::I64, &Device::Cpu).unwrap());
    assert!(msg.contains("float"), "{msg}");
    let msg = model.encode(&ModelInputs::default()).unwrap_err().to_string();
    assert!(msg.contains("input_features"), "{msg}");
}

#[test]
fn decoder_ids_out_of_range_and_too_long_are_errors() {
    let cfg = tiny();
    let (model, _) = fresh::<WhisperForConditionalGeneration>(&cfg);
    let inputs = |dec: Tensor| ModelInputs::from_input_features(features(1, 5, 8)).with_decoder_input_ids(dec);
    let err = model.forward(&inputs(ids(&[&[3, 40]]))).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 40, .. }), "{err}");
    let err = model.forward(&inputs(ids(&[&[3, -1]]))).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { id: -1, .. }), "{err}");
    let long: Vec<i64> = (0..11).collect();
    let msg = model.forward(&inputs(ids(&[&long]))).unwrap_err().to_string();
    assert!(msg.contains("max_target_positions") && msg.contains("at most 10"), "{msg}");
    let msg = model.forward(&ModelInputs::from_input_features(features(1, 5, 8))).unwrap_err().to_string();
    assert!(msg.contains("decoder_input_ids"), "{msg}");
    let msg = model.forward(&inputs(ids(&[&[3, 4], &[3, 5]]))).unwrap_err().to_string();
    assert!(msg.contains("2 rows") && msg.contains("has 1"), "{msg}");
    // The cache fills up: the step past `max_target_positions` is refused.
    let encoded = model.encode(&ModelInputs::from_input_features(features(1, 5, 8))).unwrap();
    let mut cache = Seq2SeqCache::new();
    model.decode(&ids(&[&[3, 4, 5, 6, 7, 8, 9, 10, 11]]), &encoded, &mut cache).unwrap();
    model.decode(&ids(&[&[12]]), &encoded, &mut cache).unwrap();
    let msg = model.decode(&ids(&[&[13]]), &encoded, &mut cache).unwrap_err().to_string();
    assert!(msg.contains("10 cached + 1 new"), "{msg}");
}

#[test]
fn incremental_decoding_matches_the_full_forward_pass() {
    let cfg = tiny();
    let (model, _) = fresh::<WhisperForConditionalGeneration>(&cfg);
    let feats = features(2, 5, 8);
    let dec = ids(&[&[3, 7, 9, 11, 13, 2], &[3, 8, 10, 12, 14, 15]]);
    let full = model.forward(&ModelInputs::from_input_features(feats.clone()).with_decoder_input_ids(dec.clone()));
    let full = full.unwrap();
    let logits = full.logits.clone();
    assert_eq!(logits.dims(), &[2, 6, 40]);
    assert_eq!(full.encoder_last_hidden_state.dims(), &[2, 4, 12]);
    let encoded = model.encode(&ModelInputs::from_input_features(feats)).unwrap();
    // A 3-token prompt at once, then one token at a time; the cross-attention keys are cached.
    let mut cache = Seq2SeqCache::new();
    let mut steps = vec![model.decode(&dec.narrow(1, 0, 3).unwrap(), &encoded, &mut cache).unwrap()];
    for t in 3..6 {
        steps.push(model.decode(&dec.narrow(1, t, 1).unwrap(), &encoded, &mut cache).unwrap());
    }
    let stepped = Tensor::cat(&steps, 1).unwrap();
    assert!(max_abs_diff(&stepped, &logits) < 1e-4, "{}", max_abs_diff(&stepped, &logits));
    assert_eq!(cache.seq_len(), 6);
    let enc1 = autocandle_core::EncoderOutput {
        last_hidden_state: encoded.last_hidden_state.i(1..2).unwrap(),
        attention_mask: None,
    };
    // A cache of 2 rows refuses a batch of 1, and encoder and decoder rows must agree.
    let one = model.decode(&ids(&[&[4]]), &enc1, &mut cache.clone()).unwrap_err().to_string();
    assert!(one.contains("holds 2 rows"), "{one}");
    let one = model.decode(&ids(&[&[4]]), &encoded, &mut cache.clone()).unwrap_err().to_string();
    assert!(one.contains("[2, 4, 12]"), "{one}");
    // Row selection follows the rows.
    let mut cache2 = cache.clone();
    cache2.select_rows(&Tensor::new(&[1u32], &Device::Cpu).unwrap()).unwrap();
    let next = model.decode(&ids(&[&[16]]), &enc1, &mut cache2).unwrap();
    let whole = model
        .forward(
            &ModelInputs::from_input_features(features(2, 5, 8).i(1..2).unwrap())
                .with_decoder_input_ids(ids(&[&[3, 8, 10, 12, 14, 15, 16]])),
        )
        .unwrap()
        .logits;
    assert!(max_abs_diff(&next, &whole.i((.., 6..7)).unwrap()) < 1e-4);
}

#[test]
fn base_model_returns_both_states_and_masks_decoder_padding() {
    let cfg = tiny();
    let (model, _) = fresh::<WhisperModel>(&cfg);
    let inputs =
        ModelInputs::from_input_features(features(2, 5, 8)).with_decoder_input_ids(ids(&[&[3, 4, 5], &[3, 6, 0]]));
    let out = Model::forward(&model, &inputs).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[2, 3, 12]);
    assert_eq!(out.get("encoder_last_hidden_state").unwrap().dims(), &[2, 4, 12]);
    // A padded last key does not change the states of the earlier positions.
    let masked = Model::forward(&model, &inputs.clone().with_decoder_attention_mask(ids(&[&[1, 1, 1], &[1, 1, 0]])))
        .unwrap()
        .last_hidden_state;
    assert!(max_abs_diff(&masked.i((.., 0..2)).unwrap(), &out.last_hidden_state.i((.., 0..2)).unwrap()) < 1e-5);
    let bad = inputs.with_decoder_attention_mask(ids(&[&[1, 1], &[1, 1]]));
    assert!(Model::forward(&model, &bad).unwrap_err().to_string().contains("decoder_attention_mask"));
}

#[test]
fn tied_head_is_the_token_embedding_and_untied_is_not() {
    let cfg = tiny();
    let (model, varmap) = fresh::<WhisperForConditionalGeneration>(&cfg);
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(!names.iter().any(|n| n.starts_with("proj_out")), "{names:?}");
    let embed = model.model().decoder().embed_tokens().embeddings().unwrap().clone();
    assert_eq!(max_abs_diff(&model.proj_out().weight().unwrap(), &embed), 0.0);
    let untied = WhisperConfig { tie_word_embeddings: false, ..tiny() };
    let (_, varmap) = fresh::<WhisperForConditionalGeneration>(&untied);
    assert!(varmap.data().lock().unwrap().contains_key("proj_out.weight"));
    assert_eq!(fresh::<WhisperForConditionalGeneration>(&cfg).0.decoder_start_token_id(), Some(3));
    assert_eq!(model.max_source_positions(), Some(4));
    assert_eq!(model.max_target_positions(), Some(10));
}

#[test]
fn audio_classifier_logits_with_and_without_weighted_layer_sum() {
    for weighted in [false, true] {
        let cfg = WhisperConfig { use_weighted_layer_sum: weighted, ..tiny() };
        let (model, varmap) = fresh::<WhisperForAudioClassification>(&cfg);
        assert_eq!(varmap.data().lock().unwrap().contains_key("layer_weights"), weighted);
        let out = model.forward(&ModelInputs::from_input_features(features(2, 5, 8))).unwrap();
        assert_eq!(out.logits.dims(), &[2, 2]);
        let err = model.forward(&ModelInputs::from_input_features(features(2, 5, 9))).unwrap_err();
        assert!(err.to_string().contains("found 9"), "{err}");
    }
}

#[test]
fn causal_lm_with_cache_matches_without() {
    let cfg = tiny();
    let (model, _) = fresh::<WhisperForCausalLM>(&cfg);
    let x = ids(&[&[3, 5, 7, 9, 11]]);
    let full = ForCausalLm::forward(&model, &ModelInputs::new(x.clone())).unwrap().logits;
    let mut cache = KvCache::new();
    let a = model.forward_with_cache(&ModelInputs::new(x.narrow(1, 0, 2).unwrap()), &mut cache).unwrap().logits;
    let b = model.forward_with_cache(&ModelInputs::new(x.narrow(1, 2, 3).unwrap()), &mut cache).unwrap().logits;
    let stepped = Tensor::cat(&[a, b], 1).unwrap();
    assert!(max_abs_diff(&stepped, &full) < 1e-4);
    assert!(model.supports_cache());
    assert_eq!(model.max_positions(), Some(10));
}
