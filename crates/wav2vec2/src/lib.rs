//! wav2vec2 for autocandle, after `transformers`' `modeling_wav2vec2` (5.25): [`Wav2Vec2Config`],
//! [`Wav2Vec2Model`] and the heads [`Wav2Vec2ForPreTraining`] (at inference), [`Wav2Vec2ForCtc`], [`Wav2Vec2ForSequenceClassification`],
//! [`Wav2Vec2ForAudioFrameClassification`] and [`Wav2Vec2ForXVector`].
//!
//! The building blocks are public so that HuBERT, Data2VecAudio, WavLM and kin reuse them:
//! the feature encoder ([`FeatureEncoder`]: group-norm and layer-norm forms), the feature
//! projection ([`FeatureProjection`]), the positional convolution ([`PositionalConvEmbedding`]:
//! weight norm, HuBERT's batch norm, Data2VecAudio's stack), the encoder pieces
//! ([`Attention`], [`FeedForward`], [`EncoderLayer`], [`Encoder`]: post-norm and stable layer
//! norm), the adapter ([`Adapter`]), the frame mask ([`feature_vector_lengths`],
//! [`Wav2Vec2Config::feat_extract_output_length`]) and the heads ([`CtcHead`],
//! [`SequenceClassificationHead`], [`FrameClassificationHead`], [`XVectorHead`]) over any
//! [`AudioBackbone`], registered with [`audio_heads!`]. They all read a [`Wav2Vec2Config`]: a
//! model of the family converts its own config into one.
//!
//! Weight names read as the `transformers` state dict (`wav2vec2.feature_extractor.conv_layers.N.conv.weight`,
//! `wav2vec2.encoder.layers.N.attention.q_proj.weight`, `lm_head.weight`). The positional
//! convolution's weight norm is read from `weight_g`/`weight_v` or from
//! `parametrizations.weight.original0/1`.

#![warn(missing_docs)]

mod config;
mod encoder;
mod feature;
mod heads;
mod model;
mod pretraining;

pub use config::{FeatExtractNorm, Wav2Vec2Config};
pub use encoder::{
    attention_bias, Adapter, Attention, AttnAdapterLayer, Encoder, EncoderLayer, EncoderOutput, FeedForward,
    PosConvKind, PositionalConvEmbedding,
};
pub use feature::{
    check_audio_inputs, conv1d, feature_vector_lengths, lengths_to_mask, mask_lengths, FeatureConvLayer,
    FeatureEncoder, FeatureProjection, TORCH_NORM_EPS,
};
pub use heads::{
    AudioHead, CtcHead, FrameClassificationHead, LayerWeights, SequenceClassificationHead, TdnnLayer, XVectorHead,
};
pub use model::{AudioBackbone, AudioEncoderOutput, SpeechEncoder, SpeechModel, Wav2Vec2Model, Wav2Vec2Variant};
pub use pretraining::{GumbelVectorQuantizer, Wav2Vec2ForPreTraining};

audio_heads! {
    backbone: Wav2Vec2Model, config: Wav2Vec2Config, prefix: "wav2vec2";
    ctc: Wav2Vec2ForCtc as "Wav2Vec2ForCTC";
    audio_classification: Wav2Vec2ForSequenceClassification as "Wav2Vec2ForSequenceClassification";
    audio_frame_classification: Wav2Vec2ForAudioFrameClassification as "Wav2Vec2ForAudioFrameClassification";
    audio_xvector: Wav2Vec2ForXVector as "Wav2Vec2ForXVector";
}

#[cfg(test)]
mod tests;
