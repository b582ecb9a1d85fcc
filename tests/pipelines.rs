//! `autocandle::pipelines` against Python's `transformers.pipeline(...)`: every case of
//! `tests/fixtures/pipelines/expected.json` (made by `tests/fixtures/make_pipeline_fixtures.py`)
//! is run through the matching pipeline; labels, tokens, words and offsets must be equal and
//! scores within 1e-4 (items whose Python scores tie within 1e-6 may come in either order).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::path::PathBuf;

use autocandle::pipelines::{
    pipeline, AggregationStrategy, Answer, ClassificationFunction, FeatureExtractionPipeline, FillMaskOptions,
    FillMaskPipeline, ImageClassificationOptions, ImageClassificationPipeline, Pipeline, Pooling, PoolingConfig,
    QuestionAnsweringOptions, QuestionAnsweringPipeline, SummarizationPipeline, Text2TextGenerationPipeline,
    Text2TextOptions, TextClassificationOptions, TextClassificationPipeline, TextGenerationOptions,
    TextGenerationPipeline, TokenClassificationOptions, TokenClassificationPipeline, TranslationPipeline,
    ZeroShotImageClassificationPipeline, DEFAULT_HYPOTHESIS_TEMPLATE,
};
use autocandle::GenerationConfig;
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

    // question-answering is kept after transformers 4.57 (see the tests at the end); visual
    // question answering is still refused.
    let removed = pipeline("vqa", &masked).unwrap_err().to_string();
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

// ---------------------------------------------------------------------------------------------
// Pipelines that transformers 5 removed, after transformers 4.57: cases of
// `tests/fixtures/pipelines/expected_v4.json` (made by `make_pipeline_fixtures_v4.py`).

