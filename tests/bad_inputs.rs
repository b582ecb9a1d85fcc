//! Bad inputs (issue 20): a suite of broken and hostile files, each next to a valid tiny model
//! copied from `tests/fixtures`, loaded and run through the public API. Every case must end in
//! an `Err` whose message names the file or the field (or be accepted, for a stated reason);
//! a panic, a hang (60 s per case) or an abort fails the run. Prints one line per case
//! (`ok <category> <case>: <first line of the error>`) and the counts per category.
//!
//! Then property tests (`proptest`, fixed seed): mutated `config.json` (BERT and llama),
//! safetensors headers, `tokenizer.json`, `tokenizer_config.json`, `pytorch_model.bin`, WAV and
//! PNG bytes must load to `Ok` or `Err`, never a panic or an abort.
//! `AUTOCANDLE_PROPTEST_CASES` sets the cases per property (default 256: about a second each in
//! a debug build; the whole file takes about 10 s). A category or `properties` as the first
//! argument runs only that part: `cargo test -p autocandle-tests --test bad_inputs -- gguf`.

// Test code: a failed unwrap while building a case is a broken test, not a finding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use autocandle::audio::load_audio;
use autocandle::pipelines::{
    AudioInput, AutomaticSpeechRecognitionPipeline, ImageClassificationPipeline, Text2TextGenerationPipeline,
    Text2TextOptions,
};
use autocandle::{
    open_image, AudioFeatureOptions, AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModelForCausalLM,
    AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoProcessor, AutoTokenizer,
    Device, Error, GenerationConfig, GenerationMixin, ModelInputs, Seq2SeqGenerationMixin, Tensor,
};
use autocandle_tests::fixture;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

type Res = std::result::Result<(), Error>;

/// How long one case may take before it counts as a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The harness

/// What a case must give.
enum Expect {
    /// An error naming one of these (file names, field names; case-insensitive).
    Err(&'static [&'static str]),
    /// An error naming one of these, or `Ok` (accepted, for this reason).
    ErrOrOk(&'static [&'static str], &'static str),
}

#[derive(Default)]
struct Counts {
    tried: usize,
    clean: usize,
    accepted: usize,
}

#[derive(Default)]
struct Suite {
    counts: BTreeMap<&'static str, Counts>,
    accepted: Vec<String>,
    failures: Vec<String>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".to_owned())
}

