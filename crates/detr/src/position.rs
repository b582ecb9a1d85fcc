//! The pixel mask at the feature map's resolution and DETR's 2-D position embeddings
//! (`DetrSinePositionEmbedding`, `DetrLearnedPositionEmbedding`).

use autocandle_core::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, Module, VarBuilder};

/// `nn.functional.interpolate(mask, size=(h, w))` (mode `nearest`) of a `[b, H, W]` mask,
/// read as booleans: `[b][h * w]`, row-major.
pub(crate) fn downsample_mask(mask: &[Vec<Vec<f32>>], h: usize, w: usize) -> Vec<Vec<bool>> {
    // PyTorch's `nearest_idx`: floor(i * (in / out)) with a float scale, clamped.
    let index = |i: usize, input: usize, output: usize| -> usize {
        if input == output {
            i
        } else {
            let scale = input as f32 / output as f32;
            ((i as f32 * scale).floor() as usize).min(input - 1)
        }
    };
    mask.iter()
        .map(|image| {
            let (rows, cols) = (image.len(), image.first().map_or(0, Vec::len));
            let mut out = Vec::with_capacity(h * w);
            for y in 0..h {
                let row = &image[index(y, rows, h)];
                for x in 0..w {
                    out.push(row[index(x, cols, w)] != 0.0);
                }
            }
            out
        })
        .collect()
}

/// The position embeddings of the feature map: fixed sines or learned rows and columns.
#[derive(Debug)]
pub(crate) enum PositionEmbedding {
    /// `DetrSinePositionEmbedding(d_model / 2, normalize=True)`.
    Sine { features: usize },
    /// `DetrLearnedPositionEmbedding(d_model / 2)`: `row_embeddings`, `column_embeddings`.
    Learned { rows: Embedding, columns: Embedding },
}

/// Rows and columns `DetrLearnedPositionEmbedding` has embeddings for.
const LEARNED_POSITIONS: usize = 50;

impl PositionEmbedding {
    pub(crate) fn load(vb: VarBuilder<'_>, kind: &str, d_model: usize) -> Result<Self> {
        let features = d_model / 2;
        Ok(match kind {
            "learned" => Self::Learned {
                rows: candle_nn::embedding(LEARNED_POSITIONS, features, vb.pp("row_embeddings"))?,
                columns: candle_nn::embedding(LEARNED_POSITIONS, features, vb.pp("column_embeddings"))?,
            },
            _ => Self::Sine { features },
        })
    }

    /// `[b, h * w, d_model]` for a feature map of `h x w` with `mask` (`[b][h * w]`, true = real).
    pub(crate) fn forward(
        &self,
        mask: &[Vec<bool>],
        (h, w): (usize, usize),
        device: &Device,
        dtype: DType,
    ) -> Result<Tensor> {
        let batch = mask.len();
        match self {
            Self::Sine { features } => {
                let features = *features;
                let mut out = vec![0f32; batch * h * w * 2 * features];
                let two_pi = 2.0 * std::f32::consts::PI;
                let dim_t: Vec<f32> =
                    (0..features).map(|i| 10000f32.powf(2.0 * (i / 2) as f32 / features as f32)).collect();
                for (b, m) in mask.iter().enumerate() {
                    // Cumulative sums of the mask down the columns and along the rows.
                    let mut y_embed = vec![0f32; h * w];
                    let mut x_embed = vec![0f32; h * w];
                    for y in 0..h {
                        for x in 0..w {
                            let v = if m[y * w + x] { 1.0 } else { 0.0 };
                            y_embed[y * w + x] = v + if y > 0 { y_embed[(y - 1) * w + x] } else { 0.0 };
                            x_embed[y * w + x] = v + if x > 0 { x_embed[y * w + x - 1] } else { 0.0 };
                        }
                    }
                    for y in 0..h {
                        for x in 0..w {
                            let ye = y_embed[y * w + x] / (y_embed[(h - 1) * w + x] + 1e-6) * two_pi;
                            let xe = x_embed[y * w + x] / (x_embed[y * w + w - 1] + 1e-6) * two_pi;
                            let base = ((b * h + y) * w + x) * 2 * features;
                            for (i, d) in dim_t.iter().enumerate() {
                                let (py, px) = (ye / d, xe / d);
                                let (vy, vx) = if i % 2 == 0 { (py.sin(), px.sin()) } else { (py.cos(), px.cos()) };
                                out[base + i] = vy;
                                out[base + features + i] = vx;
                            }
                        }
                    }
                }
                Ok(Tensor::from_vec(out, (batch, h * w, 2 * features), device)?.to_dtype(dtype)?)
            }
            Self::Learned { rows, columns } => {
                if h > LEARNED_POSITIONS || w > LEARNED_POSITIONS {
                    return Err(Error::input(format!(
                        "the feature map ({h}x{w}) is larger than the {LEARNED_POSITIONS}x{LEARNED_POSITIONS} \
                         positions the learned position embeddings have: use smaller images"
                    )));
                }
                let x_emb = columns.forward(&Tensor::arange(0u32, w as u32, device)?)?; // [w, f]
                let y_emb = rows.forward(&Tensor::arange(0u32, h as u32, device)?)?; // [h, f]
                let f = x_emb.dim(1)?;
                let x_emb = x_emb.unsqueeze(0)?.broadcast_as((h, w, f))?;
                let y_emb = y_emb.unsqueeze(1)?.broadcast_as((h, w, f))?;
                let pos = Tensor::cat(&[&x_emb, &y_emb], 2)?.reshape((1, h * w, 2 * f))?;
                Ok(pos.broadcast_as((batch, h * w, 2 * f))?.to_dtype(dtype)?)
            }
        }
    }
}
