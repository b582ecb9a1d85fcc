//! The window machinery Swin v1 and v2 share: padding to the window size, the cyclic shift and
//! its attention mask, window partition and reverse, the relative position index, patch
//! merging's 2x2 gather and the bicubic resize of position embeddings. Public for
//! `autocandle-swinv2`; not meant for other users.

use autocandle_core::resize::{resize_grid, Resample};
use autocandle_core::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// The value `transformers` fills masked pairs of a shifted window with.
const MASKED: f32 = -100.0;

/// How a block attends: the window side and the cyclic shift (0 for none), in patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShift {
    /// Side of the square windows.
    pub window: usize,
    /// Cyclic shift along both axes; 0 is no shift.
    pub shift: usize,
}

/// Run windowed attention over `x` `[batch, height * width, channels]` (a `height` x `width`
/// grid): pad the grid to a multiple of the window, roll it by `-shift`, cut it into windows
/// `[batch * windows, window², channels]`, call `attend(windows, mask)` with the shifted-window
/// mask `[windows, window², window²]` (0 or -100; `None` without a shift), then undo each step
/// (`SwinLayer.forward` between the norms in `transformers`).
pub fn windowed(
    x: &Tensor,
    (height, width): (usize, usize),
    geometry: WindowShift,
    attend: impl FnOnce(&Tensor, Option<&Tensor>) -> Result<Tensor>,
) -> Result<Tensor> {
    let WindowShift { window, shift } = geometry;
    let (batch, _, channels) = x.dims3()?;
    let pad_bottom = (window - height % window) % window;
    let pad_right = (window - width % window) % window;
    let mut grid = x.reshape((batch, height, width, channels))?;
    if pad_bottom > 0 {
        grid = grid.pad_with_zeros(1, 0, pad_bottom)?;
    }
    if pad_right > 0 {
        grid = grid.pad_with_zeros(2, 0, pad_right)?;
    }
    let (hp, wp) = (height + pad_bottom, width + pad_right);
    if shift > 0 {
        grid = roll2(&grid, hp - shift % hp, wp - shift % wp)?;
    }
    let windows = partition(&grid, window)?;
    let mask = if shift > 0 { Some(shift_mask(hp, wp, geometry, x.device())?) } else { None };
    let out = attend(&windows, mask.as_ref())?;
    let mut grid = reverse(&out, window, batch, hp, wp)?;
    if shift > 0 {
        grid = roll2(&grid, shift % hp, shift % wp)?;
    }
    if pad_bottom > 0 || pad_right > 0 {
        grid = grid.narrow(1, 0, height)?.narrow(2, 0, width)?;
    }
    Ok(grid.reshape((batch, height * width, channels))?)
}

/// `torch.roll` by `(dh, dw)` (non-negative, less than the sizes) along axes 1 and 2.
fn roll2(x: &Tensor, dh: usize, dw: usize) -> Result<Tensor> {
    Ok(x.roll(dh as i32, 1)?.roll(dw as i32, 2)?)
}

/// `window_partition` then `.view(-1, window², channels)`: `[B, Hp, Wp, C]` ->
/// `[B * windows, window², C]`, windows in row-major order.
fn partition(x: &Tensor, window: usize) -> Result<Tensor> {
    let (batch, hp, wp, channels) = x.dims4()?;
    let (nh, nw) = (hp / window, wp / window);
    Ok(x.reshape(vec![batch, nh, window, nw, window, channels])?.permute(vec![0, 1, 3, 2, 4, 5])?.reshape((
        batch * nh * nw,
        window * window,
        channels,
    ))?)
}

/// `window_reverse`: `[B * windows, window², C]` -> `[B, Hp, Wp, C]`.
fn reverse(windows: &Tensor, window: usize, batch: usize, hp: usize, wp: usize) -> Result<Tensor> {
    let channels = windows.dim(2)?;
    let (nh, nw) = (hp / window, wp / window);
    Ok(windows
        .reshape(vec![batch, nh, nw, window, window, channels])?
        .permute(vec![0, 1, 3, 2, 4, 5])?
        .reshape((batch, hp, wp, channels))?)
}

/// `get_attn_mask`: `[windows, window², window²]` f32, 0 where two positions of a shifted
/// window come from the same region of the padded grid, -100 elsewhere.
pub fn shift_mask(hp: usize, wp: usize, geometry: WindowShift, device: &Device) -> Result<Tensor> {
    let WindowShift { window, shift } = geometry;
    let region = |i: usize, size: usize| {
        usize::from(i + window >= size) + usize::from(i + shift >= size) // i >= size - window, i >= size - shift
    };
    let (nh, nw, n) = (hp / window, wp / window, window * window);
    let mut mask = Vec::with_capacity(nh * nw * n * n);
    let mut labels = vec![0usize; n];
    for wy in 0..nh {
        for wx in 0..nw {
            for (k, label) in labels.iter_mut().enumerate() {
                let (y, x) = (wy * window + k / window, wx * window + k % window);
                *label = region(y, hp) * 3 + region(x, wp);
            }
            for &a in &labels {
                mask.extend(labels.iter().map(|&b| if a == b { 0.0 } else { MASKED }));
            }
        }
    }
    Ok(Tensor::from_vec(mask, (nh * nw, n, n), device)?)
}

