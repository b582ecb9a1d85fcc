//! `LlavaNextProcessor`: `LlavaNextImageProcessor` (the torchvision backend `transformers` 5
//! uses: "any resolution" tiles) and the expansion of each `<image>` of the prompt into as many
//! image tokens as LLaVA-NeXT packs features for that image, as `transformers`'
//! `processing_llava_next.LlavaNextProcessor` (5.25).
//!
//! Per image: the best resolution of `image_grid_pinpoints` for its size
//! (`select_best_resolution`), the image resized into it keeping its aspect ratio (bicubic,
//! antialiased, on 8-bit pixels) and padded with black to it, centered; that cut into tiles of
//! `crop_size` (row by row), after the whole image resized to `size` (square); each tile then
//! resized, center cropped, rescaled and normalized as CLIP's processor does. `pixel_values`
//! is `[images, most tiles, 3, crop, crop]` (zero tiles pad images with fewer) and
//! `image_sizes` `[images, 2]` the original heights and widths.

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use super::ImageTextProcessing;
use crate::image_processor::resize::{self, Rgb8};
use crate::image_processor::{
    decode, DynamicImage, ImageProcessor, ImageProcessorClass, ImageProcessorConfig, ImageSize, MAX_IMAGE_SIDE,
};
use crate::tokenizer::{EncodeOptions, Padding, PreTrainedTokenizer};

const CLASS: &str = "LlavaNextProcessor";
/// The most tiles one pinpoint may ask for.
const MAX_TILES: usize = 1024;

/// `LlavaNextImageProcessor.image_grid_pinpoints`' default.
const DEFAULT_PINPOINTS: [[usize; 2]; 5] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config(CLASS, format!("`{}` must hold a JSON object", path.display()))),
        Err(source) => Err(Error::MalformedJson { path: path.to_path_buf(), source }),
    }
}

/// A non-negative integer setting, `default` when absent or null.
fn uint(settings: &Map<String, Value>, key: &str, default: Option<usize>) -> Result<Option<usize>> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::config(CLASS, format!("`{key}` must be a non-negative integer, found {v}"))),
    }
}

/// `select_best_resolution`: the pinpoint `(height, width)` that keeps the most of an image of
/// `(height, width)` pixels, the least wasted on ties.
pub(crate) fn select_best_resolution((oh, ow): (usize, usize), pinpoints: &[[usize; 2]]) -> Option<(usize, usize)> {
    let mut best = None;
    let mut max_effective = 0usize;
    let mut min_wasted = usize::MAX;
    for &[h, w] in pinpoints {
        let scale = (w as f64 / ow as f64).min(h as f64 / oh as f64);
        let (dw, dh) = ((ow as f64 * scale) as usize, (oh as f64 * scale) as usize);
        let effective = (dw * dh).min(ow * oh);
        let wasted = (w * h).saturating_sub(effective);
        if effective > max_effective || (effective == max_effective && wasted < min_wasted) {
            max_effective = effective;
            min_wasted = wasted;
            best = Some((h, w));
        }
    }
    best
}

/// `round(x, 7)`, then `int()`.
fn round7_trunc(x: f64) -> usize {
    ((x * 1e7).round() / 1e7) as usize
}

/// `LlavaNextImageProcessor`: the tiling, then CLIP's steps on each tile.
#[derive(Debug)]
struct LlavaNextImageProcessor {
    /// Resizes (to `size`), center crops, rescales and normalizes one tile.
    tiles: ImageProcessor,
    pinpoints: Vec<[usize; 2]>,
    /// `size` as a square (or exact) `(height, width)`: the whole image's resize.
    base_size: (usize, usize),
    /// The side of a tile (`crop_size`'s height, else `size`'s).
    tile: usize,
    do_pad: bool,
}

