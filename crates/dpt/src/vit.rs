//! [`DPTModel`]: DPT's ViT (`DPTViTEmbeddings`, `DPTViTEncoder`, the final LayerNorm and pooler)
//! as `transformers`' `modeling_dpt.DPTModel`, with the position embeddings always resized
//! (bilinearly) to the input's patch grid.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::spatial::resize_bilinear;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::DPTConfig;
use autocandle_vit::{ViTLayer, ViTLayerSpec};

/// `DPTViTEmbeddings`: the patch projection (a strided convolution computed as a matrix product
/// over flattened patches), the `[CLS]` token and the position embeddings.
#[derive(Debug)]
struct Embeddings {
    /// `patch_embeddings.projection.weight` as `[hidden, channels * patch²]`.
    projection: Linear,
    cls_token: Tensor,
    /// The `[CLS]` row `[1, 1, hidden]` and the grid `[1, hidden, gh, gw]`.
    position_cls: Tensor,
    position_grid: Tensor,
    num_channels: usize,
    patch: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &DPTConfig) -> Result<Self> {
        let (h, p, c) = (cfg.hidden_size, cfg.patch_size, cfg.num_channels);
        let (ih, iw) = cfg.image_size.hw();
        let (gh, gw) = (ih / p, iw / p);
        let proj = vb.pp("patch_embeddings.projection");
        let weight = proj.get((h, c, p, p), "weight")?.reshape((h, c * p * p))?;
        let position = vb.get((1, gh * gw + 1, h), "position_embeddings")?;
        Ok(Self {
            projection: Linear::new(weight, Some(proj.get(h, "bias")?)),
            cls_token: vb.get((1, 1, h), "cls_token")?,
            position_cls: position.narrow(1, 0, 1)?,
            position_grid: position.narrow(1, 1, gh * gw)?.reshape((1, gh, gw, h))?.permute((0, 3, 1, 2))?,
            num_channels: c,
            patch: p,
        })
    }

    /// `pixel_values` `[B, C, H, W]` -> (`[B, 1 + gh gw, hidden]`, (gh, gw)).
    fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, (usize, usize))> {
        let (batch, channels, height, width) =
            autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        let p = self.patch;
        let (gh, gw) = (height / p, width / p);
        if gh == 0 || gw == 0 {
            return Err(Error::input(format!(
                "the images ({height}x{width}) are smaller than one {p}x{p} patch: use larger images"
            )));
        }
        let x = pixel_values.narrow(2, 0, gh * p)?.narrow(3, 0, gw * p)?;
        let patches = x.reshape(vec![batch, channels, gh, p, gw, p])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            batch,
            gh * gw,
            channels * p * p,
        ))?;
        let embeddings = self.projection.forward(&patches)?;
        let hidden = embeddings.dim(2)?;
        let grid = resize_bilinear(&self.position_grid, gh, gw, false)?.flatten_from(2)?.transpose(1, 2)?;
        let position = Tensor::cat(&[&self.position_cls, &grid], 1)?;
        let cls = self.cls_token.expand((batch, 1, hidden))?;
        Ok((Tensor::cat(&[&cls, &embeddings], 1)?.broadcast_add(&position)?, (gh, gw)))
    }
}

/// What the ViT gives the DPT heads: the outputs of the layers they asked for (before the final
/// LayerNorm, `[B, 1 + gh gw, hidden]`) and the patch grid.
#[derive(Debug)]
pub struct DPTFeatures {
    /// The outputs of the requested layers, in the order asked.
    pub hidden_states: Vec<Tensor>,
    /// Patches along the height and the width.
    pub grid: (usize, usize),
}

/// DPT's ViT without a head (`DPTModel`): `last_hidden_state` `[B, 1 + patches, hidden]` and,
/// with the pooler, `pooler_output`.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "DPTModel")]
pub struct DPTModel {
    embeddings: Embeddings,
    layers: Vec<ViTLayer>,
    layernorm: LayerNorm,
    pooler: Option<(Linear, Activation)>,
    device: Device,
    dtype: DType,
}

impl DPTModel {
    /// `vb` is the model root (`dpt` in head models); the heads build it without the pooler.
    pub fn new(vb: VarBuilder<'_>, cfg: &DPTConfig, add_pooling_layer: bool) -> Result<Self> {
        cfg.validate()?;
        let spec = ViTLayerSpec {
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
            intermediate: cfg.intermediate_size,
            qkv_bias: cfg.qkv_bias,
            activation: cfg.hidden_act,
            eps: cfg.layer_norm_eps,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| ViTLayer::load(vb.pp(format!("encoder.layer.{i}")), &spec))
            .collect::<Result<_>>()?;
        let pooler = if add_pooling_layer {
            Some((linear(cfg.hidden_size, cfg.pooler_output_size(), vb.pp("pooler.dense"))?, cfg.pooler_act))
        } else {
            None
        };
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
            layernorm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layernorm"))?,
            pooler,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    fn pixel_values(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?)
    }

    /// The outputs of the layers `indices` (0-based, each below `num_hidden_layers`), for the
    /// neck; the layers after the last one asked are not run.
    pub fn features(&self, inputs: &ModelInputs, indices: &[usize]) -> Result<DPTFeatures> {
        let (mut x, grid) = self.embeddings.forward(&self.pixel_values(inputs)?)?;
        let last = indices.iter().copied().max().unwrap_or(0);
        let mut outputs = vec![None; self.layers.len()];
        for (i, layer) in self.layers.iter().enumerate().take(last + 1) {
            x = layer.forward(&x)?;
            outputs[i] = Some(x.clone());
        }
        let hidden_states = indices
            .iter()
            .map(|&i| {
                outputs.get(i).cloned().flatten().ok_or_else(|| {
                    Error::input(format!("layer {i} was asked for, but the ViT has {} layers", self.layers.len()))
                })
            })
            .collect::<Result<_>>()?;
        Ok(DPTFeatures { hidden_states, grid })
    }
}

impl LoadModel for DPTModel {
    type Config = DPTConfig;
    const BASE_MODEL_PREFIX: &'static str = "dpt";

    fn load(vb: VarBuilder<'_>, config: &DPTConfig) -> Result<Self> {
        Self::new(vb, config, true)
    }
}

impl PreTrainedModel for DPTModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for DPTModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (mut x, _) = self.embeddings.forward(&self.pixel_values(inputs)?)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        let sequence = self.layernorm.forward(&x)?;
        let pooled = match &self.pooler {
            Some((dense, act)) => Some(act.forward(&dense.forward(&sequence.narrow(1, 0, 1)?.squeeze(1)?)?)?),
            None => None,
        };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}
