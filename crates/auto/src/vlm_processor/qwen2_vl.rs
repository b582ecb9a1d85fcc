//! `Qwen2VLProcessor`, `Qwen2_5_VLProcessor` and `Qwen3VLProcessor` (`transformers` 5.25,
//! `models/qwen2_vl/{image_processing_qwen2_vl,processing_qwen2_vl}.py` and
//! `models/qwen2_5_vl/processing_qwen2_5_vl.py`, `models/qwen3_vl/processing_qwen3_vl.py`, which are the same
//! for images).
//!
//! The image processor is the torchvision one (`Qwen2VLImageProcessor`, what `transformers` 5
//! picks when torchvision is installed): each image is converted to RGB, resized (on `uint8`,
//! antialiased, bicubic by default) to the size `smart_resize` picks (both sides multiples of
//! `patch_size * merge_size`, the area between `min_pixels` and `max_pixels`, the aspect ratio
//! kept), rescaled and normalized in float32 (fused, as torchvision does), then cut into
//! patches: `[grid_h * grid_w, 3 * temporal_patch_size * patch_size^2]` rows in the order of
//! the merge windows, the image repeated over `temporal_patch_size`. `image_grid_thw` is
//! `[1, grid_h, grid_w]` per image.
//!
//! The prompt: each `<|image_pad|>` is replaced by `grid_t * grid_h * grid_w / merge_size^2`
//! copies of itself, then the texts are tokenized together (padded to the longest), and
//! `mm_token_type_ids` marks image tokens with 1 and video tokens with 2.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use super::ImageTextProcessing;
use crate::image_processor::decode::to_rgb8;
use crate::image_processor::resize::{resize, Rgb8};
use crate::image_processor::{DynamicImage, Resampling, MAX_IMAGE_SIDE};
use crate::tokenizer::{read_json, EncodeOptions, Padding, PreTrainedTokenizer};

/// `<|image_pad|>`: the token each image's features replace.
const IMAGE_TOKEN: &str = "<|image_pad|>";
/// `<|video_pad|>`.
const VIDEO_TOKEN: &str = "<|video_pad|>";
/// What the chat template writes for an image part.
const IMAGE_PLACEHOLDER: &str = "<|vision_start|><|image_pad|><|vision_end|>";

/// `transformers`' defaults (`Qwen2VLImageProcessor`): 56 * 56 and 28 * 28 * 1280 pixels.
const DEFAULT_MIN_PIXELS: usize = 56 * 56;
const DEFAULT_MAX_PIXELS: usize = 28 * 28 * 1280;
/// OpenAI CLIP's mean and std, the defaults.
const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Upper bounds on the config, so that no config makes absurd allocations.
const MAX_PATCH_SIZE: usize = 1024;
const MAX_MERGE_SIZE: usize = 64;
const MAX_TEMPORAL_PATCH_SIZE: usize = 64;
/// At most this many `pixel_values` floats per call (1 GiB of f32).
const MAX_PIXEL_VALUES: usize = 1 << 28;
/// At most this many image tokens per call (a real Qwen2-VL image has at most 16384).
const MAX_IMAGE_TOKENS: usize = 1 << 21;

/// The settings of `Qwen2VLImageProcessor` that `LoadOptions::config_overrides` may replace
/// (`AutoProcessor.from_pretrained(..., min_pixels=...)` in Python).
const OVERRIDABLE: [&str; 14] = [
    "do_convert_rgb",
    "do_resize",
    "resample",
    "size",
    "min_pixels",
    "max_pixels",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "patch_size",
    "temporal_patch_size",
    "merge_size",
];

/// The image settings of `Qwen2VLImageProcessor`.
#[derive(Debug, Clone, PartialEq)]
struct ImageConfig {
    do_convert_rgb: bool,
    do_resize: bool,
    resample: Resampling,
    min_pixels: usize,
    max_pixels: usize,
    do_rescale: bool,
    rescale_factor: f64,
    do_normalize: bool,
    image_mean: [f64; 3],
    image_std: [f64; 3],
    patch_size: usize,
    temporal_patch_size: usize,
    merge_size: usize,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            do_convert_rgb: true,
            do_resize: true,
            resample: Resampling::Bicubic,
            min_pixels: DEFAULT_MIN_PIXELS,
            max_pixels: DEFAULT_MAX_PIXELS,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
        }
    }
}

