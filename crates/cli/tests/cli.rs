//! End-to-end tests of the `autocandle` binary on the fixture folders: every pipeline
//! command's `--json` output against Python's `transformers.pipeline(...)` results in
//! `tests/fixtures/pipelines/expected.json` (scores within 1e-4; question-answering,
//! text2text-generation, summarization and translation against `transformers` 4.57's
//! `expected_v4.json`, as 5.x removed them), human output, stdin input,
//! `inspect`, `models`, and the errors for bad models, inputs and tasks. Offline: the Hub
//! cache is an empty temporary folder and `HF_HUB_OFFLINE=1`.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const TOL: f64 = 1e-4;
const TIE: f64 = 1e-6;

mod common;

use common::{autocandle, repo_root};

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Run and parse stdout as JSON, asserting success.
fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}, stderr:\n{stderr}", out.status.code());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Run expecting failure: the exit code and stderr.
fn failure(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.lines().count() <= 3, "more than a short message:\n{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn cases(task: &str) -> Vec<Value> {
    let path = repo_root().join("tests/fixtures/pipelines/expected.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases: Vec<Value> = all["cases"].as_array().unwrap().iter().filter(|c| c["task"] == task).cloned().collect();
    assert!(!cases.is_empty(), "no `{task}` case in expected.json");
    cases
}

/// Compare two lists of objects: every field but `score` equal, scores within `TOL`; items
/// whose expected scores tie within `TIE` may come in either order. Returns the largest
/// score difference.
fn compare_items(what: &str, got: &Value, want: &Value) -> f64 {
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(got.len(), want.len(), "{what}: got {got:?}, want {want:?}");
    let without_score = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("score");
        v
    };
    let mut max_diff = 0f64;
    for (i, item) in got.iter().enumerate() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        let want_keys: Vec<&String> = want[i].as_object().unwrap().keys().collect();
        assert_eq!(keys, want_keys, "{what}: field names (and order) differ from transformers'");
        let score = item["score"].as_f64().unwrap();
        let j = if without_score(item) == without_score(&want[i]) {
            i
        } else {
            want.iter()
                .position(|w| {
                    without_score(w) == without_score(item)
                        && (w["score"].as_f64().unwrap() - want[i]["score"].as_f64().unwrap()).abs() <= TIE
                })
                .unwrap_or_else(|| panic!("{what}: item {i} is {item}, want {}", want[i]))
        };
        let diff = (score - want[j]["score"].as_f64().unwrap()).abs();
        assert!(diff <= TOL, "{what}: {item} vs {} (diff {diff:e})", want[j]);
        max_diff = max_diff.max(diff);
    }
    max_diff
}

fn max_abs_diff(got: &Value, want: &Value) -> f64 {
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "shapes differ");
            g.iter().zip(w).map(|(a, b)| max_abs_diff(a, b)).fold(0.0, f64::max)
        }
        (a, b) => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs(),
    }
}

fn model_arg(case: &Value) -> String {
    case["model"].as_str().unwrap().to_owned()
}

#[test]
fn fill_mask_json_equals_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    let cases = cases("fill-mask");
    for case in &cases {
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "fill-mask", "--model", &model_arg(case)]);
        let kwargs = &case["kwargs"];
        if let Some(k) = kwargs["top_k"].as_u64() {
            cmd.args(["--top-k", &k.to_string()]);
        }
        if let Some(targets) = kwargs["targets"].as_array() {
            let targets: Vec<&str> = targets.iter().map(|t| t.as_str().unwrap()).collect();
            cmd.args(["--targets", &targets.join(",")]);
        }
        let text = case["inputs"].as_str().unwrap();
        let got = json_of(cmd.arg(text));
        // One element per input, shaped as transformers returns it for that input.
        assert_eq!(got.as_array().unwrap().len(), 1);
        let (got, want) = (&got[0], &case["output"]);
        if want[0].is_array() {
            assert_eq!(got.as_array().unwrap().len(), want.as_array().unwrap().len(), "{text}: masks");
            for (g, w) in got.as_array().unwrap().iter().zip(want.as_array().unwrap()) {
                max_diff = max_diff.max(compare_items(text, g, w));
            }
        } else {
            max_diff = max_diff.max(compare_items(text, got, want));
        }
    }
    println!("fill-mask: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}

#[test]
fn text_classification_json_equals_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    let mut all = cases("text-classification");
    all.extend(cases("sentiment-analysis"));
    for case in &all {
        let mut cmd = autocandle(&cache);
        // `sentiment-analysis` runs through the alias.
        cmd.args(["--json", case["task"].as_str().unwrap(), "--model", &model_arg(case)]);
        let kwargs = &case["kwargs"];
        match kwargs.get("top_k") {
            Some(Value::Null) => cmd.args(["--top-k", "all"]),
            Some(k) => cmd.args(["--top-k", &k.to_string()]),
            None => &mut cmd,
        };
        if let Some(f) = kwargs["function_to_apply"].as_str() {
            cmd.args(["--function-to-apply", f]);
        }
        let text = match &case["inputs"] {
            Value::String(s) => s.clone(),
            pair => {
                cmd.args(["--text-pair", pair["text_pair"].as_str().unwrap()]);
                pair["text"].as_str().unwrap().to_owned()
            }
        };
        let got = json_of(cmd.arg(&text));
        assert_eq!(got.as_array().unwrap().len(), 1);
        max_diff = max_diff.max(compare_items(&format!("{text} {kwargs}"), &got[0], &case["output"]));
    }
    println!("text-classification: {} cases, max |score diff| vs Python = {max_diff:e}", all.len());
}

#[test]
fn token_classification_json_equals_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    let mut all = cases("token-classification");
    all.extend(cases("ner"));
    for case in &all {
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", case["task"].as_str().unwrap(), "--model", &model_arg(case)]);
        let kwargs = &case["kwargs"];
        if let Some(s) = kwargs["aggregation_strategy"].as_str() {
            cmd.args(["--aggregation-strategy", s]);
        }
        if let Some(labels) = kwargs["ignore_labels"].as_array() {
            let labels: Vec<&str> = labels.iter().map(|l| l.as_str().unwrap()).collect();
            cmd.args(["--ignore-labels", &labels.join(",")]);
        }
        let text = case["inputs"].as_str().unwrap();
        let got = json_of(cmd.arg(text));
        max_diff = max_diff.max(compare_items(&format!("{text} {kwargs}"), &got[0], &case["output"]));
    }
    println!("token-classification: {} cases, max |score diff| vs Python = {max_diff:e}", all.len());
}

