//! [`ViTModel`]: patch embeddings, the pre-norm encoder and the pooler, as
//! `transformers`' `modeling_vit.ViTModel`.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::resize::{interpolate_pos_encoding, Resample};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::ViTConfig;
use crate::layer::{ViTLayer, ViTLayerSpec};

/// `ViTEmbeddings`: the patch projection (a strided convolution, computed as a matrix
/// product over flattened patches), the `[CLS]` token, the optional mask token and the
/// learned position embeddings.
#[derive(Debug)]
struct Embeddings {
    /// `patch_embeddings.projection.weight` as `[hidden, channels * ph * pw]`.
    projection: Linear,
    cls_token: Tensor,
    mask_token: Option<Tensor>,
    position_embeddings: Tensor,
    num_channels: usize,
    image_size: (usize, usize),
    patch_size: (usize, usize),
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &ViTConfig, use_mask_token: bool) -> Result<Self> {
        let h = cfg.hidden_size;
        let (ph, pw) = cfg.patch_size.hw();
        let (gh, gw) = cfg.patch_grid();
        let proj = vb.pp("patch_embeddings.projection");
        let weight = proj.get((h, cfg.num_channels, ph, pw), "weight")?.reshape((h, cfg.num_channels * ph * pw))?;
        let bias = proj.get(h, "bias")?;
        Ok(Self {
            projection: Linear::new(weight, Some(bias)),
            cls_token: vb.get((1, 1, h), "cls_token")?,
            mask_token: if use_mask_token { Some(vb.get((1, 1, h), "mask_token")?) } else { None },
            position_embeddings: vb.get((1, gh * gw + 1, h), "position_embeddings")?,
            num_channels: cfg.num_channels,
            image_size: cfg.image_size.hw(),
            patch_size: (ph, pw),
        })
    }

    /// `pixel_values` `[B, C, H, W]` -> `[B, 1 + patches, hidden]`; with `interpolate`
    /// (`interpolate_pos_encoding`) any image of at least one patch, its position embeddings
    /// resized bicubically to its patch grid as `transformers`' `ViTEmbeddings` does.
    fn forward(&self, pixel_values: &Tensor, bool_masked_pos: Option<&Tensor>, interpolate: bool) -> Result<Tensor> {
        let (batch, channels, height, width) =
            autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        if !interpolate && (height, width) != self.image_size {
            return Err(Error::input(format!(
                "input image size ({height}x{width}) doesn't match the model ({}x{}): resize the images \
                 with the model's AutoImageProcessor, or set `interpolate_pos_encoding` to interpolate the \
                 position embeddings",
                self.image_size.0, self.image_size.1
            )));
        }
        let (ph, pw) = self.patch_size;
        let (gh, gw) = (height / ph, width / pw);
        if gh == 0 || gw == 0 {
            return Err(Error::input(format!(
                "the image ({height}x{width}) is smaller than one patch ({ph}x{pw}): resize the images with the \
                 model's AutoImageProcessor"
            )));
        }
        // The convolution with kernel = stride = patch drops the pixels past the last whole patch.
        let x = pixel_values.narrow(2, 0, gh * ph)?.narrow(3, 0, gw * pw)?;
        let patches = x.reshape(vec![batch, channels, gh, ph, gw, pw])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            batch,
            gh * gw,
            channels * ph * pw,
        ))?;
        let mut embeddings = self.projection.forward(&patches)?;
        if let Some(mask) = bool_masked_pos {
            let token = self.mask_token.as_ref().ok_or_else(|| {
                Error::input("`bool_masked_pos` needs a mask token, which only ViTForMaskedImageModeling has")
            })?;
            if mask.dims() != [batch, gh * gw] {
                return Err(Error::input(format!(
                    "`bool_masked_pos` must be [batch, num_patches] = [{batch}, {}], got {:?}",
                    gh * gw,
                    mask.dims()
                )));
            }
            let mask = mask.to_dtype(embeddings.dtype())?.unsqueeze(D::Minus1)?;
            let keep = (1.0 - &mask)?;
            embeddings = (embeddings.broadcast_mul(&keep)? + token.broadcast_mul(&mask)?)?;
        }
        let hidden = embeddings.dim(D::Minus1)?;
        let cls = self.cls_token.expand((batch, 1, hidden))?;
        let embeddings = Tensor::cat(&[&cls, &embeddings], 1)?;
        if interpolate {
            let positions =
                interpolate_pos_encoding(&self.position_embeddings, 1, (gh, gw), height == width, Resample::Bicubic)?;
            return Ok(embeddings.broadcast_add(&positions)?);
        }
        Ok(embeddings.broadcast_add(&self.position_embeddings)?)
    }
}

/// The ViT encoder without a head (`ViTModel`): `last_hidden_state` `[B, 1 + patches, hidden]`
/// and, with the pooler, `pooler_output` (activation of a dense layer on the `[CLS]` state).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "ViTModel")]
pub struct ViTModel {
    embeddings: Embeddings,
    layers: Vec<ViTLayer>,
    layernorm: LayerNorm,
    pooler: Option<(Linear, Activation)>,
    device: Device,
    dtype: DType,
}

impl ViTModel {
    /// `vb` is the model root (`vit` in head models). The heads build it without the pooler;
    /// masked image modeling with the mask token.
    pub fn new(vb: VarBuilder<'_>, cfg: &ViTConfig, add_pooling_layer: bool, use_mask_token: bool) -> Result<Self> {
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
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg, use_mask_token)?,
            layers,
            layernorm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layernorm"))?,
            pooler,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The normalised sequence output `[B, 1 + patches, hidden]`.
    pub(crate) fn sequence_output(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mask = inputs.bool_masked_pos.as_ref().map(|m| m.to_device(&self.device)).transpose()?;
        let mut x = self.embeddings.forward(&pixel_values, mask.as_ref(), inputs.interpolate_pos_encoding)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        Ok(self.layernorm.forward(&x)?)
    }
}

impl LoadModel for ViTModel {
    type Config = ViTConfig;
    const BASE_MODEL_PREFIX: &'static str = "vit";

    fn load(vb: VarBuilder<'_>, config: &ViTConfig) -> Result<Self> {
        Self::new(vb, config, true, false)
    }
}

impl PreTrainedModel for ViTModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for ViTModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let sequence = self.sequence_output(inputs)?;
        let pooled = match &self.pooler {
            Some((dense, act)) => Some(act.forward(&dense.forward(&sequence.narrow(1, 0, 1)?.squeeze(1)?)?)?),
            None => None,
        };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}