impl ImageConfig {
    /// The config of an `image_processor` entry or a `preprocessor_config.json`, as
    /// `Qwen2VLImageProcessor.__init__` reads it: `size` (`shortest_edge` = min pixels,
    /// `longest_edge` = max pixels), overridden by `min_pixels` / `max_pixels` when present.
    fn from_json(fields: &Map<String, Value>, origin: &str) -> Result<Self> {
        let mut c = Self::default();
        let field = |key: &str| fields.get(key).filter(|v| !v.is_null());
        let err = |key: &str, message: String| {
            Error::config("Qwen2VLImageProcessor", format!("`{key}` in {origin}: {message}"))
        };
        let flag = |key: &str, default: bool| match field(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(err(key, format!("expected true or false, got {v}"))),
        };
        let count = |key: &str, value: &Value, max: usize| -> Result<usize> {
            match value.as_u64() {
                Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
                _ => Err(err(key, format!("expected an integer from 1 to {max}, got {value}"))),
            }
        };
        let triple = |key: &str, default: [f64; 3]| -> Result<[f64; 3]> {
            match field(key) {
                None => Ok(default),
                Some(Value::Number(n)) => n.as_f64().map(|v| [v; 3]).ok_or_else(|| err(key, format!("got {n}"))),
                Some(Value::Array(items)) if items.len() == 3 => {
                    let mut out = [0.0; 3];
                    for (o, item) in out.iter_mut().zip(items) {
                        *o = item.as_f64().ok_or_else(|| err(key, format!("expected numbers, got {item}")))?;
                    }
                    Ok(out)
                }
                Some(v) => Err(err(key, format!("expected a number or 3 numbers (one per RGB channel), got {v}"))),
            }
        };
        c.do_convert_rgb = flag("do_convert_rgb", c.do_convert_rgb)?;
        c.do_resize = flag("do_resize", c.do_resize)?;
        c.do_rescale = flag("do_rescale", c.do_rescale)?;
        c.do_normalize = flag("do_normalize", c.do_normalize)?;
        if let Some(v) = field("resample") {
            c.resample = v
                .as_i64()
                .and_then(Resampling::from_pil_code)
                .ok_or_else(|| err("resample", format!("expected a PIL filter code 0 to 5, got {v}")))?;
            if matches!(c.resample, Resampling::Box | Resampling::Hamming) {
                return Err(err(
                    "resample",
                    format!("{v} (box or Hamming): transformers' torchvision backend has no such filter"),
                ));
            }
        }
        if let Some(v) = field("rescale_factor") {
            c.rescale_factor = v
                .as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| err("rescale_factor", format!("expected a positive number, got {v}")))?;
        }
        c.image_mean = triple("image_mean", c.image_mean)?;
        c.image_std = triple("image_std", c.image_std)?;
        if c.do_normalize && c.image_std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(err("image_std", format!("{:?} has a zero or non-finite value", c.image_std)));
        }
        // `count` bounds a value at `max`; pixel counts at the largest image autocandle resizes to.
        let max_area = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE;
        if let Some(size) = field("size") {
            let Value::Object(size) = size else {
                return Err(err("size", format!("expected {{\"shortest_edge\", \"longest_edge\"}}, got {size}")));
            };
            for (key, slot) in [("shortest_edge", &mut c.min_pixels), ("longest_edge", &mut c.max_pixels)] {
                match size.get(key).filter(|v| !v.is_null()) {
                    Some(v) => *slot = count(&format!("size.{key}"), v, max_area)?,
                    None => {
                        return Err(err(
                            "size",
                            format!("must have `shortest_edge` and `longest_edge` (min and max pixels), got {size:?}"),
                        ))
                    }
                }
            }
        }
        if let Some(v) = field("min_pixels") {
            c.min_pixels = count("min_pixels", v, max_area)?;
        }
        if let Some(v) = field("max_pixels") {
            c.max_pixels = count("max_pixels", v, max_area)?;
        }
        if let Some(v) = field("patch_size") {
            c.patch_size = count("patch_size", v, MAX_PATCH_SIZE)?;
        }
        if let Some(v) = field("temporal_patch_size") {
            c.temporal_patch_size = count("temporal_patch_size", v, MAX_TEMPORAL_PATCH_SIZE)?;
        }
        if let Some(v) = field("merge_size") {
            c.merge_size = count("merge_size", v, MAX_MERGE_SIZE)?;
        }
        Ok(c)
    }

    fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }
}

