//! Data2VecAudio for autocandle, after `transformers`' `modeling_data2vec_audio` (5.25):
//! [`Data2VecAudioConfig`], [`Data2VecAudioModel`] and the heads [`Data2VecAudioForCtc`],
//! [`Data2VecAudioForSequenceClassification`], [`Data2VecAudioForAudioFrameClassification`]
//! and [`Data2VecAudioForXVector`].
//!
//! Built from `autocandle-wav2vec2`'s building blocks and heads: a layer-norm feature
//! encoder, `num_conv_pos_embeddings` positional convolutions of kernel
//! `conv_pos_kernel_size` (each with a parameter-free layer norm), a post-norm encoder and the
//! optional adapter. Weight names read as the `transformers` state dict
//! (`data2vec_audio.encoder.layers.N...`, `lm_head.weight`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::Data2VecAudioConfig;
pub use model::Data2VecAudioModel;

autocandle_wav2vec2::audio_heads! {
    backbone: Data2VecAudioModel, config: Data2VecAudioConfig, prefix: "data2vec_audio";
    ctc: Data2VecAudioForCtc as "Data2VecAudioForCTC";
    audio_classification: Data2VecAudioForSequenceClassification as "Data2VecAudioForSequenceClassification";
    audio_frame_classification: Data2VecAudioForAudioFrameClassification as "Data2VecAudioForAudioFrameClassification";
    audio_xvector: Data2VecAudioForXVector as "Data2VecAudioForXVector";
}

#[cfg(test)]
mod tests;