impl Suite {
    /// Run `f` on its own thread (a hang is reported, not waited for), panics caught.
    fn case(&mut self, category: &'static str, name: &str, expect: Expect, f: impl FnOnce() -> Res + Send + 'static) {
        let counts = self.counts.entry(category).or_default();
        counts.tried += 1;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p));
            let _ = tx.send(outcome);
        });
        let outcome = match rx.recv_timeout(CASE_TIMEOUT) {
            Ok(outcome) => outcome,
            Err(_) => {
                // A hang: nothing can stop the thread; report and leave it.
                self.failures.push(format!("{category} {name}: no answer after {CASE_TIMEOUT:?} (hang)"));
                println!("FAIL {category} {name}: hang");
                return;
            }
        };
        match (outcome, expect) {
            (Err(panic), _) => {
                println!("FAIL {category} {name}: panic: {panic}");
                self.failures.push(format!("{category} {name}: panic: {panic}"));
            }
            (Ok(Ok(())), Expect::Err(_)) => {
                println!("FAIL {category} {name}: accepted");
                self.failures.push(format!("{category} {name}: accepted, an error was expected"));
            }
            (Ok(Ok(())), Expect::ErrOrOk(_, reason)) => {
                counts.accepted += 1;
                println!("accepted {category} {name}: {reason}");
                self.accepted.push(format!("{category} {name}: {reason}"));
            }
            (Ok(Err(err)), Expect::Err(needles) | Expect::ErrOrOk(needles, _)) => {
                let message = err.to_string();
                let lower = message.to_lowercase();
                let first = message.lines().next().unwrap_or("");
                if needles.iter().any(|n| lower.contains(&n.to_lowercase())) {
                    counts.clean += 1;
                    println!("ok {category} {name}: {first}");
                } else {
                    println!("FAIL {category} {name}: error names none of {needles:?}: {message}");
                    self.failures.push(format!("{category} {name}: error names none of {needles:?}: {message}"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A copy of a fixture folder (files only) that a case may break; the `TempDir` keeps it.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_into(&fixture(name), tmp.path());
    tmp
}

fn copy_into(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn path_str(dir: &tempfile::TempDir) -> String {
    dir.path().to_string_lossy().into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Set `key` (a `/`-separated path into the object) of the JSON file `file` in `dir`.
fn set_json(dir: &Path, file: &str, key: &str, value: Value) {
    let path = dir.join(file);
    let mut doc = if path.exists() { read_json(&path) } else { json!({}) };
    let mut node = &mut doc;
    let parts: Vec<&str> = key.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        node = node.as_object_mut().unwrap().entry(part.to_string()).or_insert(json!({}));
    }
    node.as_object_mut().unwrap().insert(parts[parts.len() - 1].to_owned(), value);
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn ids(values: &[u32]) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap().unsqueeze(0).unwrap()
}

/// Load a masked LM from `dir` and run it on three tokens.
fn masked_lm(dir: &str) -> Res {
    let model = AutoModelForMaskedLM::from_pretrained(dir)?;
    model.forward(&ModelInputs::new(ids(&[2, 10, 3])))?;
    Ok(())
}

/// Load a causal LM from `dir`, run it and generate 3 tokens.
fn causal_lm(dir: &str) -> Res {
    let model = AutoModelForCausalLM::from_pretrained(dir)?;
    model.forward(&ModelInputs::new(ids(&[5, 6, 7])))?;
    model.generate(&[5u32, 6, 7], &GenerationConfig::new().max_new_tokens(3))?;
    Ok(())
}

/// Load a tokenizer from `dir`, encode and decode.
fn tokenize(dir: &str) -> Res {
    let tok = AutoTokenizer::from_pretrained(dir)?;
    let enc = tok.encode("Hello world, the quick brown fox.")?;
    tok.decode(&enc.input_ids[0], true)?;
    Ok(())
}

/// CRC-32 (PNG, zip), bitwise.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG whose IHDR says `width` x `height` (CRC right), followed by the original data.
fn png_with_size(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    // Signature (8), length (4), "IHDR" (4), width, height at 16..24; CRC over 12..29 at 29..33.
    out[16..20].copy_from_slice(&width.to_be_bytes());
    out[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A JPEG whose first SOF says `width` x `height`.
fn jpeg_with_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let mut i = 2;
    while i + 9 < out.len() {
        assert_eq!(out[i], 0xFF);
        let marker = out[i + 1];
        let len = usize::from(u16::from_be_bytes([out[i + 2], out[i + 3]]));
        if (0xC0..=0xC2).contains(&marker) {
            out[i + 5..i + 7].copy_from_slice(&height.to_be_bytes());
            out[i + 7..i + 9].copy_from_slice(&width.to_be_bytes());
            return out;
        }
        i += 2 + len;
    }
    panic!("no SOF marker");
}

/// The safetensors file split into (header JSON, data).
fn split_safetensors(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

fn join_safetensors(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

/// The first tensor's name in a safetensors header.
fn first_tensor(header: &Value) -> String {
    header.as_object().unwrap().keys().find(|k| *k != "__metadata__").unwrap().clone()
}

const MODEL_FILE: &[&str] = &["model.safetensors"];
const CONFIG_FILE: &[&str] = &["config.json"];

// ---------------------------------------------------------------------------------------------
// The categories

fn config_cases(s: &mut Suite) {
    let cat = "config";
    let bert = "bert-masked-lm";
    let raw: [(&str, &[u8]); 7] = [
        ("empty-file", b""),
        ("truncated-json", b"{\"model_type\": \"bert\", \"hidden_size\": "),
        ("array-not-object", b"[1, 2, 3]"),
        ("binary-garbage", b"\x00\xff\xfe\x89PNG\r\n"),
        ("invalid-utf8", b"{\"model_type\": \"\xff\xfe\"}"),
        ("deep-nesting", &[b'['; 100_000]),
        ("json-string-only", b"\"bert\""),
    ];
    for (name, bytes) in raw {
        let dir = copy_fixture(bert);
        std::fs::write(dir.path().join("config.json"), bytes).unwrap();
        s.case(cat, name, Expect::Err(CONFIG_FILE), move || masked_lm(&path_str(&dir)));
    }
    let dir = copy_fixture(bert);
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    std::fs::create_dir(dir.path().join("config.json")).unwrap();
    s.case(cat, "config-is-a-folder", Expect::Err(CONFIG_FILE), move || masked_lm(&path_str(&dir)));

    // Field values, each on the BERT masked-LM fixture.
    let fields: Vec<(&str, &str, Value, Expect)> = vec![
        ("model-type-number", "model_type", json!(5), Expect::Err(&["model_type"])),
        ("model-type-empty", "model_type", json!(""), Expect::Err(&["model type", "model_type"])),
        ("hidden-size-negative", "hidden_size", json!(-1), Expect::Err(&["hidden_size"])),
        ("hidden-size-string", "hidden_size", json!("big"), Expect::Err(&["hidden_size"])),
        ("hidden-size-huge", "hidden_size", json!(1u64 << 40), Expect::Err(&["hidden_size", "embeddings"])),
        ("hidden-size-float", "hidden_size", json!(32.5), Expect::Err(&["hidden_size"])),
        ("layers-huge", "num_hidden_layers", json!(1_000_000_000u64), Expect::Err(&["num_hidden_layers", "layer"])),
        ("layers-u64-max", "num_hidden_layers", json!(u64::MAX), Expect::Err(&["num_hidden_layers", "layer"])),
        ("heads-zero", "num_attention_heads", json!(0), Expect::Err(&["num_attention_heads"])),
        ("heads-not-dividing", "num_attention_heads", json!(7), Expect::Err(&["num_attention_heads", "hidden_size"])),
        ("heads-huge", "num_attention_heads", json!(1u64 << 40), Expect::Err(&["num_attention_heads", "hidden_size"])),
        ("vocab-zero", "vocab_size", json!(0), Expect::Err(&["vocab_size", "word_embeddings"])),
        ("vocab-huge", "vocab_size", json!(1u64 << 40), Expect::Err(&["vocab_size", "word_embeddings"])),
        ("max-positions-zero", "max_position_embeddings", json!(0), Expect::Err(&["position_embeddings"])),
        ("intermediate-huge", "intermediate_size", json!(1u64 << 40), Expect::Err(&["intermediate"])),
        ("layer-norm-eps-string", "layer_norm_eps", json!("x"), Expect::Err(&["layer_norm_eps"])),
        ("hidden-act-unknown", "hidden_act", json!("gelu_nope"), Expect::Err(&["hidden_act"])),
        ("hidden-act-object", "hidden_act", json!({"a": 1}), Expect::Err(&["hidden_act"])),
        ("type-vocab-zero", "type_vocab_size", json!(0), Expect::Err(&["token_type_embeddings", "type_vocab_size"])),
        // Fixed by the lead: dtype, id2label, problem_type are validated.
        ("torch-dtype-garbage", "torch_dtype", json!("garbage"), Expect::Err(&["dtype"])),
        ("dtype-number", "dtype", json!(5), Expect::Err(&["dtype"])),
        ("dtype-int8", "dtype", json!("int8"), Expect::Err(&["dtype"])),
        ("dtype-object", "dtype", json!({"a": "b"}), Expect::Err(&["dtype"])),
        ("id2label-non-integer-keys", "id2label", json!({"a": "X", "b": "Y"}), Expect::Err(&["id2label"])),
        ("id2label-array", "id2label", json!(["X", "Y"]), Expect::Err(&["id2label"])),
        ("label2id-string", "label2id", json!("X"), Expect::Err(&["label2id"])),
        ("problem-type-garbage", "problem_type", json!("garbage"), Expect::Err(&["problem_type"])),
        (
            "architectures-number",
            "architectures",
            json!(5),
            Expect::ErrOrOk(
                &["architectures"],
                "the Auto class and `model_type` choose the head; transformers ignores it too",
            ),
        ),
    ];
    for (name, key, value, expect) in fields {
        let dir = copy_fixture(bert);
        set_json(dir.path(), "config.json", key, value);
        s.case(cat, name, expect, move || masked_lm(&path_str(&dir)));
    }

    // AutoConfig alone (no weights): validation happens when the config is read.
    for (name, key, value, needles) in [
        ("autoconfig-dtype-garbage", "torch_dtype", json!("garbage"), &["dtype"] as &[&str]),
        ("autoconfig-problem-type", "problem_type", json!("regression_ish"), &["problem_type"]),
        ("autoconfig-id2label-keys", "id2label", json!({"zero": "A"}), &["id2label"]),
    ] {
        let dir = copy_fixture(bert);
        set_json(dir.path(), "config.json", key, value);
        s.case(cat, name, Expect::Err(needles), move || AutoConfig::from_pretrained(&path_str(&dir)).map(drop));
    }

    // Sequence classification: num_labels / id2label that disagree with the weights.
    for (name, key, value) in [
        ("seqcls-num-labels-huge", "num_labels", json!(1u64 << 40)),
        ("seqcls-id2label-mismatch", "id2label", json!({"0": "A"})),
    ] {
        let reason = "`id2label` gives the labels and `num_labels` follows it, as in transformers (which warns)";
        let dir = copy_fixture("bert-sequence-classification");
        set_json(dir.path(), "config.json", key, value);
        s.case(cat, name, Expect::ErrOrOk(&["classifier", "num_labels", "id2label", "labels"], reason), move || {
            let model = AutoModelForSequenceClassification::from_pretrained(&path_str(&dir))?;
            model.forward(&ModelInputs::new(ids(&[2, 10, 3])))?;
            Ok(())
        });
    }

    // Decoder configs (llama): head counts, rope, windows.
    let llama: Vec<(&str, &str, Value, Expect)> = vec![
        ("llama-kv-heads-zero", "num_key_value_heads", json!(0), Expect::Err(&["num_key_value_heads"])),
        (
            "llama-kv-heads-not-dividing",
            "num_key_value_heads",
            json!(3),
            Expect::Err(&["num_key_value_heads", "k_proj"]),
        ),
        (
            "llama-head-dim-zero",
            "head_dim",
            json!(0),
            Expect::ErrOrOk(&["head_dim", "q_proj"], "0 means hidden_size / heads, as transformers' `head_dim or ...`"),
        ),
        ("llama-head-dim-odd", "head_dim", json!(7), Expect::Err(&["head_dim", "q_proj"])),
        ("llama-head-dim-huge", "head_dim", json!(1u64 << 40), Expect::Err(&["head_dim"])),
        (
            "llama-hidden-size-huge",
            "hidden_size",
            json!(1u64 << 41),
            Expect::Err(&["head_dim", "hidden_size", "config.json"]),
        ),
        ("llama-rope-theta-string", "rope_theta", json!("x"), Expect::Err(&["rope_theta"])),
        (
            "llama-rope-theta-negative",
            "rope_theta",
            json!(-1.0),
            Expect::ErrOrOk(&["rope_theta"], "transformers accepts it too (the rotary gets NaN frequencies)"),
        ),
        (
            "llama-rope-type-unknown",
            "rope_scaling",
            json!({"rope_type": "nope", "factor": 2.0}),
            Expect::Err(&["nope"]),
        ),
        (
            "llama-rope-factor-string",
            "rope_scaling",
            json!({"rope_type": "linear", "factor": "x"}),
            Expect::Err(&["factor", "rope"]),
        ),
        ("llama-layers-huge", "num_hidden_layers", json!(1u64 << 40), Expect::Err(&["num_hidden_layers", "layers"])),
        (
            "llama-max-positions-zero",
            "max_position_embeddings",
            json!(0),
            Expect::Err(&["max_position_embeddings", "position", "sequence"]),
        ),
        ("llama-tie-string", "tie_word_embeddings", json!("yes"), Expect::Err(&["tie_word_embeddings"])),
        (
            "llama-rms-eps-null",
            "rms_norm_eps",
            json!(null),
            Expect::ErrOrOk(&["rms_norm_eps"], "null means the default, as in transformers"),
        ),
        ("llama-eos-string", "eos_token_id", json!("x"), Expect::Err(&["eos_token_id"])),
    ];
    for (name, key, value, expect) in llama {
        let dir = copy_fixture("llama-causal-lm");
        set_json(dir.path(), "config.json", key, value);
        s.case(cat, name, expect, move || causal_lm(&path_str(&dir)));
    }
}

fn weights_cases(s: &mut Suite) {
    let cat = "weights";
    let bert = "bert-masked-lm";
    let original = std::fs::read(fixture(bert).join("model.safetensors")).unwrap();
    let (header, data) = split_safetensors(&original);
    let tensor = first_tensor(&header);

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [0, 4, 8, 9, 64, original.len() / 2, original.len() - 1] {
        files.push((format!("truncated-at-{cut}"), original[..cut].to_vec()));
    }
    let mut len_max = original.clone();
    len_max[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    files.push(("header-length-u64-max".into(), len_max));
    let mut len_big = original.clone();
    len_big[..8].copy_from_slice(&(100u64 << 20).to_le_bytes());
    files.push(("header-length-100mb".into(), len_big));
    let mut len_zero = original.clone();
    len_zero[..8].copy_from_slice(&0u64.to_le_bytes());
    files.push(("header-length-zero".into(), len_zero));
    files.push(("header-not-json".into(), join_safetensors(b"not json at all!", &data)));
    files.push(("header-array".into(), join_safetensors(b"[1,2,3]", &data)));
    files.push(("header-empty-object".into(), join_safetensors(b"{}", &data)));
    let mut edits: Vec<(&str, Value)> = vec![
        ("offsets-past-end", json!({"data_offsets": [0, data.len() + 1_000_000]})),
        ("offsets-reversed", json!({"data_offsets": [100, 10]})),
        ("offsets-u64-max", json!({"data_offsets": [0, u64::MAX]})),
        ("shape-overflow", json!({"shape": [u64::MAX, u64::MAX]})),
        ("shape-huge", json!({"shape": [1u64 << 20, 1u64 << 20]})),
        ("shape-negative", json!({"shape": [-1, 4]})),
        ("shape-many-dims", json!({"shape": vec![1; 10_000]})),
        ("dtype-unknown", json!({"dtype": "Q9"})),
        ("dtype-number", json!({"dtype": 5})),
        ("dtype-bool", json!({"dtype": "BOOL"})),
        ("shape-mismatch-bytes", json!({"shape": [3]})),
    ];
    for (name, patch) in edits.drain(..) {
        let mut h = header.clone();
        for (k, v) in patch.as_object().unwrap() {
            h[&tensor][k] = v.clone();
        }
        files.push((name.to_owned(), join_safetensors(&serde_json::to_vec(&h).unwrap(), &data)));
    }
    let mut h = header.clone();
    h["__metadata__"] = json!({"format": {"nested": 1}});
    files.push(("metadata-not-strings".into(), join_safetensors(&serde_json::to_vec(&h).unwrap(), &data)));
    let mut h = header.clone();
    let entry = h[&tensor].clone();
    for i in 0..50_000 {
        h[format!("extra.{i}")] = entry.clone();
    }
    files.push(("many-aliasing-tensors".into(), join_safetensors(&serde_json::to_vec(&h).unwrap(), &data)));
    for (name, bytes) in files {
        let dir = copy_fixture(bert);
        std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
        let expect = if name == "many-aliasing-tensors" || name == "metadata-not-strings" {
            Expect::ErrOrOk(MODEL_FILE, "the tensors the model needs are all there and valid")
        } else {
            Expect::Err(MODEL_FILE)
        };
        s.case(cat, &name, expect, move || masked_lm(&path_str(&dir)));
    }
    let dir = copy_fixture(bert);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::create_dir(dir.path().join("model.safetensors")).unwrap();
    s.case(cat, "weights-is-a-folder", Expect::Err(MODEL_FILE), move || masked_lm(&path_str(&dir)));

    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().unwrap();
        std::fs::copy(fixture(bert).join("model.safetensors"), outside.path().join("w.safetensors")).unwrap();
        let dir = copy_fixture(bert);
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("w.safetensors"), dir.path().join("model.safetensors")).unwrap();
        s.case(cat, "symlink-outside-folder", Expect::Err(MODEL_FILE), move || {
            let _keep = &outside;
            masked_lm(&path_str(&dir))
        });
        let dir = copy_fixture(bert);
        set_json(dir.path(), "config.json", "x", json!(1));
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("config.json")).unwrap();
        s.case(cat, "config-symlink-to-etc-passwd", Expect::Err(CONFIG_FILE), move || masked_lm(&path_str(&dir)));
    }

    // Sharded checkpoints: the index and its shards.
    let cat = "index";
    let sharded = "bert-sharded";
    const INDEX: &[&str] = &["model.safetensors.index.json"];
    let index_name = INDEX[0];
    let index = read_json(&fixture(sharded).join(index_name));
    let first_key = index["weight_map"].as_object().unwrap().keys().next().unwrap().clone();
    let index_cases: Vec<(&str, Value, &'static [&'static str])> = vec![
        ("weight-map-missing", json!({"metadata": {}}), &["weight_map", "index"]),
        ("weight-map-array", json!({"weight_map": [1, 2]}), &["weight_map", "index"]),
        ("weight-map-empty", json!({"weight_map": {}}), &["index", "not found", "missing", "weight"]),
        (
            "shard-missing",
            {
                let mut i = index.clone();
                i["weight_map"][&first_key] = json!("model-00009-of-00009.safetensors");
                i
            },
            &["model-00009-of-00009.safetensors"],
        ),
        (
            "shard-path-traversal",
            {
                let mut i = index.clone();
                i["weight_map"][&first_key] = json!("../../../../etc/passwd");
                i
            },
            &["etc/passwd", "index", "shard"],
        ),
        (
            "shard-absolute-path",
            {
                let mut i = index.clone();
                i["weight_map"][&first_key] = json!("/etc/passwd");
                i
            },
            &["etc/passwd", "index", "shard"],
        ),
        (
            "shard-name-number",
            {
                let mut i = index.clone();
                i["weight_map"][&first_key] = json!(5);
                i
            },
            &["weight_map", "index"],
        ),
    ];
    for (name, value, needles) in index_cases {
        let dir = copy_fixture(sharded);
        std::fs::write(dir.path().join(index_name), serde_json::to_vec(&value).unwrap()).unwrap();
        s.case(cat, name, Expect::Err(needles), move || masked_lm(&path_str(&dir)));
    }
    for (name, bytes) in [("index-truncated", &b"{\"weight_map\": {"[..]), ("index-empty", b"")] {
        let dir = copy_fixture(sharded);
        std::fs::write(dir.path().join(index_name), bytes).unwrap();
        s.case(cat, name, Expect::Err(INDEX), move || masked_lm(&path_str(&dir)));
    }
    let dir = copy_fixture(sharded);
    let shard = dir.path().join("model-00002-of-00003.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 3]).unwrap();
    s.case(cat, "shard-truncated", Expect::Err(&["model-00002-of-00003.safetensors"]), move || {
        masked_lm(&path_str(&dir))
    });
    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().unwrap();
        let dir = copy_fixture(sharded);
        const SHARD: &[&str] = &["model-00001-of-00003.safetensors"];
        let shard = SHARD[0];
        std::fs::rename(dir.path().join(shard), outside.path().join(shard)).unwrap();
        std::os::unix::fs::symlink(outside.path().join(shard), dir.path().join(shard)).unwrap();
        s.case(cat, "shard-symlink-outside", Expect::Err(SHARD), move || {
            let _keep = &outside;
            masked_lm(&path_str(&dir))
        });
    }
}

fn pickle_cases(s: &mut Suite) {
    let cat = "pickle";
    let bin = "loading/bert-tiny-bin";
    let file: &'static [&'static str] = &["pytorch_model.bin"];
    let dir = copy_fixture("loading/malicious");
    s.case(cat, "malicious-global", Expect::Err(file), move || masked_lm(&path_str(&dir)));
    let original = std::fs::read(fixture(bin).join("pytorch_model.bin")).unwrap();
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [0, 2, 30, original.len() / 4, original.len() / 2, original.len() - 22, original.len() - 1] {
        variants.push((format!("truncated-at-{cut}"), original[..cut].to_vec()));
    }
    variants.push(("not-a-zip".into(), b"this is not a zip archive at all".repeat(10)));
    variants.push(("raw-pickle-garbage".into(), vec![0x80, 0x02, 0xFF, 0xFF, 0xFF, 0x2E]));
    // The pickle inside the zip, located by its name; flip its opcodes (stored, not deflated).
    if let Some(pos) = original.windows(8).position(|w| w == b"data.pkl") {
        for (k, offset) in [(0, 40usize), (1, 60), (2, 90), (3, 140)] {
            let mut bytes = original.clone();
            let at = (pos + offset).min(bytes.len() - 1);
            bytes[at] ^= 0xFF;
            variants.push((format!("pickle-byte-flip-{k}"), bytes));
        }
    }
    for (name, bytes) in variants {
        let dir = copy_fixture(bin);
        std::fs::write(dir.path().join("pytorch_model.bin"), bytes).unwrap();
        let expect = if name.starts_with("pickle-byte-flip") {
            Expect::ErrOrOk(file, "the flipped byte fell in a string or padding the loader does not need")
        } else {
            Expect::Err(file)
        };
        s.case(cat, &name, expect, move || masked_lm(&path_str(&dir)));
    }
}

/// A GGUF string: u64 length, bytes.
fn gguf_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn gguf_cases(s: &mut Suite) {
    let cat = "gguf";
    let name = "llama-gqa-untied";
    let src = fixture("gguf/arch").join(name);
    let original = std::fs::read(src.join(format!("{name}.gguf"))).unwrap();
    let header = |version: u32, tensors: u64, kvs: u64| {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&tensors.to_le_bytes());
        out.extend_from_slice(&kvs.to_le_bytes());
        out
    };
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [0, 3, 4, 8, 16, 24, 100, original.len() / 2, original.len() - 1] {
        variants.push((format!("truncated-at-{cut}"), original[..cut].to_vec()));
    }
    let mut bad_magic = original.clone();
    bad_magic[..4].copy_from_slice(b"GGUX");
    variants.push(("bad-magic".into(), bad_magic));
    let mut bad_version = original.clone();
    bad_version[4..8].copy_from_slice(&99u32.to_le_bytes());
    variants.push(("version-99".into(), bad_version));
    let mut many_tensors = original.clone();
    many_tensors[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    variants.push(("tensor-count-u64-max".into(), many_tensors));
    let mut many_kvs = original.clone();
    many_kvs[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    variants.push(("kv-count-u64-max".into(), many_kvs));
    // A key whose length is u64::MAX.
    let mut key_len = header(3, 0, 1);
    key_len.extend_from_slice(&u64::MAX.to_le_bytes());
    variants.push(("key-length-u64-max".into(), key_len));
    // An array of u64::MAX u8 values, and of u64::MAX strings.
    for (elem, label) in [(0u32, "u8"), (8, "string")] {
        let mut arr = header(3, 0, 1);
        gguf_str(&mut arr, "general.architecture");
        arr.extend_from_slice(&9u32.to_le_bytes());
        arr.extend_from_slice(&elem.to_le_bytes());
        arr.extend_from_slice(&u64::MAX.to_le_bytes());
        variants.push((format!("array-of-{label}-length-u64-max"), arr));
    }
    // A string value of u64::MAX bytes.
    let mut long_str = header(3, 0, 1);
    gguf_str(&mut long_str, "general.architecture");
    long_str.extend_from_slice(&8u32.to_le_bytes());
    long_str.extend_from_slice(&u64::MAX.to_le_bytes());
    variants.push(("string-length-u64-max".into(), long_str));
    // An unknown value type.
    let mut bad_type = header(3, 0, 1);
    gguf_str(&mut bad_type, "general.architecture");
    bad_type.extend_from_slice(&77u32.to_le_bytes());
    variants.push(("value-type-77".into(), bad_type));
    // A tensor with 2^32 dimensions, and one with huge dims.
    for (label, dims) in [("n-dims-huge", vec![]), ("dims-overflow", vec![u64::MAX, u64::MAX])] {
        let mut t = header(3, 1, 1);
        gguf_str(&mut t, "general.architecture");
        t.extend_from_slice(&8u32.to_le_bytes());
        gguf_str(&mut t, "llama");
        gguf_str(&mut t, "token_embd.weight");
        if dims.is_empty() {
            t.extend_from_slice(&u32::MAX.to_le_bytes());
        } else {
            t.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                t.extend_from_slice(&d.to_le_bytes());
            }
        }
        t.extend_from_slice(&0u32.to_le_bytes()); // F32
        t.extend_from_slice(&0u64.to_le_bytes()); // offset
        t.extend_from_slice(&[0u8; 64]);
        variants.push((label.to_owned(), t));
    }
    for (case, bytes) in variants {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.gguf"), bytes).unwrap();
        s.case(cat, &case, Expect::Err(&["model.gguf", "gguf"]), move || {
            let path = dir.path().join("model.gguf");
            let model = AutoModelForCausalLM::from_pretrained(&path.to_string_lossy())?;
            model.forward(&ModelInputs::new(ids(&[1, 2])))?;
            Ok(())
        });
    }
    // The other bad GGUF fixtures (unknown architecture, missing block).
    for entry in std::fs::read_dir(fixture("gguf/bad")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gguf") {
            let case = path.file_stem().unwrap().to_string_lossy().into_owned();
            s.case(cat, &case, Expect::Err(&[".gguf", "gguf", "architecture"]), move || {
                AutoModelForCausalLM::from_pretrained(&path.to_string_lossy()).map(drop)
            });
        }
    }
}

fn tokenizer_cases(s: &mut Suite) {
    let cat = "tokenizer";
    let bert = "bert-masked-lm";
    let tj: &'static [&'static str] = &["tokenizer.json"];
    let tc: &'static [&'static str] = &["tokenizer_config.json"];
    let original: Value = read_json(&fixture(bert).join("tokenizer.json"));
    let raw: [(&str, &[u8]); 5] = [
        ("tokenizer-json-empty", b""),
        ("tokenizer-json-truncated", b"{\"version\": \"1.0\", \"model\": {"),
        ("tokenizer-json-array", b"[]"),
        ("tokenizer-json-binary", b"\x00\x01\x02\xff"),
        ("tokenizer-json-deep", &[b'{'; 50_000]),
    ];
    for (name, bytes) in raw {
        let dir = copy_fixture(bert);
        std::fs::write(dir.path().join("tokenizer.json"), bytes).unwrap();
        s.case(cat, name, Expect::Err(tj), move || tokenize(&path_str(&dir)));
    }
    let edits: Vec<(&str, &str, Value)> = vec![
        ("model-type-unknown", "model/type", json!("Nope")),
        ("model-vocab-string", "model/vocab", json!("x")),
        ("model-vocab-ids-huge", "model/vocab", json!({"[UNK]": u32::MAX, "a": 1u64 << 40})),
        ("model-unk-missing-from-vocab", "model/unk_token", json!("<never-seen>")),
        ("normalizer-unknown", "normalizer", json!({"type": "Nope"})),
        (
            "pre-tokenizer-bad-regex",
            "pre_tokenizer",
            json!({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}),
        ),
        ("post-processor-garbage", "post_processor", json!({"type": "TemplateProcessing", "single": 5})),
        (
            "added-tokens-id-huge",
            "added_tokens",
            json!([{"id": u32::MAX, "content": "[X]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]),
        ),
        ("added-tokens-not-array", "added_tokens", json!("x")),
        ("decoder-unknown", "decoder", json!({"type": "Nope"})),
        (
            "truncation-max-length-huge",
            "truncation",
            json!({"direction": "Right", "max_length": u64::MAX, "strategy": "LongestFirst", "stride": u64::MAX}),
        ),
        ("padding-garbage", "padding", json!({"strategy": "Nope"})),
    ];
    for (name, key, value) in edits {
        let dir = copy_fixture(bert);
        let mut doc = original.clone();
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            [a] => doc[*a] = value,
            [a, b] => doc[*a][*b] = value,
            _ => unreachable!(),
        }
        std::fs::write(dir.path().join("tokenizer.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
        let expect = match name {
            "model-vocab-ids-huge"
            | "added-tokens-id-huge"
            | "model-unk-missing-from-vocab"
            | "truncation-max-length-huge" => {
                Expect::ErrOrOk(tj, "the tokenizers crate accepts it, as Python's does; encoding works")
            }
            _ => Expect::Err(tj),
        };
        s.case(cat, name, expect, move || tokenize(&path_str(&dir)));
    }
    // The backtracking pre-tokenizer regex (issue 20): a clear error, not an Oniguruma panic.
    let dir = tempfile::tempdir().unwrap();
    let backtracking = json!({
        "version": "1.0", "added_tokens": [], "normalizer": null, "post_processor": null, "decoder": null,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a+)+b"}, "behavior": "Isolated", "invert": false},
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1, "b": 2}, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.path().join("tokenizer.json"), backtracking.to_string()).unwrap();
    s.case(
        cat,
        "backtracking-regex",
        Expect::ErrOrOk(tj, "the pure-Rust regex engine never backtracks (built without onig)"),
        move || {
            let tok = AutoTokenizer::from_pretrained(&path_str(&dir))?;
            tok.encode(&"a".repeat(40))?;
            Ok(())
        },
    );

    // tokenizer_config.json
    let tc_cases: Vec<(&str, &str, Value, Expect)> = vec![
        ("model-max-length-string", "model_max_length", json!("big"), Expect::Err(&["model_max_length"])),
        (
            "model-max-length-negative",
            "model_max_length",
            json!(-5),
            Expect::ErrOrOk(
                &["model_max_length"],
                "a number, as transformers accepts; not a positive limit, so no limit",
            ),
        ),
        ("padding-side-middle", "padding_side", json!("middle"), Expect::Err(&["padding_side"])),
        ("truncation-side-number", "truncation_side", json!(3), Expect::Err(&["truncation_side"])),
        ("bos-token-number", "bos_token", json!(5), Expect::Err(&["bos_token"])),
        ("pad-token-array", "pad_token", json!(["a"]), Expect::Err(&["pad_token"])),
        ("chat-template-number", "chat_template", json!(5), Expect::Err(&["chat_template"])),
        ("chat-template-list-garbage", "chat_template", json!([{"nom": "x"}]), Expect::Err(&["chat_template"])),
        (
            "added-tokens-decoder-garbage",
            "added_tokens_decoder",
            json!({"abc": "x"}),
            Expect::Err(&["added_tokens_decoder"]),
        ),
        ("do-lower-case-string", "do_lower_case", json!("yes"), Expect::Err(&["do_lower_case"])),
        (
            "additional-special-tokens-number",
            "additional_special_tokens",
            json!(5),
            Expect::Err(&["additional_special_tokens"]),
        ),
    ];
    for (name, key, value, expect) in tc_cases {
        let dir = copy_fixture(bert);
        set_json(dir.path(), "tokenizer_config.json", key, value);
        s.case(cat, name, expect, move || {
            tokenize(&path_str(&dir))?;
            if key == "chat_template" {
                AutoTokenizer::from_pretrained(&path_str(&dir))?.apply_chat_template(&[("user", "hi")], true)?;
            }
            Ok(())
        });
    }
    for (name, bytes) in
        [("tokenizer-config-truncated", &b"{\"model_max_length\": "[..]), ("tokenizer-config-array", b"[]")]
    {
        let dir = copy_fixture(bert);
        std::fs::write(dir.path().join("tokenizer_config.json"), bytes).unwrap();
        s.case(cat, name, Expect::Err(tc), move || tokenize(&path_str(&dir)));
    }
    // special_tokens_map.json and added_tokens.json (read by the slow-tokenizer path).
    for (file, name, content) in [
        ("special_tokens_map.json", "special-tokens-map-wrong-types", json!({"pad_token": 5, "unk_token": [1]})),
        ("special_tokens_map.json", "special-tokens-map-array", json!([1, 2])),
        ("added_tokens.json", "added-tokens-json-garbage", json!({"[NEW]": "x"})),
        ("added_tokens.json", "added-tokens-json-array", json!([1])),
    ] {
        for fixture_name in [bert, "tokenizers/bert-vocab-only"] {
            let dir = copy_fixture(fixture_name);
            std::fs::write(dir.path().join(file), serde_json::to_vec(&content).unwrap()).unwrap();
            let needles: &'static [&'static str] =
                if file == "added_tokens.json" { &["added_tokens.json"] } else { &["special_tokens_map.json"] };
            let case = format!("{name}{}", if fixture_name == bert { "" } else { "-vocab-only" });
            let expect = if fixture_name == bert {
                Expect::ErrOrOk(
                    needles,
                    "tokenizer.json is there, so transformers' fast tokenizer ignores this file too",
                )
            } else if file == "added_tokens.json" {
                Expect::ErrOrOk(needles, "autocandle does not read added_tokens.json (the vocabulary is vocab.txt)")
            } else {
                Expect::Err(needles)
            };
            s.case(cat, &case, expect, move || tokenize(&path_str(&dir)));
        }
    }
    let dir = copy_fixture("tokenizers/bert-vocab-only");
    std::fs::write(dir.path().join("vocab.txt"), b"\xff\xfe\x00garbage\n").unwrap();
    s.case(cat, "vocab-txt-invalid-utf8", Expect::Err(&["vocab.txt"]), move || tokenize(&path_str(&dir)));
    let dir = copy_fixture("tokenizers/bert-vocab-only");
    std::fs::write(dir.path().join("vocab.txt"), b"").unwrap();
    s.case(cat, "vocab-txt-empty", Expect::Err(&["vocab.txt", "[UNK]", "unk"]), move || tokenize(&path_str(&dir)));
}

fn chat_template_cases(s: &mut Suite) {
    let cat = "chat-template";
    let chat = "qwen3-chat";
    let needles: &'static [&'static str] = &["chat template", "chat_template", "template"];
    let templates: Vec<(&str, &str, &'static [&'static str])> = vec![
        ("syntax-error", "{% for %}", needles),
        ("unclosed-block", "{% if true %}x", needles),
        ("undefined-filter", "{{ messages | nope }}", needles),
        ("raise-exception", "{{ raise_exception('boom: no system role') }}", &["boom"]),
        ("range-huge", "{% for i in range(999999999999) %}x{% endfor %}", needles),
        ("nested-loops", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", needles),
        ("recursive-macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", needles),
        ("string-times-huge", "{{ 'x' * 999999999999 }}", needles),
        (
            "string-times-large",
            "{% set s = 'xxxxxxxxxxxxxxxx' * 100000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
            needles,
        ),
        ("list-times-huge", "{{ ([1] * 999999999999) | length }}", needles),
        ("division-by-zero", "{{ 1 // 0 }}", needles),
        (
            "deep-expression",
            &*Box::leak(format!("{}1{}", "(".repeat(5000), ")".repeat(5000)).into_boxed_str()),
            needles,
        ),
        (
            "deep-expression-100k",
            &*Box::leak(format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)).into_boxed_str()),
            needles,
        ),
        (
            "deep-nested-ifs",
            &*Box::leak(
                format!("{}x{}", "{% if true %}".repeat(20_000), "{% endif %}".repeat(20_000)).into_boxed_str(),
            ),
            needles,
        ),
    ];
    for (name, template, needles) in templates {
        let dir = copy_fixture(chat);
        set_json(dir.path(), "tokenizer_config.json", "chat_template", json!(template));
        let expect = if name.starts_with("deep-") {
            Expect::ErrOrOk(
                needles,
                "minijinja parses nested parentheses without deep recursion (no stack overflow); the expression renders `1`",
            )
        } else {
            Expect::Err(needles)
        };
        s.case(cat, name, expect, move || {
            let tok = AutoTokenizer::from_pretrained(&path_str(&dir))?;
            tok.apply_chat_template(&[("user", "hi")], true)?;
            Ok(())
        });
    }
    // A chat_template.jinja file that is not UTF-8, and one that is a folder.
    let dir = copy_fixture(chat);
    std::fs::write(dir.path().join("chat_template.jinja"), b"\xff\xfe{{ x }}").unwrap();
    s.case(cat, "jinja-file-invalid-utf8", Expect::Err(&["chat_template.jinja"]), move || {
        let tok = AutoTokenizer::from_pretrained(&path_str(&dir))?;
        tok.apply_chat_template(&[("user", "hi")], true)?;
        Ok(())
    });
    let dir = copy_fixture(chat);
    std::fs::create_dir(dir.path().join("chat_template.jinja")).unwrap();
    let reason = "a folder is not a template file; the template of tokenizer_config.json is used, as in transformers";
    s.case(cat, "jinja-file-is-a-folder", Expect::ErrOrOk(&["chat_template.jinja"], reason), move || {
        let tok = AutoTokenizer::from_pretrained(&path_str(&dir))?;
        tok.apply_chat_template(&[("user", "hi")], true)?;
        Ok(())
    });
}