impl LlavaNextImageProcessor {
    fn from_fields(fields: &Map<String, Value>, origin: &str) -> Result<Self> {
        // `do_pad` here pads the tile lists of a batch (CLIP's processor does not pad images).
        let mut clip_fields = fields.clone();
        clip_fields.remove("do_pad");
        clip_fields.remove("image_grid_pinpoints");
        let config = ImageProcessorConfig::from_json(ImageProcessorClass::Clip, &clip_fields, origin)?;
        let pinpoints = match fields.get("image_grid_pinpoints") {
            None | Some(Value::Null) => DEFAULT_PINPOINTS.to_vec(),
            Some(v) => serde_json::from_value::<Vec<[usize; 2]>>(v.clone()).map_err(|e| {
                Error::config(CLASS, format!("`image_grid_pinpoints` must be a list of [height, width] pairs: {e}"))
            })?,
        };
        let base_size = match config.size {
            ImageSize::Exact { height, width } => (height, width),
            ImageSize::ShortestEdge(e) | ImageSize::ShortestLongestEdge { shortest: e, .. } => (e, e),
            ref other => {
                return Err(Error::config(
                    CLASS,
                    format!("`size` {other:?} is not supported by LlavaNextImageProcessor"),
                ))
            }
        };
        let tile = match (config.do_center_crop, config.crop_size, config.size) {
            (_, Some((h, _)), _) => h,
            (_, None, ImageSize::Exact { height, .. }) => height,
            _ => base_size.0,
        };
        if tile == 0
            || base_size.0 == 0
            || base_size.1 == 0
            || base_size.0 > MAX_IMAGE_SIDE
            || base_size.1 > MAX_IMAGE_SIDE
        {
            return Err(Error::config(CLASS, "`size` and `crop_size` must be positive and not too large"));
        }
        if pinpoints.is_empty() {
            return Err(Error::config(CLASS, "`image_grid_pinpoints` is an empty list"));
        }
        for &[h, w] in &pinpoints {
            if h == 0
                || w == 0
                || h > MAX_IMAGE_SIDE
                || w > MAX_IMAGE_SIDE
                || h.div_ceil(tile) * w.div_ceil(tile) > MAX_TILES
            {
                return Err(Error::config(
                    CLASS,
                    format!("`image_grid_pinpoints` entry [{h}, {w}] is empty, too large, or has more than {MAX_TILES} tiles"),
                ));
            }
        }
        let do_pad = fields.get("do_pad").and_then(Value::as_bool).unwrap_or(true);
        Ok(Self { tiles: ImageProcessor::new(ImageProcessorClass::Clip, config), pinpoints, base_size, tile, do_pad })
    }

    /// `_get_image_patches`: the whole image resized to `size`, then the tiles of the padded
    /// best-resolution image.
    fn patches(&self, image: &DynamicImage) -> std::result::Result<Vec<Rgb8>, String> {
        let c = self.tiles.config();
        let rgb = decode::to_rgb8(image, c.do_convert_rgb)?;
        let (oh, ow) = (rgb.height, rgb.width);
        let (th, tw) = select_best_resolution((oh, ow), &self.pinpoints)
            .ok_or_else(|| format!("no `image_grid_pinpoints` resolution fits an image of {oh}x{ow} pixels"))?;
        // `get_patch_output_size`.
        let (scale_w, scale_h) = (tw as f64 / ow as f64, th as f64 / oh as f64);
        let (nh, nw) = if scale_w < scale_h {
            (((oh as f64 * scale_w).ceil() as usize).min(th), tw)
        } else {
            (th, ((ow as f64 * scale_h).ceil() as usize).min(tw))
        };
        if nh == 0 || nw == 0 {
            return Err(format!("the image of {oh}x{ow} pixels is too thin to resize into {th}x{tw}"));
        }
        let resized = resize::resize(&rgb, nh, nw, c.resample);
        // `_pad_for_patching`: centered, the extra pixel on the right / bottom.
        let (left, top) = ((tw - nw) / 2, (th - nh) / 2);
        let mut padded = Rgb8 { height: th, width: tw, data: vec![0u8; th * tw * 3] };
        for y in 0..nh {
            let src = &resized.data[y * nw * 3..(y + 1) * nw * 3];
            let at = ((y + top) * tw + left) * 3;
            padded.data[at..at + nw * 3].copy_from_slice(src);
        }
        let mut out = vec![resize::resize(&rgb, self.base_size.0, self.base_size.1, c.resample)];
        // `divide_to_patches`.
        let t = self.tile;
        for y0 in (0..th).step_by(t) {
            for x0 in (0..tw).step_by(t) {
                let (h, w) = (t.min(th - y0), t.min(tw - x0));
                let mut data = Vec::with_capacity(h * w * 3);
                for y in y0..y0 + h {
                    data.extend_from_slice(&padded.data[(y * tw + x0) * 3..(y * tw + x0 + w) * 3]);
                }
                out.push(Rgb8 { height: h, width: w, data });
            }
        }
        Ok(out)
    }

