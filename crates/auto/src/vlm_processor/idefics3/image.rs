//! The image processor of Idefics3 and SmolVLM (`Idefics3ImageProcessor`,
//! `SmolVLMImageProcessor`, the same code in `transformers` 5.25), as its torchvision backend
//! computes it: resize so that the longest edge is `size.longest_edge` (even short edge, at most
//! 4096 pixels a side), resize to multiples of `max_image_size.longest_edge`, split into square
//! tiles in row-major order followed by the whole image resized to one tile (`do_image_splitting`;
//! otherwise the image alone, resized to one tile), fused rescale-and-normalize, then padding
//! to the batch's most tiles and largest tile with `pixel_attention_mask`.
//!
//! Every resize works on 8-bit pixels (torch's antialiased `uint8` resize, bit-exact through
//! `crate::image_processor::resize`), as the torchvision backend resizes the `uint8` tensors
//! before converting them to float.

use autocandle_core::{Error, Result};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use crate::image_processor::decode::to_rgb8;
use crate::image_processor::resize::{resize, Rgb8};
use crate::image_processor::{DynamicImage, Resampling, MAX_IMAGE_SIDE};

/// `MAX_IMAGE_SIZE` of the Python module: after the longest-edge resize, no side is longer.
const MAX_RESIZED_SIDE: usize = 4096;

/// The most `f32` values one call may put in `pixel_values` (padding included), 1 GiB: far above
/// any real use, it keeps absurd configs or image sizes from asking for unbounded memory.
pub(super) const MAX_PIXEL_VALUES: usize = 1 << 28;

/// The most tiles (whole images included) one call may make.
pub(super) const MAX_TILES: usize = 1 << 16;

/// How images are first resized (`size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Size {
    /// `{"longest_edge": n}`: the longest edge becomes `n`, the aspect ratio is kept.
    LongestEdge(usize),
    /// `{"height": h, "width": w}`.
    Exact { height: usize, width: usize },
}

/// The settings of `preprocessor_config.json` that shape `pixel_values`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ImageConfig {
    pub do_convert_rgb: bool,
    pub do_resize: bool,
    pub size: Size,
    pub resample: Resampling,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    pub do_pad: bool,
    pub do_image_splitting: bool,
    /// `max_image_size.longest_edge`: the side of every tile.
    pub max_image_size: usize,
}

/// The keys [`ImageConfig::from_json`] reads (and `LoadOptions::config_overrides` may replace).
pub(super) const KEYS: [&str; 12] = [
    "do_convert_rgb",
    "do_resize",
    "size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_pad",
    "do_image_splitting",
    "max_image_size",
];

impl Default for ImageConfig {
    /// The class defaults of `Idefics3ImageProcessor`.
    fn default() -> Self {
        Self {
            do_convert_rgb: true,
            do_resize: true,
            size: Size::LongestEdge(4 * 364),
            resample: Resampling::Lanczos,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            do_pad: true,
            do_image_splitting: true,
            max_image_size: 364,
        }
    }
}