fn generation_config_cases(s: &mut Suite) {
    let cat = "generation-config";
    let gc: &'static [&'static str] = &["generation_config.json", "generation"];
    let fields: Vec<(&str, &str, Value, &'static [&'static str])> = vec![
        ("num-beams-million", "num_beams", json!(1_000_000), &["num_beams"]),
        ("num-beams-zero", "num_beams", json!(0), &["num_beams"]),
        ("max-new-tokens-huge", "max_new_tokens", json!(1_000_000_000_000u64), &["max_new_tokens"]),
        ("max-new-tokens-zero", "max_new_tokens", json!(0), &["max_new_tokens"]),
        ("max-length-huge", "max_length", json!(u64::MAX), &["max_length"]),
        ("num-return-sequences-huge", "num_return_sequences", json!(1_000_000), &["num_return_sequences"]),
        ("top-p-5", "top_p", json!(5.0), &["top_p"]),
        ("top-p-negative", "top_p", json!(-0.5), &["top_p"]),
        ("temperature-negative", "temperature", json!(-1.0), &["temperature"]),
        ("top-k-negative", "top_k", json!(-1), &["top_k"]),
        ("top-k-string", "top_k", json!("many"), &["top_k"]),
        ("eos-token-id-string", "eos_token_id", json!("x"), &["eos_token_id"]),
        ("eos-token-id-negative", "eos_token_id", json!(-3), &["eos_token_id"]),
        ("repetition-penalty-zero", "repetition_penalty", json!(0.0), &["repetition_penalty"]),
        ("length-penalty-string", "length_penalty", json!("x"), &["length_penalty"]),
        ("do-sample-string", "do_sample", json!("yes"), &["do_sample"]),
        ("stop-strings-empty", "stop_strings", json!([""]), &["stop_strings"]),
    ];
    for (name, key, value, needles) in fields {
        let dir = copy_fixture("llama-causal-lm");
        set_json(dir.path(), "generation_config.json", key, value);
        if matches!(name, "top-p-5" | "top-p-negative" | "temperature-negative" | "top-k-negative") {
            set_json(dir.path(), "generation_config.json", "do_sample", json!(true));
        }
        let expect = if name == "eos-token-id-negative" {
            Expect::ErrOrOk(needles, "transformers only warns; generation then stops at the length limit")
        } else {
            Expect::Err(needles)
        };
        s.case(cat, name, expect, move || {
            let path = path_str(&dir);
            let config = GenerationConfig::from_pretrained(&path)?;
            let model = AutoModelForCausalLM::from_pretrained(&path)?;
            model.generate(&[5u32, 6, 7], &config.max_new_tokens(2))?;
            Ok(())
        });
    }
    for (name, bytes) in [("truncated", &b"{\"max_new_tokens\": "[..]), ("array", b"[1]"), ("empty", b"")] {
        let dir = copy_fixture("llama-causal-lm");
        std::fs::write(dir.path().join("generation_config.json"), bytes).unwrap();
        s.case(cat, name, Expect::Err(gc), move || GenerationConfig::from_pretrained(&path_str(&dir)).map(drop));
    }
    // Sizes given in code (issue 20, fixed by the lead): beams, lengths, T5 input length.
    s.case(cat, "t5-num-beams-million", Expect::Err(&["num_beams"]), || {
        let model = AutoModelForSeq2SeqLM::from_pretrained(&fixture("t5-seq2seq-lm").to_string_lossy())?;
        model.generate(&ModelInputs::new(ids(&[5, 6, 7])), &GenerationConfig::new().num_beams(1_000_000))?;
        Ok(())
    });
    s.case(cat, "t5-max-new-tokens-huge", Expect::Err(&["max_new_tokens"]), || {
        let model = AutoModelForSeq2SeqLM::from_pretrained(&fixture("t5-seq2seq-lm").to_string_lossy())?;
        model
            .generate(&ModelInputs::new(ids(&[5, 6, 7])), &GenerationConfig::new().max_new_tokens(1_000_000_000_000))?;
        Ok(())
    });
    s.case(cat, "t5-input-1mb", Expect::Err(&["input", "tokens", "long"]), || {
        let pipe = Text2TextGenerationPipeline::new(&fixture("pipelines/t5-text2text").to_string_lossy())?;
        let opts = Text2TextOptions {
            truncation: false,
            generation: Some(GenerationConfig::new().max_new_tokens(2)),
            ..Text2TextOptions::default()
        };
        pipe.call_with(&"hello world ".repeat(90_000), &opts)?;
        Ok(())
    });
    s.case(cat, "t5-input-1m-ids", Expect::Err(&["input", "tokens", "long"]), || {
        let model = AutoModelForSeq2SeqLM::from_pretrained(&fixture("t5-seq2seq-lm").to_string_lossy())?;
        let long = Tensor::ones((1, 1_000_000), candle_core::DType::U32, &Device::Cpu).unwrap();
        model.generate(&ModelInputs::new(long), &GenerationConfig::new().max_new_tokens(2))?;
        Ok(())
    });
    s.case(cat, "causal-max-new-tokens-past-context", Expect::Err(&["max", "sequence", "positions"]), || {
        let model = AutoModelForCausalLM::from_pretrained(&fixture("llama-causal-lm").to_string_lossy())?;
        model.generate(&[5u32, 6], &GenerationConfig::new().max_new_tokens(1_000_000))?;
        Ok(())
    });
}

