//! [`Dinov2Encoder`]: the embeddings (patches, `[CLS]`, optional mask and register tokens, position
//! embeddings interpolated to the input size), the pre-norm blocks with layer scale and the final
//! LayerNorm, as `transformers`' `modeling_dinov2` and `modeling_dinov2_with_registers`.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::resize::{interpolate_pos_encoding, Resample};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{Activation, Error, ModelInputs, Result};
use autocandle_vit::ViTAttention;

use crate::config::Dinov2Spec;

/// `Dinov2Embeddings` (and `Dinov2WithRegistersEmbeddings`).
#[derive(Debug)]
struct Embeddings {
    /// `patch_embeddings.projection.weight` as `[hidden, channels * ph * pw]`.
    projection: Linear,
    cls_token: Tensor,
    /// `[1, hidden]`.
    mask_token: Option<Tensor>,
    /// `[1, registers, hidden]`.
    register_tokens: Option<Tensor>,
    /// `[1, 1 + positions, hidden]`.
    position_embeddings: Tensor,
    num_channels: usize,
    patch_size: (usize, usize),
    resample: Resample,
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec) -> Result<Self> {
        let cfg = &spec.config;
        let h = cfg.hidden_size;
        let (ph, pw) = cfg.patch_size.hw();
        let (gh, gw) = cfg.patch_grid();
        let proj = vb.pp("patch_embeddings.projection");
        let weight = proj.get((h, cfg.num_channels, ph, pw), "weight")?.reshape((h, cfg.num_channels * ph * pw))?;
        let bias = proj.get(h, "bias")?;
        let registers = spec.num_register_tokens;
        Ok(Self {
            projection: Linear::new(weight, Some(bias)),
            cls_token: vb.get((1, 1, h), "cls_token")?,
            mask_token: if spec.use_mask_token { Some(vb.get((1, h), "mask_token")?) } else { None },
            register_tokens: if registers > 0 { Some(vb.get((1, registers, h), "register_tokens")?) } else { None },
            position_embeddings: vb.get((1, gh * gw + 1, h), "position_embeddings")?,
            num_channels: cfg.num_channels,
            patch_size: (ph, pw),
            resample: spec.resample,
        })
    }

    /// `interpolate_pos_encoding`: the position embeddings `[1, 1 + patches, hidden]` for an
    /// image of `height x width` pixels. As `transformers`: unchanged when the number of
    /// patches is the learned one and the image is square; otherwise the learned grid (taken as
    /// square: `sqrt(positions)` a side) is resized bicubically in `f32` to the image's patch grid.
    fn position_embeddings(&self, height: usize, width: usize) -> Result<Tensor> {
        let (ph, pw) = self.patch_size;
        let (new_h, new_w) = (height / ph, width / pw);
        interpolate_pos_encoding(&self.position_embeddings, 1, (new_h, new_w), height == width, self.resample)
    }

    /// `pixel_values` `[B, C, H, W]` -> `[B, 1 + registers + patches, hidden]`.
    fn forward(&self, pixel_values: &Tensor, bool_masked_pos: Option<&Tensor>) -> Result<Tensor> {
        let (batch, channels, height, width) =
            autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
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
        let hidden = embeddings.dim(D::Minus1)?;
        if let Some(mask) = bool_masked_pos {
            let token = self.mask_token.as_ref().ok_or_else(|| {
                Error::input(
                    "`bool_masked_pos` needs a mask token, which this model has not (`use_mask_token` is false)",
                )
            })?;
            if mask.dims() != [batch, gh * gw] {
                return Err(Error::input(format!(
                    "`bool_masked_pos` must be [batch, num_patches] = [{batch}, {}], got {:?}",
                    gh * gw,
                    mask.dims()
                )));
            }
            let mask = mask.ne(0.0)?.unsqueeze(D::Minus1)?.broadcast_as(embeddings.shape())?;
            let token = token.to_dtype(embeddings.dtype())?.unsqueeze(0)?.broadcast_as(embeddings.shape())?;
            embeddings = mask.where_cond(&token, &embeddings)?;
        }
        let cls = self.cls_token.expand((batch, 1, hidden))?;
        let embeddings = Tensor::cat(&[&cls, &embeddings], 1)?;
        let embeddings = embeddings.broadcast_add(&self.position_embeddings(height, width)?)?;
        match &self.register_tokens {
            None => Ok(embeddings),
            Some(registers) => {
                let registers = registers.expand((batch, registers.dim(1)?, hidden))?;
                Ok(Tensor::cat(&[&embeddings.narrow(1, 0, 1)?, &registers, &embeddings.narrow(1, 1, gh * gw)?], 1)?)
            }
        }
    }
}

/// The feed-forward of a block: `Dinov2MLP` or `Dinov2SwiGLUFFN`.
#[derive(Debug)]
enum FeedForward {
    /// `mlp.fc1`, the activation, `mlp.fc2`.
    Mlp { fc1: Linear, fc2: Linear, activation: Activation },
    /// `mlp.weights_in` (the gate and up projections stacked, `[2 * ffn, hidden]`), SiLU
    /// gating, `mlp.weights_out`.
    SwiGlu { weights_in: Linear, weights_out: Linear, ffn: usize },
}