impl ImageConfig {
    /// Read the settings from `preprocessor_config.json`'s object; missing keys keep the class
    /// defaults, `null` counts as missing. `class` names the processor in errors.
    pub fn from_json(fields: &Map<String, Value>, class: &str) -> Result<Self> {
        let bad = |key: &str, what: &str| Error::config(class, format!("`{key}` in preprocessor_config.json {what}"));
        let get = |key: &str| fields.get(key).filter(|v| !v.is_null());
        let flag = |key: &str, default: bool| -> Result<bool> {
            match get(key) {
                None => Ok(default),
                Some(v) => v.as_bool().ok_or_else(|| bad(key, "must be true or false")),
            }
        };
        let side = |key: &str, v: &Value| -> Result<usize> {
            match v.as_u64() {
                Some(n) if n > 0 && n <= MAX_IMAGE_SIDE as u64 => Ok(n as usize),
                _ => Err(bad(key, &format!("must be a whole number of pixels from 1 to {MAX_IMAGE_SIDE}, not {v}"))),
            }
        };
        let mut c = Self::default();
        c.do_convert_rgb = flag("do_convert_rgb", c.do_convert_rgb)?;
        c.do_resize = flag("do_resize", c.do_resize)?;
        c.do_rescale = flag("do_rescale", c.do_rescale)?;
        c.do_normalize = flag("do_normalize", c.do_normalize)?;
        c.do_pad = flag("do_pad", c.do_pad)?;
        c.do_image_splitting = flag("do_image_splitting", c.do_image_splitting)?;
        if let Some(size) = get("size") {
            let longest = size.get("longest_edge").filter(|v| !v.is_null());
            let (height, width) = (size.get("height"), size.get("width"));
            c.size = match (longest, height, width) {
                (Some(l), _, _) => Size::LongestEdge(side("size.longest_edge", l)?),
                (None, Some(h), Some(w)) => {
                    Size::Exact { height: side("size.height", h)?, width: side("size.width", w)? }
                }
                _ => return Err(bad("size", &format!("must have `longest_edge` or `height` and `width`, not {size}"))),
            };
        }
        if let Some(max) = get("max_image_size") {
            let edge = max.get("longest_edge").ok_or_else(|| bad("max_image_size", "must have `longest_edge`"))?;
            c.max_image_size = side("max_image_size.longest_edge", edge)?;
        }
        if let Some(r) = get("resample") {
            c.resample = r
                .as_i64()
                .and_then(Resampling::from_pil_code)
                .ok_or_else(|| bad("resample", &format!("must be a PIL resampling code from 0 to 5, not {r}")))?;
        }
        if let Some(f) = get("rescale_factor") {
            c.rescale_factor = f
                .as_f64()
                .filter(|f| f.is_finite() && *f != 0.0)
                .ok_or_else(|| bad("rescale_factor", "must be a non-zero number"))?;
        }
        let channels = |key: &str, default: [f64; 3]| -> Result<[f64; 3]> {
            let Some(v) = get(key) else { return Ok(default) };
            if let Some(x) = v.as_f64() {
                return Ok([x; 3]);
            }
            let list: Option<Vec<f64>> = v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect());
            match list.as_deref() {
                Some(&[a, b, c]) => Ok([a, b, c]),
                _ => Err(bad(key, "must be a number or a list of 3 numbers")),
            }
        };
        c.image_mean = channels("image_mean", c.image_mean)?;
        c.image_std = channels("image_std", c.image_std)?;
        if c.do_normalize && c.image_std.contains(&0.0) {
            return Err(bad("image_std", "has a zero, which divides by zero when normalizing"));
        }
        Ok(c)
    }
}

/// `_resize_output_size_rescale_to_max_len` then `_resize_output_size_scale_below_upper_bound`:
/// the longest edge becomes `longest`, the other keeps the aspect ratio (truncated, then rounded
/// up to even), and neither exceeds 4096.
pub(super) fn longest_edge_size(height: usize, width: usize, longest: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let (mut h, mut w) = (height, width);
    if w >= h {
        w = longest;
        h = (w as f64 / aspect) as usize;
        if h % 2 != 0 {
            h += 1;
        }
    } else {
        h = longest;
        w = (h as f64 * aspect) as usize;
        if w % 2 != 0 {
            w += 1;
        }
    }
    let (h, w) = (h.max(1), w.max(1));
    let aspect = w as f64 / h as f64;
    let (mut h2, mut w2) = (h, w);
    if w >= h && w > MAX_RESIZED_SIDE {
        w2 = MAX_RESIZED_SIDE;
        h2 = (w2 as f64 / aspect) as usize;
    } else if h > w && h > MAX_RESIZED_SIDE {
        h2 = MAX_RESIZED_SIDE;
        w2 = (h2 as f64 * aspect) as usize;
    }
    (h2.max(1), w2.max(1))
}

