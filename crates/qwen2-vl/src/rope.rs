//! Multimodal rope (M-RoPE): the three position rows (temporal, height, width) of a prompt with
//! images (`get_rope_index`), and their cos/sin interleaved by `mrope_section`
//! (`Qwen2VLRotaryEmbedding`).

use candle_core::{DType, Device, Tensor, D};

use autocandle_core::{Error, Result};
use autocandle_decoder::{CosSin, RotaryEmbedding};

use crate::vision::Grid;

/// Positions `[3][batch * seq]` (row-major per row) and the per-row `rope_deltas`.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeIndex {
    /// `rows[r][b * seq + s]`: the t (r = 0), h (1) and w (2) positions.
    pub rows: [Vec<i64>; 3],
    /// `max(position) + 1 - real tokens`, per batch row.
    pub deltas: Vec<i64>,
}

/// `get_rope_index` for images: `ids` and `types` (`mm_token_type_ids`: 0 text, 1 image)
/// `[batch][seq]`, `keep` the attention mask (padding gets position 0), `grids` the images in
/// order across the batch.
pub fn rope_index(
    types: &[Vec<i64>],
    keep: Option<&[Vec<bool>]>,
    grids: &[Grid],
    spatial_merge_size: usize,
) -> Result<RopeIndex> {
    let batch = types.len();
    let seq = types.first().map_or(0, Vec::len);
    let mut rows = [vec![0i64; batch * seq], vec![0i64; batch * seq], vec![0i64; batch * seq]];
    let mut deltas = Vec::with_capacity(batch);
    let mut next_grid = grids.iter();
    let m = spatial_merge_size;
    for b in 0..batch {
        let kept: Vec<usize> = (0..seq).filter(|&s| keep.is_none_or(|k| k[b][s])).collect();
        let mut pos: [Vec<i64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut current = 0i64;
        let mut i = 0;
        while i < kept.len() {
            let kind = types[b][kept[i]];
            let mut j = i;
            while j < kept.len() && types[b][kept[j]] == kind {
                j += 1;
            }
            if kind == 0 {
                for k in 0..(j - i) as i64 {
                    for row in &mut pos {
                        row.push(current + k);
                    }
                }
                current += (j - i) as i64;
                i = j;
            } else if kind == 1 {
                // One image per run of image tokens: consume the image's tokens, which may be
                // followed directly by the next image's.
                let Some(&(t, h, w)) = next_grid.next() else {
                    return Err(Error::input(
                        "the prompt has more runs of image tokens than `image_grid_thw` has images".to_owned(),
                    ));
                };
                let (lt, lh, lw) = (t, h / m, w / m);
                let n = lt * lh * lw;
                if j - i < n {
                    return Err(Error::input(format!(
                        "an image of grid ({t}, {h}, {w}) needs {n} image tokens but the prompt has a run of {}",
                        j - i
                    )));
                }
                for ti in 0..lt {
                    for hi in 0..lh {
                        for wi in 0..lw {
                            pos[0].push(current + ti as i64);
                            pos[1].push(current + hi as i64);
                            pos[2].push(current + wi as i64);
                        }
                    }
                }
                current += lh.max(lw) as i64;
                i += n;
            } else {
                return Err(Error::Unsupported(format!(
                    "`mm_token_type_ids` value {kind}: video inputs are not supported here (images only)"
                )));
            }
        }
        let max = pos[0].iter().chain(&pos[1]).chain(&pos[2]).copied().max().unwrap_or(-1);
        deltas.push(max + 1 - kept.len() as i64);
        for (r, row) in pos.iter().enumerate() {
            for (k, &s) in kept.iter().enumerate() {
                rows[r][b * seq + s] = row[k];
            }
        }
    }
    if next_grid.next().is_some() {
        return Err(Error::input(
            "`image_grid_thw` has more images than the prompt has runs of image tokens".to_owned(),
        ));
    }
    Ok(RopeIndex { rows, deltas })
}

/// Cos and sin `[batch, seq, head_dim / 2]` of the three position rows (`[batch * seq]` each),
/// taking the frequencies of section `i` of `mrope_section` from row `i % 3`.
pub fn mrope_cos_sin(
    rotary: &RotaryEmbedding,
    rows: &[Vec<i64>; 3],
    (batch, seq): (usize, usize),
    mrope_section: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<CosSin> {
    let max = rows.iter().flatten().copied().max().unwrap_or(0).max(0) as usize;
    let mut per_row = Vec::with_capacity(3);
    for row in rows {
        if row.iter().any(|&p| p < 0 || p > u32::MAX as i64) {
            return Err(Error::input("a rope position is negative or too large".to_owned()));
        }
        let pos: Vec<u32> = row.iter().map(|&p| p as u32).collect();
        let pos = Tensor::from_vec(pos, (batch, seq), device)?;
        per_row.push(rotary.cos_sin(&pos, max, DType::F32)?);
    }
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    let mut at = 0;
    for (i, &n) in mrope_section.iter().enumerate() {
        let cs = &per_row[i % 3];
        cos.push(cs.cos.narrow(D::Minus1, at, n)?);
        sin.push(cs.sin.narrow(D::Minus1, at, n)?);
        at += n;
    }
    Ok(CosSin {
        cos: Tensor::cat(&cos, D::Minus1)?.to_dtype(dtype)?.contiguous()?,
        sin: Tensor::cat(&sin, D::Minus1)?.to_dtype(dtype)?.contiguous()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_index_of_a_padded_row_with_an_image() {
        // pad, text, start, 4 image tokens (grid 1x4x4, merge 2 -> 2x2), end, text
        let types = vec![vec![0, 0, 0, 1, 1, 1, 1, 0, 0]];
        let keep = vec![vec![false, true, true, true, true, true, true, true, true]];
        let idx = rope_index(&types, Some(&keep), &[(1, 4, 4)], 2).unwrap();
        assert_eq!(idx.rows[0], [0, 0, 1, 2, 2, 2, 2, 4, 5]);
        assert_eq!(idx.rows[1], [0, 0, 1, 2, 2, 3, 3, 4, 5]);
        assert_eq!(idx.rows[2], [0, 0, 1, 2, 3, 2, 3, 4, 5]);
        assert_eq!(idx.deltas, [6 - 8]);
        let err = rope_index(&types, Some(&keep), &[], 2).unwrap_err().to_string();
        assert!(err.contains("more runs of image tokens"), "{err}");
    }
}
