//! The building blocks of CLIP's two towers, public because SigLIP (`autocandle-siglip`) is
//! made of the same ones (`transformers`' `modeling_siglip` copies them from `modeling_clip`):
//! the pre-norm encoder ([`Encoder`], `CLIPEncoder`), its [`Mlp`], the text embeddings
//! ([`TextEmbeddings`]) and the text tower's body ([`TextTransformer`]), the patch embedding ([`PatchEmbedding`]), the additive attention
//! masks ([`attention_bias`]) and the input and config checks.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_core::{Activation, Error, ModelInputs, Result};

/// The sizes of one transformer tower (the text or the vision encoder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSpec {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
}

impl EncoderSpec {
    /// Check the sizes; errors name `model_type`.
    pub fn validate(&self, model_type: &str) -> Result<()> {
        check_sizes(
            model_type,
            &[
                ("hidden_size", self.hidden_size),
                ("intermediate_size", self.intermediate_size),
                ("num_attention_heads", self.num_attention_heads),
            ],
        )?;
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::config(
                model_type,
                format!(
                    "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        Ok(())
    }
}

/// Check that each of `sizes` (`(field name, value)`) is at least 1; errors name `model_type`
/// and the first field that is 0.
pub fn check_sizes(model_type: &str, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|(_, value)| *value == 0) {
        Some((name, _)) => Err(Error::config(model_type, format!("`{name}` must be at least 1, got 0"))),
        None => Ok(()),
    }
}

/// `CLIPMLP`: `fc2(act(fc1(x)))`.
#[derive(Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    /// `vb` holds `fc1` and `fc2`.
    pub fn load(vb: VarBuilder<'_>, spec: &EncoderSpec) -> Result<Self> {
        Ok(Self {
            fc1: linear(spec.hidden_size, spec.intermediate_size, vb.pp("fc1"))?,
            fc2: linear(spec.intermediate_size, spec.hidden_size, vb.pp("fc2"))?,
            activation: spec.hidden_act,
        })
    }

    /// `fc2(activation(fc1(x)))`, `[batch, seq, hidden]` to the same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.activation.forward(&self.fc1.forward(x)?)?;
        Ok(self.fc2.forward(&y)?)
    }
}

/// Split `[batch, seq, heads * head_dim]` into `[batch, heads, seq, head_dim]`.
pub fn split_heads(x: &Tensor, num_heads: usize) -> Result<Tensor> {
    let (batch, seq, width) = x.dims3()?;
    Ok(x.reshape((batch, seq, num_heads, width / num_heads))?.transpose(1, 2)?.contiguous()?)
}

/// Scaled dot-product attention of `[batch, heads, seq, head_dim]` queries, keys and values,
/// with an optional additive `bias` broadcast to the scores; the softmax runs in f32.
/// Returns `[batch, q_seq, heads * head_dim]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (batch, heads, q_seq, head_dim) = q.dims4()?;
    let dtype = q.dtype();
    let scale = (head_dim as f64).powf(-0.5);
    let probs = autocandle_core::kernels::masked_softmax(&autocandle_core::kernels::matmul(q, &k.t()?)?, scale, bias)?
        .to_dtype(dtype)?;
    Ok(autocandle_core::kernels::matmul(&probs, &v.contiguous()?)?.transpose(1, 2)?.reshape((
        batch,
        q_seq,
        heads * head_dim,
    ))?)
}

/// `CLIPAttention`: multi-head self-attention (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
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

    fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let heads = |proj: &Linear| split_heads(&proj.forward(x)?, self.num_heads);
        let context = attend(&heads(&self.q_proj)?, &heads(&self.k_proj)?, &heads(&self.v_proj)?, bias)?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// `CLIPEncoderLayer`: pre-norm self-attention and MLP, each with a residual.
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

    fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let x = (self.self_attn.forward(&self.layer_norm1.forward(x)?, bias)? + x)?;
        Ok((self.mlp.forward(&self.layer_norm2.forward(&x)?)? + x)?)
    }
}

