//! `dwconv`: the depthwise 7x7 convolution (`groups = channels`, padding 3) of a ConvNeXT
//! layer, on channels-last activations, through `autocandle_core::kernels::depthwise`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use autocandle_core::kernels::depthwise::depthwise_conv2d_nhwc;
use autocandle_core::Result;

/// Kernel side of the depthwise convolution.
const KERNEL: usize = 7;

/// `nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)`.
#[derive(Debug)]
pub(crate) struct DepthwiseConv {
    /// `[7, 7, dim]`: the stored `[dim, 1, 7, 7]` with the channels last.
    weight: Tensor,
    /// `[dim]`.
    bias: Tensor,
}

impl DepthwiseConv {
    pub(crate) fn load(vb: VarBuilder<'_>, dim: usize) -> Result<Self> {
        let weight = vb.get((dim, 1, KERNEL, KERNEL), "weight")?.reshape((dim, KERNEL, KERNEL))?;
        Ok(Self { weight: weight.permute((1, 2, 0))?.contiguous()?, bias: vb.get(dim, "bias")? })
    }

    /// `x` `[B, H, W, C]` -> `[B, H, W, C]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
        Ok(depthwise_conv2d_nhwc(&x, &self.weight, &self.bias, KERNEL / 2)?)
    }
}
