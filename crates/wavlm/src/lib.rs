//! WavLM for autocandle, after `transformers`' `modeling_wavlm` (5.25): [`WavLMConfig`],
//! [`WavLMModel`] and the heads [`WavLMForCtc`], [`WavLMForSequenceClassification`],
//! [`WavLMForAudioFrameClassification`] and [`WavLMForXVector`].
//!
//! WavLM is wav2vec2's feature encoder, feature projection, positional convolution and
//! adapter (from `autocandle-wav2vec2`) under a transformer whose attention adds a gated
//! relative position bias ([`WavLMAttention`], [`relative_position_bucket`]); the heads are
//! `autocandle-wav2vec2`'s over [`WavLMModel`] as an `AudioBackbone`. Weight names read as
//! the `transformers` state dict (`wavlm.encoder.layers.N.attention.q_proj.weight`,
//! `wavlm.encoder.layers.0.attention.rel_attn_embed.weight`, `lm_head.weight`,
//! `tdnn.N.kernel.weight`). The models read `input_values` `[batch, samples]` (as
//! `Wav2Vec2FeatureExtractor` makes them) and the optional sample-level `attention_mask`.

#![warn(missing_docs)]

mod attention;
mod config;
mod encoder;
mod model;

pub use attention::{relative_position_bucket, WavLMAttention};
pub use config::WavLMConfig;
pub use encoder::WavLMEncoder;
pub use model::WavLMModel;

autocandle_wav2vec2::audio_heads! {
    backbone: WavLMModel, config: WavLMConfig, prefix: "wavlm";
    ctc: WavLMForCtc as "WavLMForCTC";
    audio_classification: WavLMForSequenceClassification as "WavLMForSequenceClassification";
    audio_frame_classification: WavLMForAudioFrameClassification as "WavLMForAudioFrameClassification";
    audio_xvector: WavLMForXVector as "WavLMForXVector";
}

#[cfg(test)]
mod tests;
