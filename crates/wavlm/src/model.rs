//! [`WavLMModel`]: the feature encoder, the feature projection, the WavLM transformer and the
//! optional adapter, as `transformers`' `modeling_wavlm.WavLMModel`; everything but the
//! encoder is `autocandle-wav2vec2`'s [`SpeechModel`].

use autocandle_core::{AutoRegister, Result};
use autocandle_wav2vec2::{EncoderOutput, SpeechEncoder, SpeechModel};
use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::config::{WavLMConfig, MODEL_TYPE};
use crate::encoder::WavLMEncoder;

/// WavLM without a head (`WavLMModel`): `last_hidden_state` `[batch, frames, hidden]` and
/// `extract_features` `[batch, frames, conv_dim[-1]]` from `input_values` `[batch, samples]`
/// and the optional sample-level `attention_mask`. SpecAugment masking (training only) is not
/// applied.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "WavLMModel")]
pub struct WavLMModel {
    inner: SpeechModel<WavLMEncoder>,
}

impl WavLMModel {
    /// Load from `vb` (the checkpoint root of a `WavLMModel`, `wavlm` in a head's).
    pub fn new(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        config.validate()?;
        let cfg = &config.wav2vec2;
        let encoder = WavLMEncoder::load(vb.pp("encoder"), config)?;
        Ok(Self { inner: SpeechModel::load(vb, cfg, cfg.feat_extract_norm, true, true, encoder)? })
    }

    /// The network.
    pub fn inner(&self) -> &SpeechModel<WavLMEncoder> {
        &self.inner
    }
}

impl SpeechEncoder for WavLMEncoder {
    fn encode_frames(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        self.forward(hidden, frame_mask, output_hidden_states)
    }
}

autocandle_wav2vec2::speech_backbone!(WavLMModel, config: WavLMConfig, prefix: "wavlm", model_type: MODEL_TYPE);
