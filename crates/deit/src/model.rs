//! [`DeiTModel`]: ViT's encoder with a distillation token beside `[CLS]`, as `transformers`'
//! `modeling_deit.DeiTModel`. The blocks are BEiT's [`EncoderLayer`] without layer scale or
//! relative position bias, which is ViT's block.

use autocandle_beit::{apply_mask_token, interpolate_positions, EncoderLayer, LayerSpec, PatchProjection};
use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::DeiTConfig;

/// `DeiTEmbeddings`: patch projection, `[CLS]` and distillation tokens, optional mask token,
/// position embeddings for `2 + patches` positions.
#[derive(Debug)]
struct Embeddings {
    patches: PatchProjection,
    cls_token: Tensor,
    distillation_token: Tensor,
    mask_token: Option<Tensor>,
    position_embeddings: Tensor,
    image_size: (usize, usize),
    patch_size: (usize, usize),
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &DeiTConfig, use_mask_token: bool) -> Result<Self> {
        let h = cfg.hidden_size;
        let (gh, gw) = cfg.patch_grid();
        let patch_size = cfg.patch_size.hw();
        Ok(Self {
            patches: PatchProjection::load(vb.pp("patch_embeddings"), h, cfg.num_channels, patch_size)?,
            cls_token: vb.get((1, 1, h), "cls_token")?,
            distillation_token: vb.get((1, 1, h), "distillation_token")?,
            mask_token: if use_mask_token { Some(vb.get((1, 1, h), "mask_token")?) } else { None },
            position_embeddings: vb.get((1, gh * gw + 2, h), "position_embeddings")?,
            image_size: cfg.image_size.hw(),
            patch_size,
        })
    }

    fn forward(&self, pixel_values: &Tensor, bool_masked_pos: Option<&Tensor>, interpolate: bool) -> Result<Tensor> {
        let (batch, height, width) = self.patches.check(pixel_values)?;
        if !interpolate && (height, width) != self.image_size {
            return Err(Error::input(format!(
                "input image size ({height}x{width}) doesn't match the model ({}x{}): resize the images with the \
                 model's AutoImageProcessor, or set `interpolate_pos_encoding`",
                self.image_size.0, self.image_size.1
            )));
        }
        let mut x = self.patches.forward(pixel_values)?;
        if let Some(mask) = bool_masked_pos {
            x = apply_mask_token(&x, self.mask_token.as_ref(), mask, "DeiT (only DeiTForMaskedImageModeling has one)")?;
        }
        let hidden = x.dim(2)?;
        let dtype = x.dtype();
        let cls = self.cls_token.expand((batch, 1, hidden))?.to_dtype(dtype)?;
        let dist = self.distillation_token.expand((batch, 1, hidden))?.to_dtype(dtype)?;
        let x = Tensor::cat(&[&cls, &dist, &x], 1)?;
        let positions = if interpolate {
            let grid = (height / self.patch_size.0, width / self.patch_size.1);
            interpolate_positions(&self.position_embeddings, 2, grid, height == width)?
        } else {
            self.position_embeddings.clone()
        };
        Ok(x.broadcast_add(&positions)?)
    }
}

/// The DeiT encoder without a head (`DeiTModel`): `last_hidden_state` `[B, 2 + patches,
/// hidden]` (`[CLS]`, distillation token, patches) and, with the pooler, `pooler_output`
/// (activation of a dense layer on the `[CLS]` state).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "DeiTModel")]
pub struct DeiTModel {
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    layernorm: LayerNorm,
    pooler: Option<(Linear, Activation)>,
    grid: (usize, usize),
    device: Device,
    dtype: DType,
}

impl DeiTModel {
    /// `vb` is the model root (`deit` in head models). The heads build it without the pooler;
    /// masked image modeling with the mask token.
    pub fn new(vb: VarBuilder<'_>, cfg: &DeiTConfig, add_pooling_layer: bool, use_mask_token: bool) -> Result<Self> {
        cfg.validate()?;
        let q = cfg.qkv_bias;
        let spec = LayerSpec {
            hidden_size: cfg.hidden_size,
            num_heads: cfg.num_attention_heads,
            intermediate_size: cfg.intermediate_size,
            activation: cfg.hidden_act,
            layer_norm_eps: cfg.layer_norm_eps,
            qkv_bias: [q, q, q],
            layer_scale: false,
            relative_position_bias: None,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("encoder.layer.{i}")), &spec))
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
            grid: cfg.patch_grid(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The normalised sequence output `[B, 2 + patches, hidden]` and the input's patch grid.
    pub fn sequence_output(&self, inputs: &ModelInputs) -> Result<(Tensor, (usize, usize))> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (_, height, width) = self.embeddings.patches.check(&pixel_values)?;
        let (ph, pw) = self.embeddings.patch_size;
        let grid = (height / ph, width / pw);
        let mut x =
            self.embeddings.forward(&pixel_values, inputs.bool_masked_pos.as_ref(), inputs.interpolate_pos_encoding)?;
        for layer in &self.layers {
            x = layer.forward(&x, None, grid)?;
        }
        Ok((self.layernorm.forward(&x)?, grid))
    }

    /// The patch grid of the config's `image_size`.
    pub fn patch_grid(&self) -> (usize, usize) {
        self.grid
    }
}

impl LoadModel for DeiTModel {
    type Config = DeiTConfig;
    const BASE_MODEL_PREFIX: &'static str = "deit";

    fn load(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Self> {
        Self::new(vb, config, true, false)
    }
}

impl PreTrainedModel for DeiTModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for DeiTModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (sequence, _) = self.sequence_output(inputs)?;
        let pooled = match &self.pooler {
            Some((dense, act)) => Some(act.forward(&dense.forward(&sequence.narrow(1, 0, 1)?.squeeze(1)?)?)?),
            None => None,
        };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}
