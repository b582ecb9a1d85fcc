//! Depthwise 2D convolution on channels-last activations (ConvNeXT's 7x7 `dwconv`):
//! `out[b, y, x, c] = bias[c] + sum_{i, j} w[i, j, c] * in[b, y + i - p, x + j - p, c]`, zero
//! padding `p`, stride 1.
//!
//! candle's grouped `conv2d` runs one convolution per group, i.e. per channel, each with its
//! own im2col copy; here every output row is one pass over at most `kh` input rows, with the
//! channel axis innermost so that the products vectorise, the rows split over rayon's pool.
//! Safe code only; the fallback (other dtypes, devices or layouts) is the same sum as `kh * kw`
//! shifted multiply-adds of whole tensors, so the result never depends on where it runs.

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x` `[B, H, W, C]`, `weight` `[kh, kw, C]`, `bias` `[C]` -> `[B, H', W', C]` with
/// `H' = H + 2 padding - kh + 1` (likewise `W'`), the depthwise convolution with zero padding
/// and stride 1.
pub fn depthwise_conv2d_nhwc(x: &Tensor, weight: &Tensor, bias: &Tensor, padding: usize) -> Result<Tensor> {
    let (_, h, w, c) = x.dims4()?;
    let (kh, kw, wc) = weight.dims3()?;
    if wc != c || bias.dims1()? != c {
        candle_core::bail!(
            "depthwise convolution: {c} channels in the input, weight {:?}, bias {:?}",
            weight.dims(),
            bias.dims()
        );
    }
    if h + 2 * padding < kh || w + 2 * padding < kw {
        candle_core::bail!(
            "depthwise convolution: input {h}x{w} with padding {padding} is smaller than the {kh}x{kw} kernel"
        );
    }
    let fast = matches!(x.device(), Device::Cpu)
        && [x, weight, bias].iter().all(|t| t.dtype() == DType::F32 && t.is_contiguous());
    if fast {
        return x.apply_op3_no_bwd(weight, bias, &DepthwiseConv { padding });
    }
    // Elsewhere: `kh * kw` shifted multiply-adds over the padded input (candle's grouped
    // convolution would run one convolution per channel).
    let b = x.dim(0)?;
    let (oh, ow) = (h + 2 * padding + 1 - kh, w + 2 * padding + 1 - kw);
    let x = x.pad_with_zeros(1, padding, padding)?.pad_with_zeros(2, padding, padding)?;
    let mut y = bias.reshape((1, 1, 1, c))?.broadcast_as((b, oh, ow, c))?.contiguous()?;
    for i in 0..kh {
        for j in 0..kw {
            let tap = weight.narrow(0, i, 1)?.narrow(1, j, 1)?.reshape((1, 1, 1, c))?;
            y = (y + x.narrow(1, i, oh)?.narrow(2, j, ow)?.broadcast_mul(&tap)?)?;
        }
    }
    Ok(y)
}

struct DepthwiseConv {
    padding: usize,
}

impl CustomOp3 for DepthwiseConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-nhwc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // Contiguous f32 (checked by the caller), from each layout's offset.
        let (x, w, bias) = (s1.as_slice::<f32>()?, s2.as_slice::<f32>()?, s3.as_slice::<f32>()?);
        let x = &x[l1.start_offset()..l1.start_offset() + l1.shape().elem_count()];
        let w = &w[l2.start_offset()..l2.start_offset() + l2.shape().elem_count()];
        let bias = &bias[l3.start_offset()..l3.start_offset() + l3.shape().elem_count()];
        let (b, h, wd, c) = l1.shape().dims4()?;
        let (kh, kw, _) = l2.shape().dims3()?;
        let p = self.padding;
        let (oh, ow) = (h + 2 * p + 1 - kh, wd + 2 * p + 1 - kw);
        let mut out = vec![0f32; b * oh * ow * c];
        let row_len = ow * c;
        let compute_row = |(index, row): (usize, &mut [f32])| {
            let (batch, y) = (index / oh, index % oh);
            for px in row.chunks_exact_mut(c) {
                px.copy_from_slice(bias);
            }
            let image = &x[batch * h * wd * c..(batch + 1) * h * wd * c];
            for i in 0..kh {
                // Input row y + i - p, if inside the image.
                let Some(iy) = (y + i).checked_sub(p).filter(|&iy| iy < h) else { continue };
                let in_row = &image[iy * wd * c..(iy + 1) * wd * c];
                for j in 0..kw {
                    let wk = &w[(i * kw + j) * c..(i * kw + j + 1) * c];
                    // Output columns ox with 0 <= ox + j - p < wd.
                    let ox_start = p.saturating_sub(j);
                    let ox_end = (wd + p).saturating_sub(j).min(ow);
                    if ox_start >= ox_end {
                        continue;
                    }
                    let ix_start = ox_start + j - p;
                    let outs = &mut row[ox_start * c..ox_end * c];
                    let ins = &in_row[ix_start * c..(ix_start + ox_end - ox_start) * c];
                    for (o, v) in outs.chunks_exact_mut(c).zip(ins.chunks_exact(c)) {
                        for ((o, &v), &k) in o.iter_mut().zip(v).zip(wk) {
                            *o += v * k;
                        }
                    }
                }
            }
        };
        if out.len() >= super::PARALLEL_MIN {
            out.par_chunks_mut(row_len).enumerate().for_each(compute_row);
        } else {
            out.chunks_mut(row_len).enumerate().for_each(compute_row);
        }
        Ok((CpuStorage::F32(out), Shape::from((b, oh, ow, c))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn grouped_reference(x: &Tensor, weight: &Tensor, bias: &Tensor, padding: usize) -> Tensor {
        let c = x.dim(3).unwrap();
        let kernel = weight.permute((2, 0, 1)).unwrap().unsqueeze(1).unwrap().contiguous().unwrap();
        let y = x.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap().conv2d(&kernel, padding, 1, 1, c).unwrap();
        y.permute((0, 2, 3, 1)).unwrap().broadcast_add(bias).unwrap()
    }

    #[test]
    fn matches_candle_grouped_conv2d() {
        let dev = Device::Cpu;
        for (b, h, w, c, k, p) in [(2, 9, 13, 5, 7, 3), (1, 2, 3, 4, 7, 3), (1, 40, 41, 3, 3, 1), (3, 5, 4, 17, 3, 0)] {
            let x = Tensor::randn(0f32, 1.0, (b, h, w, c), &dev).unwrap();
            let weight = Tensor::randn(0f32, 1.0, (k, k, c), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
            let got = depthwise_conv2d_nhwc(&x, &weight, &bias, p).unwrap();
            let want = grouped_reference(&x, &weight, &bias, p);
            assert_eq!(got.dims(), want.dims());
            let dev = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert!(dev.to_scalar::<f32>().unwrap() < 1e-4, "({b}, {h}, {w}, {c}, {k}, {p})");
        }
    }

    #[test]
    fn other_dtypes_take_the_fallback() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (1, 6, 5, 4), &dev).unwrap();
        let weight = Tensor::randn(0f32, 1.0, (7, 7, 4), &dev).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 4, &dev).unwrap();
        let want = depthwise_conv2d_nhwc(&x, &weight, &bias, 3).unwrap();
        let x64 = x.to_dtype(DType::F64).unwrap();
        let (w64, b64) = (weight.to_dtype(DType::F64).unwrap(), bias.to_dtype(DType::F64).unwrap());
        let got = depthwise_conv2d_nhwc(&x64, &w64, &b64, 3).unwrap().to_dtype(DType::F32).unwrap();
        let dev = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(dev.to_scalar::<f32>().unwrap() < 1e-4);
        assert!(depthwise_conv2d_nhwc(&x, &weight, &bias, 0).is_err());
    }
}
