//! WavLM for autocandle, after `transformers`' `modeling_wavlm` (5.25): [`WavLMConfig`],
//! [`WavLMModel`] and the heads [`WavLMForCTC`], [`WavLMForSequenceClassification`],
//! [`WavLMForAudioFrameClassification`] and [`WavLMForXVector`].
//!
//! WavLM is wav2vec2's feature encoder, feature projection and positional convolution under a
//! transformer whose attention adds a gated relative position bias ([`WavLMAttention`]).
//! Weight names read as the `transformers` state dict
//! (`wavlm.encoder.layers.N.attention.q_proj.weight`, `lm_head.weight`, `tdnn.N.kernel.weight`).
//! The models read `input_values` `[batch, samples]` (as `Wav2Vec2FeatureExtractor` makes
//! them) and the optional sample-level `attention_mask`.

#![warn(missing_docs)]

mod attention;
mod config;
mod encoder;
mod heads;
mod model;
mod w2v2_parts;

pub use attention::{relative_position_bucket, WavLMAttention};
pub use config::WavLMConfig;
pub use encoder::{EncoderOutput, WavLMEncoder};
pub use heads::{WavLMForAudioFrameClassification, WavLMForCTC, WavLMForSequenceClassification, WavLMForXVector};
pub use model::{WavLMModel, WavLMRun};

#[cfg(test)]
mod tests;
