//! The ConvNeXT network (embeddings, stages, final LayerNorm) shared by ConvNeXT and
//! ConvNeXT V2, and the registered [`ConvNextModel`], [`ConvNextForImageClassification`] and
//! the public [`ConvNextBackbone`].
//!
//! The network runs channels-last (`[B, H, W, C]`) from the stem on: transformers'
//! channels-first LayerNorms (`[B, C, H, W]` permuted, normalised over `C`, permuted back)
//! are the same LayerNorm over the last axis there, the strided 2x2 / patch convolutions are
//! matrix products over flattened patches, and only the outputs are permuted back to
//! `[B, C, H, W]`.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, ForImageClassification, ImageClassifierOutput, LoadModel, Model,
    ModelInputs, PreTrainedModel, Result,
};

use crate::config::ConvNextConfig;
use crate::depthwise::DepthwiseConv;

/// `eps` of every `ConvNextLayerNorm` (all but the final one, which uses `layer_norm_eps`).
const NORM_EPS: f64 = 1e-6;

/// The generation of ConvNeXT a network is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// ConvNeXT: layer scale when `layer_scale_init_value > 0`.
    V1,
    /// ConvNeXT V2: global response normalisation (`grn`) after the activation, no layer scale.
    V2,
}

/// A convolution whose kernel equals its stride (the patchify stem, the 2x2 downsampling),
/// as a matrix product over flattened `[C, kh, kw]` patches; pixels past the last whole
/// patch are dropped, as the convolution does.
#[derive(Debug)]
struct Patchify {
    projection: Linear,
    kernel: (usize, usize),
}

impl Patchify {
    fn load(vb: VarBuilder<'_>, (cin, cout): (usize, usize), (kh, kw): (usize, usize)) -> Result<Self> {
        let weight = vb.get((cout, cin, kh, kw), "weight")?.reshape((cout, cin * kh * kw))?;
        Ok(Self { projection: Linear::new(weight, Some(vb.get(cout, "bias")?)), kernel: (kh, kw) })
    }

    /// `[B, C, H, W]` -> `[B, H / kh, W / kw, out]`.
    fn forward_nchw(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (kh, kw) = self.kernel;
        let (gh, gw) = (h / kh, w / kw);
        let x = x.narrow(2, 0, gh * kh)?.narrow(3, 0, gw * kw)?;
        let patches = x.reshape(vec![b, c, gh, kh, gw, kw])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            b,
            gh,
            gw,
            c * kh * kw,
        ))?;
        Ok(self.projection.forward(&patches)?)
    }

    /// `[B, H, W, C]` -> `[B, H / kh, W / kw, out]`.
    fn forward_nhwc(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let (kh, kw) = self.kernel;
        let (gh, gw) = (h / kh, w / kw);
        let x = x.narrow(1, 0, gh * kh)?.narrow(2, 0, gw * kw)?;
        let patches = x.reshape(vec![b, gh, kh, gw, kw, c])?.permute(vec![0, 1, 3, 5, 2, 4])?.reshape((
            b,
            gh,
            gw,
            c * kh * kw,
        ))?;
        Ok(self.projection.forward(&patches)?)
    }
}

