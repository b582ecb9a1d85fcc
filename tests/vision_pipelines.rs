//! The vision pipelines of `autocandle::pipelines` (object-detection, image-segmentation,
//! depth-estimation, image-feature-extraction) against Python's `transformers.pipeline(...)`:
//! every case of `tests/fixtures/vision_pipelines/expected.json` (made by
//! `tests/fixtures/make_vision_pipeline_fixtures.py` on tiny models with real preprocessor
//! configs) runs through the matching pipeline. Labels must be equal, scores within 1e-4, box
//! corners within one pixel (a corner on a whole pixel may truncate either way), at most 1% of
//! the pixels of a label map may differ (ties of the resized logits), depth within 1e-3 of its
//! range and its picture within one level, features within 1e-4.
//!
//! A case whose architecture is not compiled in (or not implemented yet) is skipped with a
//! line saying so.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use autocandle::pipelines::{
    pipeline, DepthEstimationPipeline, ImageFeatureExtractionOptions, ImageFeatureExtractionPipeline,
    ImageSegmentationPipeline, ObjectDetectionOptions, ObjectDetectionPipeline, Pipeline,
};
use autocandle::Task;
use serde_json::Value;

const TOL: f64 = 1e-4;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cases of `task` whose architecture this build has (`requires`: the model type).
fn cases(task: &str, head: Task) -> Vec<Value> {
    let path = repo_root().join("tests/fixtures/vision_pipelines/expected.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases: Vec<Value> = all["cases"].as_array().unwrap().iter().filter(|c| c["task"] == task).cloned().collect();
    assert!(!cases.is_empty(), "no `{task}` case in expected.json");
    cases
        .into_iter()
        .filter(|c| {
            let model_type = c["requires"].as_str().unwrap();
            let ok = autocandle::catalog::resolve_head(model_type, head).is_ok();
            if !ok {
                println!("SKIP {task} {} {}: `{model_type}` is not in this build", c["model"], c["inputs"]);
            }
            ok
        })
        .collect()
}

fn model_path(case: &Value) -> String {
    repo_root().join(case["model"].as_str().unwrap()).to_string_lossy().into_owned()
}

fn image(case: &Value) -> autocandle::DynamicImage {
    autocandle::open_image(repo_root().join(case["inputs"].as_str().unwrap())).unwrap()
}

#[test]
fn object_detection_matches_python() {
    let cases = cases("object-detection", Task::ObjectDetection);
    let mut max_diff = 0f64;
    for case in &cases {
        let pipe = ObjectDetectionPipeline::new(&model_path(case)).unwrap();
        let mut opts = ObjectDetectionOptions::default();
        if let Some(t) = case["kwargs"]["threshold"].as_f64() {
            opts.threshold = t as f32;
        }
        let got = pipe.call_with(&image(case), &opts).unwrap();
        let want = case["output"].as_array().unwrap();
        let what = format!("{} {} {}", case["model"], case["inputs"], case["kwargs"]);
        assert_eq!(got.len(), want.len(), "{what}: got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.label, w["label"].as_str().unwrap(), "{what}");
            let diff = (f64::from(g.score) - w["score"].as_f64().unwrap()).abs();
            assert!(diff <= TOL, "{what}: score {} vs {} ({diff:e})", g.score, w["score"]);
            max_diff = max_diff.max(diff);
            let b = g.bounding_box;
            for (name, v) in [("xmin", b.xmin), ("ymin", b.ymin), ("xmax", b.xmax), ("ymax", b.ymax)] {
                let want = w["box"][name].as_i64().unwrap();
                assert!((v - want).abs() <= 1, "{what}: {name} {v}, want {want}");
            }
        }
    }
    println!("object-detection: {} cases, max |score diff| vs Python = {max_diff:e}", cases.len());
}

#[test]
fn image_segmentation_matches_python() {
    let cases = cases("image-segmentation", Task::SemanticSegmentation);
    for case in &cases {
        let pipe = ImageSegmentationPipeline::new(&model_path(case)).unwrap();
        let img = image(case);
        let got = pipe.call(&img).unwrap();
        let what = format!("{} {}", case["model"], case["inputs"]);
        let want = &case["output"];
        let want_labels: Vec<&str> = want["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        let got_labels: Vec<&str> = got.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(got_labels, want_labels, "{what}");
        assert!(got.iter().all(|s| s.score.is_none()));
        let want_map: Vec<Vec<i64>> = serde_json::from_value(want["label_map"].clone()).unwrap();
        let (h, w) = (want_map.len(), want_map[0].len());
        let mut differ = 0usize;
        for segment in &got {
            assert_eq!(segment.mask.dimensions(), (img.width(), img.height()), "{what}");
            assert_eq!((w as u32, h as u32), segment.mask.dimensions(), "{what}");
            for (y, row) in want_map.iter().enumerate() {
                for (x, &id) in row.iter().enumerate() {
                    let on = segment.mask.get_pixel(x as u32, y as u32).0[0] == 255;
                    if on != (id == segment.label_id as i64) {
                        differ += 1;
                    }
                }
            }
        }
        // A pixel labelled differently shows in two masks.
        let share = differ as f64 / 2.0 / (h * w) as f64;
        assert!(share <= 0.01, "{what}: {share:.4} of the pixels are labelled differently");
        println!("image-segmentation {what}: {:.4} of the pixels differ", share);
    }
}

#[test]
fn depth_estimation_matches_python() {
    let cases = cases("depth-estimation", Task::DepthEstimation);
    for case in &cases {
        let pipe = DepthEstimationPipeline::new(&model_path(case)).unwrap();
        let img = image(case);
        let got = pipe.call(&img).unwrap();
        let what = format!("{} {}", case["model"], case["inputs"]);
        let want: Vec<Vec<f64>> = serde_json::from_value(case["output"]["predicted_depth"].clone()).unwrap();
        let want_depth: Vec<Vec<i64>> = serde_json::from_value(case["output"]["depth"].clone()).unwrap();
        let got_rows = got.predicted_depth.to_vec2::<f32>().unwrap();
        assert_eq!((got_rows.len(), got_rows[0].len()), (want.len(), want[0].len()), "{what}");
        assert_eq!(got.depth.dimensions(), (img.width(), img.height()), "{what}");
        let flat: Vec<f64> = want.iter().flatten().copied().collect();
        let range =
            flat.iter().copied().fold(f64::NEG_INFINITY, f64::max) - flat.iter().copied().fold(f64::INFINITY, f64::min);
        let mut max_diff = 0f64;
        for (g, w) in got_rows.iter().flatten().zip(&flat) {
            max_diff = max_diff.max((f64::from(*g) - w).abs());
        }
        assert!(max_diff <= 1e-3 * range.max(1e-6), "{what}: depth differs by {max_diff:e} (range {range})");
        for (y, row) in want_depth.iter().enumerate() {
            for (x, &level) in row.iter().enumerate() {
                let g = i64::from(got.depth.get_pixel(x as u32, y as u32).0[0]);
                assert!((g - level).abs() <= 1, "{what}: depth picture at ({x}, {y}) is {g}, want {level}");
            }
        }
        println!("depth-estimation {what}: max |depth diff| {max_diff:e} (range {range:.3})");
    }
}

#[test]
fn image_feature_extraction_matches_python() {
    let cases = cases("image-feature-extraction", Task::Base);
    for case in &cases {
        let pipe = ImageFeatureExtractionPipeline::new(&model_path(case)).unwrap();
        let pool = case["kwargs"]["pool"].as_bool().unwrap_or(false);
        let got = pipe.call_with(&image(case), &ImageFeatureExtractionOptions { pool }).unwrap();
        let what = format!("{} {} pool={pool}", case["model"], case["inputs"]);
        let (want, shape): (Vec<f64>, Vec<usize>) = if pool {
            let rows: Vec<Vec<f64>> = serde_json::from_value(case["output"].clone()).unwrap();
            let shape = vec![rows.len(), rows[0].len()];
            (rows.into_iter().flatten().collect(), shape)
        } else {
            let batch: Vec<Vec<Vec<f64>>> = serde_json::from_value(case["output"].clone()).unwrap();
            let shape = vec![batch.len(), batch[0].len(), batch[0][0].len()];
            (batch.into_iter().flatten().flatten().collect(), shape)
        };
        assert_eq!(got.dims(), shape.as_slice(), "{what}");
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let max_diff = got.iter().zip(&want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0f64, f64::max);
        assert!(max_diff <= TOL, "{what}: features differ by {max_diff:e}");
        println!("image-feature-extraction {what}: max |diff| {max_diff:e}");
    }
}

#[test]
fn pipeline_builds_the_vision_pipelines_by_task_name() {
    let dir = repo_root().join("tests/fixtures/vision_pipelines");
    let vit = dir.join("vit-image-feature-extraction").to_string_lossy().into_owned();
    let p = pipeline("image-feature-extraction", &vit).unwrap();
    assert!(matches!(p, Pipeline::ImageFeatureExtraction(_)));
    assert_eq!(p.task(), "image-feature-extraction");
    // A model without that head: the Auto class says so.
    let e = pipeline("object-detection", &vit).unwrap_err().to_string();
    assert!(e.contains("vit"), "{e}");
}

#[test]
fn bad_thresholds_and_models_without_a_pooler_are_clear_errors() {
    let dir = repo_root().join("tests/fixtures/vision_pipelines");
    let dinov2 = dir.join("dinov2-image-feature-extraction").to_string_lossy().into_owned();
    if autocandle::catalog::resolve_head("dinov2", Task::Base).is_ok() {
        // DINOv2 pools (layer-normed [CLS]); every model of AutoModel here has a pooler.
        let pipe = ImageFeatureExtractionPipeline::new(&dinov2).unwrap();
        let img = autocandle::open_image(repo_root().join("tests/fixtures/images/rgb_37x23.png")).unwrap();
        assert_eq!(pipe.call_with(&img, &ImageFeatureExtractionOptions { pool: true }).unwrap().dims()[0], 1);
    }
    if autocandle::catalog::resolve_head("yolos", Task::ObjectDetection).is_ok() {
        let yolos = dir.join("yolos-object-detection").to_string_lossy().into_owned();
        let pipe = ObjectDetectionPipeline::new(&yolos).unwrap();
        let img = autocandle::open_image(repo_root().join("tests/fixtures/images/rgb_37x23.png")).unwrap();
        for bad in [0.0, 1.5, f32::NAN] {
            let e = pipe.call_with(&img, &ObjectDetectionOptions { threshold: bad }).unwrap_err().to_string();
            assert!(e.contains("above 0 and at most 1"), "{e}");
        }
    }
}
