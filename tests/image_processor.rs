//! Image processors: every folder under `tests/fixtures/image_processors/` (made by
//! `make_image_processor_fixtures.py`) loaded with `AutoImageProcessor` and run on the images of
//! `tests/fixtures/images/`, compared with the `pixel_values` of Python `transformers`; loading
//! from the Hub cache layout; and the errors.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use autocandle::{
    image, AutoImageProcessor, AutoProcessor, AutoTokenizer, DynamicImage, EncodeOptions, Error, ImageProcessor,
    ImageProcessorClass, LoadOptions, Padding, Resampling,
};
use autocandle_tests::{fixtures_root, hub_cache};
use candle_core::{Device, Tensor};
use serde_json::{json, Value};

fn processors_root() -> PathBuf {
    fixtures_root().join("image_processors")
}

fn image_path(name: &str) -> PathBuf {
    fixtures_root().join("images").join(name)
}

/// How far Rust is from Python on one fixture, in pixel units (0..=255 before rescaling).
#[derive(Debug, Default)]
struct Parity {
    max_abs_diff: f32,
    max_pixel_diff: f32,
    within: usize,
    total: usize,
    /// Largest pixel difference over the PNG images of the batch (no JPEG decoder in play).
    max_png_pixel_diff: f32,
}

impl Parity {
    fn share_within(&self) -> f64 {
        self.within as f64 / self.total as f64
    }
}

fn compare_fixture(dir: &Path) -> Result<(String, Parity)> {
    let info: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json"))?)?;
    let images: Vec<String> = serde_json::from_value(info["images"].clone())?;
    let python_class = info["python_class"].as_str().context("python_class")?;
    let backend = info["backend"].as_str().context("backend")?;

    let processor = AutoImageProcessor::from_pretrained(&dir.display().to_string())?;
    ensure!(
        python_class.trim_end_matches("Pil") == processor.class().name(),
        "Python used {python_class}, autocandle chose {}",
        processor.class()
    );
    let paths: Vec<PathBuf> = images.iter().map(|n| image_path(n)).collect();
    let got = processor.preprocess_paths(&paths)?;
    let want = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu)?
        .remove("pixel_values")
        .context("expected.safetensors has no pixel_values")?;
    ensure!(got.dims() == want.dims(), "shape {:?}, Python {:?}", got.dims(), want.dims());

    // A difference in pixel_values, in 0..=255 pixel units: undo normalize and rescale.
    let config = processor.config();
    let per_channel: Vec<f32> = (0..3)
        .map(|c| {
            let std = if config.do_normalize { config.image_std[c] } else { 1.0 };
            let factor = if config.do_rescale { config.rescale_factor } else { 1.0 };
            (std / factor) as f32
        })
        .collect();
    let diff = (&got - &want)?.abs()?;
    let pixel_diff = diff.broadcast_mul(&Tensor::from_vec(per_channel, (1, 3, 1, 1), &Device::Cpu)?)?;
    let mut parity = Parity {
        max_abs_diff: diff.flatten_all()?.max(0)?.to_scalar()?,
        max_pixel_diff: pixel_diff.flatten_all()?.max(0)?.to_scalar()?,
        ..Parity::default()
    };
    let values = pixel_diff.flatten_all()?.to_vec1::<f32>()?;
    parity.total = values.len();
    parity.within = values.iter().filter(|d| **d <= 1.0 + 1e-3).count();
    for (i, name) in images.iter().enumerate() {
        if name.ends_with(".png") {
            let d: f32 = pixel_diff.get(i)?.flatten_all()?.max(0)?.to_scalar()?;
            parity.max_png_pixel_diff = parity.max_png_pixel_diff.max(d);
        }
    }
    Ok((format!("{python_class} ({backend})"), parity))
}