/// `CLIPEncoder`: `num_hidden_layers` encoder layers (`layers.N`).
#[derive(Debug)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// `vb` is the encoder (`text_model.encoder`, `vision_model.encoder`).
    pub fn load(vb: VarBuilder<'_>, spec: &EncoderSpec) -> Result<Self> {
        let layers = (0..spec.num_hidden_layers).map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), spec));
        Ok(Self { layers: layers.collect::<Result<_>>()? })
    }

    /// `x` `[batch, seq, hidden]`; `bias` from [`attention_bias`].
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, bias)?;
        }
        Ok(x)
    }

    /// The number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `x` and the output of each of the first `count` layers (`hidden_states[..=count]` of
    /// `output_hidden_states`); layers past `count` are not run. `count` is capped at the
    /// number of layers.
    pub fn hidden_states(&self, x: &Tensor, bias: Option<&Tensor>, count: usize) -> Result<Vec<Tensor>> {
        let mut states = vec![x.clone()];
        for layer in self.layers.iter().take(count) {
            let next = layer.forward(states.last().unwrap_or(x), bias)?;
            states.push(next);
        }
        Ok(states)
    }
}

/// The additive attention bias `[batch, 1, seq, seq]` (f32): 0 where a query may attend to a
/// key, `f32::MIN` elsewhere (`torch.finfo.min`, as `transformers`' eager masks; a query with
/// no key left then attends uniformly instead of giving NaN).
///
/// `attention_mask` `[batch, seq]` marks with non-zero the tokens to attend to; `causal` adds
/// the causal mask (`create_causal_mask`, CLIP's text tower). `None` when nothing is masked.
pub fn attention_bias(
    attention_mask: Option<&Tensor>,
    (batch, seq): (usize, usize),
    causal: bool,
    device: &Device,
) -> Result<Option<Tensor>> {
    let keep = match attention_mask {
        Some(mask) => {
            if mask.dims() != [batch, seq] {
                return Err(Error::input(format!(
                    "`attention_mask` has shape {:?} but `input_ids` has shape [{batch}, {seq}]; they must match",
                    mask.dims()
                )));
            }
            Some(mask.to_device(device)?.ne(0u32)?.reshape((batch, 1, 1, seq))?)
        }
        None => None,
    };
    let allowed = match (keep, causal) {
        (keep, true) => {
            let lower = Tensor::tril2(seq, DType::U8, device)?.reshape((1, 1, seq, seq))?;
            match keep {
                Some(keep) => keep.broadcast_mul(&lower)?,
                None => lower,
            }
        }
        (Some(keep), false) => keep.broadcast_as((batch, 1, seq, seq))?.contiguous()?,
        (None, false) => return Ok(None),
    };
    let shape = allowed.shape().clone();
    let open = Tensor::zeros(&shape, DType::F32, device)?;
    let closed = Tensor::full(f32::MIN, &shape, device)?;
    Ok(Some(allowed.where_cond(&open, &closed)?))
}

/// `input_ids` as `[batch, seq]` `u32`, after checking that they are integers in `0..vocab_size`
/// and no longer than `max_positions`.
pub fn checked_input_ids(inputs: &ModelInputs, vocab_size: usize, max_positions: usize) -> Result<Tensor> {
    let ids = inputs.input_ids()?;
    let &[batch, seq] = ids.dims() else {
        return Err(Error::input(format!("`input_ids` must have shape [batch, seq], got {:?}", ids.dims())));
    };
    if !ids.dtype().is_int() {
        return Err(Error::input(format!("`input_ids` must hold integers (u32 or i64), got {:?}", ids.dtype())));
    }
    if batch == 0 || seq == 0 {
        return Err(Error::input(format!("`input_ids` is empty (shape {:?}): give at least one token", ids.dims())));
    }
    if seq > max_positions {
        return Err(Error::SequenceTooLong { len: seq, max: max_positions });
    }
    let (min, max) = int_range(ids)?;
    for id in [min, max] {
        if usize::try_from(id).map_or(true, |i| i >= vocab_size) {
            return Err(Error::TokenIdOutOfRange { input: "input_ids", id, vocab_size });
        }
    }
    Ok(ids.to_dtype(DType::U32)?)
}

