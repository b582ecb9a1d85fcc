//! The vision tower of Qwen3-VL (`Qwen3VLVisionModel`): patch embedding (a Conv3d with bias, as
//! one matrix), learned position embeddings resampled bilinearly (`align_corners`) to each
//! image's grid, a 2D (height, width) rope, LayerNorm blocks with a `linear_fc1`/`linear_fc2`
//! MLP attending within each frame, the patch merger, and the DeepStack mergers on the outputs
//! of the `deepstack_visual_indexes` blocks.

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{Activation, Error, Result};
use autocandle_qwen2_vl::Grid;

/// The settings of the vision tower, from `vision_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    /// Number of blocks (`depth`).
    pub depth: usize,
    /// Width of the blocks (`hidden_size`).
    pub embed_dim: usize,
    /// Width of the MLP (`intermediate_size`).
    pub intermediate_size: usize,
    /// Width of the merged features (`out_hidden_size`: the language model's hidden size).
    pub out_dim: usize,
    /// Attention heads per block.
    pub num_heads: usize,
    /// Image channels.
    pub in_channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Side of the square of patches merged into one feature.
    pub spatial_merge_size: usize,
    /// Rows of the learned position table (a square of `num_grid_per_side`^2 used).
    pub num_position_embeddings: usize,
    /// Blocks whose outputs feed the DeepStack mergers.
    pub deepstack_visual_indexes: Vec<usize>,
    /// Activation of the MLP.
    pub hidden_act: Activation,
    /// Base of the 2D rope.
    pub rope_theta: f64,
}

impl VisionSettings {
    /// Check the sizes.
    pub fn validate(&self, owner: &str) -> Result<()> {
        let err = |msg: String| Err(Error::config(owner.to_owned(), msg));
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return err(format!(
                "vision width {} is not a multiple of `num_heads` = {}",
                self.embed_dim, self.num_heads
            ));
        }
        if !(self.embed_dim / self.num_heads).is_multiple_of(4) {
            return err(format!(
                "the vision head size {} must be a multiple of 4 (2D rope over height and width)",
                self.embed_dim / self.num_heads
            ));
        }
        if self.patch_size == 0 || self.temporal_patch_size == 0 || self.spatial_merge_size == 0 || self.depth == 0 {
            return err("`patch_size`, `temporal_patch_size`, `spatial_merge_size` and `depth` must be positive".into());
        }
        if self.num_grid_per_side() == 0 {
            return err("`num_position_embeddings` must be at least 1".into());
        }
        Ok(())
    }

    /// `int(num_position_embeddings ** 0.5)`.
    pub fn num_grid_per_side(&self) -> usize {
        let mut side = (self.num_position_embeddings as f64).sqrt() as usize;
        while side * side > self.num_position_embeddings {
            side -= 1;
        }
        while (side + 1) * (side + 1) <= self.num_position_embeddings {
            side += 1;
        }
        side
    }

    /// Values per patch row of `pixel_values`: `in_channels * temporal_patch_size * patch_size^2`.
    pub fn patch_values(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

const EPS: f64 = 1e-6;

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn load(vb: VarBuilder<'_>, dim: usize) -> Result<Self> {
        Ok(Self { weight: vb.get(dim, "weight")?, bias: vb.get(dim, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, EPS as f32)?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    norm1: LayerNorm,
    norm2: LayerNorm,
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
    num_heads: usize,
    head_dim: usize,
}

impl Block {
    fn load(vb: VarBuilder<'_>, s: &VisionSettings) -> Result<Self> {
        let dim = s.embed_dim;
        Ok(Self {
            norm1: LayerNorm::load(vb.pp("norm1"), dim)?,
            norm2: LayerNorm::load(vb.pp("norm2"), dim)?,
            qkv: linear(dim, 3 * dim, vb.pp("attn.qkv"))?,
            proj: linear(dim, dim, vb.pp("attn.proj"))?,
            fc1: linear(dim, s.intermediate_size, vb.pp("mlp.linear_fc1"))?,
            fc2: linear(s.intermediate_size, dim, vb.pp("mlp.linear_fc2"))?,
            act: s.hidden_act,
            num_heads: s.num_heads,
            head_dim: dim / s.num_heads,
        })
    }

    /// Attention of `x` `[n, dim]` within each segment `[start, end)` of `segments`.
    fn attention(&self, x: &Tensor, rope: &(Tensor, Tensor), segments: &[(usize, usize)]) -> Result<Tensor> {
        let (n, dim) = x.dims2()?;
        let (h, d) = (self.num_heads, self.head_dim);
        let qkv = self.qkv.forward(x)?.reshape((n, 3, h, d))?;
        let dtype = x.dtype();
        let part = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(1, i, 1)?.squeeze(1)?.transpose(0, 1)?.unsqueeze(0)?) };
        let rotate = |t: Tensor| -> Result<Tensor> {
            let t = t.to_dtype(DType::F32)?.contiguous()?;
            Ok(candle_nn::rotary_emb::rope(&t, &rope.0, &rope.1)?.to_dtype(dtype)?)
        };
        let q = rotate(part(0)?)?;
        let k = rotate(part(1)?)?;
        let v = part(2)?.contiguous()?;
        let scale = (d as f64).powf(-0.5);
        let mut outs = Vec::with_capacity(segments.len());
        for &(start, end) in segments {
            let len = end - start;
            let (qs, ks, vs) = (q.narrow(2, start, len)?, k.narrow(2, start, len)?, v.narrow(2, start, len)?);
            let scores = (qs.matmul(&ks.t()?)? * scale)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(dtype)?;
            outs.push(probs.matmul(&vs)?);
        }
        let out = Tensor::cat(&outs, 2)?;
        let out = out.squeeze(0)?.transpose(0, 1)?.reshape((n, dim))?;
        Ok(self.proj.forward(&out)?)
    }

    fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), segments: &[(usize, usize)]) -> Result<Tensor> {
        let x = (x + self.attention(&self.norm1.forward(x)?, rope, segments)?)?;
        let y = self.fc2.forward(&self.act.forward(&self.fc1.forward(&self.norm2.forward(&x)?)?)?)?;
        Ok((x + y)?)
    }
}

