//! `Wav2Vec2Config`, field for field as `transformers`' `configuration_wav2vec2.Wav2Vec2Config` (5.25),
//! and its checks.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The normalisation of the convolutional feature encoder (`feat_extract_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatExtractNorm {
    /// `group`: a group norm with one group per channel after the first convolution only
    /// (wav2vec2-base).
    Group,
    /// `layer`: a layer norm over the channels after every convolution (wav2vec2-large-lv60).
    Layer,
}

/// The config of a wav2vec2 model (`Wav2Vec2Config`), with the `transformers` defaults (those of
/// facebook/wav2vec2-base-960h). A field `config.json` leaves out takes its default; fields it
/// holds that are not declared here (dropouts, SpecAugment, quantizer settings used only in
/// training) are ignored.
///
/// HuBERT, Data2VecAudio, WavLM and kin build their networks from the building blocks of this
/// crate, which all read this config: their crates convert their own config into one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "wav2vec2")]
#[serde(default)]
pub struct Wav2Vec2Config {
    /// Size of the CTC vocabulary (the `lm_head` rows); `None` is allowed for models without
    /// a CTC head.
    pub vocab_size: Option<usize>,
    /// Width of the hidden states, `[batch, frames, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Epsilon of the layer norms of the projection and the encoder.
    pub layer_norm_eps: f64,
    /// `group` or `layer`: the normalisation of the convolutional feature encoder.
    pub feat_extract_norm: FeatExtractNorm,
    /// Activation after each convolution of the feature encoder and of the positional
    /// convolution.
    pub feat_extract_activation: Activation,
    /// Output channels of each convolution of the feature encoder.
    pub conv_dim: Vec<usize>,
    /// Stride of each convolution of the feature encoder.
    pub conv_stride: Vec<usize>,
    /// Kernel size of each convolution of the feature encoder.
    pub conv_kernel: Vec<usize>,
    /// Whether the convolutions of the feature encoder have a bias.
    pub conv_bias: bool,
    /// Kernel size of the positional convolution.
    pub num_conv_pos_embeddings: usize,
    /// Groups of the positional convolution.
    pub num_conv_pos_embedding_groups: usize,
    /// `true`: pre-norm encoder layers and a final layer norm (wav2vec2-large-lv60);
    /// `false`: post-norm layers with the layer norm before the first layer.
    pub do_stable_layer_norm: bool,
    /// Whether the audio classifiers mix every layer's hidden state with learned softmax
    /// weights (`layer_weights`) instead of using the last one.
    pub use_weighted_layer_sum: bool,
    /// Width of the projector of the audio classification head.
    pub classifier_proj_size: usize,
    /// Channels of the TDNN layers of the x-vector head.
    pub tdnn_dim: Vec<usize>,
    /// Kernel size of each TDNN layer.
    pub tdnn_kernel: Vec<usize>,
    /// Dilation of each TDNN layer.
    pub tdnn_dilation: Vec<usize>,
    /// Width of the x-vector embeddings.
    pub xvector_output_dim: usize,
    /// Codebooks of the pretraining quantizer.
    pub num_codevector_groups: usize,
    /// Entries of each codebook of the pretraining quantizer.
    pub num_codevectors_per_group: usize,
    /// Width of the quantized vectors (all groups together).
    pub codevector_dim: usize,
    /// Width the pretraining head projects the hidden and the quantized states to.
    pub proj_codevector_dim: usize,
    /// Padding token of the CTC vocabulary (the blank).
    pub pad_token_id: Option<i64>,
    /// Whether a convolutional adapter follows the encoder (wav2vec2 as a speech encoder for
    /// a decoder).
    pub add_adapter: bool,
    /// Kernel size of the adapter's convolutions.
    pub adapter_kernel_size: usize,
    /// Stride of the adapter's convolutions.
    pub adapter_stride: usize,
    /// Number of adapter convolutions.
    pub num_adapter_layers: usize,
    /// Width of the adapter's output; `None` is `hidden_size`.
    pub output_hidden_size: Option<usize>,
    /// Width of the small attention adapters inside the stable-layer-norm layers (MMS); `None`:
    /// none.
    pub adapter_attn_dim: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Wav2Vec2Config {
    /// `Wav2Vec2Config()` in `transformers`: the wav2vec2-base shape.
    fn default() -> Self {
        Self {
            vocab_size: Some(32),
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-5,
            feat_extract_norm: FeatExtractNorm::Group,
            feat_extract_activation: Activation::Gelu,
            conv_dim: vec![512; 7],
            conv_stride: vec![5, 2, 2, 2, 2, 2, 2],
            conv_kernel: vec![10, 3, 3, 3, 3, 2, 2],
            conv_bias: false,
            num_conv_pos_embeddings: 128,
            num_conv_pos_embedding_groups: 16,
            do_stable_layer_norm: false,
            use_weighted_layer_sum: false,
            classifier_proj_size: 256,
            tdnn_dim: vec![512, 512, 512, 512, 1500],
            tdnn_kernel: vec![5, 3, 3, 1, 1],
            tdnn_dilation: vec![1, 2, 3, 1, 1],
            xvector_output_dim: 512,
            num_codevector_groups: 2,
            num_codevectors_per_group: 320,
            codevector_dim: 256,
            proj_codevector_dim: 256,
            pad_token_id: Some(0),
            add_adapter: false,
            adapter_kernel_size: 3,
            adapter_stride: 2,
            num_adapter_layers: 3,
            output_hidden_size: None,
            adapter_attn_dim: None,
            labels: LabelConfig::default(),
        }
    }
}

impl Wav2Vec2Config {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// `output_hidden_size`, or `hidden_size`.
    pub fn output_hidden_size(&self) -> usize {
        self.output_hidden_size.filter(|&s| s > 0).unwrap_or(self.hidden_size)
    }

