//! `SwinConfig`, field for field as `transformers`' `configuration_swin.SwinConfig` (5.25), and
//! the checks every Swin network (v1 and v2) needs of it.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The largest `window_size` accepted: the relative position index of a window holds
/// `window_size⁴` entries, allocated before any checkpoint tensor could bound it.
pub const MAX_WINDOW_SIZE: usize = 64;

/// An `image_size` or `patch_size` (shared by the vision crates).
pub use autocandle_core::Size2;

/// The config of a Swin Transformer (`SwinConfig`), with the `transformers` defaults (those of
/// microsoft/swin-tiny-patch4-window7-224). A field `config.json` leaves out takes its default;
/// fields `SwinConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "swin")]
#[serde(default)]
pub struct SwinConfig {
    /// The image size the model was trained at (its absolute position embeddings, when it has
    /// them, are fixed to it; other sizes run when it has none).
    pub image_size: Size2,
    /// Side, in pixels, of the patches the image is cut into (the image is zero-padded to a
    /// multiple of it).
    pub patch_size: Size2,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Width of the patch embeddings; stage `i` is `embed_dim * 2^i` wide.
    pub embed_dim: usize,
    /// Number of blocks in each stage.
    pub depths: Vec<usize>,
    /// Attention heads in each stage.
    pub num_heads: Vec<usize>,
    /// Side, in patches, of the square attention windows.
    pub window_size: usize,
    /// Width of the MLP relative to the stage width (`int(mlp_ratio * dim)`).
    pub mlp_ratio: f64,
    /// Bias on the query, key and value projections.
    pub qkv_bias: bool,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Training only: stochastic depth is a no-op here.
    pub drop_path_rate: f64,
    /// Activation of the MLP (`hidden_act`).
    pub hidden_act: Activation,
    /// Learned absolute position embeddings added to the patch embeddings.
    pub use_absolute_embeddings: bool,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of the blocks' and the final LayerNorms (the embedding, patch merging and
    /// backbone norms keep PyTorch's 1e-5, as in `transformers`).
    pub layer_norm_eps: f64,
    /// The upsampling factor of the masked image modeling decoder (`PixelShuffle`).
    pub encoder_stride: usize,
    /// Backbone stages to return (`stem`, `stage1`, ...); see [`SwinConfig::backbone_stages`].
    pub out_features: Option<Vec<String>>,
    /// Backbone stages to return by index (0 is `stem`), used when `out_features` is absent.
    pub out_indices: Option<Vec<i64>>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for SwinConfig {
    /// `SwinConfig()` in `transformers`: Swin-T at 224.
    fn default() -> Self {
        Self {
            image_size: Size2::Square(224),
            patch_size: Size2::Square(4),
            num_channels: 3,
            embed_dim: 96,
            depths: vec![2, 2, 6, 2],
            num_heads: vec![3, 6, 12, 24],
            window_size: 7,
            mlp_ratio: 4.0,
            qkv_bias: true,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            drop_path_rate: 0.1,
            hidden_act: Activation::Gelu,
            use_absolute_embeddings: false,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            encoder_stride: 32,
            out_features: None,
            out_indices: None,
            labels: LabelConfig::default(),
        }
    }
}

impl SwinConfig {
    /// Width of stage `i` (`embed_dim * 2^i`).
    pub fn stage_dim(&self, stage: usize) -> usize {
        self.embed_dim << stage
    }

    /// Width of the last stage (`num_features`, `hidden_size` in `transformers`).
    pub fn num_features(&self) -> usize {
        self.stage_dim(self.depths.len().saturating_sub(1))
    }

    /// Patches along the height and the width of an `image_size` image (`image_size // patch_size`).
    pub fn patch_grid(&self) -> (usize, usize) {
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        (h / ph.max(1), w / pw.max(1))
    }

    /// The MLP width of a stage of width `dim` (`int(mlp_ratio * dim)`).
    pub fn mlp_dim(&self, dim: usize) -> usize {
        (self.mlp_ratio * dim as f64) as usize
    }

    /// `stage_names` in `transformers`: `stem`, `stage1`, ..., `stageN`.
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once("stem".to_owned()).chain((1..=self.depths.len()).map(|i| format!("stage{i}"))).collect()
    }

    /// The stages a backbone returns, as indices into [`SwinConfig::stage_names`] (0 is the
    /// stem): `out_features`, else `out_indices` (negative ones count from the end), else the
    /// last stage, as `transformers`' `BackboneConfigMixin`.
    pub fn backbone_stages(&self) -> Result<Vec<usize>> {
        self.backbone_stages_as("swin")
    }

    /// [`SwinConfig::backbone_stages`], naming `model_type` in errors.
    pub fn backbone_stages_as(&self, model_type: &'static str) -> Result<Vec<usize>> {
        let names = self.stage_names();
        if let Some(features) = &self.out_features {
            return features
                .iter()
                .map(|f| {
                    names.iter().position(|n| n == f).ok_or_else(|| {
                        Error::config(model_type, format!("`out_features` names `{f}`, which is not one of {names:?}"))
                    })
                })
                .collect();
        }
        if let Some(indices) = &self.out_indices {
            let n = names.len() as i64;
            return indices
                .iter()
                .map(|&i| {
                    let at = if i < 0 { i + n } else { i };
                    if (0..n).contains(&at) {
                        Ok(at as usize)
                    } else {
                        Err(Error::config(
                            model_type,
                            format!("`out_indices` holds {i}, outside the {n} stages {names:?}"),
                        ))
                    }
                })
                .collect();
        }
        Ok(vec![names.len() - 1])
    }

    /// Check what the network needs of the config; `model_type` names the config in errors.
    pub fn validate_as(&self, model_type: &'static str) -> Result<()> {
        let invalid = |message: String| Err(Error::config(model_type, message));
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        for (name, value) in [
            ("embed_dim", self.embed_dim),
            ("num_channels", self.num_channels),
            ("window_size", self.window_size),
            ("patch_size", ph.min(pw)),
            ("image_size", h.min(w)),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if self.window_size > MAX_WINDOW_SIZE {
            return invalid(format!(
                "`window_size` is {}; at most {MAX_WINDOW_SIZE} is supported (the window tables grow as its fourth \
                 power; published checkpoints use up to 24)",
                self.window_size
            ));
        }
        if self.depths.is_empty() {
            return invalid("`depths` is empty: give the number of blocks of each stage".to_owned());
        }
        if self.depths.len() > 16 {
            return invalid(format!("`depths` has {} stages; at most 16 are supported", self.depths.len()));
        }
        if self.num_heads.len() != self.depths.len() {
            return invalid(format!(
                "`depths` has {} stages but `num_heads` has {} entries: give one head count per stage",
                self.depths.len(),
                self.num_heads.len()
            ));
        }
        for (stage, &heads) in self.num_heads.iter().enumerate() {
            let dim = self.stage_dim(stage);
            if heads == 0 || !dim.is_multiple_of(heads) {
                return invalid(format!(
                    "stage {} is {dim} wide (`embed_dim` * 2^{stage}), which is not a multiple of its {heads} \
                     heads (`num_heads`)",
                    stage + 1
                ));
            }
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0 && self.mlp_dim(self.embed_dim) > 0) {
            return invalid(format!("`mlp_ratio` must be positive, got {}", self.mlp_ratio));
        }
        if ph > h || pw > w {
            return invalid(format!("`patch_size` ({ph}x{pw}) is larger than `image_size` ({h}x{w})"));
        }
        self.backbone_stages_as(model_type)?;
        Ok(())
    }

    /// Check what the Swin network needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.validate_as("swin")
    }
}
