//! Loading semantics: the Hub cache layout with offline mode, revisions, subfolders, options,
//! config overrides, `from_config`, and checkpoint name conventions.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use autocandle::{
    AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer, DType, Device,
    LoadOptions, ModelInputs, Tensor,
};
use autocandle_tests::{fixture, hub_cache};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A Hub cache in a temp dir holding `org/tiny-bert` at `SHA`, with `refs/main` pointing at it.
fn make_cache(source: &Path, subfolder: Option<&str>) -> tempfile::TempDir {
    hub_cache(source, "org/tiny-bert", SHA, subfolder).unwrap()
}

fn offline(cache: &Path) -> LoadOptions {
    LoadOptions::new().cache_dir(cache).local_files_only(true)
}

fn sample_inputs() -> ModelInputs {
    ModelInputs::new(Tensor::new(&[[2u32, 10, 11, 12, 3]], &Device::Cpu).unwrap())
}

fn logits_of(id: &str, opts: &LoadOptions) -> Vec<f32> {
    let model = AutoModelForMaskedLM::from_pretrained_with(id, opts).unwrap().value;
    model.forward(&sample_inputs()).unwrap().logits.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn hub_id_loads_from_the_cache_offline() {
    let dir = fixture("bert-masked-lm");
    let cache = make_cache(&dir, None);
    let from_cache = logits_of("org/tiny-bert", &offline(cache.path()));
    let from_dir = logits_of(&dir.to_string_lossy(), &LoadOptions::default());
    assert_eq!(from_cache, from_dir);

    let tok = AutoTokenizer::from_pretrained_with("org/tiny-bert", &offline(cache.path())).unwrap();
    assert!(tok.special_token_id("mask_token").is_some());
    let config = AutoConfig::from_pretrained_with("org/tiny-bert", &offline(cache.path())).unwrap().value;
    assert_eq!(config.model_type(), "bert");
}

#[test]
fn hf_hub_offline_and_hf_hub_cache_env_vars_are_honoured() {
    let cache = make_cache(&fixture("bert-masked-lm"), None);
    // Only this test in this binary reads the environment; the others pass explicit options.
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let model = AutoModelForMaskedLM::from_pretrained("org/tiny-bert");
    let missing = AutoModel::from_pretrained("org/not-in-cache");
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::remove_var("HF_HUB_CACHE");
    assert!(model.is_ok(), "{:?}", model.err());
    let err = missing.unwrap_err().to_string();
    assert!(err.contains("offline mode is on") && err.contains("config.json"), "{err}");

    // `HF_HOME/hub` is the cache when `HF_HUB_CACHE` is not set.
    let home = tempfile::tempdir().unwrap();
    std::fs::rename(cache.path(), home.path().join("hub")).unwrap();
    std::env::set_var("HF_HOME", home.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let model = AutoModelForMaskedLM::from_pretrained("org/tiny-bert");
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::remove_var("HF_HOME");
    assert!(model.is_ok(), "{:?}", model.err());
}

#[test]
fn base_model_loads_from_head_checkpoints_and_back() {
    // Head checkpoints (`bert.`-prefixed keys) into the base model; the head weights are unused.
    for name in ["bert-masked-lm", "bert-sequence-classification", "bert-sharded"] {
        let model = AutoModel::from_pretrained(&fixture(name).to_string_lossy()).unwrap();
        let out = model.forward(&sample_inputs()).unwrap();
        assert_eq!(out.last_hidden_state.dims(), &[1, 5, 32], "{name}");
    }
    // A checkpoint without the prefix into a head model: `bert-masked-lm-no-prefix` is also a
    // parity fixture; here its base part must equal what AutoModel reads from it.
    let dir = fixture("bert-masked-lm-no-prefix");
    let base = AutoModel::from_pretrained(&dir.to_string_lossy()).unwrap();
    assert!(base.forward(&sample_inputs()).unwrap().pooler_output.is_none());
}

#[test]
fn revision_by_commit_hash_and_missing_ref() {
    let cache = make_cache(&fixture("bert-masked-lm"), None);
    let by_sha = offline(cache.path()).revision(SHA);
    assert!(AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &by_sha).is_ok());
    let by_branch = offline(cache.path()).revision("dev");
    let err = AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &by_branch).unwrap_err().to_string();
    assert!(err.contains("revision `dev`"), "{err}");
}

#[test]
fn subfolder_in_cache_and_in_folder() {
    let cache = make_cache(&fixture("bert-masked-lm"), Some("mlm"));
    let opts = offline(cache.path()).subfolder("mlm");
    assert!(AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &opts).is_ok());
    let bad = offline(cache.path()).subfolder("../../etc");
    let err = AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &bad).unwrap_err().to_string();
    assert!(err.contains("unsafe path"), "{err}");
}

#[test]
fn config_overrides_and_unused_kwargs() {
    let dir = fixture("bert-sequence-classification");
    let opts = LoadOptions::new().config_override("layer_norm_eps", 1e-5).config_override("not_a_config_field", 3);
    let loaded = AutoConfig::from_pretrained_with(&dir.to_string_lossy(), &opts).unwrap();
    assert_eq!(loaded.value.get("layer_norm_eps").and_then(|v| v.as_f64()), Some(1e-5));
    assert!(loaded.unused_kwargs.contains_key("not_a_config_field"));
    assert!(!loaded.unused_kwargs.contains_key("layer_norm_eps"));
    let model = AutoModelForSequenceClassification::from_pretrained_with(&dir.to_string_lossy(), &opts).unwrap();
    assert_eq!(model.unused_kwargs.len(), 1);
}

#[test]
fn config_from_a_json_file_and_typed_downcast() {
    let path: PathBuf = fixture("bert-base").join("config.json");
    let config = AutoConfig::from_pretrained(&path.to_string_lossy()).unwrap();
    let bert = config.downcast::<autocandle::bert::BertConfig>().expect("typed BertConfig");
    assert_eq!(bert.hidden_size, 32);
}

#[test]
fn from_config_builds_fresh_weights() {
    let config = AutoConfig::from_pretrained(&fixture("bert-base").to_string_lossy()).unwrap();
    let model = AutoModel::from_config(&config, &Device::Cpu).unwrap();
    let out = model.forward(&sample_inputs()).unwrap();
    assert_eq!(out.last_hidden_state.dims(), &[1, 5, 32]);
}

#[test]
fn dtype_request_and_auto() {
    let dir = fixture("bert-masked-lm");
    let half = LoadOptions::new().dtype(DType::F16);
    let model = AutoModelForMaskedLM::from_pretrained_with(&dir.to_string_lossy(), &half).unwrap().value;
    assert_eq!(model.dtype(), DType::F16);
    let auto = AutoModelForMaskedLM::from_pretrained(&dir.to_string_lossy()).unwrap();
    assert_eq!(auto.dtype(), DType::F32);
}
