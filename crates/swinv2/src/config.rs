//! `Swinv2Config`, as `transformers`' `configuration_swinv2.Swinv2Config` (5.25): Swin's fields
//! ([`SwinConfig`], with the same defaults) plus `pretrained_window_sizes`.

use autocandle_core::{AutoRegister, Error, Result};
use autocandle_swin::SwinConfig;
use serde::{Deserialize, Serialize};

/// The config of a Swin Transformer V2 (`Swinv2Config`), with the `transformers` defaults
/// (those of microsoft/swinv2-tiny-patch4-window8-256 but a 7-patch window at 224, as the class
/// has them). A field `config.json` leaves out takes its default; others are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "swinv2")]
#[serde(default)]
pub struct Swinv2Config {
    /// Every field Swin v1 has (`image_size`, `patch_size`, `embed_dim`, `depths`, `num_heads`,
    /// `window_size`, `mlp_ratio`, `qkv_bias`, `hidden_act`, `layer_norm_eps`, `encoder_stride`,
    /// `out_features`, the labels, ...).
    #[serde(flatten)]
    pub swin: SwinConfig,
    /// The window size each stage was pretrained with (0: the window itself), which scales the
    /// log-spaced relative coordinates of the continuous position bias.
    pub pretrained_window_sizes: Vec<usize>,
}

impl Default for Swinv2Config {
    /// `Swinv2Config()` in `transformers`.
    fn default() -> Self {
        Self { swin: SwinConfig::default(), pretrained_window_sizes: vec![0; 4] }
    }
}

impl Swinv2Config {
    /// The pretrained window size of stage `i` (0: none).
    pub fn pretrained_window_size(&self, stage: usize) -> usize {
        self.pretrained_window_sizes.get(stage).copied().unwrap_or(0)
    }

    /// The window side and the shift of the odd blocks of stage `i`, fixed when `transformers`
    /// builds the layer from the config's `image_size` (`_compute_window_shift`, which reads the
    /// height only): the window shrinks to the stage's grid and the shift is dropped when the
    /// grid is no larger than the window.
    pub fn stage_window(&self, stage: usize) -> (usize, usize) {
        let resolution = self.swin.patch_grid().0 >> stage;
        let window = resolution.min(self.swin.window_size);
        let shift = if resolution <= self.swin.window_size { 0 } else { self.swin.window_size / 2 };
        (window, shift)
    }

    /// Check what the network needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.swin.validate_as("swinv2")?;
        let invalid = |message: String| Err(Error::config("swinv2", message));
        let stages = self.swin.depths.len();
        if self.pretrained_window_sizes.len() < stages {
            return invalid(format!(
                "`pretrained_window_sizes` has {} entries for {stages} stages: give one per stage (0 for none)",
                self.pretrained_window_sizes.len()
            ));
        }
        if let Some(&bad) = self.pretrained_window_sizes.iter().find(|&&s| s == 1) {
            return invalid(format!(
                "`pretrained_window_sizes` holds {bad}: each must be 0 (none) or at least 2 (the coordinates are \
                 divided by size - 1)"
            ));
        }
        for stage in 0..stages {
            if self.stage_window(stage).0 == 0 {
                return invalid(format!(
                    "`image_size` {:?} with `patch_size` {:?} leaves stage {} no patches (transformers sizes each \
                     stage's window from it): give a larger `image_size` or fewer stages",
                    self.swin.image_size,
                    self.swin.patch_size,
                    stage + 1
                ));
            }
        }
        if self.swin.use_absolute_embeddings {
            return Err(Error::Unsupported(
                "Swinv2 with `use_absolute_embeddings` does not run in transformers either (its position \
                 embeddings have one row more than the patches): set it to false"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}