/// `transformers`' `smart_resize`: the `(height, width)` an image is resized to, both multiples
/// of `factor`, the area within `[min_pixels, max_pixels]` (when the aspect ratio allows), the
/// aspect ratio nearly kept. Python's float arithmetic, `round` half to even included.
fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if height == 0 || width == 0 {
        return Err(Error::input(format!("the image is empty ({height}x{width})")));
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    let ratio = h.max(w) / h.min(w);
    if ratio > 200.0 {
        return Err(Error::input(format!(
            "the image is {height}x{width}: its aspect ratio {ratio} is over 200, which Qwen2-VL's image processor \
             refuses (absolute aspect ratio must be smaller than 200)"
        )));
    }
    let mut h_bar = (h / f).round_ties_even() * f;
    let mut w_bar = (w / f).round_ties_even() * f;
    if h_bar * w_bar > max_pixels as f64 {
        let beta = ((h * w) / max_pixels as f64).sqrt();
        h_bar = f.max((h / beta / f).floor() * f);
        w_bar = f.max((w / beta / f).floor() * f);
    } else if h_bar * w_bar < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() * f;
        w_bar = (w * beta / f).ceil() * f;
    }
    let limit = MAX_IMAGE_SIDE as f64;
    if !(h_bar >= f && w_bar >= f && h_bar <= limit && w_bar <= limit) {
        return Err(Error::input(format!(
            "the image is {height}x{width}, which Qwen2-VL's image processor resizes to {h_bar}x{w_bar}: each side \
             must be from {factor} (patch_size * merge_size) to autocandle's limit of {MAX_IMAGE_SIDE} pixels; use \
             an image of a less extreme aspect ratio or other `min_pixels` / `max_pixels`"
        )));
    }
    Ok((h_bar as usize, w_bar as usize))
}

/// One processed image: its patch rows and grid.
struct Patches {
    rows: Vec<f32>,
    grid_h: usize,
    grid_w: usize,
}

impl ImageConfig {
    /// The resized 8-bit image.
    fn resized(&self, image: &DynamicImage) -> Result<Rgb8> {
        let pixels = to_rgb8(image, self.do_convert_rgb).map_err(Error::input)?;
        let factor = self.factor();
        if !self.do_resize {
            if pixels.height % factor != 0 || pixels.width % factor != 0 {
                return Err(Error::input(format!(
                    "the image is {}x{} and `do_resize` is off: both sides must be multiples of {factor} \
                     (patch_size * merge_size)",
                    pixels.height, pixels.width
                )));
            }
            return Ok(pixels);
        }
        let (height, width) = smart_resize(pixels.height, pixels.width, factor, self.min_pixels, self.max_pixels)?;
        Ok(resize(&pixels, height, width, self.resample))
    }

    /// Rescale, normalize (fused, in float32, as torchvision) and patchify one resized image.
    fn patchify(&self, pixels: &Rgb8) -> Patches {
        let inv = (1.0 / self.rescale_factor) as f32;
        let (mean, std): ([f32; 3], [f32; 3]) = match (self.do_rescale, self.do_normalize) {
            (true, true) => (self.image_mean.map(|m| m as f32 * inv), self.image_std.map(|s| s as f32 * inv)),
            (false, true) => (self.image_mean.map(|m| m as f32), self.image_std.map(|s| s as f32)),
            _ => ([0.0; 3], [1.0; 3]),
        };
        let factor = self.rescale_factor as f32;
        let rescale_only = self.do_rescale && !self.do_normalize;
        let value = |v: u8, c: usize| {
            let x = f32::from(v);
            if rescale_only {
                x * factor
            } else {
                (x - mean[c]) / std[c]
            }
        };
        let (p, m, t) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (grid_h, grid_w) = (pixels.height / p, pixels.width / p);
        let row_len = 3 * t * p * p;
        let mut rows = Vec::with_capacity(grid_h * grid_w * row_len);
        // [grid_h/m, grid_w/m, m, m] rows of [channel, temporal, p, p].
        for bh in 0..grid_h / m {
            for bw in 0..grid_w / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let (y0, x0) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for c in 0..3 {
                            let start = rows.len();
                            for py in 0..p {
                                let row = (y0 + py) * pixels.width;
                                rows.extend((0..p).map(|px| value(pixels.data[(row + x0 + px) * 3 + c], c)));
                            }
                            for _ in 1..t {
                                rows.extend_from_within(start..start + p * p);
                            }
                        }
                    }
                }
            }
        }
        Patches { rows, grid_h, grid_w }
    }
}

