//! Unit tests: config parsing and defaults, output shapes of every head, incremental decoding
//! against the full forward pass, cache reordering, weight tying and input errors.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{
    Activation, Error, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification, LoadModel, Model, ModelInputs,
    Seq2SeqCache,
};

use crate::inputs::shift_tokens_right;
use crate::*;

fn tiny() -> BartConfig {
    BartConfig {
        vocab_size: 40,
        d_model: 16,
        encoder_layers: 2,
        decoder_layers: 3,
        encoder_attention_heads: 4,
        decoder_attention_heads: 2,
        encoder_ffn_dim: 24,
        decoder_ffn_dim: 20,
        max_position_embeddings: 12,
        ..BartConfig::default()
    }
}

fn fresh<M: LoadModel<Config = BartConfig>>(cfg: &BartConfig) -> (M, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = M::load(vb, cfg).unwrap();
    (model, varmap)
}

fn t2(rows: &[&[i64]]) -> Tensor {
    let width = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), width), &Device::Cpu).unwrap()
}

/// Encoder inputs with EOS (2) at the end of each row, the second row padded (1) after it.
fn inputs() -> ModelInputs {
    ModelInputs::new(t2(&[&[5, 9, 7, 11, 13, 2], &[6, 8, 10, 2, 1, 1]]))
        .with_attention_mask(t2(&[&[1, 1, 1, 1, 1, 1], &[1, 1, 1, 1, 0, 0]]))
}

fn decoder_ids() -> Tensor {
    t2(&[&[2, 14, 15, 16, 17], &[2, 20, 21, 22, 23]])
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: BartConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, BartConfig::default());
    assert_eq!((cfg.vocab_size, cfg.d_model, cfg.max_position_embeddings), (50265, 1024, 1024));
    assert_eq!((cfg.encoder_layers, cfg.decoder_layers), (12, 12));
    assert_eq!((cfg.encoder_attention_heads, cfg.decoder_attention_heads), (16, 16));
    assert_eq!((cfg.encoder_ffn_dim, cfg.decoder_ffn_dim), (4096, 4096));
    assert_eq!(cfg.activation_function, Activation::Gelu);
    assert!(!cfg.scale_embedding && cfg.tie_word_embeddings && cfg.is_encoder_decoder && cfg.use_cache);
    assert_eq!((cfg.pad_token_id, cfg.bos_token_id, cfg.decoder_start_token_id), (Some(1), Some(0), Some(2)));
    assert_eq!(cfg.eos_token_id, Some(TokenIds::One(2)));
    assert_eq!(cfg.forced_eos_token_id, Some(TokenIds::One(2)));
    assert_eq!((cfg.dropout, cfg.attention_dropout, cfg.init_std), (0.1, 0.0, 0.02));
    // BartConfig's own default is 3 labels, not the usual 2.
    assert_eq!(cfg.num_labels(), 3);
}

#[test]
fn config_reads_a_transformers_config_json() {
    // facebook/bart-large-like, with the generation settings older configs carry.
    let json = r#"{
        "architectures": ["BartForConditionalGeneration"], "model_type": "bart",
        "activation_function": "gelu_new", "add_bias_logits": false, "add_final_layer_norm": false,
        "forced_bos_token_id": 0, "no_repeat_ngram_size": 3, "num_beams": 4, "normalize_before": false,
        "eos_token_id": [2, 3], "forced_eos_token_id": null, "scale_embedding": true,
        "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1},
        "hidden_size": 64, "num_attention_heads": 8, "num_hidden_layers": 3, "d_model": 1024,
        "transformers_version": "5.23.0"
    }"#;
    let cfg: BartConfig = serde_json::from_str(json).unwrap();
    // `attribute_map` names win over BART's own, as in transformers.
    assert_eq!((cfg.d_model, cfg.encoder_attention_heads, cfg.encoder_layers), (64, 8, 3));
    assert_eq!(cfg.decoder_layers, 12);
    assert_eq!(cfg.activation_function, Activation::GeluTanh);
    assert_eq!(cfg.eos_token_id, Some(TokenIds::Many(vec![2, 3])));
    assert_eq!(cfg.forced_eos_token_id, None);
    assert!(cfg.scale_embedding);
    assert_eq!(cfg.num_labels(), 2);
    let back: BartConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    let err = serde_json::from_str::<BartConfig>(r#"{"activation_function": "gelu_nope"}"#).unwrap_err();
    assert!(err.to_string().contains("gelu_nope"), "{err}");
}