/// `Qwen3VLVisionPatchMerger`: a LayerNorm (over each patch, or over the merged square with
/// `postshuffle`), then `linear_fc1`, GELU, `linear_fc2`.
#[derive(Debug, Clone)]
struct Merger {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    postshuffle: bool,
    merged: usize,
}

impl Merger {
    fn load(vb: VarBuilder<'_>, s: &VisionSettings, postshuffle: bool) -> Result<Self> {
        let merged = s.embed_dim * s.spatial_merge_size * s.spatial_merge_size;
        Ok(Self {
            norm: LayerNorm::load(vb.pp("norm"), if postshuffle { merged } else { s.embed_dim })?,
            fc1: linear(merged, merged, vb.pp("linear_fc1"))?,
            fc2: linear(merged, s.out_dim, vb.pp("linear_fc2"))?,
            postshuffle,
            merged,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, dim) = x.dims2()?;
        let rows = n * dim / self.merged;
        let x = if self.postshuffle {
            self.norm.forward(&x.reshape((rows, self.merged))?)?
        } else {
            self.norm.forward(x)?.reshape((rows, self.merged))?
        };
        Ok(self.fc2.forward(&self.fc1.forward(&x)?.gelu_erf()?)?)
    }
}

/// What the tower gives: the merged features and the DeepStack features (one per
/// `deepstack_visual_indexes` block reached, in block order), each `[merged tokens, out_dim]`.
#[derive(Debug, Clone)]
pub struct VisionOutput {
    /// `pooler_output`: the merged features of the last block.
    pub features: Tensor,
    /// `deepstack_features`.
    pub deepstack: Vec<Tensor>,
}

/// The vision tower (`visual.*`).
#[derive(Debug, Clone)]
pub struct VisionTower {
    patch_weight: Tensor,
    patch_bias: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    merger: Merger,
    deepstack_mergers: Vec<Merger>,
    inv_freq: Tensor,
    settings: VisionSettings,
}

impl VisionTower {
    /// Load from `vb` (the `visual` module).
    pub fn load(vb: VarBuilder<'_>, s: &VisionSettings) -> Result<Self> {
        let patch_weight = vb
            .get(
                (s.embed_dim, s.in_channels, s.temporal_patch_size, s.patch_size, s.patch_size),
                "patch_embed.proj.weight",
            )?
            .reshape((s.embed_dim, s.patch_values()))?;
        let patch_bias = vb.get(s.embed_dim, "patch_embed.proj.bias")?;
        let pos_embed = vb.get((s.num_position_embeddings, s.embed_dim), "pos_embed.weight")?;
        let blocks = (0..s.depth).map(|i| Block::load(vb.pp(format!("blocks.{i}")), s)).collect::<Result<Vec<_>>>()?;
        let deepstack_mergers = (0..s.deepstack_visual_indexes.len())
            .map(|i| Merger::load(vb.pp(format!("deepstack_merger_list.{i}")), s, true))
            .collect::<Result<Vec<_>>>()?;
        let head_dim = s.embed_dim / s.num_heads;
        let spatial = head_dim / 2;
        let inv: Vec<f32> =
            (0..spatial).step_by(2).map(|i| (1.0 / s.rope_theta.powf(i as f64 / spatial as f64)) as f32).collect();
        Ok(Self {
            patch_weight,
            patch_bias,
            pos_embed,
            blocks,
            merger: Merger::load(vb.pp("merger"), s, false)?,
            deepstack_mergers,
            inv_freq: Tensor::new(inv.as_slice(), vb.device())?,
            settings: s.clone(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &VisionSettings {
        &self.settings
    }

    /// The grids of `image_grid_thw` `[images, 3]`, checked against `pixel_values`
    /// `[patches, values]`.
    pub fn grids(&self, pixel_values: &Tensor, grid_thw: &Tensor) -> Result<Vec<Grid>> {
        let s = &self.settings;
        autocandle_core::inputs::require_int(grid_thw, "image_grid_thw")?;
        let rows = match grid_thw.dims() {
            [_, 3] => grid_thw.to_dtype(DType::I64)?.to_vec2::<i64>()?,
            other => {
                return Err(Error::input(format!("`image_grid_thw` must have shape [images, 3], got {other:?}")));
            }
        };
        let m = s.spatial_merge_size as i64;
        let mut grids = Vec::with_capacity(rows.len());
        let mut total = 0usize;
        for (i, r) in rows.iter().enumerate() {
            let (t, h, w) = (r[0], r[1], r[2]);
            if t < 1 || h < m || w < m || h % m != 0 || w % m != 0 || h > 1 << 16 || w > 1 << 16 || t > 1 << 10 {
                return Err(Error::input(format!(
                    "image {i} has the grid (t, h, w) = ({t}, {h}, {w}) in `image_grid_thw`: t must be at least 1 and \
                     h and w positive multiples of `spatial_merge_size` = {m} (an image smaller than {} pixels cannot \
                     be merged)",
                    m as usize * s.patch_size
                )));
            }
            let g = (t as usize, h as usize, w as usize);
            total += g.0 * g.1 * g.2;
            grids.push(g);
        }
        let want = [total, s.patch_values()];
        if pixel_values.dims() != want {
            return Err(Error::input(format!(
                "`pixel_values` has shape {:?}, but `image_grid_thw` asks for {total} patches of {} values \
                 (channels x temporal_patch_size x patch_size^2): expected {want:?}; give the processor's output",
                pixel_values.dims(),
                s.patch_values()
            )));
        }
        Ok(grids)
    }

    /// The (row, col) of every patch, block-major over merge squares, repeated over frames.
    fn patch_positions(&self, grids: &[Grid]) -> Vec<(usize, usize, usize, usize)> {
        let m = self.settings.spatial_merge_size;
        let mut out = Vec::new();
        for &(t, h, w) in grids {
            for _ in 0..t {
                for bh in 0..h / m {
                    for bw in 0..w / m {
                        for ih in 0..m {
                            for iw in 0..m {
                                out.push((bh * m + ih, bw * m + iw, h, w));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// `get_vision_interpolation_indices_and_weights` (bilinear, `align_corners`): 4 taps per
    /// patch into the flattened position table, with their weights (float32, as `transformers`).
    fn interpolation(&self, positions: &[(usize, usize, usize, usize)]) -> (Vec<u32>, Vec<f32>) {
        let side = self.settings.num_grid_per_side();
        let axis = |index: usize, size: usize| -> ([usize; 2], [f32; 2]) {
            let src = (index as f32 * (side - 1) as f32) / (size.saturating_sub(1).max(1) as f32);
            let floor = src.floor();
            let mut taps = [0usize; 2];
            let mut weights = [0f32; 2];
            for o in 0..2 {
                let raw = floor as i64 + o as i64;
                taps[o] = raw.clamp(0, side as i64 - 1) as usize;
                let distance = (src - floor - o as f32).abs();
                weights[o] = (1.0 - distance).max(0.0);
            }
            (taps, weights)
        };
        let mut indices = Vec::with_capacity(positions.len() * 4);
        let mut weights = Vec::with_capacity(positions.len() * 4);
        for &(r, c, h, w) in positions {
            let (ht, hw) = axis(r, h);
            let (wt, ww) = axis(c, w);
            for i in 0..2 {
                for j in 0..2 {
                    indices.push((ht[i] * side + wt[j]) as u32);
                    weights.push(hw[i] * ww[j]);
                }
            }
        }
        (indices, weights)
    }

    /// The merged and DeepStack features of `pixel_values` `[patches, values]` for the images
    /// of `grids` (from [`VisionTower::grids`]), in image order.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[Grid]) -> Result<VisionOutput> {
        let s = &self.settings;
        let dtype = self.patch_weight.dtype();
        let device = pixel_values.device();
        let mut x = pixel_values.to_dtype(dtype)?.matmul(&self.patch_weight.t()?)?.broadcast_add(&self.patch_bias)?;
        let n = x.dim(0)?;
        let positions = self.patch_positions(grids);
        // Learned positions, resampled.
        let (idx, w) = self.interpolation(&positions);
        let idx = Tensor::from_vec(idx, n * 4, device)?;
        let w = Tensor::from_vec(w, (n, 4, 1), device)?.to_dtype(dtype)?;
        let pos = self.pos_embed.index_select(&idx, 0)?.reshape((n, 4, s.embed_dim))?.broadcast_mul(&w)?.sum(1)?;
        x = (x + pos)?;
        // 2D rope: cos/sin [n, head_dim / 2] = [h * inv_freq, w * inv_freq].
        let half = self.inv_freq.dim(0)?;
        let inv = self.inv_freq.reshape((1, half))?;
        let hs: Vec<f32> = positions.iter().map(|p| p.0 as f32).collect();
        let ws: Vec<f32> = positions.iter().map(|p| p.1 as f32).collect();
        let fh = Tensor::from_vec(hs, (n, 1), device)?.broadcast_mul(&inv)?;
        let fw = Tensor::from_vec(ws, (n, 1), device)?.broadcast_mul(&inv)?;
        let freqs = Tensor::cat(&[fh, fw], 1)?;
        let rope = (freqs.cos()?.contiguous()?, freqs.sin()?.contiguous()?);
        let mut segments = Vec::new();
        let mut at = 0;
        for &(t, h, w) in grids {
            for _ in 0..t {
                segments.push((at, at + h * w));
                at += h * w;
            }
        }
        let mut deepstack = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &rope, &segments)?;
            if let Some(k) = s.deepstack_visual_indexes.iter().position(|&j| j == i) {
                deepstack.push(self.deepstack_mergers[k].forward(&x)?);
            }
        }
        let features = self.merger.forward(&x)?;
        Ok(VisionOutput { features, deepstack })
    }
}
