//! `CrossEncoder` against sentence-transformers 6.3: every folder under
//! `tests/fixtures/cross-encoders/` (made by `tests/fixtures/make_ce_fixtures.py`) is loaded and
//! its `expected.json` replayed: num_labels, max_length and activation as sentence-transformers
//! picks them, the token ids of the (truncated) pairs, and each `predict` and `rank` call.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use autocandle::{CrossEncoder, PredictOptions, Predictions, RankOptions, ScoreActivation};
use serde_json::Value;

const ATOL: f32 = 1e-5;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cross-encoders");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "expected the cross-encoder fixtures under {}", root.display());
    dirs
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn pairs_of(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

fn as_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

/// The predict options of a case's `args`.
fn predict_options(args: &Value) -> PredictOptions {
    let mut opts = PredictOptions::new();
    if let Some(n) = args.get("batch_size").and_then(Value::as_u64) {
        opts = opts.batch_size(n as usize);
    }
    if let Some(path) = args.get("activation_fn").and_then(Value::as_str) {
        opts = opts.activation(ScoreActivation::from_torch_path(path).unwrap());
    }
    if let Some(yes) = args.get("apply_softmax").and_then(Value::as_bool) {
        opts = opts.apply_softmax(yes);
    }
    if let Some(p) = args.get("prompt").and_then(Value::as_str) {
        opts = opts.prompt(p);
    }
    if let Some(p) = args.get("prompt_name").and_then(Value::as_str) {
        opts = opts.prompt_name(p);
    }
    opts
}

fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

fn check_predict(model: &CrossEncoder, case: &Value, name: &str) -> f32 {
    let pairs = pairs_of(&case["pairs"]);
    let opts = predict_options(&case["args"]);
    let got = model.predict(&as_refs(&pairs), &opts).unwrap();
    let want = &case["scores"];
    let diff = match &got {
        Predictions::Scores(scores) => {
            assert_eq!(model.num_labels(), 1, "{name}");
            let want: Vec<f32> = serde_json::from_value(want.clone()).unwrap();
            max_diff(scores, &want)
        }
        Predictions::Labels(rows) => {
            assert!(model.num_labels() > 1, "{name}");
            let want: Vec<Vec<f32>> = serde_json::from_value(want.clone()).unwrap();
            assert_eq!(rows.len(), want.len(), "{name}");
            rows.iter().zip(&want).map(|(g, w)| max_diff(g, w)).fold(0.0, f32::max)
        }
    };
    println!("  predict {} pairs {}: max |diff| {diff:.2e}", pairs.len(), case["args"]);
    assert!(diff <= ATOL, "{name}: predict {}: max diff {diff}", case["args"]);
    diff
}

fn check_rank(model: &CrossEncoder, case: &Value, name: &str) -> f32 {
    let query = case["query"].as_str().unwrap();
    let documents = strings(&case["documents"]);
    let documents: Vec<&str> = documents.iter().map(String::as_str).collect();
    let args = &case["args"];
    let mut opts = RankOptions::new().predict(predict_options(args));
    if let Some(k) = args.get("top_k").and_then(Value::as_u64) {
        opts = opts.top_k(k as usize);
    }
    if let Some(yes) = args.get("return_documents").and_then(Value::as_bool) {
        opts = opts.return_documents(yes);
    }
    let got = model.rank(query, &documents, &opts);
    if let Some(error) = case.get("error").and_then(Value::as_str) {
        let message = got.unwrap_err().to_string();
        println!("  rank refused, as sentence-transformers: {message}");
        assert!(error.starts_with("CrossEncoder.rank() only works for models with num_labels=1"), "{error}");
        assert!(message.contains("CrossEncoder.rank() only works for models with num_labels=1"), "{name}: {message}");
        return 0.0;
    }
    let got = got.unwrap();
    let want = case["results"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{name}: rank {args}: {got:?}");
    let mut diff = 0f32;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.corpus_id as u64, w["corpus_id"].as_u64().unwrap(), "{name}: rank {args}: order {got:?}");
        diff = diff.max((g.score - w["score"].as_f64().unwrap() as f32).abs());
        assert_eq!(g.text.as_deref(), w.get("text").and_then(Value::as_str), "{name}: rank {args}");
    }
    let order: Vec<usize> = got.iter().map(|g| g.corpus_id).collect();
    println!("  rank {} documents {args}: order {order:?}, max |diff| {diff:.2e}", documents.len());
    assert!(diff <= ATOL, "{name}: rank {args}: max diff {diff}");
    diff
}