#[test]
fn parity_with_python() -> Result<()> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(processors_root())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("fixture.json").is_file())
        .collect();
    dirs.sort();
    ensure!(dirs.len() >= 10, "expected the image processor fixtures, found {}", dirs.len());
    let (mut within, mut total) = (0, 0);
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let (class, p) = compare_fixture(dir).with_context(|| format!("fixture {name}"))?;
        println!(
            "{name:30} {class:35} max |diff| {:.3e}  max pixel diff {:.0}  within 1/255 {:.2}%  PNG pixel diff {:.1e}",
            p.max_abs_diff,
            p.max_pixel_diff,
            100.0 * p.share_within(),
            p.max_png_pixel_diff,
        );
        within += p.within;
        total += p.total;
        // PNG images are decoded identically, so torchvision's results are matched exactly
        // (up to float rounding); the PIL backend (box, hamming) rounds its weights differently.
        let png_bound = if class.ends_with("(pil)") { 1.001 } else { 1e-3 };
        // JPEG decoders differ from libjpeg-turbo by a few levels at some pixels.
        if p.max_png_pixel_diff > png_bound || p.max_pixel_diff > 3.001 || p.share_within() < 0.99 {
            failures.push(format!("{name}: {p:?}"));
        }
    }
    let share = within as f64 / total as f64;
    println!("all fixtures: {:.3}% of {total} values within 1/255", 100.0 * share);
    ensure!(failures.is_empty(), "fixtures off Python:\n{}", failures.join("\n"));
    ensure!(share >= 0.995, "only {:.3}% of the values within 1/255", 100.0 * share);
    Ok(())
}

#[test]
fn hub_cache_layout_and_overrides() -> Result<()> {
    let source = processors_root().join("siglip-from-model-type");
    let cache = hub_cache(&source, "org/siglip-tiny", "0123456789abcdef0123456789abcdef01234567", None)?;
    let opts = LoadOptions::new().cache_dir(cache.path()).local_files_only(true);
    let processor = AutoImageProcessor::from_pretrained_with("org/siglip-tiny", &opts)?;
    assert_eq!(processor.class(), ImageProcessorClass::Siglip);
    assert_eq!(processor.config().resample, Resampling::Lanczos);

    let mut opts = opts;
    opts.config_overrides.insert("size".to_owned(), json!({"height": 8, "width": 6}));
    opts.config_overrides.insert("hidden_size".to_owned(), json!(3)); // a model field: ignored
    let processor = AutoImageProcessor::from_pretrained_with("org/siglip-tiny", &opts)?;
    let inputs = processor.to_inputs(&[autocandle::open_image(image_path("rgb_37x23.png"))?], &Device::Cpu)?;
    assert_eq!(inputs.pixel_values()?.dims(), &[1, 3, 8, 6]);
    Ok(())
}

#[test]
fn nested_processor_config_and_json_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nested = json!({"image_processor": {"image_processor_type": "CLIPImageProcessor", "crop_size": 12}});
    std::fs::write(dir.path().join("processor_config.json"), nested.to_string())?;
    std::fs::write(dir.path().join("preprocessor_config.json"), r#"{"image_processor_type": "ViTImageProcessor"}"#)?;
    let processor = AutoImageProcessor::from_pretrained(&dir.path().display().to_string())?;
    assert_eq!((processor.class(), processor.config().crop_size), (ImageProcessorClass::Clip, Some((12, 12))));

    // A path to the JSON file itself.
    let file = dir.path().join("preprocessor_config.json");
    let processor = AutoImageProcessor::from_pretrained(&file.display().to_string())?;
    assert_eq!(processor.class(), ImageProcessorClass::Vit);
    let same = ImageProcessor::from_json(&json!({"image_processor_type": "ViTImageProcessorFast"}))?;
    assert_eq!(same, processor);
    Ok(())
}

fn folder_with(config: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("preprocessor_config.json"), config)?;
    Ok(dir)
}

fn load(dir: &tempfile::TempDir) -> autocandle::Result<ImageProcessor> {
    AutoImageProcessor::from_pretrained(&dir.path().display().to_string())
}

