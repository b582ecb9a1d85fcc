//! The DPT neck (`DPTNeck`): the reassemble stage (token sequences to feature maps at four
//! scales), a 3x3 convolution per scale and the fusion stage (residual convolution units,
//! upsampling from the coarsest map to the finest). Depth Anything's neck is the same network
//! with other switches ([`NeckSpec`]), so `autocandle-depth-anything` builds it from here.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::spatial::{resize_bilinear, BatchNorm2d, Conv2d, ConvSpec, ConvTranspose2d};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{Activation, Error, Result};

use crate::config::Readout;

/// PyTorch's `nn.BatchNorm2d` default epsilon.
pub(crate) const BATCH_NORM_EPS: f64 = 1e-5;

/// What differs between the DPT neck and Depth Anything's.
#[derive(Debug, Clone, PartialEq)]
pub struct NeckSpec {
    /// Width of the token sequences the neck reads (the backbone's hidden size).
    pub hidden_size: usize,
    /// Channels of each reassembled map.
    pub neck_hidden_sizes: Vec<usize>,
    /// Resize factor of each reassembled map (> 1: transposed convolution; 1: none; < 1: a 3x3
    /// convolution of stride `1 / factor`).
    pub reassemble_factors: Vec<f64>,
    /// Channels of the fusion stage.
    pub fusion_hidden_size: usize,
    /// What the `[CLS]` token does (Depth Anything: [`Readout::Ignore`]).
    pub readout: Readout,
    /// Activation after the readout projection.
    pub readout_act: Activation,
    /// BatchNorm after each convolution of the residual units.
    pub use_batch_norm: bool,
    /// Bias on the residual units' convolutions.
    pub residual_bias: bool,
    /// Depth Anything: each fusion layer upsamples to the size of the next (finer) map, the
    /// last one by 2; DPT: every fusion layer upsamples by 2.
    pub upsample_to_next: bool,
}

/// `nn.Identity`, `nn.ConvTranspose2d` or `nn.Conv2d` of a reassemble layer.
#[derive(Debug)]
enum Resize {
    Identity,
    Up(ConvTranspose2d),
    Down(Conv2d),
}

/// `DPTReassembleLayer`: a 1x1 projection to the stage's channels and the resize.
#[derive(Debug)]
struct ReassembleLayer {
    projection: Conv2d,
    resize: Resize,
}

impl ReassembleLayer {
    fn load(vb: VarBuilder<'_>, hidden: usize, channels: usize, factor: f64) -> Result<Self> {
        let projection = Conv2d::load(hidden, channels, ConvSpec::new(1), true, vb.pp("projection"))?;
        let resize = if factor > 1.0 {
            if factor.fract() != 0.0 {
                return Err(Error::config(
                    "dpt",
                    format!("a `reassemble_factors` entry above 1 must be whole, got {factor}"),
                ));
            }
            Resize::Up(ConvTranspose2d::load(channels, channels, factor as usize, vb.pp("resize"))?)
        } else if factor == 1.0 {
            Resize::Identity
        } else if factor > 0.0 {
            // `int(1 / factor)`, as `transformers`.
            let stride = (1.0 / factor) as usize;
            Resize::Down(Conv2d::load(
                channels,
                channels,
                ConvSpec::new(3).stride(stride).padding(1),
                true,
                vb.pp("resize"),
            )?)
        } else {
            return Err(Error::config("dpt", format!("`reassemble_factors` entries must be positive, got {factor}")));
        };
        Ok(Self { projection, resize })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.projection.forward(x)?;
        match &self.resize {
            Resize::Identity => Ok(x),
            Resize::Up(conv) => conv.forward(&x),
            Resize::Down(conv) => conv.forward(&x),
        }
    }
}

/// `DPTPreActResidualLayer`: ReLU, 3x3 convolution (BatchNorm), ReLU, 3x3 convolution
/// (BatchNorm), plus the input.
#[derive(Debug)]
struct ResidualUnit {
    convolution1: Conv2d,
    batch_norm1: Option<BatchNorm2d>,
    convolution2: Conv2d,
    batch_norm2: Option<BatchNorm2d>,
}

