//! `autocandle::pipelines` against Python's `transformers.pipeline(...)`: every case of
//! `tests/fixtures/pipelines/expected.json` (made by `tests/fixtures/make_pipeline_fixtures.py`)
//! is run through the matching pipeline; labels, tokens, words and offsets must be equal and
//! scores within 1e-4 (items whose Python scores tie within 1e-6 may come in either order).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::path::PathBuf;

use autocandle::pipelines::{
    pipeline, AggregationStrategy, ClassificationFunction, FeatureExtractionPipeline, FillMaskOptions,
    FillMaskPipeline, ImageClassificationOptions, ImageClassificationPipeline, Pipeline, Pooling, PoolingConfig,
    TextClassificationOptions, TextClassificationPipeline, TextGenerationOptions, TextGenerationPipeline,
    TokenClassificationOptions, TokenClassificationPipeline, ZeroShotImageClassificationPipeline,
    DEFAULT_HYPOTHESIS_TEMPLATE,
};
use serde_json::Value;

const TOL: f64 = 1e-4;
const TIE: f64 = 1e-6;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cases(task: &str) -> Vec<Value> {
    let path = repo_root().join("tests/fixtures/pipelines/expected.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases: Vec<Value> = all["cases"].as_array().unwrap().iter().filter(|c| c["task"] == task).cloned().collect();
    assert!(!cases.is_empty(), "no `{task}` case in expected.json");
    cases
}

fn model_path(case: &Value) -> String {
    repo_root().join(case["model"].as_str().unwrap()).to_string_lossy().into_owned()
}

/// Compare scored items (a key that must match exactly, and a score); items whose expected
/// scores tie within `TIE` may be in either order. Returns the largest score difference.
fn compare_scored(what: &str, got: &[(String, f32)], want: &[(String, f64)]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: got {got:?}, want {want:?}");
    let mut max_diff = 0f64;
    for (i, (key, score)) in got.iter().enumerate() {
        let j = if want[i].0 == *key {
            i
        } else {
            want.iter().position(|(k, s)| k == key && (s - want[i].1).abs() <= TIE).unwrap_or_else(|| {
                panic!("{what}: item {i} is {key:?}, want {:?} (got {got:?}, want {want:?})", want[i].0)
            })
        };
        let diff = (f64::from(*score) - want[j].1).abs();
        assert!(diff <= TOL, "{what}: {key:?} scores {score}, want {} (diff {diff:e})", want[j].1);
        max_diff = max_diff.max(diff);
    }
    max_diff
}

fn report(task: &str, n: usize, max_diff: f64) {
    println!("{task}: {n} cases, max |score diff| vs Python = {max_diff:e}");
}

#[test]
fn fill_mask_matches_python() {
    let cases = cases("fill-mask");
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = FillMaskPipeline::new(&model_path(case)).unwrap();
        let text = case["inputs"].as_str().unwrap();
        let kwargs = &case["kwargs"];
        let mut opts = FillMaskOptions::default();
        if let Some(k) = kwargs["top_k"].as_u64() {
            opts.top_k = k as usize;
        }
        if let Some(targets) = kwargs["targets"].as_array() {
            opts.targets = Some(targets.iter().map(|t| t.as_str().unwrap().to_owned()).collect());
        }
        let got = pipe.call_with(text, &opts).unwrap();
        // transformers returns the list itself for a single mask, a list per mask otherwise.
        let want: Vec<Value> = match case["output"][0].is_array() {
            true => case["output"].as_array().unwrap().clone(),
            false => vec![case["output"].clone()],
        };
        assert_eq!(got.len(), want.len(), "{text}: number of masks");
        for (got_row, want_row) in got.iter().zip(&want) {
            let want_row = want_row.as_array().unwrap();
            let key = |token: u64, token_str: &str, sequence: &str| format!("{token}|{token_str}|{sequence}");
            let got_items: Vec<(String, f32)> =
                got_row.iter().map(|p| (key(u64::from(p.token), &p.token_str, &p.sequence), p.score)).collect();
            let want_items: Vec<(String, f64)> = want_row
                .iter()
                .map(|p| {
                    let k = key(
                        p["token"].as_u64().unwrap(),
                        p["token_str"].as_str().unwrap(),
                        p["sequence"].as_str().unwrap(),
                    );
                    (k, p["score"].as_f64().unwrap())
                })
                .collect();
            max_diff = max_diff.max(compare_scored(text, &got_items, &want_items));
        }
    }
    report("fill-mask", cases.len(), max_diff);
}

