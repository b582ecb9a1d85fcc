//! Idefics3's vision transformer (`Idefics3VisionTransformer`): SigLIP's encoder over
//! images of any size up to `image_size`, with a patch mask and bucketized position ids
//! (NaViT's "Patch n' Pack"), and the connector (`Idefics3Connector`: pixel shuffle, then a
//! linear projection without bias).

use autocandle_clip::layers::{attend, attention_bias, split_heads, EncoderSpec, Mlp};
use autocandle_core::nn::{linear, linear_no_bias, Linear};
use autocandle_core::{AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{conv2d, layer_norm, Conv2d, Conv2dConfig, LayerNorm, VarBuilder};

use crate::config::Idefics3VisionConfig;

impl LoadModel for Idefics3VisionTransformer {
    type Config = Idefics3VisionConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Idefics3VisionConfig) -> Result<Self> {
        config.validate("idefics3_vision")?;
        Self::load(vb, config)
    }
}

impl Model for Idefics3VisionTransformer {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let pixel_values = inputs
            .pixel_values
            .as_ref()
            .ok_or_else(|| Error::input("the vision transformer needs `pixel_values`".to_owned()))?;
        Ok(BaseModelOutput::new(self.forward_pixels(pixel_values)?, None))
    }
}

impl PreTrainedModel for Idefics3VisionTransformer {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

/// `Idefics3VisionAttention`: multi-head self-attention (`q_proj`, `k_proj`, `v_proj`,
/// `out_proj`).
#[derive(Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, spec: &EncoderSpec) -> Result<Self> {
        let h = spec.hidden_size;
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            num_heads: spec.num_attention_heads,
        })
    }

    /// `bias` masks padded patches as keys; `attended` `[images, 1, 1]` is 0 for an image with
    /// no real patch, whose queries attend to nothing: their context is 0, as PyTorch's SDPA
    /// (the default attention of `transformers`) gives for a query with every key masked.
    fn forward(&self, x: &Tensor, bias: Option<&Tensor>, attended: Option<&Tensor>) -> Result<Tensor> {
        let heads = |proj: &Linear| split_heads(&proj.forward(x)?, self.num_heads);
        let mut context = attend(&heads(&self.q_proj)?, &heads(&self.k_proj)?, &heads(&self.v_proj)?, bias)?;
        if let Some(attended) = attended {
            context = context.broadcast_mul(attended)?;
        }
        Ok(self.out_proj.forward(&context)?)
    }
}

/// `Idefics3EncoderLayer`: pre-norm self-attention and MLP, each with a residual.
#[derive(Debug)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn load(vb: VarBuilder<'_>, spec: &EncoderSpec) -> Result<Self> {
        let (h, eps) = (spec.hidden_size, spec.layer_norm_eps);
        Ok(Self {
            layer_norm1: layer_norm(h, eps, vb.pp("layer_norm1"))?,
            self_attn: Attention::load(vb.pp("self_attn"), spec)?,
            layer_norm2: layer_norm(h, eps, vb.pp("layer_norm2"))?,
            mlp: Mlp::load(vb.pp("mlp"), spec)?,
        })
    }

    fn forward(&self, x: &Tensor, bias: Option<&Tensor>, attended: Option<&Tensor>) -> Result<Tensor> {
        let x = (self.self_attn.forward(&self.layer_norm1.forward(x)?, bias, attended)? + x)?;
        Ok((self.mlp.forward(&self.layer_norm2.forward(&x)?)? + x)?)
    }
}

/// The vision transformer: `embeddings` (`patch_embedding`, a convolution with stride
/// `patch_size`, and `position_embedding` `[(image_size / patch_size)^2, hidden]`), the
/// pre-norm `encoder` (bidirectional, padded patches masked as keys) and
/// `post_layernorm`.
///
/// Registered as the base model of `idefics3_vision` (a saved `Idefics3VisionTransformer`):
/// `pixel_values` `[batch, channels, height, width]`, every patch real; `last_hidden_state`
/// `[batch, patches, hidden]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Idefics3VisionTransformer")]
pub struct Idefics3VisionTransformer {
    patch_embedding: Conv2d,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    patch_size: usize,
    num_patches_per_side: usize,
    num_channels: usize,
    device: Device,
    dtype: DType,
}