#[test]
fn error_wrong_channel_count() -> Result<()> {
    // ViT leaves do_convert_rgb unset; Python then fails on a grayscale image too.
    let processor = AutoImageProcessor::from_pretrained(
        &processors_root().join("vit-legacy-feature-extractor").display().to_string(),
    )?;
    let err = processor.preprocess_paths(&[image_path("rgb_37x23.png"), image_path("gray_24x24.png")]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("image 1") && message.contains("do_convert_rgb"), "{message}");
    Ok(())
}

#[test]
fn error_corrupt_image_file() -> Result<()> {
    let processor = ImageProcessor::from_json(&json!({"image_processor_type": "SiglipImageProcessor"}))?;
    let dir = tempfile::tempdir()?;
    let garbage = dir.path().join("broken.png");
    std::fs::write(&garbage, b"\x89PNG\r\n\x1a\nthis is not a PNG")?;
    let err = processor.preprocess_paths(&[&garbage]).unwrap_err().to_string();
    assert!(err.contains("cannot decode image") && err.contains("broken.png"), "{err}");
    // A JPEG cut short.
    let jpeg = std::fs::read(image_path("photo_50x41.jpg"))?;
    let truncated = dir.path().join("truncated.jpg");
    std::fs::write(&truncated, &jpeg[..jpeg.len() / 3])?;
    let err = processor.preprocess_paths(&[&truncated]).unwrap_err().to_string();
    assert!(err.contains("cannot decode image"), "{err}");
    let err = processor.preprocess_paths(&[dir.path().join("missing.png")]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    Ok(())
}

#[test]
fn error_empty_batch() -> Result<()> {
    let processor = ImageProcessor::from_json(&json!({"image_processor_type": "CLIPImageProcessor"}))?;
    let err = processor.preprocess(&[]).unwrap_err().to_string();
    assert!(err.contains("no images"), "{err}");
    let empty = DynamicImage::ImageRgb8(image::RgbImage::new(0, 4));
    let err = processor.preprocess(&[empty]).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    Ok(())
}

#[test]
fn error_unknown_resampling_filter() -> Result<()> {
    let dir = folder_with(r#"{"image_processor_type": "ViTImageProcessor", "resample": 9}"#)?;
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("unknown resampling filter 9") && message.contains("5 (hamming)"), "{message}");
    Ok(())
}

#[test]
fn error_malformed_config() -> Result<()> {
    let dir = folder_with(r#"{"image_processor_type": "ViTImageProcessor", "size": "#)?;
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, Error::MalformedJson { .. }), "{err:?}");
    let dir = folder_with(r#"{"image_processor_type": "ViTImageProcessor", "size": {"height": 3}}"#)?;
    let err = load(&dir).unwrap_err().to_string();
    assert!(err.contains("`size`") && err.contains("height and width"), "{err}");
    let dir = folder_with(r#"{"image_processor_type": "ViTImageProcessor", "do_resize": "yes"}"#)?;
    assert!(load(&dir).unwrap_err().to_string().contains("`do_resize`"));
    Ok(())
}

#[test]
fn error_missing_config() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("preprocessor_config.json"), "{err}");
    Ok(())
}

