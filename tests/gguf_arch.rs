//! Per-architecture GGUF parity: every fixture under `tests/fixtures/gguf/arch/` (made by
//! `make_gguf_arch_fixtures.py`) is a GGUF file written as llama.cpp's converter writes it and the
//! outputs `transformers` computed after loading it with `gguf_file=`. The file's metadata must map
//! to `transformers`' config (`expected_config.json`, field by field) through
//! `gguf::hf::config_json`, and its tensors, mapped by `gguf::hf::tensor_map` and transformed by
//! `gguf::hf::apply`, must give `transformers`' logits and greedy ids.
//!
//! Until `LoadOptions::gguf_file` reaches the Auto classes, the test writes the mapped config and
//! tensors as an ordinary checkpoint folder and runs the parity harness on it. The GGUF file is
//! read with candle's own (trusting) GGUF reader, which is fine for committed fixtures.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use autocandle::arch_api::gguf::{hf, GgufValue};
use autocandle_tests::{fixtures_root, run_fixture, Outcome};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde_json::Value;

fn to_gguf_value(v: &gguf_file::Value) -> GgufValue {
    use gguf_file::Value as V;
    match v {
        V::U8(x) => GgufValue::U8(*x),
        V::I8(x) => GgufValue::I8(*x),
        V::U16(x) => GgufValue::U16(*x),
        V::I16(x) => GgufValue::I16(*x),
        V::U32(x) => GgufValue::U32(*x),
        V::I32(x) => GgufValue::I32(*x),
        V::U64(x) => GgufValue::U64(*x),
        V::I64(x) => GgufValue::I64(*x),
        V::F32(x) => GgufValue::F32(*x),
        V::F64(x) => GgufValue::F64(*x),
        V::Bool(x) => GgufValue::Bool(*x),
        V::String(x) => GgufValue::String(x.clone()),
        V::Array(x) => GgufValue::Array(x.iter().map(to_gguf_value).collect()),
    }
}

/// Numbers compare by value (an `f32` field read back as `f64` on both sides), `null` in
/// `expected_config.json` also accepts an absent field (the class default is `None`).
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
    let mut file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let content = gguf_file::Content::read(&mut file)?;
    let metadata: BTreeMap<String, GgufValue> =
        content.metadata.iter().map(|(k, v)| (k.clone(), to_gguf_value(v))).collect();
    let shapes: Vec<(String, Vec<usize>)> =
        content.tensor_infos.iter().map(|(n, info)| (n.clone(), info.shape.dims().to_vec())).collect();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();

    let config = hf::config_json(&metadata, &names)?;
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_config.json"))?)?;
    for (key, want) in &expected {
        ensure!(
            same(want, config.get(key)),
            "config field `{key}`: transformers has {want}, got {:?}",
            config.get(key)
        );
    }

    let tensors: Vec<(&str, &[usize])> = shapes.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    let (map, unused) = hf::tensor_map(&config, &tensors)?;
    ensure!(unused.is_empty(), "tensors left unmapped: {unused:?}");
    let mut state: HashMap<String, Tensor> = HashMap::new();
    for (hf_name, source) in &map {
        let q = content.tensor(&mut file, &source.gguf_name, &Device::Cpu)?;
        let t = q.dequantize(&Device::Cpu)?;
        state.insert(hf_name.clone(), hf::apply(&source.transform, t)?);
    }

    let folder = tempfile::tempdir()?;
    std::fs::write(folder.path().join("config.json"), serde_json::to_string_pretty(&Value::Object(config))?)?;
    candle_core::safetensors::save(&state, folder.path().join("model.safetensors"))?;
    for name in ["reference.json", "reference.safetensors"] {
        std::fs::copy(dir.join(name), folder.path().join(name))?;
    }
    match run_fixture(folder.path())? {
        Outcome::Pass { max_abs_diff } => Ok(format!("PASS {max_abs_diff:.2e}")),
        Outcome::Fail { output, max_abs_diff, detail } => bail!("{output}: {max_abs_diff} ({detail})"),
        Outcome::Unsupported { reason, .. } => bail!("unsupported: {reason}"),
    }
}

#[test]
fn gguf_architectures_match_transformers() {
    let root = fixtures_root().join("gguf").join("arch");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("reference.json").is_file())
        .collect();
    dirs.sort();
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
