//! Resizing of `[..., height, width]` tensors as PyTorch's `F.interpolate` (`bilinear` and
//! `bicubic`, `align_corners=False`, no antialiasing, output size given) and
//! `F.adaptive_avg_pool2d` compute them, each as two matrix products with separable weights.
//!
//! PyTorch computes these 2-D resizes as a product of one weight per axis (the bicubic
//! coefficients of a pixel are the product of its row and column coefficients), so a resize is
//! `W_h · x · W_wᵀ` with `W_h` `[out_h, in_h]` and `W_w` `[out_w, in_w]`: the same sums, in
//! another order (the results agree to float rounding).

use autocandle_core::{Error, Result};
use candle_core::{Device, Tensor, D};

/// PyTorch's `A` of the bicubic convolution (`upsample_bicubic2d`).
const CUBIC_A: f64 = -0.75;

/// The source coordinate of output index `dst` for `align_corners=False` with the scale
/// `in / out` (`area_pixel_compute_source_index`).
fn source_index(dst: usize, input: usize, output: usize) -> f64 {
    (input as f64 / output as f64) * (dst as f64 + 0.5) - 0.5
}

/// `[output, input]` weights of linear interpolation along one axis.
fn linear_weights(input: usize, output: usize) -> Vec<f32> {
    let mut w = vec![0f32; output * input];
    for o in 0..output {
        let real = source_index(o, input, output).max(0.0);
        let i0 = (real.floor() as usize).min(input - 1);
        let i1 = if i0 + 1 < input { i0 + 1 } else { i0 };
        let l1 = (real - i0 as f64) as f32;
        w[o * input + i0] += 1.0 - l1;
        w[o * input + i1] += l1;
    }
    w
}

/// `[output, input]` weights of cubic convolution along one axis (taps clamped to the border).
fn cubic_weights(input: usize, output: usize) -> Vec<f32> {
    let a = CUBIC_A;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let mut w = vec![0f32; output * input];
    for o in 0..output {
        let real = source_index(o, input, output);
        let base = real.floor();
        let t = real - base;
        let coeffs = [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)];
        for (k, c) in coeffs.into_iter().enumerate() {
            let i = (base as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
            w[o * input + i] += c as f32;
        }
    }
    w
}

/// `[output, input]` weights of adaptive average pooling along one axis.
fn pool_weights(input: usize, output: usize) -> Vec<f32> {
    let mut w = vec![0f32; output * input];
    for o in 0..output {
        let start = o * input / output;
        let end = ((o + 1) * input).div_ceil(output);
        let share = 1.0 / (end - start) as f32;
        for i in start..end {
            w[o * input + i] = share;
        }
    }
    w
}

/// Apply the per-axis weights to the last two axes of `x`.
fn separable(x: &Tensor, size: (usize, usize), weights: fn(usize, usize) -> Vec<f32>) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        return Err(Error::input(format!("resizing needs a tensor of at least 2 axes, got shape {dims:?}")));
    }
    let (in_h, in_w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let (out_h, out_w) = size;
    if in_h == 0 || in_w == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::input(format!("cannot resize {in_h}x{in_w} to {out_h}x{out_w}: a side is 0")));
    }
    let device: &Device = x.device();
    let dtype = x.dtype();
    let wh = Tensor::from_vec(weights(in_h, out_h), (out_h, in_h), device)?.to_dtype(dtype)?;
    let ww = Tensor::from_vec(weights(in_w, out_w), (out_w, in_w), device)?.to_dtype(dtype)?;
    let y = x.contiguous()?.broadcast_matmul(&ww.t()?)?;
    Ok(wh.broadcast_matmul(&y)?)
}

/// `F.interpolate(x, size, mode="bilinear", align_corners=False)` on the last two axes.
pub fn bilinear(x: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    if x.dims()[x.rank().saturating_sub(2)..] == [size.0, size.1] {
        return Ok(x.clone());
    }
    separable(x, size, linear_weights)
}

/// `F.interpolate(x, size, mode="bicubic", align_corners=False)` on the last two axes.
pub fn bicubic(x: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    separable(x, size, cubic_weights)
}

/// `F.adaptive_avg_pool2d(x, size)` on the last two axes.
pub fn adaptive_avg_pool(x: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    separable(x, size, pool_weights)
}

/// The last two axes of `x` as `(height, width)`.
pub(crate) fn spatial(x: &Tensor) -> Result<(usize, usize)> {
    Ok((x.dim(D::Minus2)?, x.dim(D::Minus1)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn weights_rows_sum_to_one() {
        for (i, o) in [(3, 5), (5, 3), (4, 4), (1, 3), (7, 2)] {
            for w in [linear_weights(i, o), cubic_weights(i, o), pool_weights(i, o)] {
                for row in w.chunks(i) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{i}->{o}: {row:?}");
                }
            }
        }
    }

    #[test]
    fn same_size_is_identity() {
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((1, 3, 4)).unwrap();
        for y in [bilinear(&x, (3, 4)).unwrap(), bicubic(&x, (3, 4)).unwrap(), adaptive_avg_pool(&x, (3, 4)).unwrap()] {
            let d = (y - &x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5);
        }
        assert!(bilinear(&x, (0, 2)).is_err());
    }
}
