//! `AutoImageProcessor`: `preprocessor_config.json` to an [`ImageProcessor`] that turns images
//! into `pixel_values` as `transformers`' ViT, CLIP and SigLIP image processors do.
//!
//! `transformers` 5.x gives `AutoImageProcessor` the torchvision backend whenever torchvision is
//! installed (`ViTImageProcessor` and friends; the `...Pil` classes are the PIL one), and that is
//! what this module reproduces: RGB conversion through PIL's rules, torch's antialiased `uint8`
//! resize (bit-exact, see `resize.rs`), torchvision's center crop, and the fused float32
//! rescale-and-normalize.

mod config;
mod decode;
mod post_process;
mod resize;

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

/// The `image` crate, for building and decoding [`DynamicImage`]s.
pub use ::image;
pub use config::{ImageProcessorClass, ImageProcessorConfig, ImageSize, Resampling};
pub use decode::open_image;
pub use image::DynamicImage;
pub use post_process::{
    post_process_depth_estimation, post_process_object_detection, post_process_semantic_segmentation, Detections,
};

use resize::Rgb8;

/// The keys of `preprocessor_config.json` that `LoadOptions::config_overrides` may replace
/// (`transformers`' `ImagesKwargs` that shape `pixel_values`).
const PROCESSOR_KEYS: [&str; 15] = [
    "do_convert_rgb",
    "do_resize",
    "size",
    "default_to_square",
    "crop_size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_pad",
    "pad_size",
    "do_center_crop",
    "use_square_size",
];

/// Loads the image processor of a model (`transformers.AutoImageProcessor`).
#[derive(Debug, Clone, Copy)]
pub struct AutoImageProcessor;

impl AutoImageProcessor {
    /// Load the image processor of a Hub repo id, a local folder, or a path to a
    /// `preprocessor_config.json` file.
    pub fn from_pretrained(id_or_path: &str) -> Result<ImageProcessor> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`AutoImageProcessor::from_pretrained`] with options (revision, cache, subfolder, ...);
    /// entries of `opts.config_overrides` named like processor settings (`size`,
    /// `do_center_crop`, `image_mean`, ...) replace the file's values, the others are ignored.
    ///
    /// The class is, as in `transformers`: `image_processor_type`, else the legacy
    /// `feature_extractor_type`, else `config.json`'s `image_processor_type` or `model_type`.
    /// A `processor_config.json` with an `image_processor` entry takes precedence over
    /// `preprocessor_config.json`.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<ImageProcessor> {
        let path = Path::new(id_or_path);
        let (mut fields, origin, source) = if path.is_file() {
            (read_object(path)?, format!("`{}`", path.display()), None)
        } else {
            let source = ModelSource::resolve(id_or_path, opts)?;
            let nested = match source.optional_file("processor_config.json")? {
                Some(p) => read_object(&p)?.remove("image_processor").map(|v| (v, p)),
                None => None,
            };
            let (fields, file) = match nested {
                Some((Value::Object(map), p)) => (map, p),
                Some((_, p)) => {
                    return Err(Error::config(
                        "image processor",
                        format!("`image_processor` in `{}` must be a JSON object", p.display()),
                    ))
                }
                None => {
                    let p = source.file("preprocessor_config.json")?;
                    (read_object(&p)?, p)
                }
            };
            (fields, format!("`{}`", file.display()), Some(source))
        };
        for (key, value) in &opts.config_overrides {
            if PROCESSOR_KEYS.contains(&key.as_str()) {
                fields.insert(key.clone(), value.clone());
            }
        }
        let class = resolve_class(&fields, &origin, source.as_ref())?;
        let config = ImageProcessorConfig::from_json(class, &fields, &origin)?;
        tracing::info!(class = class.name(), from = %origin, "image processor loaded");
        Ok(ImageProcessor::new(class, config))
    }
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config("image processor", format!("`{}` must hold a JSON object", path.display()))),
        Err(source) => Err(Error::MalformedJson { path: path.to_path_buf(), source }),
    }
}

fn known_classes() -> String {
    ImageProcessorClass::ALL.iter().map(|c| format!("`{}`", c.name())).collect::<Vec<_>>().join(", ")
}

fn unknown_class(name: &str, key: &str, origin: &str) -> Error {
    Error::Unsupported(format!(
        "image processor `{name}` (`{key}` in {origin}); autocandle knows {} (with or without the `Fast` or \
         `Pil` suffix, or as `...FeatureExtractor`)",
        known_classes()
    ))
}

