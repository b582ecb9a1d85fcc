//! The audio pipelines against Python's `transformers.pipeline(...)` outputs on tiny models
//! (`tests/fixtures/pipelines/asr-wav2vec2/expected.json`, `audio-classification-wav2vec2/
//! expected.json`, made by `tests/fixtures/make_audio_pipeline_fixtures.py`): CTC
//! transcription whole and chunked, character and word timestamps, audio classification with
//! `top_k` and `function_to_apply`; raw samples as input; the errors for bad audio.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use autocandle::pipelines::{
    pipeline, AsrOptions, AudioClassificationOptions, AudioClassificationPipeline, AudioInput,
    AutomaticSpeechRecognitionPipeline, ClassificationFunction, Pipeline, ReturnTimestamps,
};
use serde_json::Value;

const ASR: &str = "tests/fixtures/pipelines/asr-wav2vec2";
const WHISPER: &str = "tests/fixtures/pipelines/asr-whisper";
const CLASSIFY: &str = "tests/fixtures/pipelines/audio-classification-wav2vec2";
const SCORE_TOL: f64 = 1e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cases(dir: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(dir).join("expected.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn asr_options(kwargs: &Value) -> AsrOptions {
    let stride = match &kwargs["stride_length_s"] {
        Value::Array(sides) => Some((sides[0].as_f64().unwrap(), sides[1].as_f64().unwrap())),
        Value::Number(n) => Some((n.as_f64().unwrap(), n.as_f64().unwrap())),
        _ => None,
    };
    AsrOptions {
        chunk_length_s: kwargs["chunk_length_s"].as_f64(),
        stride_length_s: stride,
        return_timestamps: match kwargs["return_timestamps"].as_str() {
            Some("char") => Some(ReturnTimestamps::Char),
            Some("word") => Some(ReturnTimestamps::Word),
            None if kwargs["return_timestamps"] == true => Some(ReturnTimestamps::Segments),
            Some(other) => panic!("unexpected return_timestamps {other}"),
            None => None,
        },
        language: kwargs["generate_kwargs"]["language"].as_str().map(str::to_owned),
        task: kwargs["generate_kwargs"]["task"].as_str().map(str::to_owned),
        ..Default::default()
    }
}

/// Texts equal, timestamps equal (within float formatting).
fn assert_transcription(what: &str, got: &Value, want: &Value) {
    assert_eq!(got["text"], want["text"], "{what}: text");
    match (got.get("chunks"), want.get("chunks")) {
        (None, None) => {}
        (Some(Value::Array(got)), Some(Value::Array(want))) => {
            assert_eq!(got.len(), want.len(), "{what}: number of chunks");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert_eq!(g["text"], w["text"], "{what}: chunk {i}");
                for side in 0..2 {
                    let (g, w) = (g["timestamp"][side].as_f64(), w["timestamp"][side].as_f64());
                    let same = match (g, w) {
                        (Some(g), Some(w)) => (g - w).abs() < 1e-9,
                        (g, w) => g == w,
                    };
                    assert!(same, "{what}: chunk {i} timestamp {g:?} vs {w:?}");
                }
            }
        }
        (got, want) => panic!("{what}: chunks {got:?}, want {want:?}"),
    }
}

#[test]
fn ctc_transcriptions_equal_python() {
    let asr = AutomaticSpeechRecognitionPipeline::new(&root().join(ASR).to_string_lossy()).unwrap();
    assert!(!asr.is_whisper());
    assert_eq!(asr.sampling_rate(), 16000);
    let cases = cases(ASR);
    for case in &cases {
        let clip = root().join(case["inputs"].as_str().unwrap());
        let what = format!("{} {}", case["inputs"], case["kwargs"]);
        let got = asr.call_with(&clip, &asr_options(&case["kwargs"])).unwrap();
        assert_transcription(&what, &got.to_json(), &case["output"]);
    }
    println!("automatic-speech-recognition: {} cases equal Python's", cases.len());
}

/// Whisper: short-form with and without segment timestamps, `language` and `task`, and
/// long-form (`hello.wav` is longer than the tiny model's 1 s window).
#[test]
fn whisper_transcriptions_equal_python() {
    let asr = AutomaticSpeechRecognitionPipeline::new(&root().join(WHISPER).to_string_lossy()).unwrap();
    assert!(asr.is_whisper());
    let cases = cases(WHISPER);
    for case in &cases {
        let clip = root().join(case["inputs"].as_str().unwrap());
        let what = format!("{} {}", case["inputs"], case["kwargs"]);
        let got = asr.call_with(&clip, &asr_options(&case["kwargs"])).unwrap();
        assert_transcription(&what, &got.to_json(), &case["output"]);
    }
    let chunked = AsrOptions { chunk_length_s: Some(0.5), ..Default::default() };
    let err = asr.call_with(root().join(ASR).join("yes.wav"), &chunked).unwrap_err().to_string();
    assert!(err.contains("long-form"), "{err}");
    // Long-form needs timestamps, as in transformers.
    let err = asr.call(root().join(ASR).join("hello.wav")).unwrap_err().to_string();
    assert!(err.contains("long-form") && err.contains("timestamps"), "{err}");
    let chars = AsrOptions { return_timestamps: Some(ReturnTimestamps::Char), ..Default::default() };
    assert!(asr.call_with(root().join(ASR).join("yes.wav"), &chars).is_err());
    println!("automatic-speech-recognition (Whisper): {} cases equal Python's", cases.len());
}