    /// The number of frames the feature encoder (and, with `add_adapter`, the adapter) makes
    /// of `samples` samples, as `transformers`' `_get_feat_extract_output_lengths` (floor
    /// division, so a clip shorter than the receptive field gives 0 or less).
    pub fn feat_extract_output_length(&self, samples: i64, add_adapter: bool) -> i64 {
        let conv_out = |len: i64, kernel: usize, stride: usize| (len - kernel as i64).div_euclid(stride as i64) + 1;
        let mut len = samples;
        for (&kernel, &stride) in self.conv_kernel.iter().zip(&self.conv_stride) {
            len = conv_out(len, kernel, stride.max(1));
        }
        if add_adapter {
            for _ in 0..self.num_adapter_layers {
                len = conv_out(len, 1, self.adapter_stride.max(1));
            }
        }
        len
    }

    /// The fewest samples the feature encoder makes one frame of.
    pub fn min_samples(&self) -> usize {
        let mut len = 1usize;
        for (&kernel, &stride) in self.conv_kernel.iter().zip(&self.conv_stride).rev() {
            len = (len - 1) * stride + kernel;
        }
        len
    }

    /// Check what the network needs of the config, naming `model_type` in the errors.
    pub fn validate_as(&self, model_type: &str) -> Result<()> {
        let invalid = |message: String| Err(Error::config(model_type, message));
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
        let n = self.conv_dim.len();
        if n == 0 {
            return invalid("`conv_dim` is empty: the feature encoder needs at least one convolution".to_owned());
        }
        if self.conv_stride.len() != n || self.conv_kernel.len() != n {
            return invalid(format!(
                "`conv_dim`, `conv_stride` and `conv_kernel` must have the same length (one entry per \
                 convolution of the feature encoder), got {}, {} and {}",
                n,
                self.conv_stride.len(),
                self.conv_kernel.len()
            ));
        }
        for (name, list) in
            [("conv_dim", &self.conv_dim), ("conv_stride", &self.conv_stride), ("conv_kernel", &self.conv_kernel)]
        {
            if let Some(i) = list.iter().position(|&v| v == 0) {
                return invalid(format!("`{name}[{i}]` must be at least 1, got 0"));
            }
        }
        if self.conv_kernel.iter().chain(&self.conv_stride).any(|&v| v > 1 << 20) {
            return invalid("`conv_kernel` and `conv_stride` entries must be at most 1048576".to_owned());
        }
        if self.add_adapter && (self.adapter_stride == 0 || self.adapter_kernel_size == 0) {
            return invalid(
                "with `add_adapter`, `adapter_stride` and `adapter_kernel_size` must be at least 1".to_owned(),
            );
        }
        Ok(())
    }

    /// Check what the x-vector head needs: `tdnn_dim`, `tdnn_kernel` and `tdnn_dilation` of one
    /// length, at least one layer.
    pub fn validate_xvector_as(&self, model_type: &str) -> Result<()> {
        let n = self.tdnn_dim.len();
        if n == 0 || self.tdnn_kernel.len() != n || self.tdnn_dilation.len() != n {
            return Err(Error::config(
                model_type,
                format!(
                    "`tdnn_dim`, `tdnn_kernel` and `tdnn_dilation` must have the same non-zero length (one entry \
                     per TDNN layer), got {}, {} and {}",
                    n,
                    self.tdnn_kernel.len(),
                    self.tdnn_dilation.len()
                ),
            ));
        }
        if self.tdnn_dim.iter().chain(&self.tdnn_kernel).chain(&self.tdnn_dilation).any(|&v| v == 0) {
            return Err(Error::config(
                model_type,
                "`tdnn_dim`, `tdnn_kernel` and `tdnn_dilation` entries must be at least 1",
            ));
        }
        Ok(())
    }

    /// [`Wav2Vec2Config::validate_as`] for `wav2vec2`.
    pub fn validate(&self) -> Result<()> {
        self.validate_as("wav2vec2")
    }
}