/// `resize_for_vision_encoder`: both sides rounded up to multiples of `tile`, the shorter one
/// from the aspect ratio of the longer one's new length.
pub(super) fn vision_encoder_size(height: usize, width: usize, tile: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let up = |x: usize| x.div_ceil(tile) * tile;
    if width >= height {
        let w = up(width);
        let h = (w as f64 / aspect) as usize;
        (up(h), w)
    } else {
        let h = up(height);
        let w = (h as f64 * aspect) as usize;
        (h, up(w))
    }
}

/// One image's tiles (channel-first `f32`, `tile x tile` unless the image was not resized) and
/// how it was split (`rows`, `cols`; both 0 when it was not).
#[derive(Debug)]
pub(super) struct Tiles {
    pub frames: Vec<Frame>,
    pub rows: usize,
    pub cols: usize,
}

/// One normalized image, channel-first.
#[derive(Debug)]
pub(super) struct Frame {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// What one image will become, computed from its size alone.
struct Plan {
    /// Size after the longest-edge resize.
    resized: (usize, usize),
    /// Size of the image the tiles are cut from (the last resize).
    encoder: (usize, usize),
    rows: usize,
    cols: usize,
}

impl Plan {
    fn frames(&self) -> usize {
        if self.rows == 0 {
            1
        } else {
            self.rows * self.cols + 1
        }
    }
}

impl ImageConfig {
    fn plan(&self, height: usize, width: usize) -> Result<Plan> {
        let resized = match (self.do_resize, self.size) {
            (false, _) => (height, width),
            (true, Size::LongestEdge(l)) => longest_edge_size(height, width, l),
            (true, Size::Exact { height, width }) => (height, width),
        };
        let tile = self.max_image_size;
        let (encoder, rows, cols) = if self.do_image_splitting {
            let (h, w) = vision_encoder_size(resized.0, resized.1, tile);
            if h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
                return Err(Error::input(format!(
                    "a {height}x{width} image would be resized to {h}x{w} for the vision encoder, more than \
                     autocandle's limit of {MAX_IMAGE_SIDE} pixels per side; use a smaller `size` or \
                     `max_image_size`, or an image of a less extreme aspect ratio"
                )));
            }
            if h > tile || w > tile {
                ((h, w), h / tile, w / tile)
            } else {
                ((h, w), 0, 0)
            }
        } else {
            ((tile, tile), 0, 0)
        };
        Ok(Plan { resized, encoder, rows, cols })
    }

    /// Tile and normalize the images of each text; errors name the image (`text i, image j`).
    pub fn process(&self, images: &[Vec<DynamicImage>], image_seq_len: usize) -> Result<Vec<Vec<Tiles>>> {
        // Decode and plan everything first, so that the memory asked for is known before any
        // resize runs.
        let mut decoded = Vec::with_capacity(images.len());
        let (mut frames, mut values, mut tokens) = (0usize, 0usize, 0usize);
        for (i, row) in images.iter().enumerate() {
            let mut list = Vec::with_capacity(row.len());
            for (j, image) in row.iter().enumerate() {
                let which = || format!("text {i}, image {j}");
                let pixels =
                    to_rgb8(image, self.do_convert_rgb).map_err(|e| Error::input(format!("{}: {e}", which())))?;
                if pixels.height == 0 || pixels.width == 0 {
                    return Err(Error::input(format!(
                        "{}: the image is empty ({}x{})",
                        which(),
                        pixels.height,
                        pixels.width
                    )));
                }
                let plan = self.plan(pixels.height, pixels.width).map_err(|e| prefix(e, &which()))?;
                // Every tile, the whole image included, is `max_image_size` square.
                let tile = self.max_image_size;
                frames = frames.saturating_add(plan.frames());
                values = values.saturating_add(plan.frames().saturating_mul(3 * tile * tile));
                tokens = tokens.saturating_add(plan.frames().saturating_mul(image_seq_len));
                list.push((pixels, plan));
            }
            decoded.push(list);
        }
        if frames > MAX_TILES {
            return Err(Error::input(format!(
                "these images would be split into {frames} tiles, more than autocandle's limit of {MAX_TILES}: use \
                 fewer or smaller images, a smaller `size` or a larger `max_image_size`"
            )));
        }
        if values > MAX_PIXEL_VALUES {
            return Err(Error::input(format!(
                "these images would give {values} pixel values, more than autocandle's limit of {MAX_PIXEL_VALUES}: \
                 use fewer or smaller images, or a smaller `size` or turn off `do_image_splitting`"
            )));
        }
        if tokens > super::MAX_IMAGE_TOKENS {
            return Err(Error::input(format!(
                "these images would expand into {tokens} image tokens, more than autocandle's limit of {}: use \
                 fewer images, a smaller `size` or a smaller `image_seq_len`",
                super::MAX_IMAGE_TOKENS
            )));
        }
        Ok(decoded
            .into_iter()
            .map(|row| row.into_iter().map(|(pixels, plan)| self.tile(pixels, &plan)).collect())
            .collect())
    }