#[test]
fn invalid_configs_are_refused_at_load() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = BartModel::load(vb.clone(), &BartConfig { decoder_attention_heads: 3, ..tiny() }).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("multiple of `decoder_attention_heads`"), "{err}");
    let err = BartModel::load(vb.clone(), &BartConfig { vocab_size: 0, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("`vocab_size`"), "{err}");
    let err = BartForSequenceClassification::load(vb, &BartConfig { eos_token_id: None, ..tiny() }).unwrap_err();
    assert!(err.to_string().contains("eos_token_id"), "{err}");
}

#[test]
fn every_head_has_the_transformers_output_shapes() {
    let mut cfg = tiny();
    let x = inputs().with_decoder_input_ids(decoder_ids());

    let (base, _) = fresh::<BartModel>(&cfg);
    let out = Model::forward(&base, &x).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 5, 16]);
    assert_eq!(out.extra("encoder_last_hidden_state").unwrap().dims(), [2, 6, 16]);

    let (lm, _) = fresh::<BartForConditionalGeneration>(&cfg);
    let out = ForSeq2SeqLm::forward(&lm, &x).unwrap();
    assert_eq!(out.logits.dims(), [2, 5, 40]);
    assert_eq!(out.encoder_last_hidden_state.dims(), [2, 6, 16]);
    assert_eq!(lm.decoder_start_token_id(), Some(2));
    assert_eq!((lm.max_source_positions(), lm.max_target_positions()), (Some(12), Some(12)));

    let (cls, _) = fresh::<BartForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&cls, &inputs()).unwrap().logits.dims(), [2, 3]);
    cfg.labels.num_labels = Some(5);
    let (cls, _) = fresh::<BartForSequenceClassification>(&cfg);
    assert_eq!(ForSequenceClassification::forward(&cls, &inputs()).unwrap().logits.dims(), [2, 5]);

    let (qa, _) = fresh::<BartForQuestionAnswering>(&cfg);
    let out = ForQuestionAnswering::forward(&qa, &inputs()).unwrap();
    assert_eq!((out.start_logits.dims(), out.end_logits.dims()), (&[2, 6][..], &[2, 6][..]));
}

#[test]
fn shift_tokens_right_matches_transformers() {
    let ids = t2(&[&[5, 6, 7, 2], &[8, -100, 2, 1]]);
    let shifted = shift_tokens_right(&ids, 1, 2).unwrap();
    assert_eq!(shifted.to_vec2::<i64>().unwrap(), [[2, 5, 6, 7], [2, 8, 1, 2]]);
}

#[test]
fn without_decoder_inputs_the_decoder_reads_the_shifted_input_ids() {
    let (model, _) = fresh::<BartModel>(&tiny());
    let implicit = Model::forward(&model, &inputs()).unwrap();
    let shifted = shift_tokens_right(inputs().input_ids.as_ref().unwrap(), 1, 2).unwrap();
    let explicit = Model::forward(&model, &inputs().with_decoder_input_ids(shifted)).unwrap();
    assert_eq!(max_abs_diff(&implicit.last_hidden_state, &explicit.last_hidden_state), 0.0);
}

/// The logits of `decode` fed `chunks` of the decoder ids, concatenated along the sequence.
fn decode_in_chunks(lm: &BartForConditionalGeneration, ids: &Tensor, chunks: &[usize]) -> Tensor {
    let encoder = lm.encode(&inputs()).unwrap();
    let mut cache = Seq2SeqCache::new();
    let mut start = 0;
    let mut parts = Vec::new();
    for &n in chunks {
        assert_eq!(cache.seq_len(), start);
        parts.push(lm.decode(&ids.narrow(1, start, n).unwrap(), &encoder, &mut cache).unwrap());
        start += n;
    }
    Tensor::cat(&parts, 1).unwrap()
}