    /// `pixel_values` `[images, tiles, 3, h, w]` and `image_sizes` `[images, 2]`.
    fn preprocess(&self, images: &[DynamicImage]) -> Result<(Tensor, Tensor, (usize, usize))> {
        let mut per_image = Vec::with_capacity(images.len());
        let mut sizes = Vec::with_capacity(images.len() * 2);
        for (i, image) in images.iter().enumerate() {
            let patches = self.patches(image).map_err(|m| Error::input(format!("image {i}: {m}")))?;
            let as_images = patches
                .into_iter()
                .map(|p| {
                    image::RgbImage::from_raw(p.width as u32, p.height as u32, p.data)
                        .map(DynamicImage::ImageRgb8)
                        .ok_or_else(|| Error::input(format!("image {i}: a tile has the wrong size")))
                })
                .collect::<Result<Vec<_>>>()?;
            per_image.push(self.tiles.preprocess(&as_images)?);
            sizes.extend([i64::from(image.height()), i64::from(image.width())]);
        }
        let most = per_image.iter().map(|t| t.dim(0)).collect::<candle_core::Result<Vec<_>>>()?;
        let most = most.into_iter().max().unwrap_or(0);
        let (_, _, h, w) = per_image.first().map(Tensor::dims4).transpose()?.unwrap_or((0, 3, 0, 0));
        let mut padded = Vec::with_capacity(per_image.len());
        for t in per_image {
            let (n, c, th, tw) = t.dims4()?;
            if (th, tw) != (h, w) {
                return Err(Error::input(format!("tiles of {th}x{tw} and {h}x{w} pixels cannot be batched")));
            }
            let t = if n < most && self.do_pad {
                Tensor::cat(&[t, Tensor::zeros((most - n, c, h, w), candle_core::DType::F32, &Device::Cpu)?], 0)?
            } else {
                t
            };
            padded.push(t);
        }
        let pixel_values = Tensor::stack(&padded, 0).map_err(|e| {
            Error::input(format!("images with different tile counts cannot be batched without `do_pad`: {e}"))
        })?;
        let image_sizes = Tensor::from_vec(sizes, (images.len(), 2), &Device::Cpu)?;
        Ok((pixel_values, image_sizes, (h, w)))
    }
}

/// `LlavaNextProcessor`: the image processor (read from `processor_config.json`'s
/// `image_processor` or `preprocessor_config.json`) and the prompt expansion: each `<image>`
/// becomes `_get_number_of_features(original size, tile size)` image tokens (the base image's
/// patches, `num_additional_image_tokens`, and the unpadded grid with one newline per row),
/// one fewer with the `default` `vision_feature_select_strategy`.
#[derive(Debug)]
pub(crate) struct LlavaNextProcessor {
    image_processor: LlavaNextImageProcessor,
    patch_size: usize,
    num_additional_image_tokens: usize,
    drop_cls: bool,
    image_token: String,
    chat_template: Option<String>,
}

