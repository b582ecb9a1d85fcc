//! Resizing and center cropping of 8-bit RGB images, computed as `transformers`' default
//! (torchvision) image processors compute them on the CPU.
//!
//! torchvision resizes `uint8` images with torch's antialiased separable convolution
//! (`_upsample_{bilinear,bicubic,lanczos}2d_aa`, after Pillow's `Resample.c`): per output pixel a
//! window of input pixels weighted by the filter stretched by the downscaling factor, the weights
//! normalised and rounded to 16-bit integers with a precision chosen from the largest weight,
//! one horizontal pass into an 8-bit buffer, then one vertical pass. This module does the same
//! arithmetic, so its output equals torchvision's bit for bit. Nearest is torchvision's
//! `NEAREST_EXACT` (what `transformers` maps PIL's `NEAREST` to). Box and Hamming, which torch
//! lacks, use Pillow's filter functions in the same machinery.

use super::config::Resampling;

/// An 8-bit RGB image, rows of `width` pixels of 3 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rgb8 {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

const CHANNELS: usize = 3;

/// Resize `image` to `height` x `width` with `filter`; both sizes must be non-zero.
pub(crate) fn resize(image: &Rgb8, height: usize, width: usize, filter: Resampling) -> Rgb8 {
    if (height, width) == (image.height, image.width) {
        return image.clone();
    }
    if filter == Resampling::Nearest {
        return nearest(image, height, width);
    }
    let mut out = image.clone();
    if width != image.width {
        out = horizontal(&out, &Weights::new(image.width, width, filter));
    }
    if height != image.height {
        out = vertical(&out, &Weights::new(image.height, height, filter));
    }
    out
}

/// torch's `nearest_neighbor_exact_compute_source_index`: `floor((i + 0.5) * scale)` with a
/// `float` scale, clamped to the last input index.
fn nearest_index(input: usize, output: usize) -> Vec<usize> {
    let scale = input as f32 / output as f32;
    (0..output).map(|i| (((i as f64 + 0.5) * scale as f64) as f32).floor().min((input - 1) as f32) as usize).collect()
}

fn nearest(image: &Rgb8, height: usize, width: usize) -> Rgb8 {
    let (rows, cols) = (nearest_index(image.height, height), nearest_index(image.width, width));
    let mut data = Vec::with_capacity(height * width * CHANNELS);
    for &y in &rows {
        let row = &image.data[y * image.width * CHANNELS..(y + 1) * image.width * CHANNELS];
        for &x in &cols {
            data.extend_from_slice(&row[x * CHANNELS..(x + 1) * CHANNELS]);
        }
    }
    Rgb8 { height, width, data }
}

/// The filter function and its support (half-width) at scale 1.
fn filter_fn(filter: Resampling) -> (fn(f64) -> f64, f64) {
    match filter {
        Resampling::Bilinear => (triangle, 1.0),
        Resampling::Bicubic => (keys_cubic, 2.0),
        Resampling::Lanczos => (lanczos3, 3.0),
        Resampling::Box => (box_filter, 0.5),
        Resampling::Hamming => (hamming, 1.0),
        // Never used: nearest does not convolve.
        Resampling::Nearest => (box_filter, 0.5),
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Keys' cubic with a = -0.5, written as torch writes it (`cubic_convolution1/2`).
fn keys_cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos3(x: f64) -> f64 {
    let x = x.abs();
    if x < 3.0 {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Pillow's box filter: 1 on (-0.5, 0.5].
fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 {
        1.0
    } else {
        0.0
    }
}

/// Pillow's Hamming-windowed sinc.
fn hamming(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        1.0
    } else if x >= 1.0 {
        0.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x * (0.54 + 0.46 * x.cos())
    }
}

/// The integer weights of one resampling pass along one axis.
#[derive(Debug)]
struct Weights {
    /// Per output index: the first input index and the weights from there on.
    windows: Vec<(usize, Vec<i32>)>,
    /// Fixed-point precision of the weights (bits).
    precision: u32,
}

impl Weights {
    /// torch's `_compute_index_ranges_int16_weights` with `antialias=True`, `align_corners=False`.
    fn new(input: usize, output: usize, filter: Resampling) -> Self {
        let (f, support) = filter_fn(filter);
        let scale = input as f64 / output as f64;
        let (support, inv_scale) = if scale >= 1.0 { (support * scale, 1.0 / scale) } else { (support, 1.0) };
        let max_size = support.ceil() as usize * 2 + 1;
        let mut windows = Vec::with_capacity(output);
        let mut max_weight = 0.0f64;
        for i in 0..output {
            let center = scale * (i as f64 + 0.5);
            // C++ casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xsize = ((center + support + 0.5) as i64).min(input as i64) - xmin;
            let xsize = xsize.clamp(0, max_size as i64) as usize;
            let xmin = xmin as usize;
            let mut w: Vec<f64> = (0..xsize).map(|j| f(((j + xmin) as f64 - center + 0.5) * inv_scale)).collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                for v in &mut w {
                    *v /= total;
                    max_weight = max_weight.max(*v);
                }
            }
            windows.push((xmin, w));
        }
        let mut precision = 0u32;
        while precision < 22 {
            if (0.5 + max_weight * f64::from(1u32 << (precision + 1))) as i64 >= 1 << 15 {
                break;
            }
            precision += 1;
        }
        let unit = f64::from(1u32 << precision);
        let windows = windows
            .into_iter()
            .map(|(xmin, w)| {
                let w = w.iter().map(|v| v * unit).map(|v| if v < 0.0 { (v - 0.5) as i32 } else { (v + 0.5) as i32 });
                (xmin, w.collect())
            })
            .collect();
        Self { windows, precision }
    }

    /// The rounding offset added before the final shift.
    fn bias(&self) -> i32 {
        if self.precision == 0 {
            0
        } else {
            1 << (self.precision - 1)
        }
    }

    fn to_u8(&self, sum: i32) -> u8 {
        (sum >> self.precision).clamp(0, 255) as u8
    }
}

fn horizontal(image: &Rgb8, weights: &Weights) -> Rgb8 {
    let width = weights.windows.len();
    let mut data = Vec::with_capacity(image.height * width * CHANNELS);
    for row in image.data.chunks_exact(image.width * CHANNELS) {
        for (xmin, w) in &weights.windows {
            let mut sums = [weights.bias(); CHANNELS];
            for (j, wj) in w.iter().enumerate() {
                let px = &row[(xmin + j) * CHANNELS..(xmin + j + 1) * CHANNELS];
                for (s, &v) in sums.iter_mut().zip(px) {
                    *s += i32::from(v) * wj;
                }
            }
            data.extend(sums.iter().map(|&s| weights.to_u8(s)));
        }
    }
    Rgb8 { height: image.height, width, data }
}

fn vertical(image: &Rgb8, weights: &Weights) -> Rgb8 {
    let stride = image.width * CHANNELS;
    let height = weights.windows.len();
    let mut data = Vec::with_capacity(height * stride);
    let mut sums = vec![0i32; stride];
    for (ymin, w) in &weights.windows {
        sums.fill(weights.bias());
        for (j, wj) in w.iter().enumerate() {
            let row = &image.data[(ymin + j) * stride..(ymin + j + 1) * stride];
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += i32::from(v) * wj;
            }
        }
        data.extend(sums.iter().map(|&s| weights.to_u8(s)));
    }
    Rgb8 { height, width: image.width, data }
}

