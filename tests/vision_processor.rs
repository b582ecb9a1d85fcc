//! The image processors of the second vision wave (ConvNeXt, BiT, DeiT, BEiT, SegFormer, DETR,
//! YOLOS, DPT) against Python `transformers`' torchvision backend: every folder under
//! `tests/fixtures/vision_processors/` (made by `make_vision_processor_fixtures.py`) loaded with
//! `AutoImageProcessor` and run on `tests/fixtures/images/`, `pixel_values` and `pixel_mask`
//! compared; the post-processing functions on the fixed outputs of
//! `tests/fixtures/vision_post_process/`; and the errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use autocandle::image_processor::{
    post_process_depth_estimation, post_process_object_detection, post_process_semantic_segmentation, Detections,
};
use autocandle::{
    AutoImageProcessor, DepthEstimatorOutput, DynamicImage, Error, ImageProcessor, ImageProcessorClass,
    ObjectDetectionOutput, SemanticSegmenterOutput,
};
use autocandle_tests::fixtures_root;
use candle_core::{Device, Tensor};
use serde_json::{json, Value};

fn image_path(name: &str) -> PathBuf {
    fixtures_root().join("images").join(name)
}

fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(candle_core::safetensors::load(path, &Device::Cpu)?)
}

/// Largest difference in 0..=255 pixel units over the PNG images and over all images, and
/// the share of values within one level.
fn pixel_diff(processor: &ImageProcessor, got: &Tensor, want: &Tensor) -> Result<(Vec<f32>, f64)> {
    ensure!(got.dims() == want.dims(), "shape {:?}, Python {:?}", got.dims(), want.dims());
    let config = processor.config();
    let per_channel: Vec<f32> = (0..3)
        .map(|c| {
            let std = if config.do_normalize { config.image_std[c] } else { 1.0 };
            let factor = if config.do_rescale { config.rescale_factor } else { 1.0 };
            (std / factor) as f32
        })
        .collect();
    let diff = (got - want)?.abs()?.broadcast_mul(&Tensor::from_vec(per_channel, (1, 3, 1, 1), &Device::Cpu)?)?;
    let per_image = (0..diff.dim(0)?)
        .map(|i| Ok(diff.get(i)?.flatten_all()?.max(0)?.to_scalar::<f32>()?))
        .collect::<Result<Vec<f32>>>()?;
    let values = diff.flatten_all()?.to_vec1::<f32>()?;
    let within = values.iter().filter(|d| **d <= 1.0 + 1e-3).count() as f64 / values.len() as f64;
    Ok((per_image, within))
}

fn check_images(names: &[&str], per_image: &[f32], within: f64) -> Result<()> {
    for (name, d) in names.iter().zip(per_image) {
        // PNG images decode identically: torchvision's values exactly (up to float rounding);
        // JPEG decoders differ from libjpeg-turbo by a few levels at some pixels.
        let bound = if name.ends_with(".png") { 1e-3 } else { 3.001 };
        ensure!(*d <= bound, "{name}: max pixel diff {d} > {bound}");
    }
    ensure!(within >= 0.99, "only {:.2}% of the values within one level", 100.0 * within);
    Ok(())
}