impl LlavaNextProcessor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = opts;
        let mut settings = match source.optional_file("processor_config.json")? {
            Some(p) => read_object(&p)?,
            None => Map::new(),
        };
        let image_processor = match settings.remove("image_processor") {
            Some(Value::Object(nested)) => LlavaNextImageProcessor::from_fields(&nested, "processor_config.json")?,
            Some(_) => {
                return Err(Error::config(CLASS, "`image_processor` in `processor_config.json` must be a JSON object"))
            }
            None => LlavaNextImageProcessor::from_fields(
                &read_object(&source.file("preprocessor_config.json")?)?,
                "preprocessor_config.json",
            )?,
        };
        let model_config = match source.optional_file("config.json")? {
            Some(p) => read_object(&p)?,
            None => Map::new(),
        };
        let vision_patch = model_config.get("vision_config").and_then(|v| v.get("patch_size")).and_then(Value::as_u64);
        let patch_size = uint(&settings, "patch_size", vision_patch.and_then(|p| usize::try_from(p).ok()))?
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                Error::config(
                    CLASS,
                    "`patch_size` is missing from `processor_config.json` (or is 0): the processor needs the vision \
                     tower's patch size to count the image tokens",
                )
            })?;
        let strategy = settings
            .get("vision_feature_select_strategy")
            .or_else(|| model_config.get("vision_feature_select_strategy"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num_additional_image_tokens = uint(&settings, "num_additional_image_tokens", Some(0))?.unwrap_or(0);
        let image_token = settings.get("image_token").and_then(Value::as_str).unwrap_or("<image>").to_owned();
        let chat_template = super::processor_chat_template(source, Some(&settings))?;
        Ok(Self {
            image_processor,
            patch_size,
            num_additional_image_tokens,
            drop_cls: strategy == "default",
            image_token,
            chat_template,
        })
    }

    /// The image token: the tokenizer's `image_token` when it has one, else the processor's.
    fn image_token<'a>(&'a self, tokenizer: &'a PreTrainedTokenizer) -> &'a str {
        tokenizer
            .special_token("image_token")
            .or_else(|| tokenizer.settings().get("extra_special_tokens")?.get("image_token")?.as_str())
            .unwrap_or(&self.image_token)
    }

    /// `_get_number_of_features` (minus the class token with the `default` strategy) for an
    /// image of `(oh, ow)` pixels whose tiles are `(height, width)`.
    fn tokens_per_image(&self, (oh, ow): (usize, usize), (height, width): (usize, usize)) -> Result<usize> {
        let (bh, bw) = select_best_resolution((oh, ow), &self.image_processor.pinpoints)
            .ok_or_else(|| Error::input(format!("no `image_grid_pinpoints` resolution fits an image of {oh}x{ow}")))?;
        let (scale_h, scale_w) = (bh / height.max(1), bw / width.max(1));
        let (ph, pw) = (height / self.patch_size, width / self.patch_size);
        let (mut cur_h, mut cur_w) = (ph * scale_h, pw * scale_w);
        if cur_h == 0 || cur_w == 0 {
            return Err(Error::input(format!(
                "tiles of {height}x{width} pixels hold no {0}x{0} patch: they give no image tokens",
                self.patch_size
            )));
        }
        if ow as f64 / oh as f64 > cur_w as f64 / cur_h as f64 {
            let new_h = round7_trunc(oh as f64 * (cur_w as f64 / ow as f64));
            cur_h -= (cur_h.saturating_sub(new_h) / 2) * 2;
        } else {
            let new_w = round7_trunc(ow as f64 * (cur_h as f64 / oh as f64));
            cur_w -= (cur_w.saturating_sub(new_w) / 2) * 2;
        }
        let n = cur_h * cur_w + cur_h + ph * pw + self.num_additional_image_tokens;
        Ok(if self.drop_cls { n.saturating_sub(1) } else { n })
    }
}