/// The smallest and the largest value of a non-empty integer tensor.
fn int_range(t: &Tensor) -> Result<(i64, i64)> {
    let scalar = |t: Tensor| -> Result<i64> { Ok(t.to_dtype(DType::I64)?.to_scalar::<i64>()?) };
    Ok((scalar(t.min_all()?)?, scalar(t.max_all()?)?))
}

/// `CLIPTextEmbeddings`: token embeddings plus learned position embeddings.
#[derive(Debug)]
pub struct TextEmbeddings {
    token_embedding: Embedding,
    /// `position_embedding.weight` `[max_positions, hidden]`.
    position_embedding: Tensor,
}

impl TextEmbeddings {
    /// `vb` is `embeddings` of the text tower.
    pub fn load(vb: VarBuilder<'_>, vocab_size: usize, max_positions: usize, hidden_size: usize) -> Result<Self> {
        Ok(Self {
            token_embedding: embedding(vocab_size, hidden_size, vb.pp("token_embedding"))?,
            position_embedding: vb.get((max_positions, hidden_size), "position_embedding.weight")?,
        })
    }

    /// `input_ids` `[batch, seq]` from [`checked_input_ids`]; `position_ids` `[batch or 1, seq]`
    /// (checked here), `None` for `0..seq`.
    pub fn forward(&self, input_ids: &Tensor, position_ids: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let max_positions = self.position_embedding.dim(0)?;
        let positions = match position_ids {
            None => self.position_embedding.narrow(0, 0, seq)?.unsqueeze(0)?,
            Some(ids) => {
                let rows = match ids.dims() {
                    &[rows, len] if len == seq && (rows == batch || rows == 1) => rows,
                    other => {
                        return Err(Error::input(format!(
                            "`position_ids` must have shape [{batch}, {seq}] or [1, {seq}], got {other:?}"
                        )))
                    }
                };
                if !ids.dtype().is_int() {
                    return Err(Error::input(format!(
                        "`position_ids` must hold integers (u32 or i64), got {:?}",
                        ids.dtype()
                    )));
                }
                let (min, max) = int_range(ids)?;
                for p in [min, max] {
                    if usize::try_from(p).map_or(true, |p| p >= max_positions) {
                        return Err(Error::input(format!(
                            "position {p} in `position_ids` is out of range: the model has {max_positions} \
                             positions (`max_position_embeddings`)"
                        )));
                    }
                }
                let flat = ids.to_device(self.position_embedding.device())?.to_dtype(DType::U32)?.flatten_all()?;
                self.position_embedding.index_select(&flat, 0)?.reshape((rows, seq, ()))?
            }
        };
        let tokens = self.token_embedding.forward(input_ids)?;
        Ok(tokens.broadcast_add(&positions)?)
    }
}

/// The body of a text tower (`CLIPTextTransformer`, `SiglipTextTransformer`, up to their
/// pooling): the [`TextEmbeddings`], the pre-norm [`Encoder`] (causal in CLIP, bidirectional in
/// SigLIP) and `final_layer_norm`.
#[derive(Debug)]
pub struct TextTransformer {
    embeddings: TextEmbeddings,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    vocab_size: usize,
    max_positions: usize,
    causal: bool,
    device: Device,
    dtype: DType,
}