#[test]
fn text_classification_matches_python() {
    let mut all = cases("text-classification");
    all.extend(cases("sentiment-analysis"));
    let mut max_diff = 0f64;
    for case in &all {
        let pipe = TextClassificationPipeline::new(&model_path(case)).unwrap();
        let kwargs = &case["kwargs"];
        let mut opts = TextClassificationOptions::default();
        if kwargs.get("top_k").is_some() {
            opts.top_k = kwargs["top_k"].as_u64().map(|k| k as usize);
        }
        opts.function_to_apply = kwargs["function_to_apply"].as_str().map(|f| match f {
            "sigmoid" => ClassificationFunction::Sigmoid,
            "softmax" => ClassificationFunction::Softmax,
            _ => ClassificationFunction::None,
        });
        let (text, pair) = match &case["inputs"] {
            Value::String(s) => (s.as_str(), None),
            other => (other["text"].as_str().unwrap(), other["text_pair"].as_str()),
        };
        let got = pipe.call_with(text, pair, &opts).unwrap();
        let got: Vec<(String, f32)> = got.into_iter().map(|l| (l.label, l.score)).collect();
        let want: Vec<(String, f64)> = case["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["label"].as_str().unwrap().to_owned(), l["score"].as_f64().unwrap()))
            .collect();
        max_diff = max_diff.max(compare_scored(&format!("{text} {kwargs}"), &got, &want));
    }
    report("text-classification", all.len(), max_diff);
}

#[test]
fn token_classification_matches_python() {
    let mut all = cases("token-classification");
    all.extend(cases("ner"));
    let mut max_diff = 0f64;
    for case in &all {
        let pipe = TokenClassificationPipeline::new(&model_path(case)).unwrap();
        let kwargs = &case["kwargs"];
        let mut opts = TokenClassificationOptions::default();
        if let Some(s) = kwargs["aggregation_strategy"].as_str() {
            opts.aggregation_strategy = s.parse::<AggregationStrategy>().unwrap();
        }
        if let Some(labels) = kwargs["ignore_labels"].as_array() {
            opts.ignore_labels = labels.iter().map(|l| l.as_str().unwrap().to_owned()).collect();
        }
        let text = case["inputs"].as_str().unwrap();
        let got = pipe.call_with(text, &opts).unwrap();
        let want = case["output"].as_array().unwrap();
        let grouped = opts.aggregation_strategy != AggregationStrategy::None;
        // Entities are positional: everything but the score must be equal, item by item.
        let key = |entity: &str, index: Option<u64>, word: &str, start: u64, end: u64| {
            format!("{entity}|{index:?}|{word}|{start}..{end}")
        };
        let got_items: Vec<(String, f32)> = got
            .iter()
            .map(|e| (key(&e.entity, e.index.map(|i| i as u64), &e.word, e.start as u64, e.end as u64), e.score))
            .collect();
        let want_items: Vec<(String, f64)> = want
            .iter()
            .map(|e| {
                let entity = if grouped { e["entity_group"].as_str() } else { e["entity"].as_str() };
                let k = key(
                    entity.unwrap(),
                    e["index"].as_u64(),
                    e["word"].as_str().unwrap(),
                    e["start"].as_u64().unwrap(),
                    e["end"].as_u64().unwrap(),
                );
                (k, e["score"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(
            got_items.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            want_items.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "{text} {kwargs}"
        );
        max_diff = max_diff.max(compare_scored(&format!("{text} {kwargs}"), &got_items, &want_items));
    }
    report("token-classification", all.len(), max_diff);
}

#[test]
fn image_classification_matches_python() {
    let cases = cases("image-classification");
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = ImageClassificationPipeline::new(&model_path(case)).unwrap();
        let kwargs = &case["kwargs"];
        let mut opts = ImageClassificationOptions::default();
        if let Some(k) = kwargs["top_k"].as_u64() {
            opts.top_k = Some(k as usize);
        }
        if kwargs["function_to_apply"] == "sigmoid" {
            opts.function_to_apply = Some(ClassificationFunction::Sigmoid);
        }
        let image = autocandle::open_image(repo_root().join(case["inputs"].as_str().unwrap())).unwrap();
        let got: Vec<(String, f32)> =
            pipe.call_with(&image, &opts).unwrap().into_iter().map(|l| (l.label, l.score)).collect();
        let want: Vec<(String, f64)> = case["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["label"].as_str().unwrap().to_owned(), l["score"].as_f64().unwrap()))
            .collect();
        max_diff = max_diff.max(compare_scored(&format!("{} {kwargs}", case["inputs"]), &got, &want));
    }
    report("image-classification", cases.len(), max_diff);
}

#[test]
fn text_generation_matches_python() {
    let cases = cases("text-generation");
    for case in &cases {
        let pipe = TextGenerationPipeline::new(&model_path(case)).unwrap();
        let kwargs = &case["kwargs"];
        let config = pipe
            .generation_config()
            .clone()
            .do_sample(kwargs["do_sample"].as_bool().unwrap())
            .max_new_tokens(kwargs["max_new_tokens"].as_u64().unwrap() as usize);
        let opts =
            TextGenerationOptions { new_text_only: kwargs["return_full_text"] == false, generation: Some(config) };
        let prompt = case["inputs"].as_str().unwrap();
        let want = case["output"][0]["generated_text"].as_str().unwrap();
        assert_eq!(pipe.call_with(prompt, &opts).unwrap(), want, "{prompt} {kwargs}");
        // Streaming gives the same text, piece by piece.
        let mut pieces = String::new();
        let streamed = pipe
            .stream(prompt, &opts, |piece| {
                pieces.push_str(piece);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(streamed, want);
        let new_text = if opts.new_text_only { want } else { &want[prompt.len()..] };
        assert_eq!(pieces, new_text, "streamed pieces of {prompt}");
    }
    println!("text-generation: {} cases, generated text equal to Python's", cases.len());
}

#[test]
fn text_generation_stream_can_stop_early() {
    let qwen = repo_root().join("tests/fixtures/qwen3-chat").to_string_lossy().into_owned();
    let pipe = TextGenerationPipeline::new(&qwen).unwrap();
    let config = pipe.generation_config().clone().do_sample(false).max_new_tokens(30);
    let opts = TextGenerationOptions { new_text_only: true, generation: Some(config.clone()) };
    let full = pipe.call_with("Rust is", &opts).unwrap();
    let mut calls = 0;
    let stopped = pipe
        .stream("Rust is", &opts, |_| {
            calls += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(calls, 1);
    assert!(full.starts_with(&stopped) && stopped.len() < full.len(), "{stopped:?} vs {full:?}");
}

#[test]
fn zero_shot_image_classification_matches_python() {
    let cases = cases("zero-shot-image-classification");
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = ZeroShotImageClassificationPipeline::new(&model_path(case)).unwrap();
        let kwargs = &case["kwargs"];
        let labels: Vec<&str> =
            kwargs["candidate_labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        let template = kwargs["hypothesis_template"].as_str().unwrap_or(DEFAULT_HYPOTHESIS_TEMPLATE);
        let image = autocandle::open_image(repo_root().join(case["inputs"].as_str().unwrap())).unwrap();
        let got: Vec<(String, f32)> =
            pipe.call_with(&image, &labels, template).unwrap().into_iter().map(|l| (l.label, l.score)).collect();
        let want: Vec<(String, f64)> = case["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["label"].as_str().unwrap().to_owned(), l["score"].as_f64().unwrap()))
            .collect();
        max_diff = max_diff.max(compare_scored(&format!("{} {kwargs}", case["inputs"]), &got, &want));
    }
    report("zero-shot-image-classification", cases.len(), max_diff);
}

fn max_abs_diff(got: &[Vec<f32>], want: &Value) -> f64 {
    let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).unwrap();
    assert_eq!(got.len(), want.len(), "rows");
    let mut max_diff = 0f64;
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.len(), w.len(), "columns");
        for (a, b) in g.iter().zip(w) {
            max_diff = max_diff.max((f64::from(*a) - b).abs());
        }
    }
    max_diff
}

#[test]
fn feature_extraction_matches_python() {
    let cases = cases("feature-extraction");
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = FeatureExtractionPipeline::new(&model_path(case)).unwrap();
        // No modules.json: embeddings default to mean pooling.
        assert_eq!(pipe.pooling(), &PoolingConfig::default());
        let got = pipe.call(case["inputs"].as_str().unwrap()).unwrap();
        max_diff = max_diff.max(max_abs_diff(&got, &case["output"][0]));
    }
    report("feature-extraction", cases.len(), max_diff);
    assert!(max_diff <= TOL, "max diff {max_diff}");
}

#[test]
fn sentence_embeddings_follow_modules_json() {
    let cases = cases("sentence-embeddings");
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = FeatureExtractionPipeline::new(&model_path(case)).unwrap();
        assert_eq!(pipe.pooling(), &PoolingConfig::new(Pooling::Mean, true), "from modules.json + 1_Pooling");
        let texts: Vec<&str> = case["inputs"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let mode = match case["kwargs"]["pooling"].as_str().unwrap() {
            "mean" => Pooling::Mean,
            "cls" => Pooling::Cls,
            _ => Pooling::Max,
        };
        let pooling = PoolingConfig::new(mode, case["kwargs"]["normalize"].as_bool().unwrap());
        let got = if pooling == *pipe.pooling() { pipe.embed(&texts) } else { pipe.embed_with(&texts, &pooling) };
        let diff = max_abs_diff(&got.unwrap(), &case["output"]);
        assert!(diff <= TOL, "{pooling:?}: max diff {diff}");
        max_diff = max_diff.max(diff);
    }
    report("sentence-embeddings", cases.len(), max_diff);
}

#[test]
fn pipeline_picks_the_typed_pipeline_by_task_or_alias() {
    let fixtures = repo_root().join("tests/fixtures");
    let masked = fixtures.join("bert-masked-lm").to_string_lossy().into_owned();
    let classifier = fixtures.join("pipelines/bert-sequence-classification").to_string_lossy().into_owned();
    let ner = fixtures.join("pipelines/bert-token-classification").to_string_lossy().into_owned();
    assert!(matches!(pipeline("fill-mask", &masked).unwrap(), Pipeline::FillMask(_)));
    assert!(matches!(pipeline("feature-extraction", &masked).unwrap(), Pipeline::FeatureExtraction(_)));
    let p = pipeline("sentiment-analysis", &classifier).unwrap();
    assert_eq!(p.task(), "text-classification");
    let Pipeline::TextClassification(p) = p else { panic!("not a text-classification pipeline") };
    assert_eq!(p.labels(), ["negative", "neutral", "positive"]);
    assert!(matches!(pipeline("ner", &ner).unwrap(), Pipeline::TokenClassification(_)));
    let vit = fixtures.join("pipelines/vit-image-classification").to_string_lossy().into_owned();
    assert!(matches!(pipeline("image-classification", &vit).unwrap(), Pipeline::ImageClassification(_)));
    let qwen = fixtures.join("qwen3-chat").to_string_lossy().into_owned();
    assert!(matches!(pipeline("text-generation", &qwen).unwrap(), Pipeline::TextGeneration(_)));
    let clip = fixtures.join("pipelines/clip-zero-shot-image-classification").to_string_lossy().into_owned();
    let p = pipeline("zero-shot-image-classification", &clip).unwrap();
    assert!(matches!(p, Pipeline::ZeroShotImageClassification(_)));

    let removed = pipeline("question-answering", &masked).unwrap_err().to_string();
    assert!(removed.contains("removed from transformers"), "{removed}");
    let unknown = pipeline("fil-mask", &masked).unwrap_err().to_string();
    assert!(unknown.contains("unknown task `fil-mask`"), "{unknown}");
}

#[test]
fn fill_mask_without_a_mask_is_an_error() {
    let masked = repo_root().join("tests/fixtures/bert-masked-lm").to_string_lossy().into_owned();
    let pipe = FillMaskPipeline::new(&masked).unwrap();
    let err = pipe.call("no mask here").unwrap_err().to_string();
    assert!(err.contains("no mask_token ([MASK])"), "{err}");
}

#[test]
fn token_classification_without_labels_to_ignore_keeps_every_token() {
    let ner = repo_root().join("tests/fixtures/pipelines/bert-token-classification").to_string_lossy().into_owned();
    let pipe = TokenClassificationPipeline::new(&ner).unwrap();
    let text = "hello world";
    let opts = TokenClassificationOptions { ignore_labels: vec![], ..TokenClassificationOptions::default() };
    let all = pipe.call_with(text, &opts).unwrap();
    assert_eq!(all.iter().map(|e| e.word.as_str()).collect::<Vec<_>>(), ["hello", "world"]);
    assert!(all.iter().all(|e| e.index.is_some() && text[e.start..e.end] == e.word));
}
