//! Layers of convolutional vision heads and necks: [`Conv2d`] (`torch.nn.Conv2d`),
//! [`ConvTranspose2d`], the eval-mode [`BatchNorm2d`] and [`resize_bilinear`]
//! (`torch.nn.functional.interpolate(mode="bilinear")` at a given output size).

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::depthwise::depthwise_conv2d_nhwc;
use crate::resize::{resize_2d, Resample};
use crate::{Error, Result};

/// The square kernel, stride, padding and groups of a [`Conv2d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Side of the square kernel.
    pub kernel: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
    /// Channel groups (`in_channels` for a depthwise convolution).
    pub groups: usize,
}

impl ConvSpec {
    /// A `kernel` x `kernel` convolution with stride 1, no padding and one group.
    pub fn new(kernel: usize) -> Self {
        Self { kernel, stride: 1, padding: 0, groups: 1 }
    }

    /// With `stride`.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// With `padding`.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    /// With `groups`.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

/// `torch.nn.Conv2d` (`weight` `[out, in / groups, k, k]`, optional `bias` `[out]`).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvSpec,
}

impl Conv2d {
    /// Read `weight` (and `bias` when `bias` is set) under `vb`.
    pub fn load(
        in_channels: usize,
        out_channels: usize,
        spec: ConvSpec,
        bias: bool,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        if spec.kernel == 0 || spec.stride == 0 || spec.groups == 0 || !in_channels.is_multiple_of(spec.groups) {
            return Err(Error::input(format!(
                "a convolution needs a kernel, a stride and groups of at least 1 and in-channels ({in_channels}) \
                 divisible by the groups, got {spec:?}"
            )));
        }
        let weight = vb.get((out_channels, in_channels / spec.groups, spec.kernel, spec.kernel), "weight")?;
        let bias = if bias { Some(vb.get(out_channels, "bias")?) } else { None };
        Ok(Self { weight, bias, spec })
    }

    /// `[b, in, h, w]` -> `[b, out, h', w']`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let ConvSpec { kernel, stride, padding, groups } = self.spec;
        if h + 2 * padding < kernel || w + 2 * padding < kernel {
            return Err(Error::input(format!(
                "a feature map of {h}x{w} is smaller than the {kernel}x{kernel} convolution kernel: use larger images"
            )));
        }
        let (_, c, _, _) = x.dims4()?;
        let depthwise = groups > 1 && groups == c && self.weight.dim(0)? == c && stride == 1;
        if depthwise {
            return self.depthwise(x);
        }
        let y = if kernel == 1 && stride == 1 && padding == 0 && groups == 1 {
            // A 1x1 convolution is a matrix product over the channels.
            let (b, c, _, _) = x.dims4()?;
            let out = self.weight.dim(0)?;
            let weight = self.weight.reshape((out, c))?;
            weight.broadcast_matmul(&x.reshape((b, c, h * w))?)?.reshape((b, out, h, w))?
        } else {
            x.contiguous()?.conv2d(&self.weight, padding, stride, 1, groups)?
        };
        Ok(match &self.bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, (), 1, 1))?)?,
            None => y,
        })
    }
}

impl Conv2d {
    /// A stride-1 depthwise convolution (one filter per channel), bias included, through
    /// [`crate::kernels::depthwise::depthwise_conv2d_nhwc`] on the channels-last permutation:
    /// candle's grouped convolution runs one convolution per group, which is slow with hundreds
    /// of channels.
    fn depthwise(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, _, _) = x.dims4()?;
        let ConvSpec { kernel: k, padding: p, .. } = self.spec;
        // `[c, 1, k, k]` -> `[k, k, c]`.
        let weight = self.weight.reshape((c, k * k))?.t()?.contiguous()?.reshape((k, k, c))?;
        let bias = match &self.bias {
            Some(bias) => bias.clone(),
            None => Tensor::zeros(c, x.dtype(), x.device())?,
        };
        let x = x.permute((0, 2, 3, 1))?.contiguous()?;
        let y = depthwise_conv2d_nhwc(&x, &weight, &bias, p)?;
        Ok(y.permute((0, 3, 1, 2))?.contiguous()?)
    }
}

/// `torch.nn.ConvTranspose2d` with kernel = stride and no padding (`weight` `[in, out, k, k]`,
/// `bias` `[out]`): each input pixel becomes a `k` x `k` block.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    /// `[out * k * k, in]`.
    weight: Tensor,
    bias: Tensor,
    out_channels: usize,
    factor: usize,
}

