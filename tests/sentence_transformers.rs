//! `SentenceTransformer` against Python sentence-transformers 6.3: every folder under
//! `tests/fixtures/sentence-transformers/` (made by `tests/fixtures/make_st_fixtures.py`) is
//! loaded, encoded with the keyword arguments of each `encode` call its `expected.json`
//! records, and compared with Python's embeddings, `similarity` and `similarity_pairwise`;
//! then the errors for malformed sentence-transformers folders, and the modules.json fallbacks.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use autocandle::pipelines::{FeatureExtractionPipeline, Pooling, PoolingConfig};
use autocandle::{Error, LoadOptions, SentenceEncodeOptions, SentenceTransformer};
use autocandle_tests::fixtures_root;
use serde_json::Value;

const TOLERANCE: f32 = 1e-5;

fn st_root() -> PathBuf {
    fixtures_root().join("sentence-transformers")
}

fn max_diff(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    assert_eq!(got.len(), want.len(), "row count");
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            assert_eq!(g.len(), w.len(), "row width");
            g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
        })
        .fold(0f32, f32::max)
}

fn options(kwargs: &Value) -> SentenceEncodeOptions {
    let mut opts = SentenceEncodeOptions::new();
    for (key, value) in kwargs.as_object().unwrap() {
        opts = match key.as_str() {
            "batch_size" => opts.batch_size(value.as_u64().unwrap() as usize),
            "prompt_name" => opts.prompt_name(value.as_str().unwrap()),
            "prompt" => opts.prompt(value.as_str().unwrap()),
            "normalize_embeddings" => opts.normalize_embeddings(value.as_bool().unwrap()),
            "truncate_dim" => opts.truncate_dim(value.as_u64().unwrap() as usize),
            other => panic!("encode argument `{other}` is not mapped"),
        };
    }
    opts
}