/// `ConvNextLayer` / `ConvNextV2Layer`: depthwise 7x7 convolution, LayerNorm, pointwise
/// expansion to 4x, activation, GRN (V2), pointwise projection with the layer scale (V1),
/// residual.
#[derive(Debug)]
struct Layer {
    dwconv: DepthwiseConv,
    layernorm: LayerNorm,
    pwconv1: Linear,
    activation: Activation,
    /// V2's `grn.weight` and `grn.bias`, each `[1, 1, 1, 4 dim]`.
    grn: Option<(Tensor, Tensor)>,
    /// `pwconv2` with the layer scale (V1, when present) folded in: `gamma * (W y + b)` is
    /// `(gamma W) y + gamma b`.
    pwconv2: Linear,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, cfg: &ConvNextConfig, dim: usize, variant: Variant) -> Result<Self> {
        let grn = match variant {
            Variant::V2 => {
                let g = vb.pp("grn");
                Some((g.get((1, 1, 1, 4 * dim), "weight")?, g.get((1, 1, 1, 4 * dim), "bias")?))
            }
            Variant::V1 => None,
        };
        let mut pwconv2 = linear(4 * dim, dim, vb.pp("pwconv2"))?;
        if variant == Variant::V1 && cfg.layer_scale_init_value > 0.0 {
            let gamma = vb.get(dim, "layer_scale_parameter")?;
            let weight = pwconv2.weight()?.broadcast_mul(&gamma.unsqueeze(1)?)?;
            let bias = pwconv2.bias().map(|b| b.mul(&gamma)).transpose()?;
            pwconv2 = Linear::new(weight, bias);
        }
        Ok(Self {
            dwconv: DepthwiseConv::load(vb.pp("dwconv"), dim)?,
            layernorm: layer_norm(dim, NORM_EPS, vb.pp("layernorm"))?,
            pwconv1: linear(dim, 4 * dim, vb.pp("pwconv1"))?,
            activation: cfg.hidden_act,
            grn,
            pwconv2,
        })
    }

    /// `x` `[B, H, W, C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.dwconv.forward(x)?;
        let y = self.layernorm.forward(&y)?;
        let mut y = self.activation.forward(&self.pwconv1.forward(&y)?)?;
        if let Some((weight, bias)) = &self.grn {
            // `GRN`: the L2 norm over the spatial axes, divided by its mean over the channels.
            let gx = y.sqr()?.sum_keepdim(1)?.sum_keepdim(2)?.sqrt()?;
            let nx = gx.broadcast_div(&(gx.mean_keepdim(D::Minus1)? + 1e-6)?)?;
            y = ((y.broadcast_mul(&nx)?.broadcast_mul(weight)? + &y)?.broadcast_add(bias))?;
        }
        Ok((x + self.pwconv2.forward(&y)?)?)
    }
}

/// `ConvNextStage`: the optional downsampling (channels-first LayerNorm, 2x2 stride-2
/// convolution) and the layers.
#[derive(Debug)]
struct Stage {
    downsampling: Option<(LayerNorm, Patchify)>,
    layers: Vec<Layer>,
}

/// The ConvNeXT network, as `ConvNextModel` / `ConvNextV2Model` hold it: `embeddings`,
/// `encoder.stages`, and the final `layernorm` (absent in the backbone). Public so that
/// ConvNeXT V2 and other crates can build on it; weight names are those of transformers.
#[derive(Debug)]
pub struct ConvNextNetwork {
    patch_embeddings: Patchify,
    embeddings_norm: LayerNorm,
    stages: Vec<Stage>,
    layernorm: Option<LayerNorm>,
    num_channels: usize,
    min_side: (usize, usize),
    model_type: &'static str,
    device: Device,
    dtype: DType,
}