    fn tile(&self, pixels: Rgb8, plan: &Plan) -> Tiles {
        let pixels = resize_to(pixels, plan.resized, self.resample);
        let tile = self.max_image_size;
        let pixels = resize_to(pixels, plan.encoder, self.resample);
        if plan.rows == 0 {
            return Tiles { frames: vec![self.normalize(&pixels)], rows: 0, cols: 0 };
        }
        let mut frames = Vec::with_capacity(plan.frames());
        let stride = pixels.width * 3;
        for r in 0..plan.rows {
            for c in 0..plan.cols {
                let mut data = Vec::with_capacity(tile * tile * 3);
                for y in r * tile..(r + 1) * tile {
                    let start = y * stride + c * tile * 3;
                    data.extend_from_slice(&pixels.data[start..start + tile * 3]);
                }
                frames.push(self.normalize(&Rgb8 { height: tile, width: tile, data }));
            }
        }
        let global = resize_to(pixels, (tile, tile), self.resample);
        frames.push(self.normalize(&global));
        Tiles { frames, rows: plan.rows, cols: plan.cols }
    }

    /// The fused float32 `rescale_and_normalize` of the torchvision backend:
    /// `(x - mean / factor) / (std / factor)`, channel-first.
    fn normalize(&self, pixels: &Rgb8) -> Frame {
        let inv_factor = (1.0 / self.rescale_factor) as f32;
        let (mean, std): ([f32; 3], [f32; 3]) = match (self.do_rescale, self.do_normalize) {
            (true, true) => {
                (self.image_mean.map(|m| m as f32 * inv_factor), self.image_std.map(|s| s as f32 * inv_factor))
            }
            (false, true) => (self.image_mean.map(|m| m as f32), self.image_std.map(|s| s as f32)),
            _ => ([0.0; 3], [1.0; 3]),
        };
        let factor = self.rescale_factor as f32;
        let rescale_only = self.do_rescale && !self.do_normalize;
        let mut data = Vec::with_capacity(pixels.data.len());
        for channel in 0..3 {
            let (m, s) = (mean[channel], std[channel]);
            data.extend(pixels.data.iter().skip(channel).step_by(3).map(|&v| {
                let x = f32::from(v);
                if rescale_only {
                    x * factor
                } else if self.do_normalize {
                    (x - m) / s
                } else {
                    x
                }
            }));
        }
        Frame { height: pixels.height, width: pixels.width, data }
    }
}

fn resize_to(pixels: Rgb8, (height, width): (usize, usize), filter: Resampling) -> Rgb8 {
    if (pixels.height, pixels.width) == (height, width) {
        pixels
    } else {
        resize(&pixels, height, width, filter)
    }
}

