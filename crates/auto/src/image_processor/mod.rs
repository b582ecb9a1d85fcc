//! `AutoImageProcessor`: `preprocessor_config.json` to an [`ImageProcessor`] that turns images
//! into `pixel_values` (and `pixel_mask`) as `transformers`' image processors do (ViT, CLIP,
//! SigLIP, ConvNeXt, BiT, DeiT, BEiT, SegFormer, DETR, YOLOS, DPT; see [`ImageProcessorClass`]),
//! and the post-processing of detection, segmentation and depth outputs
//! ([`post_process_object_detection`], [`post_process_semantic_segmentation`],
//! [`post_process_depth_estimation`]).
//!
//! `transformers` 5.x gives `AutoImageProcessor` the torchvision backend whenever torchvision is
//! installed (`ViTImageProcessor` and friends; the `...Pil` classes are the PIL one), and that is
//! what this module reproduces: RGB conversion through PIL's rules, torch's antialiased `uint8`
//! resize (bit-exact, see `resize.rs`), torchvision's center crop, and the fused float32
//! rescale-and-normalize.

mod config;
pub(crate) mod decode;
mod post_process;
pub(crate) mod resize;

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

/// The `image` crate, for building and decoding [`DynamicImage`]s.
pub use ::image;
pub use config::{ImageProcessorClass, ImageProcessorConfig, ImageSize, Resampling, MAX_IMAGE_SIDE};
pub use decode::open_image;
pub use image::DynamicImage;
pub use post_process::{
    post_process_depth_estimation, post_process_object_detection, post_process_semantic_segmentation, Detections,
};

use resize::Rgb8;

