//! Files stay inside their model folder: a config, weights, an index shard, a tokenizer, a
//! chat template or a GGUF file that is a symbolic link leading outside the folder is refused
//! (unless `LoadOptions::allow_external_links`), while the Hub cache's `snapshots/` links into
//! `blobs/` keep working; and a corrupt cache entry (a dangling link, an empty or truncated
//! blob) is an error naming the file and suggesting `force_download`.
#![cfg(unix)]
// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use autocandle::{AutoConfig, AutoModelForMaskedLM, AutoTokenizer, Error, LoadOptions};
use autocandle_tests::{fixture, fixtures_root};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A temp dir with `model/` (a copy of the BERT fixture) and `outside/`.
fn folders() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    for entry in std::fs::read_dir(fixture("bert-masked-lm")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
    }
    (tmp, model, outside)
}

/// Move `model/<name>` to `outside/<name>` and leave a link to it in its place.
fn link_out(model: &Path, outside: &Path, name: &str) -> PathBuf {
    let target = outside.join(name);
    std::fs::rename(model.join(name), &target).unwrap();
    symlink(&target, model.join(name)).unwrap();
    target
}

fn assert_external(err: Error, file: &str) {
    let message = err.to_string();
    assert!(matches!(err, Error::ExternalLink { .. }), "{message}");
    for part in [file, "outside", "allow_external_links(true)", "--allow-external-links"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

fn trusting() -> LoadOptions {
    LoadOptions::new().allow_external_links(true)
}

#[test]
fn a_config_linked_outside_the_folder_is_refused() {
    let (_tmp, model, outside) = folders();
    link_out(&model, &outside, "config.json");
    let id = model.to_string_lossy();
    assert_external(AutoConfig::from_pretrained(&id).unwrap_err(), "config.json");
    assert_external(AutoModelForMaskedLM::from_pretrained(&id).map(drop).unwrap_err(), "config.json");
    assert_eq!(AutoConfig::from_pretrained_with(&id, &trusting()).unwrap().value.model_type(), "bert");
}

#[test]
fn a_config_linked_to_a_system_file_is_refused() {
    let (_tmp, model, _outside) = folders();
    std::fs::remove_file(model.join("config.json")).unwrap();
    symlink("/etc/passwd", model.join("config.json")).unwrap();
    let err = AutoConfig::from_pretrained(&model.to_string_lossy()).unwrap_err();
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
    assert!(matches!(err, Error::ExternalLink { .. }), "{err}");
}

#[test]
fn weights_linked_outside_the_folder_are_refused() {
    let (_tmp, model, outside) = folders();
    link_out(&model, &outside, "model.safetensors");
    let id = model.to_string_lossy();
    assert_external(AutoModelForMaskedLM::from_pretrained(&id).map(drop).unwrap_err(), "model.safetensors");
    assert!(AutoModelForMaskedLM::from_pretrained_with(&id, &trusting()).is_ok());
}

#[test]
fn an_index_shard_linked_outside_the_folder_is_refused() {
    let (_tmp, model, outside) = folders();
    let shard = "model-00001-of-00001.safetensors";
    let tensors = candle_core::safetensors::load(model.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let weight_map: serde_json::Map<String, serde_json::Value> =
        tensors.keys().map(|k| (k.clone(), serde_json::Value::from(shard))).collect();
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(model.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::rename(model.join("model.safetensors"), model.join(shard)).unwrap();
    let id = model.to_string_lossy().into_owned();
    // The shard inside the folder loads; moved out behind a link, it is refused.
    assert!(AutoModelForMaskedLM::from_pretrained(&id).is_ok());
    link_out(&model, &outside, shard);
    assert_external(AutoModelForMaskedLM::from_pretrained(&id).map(drop).unwrap_err(), shard);
    assert!(AutoModelForMaskedLM::from_pretrained_with(&id, &trusting()).is_ok());
}

#[test]
fn tokenizer_files_linked_outside_the_folder_are_refused() {
    let (_tmp, model, outside) = folders();
    let id = model.to_string_lossy().into_owned();
    for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt"] {
        if name == "vocab.txt" {
            // Read only without `tokenizer.json` (a WordPiece tokenizer built from it).
            std::fs::remove_file(model.join("tokenizer.json")).unwrap();
        }
        let target = link_out(&model, &outside, name);
        assert_external(AutoTokenizer::from_pretrained(&id).map(drop).unwrap_err(), name);
        assert!(AutoTokenizer::from_pretrained_with(&id, &trusting()).is_ok(), "{name}");
        std::fs::remove_file(model.join(name)).unwrap();
        std::fs::rename(&target, model.join(name)).unwrap();
    }
    assert!(AutoTokenizer::from_pretrained(&id).is_ok());
}

/// Chat templates are read only with autocandle's `chat` feature (in `all`); without it the
/// tokenizer loads without them.
fn assert_template_refused(id: &str, file: &str) {
    match AutoTokenizer::from_pretrained(id) {
        Err(err) => assert_external(err, file),
        Ok(_) => {
            if cfg!(feature = "all") {
                panic!("the link of `{file}` was followed");
            }
        }
    }
}

#[test]
fn chat_templates_linked_outside_the_folder_are_refused() {
    let (_tmp, model, outside) = folders();
    let id = model.to_string_lossy().into_owned();
    std::fs::write(outside.join("chat_template.jinja"), "{{ messages }}").unwrap();
    symlink(outside.join("chat_template.jinja"), model.join("chat_template.jinja")).unwrap();
    assert_template_refused(&id, "chat_template.jinja");
    std::fs::remove_file(model.join("chat_template.jinja")).unwrap();
    std::fs::create_dir(model.join("additional_chat_templates")).unwrap();
    symlink(outside.join("chat_template.jinja"), model.join("additional_chat_templates/tools.jinja")).unwrap();
    assert_template_refused(&id, "tools.jinja");
}

#[test]
fn a_gguf_file_linked_outside_the_folder_is_refused() {
    let (_tmp, model, outside) = folders();
    let name = "gpt2-bpe.gguf";
    std::fs::copy(fixtures_root().join("gguf/tokenizers").join(name), outside.join(name)).unwrap();
    symlink(outside.join(name), model.join(name)).unwrap();
    let id = model.to_string_lossy();
    let opts = LoadOptions::new().gguf_file(name);
    assert_external(AutoTokenizer::from_pretrained_with(&id, &opts).map(drop).unwrap_err(), name);
    assert!(AutoTokenizer::from_pretrained_with(&id, &opts.allow_external_links(true)).is_ok());
}

#[test]
fn links_inside_the_folder_and_a_linked_folder_load() {
    let (tmp, model, _outside) = folders();
    // A file linked to another place inside the folder (relative and absolute links).
    std::fs::create_dir(model.join("weights")).unwrap();
    std::fs::rename(model.join("model.safetensors"), model.join("weights/real.safetensors")).unwrap();
    symlink("weights/real.safetensors", model.join("model.safetensors")).unwrap();
    std::fs::rename(model.join("config.json"), model.join("weights/config.json")).unwrap();
    symlink(model.join("weights/config.json"), model.join("config.json")).unwrap();
    assert!(AutoModelForMaskedLM::from_pretrained(&model.to_string_lossy()).is_ok());
    // The folder itself reached through a link.
    let alias = tmp.path().join("alias");
    symlink(&model, &alias).unwrap();
    assert!(AutoModelForMaskedLM::from_pretrained(&alias.to_string_lossy()).is_ok());
}

#[test]
fn a_subfolder_linked_outside_the_folder_is_refused() {
    let (tmp, model, _outside) = folders();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::rename(&model, &elsewhere).unwrap();
    std::fs::create_dir(&model).unwrap();
    symlink(&elsewhere, model.join("sub")).unwrap();
    let id = model.to_string_lossy();
    let err = AutoConfig::from_pretrained_with(&id, &LoadOptions::new().subfolder("sub")).unwrap_err();
    assert_external(err, "config.json");
}

/// A Hub cache of `org/tiny-bert` laid out as `huggingface_hub` writes it: every snapshot file
/// a relative link `../../blobs/<etag>` to its blob.
fn linked_cache() -> (tempfile::TempDir, PathBuf) {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--org--tiny-bert");
    let snapshot = repo.join("snapshots").join(SHA);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), SHA).unwrap();
    for (i, entry) in std::fs::read_dir(fixture("bert-masked-lm")).unwrap().enumerate() {
        let path = entry.unwrap().path();
        let etag = format!("{i:040x}");
        std::fs::copy(&path, repo.join("blobs").join(&etag)).unwrap();
        symlink(format!("../../blobs/{etag}"), snapshot.join(path.file_name().unwrap())).unwrap();
    }
    (cache, snapshot)
}

fn offline(cache: &Path) -> LoadOptions {
    LoadOptions::new().cache_dir(cache).local_files_only(true)
}

#[test]
fn the_hub_cache_links_into_blobs_keep_working() {
    let (cache, snapshot) = linked_cache();
    let opts = offline(cache.path());
    assert!(AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &opts).is_ok());
    assert!(AutoTokenizer::from_pretrained_with("org/tiny-bert", &opts).is_ok());
    // The snapshot folder given as a local folder: its links into `blobs/` work too.
    assert!(AutoModelForMaskedLM::from_pretrained(&snapshot.to_string_lossy()).is_ok());
}