/// `Qwen2VLProcessor` / `Qwen2_5_VLProcessor` / `Qwen3VLProcessor` (the same for images; Qwen3-VL's
/// checkpoints set `patch_size` 16 and mean/std 0.5 in their `preprocessor_config.json`).
#[derive(Debug)]
pub(crate) struct Qwen2VlProcessor {
    class: &'static str,
    image: ImageConfig,
    chat_template: Option<String>,
}

impl Qwen2VlProcessor {
    /// Read the image processor from `processor_config.json`'s `image_processor` (as
    /// `transformers` 5 saves it) or `preprocessor_config.json` (the Hub's Qwen2-VL repos),
    /// and the chat template from `chat_template.jinja`, `chat_template.json` or
    /// `processor_config.json`.
    pub(crate) fn load(class: &str, source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let class = match class {
            "Qwen2_5_VLProcessor" => "Qwen2_5_VLProcessor",
            "Qwen3VLProcessor" => "Qwen3VLProcessor",
            _ => "Qwen2VLProcessor",
        };
        let processor_config = match source.optional_file("processor_config.json")? {
            Some(path) => Some(read_json(&path)?),
            None => None,
        };
        let with_overrides = |fields: &Map<String, Value>, origin: &str| {
            let mut fields = fields.clone();
            for (key, value) in &opts.config_overrides {
                if OVERRIDABLE.contains(&key.as_str()) {
                    fields.insert(key.clone(), value.clone());
                }
            }
            ImageConfig::from_json(&fields, origin)
        };
        let image = match processor_config.as_ref().and_then(|c| c.get("image_processor")) {
            Some(Value::Object(fields)) => with_overrides(fields, "processor_config.json's `image_processor`")?,
            Some(other) => {
                return Err(Error::config(
                    "Qwen2VLImageProcessor",
                    format!("`image_processor` in processor_config.json must be an object, got {other}"),
                ))
            }
            None => {
                let Some(path) = source.optional_file("preprocessor_config.json")? else {
                    return Err(Error::FileNotFound {
                        file: "preprocessor_config.json".to_owned(),
                        location: source.describe(),
                        hint: format!(
                            ": `{class}` needs its image processor's settings (`preprocessor_config.json`, or an \
                             `image_processor` entry of `processor_config.json`)"
                        ),
                    });
                };
                match read_json(&path)? {
                    Value::Object(fields) => with_overrides(&fields, "preprocessor_config.json")?,
                    other => {
                        return Err(Error::config(
                            "Qwen2VLImageProcessor",
                            format!("preprocessor_config.json must be an object, got {other}"),
                        ))
                    }
                }
            }
        };
        let chat_template =
            super::processor_chat_template(source, processor_config.as_ref().and_then(Value::as_object))?;
        Ok(Self { class, image, chat_template })
    }

    /// `pixel_values` `[patches, 3 * temporal * patch^2]` and the grids of `images`.
    fn process_pixels(&self, images: &[&DynamicImage]) -> Result<(Vec<f32>, Vec<[usize; 3]>)> {
        let mut values = Vec::new();
        let mut grids = Vec::with_capacity(images.len());
        for (i, image) in images.iter().enumerate() {
            let pixels = self.image.resized(image).map_err(|e| Error::input(format!("image {i}: {e}")))?;
            let per_image = pixels.height * pixels.width * 3 * self.image.temporal_patch_size;
            if values.len() + per_image > MAX_PIXEL_VALUES {
                return Err(Error::input(format!(
                    "the images make more than {MAX_PIXEL_VALUES} pixel values (autocandle's limit per call): use \
                     fewer or smaller images, or a smaller `max_pixels`"
                )));
            }
            let patches = self.image.patchify(&pixels);
            values.extend_from_slice(&patches.rows);
            grids.push([1, patches.grid_h, patches.grid_w]);
        }
        Ok((values, grids))
    }
}

