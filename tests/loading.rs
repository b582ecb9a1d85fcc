//! Loading semantics: the Hub cache layout with offline mode, revisions, subfolders, options,
//! config overrides, `from_config`, checkpoint name conventions, weight files (safetensors and
//! PyTorch `.bin`, sharded, variants), `base_model_prefix` both ways with the loading report,
//! mismatched sizes, dtypes, and paths that would leave the snapshot.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autocandle::{
    AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer, DType, Device,
    Error, LoadOptions, ModelInputs, Task, TaskModel, Tensor,
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

// ---------------------------------------------------------------------------------------------
// Weight files, `.bin` checkpoints, base-model prefixes, loading reports, dtypes, unsafe paths
// (fixtures: `tests/fixtures/loading/`, made by `tests/fixtures/make_loading_fixtures.py`).

fn loading_fixture(name: &str) -> PathBuf {
    fixture("loading").join(name)
}

/// A temp copy of the files of `dir` (not its subdirectories).
fn copy_dir(dir: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    tmp
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(value.as_object_mut().unwrap());
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

fn tiny_inputs() -> ModelInputs {
    ModelInputs::new(Tensor::new(&[[2u32, 10, 11, 12, 3]], &Device::Cpu).unwrap())
}

fn mlm_logits(dir: &Path, opts: &LoadOptions) -> autocandle::Result<(Vec<f32>, autocandle::LoadingReport)> {
    let loaded = AutoModelForMaskedLM::from_pretrained_with(&dir.to_string_lossy(), opts)?;
    let logits = loaded.value.forward(&tiny_inputs())?.logits.to_dtype(DType::F32)?;
    Ok((logits.flatten_all()?.to_vec1()?, loaded.report))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn pytorch_bin_checkpoints_load_like_safetensors() {
    let opts = LoadOptions::default();
    let (want, report) = mlm_logits(&loading_fixture("bert-tiny"), &opts).unwrap();
    assert!(report.is_empty(), "{report}");
    // One `.bin` (tied tensors saved twice, sharing a storage), and two shards with an index.
    for name in ["bert-tiny-bin", "bert-tiny-bin-sharded"] {
        let (got, report) = mlm_logits(&loading_fixture(name), &opts).unwrap();
        assert_eq!(got, want, "{name}");
        assert!(report.is_empty(), "{name}: {report}");
    }
    // `use_safetensors`: only one format is looked for.
    let err = mlm_logits(&loading_fixture("bert-tiny-bin"), &LoadOptions::new().use_safetensors(true)).unwrap_err();
    assert!(matches!(err, Error::WeightsNotFound { .. }) && err.to_string().contains("model.safetensors"), "{err}");
    let err = mlm_logits(&loading_fixture("bert-tiny"), &LoadOptions::new().use_safetensors(false)).unwrap_err();
    assert!(err.to_string().contains("pytorch_model.bin.index.json"), "{err}");
}

#[test]
fn variants_name_files_as_transformers_does() {
    let dir = loading_fixture("bert-tiny-variants");
    let (f32_logits, _) = mlm_logits(&loading_fixture("bert-tiny"), &LoadOptions::default()).unwrap();
    let (plain, _) = mlm_logits(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(plain, f32_logits);
    // `pytorch_model.fp16.bin` (HalfStorage, one tensor saved transposed) and
    // `pytorch_model.bf16.bin`, read into the config's f32: close to f32, not equal.
    for (variant, tol) in [("fp16", 5e-2), ("bf16", 2e-1)] {
        let (got, report) = mlm_logits(&dir, &LoadOptions::new().variant(variant)).unwrap();
        let diff = max_diff(&got, &f32_logits);
        assert!(diff > 0.0 && diff < tol, "{variant}: {diff}");
        assert!(report.is_empty(), "{variant}: {report}");
    }
    // A variant with no file says what it looked for, and that the plain files exist.
    let err = mlm_logits(&dir, &LoadOptions::new().variant("int8")).unwrap_err().to_string();
    assert!(err.contains("model.int8.safetensors") && err.contains("pytorch_model.bin.index.int8.json"), "{err}");
    assert!(err.contains("without the variant `int8`"), "{err}");
    // The safetensors forms: `model.fp16.safetensors`, `model.safetensors.index.fp16.json`.
    let tmp = copy_dir(&loading_fixture("bert-tiny"));
    std::fs::rename(tmp.path().join("model.safetensors"), tmp.path().join("model.fp16.safetensors")).unwrap();
    let (got, _) = mlm_logits(tmp.path(), &LoadOptions::new().variant("fp16")).unwrap();
    assert_eq!(got, f32_logits);
    let tmp = copy_dir(&loading_fixture("bert-tiny-bin-sharded"));
    std::fs::rename(
        tmp.path().join("pytorch_model.bin.index.json"),
        tmp.path().join("pytorch_model.bin.index.fp16.json"),
    )
    .unwrap();
    let (got, _) = mlm_logits(tmp.path(), &LoadOptions::new().variant("fp16")).unwrap();
    assert_eq!(got, f32_logits);
    // A variant is a name, never a path.
    let err = mlm_logits(&dir, &LoadOptions::new().variant("../x")).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
}

#[test]
fn malicious_pickle_is_refused_by_name() {
    let dir = loading_fixture("malicious");
    let err = AutoModel::from_pretrained(&dir.to_string_lossy()).unwrap_err();
    assert!(matches!(&err, Error::UnsafePickle { global, .. } if global == "os.system"), "{err}");
    let message = err.to_string();
    assert!(message.contains("`os.system`") && message.contains("pytorch_model.bin"), "{message}");
}

#[test]
fn truncated_or_corrupt_bin_is_an_error_not_a_panic() {
    let tmp = copy_dir(&loading_fixture("bert-tiny-bin"));
    let path = tmp.path().join("pytorch_model.bin");
    let bytes = std::fs::read(&path).unwrap();
    let mut lengths: Vec<usize> = (0..bytes.len()).step_by(61).collect();
    lengths.extend([1, 3, 4, 22, bytes.len() - 22, bytes.len() - 1]);
    for len in lengths {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = mlm_logits(tmp.path(), &LoadOptions::default()).expect_err("a truncated .bin must not load");
        assert!(matches!(err, Error::Pickle { .. } | Error::Io { .. }), "{len}: {err}");
    }
    // Bytes overwritten anywhere (pickle, zip records, tensor data): an error or a load, never
    // a panic.
    for at in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&path, &bad).unwrap();
        let _ = mlm_logits(tmp.path(), &LoadOptions::default());
    }
}

#[test]
fn index_entries_subfolders_and_file_names_stay_inside_the_snapshot() {
    // `weight_map` entries of safetensors and `.bin` indexes.
    for (fixture_dir, index) in [
        (fixture("bert-sharded"), "model.safetensors.index.json"),
        (loading_fixture("bert-tiny-bin-sharded"), "pytorch_model.bin.index.json"),
    ] {
        for evil in ["../../etc/passwd", "/etc/passwd", "shards/../../../x.bin", "C:/Windows/x.bin", "a\\..\\b"] {
            let tmp = copy_dir(&fixture_dir);
            edit_json(&tmp.path().join(index), |j| {
                let map = j.get_mut("weight_map").unwrap().as_object_mut().unwrap();
                let first = map.keys().next().unwrap().clone();
                map.insert(first, evil.into());
            });
            let err = AutoModel::from_pretrained(&tmp.path().to_string_lossy()).unwrap_err();
            assert!(matches!(err, Error::UnsafePath { .. }), "{evil}: {err}");
            assert!(err.to_string().contains(evil), "{err}");
        }
    }
    // Subfolders, in a folder and in the Hub cache.
    let cache = make_cache(&fixture("bert-masked-lm"), None);
    let dir = fixture("bert-masked-lm");
    for evil in ["..", "../bert-base", "/etc", "a/../../b", "C:/x"] {
        let opts = offline(cache.path()).subfolder(evil);
        let err = AutoModelForMaskedLM::from_pretrained_with("org/tiny-bert", &opts).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{evil}: {err}");
        let opts = LoadOptions::new().subfolder(evil);
        let err = AutoModelForMaskedLM::from_pretrained_with(&dir.to_string_lossy(), &opts).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{evil}: {err}");
    }
    // File names asked of a source.
    let source = autocandle::hub::ModelSource::resolve("org/tiny-bert", &offline(cache.path())).unwrap();
    for evil in ["../config.json", "/etc/passwd", "../../../../refs/main", ""] {
        assert!(matches!(source.file(evil), Err(Error::UnsafePath { .. })), "{evil}");
    }
    assert!(source.file("config.json").is_ok());
}

/// The weights of a fixture folder, by name.
fn fixture_weights(dir: &Path) -> HashMap<String, Tensor> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".safetensors") && name != "reference.safetensors" {
            all.extend(candle_core::safetensors::load(&path, &Device::Cpu).unwrap());
        }
    }
    all
}

