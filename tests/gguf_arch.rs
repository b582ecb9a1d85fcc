//! Per-architecture GGUF parity: every fixture under `tests/fixtures/gguf/arch/` (made by
//! `make_gguf_arch_fixtures.py`) is a GGUF file written as llama.cpp's converter writes it and the
//! outputs `transformers` computed after loading it with `gguf_file=`. The file's metadata must map
//! to `transformers`' config (`expected_config.json`, field by field) through
//! `gguf::hf::config_json`, and its tensors, mapped by `gguf::hf::tensor_map` and transformed by
//! `gguf::hf::apply`, must give `transformers`' logits and greedy ids.
//!
//! Then the parity harness loads each fixture through the Auto classes with
//! `LoadOptions::gguf_file` and `dtype(F32)` (dequantizing, what `transformers` does) and
//! compares logits and greedy ids; the same fixtures in quantized mode (the default for GGUF)
//! are checked after that.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use autocandle::arch_api::gguf::{hf, GgufFile};
use autocandle_tests::{fixtures_root, run_fixture, Outcome};
use serde_json::Value;

fn same(want: &Value, got: Option<&Value>) -> bool {
    match (want, got) {
        (Value::Null, None | Some(Value::Null)) => true,
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (a, Some(b)) => a == b,
        _ => false,
    }
}

/// Check one fixture; `Ok(line)` when it passes.
fn check(dir: &Path) -> Result<String> {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
    let gguf_name = reference["gguf_file"].as_str().context("reference.json has no `gguf_file`")?;
    let path = dir.join(gguf_name);
    let file = GgufFile::open(&path)?;
    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    let config = hf::config_json(file.metadata(), &names)?;
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_config.json"))?)?;
    for (key, want) in &expected {
        ensure!(
            same(want, config.get(key)),
            "config field `{key}`: transformers has {want}, got {:?}",
            config.get(key)
        );
    }
    let tensors: Vec<(&str, &[usize])> = file.tensors().iter().map(|t| (t.name.as_str(), t.shape.as_slice())).collect();
    let (_, unused) = hf::tensor_map(&config, &tensors)?;
    ensure!(unused.is_empty(), "tensors left unmapped: {unused:?}");
    // Through the Auto classes with `gguf_file`, dequantized to f32 (transformers' mode).
    match run_fixture(dir)? {
        Outcome::Pass { max_abs_diff } => Ok(format!("PASS {max_abs_diff:.2e}")),
        Outcome::Fail { output, max_abs_diff, detail } => bail!("{output}: {max_abs_diff} ({detail})"),
        Outcome::Unsupported { reason, .. } => bail!("unsupported: {reason}"),
    }
}

/// The fixture folders under `tests/fixtures/gguf/arch/`, sorted.
fn fixture_dirs() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let root = fixtures_root().join("gguf").join("arch");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("reference.json").is_file())
        .collect();
    dirs.sort();
    (root, dirs)
}

#[test]
fn gguf_architectures_match_transformers() {
    let (root, dirs) = fixture_dirs();
    assert!(dirs.len() >= 8, "expected the GGUF architecture fixtures under {}", root.display());
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match check(dir) {
            Ok(line) => {
                println!("{name}: {line}");
                let reference: Value =
                    serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
                seen.insert(reference["model_type"].as_str().unwrap_or_default().to_owned());
            }
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "GGUF fixtures failed:\n{}", failures.join("\n"));
    // Every supported architecture has a passing fixture.
    for arch in hf::SUPPORTED_ARCHITECTURES {
        assert!(seen.contains(*arch), "no GGUF fixture for `{arch}`");
    }
}

/// The default for GGUF files keeps quantized tensors in their blocks (activations quantized
/// to 8-bit blocks in the products, as llama.cpp computes): float tensors give transformers'
/// numbers exactly as above, quantized ones stay within a small distance of them.
#[test]
fn gguf_quantized_mode_stays_close() {
    let (_, dirs) = fixture_dirs();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut reference: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
        let file = reference["gguf_file"].as_str().unwrap().to_owned();
        let quantized = GgufFile::open(&dir.join(&file))
            .unwrap()
            .tensors()
            .iter()
            .any(|t| !autocandle::arch_api::gguf::is_float(t.ggml_type));
        if quantized {
            // Greedy ids of a random tiny model may flip on the quantization error: logits only.
            reference.as_object_mut().unwrap().remove("generate");
            reference["atol"] = serde_json::json!(QUANTIZED_ATOL);
        }
        let task = reference["task"].as_str().unwrap().parse().unwrap();
        let opts = autocandle::LoadOptions::new().gguf_file(&file);
        match autocandle_tests::run_fixture_with(dir, &reference, task, &opts) {
            Ok(Outcome::Pass { max_abs_diff }) => println!("{name} (quantized: {quantized}): PASS {max_abs_diff:.2e}"),
            other => failures.push(format!("{name}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "quantized mode:\n{}", failures.join("\n"));
}

/// How far quantized logits may be from transformers' dequantized ones in the fixtures (their
/// logits reach about 2.6; the 8-bit activations of the Q8_0 fixture, whose rows are single
/// 32-element blocks, put it 0.10 away at most). A wrong block layout or scale is off by the
/// size of the logits themselves.
const QUANTIZED_ATOL: f64 = 0.2;

/// docs/gguf.md lists the architectures exactly as `gguf::hf` has them.
#[test]
fn docs_list_the_gguf_architectures() {
    let doc = std::fs::read_to_string(fixtures_root().join("../../docs/gguf.md")).unwrap();
    let block = doc
        .split("<!-- gguf-architectures:begin -->")
        .nth(1)
        .unwrap()
        .split("<!-- gguf-architectures:end -->")
        .next()
        .unwrap();
    assert!(block.contains(&format!("- supported: {}\n", hf::SUPPORTED_ARCHITECTURES.join(", "))), "{block}");
    assert!(block.contains(&format!(": {}\n", hf::TRANSFORMERS_ONLY_ARCHITECTURES.join(", "))), "{block}");
}

/// Files that are valid GGUF but do not make a model: each a clear error, never a panic.
#[test]
fn gguf_files_that_do_not_make_a_model_are_clear_errors() {
    let dir = fixtures_root().join("gguf").join("bad");
    let load = |file: &str| {
        let opts = autocandle::LoadOptions::new().gguf_file(file);
        autocandle::AutoModelForCausalLM::from_pretrained_with(&dir.to_string_lossy(), &opts).err().unwrap().to_string()
    };
    let missing = load("missing-block.gguf");
    assert!(missing.contains("model.layers.1.") && missing.contains("missing-block.gguf"), "{missing}");
    let unknown = load("unknown-arch.gguf");
    assert!(unknown.contains("unknown GGUF architecture `rwkv7`") && unknown.contains("llama, mistral"), "{unknown}");
    let unsupported = load("unsupported-arch.gguf");
    assert!(unsupported.contains("`qwen2moe` is not supported by autocandle yet"), "{unsupported}");
    // The same errors from the config and the tokenizer's side.
    let config = autocandle::AutoConfig::from_pretrained_with(
        &dir.to_string_lossy(),
        &autocandle::LoadOptions::new().gguf_file("unknown-arch.gguf"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(config.contains("rwkv7"), "{config}");
    let absent = load("no-such-file.gguf");
    assert!(absent.contains("no-such-file.gguf"), "{absent}");
}
