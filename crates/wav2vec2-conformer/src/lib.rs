//! Wav2Vec2-Conformer for autocandle, after `transformers`' `modeling_wav2vec2_conformer`
//! (5.25): [`Wav2Vec2ConformerConfig`], [`Wav2Vec2ConformerModel`] and the heads
//! [`Wav2Vec2ConformerForCtc`], [`Wav2Vec2ConformerForSequenceClassification`],
//! [`Wav2Vec2ConformerForAudioFrameClassification`] and [`Wav2Vec2ConformerForXVector`]
//! (`Wav2Vec2ConformerForPreTraining`, the quantizer and contrastive head of pre-training,
//! is not implemented).
//!
//! The model is wav2vec2's feature encoder, feature projection and adapter (from
//! `autocandle-wav2vec2`) under conformer blocks ([`ConformerEncoder`]): half-step
//! feed-forward, self-attention with relative (Transformer-XL) or rotary position
//! embeddings (`position_embeddings_type`), the convolution module (pointwise convolution,
//! GLU, depthwise convolution, batch norm), half-step feed-forward. The heads are
//! `autocandle-wav2vec2`'s. Weight names read as the `transformers` state dict
//! (`wav2vec2_conformer.encoder.layers.N.self_attn.linear_q.weight`,
//! `wav2vec2_conformer.encoder.layers.N.conv_module.depthwise_conv.weight`, `lm_head.weight`).

#![warn(missing_docs)]

mod config;
mod encoder;
mod model;

pub use config::{PositionEmbeddingsType, Wav2Vec2ConformerConfig};
pub use encoder::{relative_position_embeddings, rotary_embeddings, ConformerEncoder};
pub use model::Wav2Vec2ConformerModel;

autocandle_wav2vec2::audio_heads! {
    backbone: Wav2Vec2ConformerModel, config: Wav2Vec2ConformerConfig, prefix: "wav2vec2_conformer";
    ctc: Wav2Vec2ConformerForCtc as "Wav2Vec2ConformerForCTC";
    audio_classification: Wav2Vec2ConformerForSequenceClassification as "Wav2Vec2ConformerForSequenceClassification";
    audio_frame_classification: Wav2Vec2ConformerForAudioFrameClassification
        as "Wav2Vec2ConformerForAudioFrameClassification";
    audio_xvector: Wav2Vec2ConformerForXVector as "Wav2Vec2ConformerForXVector";
}

#[cfg(test)]
mod tests;