#[test]
fn decode_step_by_step_gives_the_forward_logits() {
    for scale_embedding in [false, true] {
        let cfg = BartConfig { scale_embedding, ..tiny() };
        let (lm, _) = fresh::<BartForConditionalGeneration>(&cfg);
        let ids = decoder_ids();
        let full = ForSeq2SeqLm::forward(&lm, &inputs().with_decoder_input_ids(ids.clone())).unwrap().logits;
        // One token at a time, and in uneven chunks (a causal mask over cached positions).
        for chunks in [&[1, 1, 1, 1, 1][..], &[2, 3], &[1, 4], &[5]] {
            let got = decode_in_chunks(&lm, &ids, chunks);
            let diff = max_abs_diff(&got, &full);
            assert!(diff < 1e-4, "scale_embedding {scale_embedding}, chunks {chunks:?}: max |diff| {diff}");
        }
        // Prefix by prefix: the forward pass on each prefix agrees with the cached steps.
        for len in 1..=5 {
            let prefix = ids.narrow(1, 0, len).unwrap();
            let fwd = ForSeq2SeqLm::forward(&lm, &inputs().with_decoder_input_ids(prefix)).unwrap().logits;
            let diff = max_abs_diff(&fwd, &full.narrow(1, 0, len).unwrap());
            assert!(diff < 1e-4, "prefix {len}: max |diff| {diff}");
        }
    }
}

#[test]
fn selecting_cache_rows_follows_the_rows() {
    let (lm, _) = fresh::<BartForConditionalGeneration>(&tiny());
    let ids = decoder_ids();
    let full = ForSeq2SeqLm::forward(&lm, &inputs().with_decoder_input_ids(ids.clone())).unwrap().logits;
    let encoder = lm.encode(&inputs()).unwrap();
    let mut cache = Seq2SeqCache::new();
    lm.decode(&ids.narrow(1, 0, 2).unwrap(), &encoder, &mut cache).unwrap();
    // Swap the rows of the cache and of the encoder output, then go on with swapped ids.
    let swap = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
    cache.select_rows(&swap).unwrap();
    let swapped = autocandle_core::EncoderOutput {
        last_hidden_state: encoder.last_hidden_state.index_select(&swap, 0).unwrap(),
        attention_mask: encoder.attention_mask.as_ref().map(|m| m.index_select(&swap, 0).unwrap()),
    };
    let rest = ids.narrow(1, 2, 3).unwrap().contiguous().unwrap().index_select(&swap, 0).unwrap();
    let got = lm.decode(&rest, &swapped, &mut cache).unwrap();
    let want = full.narrow(1, 2, 3).unwrap().contiguous().unwrap().index_select(&swap, 0).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-4);
}

#[test]
fn padding_is_masked() {
    let (model, _) = fresh::<BartModel>(&tiny());
    // Changing padded encoder tokens changes nothing of the decoder.
    let other = ModelInputs::new(t2(&[&[5, 9, 7, 11, 13, 2], &[6, 8, 10, 2, 30, 31]]))
        .with_attention_mask(t2(&[&[1, 1, 1, 1, 1, 1], &[1, 1, 1, 1, 0, 0]]))
        .with_decoder_input_ids(decoder_ids());
    let a = Model::forward(&model, &inputs().with_decoder_input_ids(decoder_ids())).unwrap();
    let b = Model::forward(&model, &other).unwrap();
    assert!(max_abs_diff(&a.last_hidden_state, &b.last_hidden_state) < 1e-6);
    // The token at a padded decoder position is seen by no other position.
    let dec_mask = t2(&[&[1, 1, 1, 1, 1], &[1, 1, 0, 1, 1]]);
    let with_mask = |ids: Tensor| {
        let x = inputs().with_decoder_input_ids(ids).with_decoder_attention_mask(dec_mask.clone());
        Model::forward(&model, &x).unwrap().last_hidden_state
    };
    let a = with_mask(decoder_ids());
    let b = with_mask(t2(&[&[2, 14, 15, 16, 17], &[2, 20, 33, 22, 23]]));
    let keep = Tensor::new(&[0u32, 1, 3, 4], &Device::Cpu).unwrap();
    let (a, b) = (a.i(1).unwrap().index_select(&keep, 0).unwrap(), b.i(1).unwrap().index_select(&keep, 0).unwrap());
    assert!(max_abs_diff(&a, &b) < 1e-6);
}