/// A model type whose feature is off in this (lean) build is skipped, not failed.
fn load(dir: &Path) -> Option<SentenceTransformer> {
    match SentenceTransformer::from_pretrained(dir.to_str().unwrap()) {
        Ok(model) => Some(model),
        Err(Error::NotCompiledIn { model_type, feature, .. }) => {
            println!("SKIP {}: model type `{model_type}` not compiled in (feature `{feature}`)", dir.display());
            None
        }
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

#[test]
fn every_sentence_transformers_fixture_matches_python() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(st_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 13, "expected the sentence-transformers fixtures, found {}", dirs.len());
    let mut checked = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let Some(model) = load(dir) else { continue };
        let sentences: Vec<&str> =
            expected["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(model.similarity_fn_name().name(), expected["similarity_fn_name"].as_str().unwrap(), "{name}");
        let mut first = None;
        for call in expected["encode"].as_array().unwrap() {
            let want: Vec<Vec<f32>> = serde_json::from_value(call["embeddings"].clone()).unwrap();
            let got = model.encode(&sentences, &options(&call["kwargs"])).unwrap();
            let diff = max_diff(&got, &want);
            println!("{name}: encode({}) [{} x {}] max |diff| = {diff:e}", call["kwargs"], got.len(), got[0].len());
            assert!(diff <= TOLERANCE, "{name}: encode({}) differs by {diff}", call["kwargs"]);
            first.get_or_insert(got);
        }
        let first = first.unwrap();
        let want: Vec<Vec<f32>> = serde_json::from_value(expected["similarity"].clone()).unwrap();
        let sim = model.similarity(&first, &first).unwrap();
        let diff = max_diff(&sim, &want);
        let mut rolled = first.clone();
        rolled.rotate_right(1);
        let want: Vec<f32> = serde_json::from_value(expected["similarity_pairwise_rolled"].clone()).unwrap();
        let pairwise = model.similarity_pairwise(&first, &rolled).unwrap();
        let pair_diff = max_diff(&[pairwise], &[want]);
        println!("{name}: similarity ({}) max |diff| = {diff:e}, pairwise {pair_diff:e}", model.similarity_fn_name());
        // Distances of unnormalised vectors are larger numbers: compare relatively.
        let scale = sim.iter().flatten().fold(1f32, |m, x| m.max(x.abs()));
        assert!(diff <= TOLERANCE * scale && pair_diff <= TOLERANCE * scale, "{name}: similarity differs");
        checked += 1;
    }
    println!("checked {checked} of {} sentence-transformers fixtures", dirs.len());
    assert!(checked > 0);
}

#[test]
fn model_settings_are_read() {
    let Some(m) = load(&st_root().join("prompts")) else { return };
    assert_eq!(m.default_prompt_name(), Some("query"));
    assert_eq!(m.prompts().get("document").map(String::as_str), Some("passage: "));
    let err = m.encode(&["a"], &SentenceEncodeOptions::new().prompt_name("nope")).unwrap_err().to_string();
    assert!(err.contains("prompt name `nope`") && err.contains("document, query"), "{err}");
    let Some(m) = load(&st_root().join("matryoshka")) else { return };
    assert_eq!((m.truncate_dim(), m.embedding_dimension()), (Some(9), Some(9)));
    let Some(m) = load(&st_root().join("max-seq-length")) else { return };
    assert_eq!(m.max_seq_length(), Some(7));
    let Some(m) = load(&st_root().join("lowercase")) else { return };
    assert_eq!(m.max_seq_length(), Some(9));
    let ids = |t: &str| m.tokenizer().encode(t).unwrap().input_ids;
    assert_eq!(ids("HELLO Paris"), ids("hello paris"));
    let Some(m) = load(&st_root().join("dense-normalize")) else { return };
    assert_eq!(m.embedding_dimension(), Some(7));
    assert_eq!(m.modules().len(), 4);
    assert!(m.encode(&["a"], &SentenceEncodeOptions::new().batch_size(0)).is_err());
    assert_eq!(m.encode(&[], &SentenceEncodeOptions::new()).unwrap().len(), 0);
}

/// A copy of fixture `name` in a temp dir, with `edit` applied.
fn edited(name: &str, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&st_root().join(name), tmp.path());
    edit(tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn load_err(dir: &Path) -> String {
    let err = SentenceTransformer::from_pretrained(dir.to_str().unwrap()).unwrap_err().to_string();
    println!("{err}");
    err
}

#[test]
fn malformed_folders_are_clear_errors() {
    if load(&st_root().join("dense-normalize")).is_none() {
        return;
    }
    let d = edited("dense-normalize", |d| std::fs::write(d.join("modules.json"), "{\"not\": \"a list\"}").unwrap());
    assert!(load_err(d.path()).contains("not a list of modules"));
    let d = edited("dense-normalize", |d| std::fs::write(d.join("modules.json"), "[{\"idx\": 0,").unwrap());
    assert!(load_err(d.path()).contains("modules.json"));
    let d = edited("dense-normalize", |d| {
        let text = std::fs::read_to_string(d.join("modules.json")).unwrap();
        std::fs::write(d.join("modules.json"), text.replace("base.modules.normalize.Normalize", "models.LayerNorm"))
            .unwrap();
    });
    let err = load_err(d.path());
    assert!(
        err.contains("module type `sentence_transformers.models.LayerNorm`") && err.contains("Dense, Normalize"),
        "{err}"
    );
    let d = edited("dense-normalize", |d| {
        let text = std::fs::read_to_string(d.join("2_Dense/config.json")).unwrap();
        std::fs::write(d.join("2_Dense/config.json"), text.replace("\"out_features\": 11", "\"out_features\": 12"))
            .unwrap();
    });
    let err = load_err(d.path());
    assert!(err.contains("linear.weight") && err.contains("[11, 16]") && err.contains("[12, 16]"), "{err}");
    let d = edited("dense-normalize", |d| {
        let text = std::fs::read_to_string(d.join("3_Dense/config.json")).unwrap();
        std::fs::write(d.join("3_Dense/config.json"), text.replace("\"in_features\": 11", "\"in_features\": 10"))
            .unwrap();
    });
    let err = load_err(d.path());
    assert!(err.contains("linear.weight") || err.contains("takes 10 features"), "{err}");
    let d = edited("dense-normalize", |d| std::fs::remove_file(d.join("2_Dense/model.safetensors")).unwrap());
    assert!(load_err(d.path()).contains("pytorch_model.bin"));
    let d = edited("prompts", |d| {
        let text = std::fs::read_to_string(d.join("1_Pooling/config.json")).unwrap();
        std::fs::write(d.join("1_Pooling/config.json"), text.replace("\"cls\"", "\"median\"")).unwrap();
    });
    assert!(load_err(d.path()).contains("unknown pooling mode `median`"));
    let d = edited("prompts", |d| {
        let text = std::fs::read_to_string(d.join("config_sentence_transformers.json")).unwrap();
        std::fs::write(d.join("config_sentence_transformers.json"), text.replace("\"query\",", "\"nope\",")).unwrap();
    });
    assert!(load_err(d.path()).contains("`default_prompt_name` `nope`"));
}

#[test]
fn missing_module_folders_fall_back_to_mean_pooling() {
    if load(&st_root().join("matryoshka")).is_none() {
        return;
    }
    // `matryoshka` pools by mean and normalises: without its 1_Pooling and 2_Normalize
    // folders, SentenceTransformer warns and still pools by mean, and normalises.
    let d = edited("matryoshka", |d| {
        std::fs::remove_dir_all(d.join("1_Pooling")).unwrap();
        std::fs::remove_dir_all(d.join("2_Normalize")).unwrap();
    });
    let dir = d.path().to_str().unwrap();
    let m = SentenceTransformer::from_pretrained(dir).unwrap();
    let full = load(&st_root().join("matryoshka")).unwrap();
    let opts = SentenceEncodeOptions::new();
    let diff =
        max_diff(&m.encode(&["hello world", "a"], &opts).unwrap(), &full.encode(&["hello world", "a"], &opts).unwrap());
    println!("matryoshka without its module folders: max |diff| = {diff:e}");
    assert!(diff <= 1e-6);
    // The feature-extraction pipeline: no explicit pooling is mean (and Normalize); an explicit
    // one wins and does not read modules.json at all (here a broken one).
    let pooling = PoolingConfig::from_pretrained(dir, &LoadOptions::default()).unwrap();
    assert_eq!(pooling, Some(PoolingConfig { modes: vec![Pooling::Mean], normalize: true }));
    std::fs::write(d.path().join("modules.json"), "not json").unwrap();
    assert!(FeatureExtractionPipeline::new(dir).is_err());
    let explicit = PoolingConfig::new(Pooling::WeightedMean, false);
    let p = FeatureExtractionPipeline::with_pooling(dir, &LoadOptions::default(), Some(explicit.clone())).unwrap();
    assert_eq!(p.pooling(), &explicit);
    assert_eq!(p.embed(&["hello world"]).unwrap()[0].len(), 16);
}
