//! Unit tests: `MT5Config` defaults, registration, the unscaled LM head, and incremental
//! decoding on the `mt5-seq2seq-lm` fixture's weights.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use autocandle_core::registry::Registry;
use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{Activation, ForSeq2SeqLm, LoadModel, ModelInputs, PretrainedConfig, Seq2SeqCache, Task};
use autocandle_t5::{T5LikeConfig, TokenIds};

use crate::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

// `MT5Config().to_dict()` of transformers 5.23.
#[test]
fn defaults_are_those_of_transformers() {
    let config: MT5Config = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config, MT5Config::default());
    assert_eq!(
        (config.vocab_size, config.d_model, config.d_kv, config.d_ff, config.num_layers, config.num_heads),
        (250112, 512, 64, 1024, 8, 6)
    );
    assert_eq!(config.feed_forward_proj, "gated-gelu");
    assert_eq!((config.pad_token_id, config.eos_token_id.clone()), (Some(0), Some(TokenIds::One(1))));
    assert_eq!((config.bos_token_id, config.decoder_start_token_id), (None, Some(0)));
    assert!(config.tie_word_embeddings);
    let spec = config.t5_spec().unwrap();
    assert_eq!((spec.activation, spec.gated, spec.num_decoder_layers), (Activation::GeluTanh, true, 8));
    assert!(!spec.scale_decoder_outputs);
    assert_eq!(spec.decoder_start_token(), Some(0));
}

// mT5 never scales the decoder output, whatever the config says about tying.
#[test]
fn the_lm_head_input_is_never_scaled() {
    for tie in [true, false] {
        let config: MT5Config =
            serde_json::from_value(json!({"tie_word_embeddings": tie, "scale_decoder_outputs": true})).unwrap();
        assert!(!config.t5_spec().unwrap().scale_decoder_outputs);
    }
}

#[test]
fn heads_are_registered_under_their_transformers_classes() {
    let registry = Registry::global().unwrap();
    let expected = [
        (Task::Base, "MT5Model"),
        (Task::Seq2SeqLm, "MT5ForConditionalGeneration"),
        (Task::TextEncoding, "MT5EncoderModel"),
        (Task::SequenceClassification, "MT5ForSequenceClassification"),
        (Task::TokenClassification, "MT5ForTokenClassification"),
        (Task::QuestionAnswering, "MT5ForQuestionAnswering"),
    ];
    assert_eq!(registry.heads("mt5").len(), expected.len());
    for (task, class) in expected {
        let reg = registry.model("mt5", task).unwrap();
        assert_eq!((reg.class_name, reg.base_model_prefix), (class, "transformer"), "{task:?}");
    }
}

#[test]
fn decode_token_by_token_equals_forward() {
    let dir = fixture("mt5-seq2seq-lm");
    let config = PretrainedConfig::from_file(&dir.join("config.json")).unwrap();
    let config = config.downcast::<MT5Config>().unwrap();
    assert!(!config.tie_word_embeddings, "the fixture has an old-style config");
    let checkpoint = Arc::new(Checkpoint::open(vec![dir.join("model.safetensors")]).unwrap());
    let (vb, _) = checkpoint_var_builder(checkpoint, "transformer", DType::F32, &Device::Cpu);
    let model = MT5ForConditionalGeneration::load(vb, config).unwrap();
    let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let inputs = ModelInputs::new(reference["input_ids"].clone())
        .with_attention_mask(reference["attention_mask"].clone())
        .with_decoder_input_ids(reference["decoder_input_ids"].clone());
    let full = ForSeq2SeqLm::forward(&model, &inputs).unwrap().logits;
    let encoder = model.encode(&inputs).unwrap();
    let mut cache = Seq2SeqCache::new();
    let decoder_ids = &reference["decoder_input_ids"];
    let steps: Vec<Tensor> = (0..decoder_ids.dim(1).unwrap())
        .map(|i| model.decode(&decoder_ids.narrow(1, i, 1).unwrap(), &encoder, &mut cache).unwrap())
        .collect();
    let diff = max_abs_diff(&Tensor::cat(&steps, 1).unwrap(), &full);
    assert!(diff < 1e-5, "{diff}");
    assert_eq!(model.decoder_start_token_id(), Some(0));
}