/// `AutoImageProcessor`'s choice of class.
fn resolve_class(
    fields: &Map<String, Value>,
    origin: &str,
    source: Option<&ModelSource>,
) -> Result<ImageProcessorClass> {
    for key in ["image_processor_type", "feature_extractor_type"] {
        if let Some(name) = fields.get(key).and_then(Value::as_str) {
            return ImageProcessorClass::from_class_name(name).ok_or_else(|| unknown_class(name, key, origin));
        }
    }
    let model_config = match source.map(|s| s.optional_file("config.json")).transpose()?.flatten() {
        Some(p) => Some((read_object(&p)?, p)),
        None => None,
    };
    if let Some((config, path)) = &model_config {
        let config_origin = format!("`{}`", path.display());
        if let Some(name) = config.get("image_processor_type").and_then(Value::as_str) {
            return ImageProcessorClass::from_class_name(name)
                .ok_or_else(|| unknown_class(name, "image_processor_type", &config_origin));
        }
        if let Some(model_type) = config.get("model_type").and_then(Value::as_str) {
            return ImageProcessorClass::for_model_type(model_type).ok_or_else(|| {
                Error::Unsupported(format!(
                    "image processor of model type `{model_type}` ({config_origin}); autocandle knows {} and the \
                     model types {}",
                    known_classes(),
                    ImageProcessorClass::known_model_types().collect::<Vec<_>>().join(", ")
                ))
            });
        }
    }
    Err(Error::config(
        "image processor",
        format!(
            "cannot tell the image processor class: {origin} has no `image_processor_type` or \
             `feature_extractor_type`{}; add `\"image_processor_type\": \"ViTImageProcessor\"` (or one of {})",
            if model_config.is_some() {
                " and config.json has no `model_type`"
            } else {
                " and there is no config.json"
            },
            known_classes()
        ),
    ))
}

/// What [`ImageProcessor::preprocess_batch`] makes of a batch of images.
#[derive(Debug, Clone)]
pub struct ProcessedImages {
    /// `[batch, 3, height, width]` f32 on the CPU.
    pub pixel_values: Tensor,
    /// `[batch, height, width]` i64 (as `transformers`), 1 for real pixels and 0 for padding, for the classes that
    /// pad a batch to its largest image (DETR, YOLOS); `None` otherwise.
    pub pixel_mask: Option<Tensor>,
    /// `(height, width)` of each image as given.
    pub original_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of each image after resizing and cropping, before padding.
    pub sizes: Vec<(usize, usize)>,
}

impl ProcessedImages {
    /// The model inputs: `pixel_values`, and `pixel_mask` when there is one.
    pub fn to_model_inputs(&self) -> ModelInputs {
        let inputs = ModelInputs::from_pixel_values(self.pixel_values.clone());
        match &self.pixel_mask {
            Some(mask) => inputs.with_pixel_mask(mask.clone()),
            None => inputs,
        }
    }
}

/// An image processor: a class and its settings; [`ImageProcessor::preprocess`] turns images
/// into `pixel_values`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    class: ImageProcessorClass,
    config: ImageProcessorConfig,
}

impl ImageProcessor {
    /// A processor of `class` with `config` (for processors built in code; see
    /// [`ImageProcessorConfig::for_class`]).
    pub fn new(class: ImageProcessorClass, config: ImageProcessorConfig) -> Self {
        Self { class, config }
    }

    /// Parse a `preprocessor_config.json` object; the class comes from its
    /// `image_processor_type` or `feature_extractor_type`.
    pub fn from_json(value: &Value) -> Result<Self> {
        let origin = "<json>";
        let Value::Object(fields) = value else {
            return Err(Error::config("image processor", "the config must be a JSON object"));
        };
        let class = resolve_class(fields, origin, None)?;
        Ok(Self::new(class, ImageProcessorConfig::from_json(class, fields, origin)?))
    }

    /// The `transformers` class this processor follows.
    pub fn class(&self) -> ImageProcessorClass {
        self.class
    }

    /// The settings.
    pub fn config(&self) -> &ImageProcessorConfig {
        &self.config
    }