/// The keys of `preprocessor_config.json` that `LoadOptions::config_overrides` may replace
/// (`transformers`' `ImagesKwargs` that shape `pixel_values`).
const PROCESSOR_KEYS: [&str; 21] = [
    "crop_pct",
    "keep_aspect_ratio",
    "ensure_multiple_of",
    "size_divisor",
    "max_size",
    "pad_and_return_pixel_mask",
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

/// One normalized image, channel-first f32.
struct Plane {
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Plane {
    /// Append the image padded with zeros to `height` x `width`, `top` rows above and `left`
    /// columns to the left.
    fn pad_into(&self, height: usize, width: usize, top: usize, left: usize, out: &mut Vec<f32>) {
        for channel in self.data.chunks_exact(self.height * self.width) {
            out.extend(std::iter::repeat_n(0.0, top * width));
            for row in channel.chunks_exact(self.width) {
                out.extend(std::iter::repeat_n(0.0, left));
                out.extend_from_slice(row);
                out.extend(std::iter::repeat_n(0.0, width - left - self.width));
            }
            out.extend(std::iter::repeat_n(0.0, (height - top - self.height) * width));
        }
    }

    /// DPT's `pad_image`: center pad each side to a multiple of `divisor` (the smaller half
    /// before).
    fn pad_to_multiple(self, divisor: usize) -> Self {
        let height = self.height.div_ceil(divisor) * divisor;
        let width = self.width.div_ceil(divisor) * divisor;
        if (height, width) == (self.height, self.width) {
            return self;
        }
        let mut data = Vec::with_capacity(3 * height * width);
        self.pad_into(height, width, (height - self.height) / 2, (width - self.width) / 2, &mut data);
        Self { height, width, data }
    }
}

/// `get_size_with_aspect_ratio_yolos`: as DETR's shortest/longest edge, the width-first
/// branch order of YOLOS, each side rounded down to a multiple of 16.
fn yolos_output_size(height: usize, width: usize, shortest: usize, longest: usize) -> (usize, usize) {
    let (h, w) = (height as f64, width as f64);
    let (min_side, max_side) = (h.min(w), h.max(w));
    let mut size = shortest;
    let mut raw_size = None;
    if max_side / min_side * shortest as f64 > longest as f64 {
        let raw = longest as f64 * min_side / max_side;
        size = raw.round_ties_even() as usize;
        raw_size = Some(raw);
    }
    let scaled = raw_size.unwrap_or(size as f64);
    let (oh, ow) = if width < height {
        ((scaled * h / w) as usize, size)
    } else if (height <= width && height == size) || (width <= height && width == size) {
        (height, width)
    } else {
        (size, (scaled * w / h) as usize)
    };
    (oh - oh % 16, ow - ow % 16)
}

/// DPT's `get_resize_output_image_size`: scale to `(out_h, out_w)`, or, keeping the aspect
/// ratio, by the scale closer to 1; each side then rounded to a multiple of `multiple`
/// (Python's `round`, half to even).
fn dpt_output_size(
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
    keep_aspect_ratio: bool,
    multiple: usize,
) -> (usize, usize) {
    let mut scale_h = out_h as f64 / height as f64;
    let mut scale_w = out_w as f64 / width as f64;
    if keep_aspect_ratio {
        if (1.0 - scale_w).abs() < (1.0 - scale_h).abs() {
            scale_h = scale_w;
        } else {
            scale_w = scale_h;
        }
    }
    let constrain = |v: f64| ((v / multiple as f64).round_ties_even() * multiple as f64) as usize;
    (constrain(scale_h * height as f64), constrain(scale_w * width as f64))
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
    /// image converted to RGB, resized, center cropped, rescaled, normalized and padded as the
    /// config says, in `transformers`' order. Every image must come out the same size (a fixed
    /// `size`, a center crop, or padding to the batch's largest guarantees it).
    pub fn preprocess(&self, images: &[DynamicImage]) -> Result<Tensor> {
        Ok(self.preprocess_batch(images)?.pixel_values)
    }

    /// Preprocess a batch as `transformers` does for every class: `pixel_values` (padded to the
    /// largest image of the batch, with a `pixel_mask`, for the classes that pad), the size of
    /// each image before and after resizing.
    pub fn preprocess_batch(&self, images: &[DynamicImage]) -> Result<ProcessedImages> {
        if images.is_empty() {
            return Err(Error::input("no images to preprocess: give at least one image"));
        }
        let original_sizes: Vec<(usize, usize)> =
            images.iter().map(|i| (i.height() as usize, i.width() as usize)).collect();
        let mut planes = Vec::with_capacity(images.len());
        for (i, image) in images.iter().enumerate() {
            let pixels = self.transform(image).map_err(|m| Error::input(format!("image {i}: {m}")))?;
            let mut data = Vec::new();
            self.normalize_into(&pixels, &mut data);
            planes.push(Plane { height: pixels.height, width: pixels.width, data });
        }
        let sizes: Vec<(usize, usize)> = planes.iter().map(|p| (p.height, p.width)).collect();
        let c = &self.config;
        if c.do_pad && self.class.pads_to_batch() {
            let (height, width) = match c.pad_size {
                Some(size) => size,
                None => sizes.iter().fold((0, 0), |(h, w), &(ph, pw)| (h.max(ph), w.max(pw))),
            };
            if let Some((i, (h, w))) = sizes.iter().enumerate().find(|(_, (h, w))| *h > height || *w > width) {
                return Err(Error::input(format!(
                    "image {i} is {h}x{w} after resizing, larger than the `pad_size` {height}x{width}; use a larger \
                     `pad_size` or a smaller `size`"
                )));
            }
            let mut values = Vec::with_capacity(planes.len() * 3 * height * width);
            let mut mask = Vec::with_capacity(planes.len() * height * width);
            for plane in &planes {
                plane.pad_into(height, width, 0, 0, &mut values);
                for y in 0..height {
                    mask.extend((0..width).map(|x| i64::from(y < plane.height && x < plane.width)));
                }
            }
            let batch = planes.len();
            let pixel_values = Tensor::from_vec(values, (batch, 3, height, width), &Device::Cpu)?;
            let pixel_mask = Tensor::from_vec(mask, (batch, height, width), &Device::Cpu)?;
            return Ok(ProcessedImages { pixel_values, pixel_mask: Some(pixel_mask), original_sizes, sizes });
        }
        let mut values = Vec::new();
        let mut shape = None;
        for (i, plane) in planes.into_iter().enumerate() {
            let plane = match (self.class, c.do_pad, c.size_divisor) {
                (ImageProcessorClass::Dpt, true, Some(divisor)) => plane.pad_to_multiple(divisor),
                _ => plane,
            };
            let size = (plane.height, plane.width);
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
            values.extend_from_slice(&plane.data);
        }
        let (height, width) = shape.unwrap_or_default();
        let pixel_values = Tensor::from_vec(values, (images.len(), 3, height, width), &Device::Cpu)?;
        Ok(ProcessedImages { pixel_values, pixel_mask: None, original_sizes, sizes })
    }

    /// [`ImageProcessor::preprocess`] of image files (see [`open_image`]).
    pub fn preprocess_paths<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Tensor> {
        let images = paths.iter().map(open_image).collect::<Result<Vec<_>>>()?;
        self.preprocess(&images)
    }

    /// [`ImageProcessor::preprocess_batch`], as model inputs on `device`: `pixel_values`, and
    /// `pixel_mask` for the classes that pad.
    pub fn to_inputs(&self, images: &[DynamicImage], device: &Device) -> Result<ModelInputs> {
        let processed = self.preprocess_batch(images)?;
        let inputs = ModelInputs::from_pixel_values(processed.pixel_values.to_device(device)?);
        Ok(match processed.pixel_mask {
            Some(mask) => inputs.with_pixel_mask(mask.to_device(device)?),
            None => inputs,
        })
    }

    /// RGB conversion, resize and center crop, on 8-bit pixels.
    fn transform(&self, image: &DynamicImage) -> std::result::Result<Rgb8, String> {
        let c = &self.config;
        let mut pixels = decode::to_rgb8(image, c.do_convert_rgb)?;
        if pixels.height == 0 || pixels.width == 0 {
            return Err(format!("the image is empty ({}x{})", pixels.height, pixels.width));
        }
        if c.do_resize {
            pixels = self.resize(pixels)?;
        }
        if c.do_center_crop && !self.class.pads_to_batch() {
            let (height, width) = c.crop_size.ok_or("center cropping needs a `crop_size`")?;
            pixels = resize::center_crop(&pixels, height, width);
        }
        Ok(pixels)
    }

    /// The class's resize (ConvNeXt's `crop_pct`, DPT's aspect ratio and multiples, YOLOS'
    /// multiples of 16, the plain `size` of the others).
    fn resize(&self, pixels: Rgb8) -> std::result::Result<Rgb8, String> {
        let c = &self.config;
        let (h, w) = (pixels.height, pixels.width);
        let resize_to = |pixels: &Rgb8, height: usize, width: usize| -> std::result::Result<Rgb8, String> {
            if height == 0 || width == 0 {
                return Err(format!(
                    "resizing {h}x{w} to {:?} gives an empty image ({height}x{width}); the image is too small for \
                     this processor",
                    c.size
                ));
            }
            if height > MAX_IMAGE_SIDE || width > MAX_IMAGE_SIDE {
                return Err(format!(
                    "resizing {h}x{w} to {:?} gives {height}x{width}, more than autocandle's limit of \
                     {MAX_IMAGE_SIDE} pixels per side; use a smaller `size` or an image of a less extreme aspect ratio",
                    c.size
                ));
            }
            Ok(resize::resize(pixels, height, width, c.resample))
        };
        match (self.class, c.size) {
            (
                ImageProcessorClass::ConvNext,
                ImageSize::ShortestEdge(edge) | ImageSize::ShortestLongestEdge { shortest: edge, .. },
            ) => {
                if edge < 384 {
                    let resize_edge = edge as f64 / c.crop_pct;
                    if resize_edge >= MAX_IMAGE_SIDE as f64 {
                        return Err(format!(
                            "shortest edge {edge} / crop_pct {} is more than autocandle's limit of {MAX_IMAGE_SIDE} \
                             pixels per side; use a larger `crop_pct`",
                            c.crop_pct
                        ));
                    }
                    let (height, width) = ImageSize::ShortestEdge(resize_edge as usize).output_size(h, w);
                    let resized = resize_to(&pixels, height, width)?;
                    Ok(resize::center_crop(&resized, edge, edge))
                } else {
                    resize_to(&pixels, edge, edge)
                }
            }
            (ImageProcessorClass::Yolos, ImageSize::ShortestLongestEdge { shortest, longest }) => {
                let (height, width) = yolos_output_size(h, w, shortest, longest);
                resize_to(&pixels, height, width)
            }
            (ImageProcessorClass::Dpt, ImageSize::Exact { height, width }) => {
                let (height, width) = dpt_output_size(h, w, height, width, c.keep_aspect_ratio, c.ensure_multiple_of);
                resize_to(&pixels, height, width)
            }
            (_, size) => {
                let (height, width) = size.output_size(h, w);
                resize_to(&pixels, height, width)
            }
        }
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
