//! [`Data2VecAudioModel`]: `transformers`' `modeling_data2vec_audio.Data2VecAudioModel`, the
//! wav2vec2 network of `autocandle-wav2vec2` with a layer-norm feature encoder, a stack of
//! positional convolutions with parameter-free layer norms, and a post-norm encoder.

use autocandle_core::{AutoRegister, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use autocandle_wav2vec2::{
    AudioBackbone, AudioEncoderOutput, FeatExtractNorm, PosConvKind, Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2Variant,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::Data2VecAudioConfig;

/// The Data2VecAudio speech encoder without a head (`Data2VecAudioModel`): `last_hidden_state`
/// `[batch, frames, hidden]` and `extract_features`. Weight names read as the `transformers`
/// state dict (`encoder.pos_conv_embed.layers.N.conv.weight`, ...).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Data2VecAudioModel")]
pub struct Data2VecAudioModel {
    inner: Wav2Vec2Model,
}

impl Data2VecAudioModel {
    /// Load from `vb` (the model root: `data2vec_audio` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &Data2VecAudioConfig) -> Result<Self> {
        cfg.validate()?;
        let variant = Wav2Vec2Variant {
            model_type: "data2vec-audio",
            feat_extract_norm: Some(FeatExtractNorm::Layer),
            feat_proj_layer_norm: true,
            has_extract_features: true,
            pos_conv: PosConvKind::Stacked {
                layers: cfg.num_conv_pos_embeddings,
                kernel_size: cfg.conv_pos_kernel_size,
            },
        };
        Ok(Self { inner: Wav2Vec2Model::load_variant(vb, &cfg.to_wav2vec2(), variant)? })
    }

    /// The shared wav2vec2 network.
    pub fn inner(&self) -> &Wav2Vec2Model {
        &self.inner
    }
}

impl AudioBackbone for Data2VecAudioModel {
    type Config = Data2VecAudioConfig;

    fn load_backbone(vb: VarBuilder<'_>, config: &Data2VecAudioConfig) -> Result<Self> {
        Self::new(vb, config)
    }

    fn audio_config(&self) -> &Wav2Vec2Config {
        self.inner.config()
    }

    fn model_type(&self) -> &'static str {
        "data2vec-audio"
    }

    fn encode(
        &self,
        input_values: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<AudioEncoderOutput> {
        self.inner.encode_audio(input_values, attention_mask, output_hidden_states)
    }

    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.inner)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.inner)
    }
}

impl LoadModel for Data2VecAudioModel {
    type Config = Data2VecAudioConfig;
    const BASE_MODEL_PREFIX: &'static str = "data2vec_audio";

    fn load(vb: VarBuilder<'_>, config: &Data2VecAudioConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for Data2VecAudioModel {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.inner)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.inner)
    }
}

impl Model for Data2VecAudioModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.inner.base_output(inputs)
    }
}