fn preprocessor_cases(s: &mut Suite) {
    let cat = "preprocessor-config";
    let pc: &'static [&'static str] = &["preprocessor_config.json"];
    let vit = "pipelines/vit-image-classification";
    let image = open_image(fixture("images").join("rgb_37x23.png")).unwrap();
    let fields: Vec<(&str, &str, Value, Expect)> = vec![
        ("size-huge", "size", json!({"height": 100_000, "width": 100_000}), Expect::Err(&["size"])),
        ("size-u64-max", "size", json!({"height": u64::MAX, "width": u64::MAX}), Expect::Err(&["size"])),
        ("size-zero", "size", json!({"height": 0, "width": 0}), Expect::Err(&["size"])),
        ("size-negative", "size", json!({"height": -16, "width": 16}), Expect::Err(&["size"])),
        ("size-string", "size", json!("big"), Expect::Err(&["size"])),
        ("shortest-edge-huge", "size", json!({"shortest_edge": 1_000_000}), Expect::Err(&["size", "shortest_edge"])),
        ("crop-size-huge", "crop_size", json!({"height": 100_000, "width": 100_000}), Expect::Err(&["crop_size"])),
        ("image-mean-short", "image_mean", json!([0.5, 0.5]), Expect::Err(&["image_mean"])),
        ("image-mean-string", "image_mean", json!("x"), Expect::Err(&["image_mean"])),
        ("image-std-zero", "image_std", json!([0.0, 0.0, 0.0]), Expect::Err(&["image_std"])),
        ("resample-99", "resample", json!(99), Expect::Err(&["resample"])),
        ("rescale-factor-string", "rescale_factor", json!("x"), Expect::Err(&["rescale_factor"])),
        ("do-resize-string", "do_resize", json!("yes"), Expect::Err(&["do_resize"])),
        (
            "image-processor-type-unknown",
            "image_processor_type",
            json!("NopeImageProcessor"),
            Expect::Err(&["NopeImageProcessor", "image_processor_type"]),
        ),
    ];
    for (name, key, value, expect) in fields {
        let dir = copy_fixture(vit);
        set_json(dir.path(), "preprocessor_config.json", key, value);
        if name == "crop-size-huge" {
            set_json(dir.path(), "preprocessor_config.json", "do_center_crop", json!(true));
        }
        let image = image.clone();
        s.case(cat, name, expect, move || {
            let processor = AutoImageProcessor::from_pretrained(&path_str(&dir))?;
            processor.preprocess(std::slice::from_ref(&image))?;
            let pipe = ImageClassificationPipeline::new(&path_str(&dir))?;
            pipe.call(&image)?;
            Ok(())
        });
    }
    for (name, bytes) in [("image-truncated-json", &b"{\"size\": "[..]), ("image-array", b"[]")] {
        let dir = copy_fixture(vit);
        std::fs::write(dir.path().join("preprocessor_config.json"), bytes).unwrap();
        s.case(cat, name, Expect::Err(pc), move || AutoImageProcessor::from_pretrained(&path_str(&dir)).map(drop));
    }

    // Audio feature extractors.
    let second: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let audio: Vec<(&str, &str, &str, Value, &'static [&'static str])> = vec![
        ("w2v2-sampling-rate-zero", "pipelines/asr-wav2vec2", "sampling_rate", json!(0), &["sampling_rate"]),
        ("w2v2-feature-size-huge", "pipelines/asr-wav2vec2", "feature_size", json!(1u64 << 40), &["feature_size"]),
        ("w2v2-padding-value-string", "pipelines/asr-wav2vec2", "padding_value", json!("x"), &["padding_value"]),
        ("whisper-n-fft-zero", "feature-extractors/whisper-default", "n_fft", json!(0), &["n_fft"]),
        ("whisper-n-fft-huge", "feature-extractors/whisper-default", "n_fft", json!(1u64 << 40), &["n_fft"]),
        ("whisper-hop-zero", "feature-extractors/whisper-default", "hop_length", json!(0), &["hop_length"]),
        (
            "whisper-mels-huge",
            "feature-extractors/whisper-default",
            "feature_size",
            json!(1_000_000),
            &["feature_size", "mel"],
        ),
        (
            "whisper-chunk-huge",
            "feature-extractors/whisper-default",
            "chunk_length",
            json!(1_000_000_000),
            &["chunk_length", "n_samples"],
        ),
        (
            "whisper-n-samples-huge",
            "feature-extractors/whisper-default",
            "n_samples",
            json!(u64::MAX),
            &["n_samples", "chunk_length"],
        ),
        (
            "whisper-sampling-rate-zero",
            "feature-extractors/whisper-default",
            "sampling_rate",
            json!(0),
            &["sampling_rate"],
        ),
    ];
    for (name, fixture_name, key, value, needles) in audio {
        let dir = copy_fixture(fixture_name);
        set_json(dir.path(), "preprocessor_config.json", key, value);
        let second = second.clone();
        let needles: &'static [&'static str] = Box::leak([needles, pc].concat().into_boxed_slice());
        let expect = if name == "whisper-n-samples-huge" {
            Expect::ErrOrOk(
                needles,
                "`n_samples` is chunk_length x sampling_rate; transformers overwrites the field too",
            )
        } else {
            Expect::Err(needles)
        };
        s.case(cat, name, expect, move || {
            let fe = AutoFeatureExtractor::from_pretrained(&path_str(&dir))?;
            fe.extract(&[&second], &AudioFeatureOptions::new())?;
            Ok(())
        });
    }
}