/// torchvision's `center_crop`: where the crop is larger than the image, pad with zeros
/// (left/top get the smaller half), then cut out the center (top/left rounded down).
pub(crate) fn center_crop(image: &Rgb8, height: usize, width: usize) -> Rgb8 {
    let pad_top = height.saturating_sub(image.height) / 2;
    let pad_left = width.saturating_sub(image.width) / 2;
    let padded_h = image.height.max(height);
    let padded_w = image.width.max(width);
    let top = (padded_h - height) / 2;
    let left = (padded_w - width) / 2;
    let mut data = vec![0u8; height * width * CHANNELS];
    for y in 0..height {
        // Row y of the crop is row (y + top) of the padded image, row (y + top - pad_top) of the image.
        let Some(src_y) = (y + top).checked_sub(pad_top).filter(|&r| r < image.height) else { continue };
        for x in 0..width {
            let Some(src_x) = (x + left).checked_sub(pad_left).filter(|&c| c < image.width) else { continue };
            let src = (src_y * image.width + src_x) * CHANNELS;
            let dst = (y * width + x) * CHANNELS;
            data[dst..dst + CHANNELS].copy_from_slice(&image.data[src..src + CHANNELS]);
        }
    }
    Rgb8 { height, width, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(height: usize, width: usize) -> Rgb8 {
        let data = (0..height * width * CHANNELS).map(|i| (i * 37 % 251) as u8).collect();
        Rgb8 { height, width, data }
    }

    #[test]
    fn weights_are_normalised() {
        for filter in
            [Resampling::Bilinear, Resampling::Bicubic, Resampling::Lanczos, Resampling::Box, Resampling::Hamming]
        {
            for (input, output) in [(37, 16), (16, 37), (5, 5), (100, 7), (1, 4)] {
                let w = Weights::new(input, output, filter);
                for (xmin, window) in &w.windows {
                    let sum: i32 = window.iter().sum();
                    assert!((sum - (1 << w.precision)).abs() <= window.len() as i32, "{filter:?} {input}->{output}");
                    assert!(xmin + window.len() <= input);
                }
            }
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        let flat = Rgb8 { height: 9, width: 13, data: vec![77; 9 * 13 * 3] };
        for filter in [Resampling::Nearest, Resampling::Bilinear, Resampling::Bicubic, Resampling::Lanczos] {
            for (h, w) in [(4, 5), (20, 31), (9, 2)] {
                let out = resize(&flat, h, w, filter);
                assert_eq!((out.height, out.width), (h, w));
                assert!(out.data.iter().all(|&v| v == 77), "{filter:?} {h}x{w}");
            }
        }
    }

    #[test]
    fn nearest_exact_indices() {
        // As torchvision NEAREST_EXACT: for 24 -> 30, (2 + 0.5) * 0.8 = 2 exactly, so outputs 2 and 3 both read 2.
        assert_eq!(nearest_index(24, 30)[..6], [0, 1, 2, 2, 3, 4]);
        assert_eq!(nearest_index(4, 2), [1, 3]);
        assert_eq!(nearest_index(3, 1), [1]);
    }

    #[test]
    fn crop_and_pad() {
        let img = image(4, 5);
        let same = center_crop(&img, 4, 5);
        assert_eq!(same, img);
        let inner = center_crop(&img, 2, 3);
        // top = (4 - 2) / 2 = 1, left = (5 - 3) / 2 = 1.
        assert_eq!(&inner.data[..3], &img.data[(5 + 1) * 3..(5 + 1) * 3 + 3]);
        let padded = center_crop(&img, 7, 5);
        // pad top (7 - 4) / 2 = 1, bottom 2.
        assert!(padded.data[..5 * 3].iter().all(|&v| v == 0));
        assert_eq!(&padded.data[5 * 3..10 * 3], &img.data[..5 * 3]);
        assert!(padded.data[5 * 5 * 3..].iter().all(|&v| v == 0));
    }
}
