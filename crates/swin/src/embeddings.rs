//! [`SwinEmbeddings`]: the patch embedding (zero-padded to whole patches), its LayerNorm, the
//! mask token and the absolute position embeddings, as `transformers`' `SwinEmbeddings` (shared
//! with Swin v2, whose embeddings are the same module).

use autocandle_core::nn::Linear;
use candle_core::{Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{Error, Result};

use crate::config::SwinConfig;
use crate::window::{bicubic_resize, patchify};

/// PyTorch's default LayerNorm epsilon, which `transformers` keeps for the norms it builds
/// without `layer_norm_eps` (embeddings, patch merging, backbone outputs).
pub const TORCH_LAYER_NORM_EPS: f64 = 1e-5;

/// `SwinEmbeddings` (`embeddings.*`): `patch_embeddings.projection` (a strided convolution,
/// computed as a matrix product over flattened patches), `norm`, the optional `mask_token`
/// and `position_embeddings`.
#[derive(Debug)]
pub struct SwinEmbeddings {
    /// `patch_embeddings.projection.weight` as `[embed_dim, channels * ph * pw]`.
    projection: Linear,
    norm: LayerNorm,
    mask_token: Option<Tensor>,
    /// `[1, patches of image_size, embed_dim]`.
    position_embeddings: Option<Tensor>,
    num_channels: usize,
    patch_size: (usize, usize),
    /// `image_size // patch_size`: the grid the position embeddings belong to.
    grid: (usize, usize),
}

impl SwinEmbeddings {
    /// Load from `vb` (`embeddings`); `use_mask_token` for masked image modeling.
    pub fn load(vb: VarBuilder<'_>, cfg: &SwinConfig, use_mask_token: bool) -> Result<Self> {
        let e = cfg.embed_dim;
        let (ph, pw) = cfg.patch_size.hw();
        let (gh, gw) = cfg.patch_grid();
        let c = cfg.num_channels;
        let proj = vb.pp("patch_embeddings.projection");
        let weight = proj.get((e, c, ph, pw), "weight")?.reshape((e, c * ph * pw))?;
        let bias = proj.get(e, "bias")?;
        Ok(Self {
            projection: Linear::new(weight, Some(bias)),
            norm: layer_norm(e, TORCH_LAYER_NORM_EPS, vb.pp("norm"))?,
            mask_token: if use_mask_token { Some(vb.get((1, 1, e), "mask_token")?) } else { None },
            position_embeddings: if cfg.use_absolute_embeddings {
                Some(vb.get((1, gh * gw, e), "position_embeddings")?)
            } else {
                None
            },
            num_channels: c,
            patch_size: (ph, pw),
            grid: (gh, gw),
        })
    }

    /// Check `pixel_values` `[B, C, H, W]` and return its dims.
    pub fn check_pixels(&self, pixel_values: &Tensor) -> Result<(usize, usize, usize, usize)> {
        let (batch, channels, height, width) =
            autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        let (ph, pw) = self.patch_size;
        if height < ph || width < pw {
            return Err(Error::input(format!(
                "the image ({height}x{width}) is smaller than one patch ({ph}x{pw}): resize the images with the \
                 model's AutoImageProcessor"
            )));
        }
        Ok((batch, channels, height, width))
    }

    /// `pixel_values` `[B, C, H, W]` -> the embeddings `[B, gh * gw, embed_dim]` and the patch
    /// grid `(gh, gw)` (`ceil(H / ph)`, `ceil(W / pw)`); `bool_masked_pos` `[B, gh * gw]`
    /// replaces masked patches by the mask token; `interpolate_pos_encoding` resizes the
    /// position embeddings to the image (bicubic), as `transformers`.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        bool_masked_pos: Option<&Tensor>,
        interpolate_pos_encoding: bool,
    ) -> Result<(Tensor, (usize, usize))> {
        let (batch, _, height, width) = self.check_pixels(pixel_values)?;
        let (patches, (gh, gw)) = patchify(pixel_values, self.patch_size)?;
        let mut embeddings = self.norm.forward(&self.projection.forward(&patches)?)?;
        if let Some(mask) = bool_masked_pos {
            let token = self.mask_token.as_ref().ok_or_else(|| {
                Error::input("`bool_masked_pos` needs a mask token, which only the masked image modeling head has")
            })?;
            if mask.dims() != [batch, gh * gw] {
                return Err(Error::input(format!(
                    "`bool_masked_pos` must be [batch, num_patches] = [{batch}, {}], got {:?}",
                    gh * gw,
                    mask.dims()
                )));
            }
            let mask = mask.to_dtype(embeddings.dtype())?.unsqueeze(D::Minus1)?;
            let keep = (1.0 - &mask)?;
            embeddings = (embeddings.broadcast_mul(&keep)? + token.broadcast_mul(&mask)?)?;
        }
        if let Some(position) = &self.position_embeddings {
            let position = self.positions(position, (height, width), (gh, gw), interpolate_pos_encoding)?;
            embeddings = embeddings.broadcast_add(&position)?;
        }
        Ok((embeddings, (gh, gw)))
    }

    /// The position embeddings for an image of `(height, width)` pixels cut into a `grid`.
    fn positions(
        &self,
        position: &Tensor,
        (height, width): (usize, usize),
        (gh, gw): (usize, usize),
        interpolate: bool,
    ) -> Result<Tensor> {
        let rows = position.dim(1)?;
        let (ph, pw) = self.patch_size;
        if !interpolate || (gh * gw == rows && height == width) {
            if gh * gw != rows {
                return Err(Error::input(format!(
                    "the image ({height}x{width}) makes {gh}x{gw} patches but the absolute position embeddings \
                     cover {}x{} (`image_size`): resize the images with the model's AutoImageProcessor, or set \
                     `interpolate_pos_encoding`",
                    self.grid.0, self.grid.1
                )));
            }
            return Ok(position.clone());
        }
        let side = (rows as f64).sqrt().floor() as usize;
        if side * side != rows {
            return Err(Error::input(format!(
                "`interpolate_pos_encoding` needs a square grid of position embeddings, the model has {}x{}",
                self.grid.0, self.grid.1
            )));
        }
        let (nh, nw) = (height / ph, width / pw);
        if nh * nw != gh * gw {
            return Err(Error::input(format!(
                "with `interpolate_pos_encoding` the image ({height}x{width}) must be a multiple of the patch size \
                 ({ph}x{pw}), as in transformers: crop or resize it"
            )));
        }
        bicubic_resize(position, (side, side), (nh, nw))
    }
}