fn processor_cases(s: &mut Suite) {
    let cat = "processor";
    let asr = "pipelines/asr-wav2vec2";
    let second: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let cases: Vec<(&str, &str, &[u8], &'static [&'static str])> = vec![
        ("ctc-vocab-json-garbage", "vocab.json", b"{\"a\": \"x\"}", &["vocab.json"]),
        ("ctc-vocab-json-truncated", "vocab.json", b"{\"a\": ", &["vocab.json"]),
        ("ctc-vocab-json-array", "vocab.json", b"[1, 2]", &["vocab.json"]),
        ("ctc-tokenizer-config-array", "tokenizer_config.json", b"[]", &["tokenizer_config.json"]),
        (
            "ctc-preprocessor-config-truncated",
            "preprocessor_config.json",
            b"{\"sampling_rate\": ",
            &["preprocessor_config.json"],
        ),
    ];
    for (name, file, bytes, needles) in cases {
        let dir = copy_fixture(asr);
        std::fs::write(dir.path().join(file), bytes).unwrap();
        let second = second.clone();
        s.case(cat, name, Expect::Err(needles), move || {
            let processor = AutoProcessor::from_pretrained(&path_str(&dir))?;
            processor.process_audio(&[&second], &AudioFeatureOptions::new())?;
            processor.batch_decode(&[[1u32, 2, 3]], true)?;
            Ok(())
        });
    }
    // A vision-language processor with a broken image config and too many images.
    let llava = "vlm_processors/llava";
    for (name, key, value) in [
        ("llava-size-huge", "size", json!({"shortest_edge": 1_000_000})),
        ("llava-image-mean-string", "image_mean", json!("x")),
    ] {
        let dir = copy_fixture(llava);
        set_json(dir.path(), "processor_config.json", &format!("image_processor/{key}"), value);
        let needles: &'static [&'static str] = &["processor_config.json", "size", "image_mean"];
        s.case(cat, name, Expect::Err(needles), move || {
            let processor = AutoProcessor::from_pretrained(&path_str(&dir))?;
            let image = open_image(fixture("images").join("rgb_37x23.png"))?;
            processor.process_images(&["<image> hi"], &[vec![image]], &Device::Cpu)?;
            Ok(())
        });
    }
    let dir = copy_fixture(llava);
    s.case(cat, "llava-more-images-than-placeholders", Expect::Err(&["image"]), move || {
        let processor = AutoProcessor::from_pretrained(&path_str(&dir))?;
        let image = open_image(fixture("images").join("rgb_37x23.png"))?;
        processor.process_images(&["hi, no placeholder"], &[vec![image.clone(), image]], &Device::Cpu)?;
        Ok(())
    });
}

