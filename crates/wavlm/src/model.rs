//! [`WavLMModel`]: the feature encoder, the feature projection, the WavLM transformer and the
//! optional adapter, as `transformers`' `modeling_wavlm.WavLMModel`; the wav2vec2 parts are
//! `autocandle-wav2vec2`'s.

use autocandle_core::{AutoRegister, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use autocandle_wav2vec2::{
    check_audio_inputs, feature_vector_lengths, lengths_to_mask, Adapter, AudioBackbone, AudioEncoderOutput,
    FeatureEncoder, FeatureProjection, Wav2Vec2Config,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{WavLMConfig, MODEL_TYPE};
use crate::encoder::WavLMEncoder;

/// WavLM without a head (`WavLMModel`): `last_hidden_state` `[batch, frames, hidden]` and
/// `extract_features` `[batch, frames, conv_dim[-1]]` from `input_values` `[batch, samples]`
/// and the optional sample-level `attention_mask`. SpecAugment masking (training only) is not
/// applied.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "WavLMModel")]
pub struct WavLMModel {
    feature_extractor: FeatureEncoder,
    feature_projection: FeatureProjection,
    encoder: WavLMEncoder,
    adapter: Option<Adapter>,
    config: Wav2Vec2Config,
    device: Device,
    dtype: DType,
}

impl WavLMModel {
    /// Load from `vb` (the checkpoint root of a `WavLMModel`, `wavlm` in a head's).
    pub fn new(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        config.validate()?;
        let cfg = &config.wav2vec2;
        // `masked_spec_embed` (SpecAugment, training only) is a parameter of the model in
        // `transformers`: read it when the checkpoint has it, so the loading report stays clean.
        if vb.contains_tensor("masked_spec_embed") {
            vb.get(cfg.hidden_size, "masked_spec_embed")?;
        }
        Ok(Self {
            feature_extractor: FeatureEncoder::load(vb.pp("feature_extractor"), cfg)?,
            feature_projection: FeatureProjection::load(vb.pp("feature_projection"), cfg, true)?,
            encoder: WavLMEncoder::load(vb.pp("encoder"), config)?,
            adapter: if cfg.add_adapter { Some(Adapter::load(vb.pp("adapter"), cfg)?) } else { None },
            config: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Run the model: checks the inputs, runs the feature encoder, downsamples
    /// `attention_mask` to frames, projects, encodes and adapts.
    pub fn encode_audio(
        &self,
        input_values: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<AudioEncoderOutput> {
        check_audio_inputs(&self.config, input_values, attention_mask)?;
        let input_values = input_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let features = self.feature_extractor.forward(&input_values)?.transpose(1, 2)?;
        let frames = features.dim(1)?;
        let frame_mask = match attention_mask {
            Some(mask) => {
                let lengths = feature_vector_lengths(&self.config, frames, mask, false)?;
                Some(lengths_to_mask(&lengths, frames, self.dtype, &self.device)?)
            }
            None => None,
        };
        let (hidden, extract_features) = self.feature_projection.forward(&features)?;
        let encoded = self.encoder.forward(&hidden, frame_mask.as_ref(), output_hidden_states)?;
        let last = match &self.adapter {
            // The adapter's output is a transposed view; the heads' linear maps want it contiguous
            // (candle's strided matmul fallback gets batch rows after the first wrong on it).
            Some(adapter) => adapter.forward(&encoded.last_hidden_state)?.contiguous()?,
            None => encoded.last_hidden_state,
        };
        Ok(AudioEncoderOutput {
            last_hidden_state: last,
            extract_features: Some(extract_features),
            hidden_states: encoded.hidden_states,
        })
    }
}

impl AudioBackbone for WavLMModel {
    type Config = WavLMConfig;

    fn load_backbone(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        Self::new(vb, config)
    }

    fn audio_config(&self) -> &Wav2Vec2Config {
        &self.config
    }

    fn model_type(&self) -> &'static str {
        MODEL_TYPE
    }

    fn encode(
        &self,
        input_values: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<AudioEncoderOutput> {
        self.encode_audio(input_values, attention_mask, output_hidden_states)
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl LoadModel for WavLMModel {
    type Config = WavLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "wavlm";

    fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for WavLMModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for WavLMModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let out = self.encode_audio(inputs.input_values()?, inputs.attention_mask.as_ref(), false)?;
        let base = BaseModelOutput::new(out.last_hidden_state, None);
        Ok(match out.extract_features {
            Some(features) => base.with_extra("extract_features", features),
            None => base,
        })
    }
}