impl TextTransformer {
    /// `vb` holds `embeddings`, `encoder` and `final_layer_norm` (`text_model` in a dual
    /// encoder); `causal` lets each position attend only to itself and those before it.
    pub fn load(
        vb: VarBuilder<'_>,
        spec: &EncoderSpec,
        (vocab_size, max_positions): (usize, usize),
        causal: bool,
    ) -> Result<Self> {
        let h = spec.hidden_size;
        Ok(Self {
            embeddings: TextEmbeddings::load(vb.pp("embeddings"), vocab_size, max_positions, h)?,
            encoder: Encoder::load(vb.pp("encoder"), spec)?,
            final_layer_norm: norm(vb.pp("final_layer_norm"), h, spec.layer_norm_eps)?,
            vocab_size,
            max_positions,
            causal,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// `(input_ids, last_hidden_state)` for `input_ids`, `attention_mask` and `position_ids`:
    /// the checked ids `[batch, seq]` (`u32`, on the model's device), for the pooling, and the
    /// states after `final_layer_norm` `[batch, seq, hidden]`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let ids = checked_input_ids(inputs, self.vocab_size, self.max_positions)?.to_device(&self.device)?;
        let (batch, seq) = ids.dims2()?;
        let x = self.embeddings.forward(&ids, inputs.position_ids.as_ref())?.to_dtype(self.dtype)?;
        let bias = attention_bias(inputs.attention_mask.as_ref(), (batch, seq), self.causal, &self.device)?;
        let hidden = self.final_layer_norm.forward(&self.encoder.forward(&x, bias.as_ref())?)?;
        Ok((ids, hidden))
    }
}

crate::pretrained_model!(TextTransformer);

/// The rows `positions[b]` of `hidden` `[batch, seq, width]`: `[batch, width]`.
pub fn gather_rows(hidden: &Tensor, positions: &[usize]) -> Result<Tensor> {
    let (batch, seq, width) = hidden.dims3()?;
    let index: Vec<u32> = positions.iter().enumerate().map(|(b, &p)| (b * seq + p) as u32).collect();
    let index = Tensor::from_vec(index, batch, hidden.device())?;
    Ok(hidden.reshape((batch * seq, width))?.index_select(&index, 0)?)
}

/// How strictly [`PatchEmbedding`] checks the image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSizeCheck {
    /// The image must have exactly `image_size` pixels a side (`CLIPVisionEmbeddings`).
    Exact,
    /// The image must give the model's patch grid; pixels past the last whole patch are
    /// dropped (`SiglipVisionEmbeddings`, which checks nothing itself and fails only when the
    /// number of patches differs from the position embeddings).
    SameGrid,
}

/// The patch embedding: a convolution with kernel = stride = `patch_size` (`patch_embedding`),
/// computed as a matrix product over flattened patches.
#[derive(Debug)]
pub struct PatchEmbedding {
    /// The convolution weight as `[hidden, channels * patch * patch]`, with its bias if any.
    projection: Linear,
    num_channels: usize,
    image_size: usize,
    patch_size: usize,
    check: ImageSizeCheck,
}

impl PatchEmbedding {
    /// `vb` is the convolution (`embeddings.patch_embedding`).
    pub fn load(
        vb: VarBuilder<'_>,
        (num_channels, image_size, patch_size, hidden_size): (usize, usize, usize, usize),
        bias: bool,
        check: ImageSizeCheck,
    ) -> Result<Self> {
        let p = patch_size;
        let weight =
            vb.get((hidden_size, num_channels, p, p), "weight")?.reshape((hidden_size, num_channels * p * p))?;
        let bias = if bias { Some(vb.get(hidden_size, "bias")?) } else { None };
        Ok(Self { projection: Linear::new(weight, bias), num_channels, image_size, patch_size, check })
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// `pixel_values` `[batch, channels, height, width]` -> `[batch, grid², hidden]`.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (_, _, height, width) = self.check_pixels(pixel_values)?;
        let (p, grid) = (self.patch_size, self.grid());
        let fits = match self.check {
            ImageSizeCheck::Exact => height == self.image_size && width == self.image_size,
            ImageSizeCheck::SameGrid => height / p == grid && width / p == grid,
        };
        if !fits {
            return Err(Error::input(format!(
                "input image size ({height}x{width}) doesn't match the model ({0}x{0}): resize the images \
                 with the model's AutoImageProcessor, or set `interpolate_pos_encoding` to interpolate the \
                 position embeddings",
                self.image_size
            )));
        }
        self.project(pixel_values, (grid, grid))
    }

