//! The pre-norm transformer block BEiT shares with ViT and DeiT ([`EncoderLayer`]), its
//! relative position bias ([`RelativePositionBias`]) and the patch projection
//! ([`PatchProjection`]): public, so that DeiT (and data2vec-vision) build on them.

use autocandle_core::nn::{linear, linear_b, Linear};
use autocandle_core::resize::{interpolate_pos_encoding, resize_2d, Resample};
use autocandle_core::{Activation, Error, Result};
use candle_core::{Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

/// The shape of an [`EncoderLayer`]: what differs between ViT-like models.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Activation of the MLP.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Biases of the query, key and value projections (BEiT has none on the key).
    pub qkv_bias: [bool; 3],
    /// Layer scale weights `lambda_1` / `lambda_2` (BEiT with `layer_scale_init_value > 0`).
    pub layer_scale: bool,
    /// A relative position bias table of this layer, for this window (`(h, w)` in patches).
    pub relative_position_bias: Option<(usize, usize)>,
}

/// One block: `x + λ₁·attn(ln₁(x))`, then `x + λ₂·mlp(ln₂(x))`, with weights named as
/// `transformers`' legacy state dicts (`attention.attention.query`, `attention.output.dense`,
/// `intermediate.dense`, `output.dense`, `layernorm_before`, `layernorm_after`, `lambda_1`,
/// `attention.attention.relative_position_bias.relative_position_bias_table`).
#[derive(Debug)]
pub struct EncoderLayer {
    layernorm_before: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    layernorm_after: LayerNorm,
    intermediate: Linear,
    output: Linear,
    activation: Activation,
    lambda: Option<(Tensor, Tensor)>,
    relative_position_bias: Option<RelativePositionBias>,
    num_heads: usize,
    head_dim: usize,
}

impl EncoderLayer {
    /// Load the block at `vb` (`encoder.layer.N`).
    pub fn load(vb: VarBuilder<'_>, spec: &LayerSpec) -> Result<Self> {
        let (h, i) = (spec.hidden_size, spec.intermediate_size);
        let attn = vb.pp("attention.attention");
        let [qb, kb, vb_] = spec.qkv_bias;
        let lambda = if spec.layer_scale { Some((vb.get(h, "lambda_1")?, vb.get(h, "lambda_2")?)) } else { None };
        let relative_position_bias = spec
            .relative_position_bias
            .map(|window| RelativePositionBias::load(attn.pp("relative_position_bias"), window, spec.num_heads))
            .transpose()?;
        Ok(Self {
            layernorm_before: layer_norm(h, spec.layer_norm_eps, vb.pp("layernorm_before"))?,
            query: linear_b(h, h, qb, attn.pp("query"))?,
            key: linear_b(h, h, kb, attn.pp("key"))?,
            value: linear_b(h, h, vb_, attn.pp("value"))?,
            attention_output: linear(h, h, vb.pp("attention.output.dense"))?,
            layernorm_after: layer_norm(h, spec.layer_norm_eps, vb.pp("layernorm_after"))?,
            intermediate: linear(h, i, vb.pp("intermediate.dense"))?,
            output: linear(i, h, vb.pp("output.dense"))?,
            activation: spec.activation,
            lambda,
            relative_position_bias,
            num_heads: spec.num_heads,
            head_dim: h / spec.num_heads,
        })
    }

    /// `x` `[batch, seq, hidden]`; `bias` an additive attention bias broadcasting to
    /// `[batch, heads, seq, seq]` (the shared relative position bias); `window` the patch grid
    /// of this input, for the layer's own relative position bias.
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>, window: (usize, usize)) -> Result<Tensor> {
        let own = self.relative_position_bias.as_ref().map(|b| b.bias(window)).transpose()?;
        let bias = match (own, bias) {
            (Some(own), Some(shared)) => Some(own.broadcast_add(shared)?),
            (Some(own), None) => Some(own),
            (None, shared) => shared.cloned(),
        };
        let y = self.attention(&self.layernorm_before.forward(x)?, bias.as_ref())?;
        let y = match &self.lambda {
            Some((l1, _)) => y.broadcast_mul(l1)?,
            None => y,
        };
        let x = (y + x)?;
        let y = self.activation.forward(&self.intermediate.forward(&self.layernorm_after.forward(&x)?)?)?;
        let y = self.output.forward(&y)?;
        let y = match &self.lambda {
            Some((_, l2)) => y.broadcast_mul(l2)?,
            None => y,
        };
        Ok((y + x)?)
    }

    fn attention(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k, v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        let dtype = q.dtype();
        let scale = (self.head_dim as f64).powf(-0.5);
        let bias = bias.map(|b| b.to_dtype(dtype)).transpose()?;
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?;
        let probs = autocandle_core::kernels::masked_softmax(&scores, scale, bias.as_ref())?.to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        Ok(self.attention_output.forward(&context)?)
    }
}