#[test]
fn a_snapshot_link_outside_the_cache_repo_is_refused() {
    let (cache, snapshot) = linked_cache();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("config.json");
    std::fs::copy(fixture("bert-masked-lm").join("config.json"), &target).unwrap();
    std::fs::remove_file(snapshot.join("config.json")).unwrap();
    symlink(&target, snapshot.join("config.json")).unwrap();
    let err = AutoConfig::from_pretrained_with("org/tiny-bert", &offline(cache.path())).unwrap_err();
    assert!(matches!(err, Error::ExternalLink { .. }), "{err}");
    assert!(err.to_string().contains(&target.display().to_string()), "{err}");
    // Another repo's blobs are outside too.
    let other = cache.path().join("models--org--other/blobs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::rename(&target, other.join("abc")).unwrap();
    std::fs::remove_file(snapshot.join("config.json")).unwrap();
    symlink("../../../models--org--other/blobs/abc", snapshot.join("config.json")).unwrap();
    let err = AutoConfig::from_pretrained_with("org/tiny-bert", &offline(cache.path())).unwrap_err();
    assert!(matches!(err, Error::ExternalLink { .. }), "{err}");
}

fn assert_corrupt(err: Error, file: &str) {
    let message = err.to_string();
    for part in [file, "force_download"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[test]
fn a_dangling_snapshot_link_says_which_file_and_to_force_download() {
    let (cache, snapshot) = linked_cache();
    let blob = std::fs::read_link(snapshot.join("model.safetensors")).unwrap();
    std::fs::remove_file(snapshot.join(&blob)).unwrap();
    let err =
        AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &offline(cache.path())).map(drop).unwrap_err();
    assert!(matches!(err, Error::CorruptCache { .. }), "{err}");
    assert_corrupt(err, "model.safetensors");
    // The same through the snapshot folder given as a local folder.
    let err = AutoModelForMaskedLM::from_pretrained(&snapshot.to_string_lossy()).map(drop).unwrap_err();
    assert!(matches!(err, Error::CorruptCache { .. }), "{err}");
}

#[test]
fn an_empty_cache_entry_says_which_file_and_to_force_download() {
    let (cache, snapshot) = linked_cache();
    std::fs::write(snapshot.join("config.json"), "").unwrap();
    let err = AutoConfig::from_pretrained_with("org/tiny-bert", &offline(cache.path())).unwrap_err();
    assert!(matches!(err, Error::CorruptCache { .. }), "{err}");
    assert_corrupt(err, "config.json");
}

#[test]
fn a_truncated_blob_says_which_file_and_to_force_download() {
    let (cache, snapshot) = linked_cache();
    let opts = offline(cache.path());
    // Weights cut short.
    let weights = std::fs::read(snapshot.join("model.safetensors")).unwrap();
    std::fs::write(snapshot.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    let err = AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &opts).map(drop).unwrap_err();
    assert_corrupt(err, "model.safetensors");
    // A JSON file cut short.
    let config = std::fs::read(snapshot.join("config.json")).unwrap();
    std::fs::write(snapshot.join("config.json"), &config[..config.len() / 2]).unwrap();
    let err = AutoConfig::from_pretrained_with("org/tiny-bert", &opts).unwrap_err();
    assert_corrupt(err, "config.json");
}
