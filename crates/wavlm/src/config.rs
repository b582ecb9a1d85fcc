//! `WavLMConfig`, field for field as `transformers`' `configuration_wavlm.WavLMConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The config of a WavLM model (`WavLMConfig`), with the `transformers` defaults (those of
/// microsoft/wavlm-base). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `WavLMConfig` does not declare are ignored; the
/// training-only ones (dropouts, SpecAugment masking, the quantizer of pre-training, the CTC
/// loss settings) are read and kept but change nothing at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "wavlm")]
#[serde(default)]
pub struct WavLMConfig {
    /// Vocabulary of the CTC head (`lm_head` outputs).
    pub vocab_size: Option<usize>,
    /// Width of the transformer's hidden states.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer inside each transformer layer.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub activation_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub feat_proj_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub final_dropout: f64,
    /// Training only: layer drop is a no-op here.
    pub layerdrop: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of the transformer's LayerNorms (the feature encoder's use 1e-5).
    pub layer_norm_eps: f64,
    /// `group`: a GroupNorm after the first convolution only; `layer`: a LayerNorm after every one.
    pub feat_extract_norm: String,
    /// Activation after each convolution of the feature encoder (and of the positional convolution).
    pub feat_extract_activation: Activation,
    /// Output channels of each convolution of the feature encoder.
    pub conv_dim: Vec<usize>,
    /// Stride of each convolution of the feature encoder.
    pub conv_stride: Vec<usize>,
    /// Kernel size of each convolution of the feature encoder.
    pub conv_kernel: Vec<usize>,
    /// Bias on the feature encoder's convolutions.
    pub conv_bias: bool,
    /// Kernel size of the positional convolution.
    pub num_conv_pos_embeddings: usize,
    /// Groups of the positional convolution.
    pub num_conv_pos_embedding_groups: usize,
    /// Buckets of the relative position bias (half for keys after the query, half before).
    pub num_buckets: usize,
    /// The distance (in frames) at which the logarithmic buckets end: farther offsets share the last bucket.
    pub max_bucket_distance: usize,
    /// Pre-norm transformer layers with a final LayerNorm (`WavLMEncoderStableLayerNorm`);
    /// post-norm layers (`WavLMEncoder`) otherwise.
    pub do_stable_layer_norm: bool,
    /// Training only (SpecAugment).
    pub apply_spec_augment: bool,
    /// Training only (SpecAugment); above 0 the checkpoint holds `masked_spec_embed`, unused here.
    pub mask_time_prob: f64,
    /// Training only (SpecAugment).
    pub mask_time_length: usize,
    /// Training only (SpecAugment).
    pub mask_time_min_masks: usize,
    /// Training only (SpecAugment).
    pub mask_feature_prob: f64,
    /// Training only (SpecAugment).
    pub mask_feature_length: usize,
    /// Pre-training only (quantizer).
    pub num_codevectors_per_group: usize,
    /// Pre-training only (quantizer).
    pub num_codevector_groups: usize,
    /// Pre-training only.
    pub contrastive_logits_temperature: f64,
    /// Pre-training only.
    pub num_negatives: usize,
    /// Pre-training only (quantizer).
    pub codevector_dim: usize,
    /// Pre-training only.
    pub proj_codevector_dim: usize,
    /// Pre-training only.
    pub diversity_loss_weight: f64,
    /// Training only (CTC loss).
    pub ctc_loss_reduction: String,
    /// Training only (CTC loss).
    pub ctc_zero_infinity: bool,
    /// Classification and x-vector heads: a softmax-weighted sum of the input of the first
    /// transformer layer and every layer's output (`layer_weights`) instead of the last hidden state.
    pub use_weighted_layer_sum: bool,
    /// Width of the sequence classifier's projection.
    pub classifier_proj_size: usize,
    /// Channels of each TDNN layer of the x-vector head.
    pub tdnn_dim: Vec<usize>,
    /// Kernel size of each TDNN layer.
    pub tdnn_kernel: Vec<usize>,
    /// Dilation of each TDNN layer.
    pub tdnn_dilation: Vec<usize>,
    /// Width of the x-vector embeddings.
    pub xvector_output_dim: usize,
    /// Unused by every head `transformers` maps.
    pub num_ctc_classes: usize,
    /// The CTC blank token (`pad_token_id`).
    pub pad_token_id: Option<u32>,
    /// Convolutional adapter after the encoder (not supported here: loading fails with a clear error).
    pub add_adapter: bool,
    /// Adapter kernel size.
    pub adapter_kernel_size: usize,
    /// Adapter stride.
    pub adapter_stride: usize,
    /// Adapter layers.
    pub num_adapter_layers: usize,
    /// Adapter width; `None` is `hidden_size`.
    pub output_hidden_size: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for WavLMConfig {
    /// `WavLMConfig()` in `transformers`: the WavLM-Base shape.
    fn default() -> Self {
        Self {
            vocab_size: Some(32),
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout: 0.1,
            activation_dropout: 0.1,
            attention_dropout: 0.1,
            feat_proj_dropout: 0.0,
            final_dropout: 0.1,
            layerdrop: 0.1,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            feat_extract_norm: "group".to_owned(),
            feat_extract_activation: Activation::Gelu,
            conv_dim: vec![512; 7],
            conv_stride: vec![5, 2, 2, 2, 2, 2, 2],
            conv_kernel: vec![10, 3, 3, 3, 3, 2, 2],
            conv_bias: false,
            num_conv_pos_embeddings: 128,
            num_conv_pos_embedding_groups: 16,
            num_buckets: 320,
            max_bucket_distance: 800,
            do_stable_layer_norm: false,
            apply_spec_augment: true,
            mask_time_prob: 0.05,
            mask_time_length: 10,
            mask_time_min_masks: 2,
            mask_feature_prob: 0.0,
            mask_feature_length: 10,
            num_codevectors_per_group: 320,
            num_codevector_groups: 2,
            contrastive_logits_temperature: 0.1,
            num_negatives: 100,
            codevector_dim: 256,
            proj_codevector_dim: 256,
            diversity_loss_weight: 0.1,
            ctc_loss_reduction: "mean".to_owned(),
            ctc_zero_infinity: false,
            use_weighted_layer_sum: false,
            classifier_proj_size: 256,
            tdnn_dim: vec![512, 512, 512, 512, 1500],
            tdnn_kernel: vec![5, 3, 3, 1, 1],
            tdnn_dilation: vec![1, 2, 3, 1, 1],
            xvector_output_dim: 512,
            num_ctc_classes: 80,
            pad_token_id: Some(0),
            add_adapter: false,
            adapter_kernel_size: 3,
            adapter_stride: 2,
            num_adapter_layers: 3,
            output_hidden_size: None,
            labels: LabelConfig::default(),
        }
    }
}

