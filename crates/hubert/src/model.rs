//! [`HubertModel`]: `transformers`' `modeling_hubert.HubertModel`, the wav2vec2 network of
//! `autocandle-wav2vec2` with HuBERT's switches (`feat_proj_layer_norm`,
//! `conv_pos_batch_norm`) and no `extract_features` output.

use autocandle_core::{AutoRegister, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use autocandle_wav2vec2::{
    AudioBackbone, AudioEncoderOutput, PosConvKind, Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2Variant,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::HubertConfig;

/// The HuBERT speech encoder without a head (`HubertModel`): `last_hidden_state`
/// `[batch, frames, hidden]`. Weight names read as the `transformers` state dict
/// (`feature_extractor.conv_layers.N.conv.weight`, `encoder.layers.N.attention.q_proj.weight`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "HubertModel")]
pub struct HubertModel {
    inner: Wav2Vec2Model,
}

impl HubertModel {
    /// Load from `vb` (the model root: `hubert` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &HubertConfig) -> Result<Self> {
        cfg.validate()?;
        let variant = Wav2Vec2Variant {
            model_type: "hubert",
            feat_extract_norm: None,
            feat_proj_layer_norm: cfg.feat_proj_layer_norm,
            has_extract_features: false,
            pos_conv: if cfg.conv_pos_batch_norm { PosConvKind::BatchNorm } else { PosConvKind::WeightNorm },
        };
        Ok(Self { inner: Wav2Vec2Model::load_variant(vb, &cfg.to_wav2vec2(), variant)? })
    }

    /// The shared wav2vec2 network.
    pub fn inner(&self) -> &Wav2Vec2Model {
        &self.inner
    }
}

impl AudioBackbone for HubertModel {
    type Config = HubertConfig;

    fn load_backbone(vb: VarBuilder<'_>, config: &HubertConfig) -> Result<Self> {
        Self::new(vb, config)
    }

    fn audio_config(&self) -> &Wav2Vec2Config {
        self.inner.config()
    }

    fn model_type(&self) -> &'static str {
        "hubert"
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

impl LoadModel for HubertModel {
    type Config = HubertConfig;
    const BASE_MODEL_PREFIX: &'static str = "hubert";

    fn load(vb: VarBuilder<'_>, config: &HubertConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for HubertModel {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.inner)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.inner)
    }
}

impl Model for HubertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.inner.base_output(inputs)
    }
}
