//! The vision tower of Qwen2-VL (`Qwen2VisionTransformerPretrainedModel`) and of Qwen2.5-VL
//! (`Qwen2_5_VisionTransformerPretrainedModel`): patch embedding, 2D rope, blocks with
//! per-image (Qwen2.5-VL: per-window) attention, and the patch merger.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::nn::{linear, linear_b, Linear};
use autocandle_core::{Activation, Error, Result};

/// What tells the two vision towers apart.
#[derive(Debug, Clone, PartialEq)]
pub enum VisionKind {
    /// Qwen2-VL: LayerNorm blocks with a `fc1`/`fc2` MLP of `mlp_hidden` units, a LayerNorm
    /// in the merger, attention over each image (each frame) at once.
    Qwen2 {
        /// `int(embed_dim * mlp_ratio)`.
        mlp_hidden: usize,
    },
    /// Qwen2.5-VL: RMSNorm blocks with a gated MLP (`gate_proj`, `up_proj`, `down_proj`, with
    /// biases), an RMSNorm in the merger, and window attention except in
    /// `fullatt_block_indexes`.
    Qwen25 {
        /// Width of the gated MLP.
        intermediate_size: usize,
        /// Window side in pixels (`window_size`).
        window_size: usize,
        /// Blocks that attend over the whole image.
        fullatt_block_indexes: Vec<usize>,
    },
}

/// The settings of a vision tower, from its `vision_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    /// Number of blocks (`depth`).
    pub depth: usize,
    /// Width of the blocks (`embed_dim` in Qwen2-VL, `hidden_size` in Qwen2.5-VL).
    pub embed_dim: usize,
    /// Width of the merged features: the language model's hidden size (`hidden_size` in
    /// Qwen2-VL, `out_hidden_size` in Qwen2.5-VL).
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
    /// Activation of the MLP.
    pub hidden_act: Activation,
    /// Base of the 2D rope (`vision_config.rope_parameters.rope_theta`).
    pub rope_theta: f64,
    /// Qwen2-VL or Qwen2.5-VL blocks.
    pub kind: VisionKind,
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
        if let VisionKind::Qwen25 { window_size, .. } = &self.kind {
            if *window_size < self.spatial_merge_size * self.patch_size {
                return err(format!(
                    "`window_size` {window_size} is smaller than one merged patch ({} pixels)",
                    self.spatial_merge_size * self.patch_size
                ));
            }
        }
        Ok(())
    }

    /// Values per patch row of `pixel_values`: `in_channels * temporal_patch_size * patch_size^2`.
    pub fn patch_values(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

#[derive(Debug, Clone)]
enum Norm {
    Layer { weight: Tensor, bias: Tensor },
    Rms { weight: Tensor },
}

impl Norm {
    fn load(vb: VarBuilder<'_>, dim: usize, rms: bool) -> Result<Self> {
        let weight = vb.get(dim, "weight")?;
        Ok(if rms { Self::Rms { weight } } else { Self::Layer { weight, bias: vb.get(dim, "bias")? } })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const EPS: f32 = 1e-6;
        Ok(match self {
            Self::Layer { weight, bias } => candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, EPS)?,
            Self::Rms { weight } => {
                let dtype = x.dtype();
                let x32 = x.to_dtype(DType::F32)?;
                let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
                let normed = x32.broadcast_div(&(var + f64::from(EPS))?.sqrt()?)?.to_dtype(dtype)?;
                normed.broadcast_mul(weight)?
            }
        })
    }
}

#[derive(Debug, Clone)]
enum Mlp {
    Plain { fc1: Linear, fc2: Linear },
    Gated { gate: Linear, up: Linear, down: Linear },
}

#[derive(Debug, Clone)]
struct Block {
    norm1: Norm,
    norm2: Norm,
    qkv: Linear,
    proj: Linear,
    mlp: Mlp,
    act: Activation,
    num_heads: usize,
    head_dim: usize,
}