fn compare_fixture(dir: &Path) -> Result<String> {
    let info: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json"))?)?;
    let names: Vec<String> = serde_json::from_value(info["images"].clone())?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let python_class = info["python_class"].as_str().context("python_class")?;
    let processor = AutoImageProcessor::from_pretrained(&dir.display().to_string())?;
    ensure!(
        python_class == processor.class().name(),
        "Python used {python_class}, autocandle chose {}",
        processor.class()
    );
    let images = names
        .iter()
        .map(|n| autocandle::open_image(image_path(n)))
        .collect::<autocandle::Result<Vec<DynamicImage>>>()?;
    let want = load_tensors(&dir.join("expected.safetensors"))?;

    if info["per_image"].as_bool() == Some(true) {
        let mut worst = 0.0f32;
        for (i, image) in images.iter().enumerate() {
            let got = processor.preprocess(std::slice::from_ref(image))?;
            let expected = want.get(&format!("pixel_values.{i}")).context("pixel_values.i")?;
            let (per_image, within) = pixel_diff(&processor, &got, expected).with_context(|| names[i].to_owned())?;
            check_images(&names[i..=i], &per_image, within)?;
            worst = worst.max(per_image[0]);
        }
        return Ok(format!("{python_class}, {} images one by one, max pixel diff {worst:.1e}", images.len()));
    }

    let processed = processor.preprocess_batch(&images)?;
    ensure!(processed.original_sizes.len() == images.len() && processed.sizes.len() == images.len());
    let (got, expected) = match info["stride"].as_u64() {
        Some(stride) => {
            let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())?;
            ensure!(
                processed.pixel_values.dims() == shape,
                "shape {:?}, Python {shape:?}",
                processed.pixel_values.dims()
            );
            let strided = stride_hw(&processed.pixel_values, stride as usize)?;
            (strided, want.get("pixel_values_strided").context("pixel_values_strided")?.clone())
        }
        None => (processed.pixel_values.clone(), want.get("pixel_values").context("pixel_values")?.clone()),
    };
    let (per_image, within) = pixel_diff(&processor, &got, &expected)?;
    check_images(&names, &per_image, within)?;
    match (want.get("pixel_mask"), &processed.pixel_mask) {
        (Some(w), Some(g)) => {
            ensure!(g.dims() == w.dims(), "pixel_mask shape {:?}, Python {:?}", g.dims(), w.dims());
            let (g, w) = (g.flatten_all()?.to_vec1::<i64>()?, w.flatten_all()?.to_vec1::<i64>()?);
            ensure!(g == w, "pixel_mask differs from Python's");
            // The mask's ones are the image sizes after resizing.
            for (i, &(h, wd)) in processed.sizes.iter().enumerate() {
                let plane = processed.pixel_values.dim(2)? * processed.pixel_values.dim(3)?;
                let ones: i64 = g[i * plane..(i + 1) * plane].iter().sum();
                ensure!(ones == (h * wd) as i64, "image {i}: mask has {ones} ones, size {h}x{wd}");
            }
            let inputs = processed.to_model_inputs();
            ensure!(inputs.pixel_mask.is_some() && inputs.pixel_values.is_some());
        }
        (None, None) => ensure!(processed.to_model_inputs().pixel_mask.is_none()),
        (w, g) => anyhow::bail!("pixel_mask: Python {}, autocandle {}", w.is_some(), g.is_some()),
    }
    let max = per_image.iter().copied().fold(0.0f32, f32::max);
    Ok(format!("{python_class} {:?}, max pixel diff {max:.1e}, {:.2}% within 1", got.dims(), 100.0 * within))
}

/// `t[:, :, ::stride, ::stride]`.
fn stride_hw(t: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = t.dims4()?;
    let rows = Tensor::from_vec(
        (0..h).step_by(stride).map(|i| i as u32).collect::<Vec<_>>(),
        h.div_ceil(stride),
        &Device::Cpu,
    )?;
    let cols = Tensor::from_vec(
        (0..w).step_by(stride).map(|i| i as u32).collect::<Vec<_>>(),
        w.div_ceil(stride),
        &Device::Cpu,
    )?;
    Ok(t.index_select(&rows, 2)?.index_select(&cols, 3)?.contiguous()?)
}

#[test]
fn vision_processors_match_python() -> Result<()> {
    let root = fixtures_root().join("vision_processors");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("fixture.json").is_file())
        .collect();
    dirs.sort();
    ensure!(dirs.len() >= 19, "expected the vision processor fixtures, found {}", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        match compare_fixture(dir) {
            Ok(line) => println!("PASS {name:34} {line}"),
            Err(e) => {
                println!("FAIL {name:34} {e:#}");
                failures.push(name);
            }
        }
    }
    ensure!(failures.is_empty(), "fixtures off Python: {failures:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Post-processing

fn post_root() -> PathBuf {
    fixtures_root().join("vision_post_process")
}

fn post_fixture() -> Result<(HashMap<String, Tensor>, Value)> {
    let outputs = load_tensors(&post_root().join("outputs.safetensors"))?;
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(post_root().join("expected.json"))?)?;
    Ok((outputs, expected))
}

fn sizes(v: &Value) -> Result<Vec<(usize, usize)>> {
    Ok(serde_json::from_value(v.clone())?)
}