impl ConvNextNetwork {
    /// Load the network from its root `vb` (`convnext` in head checkpoints); the final
    /// LayerNorm only `with_layernorm`. `model_type` names the model in errors.
    pub fn load(
        vb: VarBuilder<'_>,
        cfg: &ConvNextConfig,
        variant: Variant,
        with_layernorm: bool,
        model_type: &'static str,
    ) -> Result<Self> {
        cfg.validate(model_type)?;
        let patch = cfg.patch_size.hw();
        let h0 = cfg.hidden_sizes[0];
        let emb = vb.pp("embeddings");
        let mut stages = Vec::with_capacity(cfg.num_stages);
        let mut cin = h0;
        for i in 0..cfg.num_stages {
            let cout = cfg.hidden_sizes[i];
            let st = vb.pp(format!("encoder.stages.{i}"));
            let downsampling = if i > 0 || cin != cout {
                let d = st.pp("downsampling_layer");
                let stride = if i > 0 { 2 } else { 1 };
                Some((layer_norm(cin, NORM_EPS, d.pp("0"))?, Patchify::load(d.pp("1"), (cin, cout), (stride, stride))?))
            } else {
                None
            };
            let layers = (0..cfg.depths[i])
                .map(|j| Layer::load(st.pp(format!("layers.{j}")), cfg, cout, variant))
                .collect::<Result<_>>()?;
            stages.push(Stage { downsampling, layers });
            cin = cout;
        }
        let layernorm = if with_layernorm {
            Some(layer_norm(cfg.last_hidden_size(), cfg.layer_norm_eps, vb.pp("layernorm"))?)
        } else {
            None
        };
        let scale = 1usize << (cfg.num_stages - 1);
        Ok(Self {
            patch_embeddings: Patchify::load(emb.pp("patch_embeddings"), (cfg.num_channels, h0), patch)?,
            embeddings_norm: layer_norm(h0, NORM_EPS, emb.pp("layernorm"))?,
            stages,
            layernorm,
            num_channels: cfg.num_channels,
            min_side: (patch.0 * scale, patch.1 * scale),
            model_type,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The embedding output, then the outputs of the first `stages` stages, each
    /// channels-last `[B, h, w, C]` (index 0 is the stem, as transformers' `hidden_states`).
    pub fn hidden_states(&self, pixel_values: &Tensor, stages: usize) -> Result<Vec<Tensor>> {
        let pixel_values = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (_, _, height, width) = autocandle_core::pixels::check_pixel_values(&pixel_values, self.num_channels)?;
        if height < self.min_side.0 || width < self.min_side.1 {
            return Err(Error::input(format!(
                "the images ({height}x{width}) are too small for this {}: its patch size and {} downsampling \
                 stages need at least {}x{} pixels; resize them with the model's AutoImageProcessor",
                self.model_type,
                self.stages.len().saturating_sub(1),
                self.min_side.0,
                self.min_side.1
            )));
        }
        let mut x = self.embeddings_norm.forward(&self.patch_embeddings.forward_nchw(&pixel_values)?)?;
        let mut states = vec![x.clone()];
        for stage in self.stages.iter().take(stages) {
            if let Some((norm, conv)) = &stage.downsampling {
                x = conv.forward_nhwc(&norm.forward(&x)?)?;
            }
            for layer in &stage.layers {
                x = layer.forward(&x)?;
            }
            states.push(x.clone());
        }
        Ok(states)
    }

    /// `(last_hidden_state [B, C, h, w], pooler_output [B, C])`: the last stage and the
    /// final LayerNorm of its spatial mean.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut states = self.hidden_states(pixel_values, self.stages.len())?;
        let last = states.pop().ok_or_else(|| Error::Unsupported("a ConvNeXT without stages".into()))?;
        let pooled = last.mean(2)?.mean(1)?;
        let pooled = match &self.layernorm {
            Some(norm) => norm.forward(&pooled)?,
            None => pooled,
        };
        Ok((to_channels_first(&last)?, pooled))
    }
}

/// `[B, H, W, C]` -> `[B, C, H, W]`, contiguous.
pub fn to_channels_first(x: &Tensor) -> Result<Tensor> {
    Ok(x.permute((0, 3, 1, 2))?.contiguous()?)
}

/// The ConvNeXT without a head (`ConvNextModel`): `last_hidden_state` `[B, C, h, w]` and
/// `pooler_output` `[B, C]` (the final LayerNorm of the spatial mean).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "ConvNextModel")]
pub struct ConvNextModel {
    network: ConvNextNetwork,
}

impl ConvNextModel {
    /// Wrap a loaded network (ConvNeXT V2 builds its base model this way).
    pub fn from_network(network: ConvNextNetwork) -> Self {
        Self { network }
    }

    /// The network.
    pub fn network(&self) -> &ConvNextNetwork {
        &self.network
    }
}

impl LoadModel for ConvNextModel {
    type Config = ConvNextConfig;
    const BASE_MODEL_PREFIX: &'static str = "convnext";

    fn load(vb: VarBuilder<'_>, config: &ConvNextConfig) -> Result<Self> {
        Ok(Self { network: ConvNextNetwork::load(vb, config, Variant::V1, true, "convnext")? })
    }
}

impl PreTrainedModel for ConvNextModel {
    fn device(&self) -> &Device {
        self.network.device()
    }

    fn dtype(&self) -> DType {
        self.network.dtype()
    }
}

impl Model for ConvNextModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (last, pooled) = self.network.forward(inputs.pixel_values()?)?;
        Ok(BaseModelOutput::new(last, Some(pooled)))
    }
}

/// ConvNeXT with a linear `classifier` on the pooled features
/// (`ConvNextForImageClassification`); none with `num_labels = 0`.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification")]
pub struct ConvNextForImageClassification {
    network: ConvNextNetwork,
    classifier: Option<Linear>,
}