    /// `pixel_values` of a batch: an f32 tensor `[batch, 3, height, width]` on the CPU, each
    /// image converted to RGB, resized, center cropped, rescaled and normalized as the config
    /// says, in `transformers`' order. Every image must come out the same size (a fixed
    /// `size` or a center crop guarantees it).
    pub fn preprocess(&self, images: &[DynamicImage]) -> Result<Tensor> {
        if images.is_empty() {
            return Err(Error::input("no images to preprocess: give at least one image"));
        }
        let mut data = Vec::new();
        let mut shape = None;
        for (i, image) in images.iter().enumerate() {
            let pixels = self.transform(image).map_err(|m| Error::input(format!("image {i}: {m}")))?;
            let size = (pixels.height, pixels.width);
            match shape {
                None => shape = Some(size),
                Some(first) if first != size => {
                    return Err(Error::input(format!(
                        "image {i} is {}x{} after preprocessing but image 0 is {}x{}; a batch needs one size: \
                         use a `size` with height and width, or a center crop",
                        size.0, size.1, first.0, first.1
                    )))
                }
                Some(_) => {}
            }
            self.normalize_into(&pixels, &mut data);
        }
        let (height, width) = shape.unwrap_or_default();
        Ok(Tensor::from_vec(data, (images.len(), 3, height, width), &Device::Cpu)?)
    }

    /// Preprocess a batch as `transformers` does for every class: `pixel_values` (padded to the
    /// largest image of the batch, with a `pixel_mask`, for the classes that pad), the size of
    /// each image before and after resizing.
    pub fn preprocess_batch(&self, images: &[DynamicImage]) -> Result<ProcessedImages> {
        if images.is_empty() {
            return Err(Error::input("no images to preprocess: give at least one image"));
        }
        let original_sizes = images.iter().map(|i| (i.height() as usize, i.width() as usize)).collect();
        let pixel_values = self.preprocess(images)?;
        let (_, _, height, width) = pixel_values.dims4()?;
        Ok(ProcessedImages {
            pixel_values,
            pixel_mask: None,
            original_sizes,
            sizes: vec![(height, width); images.len()],
        })
    }

    /// [`ImageProcessor::preprocess`] of image files (see [`open_image`]).
    pub fn preprocess_paths<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Tensor> {
        let images = paths.iter().map(open_image).collect::<Result<Vec<_>>>()?;
        self.preprocess(&images)
    }

    /// [`ImageProcessor::preprocess`], as model inputs (`pixel_values`) on `device`.
    pub fn to_inputs(&self, images: &[DynamicImage], device: &Device) -> Result<ModelInputs> {
        Ok(ModelInputs::from_pixel_values(self.preprocess(images)?.to_device(device)?))
    }

    /// RGB conversion, resize and center crop, on 8-bit pixels.
    fn transform(&self, image: &DynamicImage) -> std::result::Result<Rgb8, String> {
        let c = &self.config;
        let mut pixels = decode::to_rgb8(image, c.do_convert_rgb)?;
        if c.do_resize {
            let (height, width) = c.size.output_size(pixels.height, pixels.width);
            if height == 0 || width == 0 {
                return Err(format!(
                    "resizing {}x{} to {:?} gives an empty image ({height}x{width})",
                    pixels.height, pixels.width, c.size
                ));
            }
            pixels = resize::resize(&pixels, height, width, c.resample);
        }
        if c.do_center_crop {
            let (height, width) = c.crop_size.ok_or("center cropping needs a `crop_size`")?;
            pixels = resize::center_crop(&pixels, height, width);
        }
        Ok(pixels)
    }

    /// Rescale and normalize into channel-first f32, with the float32 arithmetic of
    /// torchvision's fused `rescale_and_normalize`: `(x - mean / factor) / (std / factor)`.
    fn normalize_into(&self, pixels: &Rgb8, out: &mut Vec<f32>) {
        let c = &self.config;
        let inv_factor = (1.0 / c.rescale_factor) as f32;
        let (mean, std): ([f32; 3], [f32; 3]) = match (c.do_rescale, c.do_normalize) {
            (true, true) => (c.image_mean.map(|m| m as f32 * inv_factor), c.image_std.map(|s| s as f32 * inv_factor)),
            (false, true) => (c.image_mean.map(|m| m as f32), c.image_std.map(|s| s as f32)),
            _ => ([0.0; 3], [1.0; 3]),
        };
        let factor = c.rescale_factor as f32;
        let rescale_only = c.do_rescale && !c.do_normalize;
        out.reserve(pixels.data.len());
        for channel in 0..3 {
            let (m, s) = (mean[channel], std[channel]);
            out.extend(pixels.data.iter().skip(channel).step_by(3).map(|&v| {
                let x = f32::from(v);
                if rescale_only {
                    x * factor
                } else {
                    (x - m) / s
                }
            }));
        }
    }
}