impl ImageTextProcessing for Qwen2VlProcessor {
    fn class(&self) -> &'static str {
        self.class
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() {
            return Err(Error::input(format!("{}: no texts to process", self.class)));
        }
        if texts.len() != images.len() {
            return Err(Error::input(format!(
                "{}: {} texts but {} lists of images: give one list of images (maybe empty) per text",
                self.class,
                texts.len(),
                images.len()
            )));
        }
        let image_token = tokenizer.special_token("image_token").unwrap_or(IMAGE_TOKEN).to_owned();
        let video_token = tokenizer.special_token("video_token").unwrap_or(VIDEO_TOKEN);
        let image_token_id = tokenizer
            .token_to_id(&image_token)
            .ok_or_else(|| Error::input(format!("{}: the tokenizer has no image token `{image_token}`", self.class)))?;
        let video_token_id = tokenizer.token_to_id(video_token);
        for (i, (text, list)) in texts.iter().zip(images).enumerate() {
            let found = text.matches(image_token.as_str()).count();
            if found != list.len() {
                return Err(Error::input(format!(
                    "{}: text {i} has {found} image token(s) `{image_token}` but {} image(s) were given for it; \
                     write one `{IMAGE_PLACEHOLDER}` per image (the chat template does it for each image part)",
                    self.class,
                    list.len()
                )));
            }
        }
        let flat: Vec<&DynamicImage> = images.iter().flatten().collect();
        let (values, grids) = self.process_pixels(&flat)?;
        let merge_length = self.image.merge_size * self.image.merge_size;
        let total: usize = grids.iter().map(|g| g[0] * g[1] * g[2] / merge_length).sum();
        if total > MAX_IMAGE_TOKENS {
            return Err(Error::input(format!(
                "{}: the images make {total} image tokens, more than autocandle's limit of {MAX_IMAGE_TOKENS} per \
                 call: use fewer or smaller images, or a smaller `max_pixels`",
                self.class
            )));
        }
        let mut grid_iter = grids.iter();
        let mut expanded = Vec::with_capacity(texts.len());
        for text in texts {
            let mut parts = text.split(image_token.as_str());
            let mut out = parts.next().unwrap_or_default().to_owned();
            for part in parts {
                let grid = grid_iter.next().ok_or_else(|| Error::input("more image tokens than images"))?;
                let count = grid[0] * grid[1] * grid[2] / merge_length;
                out.reserve(count * image_token.len() + part.len());
                for _ in 0..count {
                    out.push_str(&image_token);
                }
                out.push_str(part);
            }
            expanded.push(out);
        }
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let encoding = tokenizer.encode_batch(&refs, &EncodeOptions::new().padding(Padding::Longest))?;
        let mm_types: Vec<Vec<u32>> = encoding
            .input_ids
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&id| {
                        if id == image_token_id {
                            1
                        } else if Some(id) == video_token_id {
                            2
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        let width = mm_types.first().map_or(0, Vec::len);
        let mm = Tensor::from_vec(mm_types.concat(), (mm_types.len(), width), &Device::Cpu)?;
        let mut inputs = encoding.to_inputs(&Device::Cpu)?;
        inputs.token_type_ids = None;
        inputs.mm_token_type_ids = Some(mm);
        if !grids.is_empty() {
            let row_len = 3 * self.image.temporal_patch_size * self.image.patch_size * self.image.patch_size;
            let rows = values.len() / row_len;
            inputs.pixel_values = Some(Tensor::from_vec(values, (rows, row_len), &Device::Cpu)?);
            let thw: Vec<i64> = grids.iter().flatten().map(|&v| v as i64).collect();
            inputs.image_grid_thw = Some(Tensor::from_vec(thw, (grids.len(), 3), &Device::Cpu)?);
        }
        to_device(inputs, device)
    }

    fn image_placeholder(&self) -> &str {
        IMAGE_PLACEHOLDER
    }

    fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

/// Move every tensor of `inputs` to `device`.
fn to_device(mut inputs: ModelInputs, device: &Device) -> Result<ModelInputs> {
    if device.is_cpu() {
        return Ok(inputs);
    }
    for slot in [
        &mut inputs.input_ids,
        &mut inputs.attention_mask,
        &mut inputs.mm_token_type_ids,
        &mut inputs.pixel_values,
        &mut inputs.image_grid_thw,
    ] {
        if let Some(t) = slot.take() {
            *slot = Some(t.to_device(device)?);
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_processor::image::{Rgb, RgbImage};

    fn config(json: Value) -> Result<ImageConfig> {
        match json {
            Value::Object(fields) => ImageConfig::from_json(&fields, "test"),
            _ => unreachable!("test configs are objects"),
        }
    }

    fn image(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 40])))
    }

