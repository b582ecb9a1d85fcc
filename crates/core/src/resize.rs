//! Resampling of small grids, as `torch.nn.functional.interpolate` (bicubic, bilinear) and
//! `adaptive_avg_pool2d` compute them: what vision transformers use to fit their learned
//! position embeddings to another image size (`interpolate_pos_encoding` of ViT, CLIP, SigLIP,
//! DINOv2, BEiT, Swin, YOLOS) and what segmentation / depth heads use to resize feature maps.
//!
//! A resize along one axis is a matrix `[output, input]` of weights ([`resize_weights`]); a 2-D
//! resize is two matrix products, of a `[height, width, channels]` grid in `f32`
//! ([`resize_grid`]) or of the last two axes of any tensor in its own dtype ([`resize_2d`]), so
//! it runs on the tensor's own device.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// The resampling kernel of `torch.nn.functional.interpolate` with `align_corners=False`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// `mode="bicubic"`: Keys' cubic convolution with `A = -0.75` over the 4 nearest input
    /// samples, indices past the edge clamped to it (`upsample_bicubic2d`).
    Bicubic,
    /// `mode="bicubic", antialias=True` (`_upsample_bicubic2d_aa`, PIL's filter): the cubic with
    /// `A = -0.5`, stretched by the downscaling factor when shrinking, taps past the edge left
    /// out and the weights normalised to sum to 1.
    BicubicAntialias,
    /// `mode="bilinear"` with `align_corners` (`upsample_bilinear2d`), no antialiasing.
    Bilinear {
        /// `align_corners=True`: the corner samples of input and output coincide.
        align_corners: bool,
    },
    /// `adaptive_avg_pool2d`: output sample `o` is the mean of inputs
    /// `floor(o·in/out) .. ceil((o+1)·in/out)`.
    AdaptiveAvgPool,
}

