//! `ResNetConfig`, field for field as `transformers`' `configuration_resnet.ResNetConfig` (5.25),
//! with the backbone's `out_features` / `out_indices`.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The residual layer of a ResNet (`layer_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerType {
    /// Two 3x3 convolutions (ResNet-18, -34).
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand by 4 (ResNet-50 and larger).
    Bottleneck,
}

/// The config of a ResNet model (`ResNetConfig`), with the `transformers` defaults (those of
/// microsoft/resnet-50). A field `config.json` leaves out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "resnet")]
#[serde(default)]
pub struct ResNetConfig {
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Channels of the stem (the 7x7 convolution).
    pub embedding_size: usize,
    /// Channels of each stage's output.
    pub hidden_sizes: Vec<usize>,
    /// Residual layers in each stage.
    pub depths: Vec<usize>,
    /// `basic` or `bottleneck`.
    pub layer_type: LayerType,
    /// Activation after every convolution but the last of a layer, and after the residual sum.
    pub hidden_act: Activation,
    /// The first stage downsamples with stride 2.
    pub downsample_in_first_stage: bool,
    /// In a bottleneck layer, the first 1x1 convolution downsamples rather than the 3x3 one.
    pub downsample_in_bottleneck: bool,
    /// Backbone outputs by stage name (`stem`, `stage1`, ...); see [`ResNetConfig::out_stage_indices`].
    pub out_features: Option<Vec<String>>,
    /// Backbone outputs by stage index (0 is the stem, negative counts from the end).
    pub out_indices: Option<Vec<i64>>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ResNetConfig {
    /// `ResNetConfig()` in `transformers`: the ResNet-50 shape.
    fn default() -> Self {
        Self {
            num_channels: 3,
            embedding_size: 64,
            hidden_sizes: vec![256, 512, 1024, 2048],
            depths: vec![3, 4, 6, 3],
            layer_type: LayerType::Bottleneck,
            hidden_act: Activation::Relu,
            downsample_in_first_stage: false,
            downsample_in_bottleneck: false,
            out_features: None,
            out_indices: None,
            labels: LabelConfig::default(),
        }
    }
}

impl ResNetConfig {
    /// `stem`, `stage1`, ..., `stageN` (transformers' `stage_names`).
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once("stem".to_string()).chain((1..=self.depths.len()).map(|i| format!("stage{i}"))).collect()
    }

    /// Channels of each stage name: `embedding_size`, then `hidden_sizes`.
    pub fn stage_channels(&self) -> Vec<usize> {
        std::iter::once(self.embedding_size).chain(self.hidden_sizes.iter().copied()).collect()
    }

    /// The stage indices the backbone returns, as transformers' `BackboneConfigMixin` aligns
    /// `out_features` and `out_indices`: neither given is the last stage.
    pub fn out_stage_indices(&self) -> Result<Vec<usize>> {
        let names = self.stage_names();
        out_stage_indices("resnet", &names, self.out_features.as_deref(), self.out_indices.as_deref())
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("resnet", message));
        if self.hidden_sizes.len() != self.depths.len() {
            return invalid(format!(
                "`hidden_sizes` has {} entries but `depths` has {}: give one of each per stage",
                self.hidden_sizes.len(),
                self.depths.len()
            ));
        }
        if self.depths.is_empty() {
            return invalid("`depths` is empty: a ResNet needs at least one stage".into());
        }
        for (name, value) in [("num_channels", self.num_channels), ("embedding_size", self.embedding_size)] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if let Some(i) = self.depths.iter().position(|&d| d == 0) {
            return invalid(format!("`depths[{i}]` is 0: every stage needs at least one layer"));
        }
        let min = if self.layer_type == LayerType::Bottleneck { 4 } else { 1 };
        if let Some(&h) = self.hidden_sizes.iter().find(|&&h| h < min) {
            return invalid(format!(
                "a hidden size of {h} is too small: a {:?} layer needs at least {min} channels",
                self.layer_type
            ));
        }
        self.out_stage_indices().map(|_| ())
    }
}

/// `out_features` / `out_indices` aligned with `stage_names` (shared with the other backbones).
pub use autocandle_core::backbone::out_stage_indices;