fn sorted_strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

#[test]
fn base_model_prefix_both_ways_reports_what_transformers_reports() {
    // For every head fixture: the head from a base checkpoint made of its own weights (the keys
    // under the prefix, without it), and the base model from the head checkpoint; the missing
    // and unexpected keys must be transformers' (`reports.json`, from `output_loading_info`).
    let reports: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(loading_fixture("reports.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let (mut heads, mut bases) = (0, 0);
    for (name, entry) in &reports {
        let dir = fixture(name);
        let task: Task = entry["task"].as_str().unwrap().parse().unwrap();
        if let Some(expected) = entry.get("head_from_base") {
            let prefix = format!("{}.", entry["prefix"].as_str().unwrap());
            let base: HashMap<String, Tensor> = fixture_weights(&dir)
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), v)))
                .collect();
            let tmp = tempfile::tempdir().unwrap();
            std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
            candle_core::safetensors::save(&base, tmp.path().join("model.safetensors")).unwrap();
            match TaskModel::from_pretrained_with(task, &tmp.path().to_string_lossy(), &LoadOptions::default()) {
                Ok(loaded) => {
                    let got = (loaded.report.missing_keys.clone(), loaded.report.unexpected_keys.clone());
                    let mut want = (sorted_strings(&expected["missing"]), sorted_strings(&expected["unexpected"]));
                    // transformers' BERT has a second name for the LM bias (`decoder.bias`, tied to
                    // `cls.predictions.bias`) that it reports too; autocandle's has one tensor.
                    want.0.retain(|k| k != "cls.predictions.decoder.bias");
                    if got != want {
                        failures.push(format!("{name} from its base: got {got:?}, transformers {want:?}"));
                    }
                    assert!(loaded.report.mismatched_keys.is_empty());
                    heads += 1;
                }
                Err(e) => failures.push(format!("{name} from its base: {e}")),
            }
        }
        if let Some(expected) = entry.get("head_without_module") {
            // Heads whose base is not under the prefix (T5's LM, CLIP's and SigLIP's
            // classifiers): the checkpoint without the head's own module.
            let module = format!("{}.", expected["module"].as_str().unwrap());
            let mut weights = fixture_weights(&dir);
            weights.retain(|k, _| !k.starts_with(&module));
            let tmp = tempfile::tempdir().unwrap();
            std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
            candle_core::safetensors::save(&weights, tmp.path().join("model.safetensors")).unwrap();
            match TaskModel::from_pretrained_with(task, &tmp.path().to_string_lossy(), &LoadOptions::default()) {
                Ok(loaded) => {
                    let got = (loaded.report.missing_keys.clone(), loaded.report.unexpected_keys.clone());
                    let want = (sorted_strings(&expected["missing"]), sorted_strings(&expected["unexpected"]));
                    if got != want {
                        failures.push(format!("{name} without `{module}`: got {got:?}, transformers {want:?}"));
                    }
                    heads += 1;
                }
                Err(e) => failures.push(format!("{name} without `{module}`: {e}")),
            }
        }
        if let Some(expected) = entry.get("base_from_head") {
            match TaskModel::from_pretrained_with(Task::Base, &dir.to_string_lossy(), &LoadOptions::default()) {
                Ok(loaded) => {
                    let want = sorted_strings(&expected["unexpected"]);
                    if loaded.report.unexpected_keys != want || !loaded.report.missing_keys.is_empty() {
                        failures.push(format!("base from {name}: got {:?}, transformers {want:?}", loaded.report));
                    }
                    bases += 1;
                }
                Err(e) => failures.push(format!("base from {name}: {e}")),
            }
        }
    }
    println!("{heads} heads from base checkpoints, {bases} base models from head checkpoints");
    assert!(failures.is_empty(), "{} deviations:\n{}", failures.len(), failures.join("\n"));
    assert!(heads >= 50 && bases >= 50, "{heads} {bases}");
}

