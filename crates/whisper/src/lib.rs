//! Whisper for autocandle, after `transformers`' `modeling_whisper` (5.25): [`WhisperConfig`],
//! the bare encoder-decoder [`WhisperModel`] and the heads [`WhisperForConditionalGeneration`]
//! (`speech-seq2seq`), [`WhisperForAudioClassification`] and [`WhisperForCausalLM`].
//!
//! Weight names read exactly like the `transformers` state dict (`model.encoder.conv1.weight`,
//! `model.encoder.embed_positions.weight`, `model.decoder.layers.N.encoder_attn.k_proj.weight`,
//! `proj_out.weight`, `encoder.*` / `projector.*` / `classifier.*` of the classifier, ...), and
//! every type registers itself with `#[derive(AutoRegister)]` under model type `whisper`.
//!
//! The encoder takes `input_features` `[batch, num_mel_bins, 2 * max_source_positions]` (the
//! log-mel spectrogram of `WhisperFeatureExtractor`, 3000 frames for 30 s), exactly as many
//! frames as `transformers` requires. The speech recognition head implements
//! [`autocandle_core::ForSeq2SeqLm`] (and the marker [`autocandle_core::ForSpeechSeq2Seq`])
//! with an incremental decoder on a [`autocandle_core::Seq2SeqCache`] whose cross-attention
//! keys and values are computed once per encoder output. Inference only: dropout, layer drop
//! and SpecAugment are no-ops; there is no `encoder_outputs` or `inputs_embeds` argument.

#![warn(missing_docs)]

mod config;
mod heads;
mod inputs;
mod model;

pub use config::WhisperConfig;
pub use heads::{WhisperForAudioClassification, WhisperForCausalLM, WhisperForConditionalGeneration};
pub use model::{DecoderCache, DecoderPositions, WhisperAttention, WhisperDecoder, WhisperEncoder, WhisperModel};

#[cfg(test)]
mod tests;
