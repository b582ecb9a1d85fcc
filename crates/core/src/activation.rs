//! Activation functions by their `transformers` names (`ACT2FN`).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A parameter-free activation, named as in `transformers`' `ACT2FN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Activation {
    /// `gelu`, `gelu_python`: exact GELU with `erf`.
    Gelu,
    /// `gelu_10`: exact GELU clipped to [-10, 10].
    Gelu10,
    /// `gelu_fast`.
    GeluFast,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_python_tanh`, `gelu_accurate`: tanh approximation.
    GeluTanh,
    /// `quick_gelu`: `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `hardswish`: `x * relu6(x + 3) / 6`.
    Hardswish,
    /// `laplace`: `0.5 * (1 + erf((x - 0.707107) / (0.282095 * sqrt(2))))`.
    Laplace,
    /// `leaky_relu`: `x` for positive `x`, else `0.01 x`.
    LeakyRelu,
    /// `linear`: the identity.
    Linear,
    /// `mish`: `x * tanh(softplus(x))`.
    Mish,
    /// `relu`: `max(x, 0)`.
    Relu,
    /// `relu2`: `relu(x)^2`.
    Relu2,
    /// `relu6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `sigmoid`: `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `silu`, `swish`.
    Silu,
    /// `sqrtsoftplus`: `sqrt(softplus(x))`.
    SqrtSoftplus,
    /// `tanh`.
    Tanh,
}

const NAMES: &[(&str, Activation)] = &[
    ("gelu", Activation::Gelu),
    ("gelu_python", Activation::Gelu),
    ("gelu_10", Activation::Gelu10),
    ("gelu_fast", Activation::GeluFast),
    ("gelu_new", Activation::GeluTanh),
    ("gelu_pytorch_tanh", Activation::GeluTanh),
    ("gelu_python_tanh", Activation::GeluTanh),
    ("gelu_accurate", Activation::GeluTanh),
    ("quick_gelu", Activation::QuickGelu),
    ("hardswish", Activation::Hardswish),
    ("laplace", Activation::Laplace),
    ("leaky_relu", Activation::LeakyRelu),
    ("linear", Activation::Linear),
    ("mish", Activation::Mish),
    ("relu", Activation::Relu),
    ("relu2", Activation::Relu2),
    ("relu6", Activation::Relu6),
    ("sigmoid", Activation::Sigmoid),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
    ("sqrtsoftplus", Activation::SqrtSoftplus),
    ("tanh", Activation::Tanh),
];

impl Activation {
    /// Every accepted name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    /// Look an activation up by name.
    pub fn from_name(name: &str) -> Result<Self> {
        if let Some((_, act)) = NAMES.iter().find(|(n, _)| *n == name) {
            return Ok(*act);
        }
        let why = if matches!(name, "prelu" | "xielu") {
            "it has learned parameters, which autocandle does not load yet".to_owned()
        } else {
            format!("known activations: {}", Self::names().collect::<Vec<_>>().join(", "))
        };
        Err(Error::Unsupported(format!("activation `{name}`: {why}")))
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, a)| *a == self).map_or("gelu", |(n, _)| *n)
    }

    /// Apply the activation elementwise.
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Gelu => crate::kernels::gelu_erf(x)?,
            Activation::Gelu10 => crate::kernels::gelu_erf(x)?.clamp(-10f32, 10f32)?,
            Activation::GeluFast => {
                let inner = ((x * 0.7978845608)? * ((x.sqr()? * 0.044715)? + 1.0)?)?;
                ((x * 0.5)? * (inner.tanh()? + 1.0)?)?
            }
            Activation::GeluTanh => x.gelu()?,
            Activation::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
            Activation::Hardswish => ((x * (x + 3.0)?.clamp(0f32, 6f32)?)? / 6.0)?,
            // `transformers` uses mu = 0.707107 and sigma = 0.282095 as written, not 1/sqrt(2).
            #[allow(clippy::approx_constant)]
            Activation::Laplace => {
                let z = ((x - 0.707107)? / (0.282095 * std::f64::consts::SQRT_2))?;
                ((z.erf()? + 1.0)? * 0.5)?
            }
            Activation::LeakyRelu => {
                let neg = (x.minimum(0f32)? * 0.01)?;
                (x.relu()? + neg)?
            }
            Activation::Linear => x.clone(),
            Activation::Mish => (x * softplus(x)?.tanh()?)?,
            Activation::Relu => x.relu()?,
            Activation::Relu2 => x.relu()?.sqr()?,
            Activation::Relu6 => x.clamp(0f32, 6f32)?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Activation::Silu => crate::kernels::silu(x)?,
            Activation::SqrtSoftplus => softplus(x)?.sqrt()?,
            Activation::Tanh => x.tanh()?,
        })
    }
}

/// `log(1 + exp(x))`, computed stably as `max(x, 0) + log(1 + exp(-|x|))`.
fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

impl TryFrom<String> for Activation {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        Self::from_name(&name)
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_name_parses_and_runs() {
        let x = Tensor::new(&[-3f32, -0.5, 0.0, 0.7, 4.0], &Device::Cpu).unwrap();
        for name in Activation::names() {
            let act = Activation::from_name(name).unwrap();
            let y = act.forward(&x).unwrap();
            assert_eq!(y.dims(), x.dims(), "{name}");
        }
        assert!(Activation::from_name("gelu_nope").unwrap_err().to_string().contains("known activations"));
        assert!(Activation::from_name("prelu").unwrap_err().to_string().contains("learned parameters"));
    }

    #[test]
    fn reference_values() {
        // Values from torch for x = 1.0.
        let x = Tensor::new(&[1f32], &Device::Cpu).unwrap();
        let at = |a: Activation| a.forward(&x).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((at(Activation::Gelu) - 0.841_344_7).abs() < 1e-5);
        assert!((at(Activation::GeluTanh) - 0.841_192).abs() < 1e-5);
        assert!((at(Activation::Mish) - 0.865_098_4).abs() < 1e-5);
        assert!((at(Activation::QuickGelu) - 0.845_795_9).abs() < 1e-5);
    }
}
