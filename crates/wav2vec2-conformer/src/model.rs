//! [`Wav2Vec2ConformerModel`]: the feature encoder, the feature projection, the conformer
//! encoder and the optional adapter, as `transformers`'
//! `modeling_wav2vec2_conformer.Wav2Vec2ConformerModel`; everything but the encoder is
//! `autocandle-wav2vec2`'s [`SpeechModel`].

use autocandle_core::{AutoRegister, Result};
use autocandle_wav2vec2::{EncoderOutput, SpeechEncoder, SpeechModel};
use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::config::{Wav2Vec2ConformerConfig, MODEL_TYPE};
use crate::encoder::ConformerEncoder;

/// Wav2Vec2-Conformer without a head (`Wav2Vec2ConformerModel`): `last_hidden_state` `[batch, frames, hidden]` and
/// `extract_features` `[batch, frames, conv_dim[-1]]` from `input_values` `[batch, samples]`
/// and the optional sample-level `attention_mask`. SpecAugment masking (training only) is not
/// applied.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Wav2Vec2ConformerModel")]
pub struct Wav2Vec2ConformerModel {
    inner: SpeechModel<ConformerEncoder>,
}

impl Wav2Vec2ConformerModel {
    /// Load from `vb` (the checkpoint root of a `Wav2Vec2ConformerModel`, `wav2vec2_conformer` in a head's).
    pub fn new(vb: VarBuilder<'_>, config: &Wav2Vec2ConformerConfig) -> Result<Self> {
        config.validate()?;
        let cfg = &config.wav2vec2;
        let encoder = ConformerEncoder::load(vb.pp("encoder"), config)?;
        Ok(Self { inner: SpeechModel::load(vb, cfg, cfg.feat_extract_norm, true, true, encoder)? })
    }

    /// The network.
    pub fn inner(&self) -> &SpeechModel<ConformerEncoder> {
        &self.inner
    }
}

impl SpeechEncoder for ConformerEncoder {
    fn encode_frames(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        self.forward(hidden, frame_mask, output_hidden_states)
    }
}

autocandle_wav2vec2::speech_backbone!(Wav2Vec2ConformerModel, config: Wav2Vec2ConformerConfig, prefix: "wav2vec2_conformer", model_type: MODEL_TYPE);