impl ConvNextForImageClassification {
    /// Load the network under `vb.pp(prefix)` and the `classifier` under `vb` (ConvNeXT V2
    /// builds its classifier this way, with prefix `convnextv2`).
    pub fn load_variant(
        vb: VarBuilder<'_>,
        config: &ConvNextConfig,
        variant: Variant,
        prefix: &'static str,
    ) -> Result<Self> {
        let network = ConvNextNetwork::load(vb.pp(prefix), config, variant, true, prefix)?;
        let num_labels = config.labels.num_labels();
        let classifier = if num_labels > 0 {
            Some(linear(config.last_hidden_size(), num_labels, vb.pp("classifier"))?)
        } else {
            None
        };
        Ok(Self { network, classifier })
    }

    /// `logits` `[B, num_labels]` (the pooled features with `num_labels = 0`).
    pub fn logits(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (_, pooled) = self.network.forward(pixel_values)?;
        Ok(match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        })
    }
}

impl LoadModel for ConvNextForImageClassification {
    type Config = ConvNextConfig;
    const BASE_MODEL_PREFIX: &'static str = "convnext";

    fn load(vb: VarBuilder<'_>, config: &ConvNextConfig) -> Result<Self> {
        Self::load_variant(vb, config, Variant::V1, "convnext")
    }
}

impl PreTrainedModel for ConvNextForImageClassification {
    fn device(&self) -> &Device {
        self.network.device()
    }

    fn dtype(&self) -> DType {
        self.network.dtype()
    }
}

impl ForImageClassification for ConvNextForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        Ok(ImageClassifierOutput::new(self.logits(inputs.pixel_values()?)?))
    }
}

/// `ConvNextBackbone` / `ConvNextV2Backbone`: the feature maps `[B, C_i, h_i, w_i]` of the
/// stages that `out_features` / `out_indices` name (the last stage when neither is set), each
/// through its channels-first LayerNorm (`hidden_states_norms.<stage>`).
#[derive(Debug)]
pub struct ConvNextBackbone {
    network: ConvNextNetwork,
    out_indices: Vec<usize>,
    norms: Vec<LayerNorm>,
    channels: Vec<usize>,
}

impl ConvNextBackbone {
    /// Load from the backbone root `vb` (`embeddings`, `encoder`, `hidden_states_norms`).
    pub fn load(vb: VarBuilder<'_>, config: &ConvNextConfig, variant: Variant) -> Result<Self> {
        let model_type = if variant == Variant::V1 { "convnext" } else { "convnextv2" };
        let network = ConvNextNetwork::load(vb.clone(), config, variant, false, model_type)?;
        let names = config.stage_names();
        let out_indices = crate::config::out_stage_indices(
            model_type,
            &names,
            config.out_features.as_deref(),
            config.out_indices.as_deref(),
        )?;
        let all: Vec<usize> =
            std::iter::once(config.hidden_sizes[0]).chain(config.hidden_sizes.iter().copied()).collect();
        let channels: Vec<usize> = out_indices.iter().map(|&i| all[i]).collect();
        let norms = out_indices
            .iter()
            .zip(&channels)
            .map(|(&i, &c)| Ok(layer_norm(c, NORM_EPS, vb.pp(format!("hidden_states_norms.{}", names[i])))?))
            .collect::<Result<_>>()?;
        Ok(Self { network, out_indices, norms, channels })
    }

    /// The stage indices returned (0 is the stem), in order.
    pub fn out_indices(&self) -> &[usize] {
        &self.out_indices
    }

    /// Channels of each returned feature map.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// The feature maps for `pixel_values` `[B, num_channels, H, W]`, one `[B, C_i, h_i, w_i]`
    /// per entry of [`ConvNextBackbone::out_indices`].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let last = self.out_indices.last().copied().unwrap_or(0);
        let states = self.network.hidden_states(pixel_values, last)?;
        self.out_indices
            .iter()
            .zip(&self.norms)
            .filter_map(|(&i, norm)| states.get(i).map(|s| (s, norm)))
            .map(|(s, norm)| to_channels_first(&norm.forward(s)?))
            .collect()
    }
}
