//! `dwconv`: the depthwise 7x7 convolution (`groups = channels`, padding 3) of a ConvNeXT
//! layer, on channels-last activations.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use autocandle_core::Result;

/// Kernel side of the depthwise convolution.
const KERNEL: usize = 7;

/// `nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)`.
#[derive(Debug)]
pub(crate) struct DepthwiseConv {
    /// `[dim, 1, 7, 7]`, as stored.
    weight: Tensor,
    /// `[dim]`.
    bias: Tensor,
}

impl DepthwiseConv {
    pub(crate) fn load(vb: VarBuilder<'_>, dim: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((dim, 1, KERNEL, KERNEL), "weight")?, bias: vb.get(dim, "bias")? })
    }

    /// `x` `[B, H, W, C]` -> `[B, H, W, C]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let channels = x.dim(3)?;
        let y = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(&self.weight, KERNEL / 2, 1, 1, channels)?;
        Ok(y.permute((0, 2, 3, 1))?.broadcast_add(&self.bias)?)
    }
}
