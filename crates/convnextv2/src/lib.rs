//! ConvNeXT V2 for autocandle, after `transformers`' `modeling_convnextv2` (5.25):
//! [`ConvNextV2Config`], [`ConvNextV2Model`], the head [`ConvNextV2ForImageClassification`] and
//! [`ConvNextV2Backbone`]. The network is ConvNeXT's (`autocandle-convnext`) with global
//! response normalisation (`grn`) after each layer's activation and no layer scale.
//!
//! Weight names read as the `transformers` state dict (`convnextv2.encoder.stages.N.layers.M.grn.weight`,
//! `classifier.weight`).

#![warn(missing_docs)]

use autocandle_convnext::{ConvNextBackbone, ConvNextConfig, ConvNextForImageClassification, ConvNextNetwork, Variant};
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, ForImageClassification, ImageClassifierOutput, LabelConfig, LoadModel,
    Model, ModelInputs, PreTrainedModel, Result,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

pub use autocandle_convnext::Size2;

/// The config of a ConvNeXT V2 model (`ConvNextV2Config`), with the `transformers` defaults
/// (those of facebook/convnextv2-tiny-1k-224). A field `config.json` leaves out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "convnextv2")]
#[serde(default)]
pub struct ConvNextV2Config {
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Side of the patchify stem's kernel and stride.
    pub patch_size: Size2,
    /// Stages used (the first `num_stages` of `hidden_sizes` and `depths`).
    pub num_stages: usize,
    /// Channels of each stage.
    pub hidden_sizes: Vec<usize>,
    /// Layers in each stage.
    pub depths: Vec<usize>,
    /// Activation between the two pointwise layers (`gelu`).
    pub hidden_act: Activation,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of the final LayerNorm on the pooled features (the others use 1e-6).
    pub layer_norm_eps: f64,
    /// Training only: stochastic depth is a no-op here.
    pub drop_path_rate: f64,
    /// The training image size; any size at least `patch_size * 2^(num_stages - 1)` works.
    pub image_size: Size2,
    /// Backbone outputs by stage name (`stem`, `stage1`, ...).
    pub out_features: Option<Vec<String>>,
    /// Backbone outputs by stage index (0 is the stem, negative counts from the end).
    pub out_indices: Option<Vec<i64>>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ConvNextV2Config {
    /// `ConvNextV2Config()` in `transformers`: the ConvNeXT V2-tiny shape.
    fn default() -> Self {
        let v1 = ConvNextConfig::default();
        Self {
            num_channels: v1.num_channels,
            patch_size: v1.patch_size,
            num_stages: v1.num_stages,
            hidden_sizes: v1.hidden_sizes,
            depths: v1.depths,
            hidden_act: v1.hidden_act,
            initializer_range: v1.initializer_range,
            layer_norm_eps: v1.layer_norm_eps,
            drop_path_rate: v1.drop_path_rate,
            image_size: v1.image_size,
            out_features: None,
            out_indices: None,
            labels: LabelConfig::default(),
        }
    }
}

impl ConvNextV2Config {
    /// The same network as a [`ConvNextConfig`] (without layer scale), for the shared code.
    pub fn to_convnext(&self) -> ConvNextConfig {
        ConvNextConfig {
            num_channels: self.num_channels,
            patch_size: self.patch_size,
            num_stages: self.num_stages,
            hidden_sizes: self.hidden_sizes.clone(),
            depths: self.depths.clone(),
            hidden_act: self.hidden_act,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            layer_scale_init_value: 0.0,
            drop_path_rate: self.drop_path_rate,
            image_size: self.image_size,
            out_features: self.out_features.clone(),
            out_indices: self.out_indices.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// The ConvNeXT V2 without a head (`ConvNextV2Model`): `last_hidden_state` `[B, C, h, w]` and
/// `pooler_output` `[B, C]` (the final LayerNorm of the spatial mean).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "ConvNextV2Model")]
pub struct ConvNextV2Model {
    network: ConvNextNetwork,
}

impl LoadModel for ConvNextV2Model {
    type Config = ConvNextV2Config;
    const BASE_MODEL_PREFIX: &'static str = "convnextv2";

    fn load(vb: VarBuilder<'_>, config: &ConvNextV2Config) -> Result<Self> {
        Ok(Self { network: ConvNextNetwork::load(vb, &config.to_convnext(), Variant::V2, true, "convnextv2")? })
    }
}

impl PreTrainedModel for ConvNextV2Model {
    fn device(&self) -> &Device {
        self.network.device()
    }

    fn dtype(&self) -> DType {
        self.network.dtype()
    }
}

impl Model for ConvNextV2Model {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (last, pooled) = self.network.forward(inputs.pixel_values()?)?;
        Ok(BaseModelOutput::new(last, Some(pooled)))
    }
}

/// ConvNeXT V2 with a linear `classifier` on the pooled features
/// (`ConvNextV2ForImageClassification`); none with `num_labels = 0`.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification")]
pub struct ConvNextV2ForImageClassification {
    inner: ConvNextForImageClassification,
}

impl LoadModel for ConvNextV2ForImageClassification {
    type Config = ConvNextV2Config;
    const BASE_MODEL_PREFIX: &'static str = "convnextv2";

    fn load(vb: VarBuilder<'_>, config: &ConvNextV2Config) -> Result<Self> {
        let inner = ConvNextForImageClassification::load_variant(vb, &config.to_convnext(), Variant::V2, "convnextv2")?;
        Ok(Self { inner })
    }
}

impl PreTrainedModel for ConvNextV2ForImageClassification {
    fn device(&self) -> &Device {
        self.inner.device()
    }

    fn dtype(&self) -> DType {
        self.inner.dtype()
    }
}

impl ForImageClassification for ConvNextV2ForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// `ConvNextV2Backbone`: the feature maps `[B, C_i, h_i, w_i]` of the stages that
/// `out_features` / `out_indices` name, each through its channels-first LayerNorm.
#[derive(Debug)]
pub struct ConvNextV2Backbone {
    inner: ConvNextBackbone,
}

impl ConvNextV2Backbone {
    /// Load from the backbone root `vb` (`embeddings`, `encoder`, `hidden_states_norms`).
    pub fn load(vb: VarBuilder<'_>, config: &ConvNextV2Config) -> Result<Self> {
        Ok(Self { inner: ConvNextBackbone::load(vb, &config.to_convnext(), Variant::V2)? })
    }

    /// Channels of each returned feature map.
    pub fn channels(&self) -> &[usize] {
        self.inner.channels()
    }

    /// The feature maps for `pixel_values` `[B, num_channels, H, W]`.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        self.inner.forward(pixel_values)
    }
}

#[cfg(test)]
mod tests;
