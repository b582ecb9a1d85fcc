//! [`Wav2Vec2Model`]: feature encoder, feature projection, encoder and adapter, as
//! `transformers`' `modeling_wav2vec2.Wav2Vec2Model`, with the switches HuBERT and
//! Data2VecAudio need ([`Wav2Vec2Variant`]); and [`AudioBackbone`], what the audio heads of
//! `crate::heads` run on.

use std::fmt::Debug;

use autocandle_core::{AutoRegister, BaseModelOutput, ModelInputs, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{FeatExtractNorm, Wav2Vec2Config};
use crate::encoder::{Adapter, Encoder, EncoderOutput, PosConvKind};
use crate::feature::{check_audio_inputs, feature_vector_lengths, lengths_to_mask, FeatureEncoder, FeatureProjection};

/// What an audio backbone returns to the heads.
#[derive(Debug, Clone)]
pub struct AudioEncoderOutput {
    /// `[batch, frames, hidden]` (`output_hidden_size` after an adapter).
    pub last_hidden_state: Tensor,
    /// `[batch, frames, conv_dim[-1]]`: the feature encoder's output after the projection's
    /// layer norm (`extract_features`), where the model has one.
    pub extract_features: Option<Tensor>,
    /// With `output_hidden_states`: `num_hidden_layers + 1` tensors `[batch, frames, hidden]`
    /// as `transformers`' `hidden_states` (see [`crate::EncoderOutput`]); else empty.
    pub hidden_states: Vec<Tensor>,
}

/// A speech encoder the audio heads (CTC, sequence and frame classification, x-vector) of
/// this crate run on: wav2vec2, HuBERT, Data2VecAudio, WavLM, ... Implement it for a new
/// encoder and define its heads with [`crate::audio_heads!`].
pub trait AudioBackbone: Debug + Send + Sync + Sized {
    /// The typed config the backbone is built from.
    type Config;

    /// Build the backbone from `vb` (the base model root, e.g. `wav2vec2` in head models).
    fn load_backbone(vb: VarBuilder<'_>, config: &Self::Config) -> Result<Self>;

    /// The config the heads read (sizes, labels, TDNN layers, `add_adapter`, the convolution
    /// stack for the frame lengths), as a [`Wav2Vec2Config`].
    fn audio_config(&self) -> &Wav2Vec2Config;

    /// The `model_type` named in errors.
    fn model_type(&self) -> &'static str;

    /// Run the backbone on `input_values` `[batch, samples]` with the optional sample-level
    /// `attention_mask` `[batch, samples]`.
    fn encode(
        &self,
        input_values: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<AudioEncoderOutput>;

    /// The device the weights live on.
    fn device(&self) -> &Device;

    /// The dtype of the weights.
    fn dtype(&self) -> DType;
}

/// How a wav2vec2-family model differs from wav2vec2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wav2Vec2Variant {
    /// The `model_type` named in errors.
    pub model_type: &'static str,
    /// The feature encoder's norm; `None` is `feat_extract_norm` of the config
    /// (Data2VecAudio: always `Layer`).
    pub feat_extract_norm: Option<FeatExtractNorm>,
    /// Whether the feature projection has its layer norm (HuBERT's `feat_proj_layer_norm`).
    pub feat_proj_layer_norm: bool,
    /// Whether the base output has `extract_features` (not HuBERT's).
    pub has_extract_features: bool,
    /// The positional convolution.
    pub pos_conv: PosConvKind,
}

impl Wav2Vec2Variant {
    /// wav2vec2 itself.
    pub const WAV2VEC2: Self = Self {
        model_type: "wav2vec2",
        feat_extract_norm: None,
        feat_proj_layer_norm: true,
        has_extract_features: true,
        pos_conv: PosConvKind::WeightNorm,
    };
}

/// The encoder stage of a wav2vec2-style model, between the feature projection and the
/// adapter: wav2vec2's [`Encoder`], WavLM's, the conformer's. [`SpeechModel`] runs it.
pub trait SpeechEncoder: Debug + Send + Sync {
    /// Encode `hidden` `[batch, frames, hidden]`; `frame_mask` `[batch, frames]` (1 real,
    /// 0 padding) zeroes the padded frames and masks them out as keys.
    fn encode_frames(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput>;
}

impl SpeechEncoder for Encoder {
    fn encode_frames(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        self.forward(hidden, frame_mask, output_hidden_states)
    }
}

/// The network every wav2vec2-style model shares around its encoder `E`: the feature
/// encoder, the feature projection, `E` and the optional adapter, with the input checks and
/// the sample-to-frame mask of `transformers`' `Wav2Vec2Model.forward`. wav2vec2, HuBERT and
/// Data2VecAudio run it with [`Encoder`]; WavLM and the conformer with their own encoders.
/// [`speech_backbone!`](crate::speech_backbone) gives a model holding one as `inner` its
/// `AudioBackbone`, `LoadModel`, `PreTrainedModel` and `Model` implementations.
#[derive(Debug)]
pub struct SpeechModel<E> {
    feature_extractor: FeatureEncoder,
    feature_projection: FeatureProjection,
    encoder: E,
    adapter: Option<Adapter>,
    config: Wav2Vec2Config,
    has_extract_features: bool,
    device: Device,
    dtype: DType,
}

impl<E: SpeechEncoder> SpeechModel<E> {
    /// Build around `encoder` from `vb` (the model root): the feature encoder with `norm`, the
    /// feature projection (with its layer norm when `feat_proj_layer_norm`) and the adapter
    /// when `add_adapter`. `has_extract_features`: whether the outputs carry
    /// `extract_features` (not HuBERT's). `masked_spec_embed` (SpecAugment, training only) is
    /// read when the checkpoint has it, so the loading report stays clean.
    pub fn load(
        vb: VarBuilder<'_>,
        cfg: &Wav2Vec2Config,
        norm: FeatExtractNorm,
        feat_proj_layer_norm: bool,
        has_extract_features: bool,
        encoder: E,
    ) -> Result<Self> {
        if vb.contains_tensor("masked_spec_embed") {
            vb.get(cfg.hidden_size, "masked_spec_embed")?;
        }
        Ok(Self {
            feature_extractor: FeatureEncoder::load_with_norm(vb.pp("feature_extractor"), cfg, norm)?,
            feature_projection: FeatureProjection::load(vb.pp("feature_projection"), cfg, feat_proj_layer_norm)?,
            encoder,
            adapter: if cfg.add_adapter { Some(Adapter::load(vb.pp("adapter"), cfg)?) } else { None },
            config: cfg.clone(),
            has_extract_features,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &Wav2Vec2Config {
        &self.config
    }

    /// The encoder stage.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Run the model: checks the inputs, runs the feature encoder, downsamples
    /// `attention_mask` to frames (`_get_feature_vector_attention_mask`), projects, encodes
    /// and adapts.
    pub fn encode_audio(
        &self,
        input_values: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<AudioEncoderOutput> {
        check_audio_inputs(&self.config, input_values, attention_mask)?;
        let input_values = input_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        // Contiguous: candle's batched matmul mis-reads a transposed `[batch, frames, channels]`
        // left operand (candle#3758).
        let features = self.feature_extractor.forward(&input_values)?.transpose(1, 2)?.contiguous()?;
        let frames = features.dim(1)?;
        let frame_mask = match attention_mask {
            Some(mask) => {
                let lengths = feature_vector_lengths(&self.config, frames, mask, false)?;
                Some(lengths_to_mask(&lengths, frames, self.dtype, &self.device)?)
            }
            None => None,
        };
        let (hidden, extract_features) = self.feature_projection.forward(&features)?;
        let encoded = self.encoder.encode_frames(&hidden, frame_mask.as_ref(), output_hidden_states)?;
        let last = match &self.adapter {
            // The adapter's output is a transposed view: contiguous for the heads' linear maps.
            Some(adapter) => adapter.forward(&encoded.last_hidden_state)?.contiguous()?,
            None => encoded.last_hidden_state,
        };
        Ok(AudioEncoderOutput {
            last_hidden_state: last,
            extract_features: self.has_extract_features.then_some(extract_features),
            hidden_states: encoded.hidden_states,
        })
    }

    /// The base model output of `inputs` (`input_values`, `attention_mask`):
    /// `last_hidden_state`, and `extract_features` where the model has them.
    pub fn base_output(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let out = self.encode_audio(inputs.input_values()?, inputs.attention_mask.as_ref(), false)?;
        let base = BaseModelOutput::new(out.last_hidden_state, None);
        Ok(match out.extract_features {
            Some(features) => base.with_extra("extract_features", features),
            None => base,
        })
    }
}

impl SpeechModel<Encoder> {
    /// wav2vec2's network with the switches of `variant` (HuBERT, Data2VecAudio), from `vb`
    /// (its root: `wav2vec2` in head models).
    pub fn load_variant(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, variant: Wav2Vec2Variant) -> Result<Self> {
        cfg.validate_as(variant.model_type)?;
        let norm = variant.feat_extract_norm.unwrap_or(cfg.feat_extract_norm);
        let encoder = Encoder::load(vb.pp("encoder"), cfg, variant.pos_conv)?;
        Self::load(vb, cfg, norm, variant.feat_proj_layer_norm, variant.has_extract_features, encoder)
    }
}

/// The `AudioBackbone`, `LoadModel`, `PreTrainedModel` and `Model` implementations of a
/// speech model `$model` whose field `inner` is a [`SpeechModel`] and that has
/// `fn new(vb: VarBuilder<'_>, config: &$config) -> Result<Self>`. `$prefix` is its
/// `BASE_MODEL_PREFIX` (`"wavlm"`), `$model_type` the `model_type` named in errors. The calling
/// crate needs `autocandle-core`, `candle-core` and `candle-nn`.
#[macro_export]
macro_rules! speech_backbone {
    ($model:ty, config: $config:ty, prefix: $prefix:literal, model_type: $model_type:expr) => {
        impl $crate::AudioBackbone for $model {
            type Config = $config;

            fn load_backbone(vb: ::candle_nn::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                Self::new(vb, config)
            }

            fn audio_config(&self) -> &$crate::Wav2Vec2Config {
                self.inner.config()
            }

            fn model_type(&self) -> &'static str {
                $model_type
            }

            fn encode(
                &self,
                input_values: &::candle_core::Tensor,
                attention_mask: Option<&::candle_core::Tensor>,
                output_hidden_states: bool,
            ) -> ::autocandle_core::Result<$crate::AudioEncoderOutput> {
                self.inner.encode_audio(input_values, attention_mask, output_hidden_states)
            }

            fn device(&self) -> &::candle_core::Device {
                self.inner.device()
            }

            fn dtype(&self) -> ::candle_core::DType {
                self.inner.dtype()
            }
        }

        impl ::autocandle_core::LoadModel for $model {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load(vb: ::candle_nn::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                Self::new(vb, config)
            }
        }

        impl ::autocandle_core::PreTrainedModel for $model {
            fn device(&self) -> &::candle_core::Device {
                self.inner.device()
            }

            fn dtype(&self) -> ::candle_core::DType {
                self.inner.dtype()
            }
        }

        impl ::autocandle_core::Model for $model {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                self.inner.base_output(inputs)
            }
        }
    };
}

/// The wav2vec2 speech encoder without a head (`Wav2Vec2Model`): `last_hidden_state`
/// `[batch, frames, hidden]` and `extract_features` `[batch, frames, conv_dim[-1]]`.
///
/// Weight names read as the `transformers` state dict (`feature_extractor.conv_layers.N.conv.weight`,
/// `feature_projection.projection.weight`, `encoder.pos_conv_embed.conv.weight_g`,
/// `encoder.layers.N.attention.q_proj.weight`). SpecAugment masking (training only) is not
/// applied.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Wav2Vec2Model")]
pub struct Wav2Vec2Model {
    inner: SpeechModel<Encoder>,
}

impl Wav2Vec2Model {
    /// Load from `vb` (its root: `wav2vec2` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        Ok(Self { inner: SpeechModel::load_variant(vb, cfg, Wav2Vec2Variant::WAV2VEC2)? })
    }

    /// The network.
    pub fn inner(&self) -> &SpeechModel<Encoder> {
        &self.inner
    }
}

crate::speech_backbone!(Wav2Vec2Model, config: Wav2Vec2Config, prefix: "wav2vec2", model_type: "wav2vec2");
