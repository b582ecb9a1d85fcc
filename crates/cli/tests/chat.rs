//! End-to-end tests of chatting with the `autocandle` binary: `text-generation --chat` and
//! `chat` (piped stdin, several turns, `/clear`, `/exit`) on the tiny Qwen3 chat fixture,
//! against Python `transformers`' text-generation pipeline fed the same chats
//! (`tests/fixtures/chat-cli/expected.json`, greedy); the errors for a model without a chat
//! template, `--system` without `--chat`, an unknown `--quantize` type and over-long lines.
//! Offline: the Hub cache is an empty temporary folder and `HF_HUB_OFFLINE=1`.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use serde_json::{json, Value};

const MODEL: &str = "tests/fixtures/qwen3-chat";

mod common;

use common::{autocandle, repo_root};

fn expected() -> Value {
    let path = repo_root().join("tests/fixtures/chat-cli/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Run expecting success: stdout.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "exit {:?}, stderr:\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(cmd: &mut Command) -> Value {
    let stdout = stdout_of(cmd);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
}

/// Run expecting failure: the exit code and stderr, a short message and no panic.
fn failure(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// The greedy settings of `expected.json` as flags.
fn generation_args(expected: &Value) -> Vec<String> {
    assert_eq!(expected["generation"]["do_sample"], false);
    vec!["--greedy".to_owned(), "--max-new-tokens".to_owned(), expected["generation"]["max_new_tokens"].to_string()]
}

#[test]
fn text_generation_chat_replies_equal_python_s_pipeline() {
    let cache = tempfile::tempdir().unwrap();
    let expected = expected();
    for case in expected["single"].as_array().unwrap() {
        let mut args = vec!["text-generation".to_owned(), "--model".to_owned(), MODEL.to_owned(), "--chat".to_owned()];
        args.extend(generation_args(&expected));
        if let Some(system) = case["system"].as_str() {
            args.extend(["--system".to_owned(), system.to_owned()]);
        }
        args.push(case["user"].as_str().unwrap().to_owned());
        let reply = case["new_text"].as_str().unwrap();
        // return_full_text=False: the reply string.
        let got = json_of(autocandle(&cache).args(&args).args(["--new-text-only", "--json"]));
        assert_eq!(got, json!([[{ "generated_text": reply }]]), "{case}");
        // return_full_text=True: the chat followed by the new assistant message.
        let got = json_of(autocandle(&cache).args(&args).arg("--json"));
        assert_eq!(got, json!([[{ "generated_text": case["full_text"] }]]), "{case}");
        // Human output: the reply as it streams, then a newline (with or without --new-text-only).
        assert_eq!(stdout_of(autocandle(&cache).args(&args)), format!("{reply}\n"));
    }
}

#[test]
fn chat_answers_each_line_of_stdin_with_the_history_python_keeps() {
    let cache = tempfile::tempdir().unwrap();
    let expected = expected();
    let conversation = &expected["conversation"];
    let turns: Vec<&str> = conversation["turns"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let replies: Vec<&str> = conversation["replies"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let system = conversation["system"].as_str().unwrap();
    let mut args = vec!["chat", "--model", MODEL, "--system", system];
    let generation = generation_args(&expected);
    args.extend(generation.iter().map(String::as_str));
    // Blank lines are not turns; CRLF endings are dropped.
    let stdin = format!("{}\n\n{}\r\n{}\n", turns[0], turns[1], turns[2]);
    let stdout = stdout_of(autocandle(&cache).args(&args).write_stdin(stdin.clone()));
    let want: String = replies.iter().map(|r| format!("{r}\n")).collect();
    assert_eq!(stdout, want);
    // --json: the conversation as messages, replies as assistant messages.
    let got = json_of(autocandle(&cache).args(&args).arg("--json").write_stdin(stdin));
    let mut messages = vec![json!({"role": "system", "content": system})];
    for (turn, reply) in turns.iter().zip(&replies) {
        messages.push(json!({"role": "user", "content": turn}));
        messages.push(json!({"role": "assistant", "content": reply}));
    }
    assert_eq!(got, Value::Array(messages));
}

#[test]
fn chat_clear_forgets_the_history_and_exit_ends() {
    let cache = tempfile::tempdir().unwrap();
    let expected = expected();
    let generation = generation_args(&expected);
    // After /clear, the question is answered as a fresh chat with the same system message.
    let fresh = &expected["single"][1];
    let system = fresh["system"].as_str().unwrap();
    let first = expected["conversation"]["replies"][0].as_str().unwrap();
    assert_eq!(expected["conversation"]["system"], system);
    let stdin = format!("Hi!\n/clear\n{}\n/exit\nnot answered\n", fresh["user"].as_str().unwrap());
    let mut args = vec!["chat", "--model", MODEL, "--system", system];
    args.extend(generation.iter().map(String::as_str));
    let stdout = stdout_of(autocandle(&cache).args(&args).write_stdin(stdin));
    assert_eq!(stdout, format!("{first}\n{}\n", fresh["new_text"].as_str().unwrap()));
    // Without a system message: the single-message case.
    let hi = &expected["single"][0];
    let mut args = vec!["chat", "--model", MODEL];
    args.extend(generation.iter().map(String::as_str));
    let stdout = stdout_of(autocandle(&cache).args(&args).write_stdin("Hi!\n"));
    assert_eq!(stdout, format!("{}\n", hi["new_text"].as_str().unwrap()));
    // No input at all: nothing to say, success.
    assert_eq!(stdout_of(autocandle(&cache).args(&args).write_stdin("")), "");
}

/// A copy of the chat fixture whose tokenizer has no chat template.
fn model_without_template() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = repo_root().join(MODEL);
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("tokenizer_config.json")).unwrap()).unwrap();
    settings.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(dir.path().join("tokenizer_config.json"), settings.to_string()).unwrap();
    dir
}

#[test]
fn a_model_without_a_chat_template_cannot_chat() {
    let cache = tempfile::tempdir().unwrap();
    let model = model_without_template();
    let path = model.path().to_str().unwrap();
    let (code, stderr) =
        failure(autocandle(&cache).args(["text-generation", "--model", path, "--chat", "--greedy", "Hi!"]));
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: cannot chat with") && stderr.contains("has no chat template"), "{stderr}");
    let (code, stderr) = failure(autocandle(&cache).args(["chat", "--model", path]).write_stdin("Hi!\n"));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot chat with") && stderr.contains("has no chat template"), "{stderr}");
    // Plain prompts still work.
    let out = stdout_of(autocandle(&cache).args([
        "text-generation",
        "--model",
        path,
        "--greedy",
        "--max-new-tokens",
        "2",
        "Hi",
    ]));
    assert!(out.starts_with("Hi"), "{out}");
}

#[test]
fn option_errors_are_usage_errors() {
    let cache = tempfile::tempdir().unwrap();
    let (code, stderr) = failure(autocandle(&cache).args(["text-generation", "--model", MODEL, "--system", "x", "Hi"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--chat"), "{stderr}");
    for command in ["text-generation", "chat", "fill-mask"] {
        let (code, stderr) = failure(autocandle(&cache).args([command, "--model", MODEL, "--quantize", "q3"]));
        assert_eq!(code, 2);
        assert!(stderr.contains("unknown quantization type `q3`"), "{stderr}");
        assert!(stderr.contains("q8_0") && stderr.contains("q4_k"), "{stderr}");
    }
    let (code, stderr) = failure(autocandle(&cache).arg("chat").write_stdin("Hi!\n"));
    assert_eq!(code, 1);
    assert!(stderr.contains("--model"), "{stderr}");
    let (code, stderr) = failure(autocandle(&cache).args(["chat", "--model", MODEL, "--do-sample", "--top-p", "2"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("top_p"), "{stderr}");
}

#[test]
fn gguf_file_and_quantize_are_model_flags() {
    let cache = tempfile::tempdir().unwrap();
    for command in ["text-generation", "chat", "fill-mask", "feature-extraction"] {
        let help = stdout_of(autocandle(&cache).args([command, "--help"]));
        assert!(help.contains("--gguf-file <FILE>") && help.contains("--quantize <TYPE>"), "{command}:\n{help}");
    }
}

#[test]
fn inspect_shows_the_gguf_file_and_quantize_options() {
    let cache = tempfile::tempdir().unwrap();
    let doc = json_of(autocandle(&cache).args(["--json", "inspect", MODEL, "--no-load", "--quantize", "Q8_0"]));
    assert_eq!(doc["quantize"], "q8_0");
    assert_eq!(doc["gguf_file"], Value::Null);
    let human = stdout_of(autocandle(&cache).args(["inspect", MODEL, "--no-load", "--quantize", "q4_k"]));
    assert!(human.lines().any(|l| l.starts_with("quantize") && l.ends_with("q4_k")), "{human}");
    // The GGUF file is looked up in the folder like every other file.
    let (code, stderr) = failure(autocandle(&cache).args(["inspect", MODEL, "--no-load", "--gguf-file", "nope.gguf"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.gguf"), "{stderr}");
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_whole() {
    let cache = tempfile::tempdir().unwrap();
    let expected = expected();
    let mut args = vec!["chat".to_owned(), "--model".to_owned(), MODEL.to_owned()];
    args.extend(generation_args(&expected));
    let mut stdin = b"Hi!\n".to_vec();
    stdin.extend(std::iter::repeat_n(b'a', 3 << 20));
    stdin.push(b'\n');
    let out = autocandle(&cache).args(&args).write_stdin(stdin).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: a line of stdin is longer than 1 MiB"), "{stderr}");
    // The turn before it was answered.
    let first = expected["single"][0]["new_text"].as_str().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{first}\n"));
}

/// `/image PATH` in `autocandle chat` on a vision-language model (the tiny Qwen2-VL repo of
/// `tests/fixtures/vlm_pipelines/qwen2_vl`): the image goes with the next user message, and the
/// reply is Python's pipeline reply to that message (`expected.json`, greedy). On a text model
/// `/image` is refused with a note and the chat goes on.
#[test]
fn chat_image_command_sends_the_image_with_the_next_message() {
    if autocandle::catalog::resolve_head("qwen2_vl", autocandle::Task::ImageTextToText).is_err() {
        println!("SKIP: qwen2_vl is not in this build");
        return;
    }
    let dir = "tests/fixtures/vlm_pipelines/qwen2_vl";
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join(dir).join("expected.json")).unwrap()).unwrap();
    let case = &expected["cases"][0];
    let image = format!("tests/fixtures/{}", case["image"].as_str().unwrap());
    let stdin = format!("/image {image}\n{}\n", case["text"].as_str().unwrap());
    let cache = tempfile::tempdir().unwrap();
    let args = ["--json", "chat", "--model", dir, "--max-new-tokens", "8", "--greedy"];
    let got = json_of(autocandle(&cache).args(args).write_stdin(stdin));
    let messages = got.as_array().unwrap();
    assert_eq!(messages[0]["content"][0], json!({"type": "image", "path": image}), "{got}");
    assert_eq!(messages[1]["content"], case["reply"], "{got}");
    // A text model reads no images: a note, and the chat goes on.
    let out = autocandle(&cache)
        .args(["chat", "--model", MODEL, "--max-new-tokens", "2"])
        .write_stdin(format!("/image {image}\nHi!\n"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reads no images"));
}