#[test]
fn chunked_transcription_reports_progress() {
    let asr = AutomaticSpeechRecognitionPipeline::new(&root().join(ASR).to_string_lossy()).unwrap();
    let opts = AsrOptions { chunk_length_s: Some(0.5), stride_length_s: Some((0.1, 0.1)), ..Default::default() };
    let mut seen = Vec::new();
    asr.call_with_progress(root().join(ASR).join("hello.wav"), &opts, &mut |done, total| seen.push((done, total)))
        .unwrap();
    // 1.67 s in 0.5 s chunks with 0.1 s strides: starts every 0.3 s.
    assert_eq!(seen.first(), Some(&(0, 5)));
    assert_eq!(seen.last(), Some(&(5, 5)));
}

#[test]
fn raw_samples_transcribe_like_the_file() {
    let asr = AutomaticSpeechRecognitionPipeline::new(&root().join(ASR).to_string_lossy()).unwrap();
    let clip = root().join(ASR).join("yes.wav");
    let samples = autocandle::audio::load_audio(&clip, 16000).unwrap();
    let from_file = asr.call(&clip).unwrap();
    let from_samples = asr.call(AudioInput::samples(samples, 16000)).unwrap();
    assert_eq!(from_file, from_samples);
    assert!(!from_file.text.is_empty());
}

#[test]
fn the_generic_pipeline_builds_both_tasks() {
    let asr = pipeline("automatic-speech-recognition", &root().join(ASR).to_string_lossy()).unwrap();
    assert_eq!(asr.task(), "automatic-speech-recognition");
    assert!(matches!(asr, Pipeline::AutomaticSpeechRecognition(_)));
    let classify = pipeline("audio-classification", &root().join(CLASSIFY).to_string_lossy()).unwrap();
    assert!(matches!(classify, Pipeline::AudioClassification(_)));
}

#[test]
fn bad_options_and_audio_are_clear_errors() {
    let asr = AutomaticSpeechRecognitionPipeline::new(&root().join(ASR).to_string_lossy()).unwrap();
    let clip = root().join(ASR).join("yes.wav");
    let segments = AsrOptions { return_timestamps: Some(ReturnTimestamps::Segments), ..Default::default() };
    let err = asr.call_with(&clip, &segments).unwrap_err().to_string();
    assert!(err.contains("char") && err.contains("word"), "{err}");
    let language = AsrOptions { language: Some("en".into()), ..Default::default() };
    let err = asr.call_with(&clip, &language).unwrap_err().to_string();
    assert!(err.contains("Whisper"), "{err}");
    let strides = AsrOptions { chunk_length_s: Some(0.2), stride_length_s: Some((0.1, 0.1)), ..Default::default() };
    let err = asr.call_with(&clip, &strides).unwrap_err().to_string();
    assert!(err.contains("stride"), "{err}");
    let err = asr.call(root().join("README.md")).unwrap_err().to_string();
    assert!(err.contains("README.md"), "{err}");
    let err = asr.call(root().join(ASR).join("no-such.wav")).unwrap_err().to_string();
    assert!(err.contains("no-such.wav"), "{err}");
    let err = asr.call(AudioInput::samples(vec![], 16000)).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let err = asr.call(AudioInput::samples(vec![f32::NAN; 400], 16000)).unwrap_err().to_string();
    assert!(err.contains("NaN"), "{err}");
}

#[test]
fn audio_classification_equals_python() {
    let classify = AudioClassificationPipeline::new(&root().join(CLASSIFY).to_string_lossy()).unwrap();
    assert_eq!(classify.labels(), ["yes", "no", "up", "down"]);
    let cases = cases(CLASSIFY);
    let mut max_diff = 0f64;
    for case in &cases {
        let kwargs = &case["kwargs"];
        let opts = AudioClassificationOptions {
            top_k: Some(kwargs["top_k"].as_u64().map_or(5, |k| k as usize)),
            function_to_apply: kwargs["function_to_apply"].as_str().map(|f| match f {
                "softmax" => ClassificationFunction::Softmax,
                "sigmoid" => ClassificationFunction::Sigmoid,
                _ => ClassificationFunction::None,
            }),
        };
        let clip = root().join(case["inputs"].as_str().unwrap());
        let got = classify.call_with(&clip, &opts).unwrap();
        let want = case["output"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{} {kwargs}", case["inputs"]);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.label, w["label"].as_str().unwrap(), "{} {kwargs}", case["inputs"]);
            let diff = (f64::from(g.score) - w["score"].as_f64().unwrap()).abs();
            assert!(diff < SCORE_TOL, "{} {kwargs}: {} {} vs {}", case["inputs"], g.label, g.score, w["score"]);
            max_diff = max_diff.max(diff);
        }
    }
    // A batch gives each clip's own labels.
    let clips: Vec<PathBuf> = ["hello.wav", "yes.wav"].iter().map(|c| root().join(ASR).join(c)).collect();
    let batch = classify.call_batch(&clips, &AudioClassificationOptions::default()).unwrap();
    assert_eq!(batch[1], classify.call(&clips[1]).unwrap());
    println!("audio-classification: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}