#[test]
fn error_unknown_class() -> Result<()> {
    let dir = folder_with(r#"{"image_processor_type": "LevitImageProcessor"}"#)?;
    let err = load(&dir).unwrap_err().to_string();
    assert!(err.contains("LevitImageProcessor") && err.contains("`SiglipImageProcessor`"), "{err}");
    // No class anywhere: no type in the file, no config.json.
    let dir = folder_with(r#"{"size": 224}"#)?;
    let err = load(&dir).unwrap_err().to_string();
    assert!(err.contains("image_processor_type"), "{err}");
    // A model type without a known image processor.
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "bert"}"#)?;
    let err = load(&dir).unwrap_err().to_string();
    assert!(err.contains("`bert`") && err.contains("siglip"), "{err}");
    Ok(())
}

#[test]
fn batch_sizes_must_agree() -> Result<()> {
    let processor = ImageProcessor::from_json(&json!({"image_processor_type": "CLIPImageProcessor", "size": 20,
                                                       "do_center_crop": false}))?;
    let images = [image_path("rgb_37x23.png"), image_path("gray_24x24.png")];
    let err = processor.preprocess_paths(&images).unwrap_err().to_string();
    assert!(err.contains("image 1 is 20x20") && err.contains("image 0 is 20x32"), "{err}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// AutoProcessor: a tokenizer and an image processor together

/// A CLIP-like folder: the CLIP image processor fixture, a tokenizer, `config.json`.
fn processor_folder(with_tokenizer: bool, config: Value) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let copy = |from: PathBuf, name: &str| std::fs::copy(from.join(name), dir.path().join(name)).map(|_| ());
    copy(processors_root().join("clip-shortest-edge-crop"), "preprocessor_config.json")?;
    if with_tokenizer {
        let tok = fixtures_root().join("tokenizers").join("bert-fast");
        copy(tok.clone(), "tokenizer.json")?;
        copy(tok, "tokenizer_config.json")?;
    }
    std::fs::write(dir.path().join("config.json"), config.to_string())?;
    Ok(dir)
}

#[test]
fn auto_processor_combines_tokenizer_and_image_processor() -> Result<()> {
    let dir = processor_folder(true, json!({"model_type": "clip"}))?;
    let path = dir.path().to_string_lossy().into_owned();
    let processor = AutoProcessor::from_pretrained(&path)?;
    assert_eq!(processor.class(), Some("CLIPProcessor"));
    let images =
        [autocandle::open_image(image_path("rgb_37x23.png"))?, autocandle::open_image(image_path("gray_24x24.png"))?];
    let options = EncodeOptions::new().padding(Padding::Longest);
    let texts = ["a photo of a cat", "hello"];
    let inputs = processor.process(&texts, &images, &options, &Device::Cpu)?;

    let want_pixels = AutoImageProcessor::from_pretrained(&path)?.preprocess(&images)?;
    let got_pixels = inputs.pixel_values.as_ref().context("pixel_values")?;
    let diff = (got_pixels - &want_pixels)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    ensure!(diff == 0.0, "pixel_values differ from the image processor's by {diff}");
    let want_ids = AutoTokenizer::from_pretrained(&path)?.encode_batch(&texts, &options)?;
    let got_ids: Vec<Vec<u32>> = inputs.input_ids.as_ref().context("input_ids")?.to_vec2()?;
    assert_eq!(got_ids, want_ids.input_ids);
    assert!(inputs.attention_mask.is_some());

    let text_only = processor.process(&texts, &[], &options, &Device::Cpu)?;
    assert!(text_only.pixel_values.is_none() && text_only.input_ids.is_some());
    let images_only = processor.process(&[], &images, &options, &Device::Cpu)?;
    assert!(images_only.pixel_values.is_some() && images_only.input_ids.is_none());
    let err = processor.process(&[], &[], &options, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    Ok(())
}

#[test]
fn auto_processor_errors_and_fallbacks() -> Result<()> {
    // A CLIP repo without its tokenizer: the processor cannot be built.
    let dir = processor_folder(false, json!({"model_type": "clip"}))?;
    let err = AutoProcessor::from_pretrained(&dir.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }) && err.to_string().contains("CLIPProcessor"), "{err}");
    // An image-only model type: the image processor alone, as transformers falls back.
    let dir = processor_folder(false, json!({"model_type": "vit"}))?;
    let processor = AutoProcessor::from_pretrained(&dir.path().to_string_lossy())?;
    assert!(processor.class().is_none() && processor.tokenizer().is_none() && processor.image_processor().is_some());
    // A processor class autocandle does not know.
    let dir = processor_folder(true, json!({"model_type": "clip"}))?;
    std::fs::write(
        dir.path().join("processor_config.json"),
        json!({"processor_class": "Pix2StructProcessor"}).to_string(),
    )?;
    let err = AutoProcessor::from_pretrained(&dir.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("Pix2StructProcessor"), "{err}");
    Ok(())
}