    #[test]
    fn smart_resize_matches_python() {
        // Values from transformers' smart_resize.
        assert_eq!(smart_resize(41, 50, 12, 300, 1500).ok(), Some((24, 36)));
        assert_eq!(smart_resize(10, 12, 12, 300, 1500).ok(), Some((24, 24)));
        assert_eq!(smart_resize(480, 640, 28, 3136, 1003520).ok(), Some((476, 644)));
        // round half to even: 42 / 28 = 1.5 -> 2, 70 / 28 = 2.5 -> 2.
        assert_eq!(smart_resize(42, 70, 28, 1, 1 << 30).ok(), Some((56, 56)));
        // tiny images are upscaled to at least one factor per side
        assert_eq!(smart_resize(1, 1, 28, 3136, 1003520).ok(), Some((56, 56)));
    }

    #[test]
    fn extreme_aspect_ratio_is_refused() {
        let e = smart_resize(1, 201, 28, 3136, 1003520).unwrap_err().to_string();
        assert!(e.contains("aspect ratio"), "{e}");
        assert!(smart_resize(1, 200, 28, 3136, 1003520).is_ok());
    }

    #[test]
    fn absurd_sizes_are_refused() {
        // min_pixels asks for a side past autocandle's limit
        let e = smart_resize(1, 150, 28, MAX_IMAGE_SIDE * MAX_IMAGE_SIDE, MAX_IMAGE_SIDE * MAX_IMAGE_SIDE);
        assert!(e.unwrap_err().to_string().contains("limit"));
        assert!(config(serde_json::json!({"min_pixels": 1u64 << 40})).is_err());
        assert!(config(serde_json::json!({"patch_size": 0})).is_err());
        assert!(config(serde_json::json!({"merge_size": 100000})).is_err());
        assert!(config(serde_json::json!({"size": {"shortest_edge": 10}})).is_err());
        assert!(config(serde_json::json!({"image_std": [1.0, 0.0, 1.0]})).is_err());
        assert!(config(serde_json::json!({"resample": 4})).is_err());
    }

    #[test]
    fn config_reads_size_then_min_max_pixels() -> Result<()> {
        let c = config(serde_json::json!({"size": {"shortest_edge": 100, "longest_edge": 2000}, "max_pixels": 900}))?;
        assert_eq!((c.min_pixels, c.max_pixels), (100, 900));
        let c = config(serde_json::json!({}))?;
        assert_eq!((c.min_pixels, c.max_pixels, c.patch_size), (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, 14));
        Ok(())
    }

    /// The `preprocessor_config.json` of the released Qwen3-VL checkpoints.
    #[test]
    fn reads_the_qwen3_vl_image_processor_config() -> Result<()> {
        let c = config(serde_json::json!({
            "size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
            "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"}))?;
        assert_eq!((c.min_pixels, c.max_pixels, c.patch_size, c.merge_size), (65536, 16777216, 16, 2));
        Ok(())
    }

    #[test]
    fn patch_rows_follow_transformers_order() -> Result<()> {
        // no normalisation: values are the raw bytes; patch 2, merge 2, temporal 2, 4x8 image.
        let c = config(serde_json::json!({"do_rescale": false, "do_normalize": false, "do_resize": false,
            "patch_size": 2, "merge_size": 2, "temporal_patch_size": 2}))?;
        let data: Vec<u8> = (0..4 * 8 * 3).map(|v| v as u8).collect();
        let pixels = Rgb8 { height: 4, width: 8, data };
        let p = c.patchify(&pixels);
        assert_eq!((p.grid_h, p.grid_w), (2, 4));
        assert_eq!(p.rows.len(), 8 * 24);
        // row 0: window (0, 0), cell (0, 0); channel 0, t 0: pixels (0,0) (0,1) (1,0) (1,1)
        let px = |y: usize, x: usize, c: usize| ((y * 8 + x) * 3 + c) as f32;
        assert_eq!(&p.rows[0..4], &[px(0, 0, 0), px(0, 1, 0), px(1, 0, 0), px(1, 1, 0)]);
        assert_eq!(&p.rows[4..8], &p.rows[0..4].to_vec()[..]);
        assert_eq!(p.rows[8], px(0, 0, 1));
        // row 1: same window, cell (0, 1): x from 2
        assert_eq!(p.rows[24], px(0, 2, 0));
        // row 2: cell (1, 0): y from 2
        assert_eq!(p.rows[48], px(2, 0, 0));
        // row 4: next window: x from 4
        assert_eq!(p.rows[96], px(0, 4, 0));
        Ok(())
    }