/// `BeitRelativePositionBias`: a table of `(2h-1)(2w-1) + 3` learned biases per head (every
/// offset between two patches of the training window, then `[CLS]`-to-patch, patch-to-`[CLS]`
/// and `[CLS]`-to-`[CLS]`), resized bilinearly for other windows as `transformers` does.
#[derive(Debug)]
pub struct RelativePositionBias {
    /// `relative_position_bias_table` `[(2h-1)(2w-1) + 3, heads]`.
    table: Tensor,
    /// The training window `(h, w)` in patches.
    window: (usize, usize),
}

impl RelativePositionBias {
    /// Load `relative_position_bias_table` at `vb` for the training window `(h, w)`.
    pub fn load(vb: VarBuilder<'_>, window: (usize, usize), num_heads: usize) -> Result<Self> {
        let (h, w) = window;
        if h == 0 || w == 0 {
            return Err(Error::config("beit", "the relative position bias needs a patch grid of at least 1x1"));
        }
        let rows = (2 * h - 1) * (2 * w - 1) + 3;
        // Older checkpoints store the index buffer, which is recomputed here (`transformers`
        // ignores it too); read so that the loading report stays clean.
        if vb.contains_tensor("relative_position_index") {
            vb.get((h * w + 1, h * w + 1), "relative_position_index")?;
        }
        Ok(Self { table: vb.get((rows, num_heads), "relative_position_bias_table")?, window })
    }

    /// The bias `[1, heads, 1 + h·w, 1 + h·w]` for an input of `window = (h, w)` patches.
    ///
    /// As `transformers`' `BeitRelativePositionBias.forward`: the offset part of the table is
    /// read as a `[2w₀-1, 2h₀-1]` grid (`w₀`, `h₀` the training window) and resized bilinearly to
    /// `[2h-1, 2w-1]`, which is the identity for a square training window at its own size (and
    /// a resampling, as in `transformers`, for a non-square one).
    pub fn bias(&self, window: (usize, usize)) -> Result<Tensor> {
        let ((oh, ow), (wh, ww)) = (self.window, window);
        let (old_h, old_w, new_h, new_w) = (2 * oh - 1, 2 * ow - 1, 2 * wh - 1, 2 * ww - 1);
        let heads = self.table.dim(1)?;
        let old = old_h * old_w;
        let sub = self.table.narrow(0, 0, old)?.reshape((old_w, old_h, heads))?.permute((2, 0, 1))?;
        let sub = resize_2d(&sub, (new_h, new_w), Resample::Bilinear { align_corners: false })?
            .permute((1, 2, 0))?
            .reshape((new_h * new_w, heads))?;
        let table = Tensor::cat(&[&sub, &self.table.narrow(0, old, 3)?], 0)?;
        let len = wh * ww + 1;
        let index = relative_position_index(window);
        let index = Tensor::from_vec(index, len * len, table.device())?;
        let bias = table.index_select(&index, 0)?.reshape((len, len, heads))?.permute((2, 0, 1))?;
        Ok(bias.unsqueeze(0)?.contiguous()?)
    }
}

/// `generate_relative_position_index`: the table row of every (query, key) pair of a
/// `1 + h·w` sequence (`[CLS]` first).
fn relative_position_index((wh, ww): (usize, usize)) -> Vec<u32> {
    let rows = (2 * wh - 1) * (2 * ww - 1) + 3;
    let area = wh * ww;
    let len = area + 1;
    let mut index = vec![0u32; len * len];
    for i in 0..area {
        let (yi, xi) = (i / ww, i % ww);
        for j in 0..area {
            let (yj, xj) = (j / ww, j % ww);
            let dy = yi + wh - 1 - yj;
            let dx = xi + ww - 1 - xj;
            index[(i + 1) * len + j + 1] = (dy * (2 * ww - 1) + dx) as u32;
        }
    }
    index[..len].fill((rows - 3) as u32);
    for i in 0..len {
        index[i * len] = (rows - 2) as u32;
    }
    index[0] = (rows - 1) as u32;
    index
}