fn cases_v4(task: &str) -> Vec<Value> {
    let path = repo_root().join("tests/fixtures/pipelines/expected_v4.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(all["transformers_version"].as_str().unwrap().starts_with("4.57."), "expected_v4.json: not 4.57");
    let cases: Vec<Value> = all["cases"].as_array().unwrap().iter().filter(|c| c["task"] == task).cloned().collect();
    assert!(!cases.is_empty(), "no `{task}` case in expected_v4.json");
    cases
}

/// A result that transformers gives as one object when it is alone, as a list otherwise.
fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn qa_options(kwargs: &Value) -> QuestionAnsweringOptions {
    let mut opts = QuestionAnsweringOptions::default();
    let usize_of = |key: &str| kwargs[key].as_u64().map(|v| v as usize);
    if let Some(k) = usize_of("top_k") {
        opts.top_k = k;
    }
    if let Some(n) = usize_of("max_answer_len") {
        opts.max_answer_len = n;
    }
    opts.max_seq_len = usize_of("max_seq_len");
    opts.doc_stride = usize_of("doc_stride");
    if let Some(b) = kwargs["handle_impossible_answer"].as_bool() {
        opts.handle_impossible_answer = b;
    }
    if let Some(b) = kwargs["align_to_words"].as_bool() {
        opts.align_to_words = b;
    }
    opts
}

/// Answers are positional: text and offsets must be equal, scores within TOL (answers whose
/// Python scores tie may come in either order).
fn compare_answers(what: &str, got: &[Answer], want: &Value) -> f64 {
    let key = |answer: &str, start: u64, end: u64| format!("{answer:?} {start}..{end}");
    let got: Vec<(String, f32)> = got.iter().map(|a| (key(&a.answer, a.start as u64, a.end as u64), a.score)).collect();
    let want: Vec<(String, f64)> = as_list(want)
        .iter()
        .map(|a| {
            let k = key(a["answer"].as_str().unwrap(), a["start"].as_u64().unwrap(), a["end"].as_u64().unwrap());
            (k, a["score"].as_f64().unwrap())
        })
        .collect();
    compare_scored(what, &got, &want)
}

#[test]
fn question_answering_matches_transformers_4_57() {
    let cases = cases_v4("question-answering");
    let mut max_diff = 0f64;
    let mut windows = 0;
    for case in &cases {
        let pipe = QuestionAnsweringPipeline::new(&model_path(case)).unwrap();
        let opts = qa_options(&case["kwargs"]);
        let (question, context) = (&case["inputs"]["question"], &case["inputs"]["context"]);
        let what = format!("{} {question} {}", case["model"], case["kwargs"]);
        match (question.as_array(), context.as_array()) {
            (Some(questions), Some(contexts)) => {
                let pairs: Vec<(&str, &str)> =
                    questions.iter().zip(contexts).map(|(q, c)| (q.as_str().unwrap(), c.as_str().unwrap())).collect();
                let got = pipe.call_batch(&pairs, &opts).unwrap();
                let want = case["output"].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{what}");
                for (g, w) in got.iter().zip(want) {
                    max_diff = max_diff.max(compare_answers(&what, g, w));
                }
            }
            _ => {
                let (question, context) = (question.as_str().unwrap(), context.as_str().unwrap());
                let got = pipe.call_with(question, context, &opts).unwrap();
                max_diff = max_diff.max(compare_answers(&what, &got, &case["output"]));
                if context.len() > 200 {
                    windows += 1;
                }
            }
        }
    }
    assert!(windows >= 3, "the cases must include long contexts split into windows");
    report("question-answering (4.57)", cases.len(), max_diff);
}

#[test]
fn question_answering_checks_its_arguments() {
    let qa = repo_root().join("tests/fixtures/pipelines/bert-question-answering").to_string_lossy().into_owned();
    let pipe = QuestionAnsweringPipeline::new(&qa).unwrap();
    let err = pipe.call("", "the cat sat").unwrap_err().to_string();
    assert!(err.contains("`question` cannot be empty"), "{err}");
    let opts = QuestionAnsweringOptions { max_seq_len: Some(16), doc_stride: Some(20), ..Default::default() };
    let err = pipe.call_with("where?", "the cat sat", &opts).unwrap_err().to_string();
    assert!(err.contains("`doc_stride` (20) is larger than `max_seq_len` (16)"), "{err}");
    // A stride that leaves no progress between windows is an error, not tokenizers' panic.
    let context = "the cat sat on the mat in the big city of paris and the dog read a book.";
    let opts = QuestionAnsweringOptions { max_seq_len: Some(12), doc_stride: Some(6), ..Default::default() };
    let err = pipe.call_with("where is the cat?", context, &opts).unwrap_err().to_string();
    assert!(err.contains("must be smaller than the"), "{err}");
    let opts = QuestionAnsweringOptions { max_seq_len: Some(6), doc_stride: Some(1), ..Default::default() };
    let err = pipe.call_with("where is the big cat of the city?", context, &opts).unwrap_err().to_string();
    assert!(err.contains("leaving no room for the context"), "{err}");
    // Every answer lies in the context, whatever the options.
    let opts = QuestionAnsweringOptions { top_k: 5, max_seq_len: Some(20), doc_stride: Some(5), ..Default::default() };
    for answer in pipe.call_with("where is the cat?", context, &opts).unwrap() {
        let chars: Vec<char> = context.chars().collect();
        assert_eq!(chars[answer.start..answer.end].iter().collect::<String>(), answer.answer);
    }
}

/// The options of a text-to-text case: `generate` kwargs go into a `GenerationConfig`.
fn text2text_options(kwargs: &Value) -> Text2TextOptions {
    let mut generation = GenerationConfig::new();
    let mut any = false;
    for (key, value) in kwargs.as_object().unwrap() {
        let n = value.as_u64().map(|v| v as usize);
        match key.as_str() {
            "max_new_tokens" => generation = generation.max_new_tokens(n.unwrap()),
            "num_beams" => generation = generation.num_beams(n.unwrap()),
            "num_return_sequences" => generation = generation.num_return_sequences(n.unwrap()),
            "min_length" => generation = generation.min_length(n.unwrap()),
            "max_length" => generation = generation.max_length(n.unwrap()),
            "return_tensors" | "clean_up_tokenization_spaces" | "stop_sequence" => continue,
            other => panic!("unexpected kwarg `{other}` in expected_v4.json"),
        }
        any = true;
    }
    Text2TextOptions {
        generation: any.then_some(generation),
        clean_up_tokenization_spaces: kwargs["clean_up_tokenization_spaces"] == true,
        stop_sequence: kwargs["stop_sequence"].as_str().map(str::to_owned),
        ..Text2TextOptions::default()
    }
}

#[test]
fn text2text_summarization_translation_match_transformers_4_57() {
    let mut all = Vec::new();
    for task in ["text2text-generation", "summarization", "translation", "translation_en_to_de", "translation_en_to_fr"]
    {
        all.extend(cases_v4(task));
    }
    let mut beams = 0;
    for case in &all {
        let task = case["task"].as_str().unwrap();
        let kwargs = &case["kwargs"];
        let opts = text2text_options(kwargs);
        let pipe = pipeline(task, &model_path(case)).unwrap();
        let (inputs, single) = match &case["inputs"] {
            Value::String(s) => (vec![s.as_str()], true),
            other => (other.as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect(), false),
        };
        let (got, key) = match &pipe {
            Pipeline::Text2TextGeneration(p) => (p.call_batch(&inputs, &opts), Text2TextGenerationPipeline::OUTPUT_KEY),
            Pipeline::Summarization(p) => (p.call_batch(&inputs, &opts), SummarizationPipeline::OUTPUT_KEY),
            Pipeline::Translation(p) => (p.call_batch(&inputs, &opts), TranslationPipeline::OUTPUT_KEY),
            other => panic!("{task}: got a {} pipeline", other.task()),
        };
        let got = got.unwrap();
        // One input: a list of sequences; several: one result per input (a list when an
        // input has several sequences).
        let want: Vec<Vec<Value>> = if single {
            vec![as_list(&case["output"])]
        } else {
            case["output"].as_array().unwrap().iter().map(as_list).collect()
        };
        assert_eq!(got.len(), want.len(), "{task} {kwargs}");
        let tensors = kwargs["return_tensors"] == true;
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), w.len(), "{task} {kwargs}: number of sequences");
            for (g, w) in g.iter().zip(w) {
                if tensors {
                    let ids: Vec<u32> = serde_json::from_value(w[key.replace("_text", "_token_ids")].clone()).unwrap();
                    assert_eq!(g.token_ids, ids, "{task} {:?} {kwargs}", case["inputs"]);
                } else {
                    assert_eq!(g.text, w[key].as_str().unwrap(), "{task} {:?} {kwargs}", case["inputs"]);
                }
            }
        }
        if opts.generation.as_ref().and_then(|g| g.num_beams).unwrap_or(4) > 1 {
            beams += 1;
        }
    }
    assert!(beams >= 3, "the cases must include beam search");
    println!("text2text-generation / summarization / translation (4.57): {} cases, text equal to Python's", all.len());
}