/// The model type in error messages.
pub(crate) const MODEL_TYPE: &str = "wavlm";

impl WavLMConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// `num_buckets // 2 // 2`: offsets below this many frames have a bucket each.
    pub fn max_exact_distance(&self) -> usize {
        self.num_buckets / 4
    }

    /// Check what the model needs of the config: errors are `InvalidConfig` naming the field
    /// and what to change.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(MODEL_TYPE, message));
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("num_conv_pos_embeddings", self.num_conv_pos_embeddings),
            ("num_conv_pos_embedding_groups", self.num_conv_pos_embedding_groups),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_conv_pos_embedding_groups) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_conv_pos_embedding_groups` ({})",
                self.hidden_size, self.num_conv_pos_embedding_groups
            ));
        }
        let layers = self.conv_dim.len();
        if layers == 0 {
            return invalid("`conv_dim` is empty: the feature encoder needs at least one convolution".to_owned());
        }
        if self.conv_stride.len() != layers || self.conv_kernel.len() != layers {
            return invalid(format!(
                "`conv_dim`, `conv_stride` and `conv_kernel` must have one entry per convolution, got lengths {}, \
                 {} and {}",
                layers,
                self.conv_stride.len(),
                self.conv_kernel.len()
            ));
        }
        for (name, values) in [("conv_dim", &self.conv_dim), ("conv_stride", &self.conv_stride), ("conv_kernel", &self.conv_kernel)] {
            if values.contains(&0) {
                return invalid(format!("every entry of `{name}` must be at least 1, got {values:?}"));
            }
        }
        if !matches!(self.feat_extract_norm.as_str(), "group" | "layer") {
            return invalid(format!(
                "`feat_extract_norm` is `{}`, but has to be one of `group`, `layer`",
                self.feat_extract_norm
            ));
        }
        let max_exact = self.max_exact_distance();
        if max_exact == 0 {
            return invalid(format!(
                "`num_buckets` must be at least 4 (half the buckets for each direction, half of those \
                 exact), got {}",
                self.num_buckets
            ));
        }
        if self.max_bucket_distance <= max_exact {
            return invalid(format!(
                "`max_bucket_distance` ({}) must be larger than `num_buckets // 4` ({max_exact}), where the \
                 logarithmic buckets start",
                self.max_bucket_distance
            ));
        }
        Ok(())
    }

    /// Check the x-vector head's settings.
    pub fn validate_xvector(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(MODEL_TYPE, message));
        let n = self.tdnn_dim.len();
        if n == 0 {
            return invalid("`tdnn_dim` is empty: the x-vector head needs at least one TDNN layer".to_owned());
        }
        if self.tdnn_kernel.len() != n || self.tdnn_dilation.len() != n {
            return invalid(format!(
                "`tdnn_dim`, `tdnn_kernel` and `tdnn_dilation` must have one entry per TDNN layer, got \
                 lengths {n}, {} and {}",
                self.tdnn_kernel.len(),
                self.tdnn_dilation.len()
            ));
        }
        Ok(())
    }
}