impl Idefics3VisionTransformer {
    /// `vb` holds `embeddings`, `encoder` and `post_layernorm` (`model.vision_model`).
    pub fn load(vb: VarBuilder<'_>, config: &Idefics3VisionConfig) -> Result<Self> {
        let h = config.hidden_size;
        let side = config.num_patches_per_side();
        let conv = Conv2dConfig { stride: config.patch_size, ..Default::default() };
        let emb = vb.pp("embeddings");
        Ok(Self {
            patch_embedding: conv2d(config.num_channels, h, config.patch_size, conv, emb.pp("patch_embedding"))?,
            position_embedding: emb.get((side * side, h), "position_embedding.weight")?,
            layers: (0..config.num_hidden_layers)
                .map(|i| EncoderLayer::load(vb.pp(format!("encoder.layers.{i}")), &config.encoder_spec()))
                .collect::<Result<_>>()?,
            post_layernorm: layer_norm(h, config.layer_norm_eps, vb.pp("post_layernorm"))?,
            patch_size: config.patch_size,
            num_patches_per_side: side,
            num_channels: config.num_channels,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The last hidden state `[batch, patches, hidden]` of `pixel_values` `[batch, channels,
    /// height, width]` with every patch real (`patch_attention_mask=None`), after checking
    /// the shape.
    pub fn forward_pixels(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let &[batch, channels, height, width] = pixel_values.dims() else {
            return Err(Error::input(format!(
                "`pixel_values` must have shape [batch, channels, height, width], got {:?}",
                pixel_values.dims()
            )));
        };
        let p = self.patch_size;
        if channels != self.num_channels || height < p || width < p || !pixel_values.dtype().is_float() {
            return Err(Error::input(format!(
                "`pixel_values` {:?} ({:?}): the model takes {} channels of float pixels, at least {p}x{p} \
                 (`patch_size`)",
                pixel_values.dims(),
                pixel_values.dtype(),
                self.num_channels
            )));
        }
        let mask = vec![true; batch * (height / p) * (width / p)];
        self.forward(&pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?, &mask)
    }

    /// Side of the square patches, in pixels.
    pub fn patch_size(&self) -> usize {
        self.patch_size
    }

    /// Channels of the input images.
    pub fn num_channels(&self) -> usize {
        self.num_channels
    }

    /// The position id of every patch of a `[rows, cols]` grid whose real patches
    /// `patch_mask` marks (row-major): the fractional coordinates of each real patch within
    /// the real part of the image, bucketized into the `image_size / patch_size` grid the
    /// position table was trained on; padded patches get position 0. As `transformers`
    /// computes it, in f32.
    pub fn position_ids(&self, patch_mask: &[bool], rows: usize, cols: usize) -> Vec<u32> {
        let n = self.num_patches_per_side;
        // `torch.arange(1 / n, 1.0, 1 / n)` in f32 (its length and values computed in f64).
        let step = 1.0 / n as f64;
        let len = ((1.0 - step) / step).ceil().max(0.0) as usize;
        let boundaries: Vec<f32> = (0..len).map(|i| (step + step * i as f64) as f32).collect();
        let nb_rows = (0..rows).filter(|&r| patch_mask[r * cols]).count();
        let nb_cols = (0..cols).filter(|&c| patch_mask[c]).count();
        let bucket = |index: usize, count: usize| -> u32 {
            let step = 1.0f32 / count as f32;
            let frac = (index as f32 * step).min(1.0f32 - 1e-6);
            boundaries.iter().filter(|&&b| b <= frac).count() as u32
        };
        let mut ids = vec![0u32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                if patch_mask[r * cols + c] {
                    ids[r * cols + c] = bucket(r, nb_rows) * n as u32 + bucket(c, nb_cols);
                }
            }
        }
        ids
    }

    /// The last hidden state `[images, rows * cols, hidden]` of `pixel_values`
    /// `[images, channels, height, width]` whose real patches `patch_mask` marks
    /// (`images * rows * cols` flags, `rows = height / patch_size`, `cols = width / patch_size`).
    pub fn forward(&self, pixel_values: &Tensor, patch_mask: &[bool]) -> Result<Tensor> {
        let (images, _, height, width) = pixel_values.dims4()?;
        let (rows, cols) = (height / self.patch_size, width / self.patch_size);
        let per_image = rows * cols;
        if patch_mask.len() != images * per_image {
            return Err(Error::input(format!(
                "the patch mask has {} entries; expected {images} x {rows} x {cols}",
                patch_mask.len()
            )));
        }
        let device = pixel_values.device();
        let embeds = self.patch_embedding.forward(pixel_values)?.flatten_from(2)?.transpose(1, 2)?;
        let ids: Vec<u32> =
            patch_mask.chunks(per_image.max(1)).flat_map(|mask| self.position_ids(mask, rows, cols)).collect();
        let ids = Tensor::from_vec(ids, images * per_image, device)?;
        let positions = self.position_embedding.index_select(&ids, 0)?.reshape((images, per_image, ()))?;
        let hidden = (embeds + positions)?;
        let (bias, attended) = if patch_mask.iter().all(|&m| m) {
            (None, None)
        } else {
            let keep: Vec<u8> = patch_mask.iter().map(|&m| u8::from(m)).collect();
            let keep = Tensor::from_vec(keep, (images, per_image), device)?;
            let bias = attention_bias(Some(&keep), (images, per_image), false, device)?;
            let attended: Vec<f32> =
                patch_mask.chunks(per_image.max(1)).map(|m| if m.iter().any(|&r| r) { 1.0 } else { 0.0 }).collect();
            let attended = attended
                .contains(&0.0)
                .then(|| Tensor::from_vec(attended, (images, 1, 1), device)?.to_dtype(hidden.dtype()))
                .transpose()?;
            (bias.map(|b| b.to_dtype(DType::F32)).transpose()?, attended)
        };
        let mut hidden = hidden;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, bias.as_ref(), attended.as_ref())?;
        }
        Ok(self.post_layernorm.forward(&hidden)?)
    }
}

