//! End-to-end tests of `autocandle automatic-speech-recognition` and `autocandle
//! audio-classification` on the audio pipeline fixtures: `--json` output against Python's
//! `transformers.pipeline(...)` results (`tests/fixtures/pipelines/asr-wav2vec2/expected.json`,
//! `audio-classification-wav2vec2/expected.json`), human output, and the errors for missing
//! files, files that are not audio and bad options. Offline, as `cli.rs`.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use serde_json::Value;

mod common;

use common::{autocandle, repo_root};

const ASR: &str = "tests/fixtures/pipelines/asr-wav2vec2";
const WHISPER: &str = "tests/fixtures/pipelines/asr-whisper";
const CLASSIFY: &str = "tests/fixtures/pipelines/audio-classification-wav2vec2";

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn cases(dir: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join(dir).join("expected.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// Run and parse stdout as JSON, asserting success.
fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}, stderr:\n{stderr}", out.status.code());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Run expecting failure: the exit code and stderr (a short `error:` message, no panic).
fn failure(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// The command-line flags of a case's Python kwargs.
fn asr_flags(kwargs: &Value) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(chunk) = kwargs["chunk_length_s"].as_f64() {
        flags.extend(["--chunk-length-s".to_owned(), chunk.to_string()]);
    }
    match &kwargs["stride_length_s"] {
        Value::Array(sides) => flags.extend(["--stride-length-s".to_owned(), format!("{},{}", sides[0], sides[1])]),
        Value::Number(n) => flags.extend(["--stride-length-s".to_owned(), n.to_string()]),
        _ => {}
    }
    if let Some(kind) = kwargs["return_timestamps"].as_str() {
        flags.push(format!("--return-timestamps={kind}"));
    }
    flags
}

#[test]
fn asr_json_equals_python() {
    let cache = cache();
    let cases = cases(ASR);
    for case in &cases {
        let clip = case["inputs"].as_str().unwrap();
        let got = json_of(
            autocandle(&cache)
                .args(["--json", "automatic-speech-recognition", "--model", ASR])
                .args(asr_flags(&case["kwargs"]))
                .arg(clip),
        );
        let want = &case["output"];
        let what = format!("{clip} {}", case["kwargs"]);
        assert_eq!(got[0]["text"], want["text"], "{what}");
        match want.get("chunks") {
            None => assert!(got[0].get("chunks").is_none(), "{what}"),
            Some(chunks) => {
                let got = got[0]["chunks"].as_array().unwrap();
                assert_eq!(got.len(), chunks.as_array().unwrap().len(), "{what}");
                for (g, w) in got.iter().zip(chunks.as_array().unwrap()) {
                    assert_eq!(g["text"], w["text"], "{what}");
                    for side in 0..2 {
                        let diff = g["timestamp"][side].as_f64().unwrap() - w["timestamp"][side].as_f64().unwrap();
                        assert!(diff.abs() < 1e-9, "{what}: {g} vs {w}");
                    }
                }
            }
        }
    }
    println!("automatic-speech-recognition: {} cases equal Python's", cases.len());
}

#[test]
fn asr_takes_several_files_and_prints_timestamps() {
    let cache = cache();
    let clips = [format!("{ASR}/hello.wav"), format!("{ASR}/yes.wav")];
    let got = json_of(autocandle(&cache).args(["--json", "asr", "--model", ASR]).args(&clips));
    assert_eq!(got.as_array().unwrap().len(), 2);
    let want = cases(ASR);
    assert_eq!(got[1]["text"], want.iter().find(|c| c["inputs"] == clips[1].as_str()).unwrap()["output"]["text"]);
    // Human output: the file, its text, then `start-end  word` lines.
    let out = autocandle(&cache)
        .args(["automatic-speech-recognition", "--model", ASR, "--return-timestamps=word", &clips[1]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], clips[1]);
    assert!(lines.len() > 3 && lines[2].trim_start().starts_with("0.") && lines[2].contains('-'), "{stdout}");
    // `--return-timestamps` alone is word timestamps for a CTC model.
    let alone = json_of(autocandle(&cache).args(["--json", "asr", "--model", ASR, "--return-timestamps", &clips[1]]));
    let word =
        json_of(autocandle(&cache).args(["--json", "asr", "--model", ASR, "--return-timestamps=word", &clips[1]]));
    assert_eq!(alone, word);
}

/// Whisper: `--return-timestamps` alone is segments; `--language` and `--task`; long-form.
#[test]
fn whisper_json_equals_python() {
    let cache = cache();
    let cases = cases(WHISPER);
    for case in &cases {
        let kwargs = &case["kwargs"];
        let mut cmd = autocandle(&cache);
        // The file first (any order works: the value of `--return-timestamps` needs `=`).
        cmd.args(["--json", "automatic-speech-recognition", "--model", WHISPER, case["inputs"].as_str().unwrap()]);
        if kwargs["return_timestamps"] == true {
            cmd.arg("--return-timestamps");
        }
        if let Some(language) = kwargs["generate_kwargs"]["language"].as_str() {
            cmd.args(["--language", language]);
        }
        if let Some(task) = kwargs["generate_kwargs"]["task"].as_str() {
            cmd.args(["--task", task]);
        }
        let got = json_of(&mut cmd);
        let want = &case["output"];
        assert_eq!(got[0]["text"], want["text"], "{case}");
        assert_eq!(got[0].get("chunks").map(Value::as_array), want.get("chunks").map(Value::as_array), "{case}");
    }
    let clip = format!("{ASR}/yes.wav");
    let (code, stderr) = failure(autocandle(&cache).args(["asr", "--model", WHISPER, "--chunk-length-s", "5", &clip]));
    assert_eq!(code, 1);
    assert!(stderr.contains("long-form") || stderr.contains("30 s"), "{stderr}");
}

#[test]
fn audio_classification_json_equals_python() {
    let cache = cache();
    let cases = cases(CLASSIFY);
    let mut max_diff = 0f64;
    for case in &cases {
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "audio-classification", "--model", CLASSIFY]);
        if let Some(k) = case["kwargs"]["top_k"].as_u64() {
            cmd.args(["--top-k", &k.to_string()]);
        }
        if let Some(f) = case["kwargs"]["function_to_apply"].as_str() {
            cmd.args(["--function-to-apply", f]);
        }
        let got = json_of(cmd.arg(case["inputs"].as_str().unwrap()));
        let (got, want) = (got[0].as_array().unwrap(), case["output"].as_array().unwrap());
        assert_eq!(got.len(), want.len(), "{case}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["label"], w["label"], "{case}");
            let diff = (g["score"].as_f64().unwrap() - w["score"].as_f64().unwrap()).abs();
            assert!(diff < 1e-4, "{case}: {g}");
            max_diff = max_diff.max(diff);
        }
    }
    println!("audio-classification: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}

#[test]
fn bad_files_and_options_are_short_errors() {
    let cache = cache();
    for task in ["automatic-speech-recognition", "audio-classification"] {
        let model = if task == "audio-classification" { CLASSIFY } else { ASR };
        let (code, stderr) = failure(autocandle(&cache).args([task, "--model", model, "README.md"]));
        assert_eq!(code, 1);
        assert!(stderr.contains("README.md"), "{stderr}");
        let missing = format!("{ASR}/no-such.wav");
        let (code, stderr) = failure(autocandle(&cache).args([task, "--model", model, &missing]));
        assert_eq!(code, 1);
        assert!(stderr.contains("no-such.wav"), "{stderr}");
        let (code, _) = failure(autocandle(&cache).args([task, "--model", model, "--frobnicate", "x.wav"]));
        assert_eq!(code, 2);
    }
    let clip = format!("{ASR}/yes.wav");
    let (code, stderr) = failure(autocandle(&cache).args(["asr", "--model", ASR, "--language", "en", &clip]));
    assert_eq!(code, 1);
    assert!(stderr.contains("Whisper"), "{stderr}");
    // A stride needs a chunk length; a bad number is a usage error.
    let (code, _) = failure(autocandle(&cache).args(["asr", "--model", ASR, "--stride-length-s", "1", &clip]));
    assert_eq!(code, 2);
    let (code, _) = failure(autocandle(&cache).args(["asr", "--model", ASR, "--chunk-length-s", "-3", &clip]));
    assert_eq!(code, 2);
    let (code, stderr) =
        failure(autocandle(&cache).args(["asr", "--model", ASR, "--return-timestamps=segment", &clip]));
    assert_eq!(code, 1);
    assert!(stderr.contains("word"), "{stderr}");
}
