//! [`BeitModel`]: patch embeddings (`[CLS]`, optional mask token and absolute position
//! embeddings), the encoder with relative position biases and layer scale, the final
//! LayerNorm or the mean-pooling LayerNorm, as `transformers`' `modeling_beit.BeitModel`.

use autocandle_core::{AutoRegister, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::BeitConfig;
use crate::layer::{
    apply_mask_token, interpolate_positions, EncoderLayer, LayerSpec, PatchProjection, RelativePositionBias,
};

/// `BeitEmbeddings`.
#[derive(Debug)]
struct Embeddings {
    patches: PatchProjection,
    cls_token: Tensor,
    mask_token: Option<Tensor>,
    position_embeddings: Option<Tensor>,
    patch_size: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &BeitConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let (gh, gw) = cfg.patch_grid();
        let p = cfg.patch_size;
        Ok(Self {
            patches: PatchProjection::load(vb.pp("patch_embeddings"), h, cfg.num_channels, (p, p))?,
            cls_token: vb.get((1, 1, h), "cls_token")?,
            mask_token: if cfg.use_mask_token { Some(vb.get((1, 1, h), "mask_token")?) } else { None },
            position_embeddings: if cfg.use_absolute_position_embeddings {
                Some(vb.get((1, gh * gw + 1, h), "position_embeddings")?)
            } else {
                None
            },
            patch_size: p,
        })
    }

    /// `[B, C, H, W]` -> `[B, 1 + patches, hidden]`. The absolute position embeddings are
    /// resized whenever the input differs from them (BEiT ignores `interpolate_pos_encoding`
    /// here, as `transformers` does).
    fn forward(&self, pixel_values: &Tensor, bool_masked_pos: Option<&Tensor>) -> Result<Tensor> {
        let (batch, height, width) = self.patches.check(pixel_values)?;
        let mut x = self.patches.forward(pixel_values)?;
        if let Some(mask) = bool_masked_pos {
            x = apply_mask_token(&x, self.mask_token.as_ref(), mask, "BEiT (`use_mask_token` is false)")?;
        }
        let hidden = x.dim(2)?;
        let x = Tensor::cat(&[&self.cls_token.expand((batch, 1, hidden))?.to_dtype(x.dtype())?, &x], 1)?;
        match &self.position_embeddings {
            Some(pos) => {
                let grid = (height / self.patch_size, width / self.patch_size);
                Ok(x.broadcast_add(&interpolate_positions(pos, 1, grid, height == width)?)?)
            }
            None => Ok(x),
        }
    }
}

/// How [`BeitModel`] pools.
#[derive(Debug)]
enum Pooler {
    /// The mean of the patch states, then `pooler.layernorm`.
    Mean(LayerNorm),
    /// The `[CLS]` state.
    Cls,
}

/// The BEiT encoder without a head (`BeitModel`): `last_hidden_state` `[B, 1 + patches,
/// hidden]` (after the final LayerNorm, which mean-pooling models do not have) and, with the
/// pooler, `pooler_output` (the LayerNorm of the mean patch state, or the `[CLS]` state).
///
/// Images of any size of at least one patch are taken: the relative position biases and the
/// absolute position embeddings are resized to the input's patch grid.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "BeitModel")]
pub struct BeitModel {
    embeddings: Embeddings,
    shared_bias: Option<RelativePositionBias>,
    layers: Vec<EncoderLayer>,
    layernorm: Option<LayerNorm>,
    pooler: Option<Pooler>,
    patch_size: usize,
    device: Device,
    dtype: DType,
}