impl FeedForward {
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec) -> Result<Self> {
        let cfg = &spec.config;
        let (h, f) = (cfg.hidden_size, cfg.ffn_size());
        Ok(if cfg.use_swiglu_ffn {
            Self::SwiGlu {
                weights_in: linear(h, 2 * f, vb.pp("weights_in"))?,
                weights_out: linear(f, h, vb.pp("weights_out"))?,
                ffn: f,
            }
        } else {
            Self::Mlp { fc1: linear(h, f, vb.pp("fc1"))?, fc2: linear(f, h, vb.pp("fc2"))?, activation: cfg.hidden_act }
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Mlp { fc1, fc2, activation } => Ok(fc2.forward(&activation.forward(&fc1.forward(x)?)?)?),
            Self::SwiGlu { weights_in, weights_out, ffn } => {
                let both = weights_in.forward(x)?;
                let gate = both.narrow(D::Minus1, 0, *ffn)?;
                let up = both.narrow(D::Minus1, *ffn, *ffn)?;
                let gated = (autocandle_core::kernels::silu(&gate.contiguous()?)? * up)?;
                Ok(weights_out.forward(&gated)?)
            }
        }
    }
}

/// `Dinov2Layer`: pre-norm attention and feed-forward, each scaled by its layer scale
/// (`layer_scale{1,2}.lambda1`) before its residual. Drop path is the identity at inference.
#[derive(Debug)]
struct Layer {
    norm1: LayerNorm,
    attention: ViTAttention,
    layer_scale1: Tensor,
    norm2: LayerNorm,
    mlp: FeedForward,
    layer_scale2: Tensor,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec) -> Result<Self> {
        let cfg = &spec.config;
        let h = cfg.hidden_size;
        Ok(Self {
            norm1: layer_norm(h, cfg.layer_norm_eps, vb.pp("norm1"))?,
            attention: ViTAttention::load(vb.pp("attention"), h, cfg.num_attention_heads, cfg.qkv_bias)?,
            layer_scale1: vb.get(h, "layer_scale1.lambda1")?,
            norm2: layer_norm(h, cfg.layer_norm_eps, vb.pp("norm2"))?,
            mlp: FeedForward::load(vb.pp("mlp"), spec)?,
            layer_scale2: vb.get(h, "layer_scale2.lambda1")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attended = self.attention.forward(&self.norm1.forward(x)?)?.broadcast_mul(&self.layer_scale1)?;
        let x = (attended + x)?;
        let fed = self.mlp.forward(&self.norm2.forward(&x)?)?.broadcast_mul(&self.layer_scale2)?;
        Ok((fed + x)?)
    }
}

/// The DINOv2 network without a head: embeddings, blocks and the final LayerNorm (`Dinov2Model`
/// without its outputs, and the body of `Dinov2Backbone`). Weights under `vb`:
/// `embeddings.*`, `encoder.layer.N.*`, `layernorm.*`.
#[derive(Debug)]
pub struct Dinov2Encoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    layernorm: LayerNorm,
    num_register_tokens: usize,
    patch_size: (usize, usize),
    device: Device,
    dtype: DType,
}

impl Dinov2Encoder {
    /// Load from `vb` (the model root: `dinov2` in head models).
    pub fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec) -> Result<Self> {
        spec.validate()?;
        let cfg = &spec.config;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), spec))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), spec)?,
            layers,
            layernorm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layernorm"))?,
            num_register_tokens: spec.num_register_tokens,
            patch_size: cfg.patch_size.hw(),
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

    /// Register tokens after `[CLS]` in the sequence (0 for DINOv2).
    pub fn num_register_tokens(&self) -> usize {
        self.num_register_tokens
    }

    /// `(patch height, patch width)` in pixels.
    pub fn patch_size(&self) -> (usize, usize) {
        self.patch_size
    }

    /// `pixel_values` on the model's device and dtype.
    pub(crate) fn pixels(&self, pixel_values: &Tensor) -> Result<Tensor> {
        if !pixel_values.dtype().is_float() {
            return Err(Error::input(format!("`pixel_values` must hold floats, got {:?}", pixel_values.dtype())));
        }
        Ok(pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?)
    }

    /// The hidden states `[B, 1 + registers + patches, hidden]` of the stages `stages` selects
    /// (0 is the embeddings, `i` the output of block `i`), before the final LayerNorm; only the
    /// blocks up to the last selected stage run.
    pub fn stage_states(
        &self,
        pixel_values: &Tensor,
        bool_masked_pos: Option<&Tensor>,
        stages: &[usize],
    ) -> Result<Vec<Tensor>> {
        let pixels = self.pixels(pixel_values)?;
        let mask = bool_masked_pos.map(|m| m.to_device(&self.device)).transpose()?;
        let mut x = self.embeddings.forward(&pixels, mask.as_ref())?;
        let last = stages.iter().copied().max().unwrap_or(0);
        let mut out = Vec::with_capacity(stages.len());
        if stages.contains(&0) {
            out.push(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate().take(last) {
            x = layer.forward(&x)?;
            if stages.contains(&(i + 1)) {
                out.push(x.clone());
            }
        }
        Ok(out)
    }

    /// The final LayerNorm (`layernorm`).
    pub fn layernorm(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.layernorm.forward(hidden)?)
    }

    /// The normalised sequence output `[B, 1 + registers + patches, hidden]` (`last_hidden_state`).
    pub fn sequence_output(&self, pixel_values: &Tensor, bool_masked_pos: Option<&Tensor>) -> Result<Tensor> {
        let last = self.layers.len();
        let states = self.stage_states(pixel_values, bool_masked_pos, &[last])?;
        let hidden = states.into_iter().next().ok_or_else(|| Error::input("no hidden state was computed"))?;
        self.layernorm(&hidden)
    }

    /// `last_hidden_state` for `inputs` (`pixel_values`, optional `bool_masked_pos`).
    pub fn forward_inputs(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.sequence_output(inputs.pixel_values()?, inputs.bool_masked_pos.as_ref())
    }
}
