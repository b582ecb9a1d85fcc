//! Bad input gets a clear `Err`, never a panic: one test per case.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use autocandle::catalog::resolve_head;
use autocandle::{
    AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageClassification, AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM, AutoModelForZeroShotImageClassification, Device, Error, GenerationConfig, GenerationMixin,
    ModelInputs, Seq2SeqGenerationMixin, Task, Tensor,
};
use autocandle_tests::fixture;

/// A copy of a fixture folder that a test may break.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    tmp
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(config.as_object_mut().unwrap());
    std::fs::write(path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn load_err(dir: &Path) -> Error {
    AutoModelForMaskedLM::from_pretrained(&dir.to_string_lossy()).expect_err("loading should fail")
}

#[test]
fn malformed_config_json() {
    let dir = copy_fixture("bert-masked-lm");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": \"bert\",").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, Error::MalformedJson { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn missing_model_type() {
    // A folder whose name holds no known model type (a random temp name could, e.g. `.tmpt…`
    // holds `mpt`): no name-pattern fallback, a clear error.
    let tmp = copy_fixture("bert-masked-lm");
    let dir = tmp.path().join("zzz");
    std::fs::create_dir(&dir).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::rename(tmp.path().join(name), dir.join(name)).unwrap();
    }
    edit_config(&dir, |c| {
        c.remove("model_type");
    });
    let err = load_err(&dir);
    assert!(matches!(err, Error::MissingModelType { .. }), "{err}");
    assert!(err.to_string().contains("add one"), "{err}");
    // Named after a model type, the folder tells the architecture (transformers v4's fallback).
    let named = tmp.path().join("my-bert-checkpoint");
    std::fs::rename(&dir, &named).unwrap();
    let model = AutoModelForMaskedLM::from_pretrained(&named.to_string_lossy()).unwrap();
    let ids = Tensor::new(&[[2u32, 10, 3]], &Device::Cpu).unwrap();
    assert_eq!(model.forward(&ModelInputs::new(ids)).unwrap().logits.dims()[..2], [1, 3]);
}

#[test]
fn unknown_model_type_suggests_close_names() {
    let dir = copy_fixture("bert-masked-lm");
    edit_config(dir.path(), |c| {
        c.insert("model_type".into(), "brt".into());
    });
    let err = load_err(dir.path()).to_string();
    assert!(
        err.contains("unknown model type `brt`") && err.contains("did you mean") && err.contains("`bert`"),
        "{err}"
    );
    let err = AutoConfig::from_pretrained(&dir.path().to_string_lossy()).unwrap_err().to_string();
    assert!(err.contains("known model types: ") && err.contains("bert,"), "{err}");
}

#[test]
fn invalid_field_value_names_the_model_type() {
    let dir = copy_fixture("bert-masked-lm");
    edit_config(dir.path(), |c| {
        c.insert("hidden_act".into(), "gelu_nope".into());
    });
    let err = load_err(dir.path()).to_string();
    assert!(err.contains("`bert` config") && err.contains("gelu_nope") && err.contains("field `hidden_act`"), "{err}");
}

#[test]
fn no_head_for_task_lists_what_is_available() {
    let err = resolve_head("bert", Task::Seq2SeqLm).unwrap_err().to_string();
    assert!(err.contains("no seq2seq-lm head") && err.contains("masked-lm (BertForMaskedLM)"), "{err}");
}

#[test]
fn missing_weights_file() {
    let dir = copy_fixture("bert-masked-lm");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, Error::WeightsNotFound { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn truncated_safetensors() {
    let dir = copy_fixture("bert-masked-lm");
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, Error::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_fixture("bert-masked-lm");
    edit_config(dir.path(), |c| {
        c.insert("num_hidden_layers".into(), 3.into());
    });
    let err = load_err(dir.path());
    assert!(matches!(err, Error::TensorNotFound { .. }), "{err}");
    assert!(err.to_string().contains("encoder.layer.2."), "{err}");
}

#[test]
fn wrong_shape_is_named() {
    let dir = copy_fixture("bert-masked-lm");
    edit_config(dir.path(), |c| {
        c.insert("intermediate_size".into(), 40.into());
    });
    let err = load_err(dir.path());
    assert!(matches!(err, Error::TensorShape { .. }), "{err}");
    assert!(err.to_string().contains("intermediate.dense.weight"), "{err}");
}

#[test]
fn token_id_out_of_vocabulary() {
    let model = AutoModel::from_pretrained(&fixture("bert-base").to_string_lossy()).unwrap();
    let ids = Tensor::new(&[[2u32, 100_000, 3]], &Device::Cpu).unwrap();
    let err = model.forward(&ModelInputs::new(ids)).unwrap_err();
    assert!(matches!(err, Error::TokenIdOutOfRange { id: 100_000, .. }), "{err}");
}

#[test]
fn sequence_longer_than_max_position_embeddings() {
    let model = AutoModel::from_pretrained(&fixture("bert-base").to_string_lossy()).unwrap();
    let ids = Tensor::ones((1, 65), candle_core::DType::U32, &Device::Cpu).unwrap();
    let err = model.forward(&ModelInputs::new(ids)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 65, max: 64 }), "{err}");
}

#[test]
fn bad_repo_ids_and_paths() {
    let err = AutoModel::from_pretrained("not/a/valid/repo").unwrap_err().to_string();
    assert!(err.contains("neither a local folder nor a valid Hub repo id"), "{err}");
    let err = AutoModel::from_pretrained("").unwrap_err().to_string();
    assert!(err.contains("repo id"), "{err}");
}

#[test]
fn unsupported_position_embedding_type() {
    let dir = copy_fixture("bert-masked-lm");
    edit_config(dir.path(), |c| {
        c.insert("position_embedding_type".into(), "relative_key".into());
    });
    let err = load_err(dir.path());
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("relative_key"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Decoder-only models and generation

fn causal_lm_err(dir: &Path) -> Error {
    AutoModelForCausalLM::from_pretrained(&dir.to_string_lossy()).expect_err("loading should fail")
}

#[test]
fn unknown_rope_type_lists_the_known_ones() {
    for (fixture_name, key) in [("llama-causal-lm", "rope_parameters"), ("qwen2-causal-lm", "rope_scaling")] {
        let dir = copy_fixture(fixture_name);
        edit_config(dir.path(), |c| {
            c.insert(key.into(), serde_json::json!({"rope_type": "ntk-by-parts", "factor": 2.0}));
        });
        let err = causal_lm_err(dir.path());
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("ntk-by-parts") && msg.contains("llama3") && msg.contains("yarn"), "{msg}");
    }
}

#[test]
fn decoder_context_longer_than_max_position_embeddings() {
    for name in ["llama-causal-lm", "gemma2-causal-lm", "phi3-causal-lm", "gpt2-causal-lm"] {
        let model = AutoModelForCausalLM::from_pretrained(&fixture(name).to_string_lossy()).unwrap();
        let ids = Tensor::ones((1, 65), candle_core::DType::U32, &Device::Cpu).unwrap();
        let err = model.forward(&ModelInputs::new(ids)).unwrap_err();
        assert!(matches!(err, Error::SequenceTooLong { len: 65, max: 64 }), "{name}: {err}");
        // Generation stops with the same error at the step that would pass the limit.
        let err = model.generate(&[5u32; 60], &GenerationConfig::new().max_new_tokens(10)).unwrap_err();
        assert!(matches!(err, Error::SequenceTooLong { max: 64, .. }), "{name}: {err}");
    }
}

#[test]
fn empty_prompt_and_conflicting_sampling() {
    let model = AutoModelForCausalLM::from_pretrained(&fixture("qwen3-causal-lm").to_string_lossy()).unwrap();
    let err = model.generate(&[] as &[u32], &GenerationConfig::new()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("no tokens"), "{err}");
    let sampling = GenerationConfig::new().do_sample(true).temperature(0.0);
    let err = model.generate(&[5u32, 6], &sampling).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains("temperature"), "{err}");
}

#[test]
fn decoder_token_ids_out_of_vocabulary() {
    let model = AutoModelForCausalLM::from_pretrained(&fixture("mistral-causal-lm").to_string_lossy()).unwrap();
    let ids = Tensor::new(&[[5u32, 100_000]], &Device::Cpu).unwrap();
    let err = model.forward(&ModelInputs::new(ids)).unwrap_err();
    assert!(err.to_string().contains("100000"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Encoder-decoders and vision models

#[test]
fn encoder_input_longer_than_the_model_allows() {
    let model = AutoModelForSeq2SeqLM::from_pretrained(&fixture("bart-seq2seq-lm").to_string_lossy()).unwrap();
    let ids = Tensor::ones((1, 33), candle_core::DType::U32, &Device::Cpu).unwrap();
    let long = ModelInputs::new(ids.clone()).with_decoder_input_ids(Tensor::new(&[[2u32]], &Device::Cpu).unwrap());
    let err = model.forward(&long).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 33, max: 32 }), "{err}");
    let err = model.generate(&ModelInputs::new(ids), &GenerationConfig::new().max_new_tokens(4)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 33, max: 32 }), "{err}");
    // The decoder side: more new tokens than positions.
    let short = ModelInputs::new(Tensor::new(&[[5u32, 6, 7]], &Device::Cpu).unwrap());
    let err = model.generate(&short, &GenerationConfig::new().max_new_tokens(40)).unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { max: 32, .. }), "{err}");
}