impl ImageTextProcessing for LlavaNextProcessor {
    fn class(&self) -> &'static str {
        CLASS
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() {
            return Err(Error::input("LlavaNextProcessor needs at least one text"));
        }
        let token = self.image_token(tokenizer);
        for (i, (text, row)) in texts.iter().zip(images).enumerate() {
            let placeholders = text.matches(token).count();
            if placeholders != row.len() {
                return Err(Error::input(format!(
                    "text {i} has {placeholders} `{token}` placeholders but {} images: put one `{token}` in the text \
                     where each of its images goes",
                    row.len()
                )));
            }
        }
        let flat: Vec<DynamicImage> = images.iter().flatten().cloned().collect();
        let mut inputs = ModelInputs::default();
        let mut counts = Vec::with_capacity(flat.len());
        if !flat.is_empty() {
            let (pixel_values, image_sizes, tile) = self.image_processor.preprocess(&flat)?;
            for image in &flat {
                counts.push(self.tokens_per_image((image.height() as usize, image.width() as usize), tile)?);
            }
            inputs.pixel_values = Some(pixel_values.to_device(device)?);
            inputs.image_sizes = Some(image_sizes.to_device(device)?);
        }
        let mut next = counts.into_iter();
        let expanded: Vec<String> = texts
            .iter()
            .map(|text| {
                let mut parts = text.split(token);
                let mut out = parts.next().unwrap_or_default().to_owned();
                for part in parts {
                    out.push_str(&token.repeat(next.next().unwrap_or(0)));
                    out.push_str(part);
                }
                out
            })
            .collect();
        let expanded: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let options = EncodeOptions::new().padding(Padding::Longest);
        let enc = tokenizer.encode_batch_with(&expanded, None, &options)?.to_inputs(device)?;
        inputs.input_ids = enc.input_ids;
        inputs.attention_mask = enc.attention_mask;
        Ok(inputs)
    }

    fn image_placeholder(&self) -> &str {
        &self.image_token
    }

    fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

#[cfg(test)]
mod tests {
    // Tests may panic on failure.
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::*;
    use crate::image_processor::open_image;
    use crate::AutoProcessor;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vlm_processors/llava_next")
    }

    #[test]
    fn best_resolution_as_transformers() {
        let pins = DEFAULT_PINPOINTS;
        assert_eq!(select_best_resolution((500, 300), &pins), Some((672, 336)));
        assert_eq!(select_best_resolution((300, 500), &pins), Some((336, 672)));
        assert_eq!(select_best_resolution((800, 800), &pins), Some((672, 672)));
    }

    #[test]
    fn placeholders_and_images_must_match() {
        let processor = AutoProcessor::from_pretrained(&fixture().to_string_lossy()).unwrap();
        let image = open_image(fixture().join("../../images/gray_24x24.png")).unwrap();
        let image_text = processor.image_text().unwrap();
        assert_eq!((image_text.class(), image_text.image_placeholder()), ("LlavaNextProcessor", "<image>"));
        assert!(image_text.chat_template().unwrap().contains("ASSISTANT:"));
        let dev = Device::Cpu;
        let err = processor.process_images(&["<image> and <image>"], &[vec![image.clone()]], &dev).unwrap_err();
        assert!(err.to_string().contains("2 `<image>` placeholders but 1 images"), "{err}");
        let err = processor.process_images(&["no image here"], &[vec![image.clone()]], &dev).unwrap_err();
        assert!(err.to_string().contains("0 `<image>` placeholders"), "{err}");
        let out = processor.process_images(&["hello world"], &[vec![]], &dev).unwrap();
        assert!(out.pixel_values.is_none() && out.image_sizes.is_none() && out.input_ids.is_some());
        // 24x24 takes the 24x24 pinpoint: 4 tiles of 12 px (3x3 patches of 4 px) and the base
        // image: 9 + 1 (additional) - 1 (class token) + 6 rows of 6 + 6 newlines.
        let out = processor.process_images(&["<image>"], &[vec![image]], &dev).unwrap();
        assert_eq!(out.pixel_values.unwrap().dims(), [1, 5, 3, 12, 12]);
        assert_eq!(out.image_sizes.unwrap().to_vec2::<i64>().unwrap(), [[24, 24]]);
        let ids = out.input_ids.unwrap().to_vec2::<u32>().unwrap();
        let image_id = processor.tokenizer().unwrap().token_to_id("<image>").unwrap();
        assert_eq!(ids[0].iter().filter(|&&i| i == image_id).count(), 9 + 36 + 6);
    }
}