/// Keys' cubic convolution for `|x| <= 1`.
fn cubic1(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

/// Keys' cubic convolution for `1 < |x| < 2`.
fn cubic2(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// The weights `[output, input]` (row-major) of a resize from `input` to `output` samples along
/// one axis: `out[o] = Σ_i w[o, i] · in[i]`. The arithmetic is torch's, in `f32`
/// (`area_pixel_compute_source_index` / `_compute_indices_min_size_weights_aa`).
pub fn resize_weights(input: usize, output: usize, mode: Resample) -> Result<Vec<f32>> {
    if input == 0 || output == 0 {
        return Err(Error::input(format!("cannot resize {input} samples to {output}: both must be at least 1")));
    }
    let mut weights = vec![0f32; output * input];
    // `compute_scales_value`: input / output when the output size is given.
    let scale = input as f32 / output as f32;
    let last = input as i64 - 1;
    for o in 0..output {
        let row = &mut weights[o * input..(o + 1) * input];
        match mode {
            Resample::Bicubic => {
                const A: f32 = -0.75;
                let real = scale * (o as f32 + 0.5) - 0.5;
                // `guard_index_and_lambda`
                let index = (real.floor() as i64).min(last);
                let t = (real - index as f32).clamp(0.0, 1.0);
                let coeffs = [cubic2(t + 1.0, A), cubic1(t, A), cubic1(1.0 - t, A), cubic2(2.0 - t, A)];
                for (j, c) in coeffs.into_iter().enumerate() {
                    let at = (index + j as i64 - 1).clamp(0, last) as usize;
                    row[at] += c;
                }
            }
            Resample::BicubicAntialias => {
                const A: f32 = -0.5;
                let filter = |x: f32| {
                    let x = x.abs();
                    if x < 1.0 {
                        cubic1(x, A)
                    } else if x < 2.0 {
                        cubic2(x, A)
                    } else {
                        0.0
                    }
                };
                let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
                let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
                let max_taps = support.ceil() as i64 * 2 + 1;
                let center = scale * (o as f32 + 0.5);
                // C++ casts to int64 truncate toward zero.
                let xmin = ((center - support + 0.5) as i64).max(0);
                let xsize = (((center + support + 0.5) as i64).min(input as i64) - xmin).clamp(0, max_taps);
                let taps: Vec<f32> =
                    (0..xsize).map(|j| filter(((j + xmin) as f32 - center + 0.5) * invscale)).collect();
                let total: f32 = taps.iter().sum();
                for (j, w) in taps.into_iter().enumerate() {
                    row[xmin as usize + j] = if total != 0.0 { w / total } else { w };
                }
            }
            Resample::Bilinear { align_corners } => {
                // In `f64`, the lambda cast to `f32` (what the bilinear layers of the vision
                // heads were checked against).
                let scale = if align_corners {
                    if output > 1 {
                        (input as f64 - 1.0) / (output as f64 - 1.0)
                    } else {
                        0.0
                    }
                } else {
                    input as f64 / output as f64
                };
                let src = if align_corners { o as f64 * scale } else { ((o as f64 + 0.5) * scale - 0.5).max(0.0) };
                let i0 = (src.floor() as usize).min(input - 1);
                let i1 = (i0 + 1).min(input - 1);
                let lambda = (src - i0 as f64) as f32;
                row[i0] += 1.0 - lambda;
                row[i1] += lambda;
            }
            Resample::AdaptiveAvgPool => {
                let start = o * input / output;
                let end = ((o + 1) * input).div_ceil(output);
                let share = 1.0 / (end - start) as f32;
                row[start..end].iter_mut().for_each(|w| *w = share);
            }
        }
    }
    Ok(weights)
}

/// Resize a grid `[height, width, channels]` to `[new_height, new_width, channels]` in `f32`
/// (what `interpolate` on the `[1, channels, height, width]` permutation gives), on the grid's
/// device. The result is `f32`; callers cast it back to their dtype, as `transformers` does.
pub fn resize_grid(grid: &Tensor, (new_height, new_width): (usize, usize), mode: Resample) -> Result<Tensor> {
    let (height, width, channels) = grid.dims3()?;
    let device = grid.device();
    let matrix = |input: usize, output: usize, device: &Device| -> Result<Tensor> {
        Ok(Tensor::from_vec(resize_weights(input, output, mode)?, (output, input), device)?)
    };
    let grid = grid.to_dtype(DType::F32)?;
    // Rows: [new_h, h] x [h, w * c].
    let rows = matrix(height, new_height, device)?
        .matmul(&grid.reshape((height, width * channels))?)?
        .reshape((new_height, width, channels))?;
    // Columns: [1, new_w, w] x [new_h, w, c] -> [new_h, new_w, c].
    let cols = matrix(width, new_width, device)?.unsqueeze(0)?.broadcast_as((new_height, new_width, width))?;
    Ok(cols.contiguous()?.matmul(&rows.contiguous()?)?)
}

/// Resize the last two axes `[..., height, width]` of `x` to `(new_height, new_width)` with
/// `mode` (`F.interpolate` / `F.adaptive_avg_pool2d` on `[n, c, h, w]`), in `x`'s dtype: the
/// weights are cast to it and applied as `W_h · x · W_wᵀ` (columns first). Same-size resizes
/// return `x` unchanged, except adaptive pooling (also the identity, computed).
pub fn resize_2d(x: &Tensor, (new_height, new_width): (usize, usize), mode: Resample) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        return Err(Error::input(format!("resizing needs a tensor of at least 2 axes, got shape {dims:?}")));
    }
    let (height, width) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if height == 0 || width == 0 || new_height == 0 || new_width == 0 {
        return Err(Error::input(format!(
            "cannot resize a {height}x{width} grid to {new_height}x{new_width}: every side must be at least 1"
        )));
    }
    if (height, width) == (new_height, new_width) && mode != Resample::AdaptiveAvgPool {
        return Ok(x.clone());
    }
    let (device, dtype) = (x.device(), x.dtype());
    let rows =
        Tensor::from_vec(resize_weights(height, new_height, mode)?, (new_height, height), device)?.to_dtype(dtype)?;
    let cols =
        Tensor::from_vec(resize_weights(width, new_width, mode)?, (new_width, width), device)?.to_dtype(dtype)?;
    let cols = cols.t()?.contiguous()?;
    let lead: usize = dims[..dims.len() - 2].iter().product();
    // [lead h, w] x [w, W] -> [lead, h, W]; then [H, h] x [lead, h, W] -> [lead, H, W].
    let y = x.contiguous()?.reshape((lead * height, width))?.matmul(&cols)?.reshape((lead, height, new_width))?;
    let mut shape = dims.to_vec();
    let rank = shape.len();
    (shape[rank - 2], shape[rank - 1]) = (new_height, new_width);
    Ok(rows.broadcast_matmul(&y)?.reshape(shape)?)
}