#[test]
fn text2text_pipelines_apply_task_specific_params_like_4_57() {
    let fixtures = repo_root().join("tests/fixtures/pipelines");
    let t5 = fixtures.join("t5-text2text").to_string_lossy().into_owned();
    let summarize = SummarizationPipeline::new(&t5).unwrap();
    assert_eq!(summarize.prefix(), Some("summarize: "));
    let config = summarize.generation_config();
    // task_specific_params over the pipeline's defaults; its max_length does not replace
    // the pipeline's 256 new tokens (4.57 drops them only for the model's own max_length).
    assert_eq!((config.num_beams, config.min_length, config.no_repeat_ngram_size), (Some(3), Some(6), Some(3)));
    assert_eq!((config.max_new_tokens, config.max_length), (Some(256), Some(24)));
    let Pipeline::Translation(translate) = pipeline("translation", &t5).unwrap() else { panic!("not translation") };
    assert_eq!(translate.task(), "translation_en_to_de");
    assert_eq!(translate.languages(), Some(("en", "de")));
    assert_eq!(translate.prefix(), Some("translate English to German: "));
    let Pipeline::Translation(fr) = pipeline("translation_en_to_fr", &t5).unwrap() else { panic!("not translation") };
    assert_eq!(fr.prefix(), Some("translate English to French: "));
    assert_eq!(fr.generation_config().num_beams, Some(4));
    let plain = Text2TextGenerationPipeline::new(&t5).unwrap();
    assert_eq!(plain.prefix(), None);
    assert_eq!((plain.generation_config().num_beams, plain.generation_config().max_new_tokens), (Some(4), Some(256)));

    // bart-large-cnn's kind of generation config: its max_length replaces the 256 new tokens,
    // the pipeline's 4 beams replace its 2.
    let bart = fixtures.join("bart-summarization").to_string_lossy().into_owned();
    let summarize = SummarizationPipeline::new(&bart).unwrap();
    let config = summarize.generation_config();
    assert_eq!((config.max_new_tokens, config.max_length, config.num_beams), (None, Some(32), Some(4)));
    assert_eq!(summarize.prefix(), None);

    let err = pipeline("translation_en_de", &t5).unwrap_err().to_string();
    assert!(err.contains("translation_XX_to_YY"), "{err}");
    let qa = fixtures.join("bert-question-answering").to_string_lossy().into_owned();
    assert!(matches!(pipeline("question-answering", &qa).unwrap(), Pipeline::QuestionAnswering(_)));

    // `stop_sequence`: its first token ends the sequence; greedy decoding is otherwise the same.
    let greedy = GenerationConfig::new().num_beams(1).max_new_tokens(12);
    let opts = Text2TextOptions { generation: Some(greedy), ..Default::default() };
    let text = "Paris is the capital of France.";
    let full = plain.call_with(text, &opts).unwrap().remove(0).token_ids;
    // The first generated word after the first token, as a stop sequence ("▁word" -> "word").
    let (stop_id, stop) = full[2..]
        .iter()
        .find_map(|id| {
            let word = plain.tokenizer().id_to_token(*id)?.strip_prefix('▁')?.to_owned();
            (word.len() > 1).then_some((*id, word))
        })
        .expect("a word in the greedy output");
    let position = full.iter().position(|t| *t == stop_id).unwrap();
    let opts = Text2TextOptions { stop_sequence: Some(stop.clone()), ..opts };
    let stopped = plain.call_with(text, &opts).unwrap().remove(0).token_ids;
    assert_eq!(stopped, full[..=position], "stop at {stop:?} in {full:?}");
    assert!(stopped.len() < full.len());
}