    #[test]
    fn no_resize_needs_multiples_of_the_factor() -> Result<()> {
        let c = config(serde_json::json!({"do_resize": false, "patch_size": 2, "merge_size": 2}))?;
        let e = c.resized(&image(6, 5)).unwrap_err().to_string();
        assert!(e.contains("multiples of 4"), "{e}");
        Ok(())
    }

    fn fixture() -> Result<(Qwen2VlProcessor, PreTrainedTokenizer)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/vlm_processors/qwen2_vl");
        let opts = LoadOptions::default();
        let source = ModelSource::resolve(dir, &opts)?;
        let tokenizer = crate::AutoTokenizer::from_pretrained(dir)?;
        Ok((Qwen2VlProcessor::load("Qwen2VLProcessor", &source, &opts)?, tokenizer))
    }

    #[test]
    fn placeholders_and_images_must_match() -> Result<()> {
        let (processor, tokenizer) = fixture()?;
        let text = format!("Look: {IMAGE_PLACEHOLDER}");
        let cpu = Device::Cpu;
        let e = processor.process(&tokenizer, &[&text], &[vec![]], &cpu).unwrap_err().to_string();
        assert!(e.contains("text 0 has 1 image token(s)") && e.contains("but 0 image(s)"), "{e}");
        let two = vec![image(30, 20), image(20, 30)];
        let e = processor.process(&tokenizer, &[&text], &[two], &cpu).unwrap_err().to_string();
        assert!(e.contains("but 2 image(s)"), "{e}");
        let e = processor.process(&tokenizer, &["a", "b"], &[vec![]], &cpu).unwrap_err().to_string();
        assert!(e.contains("2 texts but 1 lists"), "{e}");
        let e = processor.process(&tokenizer, &[&text], &[vec![image(300, 1)]], &cpu).unwrap_err().to_string();
        assert!(e.contains("aspect ratio"), "{e}");
        // a tiny image is upscaled, as in Python
        let out = processor.process(&tokenizer, &[&text], &[vec![image(1, 1)]], &cpu)?;
        let grid = out.image_grid_thw.as_ref().map(|g| g.to_vec2::<i64>()).transpose()?;
        assert_eq!(grid, Some(vec![vec![1, 6, 6]]));
        let ids = out.input_ids.as_ref().map(|t| t.dims().to_vec());
        assert_eq!(out.mm_token_type_ids.as_ref().map(|t| t.dims().to_vec()), ids);
        Ok(())
    }

    #[test]
    fn overrides_replace_the_file() -> Result<()> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/vlm_processors/qwen2_vl");
        let mut opts = LoadOptions::default();
        opts.config_overrides.insert("max_pixels".to_owned(), serde_json::json!(5000));
        let source = ModelSource::resolve(dir, &opts)?;
        let p = Qwen2VlProcessor::load("Qwen2_5_VLProcessor", &source, &opts)?;
        assert_eq!((p.image.min_pixels, p.image.max_pixels, p.image.patch_size), (700, 5000, 6));
        assert_eq!(p.class(), "Qwen2_5_VLProcessor");
        assert!(p.chat_template().is_some_and(|t| t.contains("<|vision_start|><|image_pad|><|vision_end|>")));
        Ok(())
    }

    #[test]
    fn missing_config_is_a_clear_error() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("autocandle-qwen2vl-missing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let opts = LoadOptions::default();
        let result = ModelSource::resolve(&dir.to_string_lossy(), &opts)
            .and_then(|source| Qwen2VlProcessor::load("Qwen2VLProcessor", &source, &opts));
        let _ = std::fs::remove_dir_all(&dir);
        let e = result.unwrap_err().to_string();
        assert!(e.contains("`preprocessor_config.json` not found") && e.contains("Qwen2VLProcessor"), "{e}");
        Ok(())
    }
}
