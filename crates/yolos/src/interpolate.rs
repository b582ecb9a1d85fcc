//! Bicubic resizing of position-embedding grids, as `torch.nn.functional.interpolate(...,
//! mode="bicubic", align_corners=False)` with an output size (no antialiasing).
//!
//! The resize is separable: `out = Wy · x · Wxᵀ` with one weight matrix per axis, whose row
//! `i` holds the four cubic-convolution weights (Keys, `A = -0.75`) of the source pixels around
//! `(i + 0.5) · in / out - 0.5`, indices clamped to the border as PyTorch does.

use autocandle_core::Result;
use candle_core::{Device, Tensor};

const A: f64 = -0.75;

/// `|x| <= 1`.
fn cubic1(x: f64) -> f64 {
    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
}

/// `1 < |x| < 2`.
fn cubic2(x: f64) -> f64 {
    ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
}

/// The `[out, in]` bicubic interpolation matrix of one axis.
fn weights(input: usize, output: usize, device: &Device) -> Result<Tensor> {
    let mut w = vec![0f32; output * input];
    let scale = input as f64 / output as f64;
    let last = input as i64 - 1;
    for i in 0..output {
        let real = scale * (i as f64 + 0.5) - 0.5;
        let floor = real.floor();
        let t = real - floor;
        let coefficients = [cubic2(t + 1.0), cubic1(t), cubic1(1.0 - t), cubic2(2.0 - t)];
        for (k, c) in coefficients.into_iter().enumerate() {
            let j = (floor as i64 - 1 + k as i64).clamp(0, last) as usize;
            w[i * input + j] += c as f32;
        }
    }
    Ok(Tensor::from_vec(w, (output, input), device)?)
}

/// Resize `grid` `[n, channels, h, w]` to `[n, channels, out_h, out_w]`.
pub(crate) fn bicubic(grid: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (n, c, h, w) = grid.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(grid.clone());
    }
    let dtype = grid.dtype();
    let device = grid.device();
    let wy = weights(h, out_h, device)?.to_dtype(dtype)?;
    let wx = weights(w, out_w, device)?.to_dtype(dtype)?;
    // Rows: [out_h, h] x [n c, h, w] -> [n c, out_h, w]; columns: [n c, out_h, w] x [w, out_w].
    let x = grid.reshape((n * c, h, w))?;
    let x = wy.unsqueeze(0)?.broadcast_as((n * c, out_h, h))?.contiguous()?.matmul(&x.contiguous()?)?;
    let x = x.matmul(&wx.t()?.unsqueeze(0)?.broadcast_as((n * c, w, out_w))?.contiguous()?)?;
    Ok(x.reshape((n, c, out_h, out_w))?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rows_sum_to_one_and_same_size_is_identity() {
        let w = weights(3, 7, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        for row in w {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let id = weights(5, 5, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in id.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn upsamples_like_torch() {
        // torch.nn.functional.interpolate(torch.arange(4.).view(1, 1, 2, 2), size=(3, 3),
        // mode="bicubic", align_corners=False)
        let x = Tensor::arange(0f32, 4., &Device::Cpu).unwrap().reshape((1, 1, 2, 2)).unwrap();
        let y = bicubic(&x, 3, 3).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = [-0.2604, 0.3264, 0.9132, 0.9132, 1.5, 2.0868, 2.0868, 2.6736, 3.2604];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{y:?}");
        }
    }
}