#[test]
fn image_classification_json_equals_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    let cases = cases("image-classification");
    for case in &cases {
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "image-classification", "--model", &model_arg(case)]);
        if let Some(k) = case["kwargs"]["top_k"].as_u64() {
            cmd.args(["--top-k", &k.to_string()]);
        }
        if let Some(f) = case["kwargs"]["function_to_apply"].as_str() {
            cmd.args(["--function-to-apply", f]);
        }
        let image = case["inputs"].as_str().unwrap();
        let got = json_of(cmd.arg(image));
        max_diff = max_diff.max(compare_items(image, &got[0], &case["output"]));
    }
    println!("image-classification: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}

#[test]
fn zero_shot_image_classification_json_equals_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    let cases = cases("zero-shot-image-classification");
    for case in &cases {
        let kwargs = &case["kwargs"];
        let labels: Vec<&str> =
            kwargs["candidate_labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "zero-shot-image-classification", "--model", &model_arg(case)]);
        cmd.args(["--candidate-labels", &labels.join(",")]);
        if let Some(template) = kwargs["hypothesis_template"].as_str() {
            cmd.args(["--hypothesis-template", template]);
        }
        let image = case["inputs"].as_str().unwrap();
        let got = json_of(cmd.arg(image));
        max_diff = max_diff.max(compare_items(image, &got[0], &case["output"]));
    }
    println!("zero-shot-image-classification: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}

#[test]
fn feature_extraction_json_equals_python() {
    let cache = cache();
    let case = &cases("feature-extraction")[0];
    let text = case["inputs"].as_str().unwrap();
    let got = json_of(autocandle(&cache).args(["--json", "feature-extraction", "--model", &model_arg(case), text]));
    // [inputs][1][tokens][hidden], as transformers returns [1][tokens][hidden] per input.
    let diff = max_abs_diff(&got[0], &case["output"]);
    assert!(diff <= TOL, "max diff {diff}");
    println!("feature-extraction: max |diff| vs Python = {diff:e}");

    // Human output: the shape, then summarised rows.
    let tokens = case["output"][0].as_array().unwrap().len();
    let hidden = case["output"][0][0].as_array().unwrap().len();
    autocandle(&cache)
        .args(["feature-extraction", "--model", &model_arg(case), text])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("shape [1, {tokens}, {hidden}]")));
}

#[test]
fn sentence_embeddings_json_equal_python() {
    let cache = cache();
    let mut max_diff = 0f64;
    for case in &cases("sentence-embeddings") {
        let texts: Vec<&str> = case["inputs"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let kwargs = &case["kwargs"];
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "feature-extraction", "--model", &model_arg(case)]);
        cmd.args(["--pooling", kwargs["pooling"].as_str().unwrap()]);
        if kwargs["normalize"] == true {
            cmd.arg("--normalize");
        }
        let got = json_of(cmd.args(&texts));
        let diff = max_abs_diff(&got, &case["output"]);
        assert!(diff <= TOL, "{kwargs}: max diff {diff}");
        max_diff = max_diff.max(diff);
    }
    // `--pooling auto` follows the model's modules.json (mean, normalised).
    let case = cases("sentence-embeddings").into_iter().find(|c| c["kwargs"]["pooling"] == "mean").unwrap();
    let texts: Vec<&str> = case["inputs"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let got = json_of(
        autocandle(&cache)
            .args(["--json", "feature-extraction", "--model", &model_arg(&case), "--pooling", "auto"])
            .args(&texts),
    );
    max_diff = max_diff.max(max_abs_diff(&got, &case["output"]));
    assert!(max_diff <= TOL, "max diff {max_diff}");
    println!("sentence embeddings: max |diff| vs Python = {max_diff:e}");
}

#[test]
fn text_generation_streams_python_s_text() {
    let cache = cache();
    for case in &cases("text-generation") {
        let kwargs = &case["kwargs"];
        let prompt = case["inputs"].as_str().unwrap();
        let want = case["output"][0]["generated_text"].as_str().unwrap();
        let mut args = vec!["text-generation".to_owned(), "--model".to_owned(), model_arg(case)];
        args.extend(["--max-new-tokens".to_owned(), kwargs["max_new_tokens"].to_string()]);
        assert_eq!(kwargs["do_sample"], false);
        args.push("--greedy".to_owned());
        if kwargs["return_full_text"] == false {
            args.push("--new-text-only".to_owned());
        }
        args.push(prompt.to_owned());
        // Human output: the text as it streams, then a newline.
        let out = autocandle(&cache).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{want}\n"), "{prompt} {kwargs}");
        // JSON: [[{"generated_text"}]], one element per input.
        let got = json_of(autocandle(&cache).arg("--json").args(&args));
        assert_eq!(got, serde_json::json!([[{ "generated_text": want }]]));
    }
}

#[test]
fn text_generation_beam_search() {
    let cache = cache();
    let model = model_arg(&cases("text-generation")[0]);
    let base = ["text-generation", "--model", model.as_str(), "--max-new-tokens", "6", "--new-text-only"];
    let best = json_of(autocandle(&cache).arg("--json").args(base).args(["--num-beams", "3", "Hello"]));
    let two = json_of(autocandle(&cache).arg("--json").args(base).args([
        "--num-beams",
        "3",
        "--num-return-sequences",
        "2",
        "Hello",
    ]));
    // One element per input, one object per sequence, the best beam first.
    assert_eq!(two[0].as_array().map(Vec::len), Some(2), "{two}");
    assert_eq!(two[0][0], best[0][0], "{two} {best}");
    let out = autocandle(&cache)
        .args(base)
        .args(["--num-beams", "3", "--num-return-sequences", "2", "--length-penalty", "-0.5"])
        .args(["--early-stopping", "never", "Hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!((lines.len(), lines[0]), (3, "Hello"), "{stdout}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  ")), "{stdout}");
    // Bad settings.
    let (_, stderr) =
        failure(autocandle(&cache).args(base).args(["--num-beams", "2", "--num-return-sequences", "3", "x"]));
    assert!(stderr.contains("num_return_sequences"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(base).args(["--num-beams", "2", "--do-sample", "x"]));
    assert!(stderr.contains("beam search with sampling"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(base).args(["--early-stopping", "sometimes", "x"]));
    assert!(stderr.contains("never"), "{stderr}");
}

#[test]
fn human_output_lists_the_predictions() {
    let cache = cache();
    let case = &cases("fill-mask")[0];
    let first = &case["output"][0];
    let out = autocandle(&cache)
        .args(["fill-mask", "--model", "tests/fixtures/bert-masked-lm", case["inputs"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 5, "{stdout}");
    assert_eq!(lines[0], case["inputs"].as_str().unwrap());
    let score = format!("{:.4}", first["score"].as_f64().unwrap());
    assert!(lines[1].contains(&score) && lines[1].contains(first["sequence"].as_str().unwrap()), "{stdout}");
    // A model given explicitly: no default-model note; a non-terminal stderr: no spinner.
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn inputs_come_from_stdin_one_per_line() {
    let cache = cache();
    let texts: Vec<String> =
        cases("fill-mask").iter().take(2).map(|c| c["inputs"].as_str().unwrap().to_owned()).collect();
    let stdin = format!("{}\r\n\n{}\n", texts[0], texts[1]);
    let from_stdin = json_of(
        autocandle(&cache)
            .args(["--json", "fill-mask", "--model", "tests/fixtures/bert-masked-lm"])
            .write_stdin(stdin.clone()),
    );
    let from_args = json_of(
        autocandle(&cache).args(["--json", "fill-mask", "--model", "tests/fixtures/bert-masked-lm"]).args(&texts),
    );
    assert_eq!(from_stdin.as_array().unwrap().len(), 2);
    assert_eq!(from_stdin, from_args);
    // `-` stands for stdin among the arguments.
    let mixed = json_of(
        autocandle(&cache)
            .args(["--json", "fill-mask", "--model", "tests/fixtures/bert-masked-lm", "hello [MASK]", "-"])
            .write_stdin(stdin),
    );
    assert_eq!(mixed.as_array().unwrap().len(), 3);
    assert_eq!(mixed[1], from_args[0]);
}

#[test]
fn a_bad_model_path_is_a_short_error() {
    let cache = cache();
    let (code, stderr) =
        failure(autocandle(&cache).args(["fill-mask", "--model", "./tests/fixtures/no-such-model", "a [MASK]"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no model folder at `./tests/fixtures/no-such-model`"), "{stderr}");

    // Not a folder, so a Hub id: offline and not in the cache.
    let (code, stderr) = failure(autocandle(&cache).args(["fill-mask", "--model", "nobody/no-such-model", "a [MASK]"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("`nobody/no-such-model` is not a local folder and not in the Hub cache"), "{stderr}");
    assert!(stderr.contains("offline mode is on"), "{stderr}");

    // A file is not a model folder.
    let (_, stderr) = failure(autocandle(&cache).args(["fill-mask", "--model", "README.md", "a [MASK]"]));
    assert!(stderr.contains("is a file, not a model folder"), "{stderr}");
}

#[test]
fn a_malformed_config_is_a_short_error() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "model.safetensors"] {
        std::fs::copy(repo_root().join("tests/fixtures/bert-masked-lm").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": \"bert\",").unwrap();
    let model = dir.path().to_string_lossy().into_owned();
    let (code, stderr) = failure(autocandle(&cache).args(["text-classification", "--model", &model, "hello"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot load the text-classification pipeline"), "{stderr}");
    assert!(stderr.contains("malformed JSON in") && stderr.contains("config.json"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(["inspect", &model]));
    assert!(stderr.contains("cannot read the config") && stderr.contains("malformed JSON in"), "{stderr}");
    // Without a tokenizer, the error says which files would do.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    std::fs::remove_file(dir.path().join("vocab.txt")).unwrap();
    let (_, stderr) = failure(autocandle(&cache).args(["fill-mask", "--model", &model, "a [MASK]"]));
    assert!(stderr.contains("`tokenizer.json` not found"), "{stderr}");
}

#[test]
fn bad_inputs_are_short_errors() {
    let cache = cache();
    // fill-mask without a mask token.
    let (code, stderr) =
        failure(autocandle(&cache).args(["fill-mask", "--model", "tests/fixtures/bert-masked-lm", "no mask here"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("input 1") && stderr.contains("no mask_token ([MASK])"), "{stderr}");
    // A file that is not an image, and a missing one.
    for (path, why) in [("README.md", "cannot decode image"), ("tests/fixtures/images/no-such.png", "cannot read")] {
        let vit = "tests/fixtures/pipelines/vit-image-classification";
        let (code, stderr) = failure(autocandle(&cache).args(["image-classification", "--model", vit, path]));
        assert_eq!(code, 1);
        assert!(stderr.contains(&format!("{why} `{path}`")), "{stderr}");
    }
    // A model of another task.
    let (_, stderr) = failure(autocandle(&cache).args([
        "image-classification",
        "--model",
        "tests/fixtures/bert-masked-lm",
        "README.md",
    ]));
    assert!(stderr.contains("cannot load the image-classification pipeline"), "{stderr}");
    // An endless line on stdin (`< /dev/zero`) ends with an error after 1 MiB, not with memory
    // exhausted: 3 MiB without a newline stands for it.
    let (code, stderr) = failure(
        autocandle(&cache)
            .args(["fill-mask", "--model", "tests/fixtures/bert-masked-lm"])
            .write_stdin(vec![b'a'; 3 << 20]),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("longer than 1 MiB"), "{stderr}");
}

#[test]
fn unknown_tasks_and_options_are_usage_errors() {
    let cache = cache();
    let (code, stderr) = failure(autocandle(&cache).args(["fil-mask", "x"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown task `fil-mask`") && stderr.contains("fill-mask"), "{stderr}");
    let (code, stderr) = failure(autocandle(&cache).args(["mask-generation", "x.png"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("not implemented in autocandle yet"), "{stderr}");
    // clap's own usage errors keep clap's format and exit code.
    let out = autocandle(&cache).args(["fill-mask", "--top-k", "many", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = autocandle(&cache).args(["zero-shot-image-classification", "x.png"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--candidate-labels is required");
}

#[test]
fn without_a_model_the_transformers_default_is_named() {
    let cache = cache();
    let (code, stderr) = {
        let out = autocandle(&cache).args(["fill-mask", "a <mask>"]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(code, Some(1));
    assert!(stderr.contains("distilbert/distilroberta-base (revision fb53ab8)"), "{stderr}");
    assert!(stderr.contains("offline") && !stderr.contains("panicked"), "{stderr}");
    // --quiet drops the note, not the error.
    let out = autocandle(&cache).args(["--quiet", "fill-mask", "a <mask>"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: ") && !stderr.contains("no --model given"), "{stderr}");
}

#[test]
fn models_lists_the_architectures_of_a_task() {
    let cache = cache();
    let out = autocandle(&cache).args(["models", "--task", "fill-mask"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BertForMaskedLM"), "{stdout}");
    assert!(!stdout.contains("LlamaForCausalLM"), "{stdout}");

    let all = json_of(autocandle(&cache).args(["models", "--json"]));
    let masked = json_of(autocandle(&cache).args(["models", "--task", "fill-mask", "--json"]));
    let masked = masked.as_array().unwrap();
    assert!(!masked.is_empty() && masked.len() < all.as_array().unwrap().len());
    for entry in masked {
        let heads = entry["heads"].as_array().unwrap();
        assert!(heads.iter().all(|h| h["task"] == "masked-lm" && h["implemented"] == true), "{entry}");
    }
    for model_type in ["bert", "llama", "gpt2", "vit", "clip"] {
        assert!(all.as_array().unwrap().iter().any(|e| e["model_type"] == model_type), "{model_type}");
    }
    let (code, _) = failure(autocandle(&cache).args(["models", "--task", "fill-the-mask"]));
    assert_eq!(code, 2);
}

#[test]
fn inspect_shows_resolution_weights_files_and_report() {
    let cache = cache();
    let model = "tests/fixtures/bert-masked-lm";
    let doc = json_of(autocandle(&cache).args(["inspect", model, "--json"]));
    assert_eq!(doc["model_type"], "bert");
    assert_eq!(doc["architectures"], serde_json::json!(["BertForMaskedLM"]));
    let classes = doc["auto_classes"].as_array().unwrap();
    let class_of = |auto: &str| classes.iter().find(|c| c["auto_class"] == auto).map(|c| c["class"].clone());
    assert_eq!(class_of("AutoModelForMaskedLM"), Some("BertForMaskedLM".into()));
    assert_eq!(class_of("AutoModel"), Some("BertModel".into()));
    assert_eq!(class_of("AutoModelForImageClassification"), None);
    // Python: BertForMaskedLM.from_pretrained(...).num_parameters() == 20900, 42 float32 tensors.
    assert_eq!(doc["weights"]["parameters"], 20900);
    assert_eq!(doc["weights"]["tensors"], 42);
    assert_eq!(doc["weights"]["dtypes"]["F32"]["elements"], 20900);
    let files: Vec<&str> = doc["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    for file in ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"] {
        assert!(files.contains(&file), "{files:?}");
    }
    let loading = &doc["loading"];
    assert_eq!(loading["auto_class"], "AutoModelForMaskedLM");
    assert_eq!(loading["class"], "BertForMaskedLM");
    assert_eq!(loading["missing_keys"], serde_json::json!([]));
    assert_eq!(loading["unexpected_keys"], serde_json::json!([]));

    // A base checkpoint would report head keys; the sequence classifier's fixture loads whole.
    let human = autocandle(&cache).args(["inspect", model]).output().unwrap();
    assert!(human.status.success());
    let text = String::from_utf8_lossy(&human.stdout);
    for needle in [
        "model_type",
        "bert (BERT, autocandle-bert)",
        "AutoModelForMaskedLM",
        "-> BertForMaskedLM",
        "20,900",
        "every weight loaded",
    ] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
}

#[test]
fn a_gpu_that_is_not_compiled_in_says_which_feature() {
    if cfg!(feature = "cuda") {
        println!("skipped: built with the cuda feature, the device may open");
        return;
    }
    let cache = cache();
    let (code, stderr) = failure(autocandle(&cache).args([
        "fill-mask",
        "--model",
        "tests/fixtures/bert-masked-lm",
        "--device",
        "cuda",
        "a [MASK]",
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("--features cuda"), "{stderr}");
}

// The pipelines that transformers 5 removed (question-answering, text2text-generation,
// summarization, translation) against transformers 4.57's results in
// `tests/fixtures/pipelines/expected_v4.json`.

fn cases_v4(task: &str) -> Vec<Value> {
    let path = repo_root().join("tests/fixtures/pipelines/expected_v4.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(all["transformers_version"].as_str().unwrap().starts_with("4.57."), "expected_v4.json: not 4.57");
    let cases: Vec<Value> = all["cases"].as_array().unwrap().iter().filter(|c| c["task"] == task).cloned().collect();
    assert!(!cases.is_empty(), "no `{task}` case in expected_v4.json");
    cases
}

/// A result that transformers gives as one object when it is alone, as a list otherwise.
fn as_list(value: &Value) -> Value {
    match value {
        Value::Array(_) => value.clone(),
        other => Value::Array(vec![other.clone()]),
    }
}

/// The command line options of a question-answering case's kwargs.
fn qa_args(kwargs: &Value) -> Vec<String> {
    let mut args = Vec::new();
    for (key, value) in kwargs.as_object().unwrap() {
        match (key.as_str(), value) {
            ("handle_impossible_answer", Value::Bool(true)) => args.push("--handle-impossible-answer".to_owned()),
            ("align_to_words", Value::Bool(false)) => args.push("--no-align-to-words".to_owned()),
            ("top_k" | "max_answer_len" | "max_seq_len" | "doc_stride", Value::Number(n)) => {
                args.extend([format!("--{}", key.replace('_', "-")), n.to_string()]);
            }
            _ => panic!("unexpected question-answering kwarg `{key}` in expected_v4.json"),
        }
    }
    args
}

/// Answers: text, start and end equal, scores within TOL, and transformers' field order
/// (`score, start, end, answer`; the fixture's keys are sorted).
fn compare_answers(what: &str, got: &Value, want: &Value) -> f64 {
    let (got, want) = (as_list(got), as_list(want));
    for answer in got.as_array().unwrap() {
        let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["score", "start", "end", "answer"], "{what}: field names or order");
    }
    let reordered: Vec<Value> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!({"score": a["score"], "start": a["start"], "end": a["end"], "answer": a["answer"]}))
        .collect();
    compare_items(what, &got, &Value::Array(reordered))
}

const QA_MODEL: &str = "tests/fixtures/pipelines/bert-question-answering";
const CONTEXT: &str = "the cat sat on the mat in the big city of paris.";

#[test]
fn question_answering_json_equals_python_4_57() {
    let cache = cache();
    let cases = cases_v4("question-answering");
    let mut max_diff = 0f64;
    for case in &cases {
        let kwargs = &case["kwargs"];
        let (question, context) = (&case["inputs"]["question"], &case["inputs"]["context"]);
        let what = format!("{} {question} {kwargs}", case["model"]);
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "question-answering", "--model", &model_arg(case)]).args(qa_args(kwargs));
        match (question.as_str(), context.as_str()) {
            (Some(question), Some(context)) => {
                let got = json_of(cmd.args(["--context", context, "--question", question]));
                assert_eq!(got.as_array().unwrap().len(), 1, "{what}: one result per input");
                // One answer is the object itself, as transformers returns it; several, a list.
                assert_eq!(got[0].is_object(), case["output"].is_object(), "{what}: {}", got[0]);
                max_diff = max_diff.max(compare_answers(&what, &got[0], &case["output"]));
            }
            _ => {
                // Several contexts: one JSON object {"question", "context"} per input.
                let pairs: Vec<String> = question
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(context.as_array().unwrap())
                    .map(|(q, c)| serde_json::json!({"question": q, "context": c}).to_string())
                    .collect();
                let got = json_of(cmd.args(&pairs));
                let want = case["output"].as_array().unwrap();
                assert_eq!(got.as_array().unwrap().len(), want.len(), "{what}");
                for (g, w) in got.as_array().unwrap().iter().zip(want) {
                    max_diff = max_diff.max(compare_answers(&what, g, w));
                }
            }
        }
    }
    println!("question-answering: {} cases, max |score diff| vs Python 4.57 = {max_diff:e}", cases.len());
}

#[test]
fn question_answering_reads_questions_and_contexts_from_stdin() {
    let cache = cache();
    let questions = ["where is the cat?", "who sat on the mat?"];
    let qa = || {
        let mut cmd = autocandle(&cache);
        cmd.args(["--json", "question-answering", "--model", QA_MODEL]);
        cmd
    };
    let from_args = json_of(qa().args(["--context", CONTEXT]).args(questions));
    assert_eq!(from_args.as_array().unwrap().len(), 2);
    // Questions on stdin, one per line.
    let from_stdin = json_of(qa().args(["--context", CONTEXT]).write_stdin(questions.join("\n")));
    assert_eq!(from_stdin, from_args);
    // The context from a file, or from stdin.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("context.txt");
    std::fs::write(&file, CONTEXT).unwrap();
    let from_file = json_of(qa().arg("--context-file").arg(&file).args(questions));
    assert_eq!(from_file, from_args);
    let from_stdin = json_of(qa().args(["--context-file", "-"]).args(questions).write_stdin(format!("{CONTEXT}\n")));
    assert_eq!(from_stdin, from_args);
    // JSON Lines {"question", "context"} without --context.
    let lines: Vec<String> =
        questions.iter().map(|q| serde_json::json!({"question": q, "context": CONTEXT}).to_string()).collect();
    let from_json = json_of(qa().write_stdin(lines.join("\n")));
    assert_eq!(from_json, from_args);
}

#[test]
fn question_answering_human_output() {
    let cache = cache();
    let case =
        cases_v4("question-answering").into_iter().find(|c| c["kwargs"] == serde_json::json!({"top_k": 3})).unwrap();
    let question = case["inputs"]["question"].as_str().unwrap();
    let out = autocandle(&cache)
        .args(["question-answering", "--model", &model_arg(&case), "--top-k", "3"])
        .args(["--context", case["inputs"]["context"].as_str().unwrap(), question])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 3, "{stdout}");
    assert_eq!(lines[0], question);
    for (line, want) in lines[1..].iter().zip(case["output"].as_array().unwrap()) {
        let score = format!("{:.4}", want["score"].as_f64().unwrap());
        let span = format!("{}..{}", want["start"], want["end"]);
        assert!(line.contains(&score) && line.contains(&span), "{line} vs {want}");
        assert!(line.ends_with(want["answer"].as_str().unwrap()), "{line} vs {want}");
    }
}

#[test]
fn question_answering_input_errors_are_short() {
    let cache = cache();
    // A question without a context: refused before the model loads.
    let (code, stderr) = failure(autocandle(&cache).args(["question-answering", "--model", QA_MODEL, "where?"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no context for the question `where?`") && stderr.contains("--context"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(["question-answering", "--model", QA_MODEL, "--question", "q"]));
    assert!(stderr.contains("no context"), "{stderr}");
    // ... and on stdin, where the line is not a JSON object.
    let (code, stderr) =
        failure(autocandle(&cache).args(["question-answering", "--model", QA_MODEL]).write_stdin("where?\n"));
    assert_eq!(code, 1);
    assert!(stderr.contains("input 1") && stderr.contains("no context for the question"), "{stderr}");
    let (_, stderr) = failure(
        autocandle(&cache).args(["question-answering", "--model", QA_MODEL]).write_stdin("{\"question\": \"q\"}\n"),
    );
    assert!(stderr.contains("no string `context`"), "{stderr}");
    // stdin cannot hold both; a missing context file; an empty context.
    let (_, stderr) = failure(
        autocandle(&cache).args(["question-answering", "--model", QA_MODEL, "--context-file", "-"]).write_stdin("x"),
    );
    assert!(stderr.contains("stdin cannot hold both"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args([
        "question-answering",
        "--model",
        QA_MODEL,
        "--context-file",
        "no-such.txt",
        "q",
    ]));
    assert!(stderr.contains("cannot read the context file `no-such.txt`"), "{stderr}");
    let (_, stderr) =
        failure(autocandle(&cache).args(["question-answering", "--model", QA_MODEL, "--context", " ", "q"]));
    assert!(stderr.contains("--context is empty"), "{stderr}");
    // Windows that leave no room: the library's error, not a panic.
    let (code, stderr) = failure(autocandle(&cache).args([
        "question-answering",
        "--model",
        QA_MODEL,
        "--context",
        CONTEXT,
        "--max-seq-len",
        "12",
        "--doc-stride",
        "6",
        "where is the cat?",
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("must be smaller than the"), "{stderr}");
    let (code, _) = failure(autocandle(&cache).args(["question-answering", "--top-k", "0", "--context", "c", "q"]));
    assert_eq!(code, 1);
}

/// The command line of a text-to-text case: the task (`translation_en_to_fr` both as the
/// command and as `translation --task`), its kwargs as options, and the inputs.
fn text2text_args(case: &Value, task_as_command: bool) -> Vec<String> {
    let task = case["task"].as_str().unwrap();
    let mut args = match task.strip_prefix("translation_") {
        Some(_) if !task_as_command => vec!["translation".to_owned(), "--task".to_owned(), task.to_owned()],
        _ => vec![task.to_owned()],
    };
    args.extend(["--model".to_owned(), model_arg(case)]);
    for (key, value) in case["kwargs"].as_object().unwrap() {
        let flag = format!("--{}", key.replace('_', "-"));
        match (key.as_str(), value) {
            ("max_new_tokens" | "num_beams" | "num_return_sequences" | "min_length", Value::Number(n)) => {
                args.extend([flag, n.to_string()]);
            }
            ("stop_sequence", Value::String(s)) => args.extend([flag, s.clone()]),
            ("return_tensors" | "clean_up_tokenization_spaces", Value::Bool(true)) => args.push(flag),
            _ => panic!("unexpected text-to-text kwarg `{key}` in expected_v4.json"),
        }
    }
    match &case["inputs"] {
        Value::String(s) => args.push(s.clone()),
        inputs => args.extend(inputs.as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned())),
    }
    args
}

#[test]
fn text2text_summarization_translation_json_equal_python_4_57() {
    let cache = cache();
    let mut count = 0;
    for task in ["text2text-generation", "summarization", "translation", "translation_en_to_de", "translation_en_to_fr"]
    {
        for (i, case) in cases_v4(task).iter().enumerate() {
            let args = text2text_args(case, i % 2 == 0);
            let got = json_of(autocandle(&cache).arg("--json").args(&args));
            // One element per input: the list of its sequences, as transformers returns it
            // for one input (several inputs of one sequence each come flattened there).
            let want = match &case["inputs"] {
                Value::String(_) => vec![as_list(&case["output"])],
                _ => case["output"].as_array().unwrap().iter().map(as_list).collect(),
            };
            assert_eq!(got, Value::Array(want), "{args:?}");
            count += 1;
        }
    }
    println!("text2text-generation / summarization / translation: {count} cases, equal to Python 4.57's");
}

#[test]
fn text2text_human_output_is_one_line_per_input() {
    let cache = cache();
    let case = &cases_v4("text2text-generation")[2];
    assert_eq!(case["inputs"].as_array().map(Vec::len), Some(2));
    let out = autocandle(&cache).args(text2text_args(case, true)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<&str> =
        case["output"].as_array().unwrap().iter().map(|o| o["generated_text"].as_str().unwrap()).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", want.join("\n")));
    // Several sequences: the input, then one indented line each.
    let case = cases_v4("translation_en_to_fr").into_iter().find(|c| c["kwargs"]["num_return_sequences"] == 2).unwrap();
    let out = autocandle(&cache).args(text2text_args(&case, false)).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let texts: Vec<&str> =
        case["output"].as_array().unwrap().iter().map(|o| o["translation_text"].as_str().unwrap()).collect();
    assert_eq!(stdout, format!("{}\n  {}\n  {}\n", case["inputs"].as_str().unwrap(), texts[0], texts[1]));
}

#[test]
fn text2text_option_errors_are_short() {
    let cache = cache();
    let t5 = "tests/fixtures/pipelines/t5-text2text";
    // A malformed translation task: as the command, and with --task.
    let (code, stderr) = failure(autocandle(&cache).args(["translation_en_de", "--model", t5, "hello"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("translation_XX_to_YY"), "{stderr}");
    let (code, stderr) = failure(autocandle(&cache).args(["translation", "--task", "en_to_de", "--model", t5, "x"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("translation_XX_to_YY"), "{stderr}");
    // Sampling with beams, and settings that the generation config refuses.
    let (code, stderr) =
        failure(autocandle(&cache).args(["summarization", "--model", t5, "--do-sample", "--num-beams", "3", "x"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("beam search with sampling"), "{stderr}");
    let (code, stderr) = failure(autocandle(&cache).args([
        "text2text-generation",
        "--model",
        t5,
        "--num-beams",
        "2",
        "--num-return-sequences",
        "3",
        "x",
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("num_return_sequences"), "{stderr}");
    // A model of another task.
    let (code, stderr) = failure(autocandle(&cache).args(["summarization", "--model", QA_MODEL, "x"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot load the summarization pipeline"), "{stderr}");
}

// Logging: `-v`/`-vv`, `RUST_LOG`, `--quiet`, and library warnings as `warning:` lines.

const FILL_MASK_MODEL: &str = "tests/fixtures/bert-masked-lm";
const FILL_MASK_INPUT: &str = "paris is the [MASK] of france.";

/// Run fill-mask on the fixture with `extra` arguments before the command (and `env`),
/// asserting success and five predictions on stdout; returns stderr.
fn fill_mask_stderr(extra: &[&str], env: &[(&str, &str)]) -> String {
    let cache = cache();
    let mut cmd = autocandle(&cache);
    cmd.args(extra).args(["fill-mask", "--model", FILL_MASK_MODEL, FILL_MASK_INPUT]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1 + 5, "{stderr}");
    stderr
}

#[test]
fn verbose_debug_names_the_files_and_the_class() {
    let stderr = fill_mask_stderr(&["-vv"], &[]);
    let debug: Vec<&str> = stderr.lines().filter(|l| l.contains(" DEBUG ")).collect();
    let has = |needle: &str| debug.iter().any(|l| l.contains(needle));
    assert!(has("config.json") && has("config read") && has("model_type=\"bert\""), "{stderr}");
    assert!(has("model.safetensors") && has("format=\"safetensors\""), "{stderr}");
    assert!(has("class picked from the registry") && has("class=\"BertForMaskedLM\""), "{stderr}");
    assert!(has("tokenizer.json") && has("tensors_loaded=42"), "{stderr}");
    // -vv includes the info lines.
    assert!(stderr.contains(" INFO ") && stderr.contains("model loaded"), "{stderr}");
    // Every line is a log line: nothing else is printed on stderr.
    assert!(stderr.lines().all(|l| l.contains(" DEBUG ") || l.contains(" INFO ")), "{stderr}");
}

#[test]
fn verbose_once_is_info_without_debug() {
    let stderr = fill_mask_stderr(&["-v"], &[]);
    assert!(stderr.contains(" INFO ") && stderr.contains("model loaded"), "{stderr}");
    assert!(stderr.contains("class=\"BertForMaskedLM\"") && stderr.contains("tokenizer loaded"), "{stderr}");
    assert!(stderr.contains("pipeline created"), "{stderr}");
    assert!(!stderr.contains(" DEBUG "), "{stderr}");
    // The flag is global: after the command too.
    let cache = cache();
    let out =
        autocandle(&cache).args(["fill-mask", "--model", FILL_MASK_MODEL, FILL_MASK_INPUT, "-v"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("model loaded"));
}

#[test]
fn rust_log_chooses_the_filter() {
    let stderr = fill_mask_stderr(&[], &[("RUST_LOG", "autocandle_core=debug")]);
    // autocandle_core's events, at debug...
    assert!(stderr.contains("autocandle_core::weights") && stderr.contains("weight file"), "{stderr}");
    assert!(stderr.contains("autocandle_core::hub") && stderr.contains("config.json"), "{stderr}");
    // ...and only those: the facade's are not selected.
    assert!(!stderr.contains("autocandle::model") && !stderr.contains("model loaded"), "{stderr}");
    // RUST_LOG wins over -v.
    let stderr = fill_mask_stderr(&["-vv"], &[("RUST_LOG", "autocandle::model=info")]);
    assert!(stderr.contains("model loaded") && !stderr.contains(" DEBUG "), "{stderr}");
}

#[test]
fn no_log_lines_by_default_and_none_with_quiet() {
    assert_eq!(fill_mask_stderr(&[], &[]), "");
    assert_eq!(fill_mask_stderr(&["--quiet", "-vv"], &[]), "");
    assert_eq!(fill_mask_stderr(&["-q"], &[("RUST_LOG", "trace")]), "");
}

/// A fixture model whose checkpoint lacks the masked-LM head its config names (bert-base's
/// weights with bert-masked-lm's config and tokenizer): loading it warns.
fn headless_fill_mask_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, file) in [
        ("bert-masked-lm", "config.json"),
        ("bert-base", "model.safetensors"),
        ("bert-masked-lm", "tokenizer.json"),
        ("bert-masked-lm", "tokenizer_config.json"),
    ] {
        std::fs::copy(repo_root().join("tests/fixtures").join(fixture).join(file), dir.path().join(file)).unwrap();
    }
    dir
}

#[test]
fn library_warnings_are_warning_lines_muted_by_inspect_and_quiet() {
    let model = headless_fill_mask_model();
    let model = model.path().to_str().unwrap();
    let cache = cache();
    let out = autocandle(&cache).args(["fill-mask", "--model", model, FILL_MASK_INPUT]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("warning: loading BertForMaskedLM from model.safetensors: "), "{stderr}");
    assert!(lines[0].contains("cls.predictions.bias"), "{stderr}");
    // --quiet drops it.
    let out = autocandle(&cache).args(["-q", "fill-mask", "--model", model, FILL_MASK_INPUT]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // `inspect` prints the report itself: the warning is muted, and -vv's debug lines still come.
    let out = autocandle(&cache).args(["inspect", model]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("warning:"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cls.predictions.bias"));
    let out = autocandle(&cache).args(["inspect", model, "-vv"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning:") && stderr.contains("weights loaded"), "{stderr}");
}

#[test]
fn the_hub_token_never_appears_in_the_log() {
    // A Hub cache holding the fixture as `someone/bert-masked-lm`, read offline.
    let cache = cache();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("models--someone--bert-masked-lm");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(repo_root().join(FILL_MASK_MODEL).join(file), snapshot.join(file)).unwrap();
    }
    let token = "hf_SeCrEtToKeN0123456789";
    for (flag, rust_log) in [("-vvv", None), ("-v", Some("trace"))] {
        let mut cmd = autocandle(&cache);
        cmd.env("HF_TOKEN", token).args([flag, "fill-mask", "--model", "someone/bert-masked-lm", FILL_MASK_INPUT]);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // The load is logged (from the cache)...
        assert!(stderr.contains("cache hit") && stderr.contains("someone/bert-masked-lm"), "{stderr}");
        // ...and the token is not, whole or in part.
        assert!(!stderr.contains(token) && !stderr.contains("SeCrEt"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("SeCrEt"));
    }
}

const RERANKER: &str = "tests/fixtures/cross-encoders/bert-one-label";
const NLI_CROSS_ENCODER: &str = "tests/fixtures/cross-encoders/bert-nli";

/// The expected.json of a cross-encoder fixture (sentence-transformers 6.3's results).
fn cross_encoder_expected(folder: &str) -> Value {
    let path = repo_root().join(folder).join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rerank_and_cross_encode_match_sentence_transformers() {
    let cache = cache();
    let expected = cross_encoder_expected(RERANKER);
    let case = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "rank" && c["args"]["top_k"] == 3)
        .unwrap()
        .clone();
    let query = case["query"].as_str().unwrap();
    let documents: Vec<&str> = case["documents"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let want = &case["results"];
    // Documents as arguments, then from stdin: the same ranking, sentence-transformers' order.
    let from_args = json_of(
        autocandle(&cache)
            .args(["--json", "rerank", "--model", RERANKER, "--query", query, "--top-k", "3", "--batch-size", "4"])
            .args(&documents),
    );
    let from_stdin = json_of(
        autocandle(&cache)
            .args(["--json", "rerank", "--model", RERANKER, "-Q", query, "--top-k", "3"])
            .write_stdin(documents.join("\n") + "\n"),
    );
    assert_eq!(from_args.as_array().unwrap().len(), 3, "{from_args}");
    let mut max_diff = 0f64;
    for got in [&from_args, &from_stdin] {
        for (g, w) in got.as_array().unwrap().iter().zip(want.as_array().unwrap()) {
            assert_eq!(g["corpus_id"], w["corpus_id"], "{got} vs {want}");
            assert_eq!(g["text"], w["text"], "{got} vs {want}");
            max_diff = max_diff.max((g["score"].as_f64().unwrap() - w["score"].as_f64().unwrap()).abs());
        }
    }
    assert!(max_diff <= TOL, "rerank scores differ by {max_diff}");
    // Human output: a table, best first.
    let out =
        autocandle(&cache).args(["rerank", "--model", RERANKER, "--query", query]).args(&documents).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("rank") && stdout.contains(documents[0]), "{stdout}");

    // cross-encode: the raw predict scores of tab-separated pairs, several labels as vectors.
    let nli = cross_encoder_expected(NLI_CROSS_ENCODER);
    let case = nli["cases"].as_array().unwrap().iter().find(|c| c["args"]["apply_softmax"] == true).unwrap().clone();
    let pairs: Vec<String> = case["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}\t{}", p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect();
    let got = json_of(
        autocandle(&cache)
            .args(["--json", "cross-encode", "--model", NLI_CROSS_ENCODER, "--apply-softmax"])
            .write_stdin(pairs.join("\n")),
    );
    for (g, w) in got.as_array().unwrap().iter().zip(case["scores"].as_array().unwrap()) {
        for (a, b) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
            max_diff = max_diff.max((a.as_f64().unwrap() - b.as_f64().unwrap()).abs());
        }
    }
    assert_eq!(got.as_array().unwrap().len(), pairs.len());
    assert!(max_diff <= TOL, "cross-encode scores differ by {max_diff}");
    println!("rerank and cross-encode: max |score diff| vs sentence-transformers = {max_diff:e}");

    // Errors: rank on a three-label model, a pair without its separator, no --model.
    let (code, stderr) = failure(autocandle(&cache).args(["rerank", "--model", NLI_CROSS_ENCODER, "-Q", "q", "d"]));
    assert!(code == 1 && stderr.contains("only works for models with num_labels=1"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(["cross-encode", "--model", RERANKER, "no tab here"]));
    assert!(stderr.contains("has no separator"), "{stderr}");
    let (_, stderr) = failure(autocandle(&cache).args(["rerank", "-Q", "q", "d"]));
    assert!(stderr.contains("give the reranker"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// Sentence-transformers: `embed`, `sentence-similarity`, and the modules.json fallbacks of
// `feature-extraction` (fixtures of tests/fixtures/make_st_fixtures.py).

fn st_fixture(name: &str) -> String {
    repo_root().join("tests/fixtures/sentence-transformers").join(name).to_string_lossy().into_owned()
}

fn st_expected(name: &str) -> Value {
    let path = repo_root().join("tests/fixtures/sentence-transformers").join(name).join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn st_sentences(expected: &Value) -> Vec<String> {
    expected["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

#[test]
fn embed_prints_python_s_embeddings() {
    let cache = cache();
    let expected = st_expected("dense-normalize");
    let sentences = st_sentences(&expected);
    let want = &expected["encode"][0]["embeddings"];
    let got = json_of(
        autocandle(&cache).args(["--json", "embed", "--model", &st_fixture("dense-normalize")]).args(&sentences),
    );
    let diff = max_abs_diff(&got, want);
    println!("embed --json: max |diff| vs sentence-transformers = {diff:e}");
    assert!(diff <= 1e-5, "max diff {diff}");
    // Human output: one line of numbers per input, from stdin too.
    let out = autocandle(&cache)
        .args(["embed", "--model", &st_fixture("dense-normalize")])
        .write_stdin(sentences.join("\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), sentences.len(), "{stdout}");
    let first: Vec<f64> = lines[0].split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(max_abs_diff(&Value::from(first), &want[0]) <= 1e-5);
    // Prompts and Matryoshka options reach encode.
    let expected = st_expected("prompts");
    let call = &expected["encode"][1];
    let got = json_of(
        autocandle(&cache)
            .args([
                "--json",
                "embed",
                "--model",
                &st_fixture("prompts"),
                "--prompt-name",
                "document",
                "--batch-size",
                "3",
            ])
            .args(st_sentences(&expected)),
    );
    assert!(max_abs_diff(&got, &call["embeddings"]) <= 1e-5, "{}", call["kwargs"]);
    let expected = st_expected("matryoshka");
    let got = json_of(
        autocandle(&cache)
            .args(["--json", "embed", "--model", &st_fixture("matryoshka"), "--truncate-dim", "5"])
            .args(st_sentences(&expected)),
    );
    assert!(max_abs_diff(&got, &expected["encode"][1]["embeddings"]) <= 1e-5);
}

#[test]
fn embed_writes_npy() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.npy");
    let expected = st_expected("pooling-multi");
    let sentences = st_sentences(&expected);
    let out = autocandle(&cache)
        .args(["embed", "--model", &st_fixture("pooling-multi"), "--output", path.to_str().unwrap()])
        .args(&sentences)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(expected["encode"][0]["embeddings"].clone()).unwrap();
    let shape = format!("'shape': ({}, {})", want.len(), want[0].len());
    assert!(header.contains("'descr': '<f4'") && header.contains(&shape), "{header}");
    let data: Vec<f32> =
        bytes[10 + header_len..].chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let diff = data.iter().zip(want.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert_eq!(data.len(), want.len() * want[0].len());
    assert!(diff <= 1e-5, "npy differs by {diff}");
}

#[test]
fn sentence_similarity_uses_the_model_s_function() {
    let cache = cache();
    for name in ["pooling-max", "dense-normalize", "pooling-mean-sqrt-len"] {
        let expected = st_expected(name);
        let sentences = st_sentences(&expected);
        let got = json_of(
            autocandle(&cache)
                .args(["--json", "sentence-similarity", "--model", &st_fixture(name), "--batch-size", "3"])
                .args(&sentences),
        );
        let want = Value::from(expected["similarity"][0].as_array().unwrap()[1..].to_vec());
        let scale = want.as_array().unwrap().iter().fold(1f64, |m, x| m.max(x.as_f64().unwrap().abs()));
        let diff = max_abs_diff(&got, &want);
        println!("sentence-similarity {name} ({}): max |diff| = {diff:e}", expected["similarity_fn_name"]);
        assert!(diff <= 1e-5 * scale, "{name}: {diff}");
    }
    let out = autocandle(&cache)
        .args(["sentence-similarity", "--model", &st_fixture("pooling-max"), "hello world", "who are you", "a"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("similarity (manhattan) with `hello world`:"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

/// A copy of a sentence-transformers fixture whose modules.json names module folders that are
/// not there (as the all-MiniLM-L6-v2 folders of some packages).
fn without_module_folders() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = repo_root().join("tests/fixtures/sentence-transformers/matryoshka");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    // 1_Pooling exists but has no config.json; 2_Normalize is missing.
    std::fs::create_dir(tmp.path().join("1_Pooling")).unwrap();
    tmp
}

#[test]
fn explicit_pooling_wins_over_missing_module_folders() {
    let cache = cache();
    let model = without_module_folders();
    let model = model.path().to_str().unwrap();
    let text = "hello world";
    // --pooling mean: modules.json is not read; the embedding is mean pooling, not normalised.
    let out = autocandle(&cache)
        .args(["--json", "feature-extraction", "--model", model, "--pooling", "mean", text])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("1_Pooling"), "{stderr}");
    let mean: Value = serde_json::from_slice(&out.stdout).unwrap();
    let norm = |v: &Value| v[0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
    assert!((norm(&mean) - 1.0).abs() > 1e-3, "not normalised: {}", norm(&mean));
    // No explicit choice: a warning that names the missing file, then mean pooling (and the
    // Normalize module, which needs no folder).
    let out = autocandle(&cache)
        .args(["--json", "feature-extraction", "--model", model, "--pooling", "auto", text])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("1_Pooling/config.json"), "{stderr}");
    let auto: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((norm(&auto) - 1.0).abs() < 1e-5);
    let (m, a) = (mean[0].as_array().unwrap(), auto[0].as_array().unwrap());
    let n = norm(&mean);
    let diff = m.iter().zip(a).map(|(x, y)| (x.as_f64().unwrap() / n - y.as_f64().unwrap()).abs()).fold(0f64, f64::max);
    assert!(diff <= 1e-6, "auto is the normalised mean: {diff}");
    // `embed` on the same folder pools by mean too (with the same warning), normalises, and
    // truncates to the model's truncate_dim (9) after the Normalize module.
    let got = json_of(autocandle(&cache).args(["--json", "embed", "--model", model, text]));
    let first9 = Value::from(vec![Value::from(a[..9].to_vec())]);
    assert!(max_abs_diff(&got, &first9) <= 1e-5);
}

#[test]
fn embed_errors_are_short() {
    let cache = cache();
    let (code, stderr) = failure(autocandle(&cache).args(["embed", "hello"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("needs --model"), "{stderr}");
    let (_, stderr) =
        failure(autocandle(&cache).args(["embed", "--model", &st_fixture("prompts"), "--prompt-name", "nope", "a"]));
    assert!(stderr.contains("prompt name `nope`"), "{stderr}");
}