/// The patch embedding convolution (kernel = stride = patch), computed as a matrix product
/// over flattened patches: `patch_embeddings.projection`.
#[derive(Debug)]
pub struct PatchProjection {
    projection: Linear,
    num_channels: usize,
    patch: (usize, usize),
}

impl PatchProjection {
    /// Load `projection.{weight,bias}` at `vb` (`embeddings.patch_embeddings`).
    pub fn load(vb: VarBuilder<'_>, hidden: usize, num_channels: usize, patch: (usize, usize)) -> Result<Self> {
        let proj = vb.pp("projection");
        let (ph, pw) = patch;
        let weight = proj.get((hidden, num_channels, ph, pw), "weight")?.reshape((hidden, num_channels * ph * pw))?;
        Ok(Self { projection: Linear::new(weight, Some(proj.get(hidden, "bias")?)), num_channels, patch })
    }

    /// Check `pixel_values` `[B, C, H, W]`: a batch of images of the model's channels, at
    /// least one patch in each direction; returns `(batch, height, width)`.
    pub fn check(&self, pixel_values: &Tensor) -> Result<(usize, usize, usize)> {
        let (batch, _, height, width) = autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        let (ph, pw) = self.patch;
        if height < ph || width < pw {
            return Err(Error::input(format!(
                "the image ({height}x{width}) is smaller than one patch ({ph}x{pw}): resize the images with \
                 the model's AutoImageProcessor"
            )));
        }
        Ok((batch, height, width))
    }

    /// `[B, C, H, W]` -> `[B, (H / ph)·(W / pw), hidden]`; pixels past the last whole patch
    /// are dropped, as the strided convolution does.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (batch, height, width) = self.check(pixel_values)?;
        let (ph, pw) = self.patch;
        let (gh, gw) = (height / ph, width / pw);
        let c = self.num_channels;
        let x = pixel_values.narrow(2, 0, gh * ph)?.narrow(3, 0, gw * pw)?;
        let patches = x.reshape(vec![batch, c, gh, ph, gw, pw])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            batch,
            gh * gw,
            c * ph * pw,
        ))?;
        Ok(self.projection.forward(&patches)?)
    }
}

/// Replace the patch embeddings `x` `[B, N, hidden]` by `token` `[1, 1, hidden]` where
/// `bool_masked_pos` `[B, N]` is non-zero.
pub fn apply_mask_token(x: &Tensor, token: Option<&Tensor>, bool_masked_pos: &Tensor, model: &str) -> Result<Tensor> {
    let token = token.ok_or_else(|| {
        Error::input(format!("`bool_masked_pos` needs a mask token, which this {model} model does not have"))
    })?;
    let (batch, patches, _) = x.dims3()?;
    if bool_masked_pos.dims() != [batch, patches] {
        return Err(Error::input(format!(
            "`bool_masked_pos` must be [batch, num_patches] = [{batch}, {patches}], got {:?}",
            bool_masked_pos.dims()
        )));
    }
    let mask = bool_masked_pos.to_device(x.device())?.to_dtype(x.dtype())?.unsqueeze(2)?;
    let keep = (1.0 - &mask)?;
    Ok((x.broadcast_mul(&keep)? + token.broadcast_mul(&mask)?)?)
}

/// `interpolate_pos_encoding` of ViT-like embeddings: `positions` `[1, special + N₀, hidden]`
/// (the first `special` rows for the `[CLS]`-like tokens, then a square grid of `N₀` patches)
/// for an input of `grid = (h, w)` patches: unchanged when `h·w = N₀` and the image is square
/// (`square`), else the patch part resized bicubically, as `transformers` does.
pub fn interpolate_positions(positions: &Tensor, special: usize, grid: (usize, usize), square: bool) -> Result<Tensor> {
    interpolate_pos_encoding(positions, special, grid, square, Resample::Bicubic)
}

#[cfg(test)]
mod tests {
    use super::relative_position_index;

    #[test]
    fn relative_index_marks_cls_rows() {
        // A 2x2 window: 9 offsets + 3 special rows.
        let idx = relative_position_index((2, 2));
        assert_eq!(idx.len(), 25);
        assert_eq!((idx[0], idx[1], idx[5]), (11, 9, 10));
        // Token 0 to itself: offset (0, 0) is the centre of the 3x3 grid.
        assert_eq!(idx[6], 4);
        // Token (0, 0) to token (1, 1): dy = -1, dx = -1 -> (0, 0).
        assert_eq!(idx[5 + 4], 0);
    }
}