/// `interpolate_pos_encoding` of the ViT family in `transformers` (ViT, DeiT, CLIP, SigLIP,
/// DINOv2): `position_embeddings` `[1, prefix + positions, hidden]` (`prefix` leading tokens
/// such as `[CLS]` kept as they are) for a patch grid `new_grid`. Unchanged when the grid has as
/// many patches as there are positions and the image is square (`square_image`); otherwise the
/// positions, taken as a square grid of `sqrt(positions)` a side, are resized with `resample` in
/// `f32` and cast back to their dtype.
pub fn interpolate_pos_encoding(
    position_embeddings: &Tensor,
    prefix: usize,
    (new_h, new_w): (usize, usize),
    square_image: bool,
    resample: Resample,
) -> Result<Tensor> {
    let (_, total, dim) = position_embeddings.dims3()?;
    let positions = total - prefix;
    if new_h * new_w == positions && square_image {
        return Ok(position_embeddings.clone());
    }
    let side = (positions as f64).sqrt() as usize;
    if side * side != positions {
        return Err(Error::Unsupported(format!(
            "interpolating the position embeddings needs a square grid of them, but there are {positions} \
             (`image_size` is not square): give images of the config's `image_size`"
        )));
    }
    let dtype = position_embeddings.dtype();
    let grid = position_embeddings.narrow(1, prefix, positions)?.reshape((side, side, dim))?;
    let resized = resize_grid(&grid, (new_h, new_w), resample)?.to_dtype(dtype)?.reshape((1, new_h * new_w, dim))?;
    if prefix == 0 {
        return Ok(resized);
    }
    Ok(Tensor::cat(&[&position_embeddings.narrow(1, 0, prefix)?, &resized], 1)?)
}