fn detection_output(outputs: &HashMap<String, Tensor>) -> Result<ObjectDetectionOutput> {
    let logits = outputs["logits"].clone();
    let boxes = outputs["pred_boxes"].clone();
    let (b, q, _) = logits.dims3()?;
    Ok(ObjectDetectionOutput::new(
        logits,
        boxes,
        Tensor::zeros((b, q, 2), candle_core::DType::F32, &Device::Cpu)?,
        None,
    ))
}

#[test]
fn object_detection_matches_python() -> Result<()> {
    let (outputs, expected) = post_fixture()?;
    let output = detection_output(&outputs)?;
    let target_sizes = sizes(&expected["object_detection_target_sizes"])?;
    let mut checked = 0;
    for class in ["DetrImageProcessor", "YolosImageProcessor"] {
        for (key, ts) in [("with_sizes", Some(target_sizes.as_slice())), ("without_sizes", None)] {
            for threshold in ["0.3", "0.05"] {
                let want = &expected[format!("object_detection.{class}.{key}.{threshold}")];
                let got = post_process_object_detection(&output, threshold.parse()?, ts)?;
                let want = want.as_array().context("a list per image")?;
                ensure!(got.len() == want.len());
                for (g, w) in got.iter().zip(want) {
                    let labels: Vec<usize> = serde_json::from_value(w["labels"].clone())?;
                    let scores: Vec<f32> = serde_json::from_value(w["scores"].clone())?;
                    let boxes: Vec<[f32; 4]> = serde_json::from_value(w["boxes"].clone())?;
                    ensure!(g.labels == labels, "{class} {key} {threshold}: labels {:?}, Python {labels:?}", g.labels);
                    ensure!(!g.labels.is_empty(), "the fixture keeps some boxes");
                    for (a, b) in g.scores.iter().zip(&scores) {
                        ensure!((a - b).abs() <= 1e-6, "score {a} vs {b}");
                    }
                    for (a, b) in g.boxes.iter().zip(&boxes) {
                        for k in 0..4 {
                            ensure!((a[k] - b[k]).abs() <= 1e-4 * b[k].abs().max(1.0), "box {a:?} vs {b:?}");
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 16);
    Ok(())
}

#[test]
fn semantic_segmentation_matches_python() -> Result<()> {
    let (outputs, expected) = post_fixture()?;
    let output = SemanticSegmenterOutput::new(outputs["seg_logits"].clone());
    let target_sizes = sizes(&expected["semantic_segmentation_target_sizes"])?;
    for class in ["SegformerImageProcessor", "BeitImageProcessor", "DPTImageProcessor"] {
        for (key, ts) in [("with_sizes", Some(target_sizes.as_slice())), ("without_sizes", None)] {
            let want: Vec<Vec<Vec<u32>>> =
                serde_json::from_value(expected[format!("semantic_segmentation.{class}.{key}")].clone())?;
            let got = post_process_semantic_segmentation(&output, ts)?;
            ensure!(got.len() == want.len());
            for (g, w) in got.iter().zip(&want) {
                ensure!(g.dtype() == candle_core::DType::U32);
                ensure!(&g.to_vec2::<u32>()? == w, "{class} {key}: label map differs from Python's");
            }
        }
    }
    Ok(())
}

#[test]
fn depth_estimation_matches_python() -> Result<()> {
    let (outputs, expected) = post_fixture()?;
    let depth = outputs["predicted_depth"].clone();
    let output = DepthEstimatorOutput::new(depth.clone());
    let target_sizes = sizes(&expected["depth_target_sizes"])?;
    let want = load_tensors(&post_root().join("expected.safetensors"))?;
    let got = post_process_depth_estimation(&output, Some(&target_sizes))?;
    for (i, g) in got.iter().enumerate() {
        let w = &want[&format!("depth.{i}")];
        ensure!(g.dims() == w.dims(), "depth {i}: {:?} vs {:?}", g.dims(), w.dims());
        let diff: f32 = (g - w)?.abs()?.flatten_all()?.max(0)?.to_scalar()?;
        ensure!(diff <= 1e-4, "depth {i} differs from Python's by {diff}");
    }
    // Without target sizes: the depth as predicted.
    let got = post_process_depth_estimation(&output, None)?;
    let diff: f32 = (&got[1] - depth.get(1)?)?.abs()?.flatten_all()?.max(0)?.to_scalar()?;
    ensure!(diff == 0.0);
    Ok(())
}

#[test]
fn post_processing_errors() -> Result<()> {
    let (outputs, _) = post_fixture()?;
    let output = detection_output(&outputs)?;
    for threshold in [0.0, -0.5, f32::NAN, 1.0, 2.0] {
        let err = post_process_object_detection(&output, threshold, None).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("threshold"), "{err}");
    }
    let err = post_process_object_detection(&output, 0.5, Some(&[(10, 10)])).unwrap_err().to_string();
    assert!(err.contains("1 target sizes for a batch of 2"), "{err}");
    let err = post_process_object_detection(&output, 0.5, Some(&[(10, 10), (0, 4)])).unwrap_err().to_string();
    assert!(err.contains("target size 1 is 0x4"), "{err}");
    let seg = SemanticSegmenterOutput::new(outputs["seg_logits"].clone());
    let err = post_process_semantic_segmentation(&seg, Some(&[(3, 3), (3, 3), (3, 3)])).unwrap_err().to_string();
    assert!(err.contains("3 target sizes for a batch of 2"), "{err}");
    let err = post_process_semantic_segmentation(&seg, Some(&[(3, 3), (100_000, 3)])).unwrap_err().to_string();
    assert!(err.contains("limit of 8192"), "{err}");
    // An empty label map.
    let empty = SemanticSegmenterOutput::new(Tensor::zeros((1, 0, 4, 4), candle_core::DType::F32, &Device::Cpu)?);
    let err = post_process_semantic_segmentation(&empty, None).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let depth = DepthEstimatorOutput::new(outputs["predicted_depth"].clone());
    let err = post_process_depth_estimation(&depth, Some(&[(5, 0), (5, 5)])).unwrap_err().to_string();
    assert!(err.contains("target size 0 is 5x0"), "{err}");
    // Wrong shapes.
    let flat = DepthEstimatorOutput::new(Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu)?);
    assert!(post_process_depth_estimation(&flat, None).unwrap_err().to_string().contains("[batch, height, width]"));
    let one_class = ObjectDetectionOutput::new(
        Tensor::zeros((1, 3, 1), candle_core::DType::F32, &Device::Cpu)?,
        Tensor::zeros((1, 3, 4), candle_core::DType::F32, &Device::Cpu)?,
        Tensor::zeros((1, 3, 2), candle_core::DType::F32, &Device::Cpu)?,
        None,
    );
    assert!(post_process_object_detection(&one_class, 0.5, None).unwrap_err().to_string().contains("no object"));
    let _ = Detections::default();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classes, defaults and errors

fn processor(config: Value) -> autocandle::Result<ImageProcessor> {
    ImageProcessor::from_json(&config)
}

#[test]
fn model_types_resolve_like_transformers() {
    use ImageProcessorClass::*;
    for (model_type, class) in [
        ("resnet", ConvNext),
        ("convnext", ConvNext),
        ("convnextv2", ConvNext),
        ("regnet", ConvNext),
        ("dinov2", Bit),
        ("bit", Bit),
        ("swin", Vit),
        ("swinv2", Vit),
        ("deit", Deit),
        ("beit", Beit),
        ("data2vec-vision", Beit),
        ("yolos", Yolos),
        ("detr", Detr),
        ("table-transformer", Detr),
        ("segformer", Segformer),
        ("upernet", Segformer),
        ("dpt", Dpt),
        ("depth_anything", Dpt),
    ] {
        assert_eq!(ImageProcessorClass::for_model_type(model_type), Some(class), "{model_type}");
    }
    // transformers 5.25 maps no processor to dinov2_with_registers (its checkpoints name one).
    assert_eq!(ImageProcessorClass::for_model_type("dinov2_with_registers"), None);
    for class in ImageProcessorClass::ALL {
        assert_eq!(ImageProcessorClass::from_class_name(class.name()), Some(class));
        assert_eq!(ImageProcessorClass::from_class_name(&format!("{}Fast", class.name())), Some(class));
    }
    assert_eq!(ImageProcessorClass::from_class_name("DetrFeatureExtractor"), Some(Detr));
    assert_eq!(ImageProcessorClass::from_class_name("DPTImageProcessorPil"), Some(Dpt));
}

#[test]
fn class_defaults_follow_transformers() -> Result<()> {
    use autocandle::{ImageSize, Resampling};
    let c = |name: &str| -> Result<autocandle::ImageProcessorConfig> {
        Ok(processor(json!({ "image_processor_type": name }))?.config().clone())
    };
    let convnext = c("ConvNextImageProcessor")?;
    assert_eq!(
        (convnext.size, convnext.resample, convnext.crop_pct),
        (ImageSize::ShortestEdge(384), Resampling::Bicubic, 0.875)
    );
    let bit = c("BitImageProcessor")?;
    assert!(bit.do_convert_rgb && bit.do_center_crop && bit.crop_size == Some((224, 224)));
    let deit = c("DeiTImageProcessor")?;
    assert_eq!((deit.size, deit.crop_size), (ImageSize::Exact { height: 256, width: 256 }, Some((224, 224))));
    let beit = c("BeitImageProcessor")?;
    assert!(!beit.do_center_crop && beit.resample == Resampling::Bicubic);
    let segformer = c("SegformerImageProcessor")?;
    assert_eq!(
        (segformer.size, segformer.image_mean),
        (ImageSize::Exact { height: 512, width: 512 }, [0.485, 0.456, 0.406])
    );
    let detr = c("DetrImageProcessor")?;
    assert!(detr.do_pad && detr.size == ImageSize::ShortestLongestEdge { shortest: 800, longest: 1333 });
    let yolos = c("YolosImageProcessor")?;
    assert!(yolos.do_pad);
    let dpt = c("DPTImageProcessor")?;
    assert!(!dpt.do_pad && !dpt.keep_aspect_ratio && dpt.ensure_multiple_of == 1);
    assert_eq!(dpt.size, ImageSize::Exact { height: 384, width: 384 });
    // DETR's legacy int size: the shortest edge, max_size (default 1333) the longest.
    let legacy = processor(json!({"image_processor_type": "DetrImageProcessor", "size": 600}))?;
    assert_eq!(legacy.config().size, ImageSize::ShortestLongestEdge { shortest: 600, longest: 1333 });
    let no_pad = processor(json!({"image_processor_type": "DetrImageProcessor", "pad_and_return_pixel_mask": false}))?;
    assert!(!no_pad.config().do_pad);
    Ok(())
}

#[test]
fn error_absurd_sizes_before_allocating() {
    for (class, key) in [
        ("ViTImageProcessor", json!({"size": 1_000_000})),
        ("ConvNextImageProcessor", json!({"size": {"shortest_edge": 1_000_000}})),
        ("DetrImageProcessor", json!({"size": {"shortest_edge": 800, "longest_edge": 1_000_000}})),
        ("DetrImageProcessor", json!({"pad_size": {"height": 1_000_000, "width": 4}})),
        ("DPTImageProcessor", json!({"size": {"height": 1_000_000, "width": 1_000_000}})),
        ("CLIPImageProcessor", json!({"crop_size": 1_000_000})),
    ] {
        let mut config = key.as_object().cloned().unwrap_or_default();
        config.insert("image_processor_type".into(), json!(class));
        let err = processor(Value::Object(config)).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("1000000") && message.contains("limit of 8192"), "{message}");
    }
    // An image of extreme aspect ratio whose resize would exceed the limit.
    let clip =
        processor(json!({"image_processor_type": "CLIPImageProcessor", "size": 224, "do_center_crop": false})).unwrap();
    let strip = DynamicImage::ImageRgb8(autocandle::image::RgbImage::new(1000, 2));
    let err = clip.preprocess(&[strip]).unwrap_err().to_string();
    assert!(err.contains("limit of 8192"), "{err}");
    // ConvNeXt's crop_pct so small that shortest_edge / crop_pct is absurd.
    let convnext = processor(
        json!({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224}, "crop_pct": 1e-6}),
    )
    .unwrap();
    let img = DynamicImage::ImageRgb8(autocandle::image::RgbImage::new(8, 8));
    let err = convnext.preprocess(&[img]).unwrap_err().to_string();
    assert!(err.contains("crop_pct") && err.contains("8192"), "{err}");
}

#[test]
fn error_bad_class_configs() {
    let cases = [
        (json!({"image_processor_type": "ConvNextImageProcessor", "crop_pct": 0}), "crop_pct"),
        (json!({"image_processor_type": "ConvNextImageProcessor", "size": {"height": 5, "width": 5}}), "shortest_edge"),
        (json!({"image_processor_type": "DetrImageProcessor", "size": {"shortest_edge": 5}}), "longest_edge"),
        (json!({"image_processor_type": "DPTImageProcessor", "size": {"shortest_edge": 5}}), "height"),
        (json!({"image_processor_type": "DPTImageProcessor", "do_pad": true}), "size_divisor"),
        (json!({"image_processor_type": "DPTImageProcessor", "ensure_multiple_of": 0}), "ensure_multiple_of"),
        (json!({"image_processor_type": "BeitImageProcessor", "do_pad": true}), "does not pad"),
    ];
    for (config, needle) in cases {
        let err = processor(config.clone()).unwrap_err().to_string();
        assert!(err.contains(needle), "{config}: {err}");
    }
    let err = processor(json!({"image_processor_type": "LevitImageProcessor"})).unwrap_err().to_string();
    assert!(err.contains("LevitImageProcessor") && err.contains("`DPTImageProcessor`"), "{err}");
}

#[test]
fn error_images_too_small() -> Result<()> {
    // YOLOS rounds sides down to multiples of 16: a 10 px side becomes 0.
    let yolos = processor(json!({"image_processor_type": "YolosImageProcessor",
                                 "size": {"shortest_edge": 12, "longest_edge": 40}}))?;
    let err = yolos.preprocess_paths(&[image_path("cmyk_12x10.jpg")]).unwrap_err().to_string();
    assert!(err.contains("image 0") && err.contains("empty") && err.contains("too small"), "{err}");
    // DPT rounding to multiples of 14 with a size below half of it.
    let dpt = processor(json!({"image_processor_type": "DPTImageProcessor", "size": {"height": 6, "width": 6},
                               "ensure_multiple_of": 14}))?;
    let err = dpt.preprocess_paths(&[image_path("rgb_37x23.png")]).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    // A pad_size smaller than a resized image.
    let detr = processor(json!({"image_processor_type": "DetrImageProcessor", "size": {"height": 20, "width": 20},
                                "pad_size": {"height": 10, "width": 30}}))?;
    let err = detr.preprocess_paths(&[image_path("rgb_37x23.png")]).unwrap_err().to_string();
    assert!(err.contains("pad_size"), "{err}");
    // DPT keeping the aspect ratio gives each image its size: a batch of two sizes is refused.
    let dpt = processor(json!({"image_processor_type": "DPTImageProcessor", "size": {"height": 28, "width": 28},
                               "keep_aspect_ratio": true, "ensure_multiple_of": 14, "do_convert_rgb": true}))?;
    let err = dpt.preprocess_paths(&[image_path("rgb_37x23.png"), image_path("gray_24x24.png")]).unwrap_err();
    assert!(err.to_string().contains("a batch needs one size"), "{err}");
    Ok(())
}

#[test]
fn to_inputs_carries_the_pixel_mask() -> Result<()> {
    let detr = processor(json!({"image_processor_type": "DetrImageProcessor", "do_convert_rgb": true,
                                "size": {"shortest_edge": 16, "longest_edge": 24}}))?;
    let images =
        [autocandle::open_image(image_path("rgb_37x23.png"))?, autocandle::open_image(image_path("gray_24x24.png"))?];
    let inputs = detr.to_inputs(&images, &Device::Cpu)?;
    let mask = inputs.pixel_mask.context("pixel_mask")?;
    let processed = detr.preprocess_batch(&images)?;
    assert_eq!(processed.original_sizes, vec![(23, 37), (24, 24)]);
    assert_eq!(processed.sizes[1], (16, 16));
    let (h, w) = processed.sizes[0];
    assert!(w <= 24 && h < 16, "{h}x{w}");
    assert_eq!(mask.dims(), &[2, 16, w]);
    assert_eq!(processed.pixel_values.dims(), &[2, 3, 16, w]);
    Ok(())
}