fn prefix(e: Error, which: &str) -> Error {
    match e {
        Error::InvalidInput(message) => Error::input(format!("{which}: {message}")),
        other => other,
    }
}

/// `pixel_values` `[texts, most tiles, 3, height, width]` (zeros where a text has fewer tiles
/// or a tile is smaller) and, with `do_pad`, `pixel_attention_mask` `[texts, most tiles,
/// height, width]` (`i64`, 1 on real pixels). Without `do_pad` every text must have the same
/// number of equally sized tiles, as `torch.stack` demands.
pub(super) fn batch(tiles: &[Vec<Tiles>], do_pad: bool, device: &Device) -> Result<(Tensor, Option<Tensor>)> {
    let rows: Vec<Vec<&Frame>> = tiles.iter().map(|row| row.iter().flat_map(|t| t.frames.iter()).collect()).collect();
    let most = rows.iter().map(Vec::len).max().unwrap_or(0);
    let all = || rows.iter().flatten();
    let height = all().map(|f| f.height).max().unwrap_or(0);
    let width = all().map(|f| f.width).max().unwrap_or(0);
    if !do_pad {
        let ragged = rows.iter().any(|r| r.len() != most) || all().any(|f| (f.height, f.width) != (height, width));
        if ragged {
            return Err(Error::input(
                "`do_pad` is off but the texts have different numbers of image tiles (or tiles of different \
                 sizes), which cannot be stacked: give each text the same images layout or turn `do_pad` on",
            ));
        }
    }
    let total = rows.len().saturating_mul(most).saturating_mul(3 * height * width);
    if total > MAX_PIXEL_VALUES {
        return Err(Error::input(format!(
            "padding every text to {most} tiles of {height}x{width} gives {total} pixel values, more than \
             autocandle's limit of {MAX_PIXEL_VALUES}: give the texts similar numbers of images, or fewer"
        )));
    }
    let plane = height * width;
    let mut values = vec![0f32; total];
    let mut mask = vec![0i64; if do_pad { rows.len() * most * plane } else { 0 }];
    for (i, row) in rows.iter().enumerate() {
        for (j, frame) in row.iter().enumerate() {
            let slot = i * most + j;
            for c in 0..3 {
                for y in 0..frame.height {
                    let src = &frame.data[(c * frame.height + y) * frame.width..][..frame.width];
                    let dst = (slot * 3 + c) * plane + y * width;
                    values[dst..dst + frame.width].copy_from_slice(src);
                }
            }
            if do_pad {
                for y in 0..frame.height {
                    let dst = slot * plane + y * width;
                    mask[dst..dst + frame.width].fill(1);
                }
            }
        }
    }
    let values = Tensor::from_vec(values, (rows.len(), most, 3, height, width), device)?;
    let mask = if do_pad { Some(Tensor::from_vec(mask, (rows.len(), most, height, width), device)?) } else { None };
    Ok((values, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_python_helpers() {
        // 67x45 (w x h) to longest edge 40: width 40, height int(40 / 1.4889) = 26.
        assert_eq!(longest_edge_size(45, 67, 40), (26, 40));
        // Odd short side rounds up to even: 83x41 (h x w) to 40: w = int(40 * 0.494) = 19 -> 20.
        assert_eq!(longest_edge_size(83, 41, 40), (40, 20));
        // A huge longest edge is brought below 4096.
        assert_eq!(longest_edge_size(100, 200, 10_000), (2048, 4096));
        // Extreme aspect ratios keep a side of at least 1.
        assert_eq!(longest_edge_size(1, 1000, 30), (1, 30));
        assert_eq!(vision_encoder_size(26, 40, 14), (28, 42));
        assert_eq!(vision_encoder_size(40, 20, 14), (42, 28));
        assert_eq!(vision_encoder_size(14, 14, 14), (14, 14));
    }

    #[test]
    fn config_errors_name_the_key() {
        let parse = |v: Value| ImageConfig::from_json(v.as_object().expect("object"), "Idefics3Processor");
        assert!(parse(serde_json::json!({})).is_ok());
        let e = parse(serde_json::json!({"max_image_size": {"longest_edge": 0}})).expect_err("zero tile");
        assert!(e.to_string().contains("max_image_size.longest_edge"), "{e}");
        let e = parse(serde_json::json!({"max_image_size": {"longest_edge": 1_000_000}})).expect_err("huge tile");
        assert!(e.to_string().contains("from 1 to"), "{e}");
        let e = parse(serde_json::json!({"size": {"shortest_edge": 3}})).expect_err("bad size");
        assert!(e.to_string().contains("`size`"), "{e}");
        let e = parse(serde_json::json!({"resample": 9})).expect_err("bad resample");
        assert!(e.to_string().contains("resample"), "{e}");
        let e = parse(serde_json::json!({"image_std": [0.5, 0.0, 0.5]})).expect_err("zero std");
        assert!(e.to_string().contains("image_std"), "{e}");
    }

    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        let config = ImageConfig { max_image_size: 1, size: Size::LongestEdge(4096), ..ImageConfig::default() };
        let image = DynamicImage::new_rgb8(64, 64);
        let e = config.process(&[vec![image]], 1).expect_err("16M tiles");
        assert!(e.to_string().contains("limit"), "{e}");
        let config = ImageConfig { do_resize: false, max_image_size: 7, ..ImageConfig::default() };
        let image = DynamicImage::new_rgb8(8191, 2);
        let e = config.process(&[vec![image]], 1).expect_err("too wide for the encoder");
        assert!(e.to_string().contains("per side"), "{e}");
    }

    #[test]
    fn empty_images_are_refused() {
        let e = ImageConfig::default().process(&[vec![DynamicImage::new_rgb8(0, 5)]], 3).expect_err("empty");
        assert!(e.to_string().contains("text 0, image 0"), "{e}");
    }

    #[test]
    fn tiles_are_row_major_then_the_global_image() -> Result<()> {
        let config = ImageConfig {
            do_resize: false,
            do_rescale: false,
            do_normalize: false,
            max_image_size: 2,
            resample: Resampling::Nearest,
            ..ImageConfig::default()
        };
        // A 4x6 (h x w) image whose red channel is the column index and green the row.
        let image = image::RgbImage::from_fn(6, 4, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let tiles = config.process(&[vec![DynamicImage::ImageRgb8(image)]], 1)?;
        let t = &tiles[0][0];
        assert_eq!((t.rows, t.cols, t.frames.len()), (2, 3, 7));
        // Tile (row 1, col 2): red = columns 4,5, green = rows 2,3.
        assert_eq!(t.frames[5].data[..4], [4.0, 5.0, 4.0, 5.0]);
        assert_eq!(t.frames[5].data[4..8], [2.0, 2.0, 3.0, 3.0]);
        let (values, mask) = batch(&tiles, true, &Device::Cpu)?;
        assert_eq!(values.dims(), &[1, 7, 3, 2, 2]);
        assert_eq!(mask.map(|m| m.dims().to_vec()), Some(vec![1, 7, 2, 2]));
        let (values, mask) = batch(&tiles, false, &Device::Cpu)?;
        assert_eq!((values.dims(), mask.is_none()), (&[1, 7, 3, 2, 2][..], true));
        // Without padding, texts with different tile counts cannot be stacked.
        let two = config.process(&[vec![], vec![DynamicImage::new_rgb8(2, 2)]], 1)?;
        let ragged = [tiles.into_iter().next().unwrap_or_default(), two.into_iter().nth(1).unwrap_or_default()];
        let e = batch(&ragged, false, &Device::Cpu).expect_err("7 and 1 tiles");
        assert!(e.to_string().contains("do_pad"), "{e}");
        Ok(())
    }

    use crate::image_processor::image;
}