#[cfg(test)]
mod tests {
    // Tests may panic on failure.
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 2e-6, "element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}");
        }
    }

    // Expected values: `F.interpolate(one-hot columns, size=(o, 3), mode="bicubic",
    // align_corners=False, antialias=...)` with torch 2.15 on the CPU.
    #[test]
    fn bicubic_weights_match_torch() {
        #[rustfmt::skip]
        let cases: [(usize, usize, &[f32]); 5] = [
            (4, 7, &[1.0992169, -0.0992165, 0.0, 0.0, 0.6592568, 0.4022413, -0.0614982, 0.0, 0.0572159, 0.9889759,
                -0.0461919, 0.0, -0.09375, 0.5937499, 0.5937501, -0.09375, 0.0, -0.0461919, 0.9889759, 0.0572162, 0.0,
                -0.0614977, 0.4022411, 0.6592565, 0.0, 0.0, -0.0992165, 1.0992165]),
            (5, 3, &[0.6851851, 0.3703704, -0.0555553, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.0555558,
                0.3703706, 0.685185]),
            (6, 2, &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            (3, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            (1, 4, &[1.0, 1.0, 1.0, 1.0]),
        ];
        for (i, o, want) in cases {
            close(&resize_weights(i, o, Resample::Bicubic).unwrap(), want);
        }
    }

    #[test]
    fn antialiased_bicubic_weights_match_torch() {
        #[rustfmt::skip]
        let cases: [(usize, usize, &[f32]); 5] = [
            (4, 7, &[1.0793271, -0.0793271, 0.0, 0.0, 0.6979466, 0.3402343, -0.0381809, 0.0, 0.0452644, 0.9854572,
                -0.0307216, 0.0, -0.0625, 0.5625, 0.5625, -0.0625, 0.0, -0.0307218, 0.9854571, 0.0452647, 0.0,
                -0.0381808, 0.3402339, 0.6979468, 0.0, 0.0, -0.079327, 1.079327]),
            (5, 3, &[0.5846153, 0.4461538, 0.0, -0.0307692, 0.0, -0.0372093, 0.2465116, 0.5813953, 0.2465116,
                -0.0372093, 0.0, -0.0307691, 0.0, 0.4461538, 0.5846152]),
            (6, 2, &[0.2763158, 0.3552632, 0.2763158, 0.1184211, 0.0, -0.0263158, -0.0263158, 0.0, 0.1184211,
                0.2763158, 0.3552632, 0.2763158]),
            (3, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            (1, 4, &[1.0, 1.0, 1.0, 1.0]),
        ];
        for (i, o, want) in cases {
            close(&resize_weights(i, o, Resample::BicubicAntialias).unwrap(), want);
        }
    }

    /// A 3x3 grid of 2 channels, `sin(0.7 k)` for k = 0..18 in `[h, w, c]` order, resized in 2-D.
    #[test]
    fn grid_resize_matches_torch() {
        let values: Vec<f32> = (0..18).map(|k| (k as f32 * 0.7).sin()).collect();
        let grid = Tensor::from_vec(values, (3, 3, 2), &Device::Cpu).unwrap();
        #[rustfmt::skip]
        let cases: [(Resample, (usize, usize), &[f32]); 3] = [
            (Resample::Bicubic, (2, 5), &[-0.3414807, 0.184505, 0.0890304, 0.4634225, 0.6098534, 0.7029658,
                0.5839824, 0.3123454, 0.4516009, -0.0575718, 0.5208245, 0.0316716, 0.0855911, -0.3301796, -0.4833079,
                -0.7063365, -0.6189526, -0.4493081, -0.6080943, -0.1592132]),
            (Resample::Bicubic, (5, 4), &[0.0078038, 0.7900359, 0.8516782, 1.0489639, 0.9553159, 0.4472297,
                0.2440291, -0.5815181, -0.5199892, -0.1294508, 0.0240408, 0.3889216, 0.5131502, 0.5605622, 0.5948552,
                0.2617761, -0.8888243, -1.0541773, -0.8593942, -0.4499897, -0.1406415, 0.4766254, 0.749454, 1.0578895,
                0.1728877, -0.2822242, -0.3596499, -0.5646508, -0.5680737, -0.3744318, -0.3021802, 0.1513486,
                1.1180277, 0.5452402, 0.2368748, -0.4789836, -0.7771725, -1.0509485, -1.1933262, -0.7584597]),
            (Resample::BicubicAntialias, (2, 5), &[-0.4333712, -0.0210065, -0.1041583, 0.2451403, 0.4091033,
                0.6030144, 0.5118409, 0.35578, 0.5211838, 0.1504413, 0.2714213, -0.1715521, -0.0496479, -0.3680905,
                -0.5240099, -0.599954, -0.4725423, -0.2297799, -0.3838979, 0.0427744]),
        ];
        for (mode, size, want) in cases {
            let got = resize_grid(&grid, size, mode).unwrap();
            assert_eq!(got.dims(), [size.0, size.1, 2]);
            close(&got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        }
    }

    #[test]
    fn bilinear_and_pooling_match_torch() {
        // F.interpolate(torch.arange(6.).reshape(1, 1, 2, 3), size=(3, 4), mode="bilinear")
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((1, 1, 2, 3)).unwrap();
        let y = resize_2d(&x, (3, 4), Resample::Bilinear { align_corners: false }).unwrap();
        close(
            &y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &[0.0, 0.625, 1.375, 2.0, 1.5, 2.125, 2.875, 3.5, 3.0, 3.625, 4.375, 5.0],
        );
        // align_corners=True, size=(3, 5)
        let y = resize_2d(&x, (3, 5), Resample::Bilinear { align_corners: true }).unwrap();
        close(
            &y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &[0.0, 0.5, 1.0, 1.5, 2.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.0, 3.5, 4.0, 4.5, 5.0],
        );
        // F.adaptive_avg_pool2d(torch.arange(6.).reshape(1, 1, 2, 3), (1, 2))
        let y = resize_2d(&x, (1, 2), Resample::AdaptiveAvgPool).unwrap();
        close(&y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), &[2.0, 3.0]);
        for mode in [Resample::Bilinear { align_corners: false }, Resample::Bicubic, Resample::AdaptiveAvgPool] {
            for (i, o) in [(3, 5), (5, 3), (4, 4), (1, 3), (7, 2)] {
                for row in resize_weights(i, o, mode).unwrap().chunks(i) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{mode:?} {i}->{o}: {row:?}");
                }
            }
        }
        assert!(resize_2d(&x, (0, 2), Resample::Bicubic).is_err());
    }

    #[test]
    fn empty_sizes_are_errors() {
        assert!(resize_weights(0, 3, Resample::Bicubic).is_err());
        assert!(resize_weights(3, 0, Resample::BicubicAntialias).is_err());
    }
}
