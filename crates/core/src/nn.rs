//! Layers the architectures share where candle-nn's would be slower on the CPU.
//!
//! [`Linear`] has candle-nn's API (`new`, `weight`, `bias`, `Module`) and the same
//! constructors ([`linear`], [`linear_no_bias`], [`linear_b`], which read the same tensors
//! with the same initialisation hints), so an architecture switches by its `use` line; its
//! forward is [`crate::kernels::linear`].

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

/// `torch.nn.Linear`: `y = x · weightᵀ + bias`, `weight` `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer over `weight` (`[out, in]`) and an optional `bias` (`[out]`).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The weight, `[out, in]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl From<candle_nn::Linear> for Linear {
    fn from(layer: candle_nn::Linear) -> Self {
        Self::new(layer.weight().clone(), layer.bias().cloned())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        crate::kernels::linear(x, &self.weight, self.bias.as_ref())
    }
}

/// A layer with a bias, `in_dim -> out_dim`, from `vb` (`weight`, `bias`).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    candle_nn::linear(in_dim, out_dim, vb).map(Linear::from)
}

/// A layer without a bias, from `vb` (`weight`).
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    candle_nn::linear_no_bias(in_dim, out_dim, vb).map(Linear::from)
}

/// A layer with a bias or not, from `vb`.
pub fn linear_b(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    candle_nn::linear_b(in_dim, out_dim, bias, vb).map(Linear::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, D};

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        let scale = b.abs().unwrap().flatten_all().unwrap().max(D::Minus1).unwrap().to_scalar::<f32>().unwrap();
        let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(D::Minus1).unwrap();
        f64::from(diff.to_scalar::<f32>().unwrap()) / f64::from(scale.max(1e-30))
    }

    #[test]
    fn linear_matches_candle_nn_on_every_path() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (300, 200), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 300, &dev).unwrap();
        // Small and large m (fused and gemm paths), rank 2/3/4, a non-contiguous input, f64.
        let inputs = [
            Tensor::randn(0f32, 1.0, (1, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (2, 7, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (2, 3, 5, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (600, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (200, 9), &dev).unwrap().t().unwrap(),
        ];
        for x in &inputs {
            for bias in [None, Some(b.clone())] {
                let want = candle_nn::Linear::new(w.clone(), bias.clone()).forward(x).unwrap();
                let got = Linear::new(w.clone(), bias).forward(x).unwrap();
                assert_eq!(got.dims(), want.dims());
                assert!(max_rel_diff(&got, &want) < 1e-5, "{:?}", x.dims());
            }
        }
        let x64 = inputs[1].to_dtype(DType::F64).unwrap();
        let got = Linear::new(w.to_dtype(DType::F64).unwrap(), None).forward(&x64).unwrap();
        assert_eq!(got.dtype(), DType::F64);
    }

    #[test]
    fn shape_errors_stay_errors() {
        let dev = Device::Cpu;
        let layer = Linear::new(Tensor::zeros((4, 3), DType::F32, &dev).unwrap(), None);
        assert!(layer.forward(&Tensor::zeros((2, 5), DType::F32, &dev).unwrap()).is_err());
        let bad_bias = Linear::new(
            Tensor::zeros((300, 200), DType::F32, &dev).unwrap(),
            Some(Tensor::zeros(7, DType::F32, &dev).unwrap()),
        );
        assert!(bad_bias.forward(&Tensor::zeros((2, 200), DType::F32, &dev).unwrap()).is_err());
    }
}