#[test]
fn classification_pools_the_last_eos_of_each_row() {
    let (cls, _) = fresh::<BartForSequenceClassification>(&tiny());
    let logits = ForSequenceClassification::forward(&cls, &inputs()).unwrap().logits;
    // Row 1 alone (its EOS at 3) gives the same logits as in the batch.
    let alone = ModelInputs::new(t2(&[&[6, 8, 10, 2, 1, 1]])).with_attention_mask(t2(&[&[1, 1, 1, 1, 0, 0]]));
    let one = ForSequenceClassification::forward(&cls, &alone).unwrap().logits;
    assert!(max_abs_diff(&logits.narrow(0, 1, 1).unwrap(), &one) < 1e-5);

    let uneven = ModelInputs::new(t2(&[&[5, 2, 7, 2], &[6, 8, 10, 2]]));
    let err = ForSequenceClassification::forward(&cls, &uneven).unwrap_err();
    assert!(err.to_string().contains("same number of <eos> tokens"), "{err}");
    let none = ModelInputs::new(t2(&[&[5, 6, 7, 8]]));
    let err = ForSequenceClassification::forward(&cls, &none).unwrap_err();
    assert!(err.to_string().contains("at least one <eos>"), "{err}");
}

#[test]
fn input_errors_are_clear() {
    let (lm, _) = fresh::<BartForConditionalGeneration>(&tiny());
    let forward = |x: &ModelInputs| ForSeq2SeqLm::forward(&lm, x).unwrap_err();

    let err = forward(&ModelInputs::default().with_decoder_input_ids(decoder_ids()));
    assert!(err.to_string().contains("`input_ids` is required"), "{err}");

    let err = forward(&ModelInputs::new(t2(&[&[5, 40]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: 40, .. }), "{err}");
    let err = forward(&ModelInputs::new(t2(&[&[5, -1]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "input_ids", id: -1, .. }), "{err}");
    let err = forward(&inputs().with_decoder_input_ids(t2(&[&[2, 99], &[2, 3]])));
    assert!(matches!(err, Error::TokenIdOutOfRange { input: "decoder_input_ids", id: 99, .. }), "{err}");

    let long: Vec<i64> = vec![5; 13];
    let err = forward(&ModelInputs::new(t2(&[&long])));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");
    let err = forward(&ModelInputs::new(t2(&[&[5, 6]])).with_decoder_input_ids(t2(&[&long])));
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");

    let err = forward(&inputs().with_attention_mask(t2(&[&[1, 1, 1]])));
    assert!(err.to_string().contains("`attention_mask` has shape"), "{err}");
    let err = forward(&inputs().with_decoder_input_ids(t2(&[&[2, 3]])));
    assert!(err.to_string().contains("rows"), "{err}");
    let err = forward(&inputs().with_decoder_input_ids(decoder_ids()).with_decoder_attention_mask(t2(&[&[1, 1]])));
    assert!(err.to_string().contains("`decoder_attention_mask` has shape"), "{err}");
    let float_ids = Tensor::zeros((1, 3), DType::F32, &Device::Cpu).unwrap();
    let err = forward(&ModelInputs::new(float_ids));
    assert!(err.to_string().contains("integers"), "{err}");

    // Decoding past the positions, with a cache of another batch, or with another encoder.
    let encoder = lm.encode(&inputs()).unwrap();
    let mut cache = Seq2SeqCache::new();
    let ids = Tensor::new(&[[2u32; 12], [2u32; 12]], &Device::Cpu).unwrap();
    lm.decode(&ids, &encoder, &mut cache).unwrap();
    let step = Tensor::new(&[[3u32], [3]], &Device::Cpu).unwrap();
    let err = lm.decode(&step, &encoder, &mut cache).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 13, max: 12 }), "{err}");
    let mut cache = Seq2SeqCache::new();
    lm.decode(&step, &encoder, &mut cache).unwrap();
    let err = lm.decode(&Tensor::new(&[[3u32]], &Device::Cpu).unwrap(), &encoder, &mut cache).unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");
}

fn save(tensors: &HashMap<String, Tensor>, dir: &tempfile::TempDir) -> Arc<Checkpoint> {
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(tensors, &path).unwrap();
    Arc::new(Checkpoint::open(vec![path]).unwrap())
}