/// The relative position index of a `window` x `window` window: for each (query, key) pair of
/// positions, the row of the `(2 window - 1)²` relative position table (`relative_position_index`).
pub fn relative_position_index(window: usize) -> Vec<u32> {
    let n = window * window;
    let side = 2 * window - 1;
    let mut index = Vec::with_capacity(n * n);
    for q in 0..n {
        for k in 0..n {
            let dy = (q / window) + window - 1 - (k / window);
            let dx = (q % window) + window - 1 - (k % window);
            index.push((dy * side + dx) as u32);
        }
    }
    index
}

/// Look the per-head bias of every (query, key) pair up in `table` `[(2 window - 1)², heads]`:
/// `[1, heads, window², window²]` in f32.
pub fn relative_bias(table: &Tensor, window: usize) -> Result<Tensor> {
    let n = window * window;
    let heads = table.dim(1)?;
    let index = Tensor::from_vec(relative_position_index(window), n * n, table.device())?;
    Ok(table
        .to_dtype(DType::F32)?
        .index_select(&index, 0)?
        .reshape((n, n, heads))?
        .permute((2, 0, 1))?
        .contiguous()?
        .unsqueeze(0)?)
}

/// The additive attention mask of one block, `bias` `[1, heads, n, n]` plus the shifted-window
/// `mask` `[windows, n, n]` (times `mask_scale`), shaped for scores viewed as
/// `[batch, windows * heads, n, n]`: `[1, windows * heads, n, n]` with a mask, `bias` without.
pub fn combined_mask(bias: &Tensor, mask: Option<&Tensor>, mask_scale: f64) -> Result<Tensor> {
    match mask {
        None => Ok(bias.clone()),
        Some(mask) => {
            let (windows, n, _) = mask.dims3()?;
            let heads = bias.dim(1)?;
            let mask = if mask_scale == 1.0 { mask.clone() } else { (mask * mask_scale)? };
            Ok(bias.broadcast_add(&mask.unsqueeze(1)?)?.reshape((1, windows * heads, n, n))?.contiguous()?)
        }
    }
}

/// Patch merging's gather: `[B, H * W, C]` on an `H` x `W` grid, zero-padded to even sides,
/// -> `[B, ceil(H/2) * ceil(W/2), 4C]` with the four neighbours in `transformers`' order
/// (`x[0::2, 0::2]`, `x[1::2, 0::2]`, `x[0::2, 1::2]`, `x[1::2, 1::2]`).
pub fn merge_gather(x: &Tensor, (height, width): (usize, usize)) -> Result<Tensor> {
    let (batch, _, channels) = x.dims3()?;
    let mut grid = x.reshape((batch, height, width, channels))?;
    if height % 2 == 1 {
        grid = grid.pad_with_zeros(1, 0, 1)?;
    }
    if width % 2 == 1 {
        grid = grid.pad_with_zeros(2, 0, 1)?;
    }
    let (h2, w2) = (height.div_ceil(2), width.div_ceil(2));
    // [B, h2, row, w2, col, C] -> [B, h2, w2, col, row, C]: the channel blocks in (col, row) order.
    Ok(grid.reshape(vec![batch, h2, 2, w2, 2, channels])?.permute(vec![0, 1, 3, 4, 2, 5])?.reshape((
        batch,
        h2 * w2,
        4 * channels,
    ))?)
}

/// The patch embedding: `pixel_values` `[B, C, H, W]` zero-padded at the bottom and the right
/// to a multiple of the patch, cut into patches `[B, gh * gw, C * ph * pw]` (the layout of a
/// flattened `Conv2d` kernel); returns them with the grid `(gh, gw)`.
pub fn patchify(pixel_values: &Tensor, (ph, pw): (usize, usize)) -> Result<(Tensor, (usize, usize))> {
    let (batch, channels, height, width) = pixel_values.dims4()?;
    let mut x = pixel_values.clone();
    if width % pw != 0 {
        x = x.pad_with_zeros(3, 0, pw - width % pw)?;
    }
    if height % ph != 0 {
        x = x.pad_with_zeros(2, 0, ph - height % ph)?;
    }
    let (gh, gw) = (height.div_ceil(ph), width.div_ceil(pw));
    let patches = x.reshape(vec![batch, channels, gh, ph, gw, pw])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
        batch,
        gh * gw,
        channels * ph * pw,
    ))?;
    Ok((patches, (gh, gw)))
}

/// Resize a `[1, h * w, C]` grid of embeddings (row-major `h` x `w`) to `[1, nh * nw, C]` with
/// bicubic interpolation (`interpolate_pos_encoding`), through `autocandle_core::resize`.
pub fn bicubic_resize(embeddings: &Tensor, (h, w): (usize, usize), (nh, nw): (usize, usize)) -> Result<Tensor> {
    let (_, len, channels) = embeddings.dims3()?;
    if len != h * w || nh == 0 || nw == 0 {
        return Err(Error::input(format!(
            "cannot resize {len} position embeddings as a {h}x{w} grid to {nh}x{nw}: check `image_size` and \
             `patch_size` against the image"
        )));
    }
    let dtype = embeddings.dtype();
    let grid = embeddings.reshape((h, w, channels))?;
    Ok(resize_grid(&grid, (nh, nw), Resample::Bicubic)?.to_dtype(dtype)?.reshape((1, nh * nw, channels))?)
}