#[test]
fn cross_encoders_match_sentence_transformers() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let model = CrossEncoder::from_pretrained(dir.to_str().unwrap()).unwrap();
        println!(
            "{name}: num_labels {}, max_length {:?}, activation {} (sentence-transformers {})",
            model.num_labels(),
            model.max_length(),
            model.activation().torch_path(),
            expected["sentence_transformers_version"]
        );
        assert_eq!(model.num_labels() as u64, expected["num_labels"].as_u64().unwrap(), "{name}");
        assert_eq!(model.max_length().map(|n| n as u64), expected["max_length"].as_u64(), "{name}");
        assert_eq!(model.activation().torch_path(), expected["activation"].as_str().unwrap(), "{name}");

        // The token ids of each pair, truncated as sentence-transformers truncates.
        let pairs = pairs_of(&expected["preprocess"]["pairs"]);
        let want: Vec<Vec<u32>> = serde_json::from_value(expected["preprocess"]["input_ids"].clone()).unwrap();
        let batch = model.tokenize(&as_refs(&pairs)).unwrap();
        let got: Vec<Vec<u32>> = batch
            .input_ids
            .iter()
            .zip(&batch.attention_mask)
            .map(|(ids, mask)| ids.iter().zip(mask).filter(|(_, m)| **m != 0).map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(got, want, "{name}: token ids of the pairs");
        let truncated = want.iter().filter(|ids| Some(ids.len()) == model.max_length()).count();
        println!("  token ids of {} pairs equal ({truncated} at max_length)", pairs.len());

        let mut worst = 0f32;
        for case in expected["cases"].as_array().unwrap() {
            worst = worst.max(match case["kind"].as_str().unwrap() {
                "predict" => check_predict(&model, case, &name),
                "rank" => check_rank(&model, case, &name),
                other => panic!("{name}: unknown case kind {other}"),
            });
        }
        println!("PASS {name}: {} cases, max |diff| {worst:.2e}", expected["cases"].as_array().unwrap().len());
    }
}

#[test]
fn a_model_without_a_classification_head_is_refused() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bert-base");
    let err = CrossEncoder::from_pretrained(base.to_str().unwrap()).unwrap_err().to_string();
    println!("bert-base (BertModel): {err}");
    assert!(err.contains("no sequence-classification head") && err.contains("BertModel"), "{err}");
}

#[test]
fn batch_size_zero_unknown_prompts_and_settings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cross-encoders/bert-one-label");
    let mut model = CrossEncoder::from_pretrained(dir.to_str().unwrap()).unwrap();
    let pairs = [("hello world", "the cat sat on the mat"), ("a", "b")];
    let err = model.predict(&pairs, &PredictOptions::new().batch_size(0)).unwrap_err().to_string();
    assert!(err.contains("batch_size must be a positive integer"), "{err}");
    let err = model.predict(&pairs, &PredictOptions::new().prompt_name("query")).unwrap_err().to_string();
    assert!(err.contains("prompt name `query` is not one of the model's prompts"), "{err}");
    assert!(model.set_default_prompt_name(Some("query".to_owned())).is_err());
    println!("errors: {err}");

    // Settings as sentence-transformers' constructor arguments: the activation and max_length.
    let sigmoid = model.predict(&pairs, &PredictOptions::new()).unwrap().scores().unwrap().to_vec();
    model.set_activation(ScoreActivation::Identity);
    let logits = model.predict(&pairs, &PredictOptions::new()).unwrap().scores().unwrap().to_vec();
    for (s, l) in sigmoid.iter().zip(&logits) {
        assert!((s - 1.0 / (1.0 + (-l).exp())).abs() < 1e-6, "{s} vs sigmoid({l})");
    }
    model.set_max_length(Some(5));
    let short = model.tokenize(&pairs).unwrap();
    assert!(short.input_ids.iter().all(|r| r.len() == 5), "{:?}", short.input_ids);
    model.set_prompt("query", "query: ");
    model.set_default_prompt_name(Some("query".to_owned())).unwrap();
    assert_eq!(model.default_prompt_name(), Some("query"));
    println!("activation override and max_length 5 applied; sigmoid {sigmoid:?}, logits {logits:?}");
}