#[test]
fn weights_tie_as_in_transformers() {
    let cfg = tiny();
    let (lm, varmap) = fresh::<BartForConditionalGeneration>(&cfg);
    let x = inputs().with_decoder_input_ids(decoder_ids());
    let want = ForSeq2SeqLm::forward(&lm, &x).unwrap().logits;
    let mut tensors: HashMap<String, Tensor> =
        varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    // A saved tied model has `model.shared.weight` only; the head and both stacks use it.
    assert!(tensors.contains_key("model.shared.weight"));
    assert!(!tensors.contains_key("lm_head.weight") && !tensors.contains_key("model.encoder.embed_tokens.weight"));
    let bias = Tensor::arange(0f32, 40.0, &Device::Cpu).unwrap().reshape((1, 40)).unwrap();
    tensors.insert("final_logits_bias".into(), bias.clone());
    let dir = tempfile::tempdir().unwrap();
    let (vb, _) = checkpoint_var_builder(save(&tensors, &dir), "model", DType::F32, &Device::Cpu);
    let loaded = BartForConditionalGeneration::load(vb, &cfg).unwrap();
    let got = ForSeq2SeqLm::forward(&loaded, &x).unwrap().logits;
    assert!(max_abs_diff(&got, &want.broadcast_add(&bias).unwrap()) < 1e-4);

    // Only `encoder.embed_tokens` saved (older checkpoints): everything ties to it.
    let shared = tensors.remove("model.shared.weight").unwrap();
    tensors.insert("model.encoder.embed_tokens.weight".into(), shared.clone());
    let dir = tempfile::tempdir().unwrap();
    let (vb, _) = checkpoint_var_builder(save(&tensors, &dir), "model", DType::F32, &Device::Cpu);
    let loaded = BartForConditionalGeneration::load(vb, &cfg).unwrap();
    assert!(max_abs_diff(&ForSeq2SeqLm::forward(&loaded, &x).unwrap().logits, &got) < 1e-6);

    // Untied: `lm_head` and each stack's own embeddings are required and used.
    let untied = BartConfig { tie_word_embeddings: false, ..cfg.clone() };
    let dir = tempfile::tempdir().unwrap();
    let (vb, _) = checkpoint_var_builder(save(&tensors, &dir), "model", DType::F32, &Device::Cpu);
    let err = BartForConditionalGeneration::load(vb, &untied).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    tensors.insert("model.decoder.embed_tokens.weight".into(), shared.clone());
    tensors.insert("lm_head.weight".into(), (shared * 2.0).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (vb, _) = checkpoint_var_builder(save(&tensors, &dir), "model", DType::F32, &Device::Cpu);
    let loaded = BartForConditionalGeneration::load(vb, &untied).unwrap();
    let logits = ForSeq2SeqLm::forward(&loaded, &x).unwrap().logits;
    let doubled = ((got.broadcast_sub(&bias).unwrap() * 2.0).unwrap().broadcast_add(&bias)).unwrap();
    assert!(max_abs_diff(&logits, &doubled) < 1e-4);
}

#[test]
fn generation_through_the_seq2seq_loop_matches_forward_greedy() {
    use autocandle_generation::{generate_seq2seq, GenerateOptions, GenerationConfig};

    let (lm, _) = fresh::<BartForConditionalGeneration>(&tiny());
    let prompt = ModelInputs::new(t2(&[&[5, 9, 7, 11]]));
    let config = GenerationConfig::new().do_sample(false).max_new_tokens(6);
    let out = generate_seq2seq(&lm, &prompt, &config, GenerateOptions::new()).unwrap();
    // Greedy by re-running the whole decoder at every step.
    let mut ids = vec![2u32];
    for _ in 0..6 {
        let dec = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let x = ModelInputs::new(t2(&[&[5, 9, 7, 11]])).with_decoder_input_ids(dec);
        let logits = ForSeq2SeqLm::forward(&lm, &x).unwrap().logits;
        let last = logits.i((0, ids.len() - 1)).unwrap();
        ids.push(last.argmax(0).unwrap().to_scalar::<u32>().unwrap());
    }
    assert_eq!(out.sequences, [ids]);
    // Beam search runs on the same cache (rows reordered every step).
    let beams = generate_seq2seq(&lm, &prompt, &config.clone().num_beams(3), GenerateOptions::new()).unwrap();
    assert_eq!(beams.sequences[0].len(), 7);
}