    /// With `interpolate_pos_encoding`: `pixel_values` of any size of at least one patch ->
    /// (`[batch, gh * gw, hidden]`, `(gh, gw)`), the image's own patch grid.
    pub fn forward_any_size(&self, pixel_values: &Tensor) -> Result<(Tensor, (usize, usize))> {
        let (_, _, height, width) = self.check_pixels(pixel_values)?;
        let p = self.patch_size;
        let grid = (height / p, width / p);
        if grid.0 == 0 || grid.1 == 0 {
            return Err(Error::input(format!(
                "the image ({height}x{width}) is smaller than one patch ({p}x{p}): resize the images with the \
                 model's AutoImageProcessor"
            )));
        }
        Ok((self.project(pixel_values, grid)?, grid))
    }

    /// The shape checks that do not depend on the image size.
    fn check_pixels(&self, pixel_values: &Tensor) -> Result<(usize, usize, usize, usize)> {
        let (batch, channels, height, width) = pixel_values.dims4().map_err(|_| {
            Error::input(format!(
                "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
                pixel_values.dims()
            ))
        })?;
        if batch == 0 {
            return Err(Error::input("`pixel_values` holds no images (batch of 0)"));
        }
        if !pixel_values.dtype().is_float() {
            return Err(Error::input(format!("`pixel_values` must hold floats, got {:?}", pixel_values.dtype())));
        }
        if channels != self.num_channels {
            return Err(Error::input(format!(
                "the pixel values have {channels} channels but the model takes {} (`num_channels`): \
                 convert the images to RGB or preprocess them with the model's AutoImageProcessor",
                self.num_channels
            )));
        }
        Ok((batch, channels, height, width))
    }

    /// The patches of a `(gh, gw)` grid (pixels past the last whole patch dropped), projected.
    fn project(&self, pixel_values: &Tensor, (gh, gw): (usize, usize)) -> Result<Tensor> {
        let (batch, channels, _, _) = pixel_values.dims4()?;
        let p = self.patch_size;
        let x = pixel_values.narrow(2, 0, gh * p)?.narrow(3, 0, gw * p)?;
        let patches = x.reshape(vec![batch, channels, gh, p, gw, p])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            batch,
            gh * gw,
            channels * p * p,
        ))?;
        Ok(self.projection.forward(&patches)?)
    }
}

/// `pixel_values` of `inputs` on `device` in `dtype`.
pub fn pixel_values(inputs: &ModelInputs, device: &Device, dtype: DType) -> Result<Tensor> {
    let pixels = inputs.pixel_values()?;
    if !pixels.dtype().is_float() {
        return Err(Error::input(format!("`pixel_values` must hold floats, got {:?}", pixels.dtype())));
    }
    Ok(pixels.to_device(device)?.to_dtype(dtype)?)
}

/// `x / ||x||` along the last dimension.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?)
}

/// The contrastive logits of normalised embeddings: `logits_per_text` `[texts, images]` =
/// `exp(logit_scale) * text_embeds · image_embedsᵀ (+ logit_bias)`, and its transpose
/// `logits_per_image`. Returns `(logits_per_image, logits_per_text)`.
pub fn contrastive_logits(
    text_embeds: &Tensor,
    image_embeds: &Tensor,
    logit_scale: &Tensor,
    logit_bias: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let scale = logit_scale.exp()?.reshape((1, 1))?;
    let mut per_text = text_embeds.matmul(&image_embeds.t()?)?.broadcast_mul(&scale)?;
    if let Some(bias) = logit_bias {
        per_text = per_text.broadcast_add(&bias.reshape((1, 1))?)?;
    }
    Ok((per_text.t()?.contiguous()?, per_text))
}

/// A `LayerNorm` over `hidden_size` at `vb`.
pub fn norm(vb: VarBuilder<'_>, hidden_size: usize, eps: f64) -> Result<LayerNorm> {
    Ok(layer_norm(hidden_size, eps, vb)?)
}
