//! [`Dinov2Backbone`]: the feature maps of chosen stages, as `transformers`' `Dinov2Backbone`
//! (what Depth Anything and DPT-style heads build on).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{Error, Result};

use crate::config::{Dinov2Config, Dinov2Spec};
use crate::model::Dinov2Encoder;

/// DINOv2 as a backbone (`Dinov2Backbone`): the hidden states of the stages the config's
/// `out_features` / `out_indices` select (`stem` is the embeddings, `stageN` the output of block
/// N), each through the final LayerNorm when `apply_layernorm`, and when
/// `reshape_hidden_states` without the `[CLS]` (and register) tokens, reshaped to
/// `[batch, hidden, height / patch, width / patch]`; otherwise `[batch, 1 + patches, hidden]`.
///
/// Weights under `vb`: `embeddings.*`, `encoder.layer.N.*`, `layernorm.*` (a Depth Anything
/// checkpoint holds them under `backbone.`).
#[derive(Debug)]
pub struct Dinov2Backbone {
    encoder: Dinov2Encoder,
    out_indices: Vec<usize>,
    apply_layernorm: bool,
    reshape_hidden_states: bool,
    hidden_size: usize,
}

impl Dinov2Backbone {
    /// Load a DINOv2 backbone from `vb` (the backbone's root).
    pub fn load(config: &Dinov2Config, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        Self::load_spec(&config.spec(), vb)
    }

    /// Load the backbone of any DINOv2-like model (`dinov2_with_registers` too) from its spec.
    pub fn load_spec(spec: &Dinov2Spec, vb: VarBuilder<'_>) -> Result<Self> {
        let config = &spec.config;
        Ok(Self {
            out_indices: config.out_indices()?,
            encoder: Dinov2Encoder::load(vb, spec)?,
            apply_layernorm: config.apply_layernorm,
            reshape_hidden_states: config.reshape_hidden_states,
            hidden_size: config.hidden_size,
        })
    }

    /// The stages output, as indices into the stage names (`0` = `stem`).
    pub fn out_indices(&self) -> &[usize] {
        &self.out_indices
    }

    /// The width of every feature map (`num_features` of each stage: `hidden_size`).
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// `(patch height, patch width)` in pixels.
    pub fn patch_size(&self) -> (usize, usize) {
        self.encoder.patch_size()
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        self.encoder.device()
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.encoder.dtype()
    }

    /// The feature maps of the selected stages for `pixel_values` `[batch, channels, height,
    /// width]` (any size of at least one patch: the position embeddings are interpolated).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let (batch, _, height, width) = pixel_values.dims4().map_err(|_| {
            Error::input(format!(
                "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
                pixel_values.dims()
            ))
        })?;
        let states = self.encoder.stage_states(pixel_values, None, &self.out_indices)?;
        let (ph, pw) = self.encoder.patch_size();
        let (gh, gw) = (height / ph, width / pw);
        let skip = 1 + self.encoder.num_register_tokens();
        states
            .into_iter()
            .map(|state| {
                let state = if self.apply_layernorm { self.encoder.layernorm(&state)? } else { state };
                if !self.reshape_hidden_states {
                    return Ok(state);
                }
                let patches = state.narrow(1, skip, gh * gw)?;
                Ok(patches.reshape((batch, gh, gw, self.hidden_size))?.permute((0, 3, 1, 2))?.contiguous()?)
            })
            .collect()
    }
}