impl ResidualUnit {
    fn load(vb: VarBuilder<'_>, spec: &NeckSpec) -> Result<Self> {
        let f = spec.fusion_hidden_size;
        let conv = |name: &str| Conv2d::load(f, f, ConvSpec::new(3).padding(1), spec.residual_bias, vb.pp(name));
        let norm = |name: &str| -> Result<Option<BatchNorm2d>> {
            if spec.use_batch_norm {
                Ok(Some(BatchNorm2d::load(f, BATCH_NORM_EPS, vb.pp(name))?))
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            convolution1: conv("convolution1")?,
            batch_norm1: norm("batch_norm1")?,
            convolution2: conv("convolution2")?,
            batch_norm2: norm("batch_norm2")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.convolution1.forward(&x.relu()?)?;
        if let Some(norm) = &self.batch_norm1 {
            y = norm.forward(&y)?;
        }
        let mut y = self.convolution2.forward(&y.relu()?)?;
        if let Some(norm) = &self.batch_norm2 {
            y = norm.forward(&y)?;
        }
        Ok((y + x)?)
    }
}

/// `DPTFeatureFusionLayer`: the residual (resized to the running map when their sizes differ)
/// through one residual unit is added, a second unit follows, then a bilinear upsampling
/// (`align_corners=True`) and a 1x1 projection.
#[derive(Debug)]
struct FusionLayer {
    projection: Conv2d,
    residual_layer1: ResidualUnit,
    residual_layer2: ResidualUnit,
}

impl FusionLayer {
    fn load(vb: VarBuilder<'_>, spec: &NeckSpec) -> Result<Self> {
        let f = spec.fusion_hidden_size;
        Ok(Self {
            projection: Conv2d::load(f, f, ConvSpec::new(1), true, vb.pp("projection"))?,
            residual_layer1: ResidualUnit::load(vb.pp("residual_layer1"), spec)?,
            residual_layer2: ResidualUnit::load(vb.pp("residual_layer2"), spec)?,
        })
    }

    /// `size`: the output size; `None` doubles the input's.
    fn forward(&self, x: &Tensor, residual: Option<&Tensor>, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let mut x = x.clone();
        if let Some(residual) = residual {
            let residual = resize_bilinear(residual, h, w, false)?;
            x = (x + self.residual_layer1.forward(&residual)?)?;
        }
        let x = self.residual_layer2.forward(&x)?;
        let (oh, ow) = size.unwrap_or((2 * h, 2 * w));
        self.projection.forward(&resize_bilinear(&x, oh, ow, true)?)
    }
}

/// The DPT / Depth Anything neck: `reassemble_stage`, `convs`, `fusion_stage`.
#[derive(Debug)]
pub struct DPTNeck {
    reassemble: Vec<ReassembleLayer>,
    readout_projects: Vec<Linear>,
    convs: Vec<Conv2d>,
    fusion: Vec<FusionLayer>,
    spec: NeckSpec,
}

impl DPTNeck {
    /// `vb` is the neck (`neck`).
    pub fn load(vb: VarBuilder<'_>, spec: NeckSpec) -> Result<Self> {
        let stages = spec.neck_hidden_sizes.len();
        if stages == 0 || spec.reassemble_factors.len() != stages {
            return Err(Error::config(
                "dpt",
                format!(
                    "`reassemble_factors` ({}) must have one entry per `neck_hidden_sizes` entry ({stages}, at least 1)",
                    spec.reassemble_factors.len()
                ),
            ));
        }
        let h = spec.hidden_size;
        let stage = vb.pp("reassemble_stage");
        let reassemble = spec
            .neck_hidden_sizes
            .iter()
            .zip(&spec.reassemble_factors)
            .enumerate()
            .map(|(i, (&channels, &factor))| {
                ReassembleLayer::load(stage.pp(format!("layers.{i}")), h, channels, factor)
            })
            .collect::<Result<_>>()?;
        let readout_projects = if spec.readout == Readout::Project {
            (0..stages)
                .map(|i| linear(2 * h, h, stage.pp(format!("readout_projects.{i}.0"))))
                .collect::<candle_core::Result<_>>()?
        } else {
            Vec::new()
        };
        let f = spec.fusion_hidden_size;
        let convs = spec
            .neck_hidden_sizes
            .iter()
            .enumerate()
            .map(|(i, &c)| Conv2d::load(c, f, ConvSpec::new(3).padding(1), false, vb.pp(format!("convs.{i}"))))
            .collect::<Result<_>>()?;
        let fusion = (0..stages)
            .map(|i| FusionLayer::load(vb.pp(format!("fusion_stage.layers.{i}")), &spec))
            .collect::<Result<_>>()?;
        Ok(Self { reassemble, readout_projects, convs, fusion, spec })
    }

    /// The number of token sequences the neck takes.
    pub fn stages(&self) -> usize {
        self.reassemble.len()
    }

    /// `hidden_states`: one `[b, 1 + gh gw, hidden]` sequence per stage (the `[CLS]` token
    /// first); `grid`: (gh, gw). Returns the fused maps, from the coarsest to the finest.
    pub fn forward(&self, hidden_states: &[Tensor], grid: (usize, usize)) -> Result<Vec<Tensor>> {
        if hidden_states.len() != self.stages() {
            return Err(Error::input(format!(
                "the neck takes {} hidden states (one per `neck_hidden_sizes` entry), got {}",
                self.stages(),
                hidden_states.len()
            )));
        }
        let (gh, gw) = grid;
        let mut features = Vec::with_capacity(self.stages());
        for (i, state) in hidden_states.iter().enumerate() {
            let (b, len, c) = state.dims3()?;
            if len != 1 + gh * gw {
                return Err(Error::input(format!(
                    "a hidden state has {len} tokens, but a [CLS] token and a {gh}x{gw} patch grid make {}",
                    1 + gh * gw
                )));
            }
            let cls = state.narrow(1, 0, 1)?;
            let mut tokens = state.narrow(1, 1, gh * gw)?;
            match self.spec.readout {
                Readout::Ignore => {}
                Readout::Add => tokens = tokens.broadcast_add(&cls)?,
                Readout::Project => {
                    let readout = cls.expand((b, gh * gw, c))?;
                    let joined = Tensor::cat(&[&tokens, &readout], 2)?;
                    tokens = self.spec.readout_act.forward(&self.readout_projects[i].forward(&joined)?)?;
                }
            }
            let map = tokens.transpose(1, 2)?.reshape((b, c, gh, gw))?.contiguous()?;
            let map = self.reassemble[i].forward(&map)?;
            features.push(self.convs[i].forward(&map)?);
        }
        // Fusion from the coarsest map (the last) to the finest.
        features.reverse();
        let mut fused: Vec<Tensor> = Vec::with_capacity(features.len());
        for (i, (feature, layer)) in features.iter().zip(&self.fusion).enumerate() {
            let size = match (self.spec.upsample_to_next, features.get(i + 1)) {
                (true, Some(next)) => {
                    let (_, _, h, w) = next.dims4()?;
                    Some((h, w))
                }
                _ => None,
            };
            let out = match fused.last() {
                None => layer.forward(feature, None, size)?,
                Some(previous) => layer.forward(previous, Some(feature), size)?,
            };
            fused.push(out);
        }
        Ok(fused)
    }
}

/// The element of `list` that Python's `list[index]` gives (`-1` is the last).
pub fn python_index<T>(list: &[T], index: i64) -> Result<&T> {
    let len = list.len() as i64;
    let i = if index < 0 { len + index } else { index };
    if i < 0 || i >= len {
        return Err(Error::config("dpt", format!("`head_in_index` {index} is out of range for {len} fused maps")));
    }
    Ok(&list[i as usize])
}
