//! End-to-end tests of the vision commands of the `autocandle` binary (object-detection,
//! image-segmentation, depth-estimation, image-feature-extraction) on the tiny models of
//! `tests/fixtures/vision_pipelines/`: `--json` against Python's pipelines
//! (`expected.json`), `--output` pictures decoded back (a PNG of the input's size), and the
//! errors for bad thresholds, output paths and images. Cases whose architecture this build
//! does not have are skipped with a line saying so.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use autocandle::Task;
use base64::Engine;
use serde_json::Value;

mod common;

use common::{autocandle, repo_root};

const FIXTURES: &str = "tests/fixtures/vision_pipelines";
const IMAGE: &str = "tests/fixtures/images/rgba_19x29.png";

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn has(model_type: &str, task: Task) -> bool {
    let ok = autocandle::catalog::resolve_head(model_type, task).is_ok();
    if !ok {
        println!("SKIP: `{model_type}` is not in this build");
    }
    ok
}

fn run_json(args: &[&str]) -> Value {
    let cache = cache();
    let out = autocandle(&cache).arg("--json").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: exit {:?}, stderr:\n{stderr}", out.status.code());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run expecting failure: the exit code and stderr (a short `error:` message).
fn failure(args: &[&str]) -> (i32, String) {
    let cache = cache();
    let out = autocandle(&cache).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn expected(task: &str, model: &str, image: &str) -> Value {
    let path = repo_root().join(FIXTURES).join("expected.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["task"] == task
                && c["model"] == format!("{FIXTURES}/{model}")
                && c["inputs"] == image
                && c["kwargs"].as_object().is_none_or(|k| k.is_empty() || k.contains_key("subtask"))
        })
        .unwrap_or_else(|| panic!("no {task} case for {model} on {image}"))
        .clone()
}

/// Decode a PNG file and return its size.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    let image = autocandle::open_image(path).unwrap();
    (image.width(), image.height())
}

fn data_uri_size(uri: &str) -> (u32, u32) {
    let data = uri.strip_prefix("data:image/png;base64,").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
    let image = autocandle::image::load_from_memory(&bytes).unwrap();
    (image.width(), image.height())
}

#[test]
fn object_detection_json_and_picture() {
    for (model_type, model) in [("yolos", "yolos-object-detection"), ("detr", "detr-object-detection")] {
        if !has(model_type, Task::ObjectDetection) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let picture = dir.path().join("boxes.png");
        let path = format!("{FIXTURES}/{model}");
        let got = run_json(&["object-detection", "--model", &path, "--output", picture.to_str().unwrap(), IMAGE]);
        let want = expected("object-detection", model, IMAGE)["output"].clone();
        let got = got[0].as_array().unwrap();
        assert_eq!(got.len(), want.as_array().unwrap().len(), "{model}: {got:?} vs {want}");
        for (g, w) in got.iter().zip(want.as_array().unwrap()) {
            assert_eq!(g["label"], w["label"]);
            assert!((g["score"].as_f64().unwrap() - w["score"].as_f64().unwrap()).abs() <= 1e-4);
            for k in ["xmin", "ymin", "xmax", "ymax"] {
                assert!((g["box"][k].as_i64().unwrap() - w["box"][k].as_i64().unwrap()).abs() <= 1, "{g} vs {w}");
            }
        }
        assert_eq!(png_size(&picture), (19, 29), "the picture has the input's size");
    }
}

#[test]
fn image_segmentation_json_and_picture() {
    if !has("segformer", Task::SemanticSegmentation) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("overlay.png");
    let path = format!("{FIXTURES}/segformer-semantic-segmentation");
    let got = run_json(&["image-segmentation", "--model", &path, "-o", picture.to_str().unwrap(), IMAGE]);
    let want = expected("image-segmentation", "segformer-semantic-segmentation", IMAGE)["output"].clone();
    let labels: Vec<&Value> = got[0].as_array().unwrap().iter().map(|s| &s["label"]).collect();
    assert_eq!(labels, want["labels"].as_array().unwrap().iter().collect::<Vec<_>>());
    for segment in got[0].as_array().unwrap() {
        assert!(segment["score"].is_null());
        assert_eq!(data_uri_size(segment["mask"].as_str().unwrap()), (19, 29));
    }
    assert_eq!(png_size(&picture), (19, 29));
}