impl Block {
    fn load(vb: VarBuilder<'_>, s: &VisionSettings) -> Result<Self> {
        let dim = s.embed_dim;
        let rms = matches!(s.kind, VisionKind::Qwen25 { .. });
        let mlp = match &s.kind {
            VisionKind::Qwen2 { mlp_hidden } => Mlp::Plain {
                fc1: linear(dim, *mlp_hidden, vb.pp("mlp.fc1"))?,
                fc2: linear(*mlp_hidden, dim, vb.pp("mlp.fc2"))?,
            },
            VisionKind::Qwen25 { intermediate_size, .. } => Mlp::Gated {
                gate: linear_b(dim, *intermediate_size, true, vb.pp("mlp.gate_proj"))?,
                up: linear_b(dim, *intermediate_size, true, vb.pp("mlp.up_proj"))?,
                down: linear_b(*intermediate_size, dim, true, vb.pp("mlp.down_proj"))?,
            },
        };
        Ok(Self {
            norm1: Norm::load(vb.pp("norm1"), dim, rms)?,
            norm2: Norm::load(vb.pp("norm2"), dim, rms)?,
            qkv: linear(dim, 3 * dim, vb.pp("attn.qkv"))?,
            proj: linear(dim, dim, vb.pp("attn.proj"))?,
            mlp,
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
        // [1, heads, n, d]; the rotation in f32 as `apply_rotary_pos_emb_vision`.
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
        let out = Tensor::cat(&outs, 2)?; // [1, h, n, d]
        let out = out.squeeze(0)?.transpose(0, 1)?.reshape((n, dim))?;
        Ok(self.proj.forward(&out)?)
    }

    fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), segments: &[(usize, usize)]) -> Result<Tensor> {
        let x = (x + self.attention(&self.norm1.forward(x)?, rope, segments)?)?;
        let y = self.norm2.forward(&x)?;
        let y = match &self.mlp {
            Mlp::Plain { fc1, fc2 } => fc2.forward(&self.act.forward(&fc1.forward(&y)?)?)?,
            Mlp::Gated { gate, up, down } => {
                down.forward(&(self.act.forward(&gate.forward(&y)?)? * up.forward(&y)?)?)?
            }
        };
        Ok((x + y)?)
    }
}

/// One image's grid `(t, h, w)` in patches, checked.
pub type Grid = (usize, usize, usize);

/// The vision tower: `patch_embed`, `blocks.N`, `merger` (weight names as under `visual.`).
#[derive(Debug, Clone)]
pub struct VisionTower {
    patch_embed: Tensor,
    blocks: Vec<Block>,
    ln_q: Norm,
    merger_fc1: Linear,
    merger_fc2: Linear,
    inv_freq: Tensor,
    settings: VisionSettings,
}

