//! [`WavLMModel`]: the feature encoder, the feature projection and the WavLM transformer, as
//! `transformers`' `modeling_wavlm.WavLMModel`.

use autocandle_core::{AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{WavLMConfig, MODEL_TYPE};
use crate::encoder::{EncoderOutput, WavLMEncoder};
use crate::w2v2_parts::{lengths_mask, FeatureEncoder, FeatureEncoderConfig, FeatureProjection};

/// What one run of the base model gives the heads.
#[derive(Debug, Clone)]
pub struct WavLMRun {
    /// The encoder's output (`hidden_states` filled when asked for).
    pub encoder: EncoderOutput,
    /// `[batch, frames, conv_dim[-1]]`: the normalised features before the projection.
    pub extract_features: Tensor,
    /// The frames of each clip, from `attention_mask` (`None` without one: every frame counts).
    pub frame_lengths: Option<Vec<usize>>,
}

/// WavLM without a head (`WavLMModel`): `last_hidden_state` `[batch, frames, hidden]` and
/// `extract_features` `[batch, frames, conv_dim[-1]]` from `input_values` `[batch, samples]`
/// and the optional sample-level `attention_mask`.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "WavLMModel")]
pub struct WavLMModel {
    feature_extractor: FeatureEncoder,
    feature_projection: FeatureProjection,
    encoder: WavLMEncoder,
    device: Device,
    dtype: DType,
}

impl WavLMModel {
    /// Load from `vb` (the checkpoint root of a `WavLMModel`, `wavlm` in a head's).
    pub fn new(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        config.validate()?;
        if config.add_adapter {
            return Err(Error::Unsupported(
                "WavLM's convolutional adapter (`add_adapter: true`) is not supported; no released WavLM \
                 checkpoint uses it"
                    .to_owned(),
            ));
        }
        let conv_out = *config.conv_dim.last().ok_or_else(|| Error::config(MODEL_TYPE, "`conv_dim` is empty"))?;
        let feature_config = FeatureEncoderConfig {
            conv_dim: &config.conv_dim,
            conv_kernel: &config.conv_kernel,
            conv_stride: &config.conv_stride,
            conv_bias: config.conv_bias,
            layer_norm: config.feat_extract_norm == "layer",
            act: config.feat_extract_activation,
        };
        Ok(Self {
            feature_extractor: FeatureEncoder::load(vb.pp("feature_extractor"), &feature_config)?,
            feature_projection: FeatureProjection::load(
                vb.pp("feature_projection"),
                conv_out,
                config.hidden_size,
                config.layer_norm_eps,
            )?,
            encoder: WavLMEncoder::load(vb.pp("encoder"), config)?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Run on `inputs` (`input_values`, optional `attention_mask` over the samples);
    /// `hidden_states`: also keep every layer's states.
    pub fn run(&self, inputs: &ModelInputs, hidden_states: bool) -> Result<WavLMRun> {
        let values = inputs.input_values()?;
        let (batch, samples) = values.dims2().map_err(|_| {
            Error::input(format!("`input_values` must be [batch, samples], got shape {:?}", values.dims()))
        })?;
        let values = values.to_dtype(self.dtype)?.to_device(&self.device)?;
        let features = self.feature_extractor.forward(&values)?;
        let frames = features.dim(1)?;
        let frame_lengths = match &inputs.attention_mask {
            Some(mask) => {
                if mask.dims() != [batch, samples] {
                    return Err(Error::input(format!(
                        "`attention_mask` must be [batch, samples] = [{batch}, {samples}] like `input_values`, \
                         got {:?}",
                        mask.dims()
                    )));
                }
                let lengths = self.feature_extractor.frame_lengths(mask)?;
                if lengths.contains(&0) {
                    return Err(Error::input(
                        "a clip's `attention_mask` covers too few samples for one frame: every clip needs real \
                         samples",
                    ));
                }
                Some(lengths)
            }
            None => None,
        };
        let (hidden, extract_features) = self.feature_projection.forward(&features)?;
        let mask = match &frame_lengths {
            Some(lengths) => Some(lengths_mask(lengths, frames, self.dtype, &self.device)?),
            None => None,
        };
        let encoder = self.encoder.forward(&hidden, mask.as_ref(), hidden_states)?;
        Ok(WavLMRun { encoder, extract_features, frame_lengths })
    }

    /// Frames the feature encoder makes of `samples` samples.
    pub fn output_length(&self, samples: usize) -> usize {
        self.feature_extractor.output_length(samples)
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
        let run = self.run(inputs, false)?;
        Ok(BaseModelOutput::new(run.encoder.last_hidden_state, None).with_extra("extract_features", run.extract_features))
    }
}