#[test]
fn depth_estimation_json_and_picture() {
    if !has("dpt", Task::DepthEstimation) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("depth.png");
    let path = format!("{FIXTURES}/dpt-depth-estimation");
    let images = [IMAGE, "tests/fixtures/images/rgb_37x23.png"];
    let got =
        run_json(&["depth-estimation", "--model", &path, "--output", picture.to_str().unwrap(), images[0], images[1]]);
    // Two inputs: depth-1.png and depth-2.png, each the size of its input.
    assert_eq!(png_size(&dir.path().join("depth-1.png")), (19, 29));
    assert_eq!(png_size(&dir.path().join("depth-2.png")), (37, 23));
    let want = expected("depth-estimation", "dpt-depth-estimation", IMAGE)["output"].clone();
    let rows = got[0]["predicted_depth"].as_array().unwrap();
    assert_eq!((rows.len(), rows[0].as_array().unwrap().len()), (29, 19));
    let want_rows = want["predicted_depth"].as_array().unwrap();
    let range = 1e-3
        * want_rows
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|v| v.as_f64().unwrap())
            .fold(0f64, |m, v| m.max(v.abs()));
    for (g, w) in rows.iter().zip(want_rows) {
        for (g, w) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
            assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() <= range.max(1e-5));
        }
    }
    assert_eq!(data_uri_size(got[0]["depth"].as_str().unwrap()), (19, 29));
}

#[test]
fn image_feature_extraction_json() {
    let path = format!("{FIXTURES}/vit-image-feature-extraction");
    let got = run_json(&["image-feature-extraction", "--model", &path, IMAGE]);
    let want = expected("image-feature-extraction", "vit-image-feature-extraction", IMAGE)["output"].clone();
    let flat = |v: &Value| -> Vec<f64> {
        v.as_array().unwrap()[0]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let (g, w) = (flat(&got[0]), flat(&want));
    assert_eq!(g.len(), w.len());
    assert!(g.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-4));
    let pooled = run_json(&["image-feature-extraction", "--pool", "--model", &path, IMAGE]);
    assert_eq!(pooled[0].as_array().unwrap().len(), 1, "[1, hidden]");
    assert_eq!(pooled[0][0].as_array().unwrap().len(), 16);
}

#[test]
fn bad_thresholds_outputs_and_images_are_clear_errors() {
    let vit = format!("{FIXTURES}/vit-image-feature-extraction");
    for t in ["0", "1.5", "-1", "x"] {
        let arg = format!("--threshold={t}");
        let (code, stderr) = failure(&["object-detection", &arg, IMAGE]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("--threshold") && stderr.contains("above 0 and at most 1"), "{stderr}");
    }
    // Checked before any model loads (the default model is not in the empty cache).
    for cmd in ["object-detection", "image-segmentation", "depth-estimation"] {
        let (code, stderr) = failure(&[cmd, "--model", &vit, "--output", "picture.jpg", IMAGE]);
        assert_eq!(code, 1);
        assert!(stderr.contains("`.jpg` is not supported") && stderr.contains(".png"), "{stderr}");
    }
    let (_, stderr) = failure(&["depth-estimation", "--output", "picture", IMAGE]);
    assert!(stderr.contains("no extension"), "{stderr}");
    let (_, stderr) = failure(&["image-feature-extraction", "--model", &vit, "tests/fixtures/images/missing.png"]);
    assert!(stderr.contains("missing.png"), "{stderr}");
    // A model without the head.
    let (_, stderr) = failure(&["object-detection", "--model", &vit, IMAGE]);
    assert!(stderr.contains("cannot load the object-detection pipeline"), "{stderr}");
}

/// `image-text-to-text` on the tiny Qwen2-VL repo of `tests/fixtures/vlm_pipelines/qwen2_vl`:
/// by default a chat (the prompt a user message with the image), `--raw` the prompt as it is;
/// both give Python's pipeline text (`expected.json`), greedy.
#[test]
fn image_text_to_text_answers_as_python() {
    if !has("qwen2_vl", Task::ImageTextToText) {
        return;
    }
    let dir = "tests/fixtures/vlm_pipelines/qwen2_vl";
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join(dir).join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    let image = format!("tests/fixtures/{}", cases[0]["image"].as_str().unwrap());
    let base = ["image-text-to-text", "--model", dir, "--image", &image, "--max-new-tokens", "8", "--greedy"];
    let chat = run_json(&[&base[..], &[cases[0]["text"].as_str().unwrap()]].concat());
    // One result per input, each transformers' list of one generation.
    let messages = chat[0][0]["generated_text"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["content"], cases[0]["reply"], "{chat}");
    assert_eq!(messages[0]["content"][0]["type"], "image", "{chat}");
    let raw = run_json(&[&base[..], &["--raw", "--new-text-only", cases[1]["prompt"].as_str().unwrap()]].concat());
    assert_eq!(raw[0][0]["generated_text"], cases[1]["continuation"], "{raw}");
    // A missing image is refused before the model loads.
    let (code, stderr) = failure(&["image-text-to-text", "--model", dir, "--image", "no-such.png", "hi"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--image `no-such.png` is not a file"), "{stderr}");
}