#[test]
fn fresh_head_weights_run_and_a_missing_base_tensor_is_an_error() {
    // `bert-base` is a `BertModel` checkpoint (no prefix): every BERT head loads from it with a
    // fresh head and runs.
    let base = fixture("bert-base");
    let tmp = copy_dir(&base);
    edit_json(&tmp.path().join("config.json"), |c| {
        c.insert("num_labels".into(), 3.into());
    });
    let loaded = AutoModelForSequenceClassification::from_pretrained_with(
        &tmp.path().to_string_lossy(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded.report.missing_keys, ["classifier.bias", "classifier.weight"]);
    let logits = loaded.value.forward(&sample_inputs()).unwrap().logits;
    assert_eq!(logits.dims(), [1, 3]);
    // Two loads draw two heads, both finite.
    let values: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));

    // The base model's own tensors stay required: drop one from the base checkpoint.
    let mut weights = fixture_weights(&base);
    weights.remove("encoder.layer.1.output.dense.weight").unwrap();
    candle_core::safetensors::save(&weights, tmp.path().join("model.safetensors")).unwrap();
    let err = AutoModelForSequenceClassification::from_pretrained(&tmp.path().to_string_lossy()).unwrap_err();
    assert!(
        matches!(&err, Error::TensorNotFound { name, .. } if name == "bert.encoder.layer.1.output.dense.weight"),
        "{err}"
    );
    // And a checkpoint of another architecture is not a "base checkpoint".
    let tmp = copy_dir(&base);
    std::fs::copy(fixture("gpt2-base").join("model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    let err = AutoModelForMaskedLM::from_pretrained(&tmp.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::TensorNotFound { .. }), "{err}");
}

#[test]
fn mismatched_sizes_are_errors_unless_ignored() {
    let dir = fixture("bert-sequence-classification");
    let opts = LoadOptions::new().config_override("num_labels", 5).config_override("id2label", serde_json::Value::Null);
    let err = AutoModelForSequenceClassification::from_pretrained_with(&dir.to_string_lossy(), &opts).unwrap_err();
    assert!(matches!(err, Error::TensorShape { .. }) && err.to_string().contains("classifier"), "{err}");
    let opts = opts.ignore_mismatched_sizes(true);
    let loaded = AutoModelForSequenceClassification::from_pretrained_with(&dir.to_string_lossy(), &opts).unwrap();
    let mismatched: Vec<(&str, &[usize], &[usize])> = loaded
        .report
        .mismatched_keys
        .iter()
        .map(|m| (m.name.as_str(), m.checkpoint_shape.as_slice(), m.model_shape.as_slice()))
        .collect();
    assert_eq!(
        mismatched,
        [("classifier.bias", &[3][..], &[5][..]), ("classifier.weight", &[3, 32][..], &[5, 32][..])]
    );
    assert!(loaded.report.missing_keys.is_empty() && loaded.report.unexpected_keys.is_empty());
    assert_eq!(loaded.value.forward(&sample_inputs()).unwrap().logits.dims(), [1, 5]);
}

#[test]
fn every_dtype_loads_and_runs_close_to_f32() {
    let dir = fixture("bert-base");
    let hidden = |opts: &LoadOptions| -> (DType, Vec<f32>) {
        let model = AutoModel::from_pretrained_with(&dir.to_string_lossy(), opts).unwrap().value;
        let out = model.forward(&sample_inputs()).unwrap().last_hidden_state;
        (model.dtype(), out.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap())
    };
    let (dtype, want) = hidden(&LoadOptions::default());
    assert_eq!(dtype, DType::F32); // the config says `"dtype": "float32"`
    for (requested, tol) in [(DType::F32, 0.0), (DType::F16, 2e-2), (DType::BF16, 1.5e-1)] {
        let (dtype, got) = hidden(&LoadOptions::new().dtype(requested));
        assert_eq!(dtype, requested);
        let diff = max_diff(&got, &want);
        assert!(diff <= tol, "{requested:?}: {diff}");
    }
    // `auto` follows `dtype`, then the older `torch_dtype`; a request overrides both.
    let tmp = copy_dir(&dir);
    let config = tmp.path().join("config.json");
    for (dtype, torch_dtype, want) in [
        (Some("float16"), None, DType::F16),
        (None, Some("bfloat16"), DType::BF16),
        (Some("bfloat16"), Some("float16"), DType::BF16),
    ] {
        edit_json(&config, |c| {
            c.remove("dtype");
            c.remove("torch_dtype");
            if let Some(d) = dtype {
                c.insert("dtype".into(), d.into());
            }
            if let Some(d) = torch_dtype {
                c.insert("torch_dtype".into(), d.into());
            }
        });
        let model = AutoModel::from_pretrained(&tmp.path().to_string_lossy()).unwrap();
        assert_eq!(model.dtype(), want, "{dtype:?} {torch_dtype:?}");
        let forced =
            AutoModel::from_pretrained_with(&tmp.path().to_string_lossy(), &LoadOptions::new().dtype(DType::F32));
        assert_eq!(forced.unwrap().value.dtype(), DType::F32);
    }
}

#[test]
fn architectures_do_not_override_the_task() {
    // `architectures` only chooses among classes that serve the task (the unit test of
    // `select_registration` covers several); naming a class of another task changes nothing.
    let tmp = copy_dir(&fixture("bert-masked-lm"));
    let want = logits_of(&fixture("bert-masked-lm").to_string_lossy(), &LoadOptions::default());
    for arch in ["BertForPreTraining", "BertForMaskedLM", "NotAClass"] {
        edit_json(&tmp.path().join("config.json"), |c| {
            c.insert("architectures".into(), serde_json::json!([arch]));
        });
        assert_eq!(logits_of(&tmp.path().to_string_lossy(), &LoadOptions::default()), want, "{arch}");
    }
}