#[test]
fn seq2seq_generation_errors() {
    let model = AutoModelForSeq2SeqLM::from_pretrained(&fixture("t5-seq2seq-lm").to_string_lossy()).unwrap();
    let empty = ModelInputs::new(Tensor::zeros((1, 0), candle_core::DType::U32, &Device::Cpu).unwrap());
    let err = model.generate(&empty, &GenerationConfig::new()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("no tokens"), "{err}");
    let prompt = ModelInputs::new(Tensor::new(&[[5u32, 6, 7]], &Device::Cpu).unwrap());
    let err = model.generate(&prompt, &GenerationConfig::new().num_beams(2).do_sample(true)).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = model.generate(&prompt, &GenerationConfig::new().do_sample(true).temperature(0.0)).unwrap_err();
    assert!(err.to_string().contains("temperature"), "{err}");
    let out_of_vocab = ModelInputs::new(Tensor::new(&[[5u32, 60_000]], &Device::Cpu).unwrap());
    let err = model.generate(&out_of_vocab, &GenerationConfig::new()).unwrap_err();
    assert!(err.to_string().contains("60000"), "{err}");
}

#[test]
fn images_of_the_wrong_size_or_channel_count() {
    let model =
        AutoModelForImageClassification::from_pretrained(&fixture("vit-image-classification").to_string_lossy())
            .unwrap();
    let pixels = |c: usize, h: usize, w: usize| {
        ModelInputs::from_pixel_values(Tensor::zeros((1, c, h, w), candle_core::DType::F32, &Device::Cpu).unwrap())
    };
    let err = model.forward(&pixels(3, 20, 16)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("20x16"), "{err}");
    let err = model.forward(&pixels(1, 16, 16)).unwrap_err();
    assert!(err.to_string().contains("1 channels"), "{err}");
    let err = model.forward(
        &pixels(3, 16, 16)
            .with_pixel_values(Tensor::zeros((0, 3, 16, 16), candle_core::DType::F32, &Device::Cpu).unwrap()),
    );
    assert!(err.unwrap_err().to_string().contains("no images"));
    let clip = AutoModelForZeroShotImageClassification::from_pretrained(
        &fixture("clip-zero-shot-image-classification").to_string_lossy(),
    )
    .unwrap();
    let err = clip.forward(&pixels(3, 7, 7)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}