impl BeitModel {
    /// `vb` is the model root (`beit` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &BeitConfig, add_pooling_layer: bool) -> Result<Self> {
        cfg.validate()?;
        let window = cfg.patch_grid();
        let spec = LayerSpec {
            hidden_size: cfg.hidden_size,
            num_heads: cfg.num_attention_heads,
            intermediate_size: cfg.intermediate_size,
            activation: cfg.hidden_act,
            layer_norm_eps: cfg.layer_norm_eps,
            qkv_bias: [true, false, true],
            layer_scale: cfg.layer_scale_init_value > 0.0,
            relative_position_bias: cfg.use_relative_position_bias.then_some(window),
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("encoder.layer.{i}")), &spec))
            .collect::<Result<_>>()?;
        let shared_bias = if cfg.use_shared_relative_position_bias {
            Some(RelativePositionBias::load(vb.pp("encoder.relative_position_bias"), window, cfg.num_attention_heads)?)
        } else {
            None
        };
        let h = cfg.hidden_size;
        let layernorm =
            if cfg.use_mean_pooling { None } else { Some(layer_norm(h, cfg.layer_norm_eps, vb.pp("layernorm"))?) };
        let pooler = match (add_pooling_layer, cfg.use_mean_pooling) {
            (false, _) => None,
            (true, true) => Some(Pooler::Mean(layer_norm(h, cfg.layer_norm_eps, vb.pp("pooler.layernorm"))?)),
            (true, false) => Some(Pooler::Cls),
        };
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?,
            shared_bias,
            layers,
            layernorm,
            pooler,
            patch_size: cfg.patch_size,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Run the encoder on `inputs.pixel_values`: the states after the last layer (before the
    /// final LayerNorm), and the hidden states of the `stages` asked for (`0` the embeddings,
    /// `i` the output of layer `i`), in the order asked. Also returns the patch grid.
    pub fn encode(&self, inputs: &ModelInputs, stages: &[usize]) -> Result<(Tensor, Vec<Tensor>, (usize, usize))> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (_, height, width) = self.embeddings.patches.check(&pixel_values)?;
        let grid = (height / self.patch_size, width / self.patch_size);
        let mask = inputs.bool_masked_pos.as_ref();
        let mut x = self.embeddings.forward(&pixel_values, mask)?;
        let shared = self.shared_bias.as_ref().map(|b| b.bias(grid)).transpose()?;
        let mut kept: Vec<Option<Tensor>> = vec![None; stages.len()];
        let keep = |kept: &mut Vec<Option<Tensor>>, stage: usize, x: &Tensor| {
            for (slot, &s) in kept.iter_mut().zip(stages) {
                if s == stage {
                    *slot = Some(x.clone());
                }
            }
        };
        keep(&mut kept, 0, &x);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, shared.as_ref(), grid)?;
            keep(&mut kept, i + 1, &x);
        }
        let kept = kept.into_iter().zip(stages).map(|(t, s)| {
            t.ok_or_else(|| {
                autocandle_core::Error::config(
                    "beit",
                    format!("stage {s} asked for, but the model has {} layers", self.layers.len()),
                )
            })
        });
        Ok((x, kept.collect::<Result<_>>()?, grid))
    }

    /// The sequence output (after the final LayerNorm, if the model has one) and the pooled
    /// output, if the model has a pooler.
    pub fn sequence_and_pooled(&self, inputs: &ModelInputs) -> Result<(Tensor, Option<Tensor>)> {
        let (x, _, _) = self.encode(inputs, &[])?;
        let sequence = match &self.layernorm {
            Some(ln) => ln.forward(&x)?,
            None => x,
        };
        let pooled = match &self.pooler {
            Some(Pooler::Mean(ln)) => {
                let patches = sequence.dim(1)? - 1;
                Some(ln.forward(&sequence.narrow(1, 1, patches)?.mean(1)?)?)
            }
            Some(Pooler::Cls) => Some(sequence.narrow(1, 0, 1)?.squeeze(1)?),
            None => None,
        };
        Ok((sequence, pooled))
    }
}

impl LoadModel for BeitModel {
    type Config = BeitConfig;
    const BASE_MODEL_PREFIX: &'static str = "beit";

    fn load(vb: VarBuilder<'_>, config: &BeitConfig) -> Result<Self> {
        Self::new(vb, config, true)
    }
}

impl PreTrainedModel for BeitModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for BeitModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (sequence, pooled) = self.sequence_and_pooled(inputs)?;
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}