fn image_cases(s: &mut Suite) {
    let cat = "image";
    let png = std::fs::read(fixture("images").join("rgb_37x23.png")).unwrap();
    let jpeg = std::fs::read(fixture("images").join("photo_50x41.jpg")).unwrap();
    let mut variants: Vec<(String, &str, Vec<u8>)> = Vec::new();
    for cut in [0, 4, 8, 20, 33, 60, png.len() / 2, png.len() - 12] {
        variants.push((format!("png-truncated-at-{cut}"), "png", png[..cut].to_vec()));
    }
    for (w, h) in
        [(0, 0), (1, 0), (u32::MAX, u32::MAX), (1 << 31, 1), (65_535, 65_535), (1, 1 << 30), (100_000, 100_000)]
    {
        variants.push((format!("png-header-{w}x{h}"), "png", png_with_size(&png, w, h)));
    }
    let mut bad_crc = png.clone();
    bad_crc[30] ^= 0xFF;
    variants.push(("png-ihdr-bad-crc".into(), "png", bad_crc));
    let mut bad_depth = png.clone();
    bad_depth[24] = 3;
    let crc = crc32(&bad_depth[12..29]);
    bad_depth[29..33].copy_from_slice(&crc.to_be_bytes());
    variants.push(("png-bit-depth-3".into(), "png", bad_depth));
    for cut in [0, 2, 3, 20, 200, jpeg.len() / 2, jpeg.len() - 2] {
        variants.push((format!("jpeg-truncated-at-{cut}"), "jpg", jpeg[..cut].to_vec()));
    }
    for (w, h) in [(0, 0), (65_535, 65_535), (65_535, 1), (1, 65_535), (30_000, 30_000)] {
        variants.push((format!("jpeg-header-{w}x{h}"), "jpg", jpeg_with_size(&jpeg, w, h)));
    }
    variants.push(("jpeg-soi-then-garbage".into(), "jpg", [&[0xFF, 0xD8, 0xFF][..], &[0x00; 100]].concat()));
    variants.push(("text-named-png".into(), "png", b"hello, I am not an image".to_vec()));
    variants.push(("empty-file".into(), "png", Vec::new()));
    // A GIF and a BMP header announcing 65535 x 65535.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
    variants.push(("gif-header-65535".into(), "gif", gif));
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0u8; 12]);
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0u8; 24]);
    variants.push(("bmp-header-100000".into(), "bmp", bmp));
    let pipe_dir = fixture("pipelines/vit-image-classification").to_string_lossy().into_owned();
    for (name, ext, bytes) in variants {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("image.{ext}");
        std::fs::write(dir.path().join(&file), bytes).unwrap();
        let pipe_dir = pipe_dir.clone();
        let expect = if name == "png-ihdr-bad-crc" {
            Expect::ErrOrOk(&["image."], "the png crate does not check the IHDR CRC by default, nor does PIL")
        } else if name == "jpeg-header-65535x1" || name == "jpeg-header-1x65535" {
            Expect::ErrOrOk(&["image."], "a small image (65535 pixels): jpeg-decoder decodes what the data gives")
        } else {
            Expect::Err(&["image."])
        };
        s.case(cat, &name, expect, move || {
            let image = open_image(dir.path().join(file))?;
            let pipe = ImageClassificationPipeline::new(&pipe_dir)?;
            pipe.call(&image)?;
            Ok(())
        });
    }
}