impl VisionTower {
    /// Load from `vb` (the `visual` module).
    pub fn load(vb: VarBuilder<'_>, s: &VisionSettings) -> Result<Self> {
        let patch_embed = vb
            .get(
                (s.embed_dim, s.in_channels, s.temporal_patch_size, s.patch_size, s.patch_size),
                "patch_embed.proj.weight",
            )?
            .reshape((s.embed_dim, s.patch_values()))?;
        let blocks = (0..s.depth).map(|i| Block::load(vb.pp(format!("blocks.{i}")), s)).collect::<Result<Vec<_>>>()?;
        let merged = s.embed_dim * s.spatial_merge_size * s.spatial_merge_size;
        let rms = matches!(s.kind, VisionKind::Qwen25 { .. });
        let head_dim = s.embed_dim / s.num_heads;
        let spatial = head_dim / 2;
        let inv: Vec<f32> =
            (0..spatial).step_by(2).map(|i| (1.0 / s.rope_theta.powf(i as f64 / spatial as f64)) as f32).collect();
        Ok(Self {
            patch_embed,
            blocks,
            ln_q: Norm::load(vb.pp("merger.ln_q"), s.embed_dim, rms)?,
            merger_fc1: linear(merged, merged, vb.pp("merger.mlp.0"))?,
            merger_fc2: linear(merged, s.out_dim, vb.pp("merger.mlp.2"))?,
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

    /// `cu_seqlens` as segments: each frame of each image.
    fn frame_segments(&self, grids: &[Grid]) -> Vec<(usize, usize)> {
        let mut segs = Vec::new();
        let mut at = 0;
        for &(t, h, w) in grids {
            for _ in 0..t {
                segs.push((at, at + h * w));
                at += h * w;
            }
        }
        segs
    }

    /// The (h, w) rope positions of every patch, block-major over merge squares.
    fn rope_positions(&self, grids: &[Grid]) -> (Vec<f32>, Vec<f32>) {
        let m = self.settings.spatial_merge_size;
        let (mut hs, mut ws) = (Vec::new(), Vec::new());
        for &(t, h, w) in grids {
            for _ in 0..t {
                for bh in 0..h / m {
                    for bw in 0..w / m {
                        for ih in 0..m {
                            for iw in 0..m {
                                hs.push((bh * m + ih) as f32);
                                ws.push((bw * m + iw) as f32);
                            }
                        }
                    }
                }
            }
        }
        (hs, ws)
    }

    /// Qwen2.5-VL's `get_vision_window_index`: the order of merge units by window, and the
    /// windows as segments of patches in that order.
    fn window_index(&self, grids: &[Grid], window_size: usize) -> (Vec<usize>, Vec<(usize, usize)>) {
        let s = &self.settings;
        let m = s.spatial_merge_size;
        let unit = m * m;
        let win = (window_size / m / s.patch_size).max(1);
        let mut index = Vec::new();
        let mut segs = Vec::new();
        let mut offset = 0;
        let mut at = 0;
        for &(t, h, w) in grids {
            let (lh, lw) = (h / m, w / m);
            let (nh, nw) = (lh.div_ceil(win), lw.div_ceil(win));
            for ti in 0..t {
                for wh in 0..nh {
                    for ww in 0..nw {
                        let mut count = 0;
                        for ih in wh * win..((wh + 1) * win).min(lh) {
                            for iw in ww * win..((ww + 1) * win).min(lw) {
                                index.push(offset + ti * lh * lw + ih * lw + iw);
                                count += 1;
                            }
                        }
                        if count > 0 {
                            segs.push((at, at + count * unit));
                            at += count * unit;
                        }
                    }
                }
            }
            offset += t * lh * lw;
        }
        (index, segs)
    }

    /// The merged features `[sum(t*h*w) / merge^2, out_dim]` of `pixel_values`
    /// `[patches, values]` for the images of `grids` (from [`VisionTower::grids`]), in image order.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[Grid]) -> Result<Tensor> {
        let s = &self.settings;
        let dtype = self.patch_embed.dtype();
        let device = pixel_values.device();
        let mut x = pixel_values.to_dtype(dtype)?.matmul(&self.patch_embed.t()?)?;
        let n = x.dim(0)?;
        let unit = s.spatial_merge_size * s.spatial_merge_size;
        // 2D rope: cos/sin [n, head_dim / 2] = [h * inv_freq, w * inv_freq].
        let (hs, ws) = self.rope_positions(grids);
        let half = self.inv_freq.dim(0)?;
        let inv = self.inv_freq.reshape((1, half))?;
        let fh = Tensor::from_vec(hs, (n, 1), device)?.broadcast_mul(&inv)?;
        let fw = Tensor::from_vec(ws, (n, 1), device)?.broadcast_mul(&inv)?;
        let freqs = Tensor::cat(&[fh, fw], 1)?;
        let full = self.frame_segments(grids);
        let (order, windows) = match &s.kind {
            VisionKind::Qwen25 { window_size, .. } => {
                let (index, windows) = self.window_index(grids, *window_size);
                (Some(index), windows)
            }
            VisionKind::Qwen2 { .. } => (None, Vec::new()),
        };
        // Permute patches (in units of merge squares) into window order.
        let permute = |t: &Tensor, index: &[usize]| -> Result<Tensor> {
            let cols = t.dim(1)?;
            let units = t.reshape((n / unit, unit * cols))?;
            let idx: Vec<u32> = index.iter().map(|&i| i as u32).collect();
            let idx = Tensor::new(idx.as_slice(), device)?;
            Ok(units.index_select(&idx, 0)?.reshape((n, cols))?)
        };
        let freqs = match &order {
            Some(index) => {
                x = permute(&x, index)?;
                permute(&freqs, index)?
            }
            None => freqs,
        };
        let rope = (freqs.cos()?.contiguous()?, freqs.sin()?.contiguous()?);
        for (i, block) in self.blocks.iter().enumerate() {
            let segs = match &s.kind {
                VisionKind::Qwen25 { fullatt_block_indexes, .. } if !fullatt_block_indexes.contains(&i) => &windows,
                _ => &full,
            };
            x = block.forward(&x, &rope, segs)?;
        }
        let merged = self.ln_q.forward(&x)?.reshape((n / unit, unit * s.embed_dim))?;
        let merged = self.merger_fc1.forward(&merged)?.gelu_erf()?;
        let merged = self.merger_fc2.forward(&merged)?;
        match order {
            Some(index) => {
                // out[index[i]] = merged[i]
                let mut reverse = vec![0u32; index.len()];
                for (i, &j) in index.iter().enumerate() {
                    reverse[j] = i as u32;
                }
                Ok(merged.index_select(&Tensor::new(reverse.as_slice(), device)?, 0)?)
            }
            None => Ok(merged),
        }
    }
}