impl ConvTranspose2d {
    /// Read `weight` and `bias` under `vb`.
    pub fn load(in_channels: usize, out_channels: usize, factor: usize, vb: VarBuilder<'_>) -> Result<Self> {
        let weight = vb.get((in_channels, out_channels, factor, factor), "weight")?;
        let weight = weight.reshape((in_channels, out_channels * factor * factor))?.t()?.contiguous()?;
        Ok(Self { weight, bias: vb.get(out_channels, "bias")?, out_channels, factor })
    }

    /// `[b, in, h, w]` -> `[b, out, h k, w k]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (o, k) = (self.out_channels, self.factor);
        // [o k k, c] x [b, c, h w] -> [b, o, k, k, h, w] -> [b, o, h, k, w, k]
        let y = self.weight.broadcast_matmul(&x.reshape((b, c, h * w))?)?;
        let y = y.reshape(vec![b, o, k, k, h, w])?.permute(vec![0, 1, 4, 2, 5, 3])?.reshape((b, o, h * k, w * k))?;
        Ok(y.broadcast_add(&self.bias.reshape((1, o, 1, 1))?)?)
    }
}

/// `torch.nn.BatchNorm2d` in eval mode: `(x - running_mean) / sqrt(running_var + eps) * weight +
/// bias`, folded into one scale and shift per channel.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm2d {
    /// Read `weight`, `bias`, `running_mean`, `running_var` (and `num_batches_tracked`, a training
    /// counter, when the checkpoint has it, so that the loading report stays clean) under `vb`.
    pub fn load(channels: usize, eps: f64, vb: VarBuilder<'_>) -> Result<Self> {
        let weight = vb.get(channels, "weight")?.to_dtype(DType::F32)?;
        let bias = vb.get(channels, "bias")?.to_dtype(DType::F32)?;
        let mean = vb.get(channels, "running_mean")?.to_dtype(DType::F32)?;
        let var = vb.get(channels, "running_var")?.to_dtype(DType::F32)?;
        if vb.contains_tensor("num_batches_tracked") {
            vb.get((), "num_batches_tracked")?;
        }
        let scale = weight.div(&(var + eps)?.sqrt()?)?;
        let shift = (bias - mean.mul(&scale)?)?;
        let dtype = vb.dtype();
        Ok(Self {
            scale: scale.reshape((1, channels, 1, 1))?.to_dtype(dtype)?,
            shift: shift.reshape((1, channels, 1, 1))?.to_dtype(dtype)?,
        })
    }

    /// `[b, c, h, w]` -> `[b, c, h, w]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?)
    }
}

/// `torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear",
/// align_corners=...)` of `x` `[b, c, h, w]`, computed as two matrix products
/// ([`crate::resize::resize_2d`]).
pub fn resize_bilinear(x: &Tensor, height: usize, width: usize, align_corners: bool) -> Result<Tensor> {
    x.dims4()?;
    resize_2d(x, (height, width), Resample::Bilinear { align_corners })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use candle_core::Device;

    #[test]
    fn depthwise_matches_the_grouped_convolution() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 4, 5, 6), &dev).unwrap();
        let weight = Tensor::randn(0f32, 1.0, (4, 1, 3, 3), &dev).unwrap();
        let conv = Conv2d { weight: weight.clone(), bias: None, spec: ConvSpec::new(3).padding(1).groups(4) };
        let got = conv.forward(&x).unwrap();
        let want = x.conv2d(&weight, 1, 1, 1, 4).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }

    #[test]
    fn bilinear_matches_pytorch_on_a_small_grid() {
        // torch.nn.functional.interpolate(torch.arange(6.).reshape(1, 1, 2, 3), size=(3, 4), mode="bilinear")
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((1, 1, 2, 3)).unwrap();
        let y = resize_bilinear(&x, 3, 4, false).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = [0.0, 0.625, 1.375, 2.0, 1.5, 2.125, 2.875, 3.5, 3.0, 3.625, 4.375, 5.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        // align_corners=True, size=(3, 5)
        let y = resize_bilinear(&x, 3, 5, true).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = [0.0, 0.5, 1.0, 1.5, 2.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.0, 3.5, 4.0, 4.5, 5.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
    }
}