fn audio_cases(s: &mut Suite) {
    let cat = "audio";
    let wav = std::fs::read(fixture("audio").join("speech_16k.wav")).unwrap();
    // Find the chunks of a canonical WAV: "fmt " at 12, "data" after it.
    let data_at = wav.windows(4).position(|w| w == b"data").unwrap();
    let mut variants: Vec<(String, &str, Vec<u8>)> = Vec::new();
    for cut in [0, 4, 12, 20, 36, data_at + 4, data_at + 8, data_at + 9, wav.len() / 2, wav.len() - 1] {
        variants.push((format!("wav-truncated-at-{cut}"), "wav", wav[..cut].to_vec()));
    }
    let patch = |offset: usize, bytes: &[u8]| {
        let mut w = wav.clone();
        w[offset..offset + bytes.len()].copy_from_slice(bytes);
        w
    };
    variants.push(("wav-data-size-u32-max".into(), "wav", patch(data_at + 4, &u32::MAX.to_le_bytes())));
    variants.push(("wav-riff-size-u32-max".into(), "wav", patch(4, &u32::MAX.to_le_bytes())));
    variants.push(("wav-fmt-size-u32-max".into(), "wav", patch(16, &u32::MAX.to_le_bytes())));
    variants.push(("wav-channels-zero".into(), "wav", patch(22, &0u16.to_le_bytes())));
    variants.push(("wav-channels-65535".into(), "wav", patch(22, &u16::MAX.to_le_bytes())));
    variants.push(("wav-sample-rate-zero".into(), "wav", patch(24, &0u32.to_le_bytes())));
    variants.push(("wav-sample-rate-u32-max".into(), "wav", patch(24, &u32::MAX.to_le_bytes())));
    variants.push(("wav-sample-rate-1".into(), "wav", patch(24, &1u32.to_le_bytes())));
    variants.push(("wav-bits-7".into(), "wav", patch(34, &7u16.to_le_bytes())));
    variants.push(("wav-bits-zero".into(), "wav", patch(34, &0u16.to_le_bytes())));
    variants.push(("wav-format-tag-unknown".into(), "wav", patch(20, &0x1234u16.to_le_bytes())));
    variants.push(("wav-block-align-zero".into(), "wav", patch(32, &0u16.to_le_bytes())));
    variants.push(("wav-not-riff".into(), "wav", patch(0, b"RIFX")));
    variants.push(("text-named-wav".into(), "wav", b"not audio".to_vec()));
    for (name, ext) in [("flac-truncated", "flac"), ("mp3-truncated", "mp3"), ("ogg-truncated", "ogg")] {
        let bytes = std::fs::read(fixture("audio").join(format!("speech_16k.{ext}"))).unwrap();
        variants.push((format!("{name}-quarter"), ext, bytes[..bytes.len() / 4].to_vec()));
        variants.push((format!("{name}-header"), ext, bytes[..bytes.len().min(40)].to_vec()));
    }
    let asr = fixture("pipelines/asr-wav2vec2").to_string_lossy().into_owned();
    for (name, ext, bytes) in variants {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("audio.{ext}");
        std::fs::write(dir.path().join(&file), bytes).unwrap();
        let asr = asr.clone();
        // A truncated compressed stream decodes to the frames before the cut, as ffmpeg does.
        let expect = if name.ends_with("-quarter")
            || name == "wav-sample-rate-1"
            || name == "wav-riff-size-u32-max"
            || name == "wav-truncated-at-".to_owned() + &(wav.len() / 2).to_string()
            || name == "wav-truncated-at-".to_owned() + &(wav.len() - 1).to_string()
            || name == "wav-data-size-u32-max"
        {
            Expect::ErrOrOk(&["audio."], "the samples before the damage decode, as ffmpeg/soundfile read them")
        } else {
            Expect::Err(&["audio."])
        };
        s.case(cat, &name, expect, move || {
            let path = dir.path().join(file);
            load_audio(&path, 16_000)?;
            let pipe = AutomaticSpeechRecognitionPipeline::new(&asr)?;
            pipe.call(AudioInput::File(path))?;
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests

/// Hostile JSON values put in place of a value of a valid file.
fn hostile_value(k: u8) -> Value {
    match k % 16 {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(0),
        3 => json!(1u64 << 40),
        4 => json!(u64::MAX),
        5 => json!(1.5e300),
        6 => json!("x"),
        7 => json!(""),
        8 => json!([]),
        9 => json!({}),
        10 => json!(true),
        11 => json!(-1e-300),
        12 => json!([1, 2, 3]),
        13 => json!({"type": "Nope"}),
        14 => json!(65_537),
        _ => json!(i64::MIN),
    }
}

/// JSON pointers of every value in `doc` (capped).
fn value_paths(doc: &Value, prefix: String, out: &mut Vec<String>) {
    if out.len() > 20_000 {
        return;
    }
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                value_paths(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate().take(64) {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                value_paths(v, p, out);
            }
        }
        _ => {}
    }
}

/// One mutation: (kind, position, value).
type Mutation = (u8, u32, u8);

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec((any::<u8>(), any::<u32>(), any::<u8>()), 1..4)
}

/// Mutate JSON text: value replacements (most), byte flips and a truncation.
fn mutate_json(text: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(text).unwrap();
    let mut raw_ops = Vec::new();
    for &(kind, pos, val) in muts {
        if kind % 4 != 3 {
            let mut paths = Vec::new();
            value_paths(&doc, String::new(), &mut paths);
            if let Some(p) = paths.get(pos as usize % paths.len().max(1)) {
                if let Some(slot) = doc.pointer_mut(p) {
                    *slot = hostile_value(val);
                }
            }
        } else {
            raw_ops.push((pos, val));
        }
    }
    let mut bytes = serde_json::to_vec(&doc).unwrap();
    mutate_bytes(&mut bytes, &raw_ops);
    bytes
}

/// Byte flips, and a truncation when `val` is 0.
fn mutate_bytes(bytes: &mut Vec<u8>, ops: &[(u32, u8)]) {
    for &(pos, val) in ops {
        if bytes.is_empty() {
            return;
        }
        let at = pos as usize % bytes.len();
        if val == 0 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= val;
        }
    }
}

fn cases() -> u32 {
    std::env::var("AUTOCANDLE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Run `test` on `cases()` mutations with a fixed seed; panics are failures (proptest catches
/// them and shrinks).
fn property(
    name: &str,
    failures: &mut Vec<String>,
    test: impl Fn(&[Mutation]) -> std::result::Result<(), TestCaseError>,
) {
    let start = Instant::now();
    let config =
        PropConfig { cases: cases(), failure_persistence: None, max_shrink_iters: 64, ..PropConfig::default() };
    let mut seed = [0u8; 32];
    seed[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    match runner.run(&mutations(), |m| test(&m)) {
        Ok(()) => println!("ok property {name}: {} cases in {:.1?}", cases(), start.elapsed()),
        Err(e) => {
            println!("FAIL property {name}: {e}");
            failures.push(format!("property {name}: {e}"));
        }
    }
}

fn properties(failures: &mut Vec<String>) {
    let bert = fixture("bert-masked-lm");
    let config = std::fs::read(bert.join("config.json")).unwrap();
    let dir = copy_fixture("bert-masked-lm");
    let dir_str = path_str(&dir);
    property("config-json", failures, |m| {
        std::fs::write(dir.path().join("config.json"), mutate_json(&config, m)).unwrap();
        let _ = masked_lm(&dir_str);
        Ok(())
    });
    std::fs::write(dir.path().join("config.json"), &config).unwrap();

    // A decoder config too: the llama-like decoders share the config code of 20 model types.
    let llama_dir = copy_fixture("llama-causal-lm");
    let llama_str = path_str(&llama_dir);
    let llama_config = std::fs::read(llama_dir.path().join("config.json")).unwrap();
    property("llama-config-json", failures, |m| {
        std::fs::write(llama_dir.path().join("config.json"), mutate_json(&llama_config, m)).unwrap();
        let _ = causal_lm(&llama_str);
        Ok(())
    });

    let weights = std::fs::read(bert.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header_bytes = weights[8..8 + n].to_vec();
    let data = weights[8 + n..].to_vec();
    property("safetensors-header", failures, |m| {
        // Mostly header mutations; the length prefix mutated when kind % 8 == 7.
        let header = mutate_json(&header_bytes, m);
        let mut file = join_safetensors(&header, &data);
        for &(kind, pos, val) in m {
            if kind % 8 == 7 {
                file[pos as usize % 8] ^= val | 1;
            }
        }
        std::fs::write(dir.path().join("model.safetensors"), file).unwrap();
        let _ = masked_lm(&dir_str);
        Ok(())
    });
    std::fs::write(dir.path().join("model.safetensors"), &weights).unwrap();

    for file in ["tokenizer.json", "tokenizer_config.json"] {
        let original = std::fs::read(bert.join(file)).unwrap();
        property(file, failures, |m| {
            std::fs::write(dir.path().join(file), mutate_json(&original, m)).unwrap();
            let _ = tokenize(&dir_str);
            Ok(())
        });
        std::fs::write(dir.path().join(file), &original).unwrap();
    }

    let bin_dir = copy_fixture("loading/bert-tiny-bin");
    let bin_str = path_str(&bin_dir);
    let bin = std::fs::read(bin_dir.path().join("pytorch_model.bin")).unwrap();
    property("pytorch-model-bin", failures, |m| {
        let mut bytes = bin.clone();
        let ops: Vec<(u32, u8)> = m.iter().map(|&(_, pos, val)| (pos, val)).collect();
        mutate_bytes(&mut bytes, &ops);
        std::fs::write(bin_dir.path().join("pytorch_model.bin"), bytes).unwrap();
        let _ = masked_lm(&bin_str);
        Ok(())
    });

    let wav = std::fs::read(fixture("audio").join("speech_16k.wav")).unwrap();
    let wav_dir = tempfile::tempdir().unwrap();
    property("wav-bytes", failures, |m| {
        let mut bytes = wav.clone();
        // Header-heavy: positions in the first 48 bytes half of the time.
        let ops: Vec<(u32, u8)> =
            m.iter().map(|&(kind, pos, val)| (if kind % 2 == 0 { pos % 48 } else { pos }, val)).collect();
        mutate_bytes(&mut bytes, &ops);
        let path = wav_dir.path().join("mutated.wav");
        std::fs::write(&path, bytes).unwrap();
        let _ = load_audio(&path, 16_000);
        Ok(())
    });

    let images = fixture("images");
    let png = std::fs::read(images.join("rgb_37x23.png")).unwrap();
    let processor =
        AutoImageProcessor::from_pretrained(&fixture("pipelines/vit-image-classification").to_string_lossy()).unwrap();
    let img_dir = tempfile::tempdir().unwrap();
    property("png-bytes", failures, |m| {
        let mut bytes = png.clone();
        // Header-heavy: positions in the first 64 bytes half of the time.
        let ops: Vec<(u32, u8)> =
            m.iter().map(|&(kind, pos, val)| (if kind % 2 == 0 { pos % 64 } else { pos }, val)).collect();
        mutate_bytes(&mut bytes, &ops);
        // Fix the IHDR CRC half of the time, so that the size fields get through to the decoder.
        if m[0].0 % 4 < 2 && bytes.len() >= 33 {
            let crc = crc32(&bytes[12..29]);
            bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        }
        let path = img_dir.path().join("mutated.png");
        std::fs::write(&path, bytes).unwrap();
        if let Ok(image) = open_image(&path) {
            let _ = processor.preprocess(&[image]);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let start = Instant::now();
    let mut suite = Suite::default();
    type Category = fn(&mut Suite);
    let categories: [(&str, Category); 11] = [
        ("config", config_cases),
        ("weights", weights_cases),
        ("pickle", pickle_cases),
        ("gguf", gguf_cases),
        ("tokenizer", tokenizer_cases),
        ("chat-template", chat_template_cases),
        ("generation-config", generation_config_cases),
        ("preprocessor-config", preprocessor_cases),
        ("processor", processor_cases),
        ("image", image_cases),
        ("audio", audio_cases),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (name, run) in categories {
        if filter.as_deref().is_none_or(|f| name.contains(f)) {
            run(&mut suite);
        }
    }
    let suite_time = start.elapsed();
    if filter.as_deref().is_none_or(|f| "properties".contains(f)) {
        properties(&mut suite.failures);
    }
    println!();
    println!("{:<22} {:>6} {:>12} {:>9}", "category", "tried", "clean error", "accepted");
    let mut total = Counts::default();
    for (category, c) in &suite.counts {
        println!("{category:<22} {:>6} {:>12} {:>9}", c.tried, c.clean, c.accepted);
        total.tried += c.tried;
        total.clean += c.clean;
        total.accepted += c.accepted;
    }
    println!("{:<22} {:>6} {:>12} {:>9}", "total", total.tried, total.clean, total.accepted);
    println!("suite {suite_time:.1?}, with properties {:.1?}", start.elapsed());
    if !suite.failures.is_empty() {
        println!("\n{} failure(s):", suite.failures.len());
        for f in &suite.failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}