/// The connector (`Idefics3Connector`): pixel shuffle by `scale_factor` (`scale_factor^2`
/// neighbouring patches concatenated into one token), then `modality_projection.proj`
/// (`vision_hidden * scale_factor^2 -> text_hidden`, no bias).
#[derive(Debug)]
pub struct Idefics3Connector {
    proj: Linear,
    scale_factor: usize,
    text_hidden: usize,
}

impl Idefics3Connector {
    /// `vb` is `connector`.
    pub fn load(vb: VarBuilder<'_>, vision_hidden: usize, scale_factor: usize, text_hidden: usize) -> Result<Self> {
        let proj = linear_no_bias(
            vision_hidden * scale_factor * scale_factor,
            text_hidden,
            vb.pp("modality_projection.proj"),
        )?;
        Ok(Self { proj, scale_factor, text_hidden })
    }

    /// The pixel shuffle's factor.
    pub fn scale_factor(&self) -> usize {
        self.scale_factor
    }

    /// Width of the features: the text model's hidden size.
    pub fn out_features(&self) -> usize {
        self.text_hidden
    }

    /// `transformers`' `pixel_shuffle`: `[images, seq, hidden]` (a square grid of patches
    /// whose side `scale_factor` divides) to `[images, seq / s^2, hidden * s^2]`.
    pub fn pixel_shuffle(&self, x: &Tensor) -> Result<Tensor> {
        let (images, seq, hidden) = x.dims3()?;
        let s = self.scale_factor;
        let side = (seq as f64).sqrt() as usize;
        if side * side != seq || !side.is_multiple_of(s) {
            return Err(Error::input(format!(
                "the pixel shuffle of Idefics3's connector needs a square grid of patches whose side is a multiple \
                 of `scale_factor` ({s}); the images give {seq} patches: give square images (tiles) whose side, \
                 in patches, is a multiple of {s}, as the model's image processor makes them"
            )));
        }
        let x = x.reshape((images, side, side / s, hidden * s))?.transpose(1, 2)?.contiguous()?;
        let x = x.reshape((images, side / s, side / s, hidden * s * s))?.transpose(1, 2)?.contiguous()?;
        Ok(x.reshape((images, seq / (s * s), hidden * s * s))?)
    }

    /// The image features `[images, seq / s^2, text_hidden]` of vision states `[images, seq, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.proj.forward(&self.pixel_shuffle(x)?)?)
    }
}
