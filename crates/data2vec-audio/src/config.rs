//! `Data2VecAudioConfig`, field for field as `transformers`'
//! `configuration_data2vec_audio.Data2VecAudioConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_wav2vec2::{FeatExtractNorm, Wav2Vec2Config};
use serde::{Deserialize, Serialize};

/// The config of a Data2VecAudio model (`Data2VecAudioConfig`), with the `transformers`
/// defaults (those of facebook/data2vec-audio-base-960h). A field `config.json` leaves out
/// takes its default; fields used only in training are ignored.
///
/// Unlike wav2vec2, the feature encoder always has layer norms, the encoder is always
/// post-norm, and `num_conv_pos_embeddings` counts the positional convolutions (each of
/// kernel `conv_pos_kernel_size`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "data2vec-audio")]
#[serde(default)]
pub struct Data2VecAudioConfig {
    /// Size of the CTC vocabulary.
    pub vocab_size: Option<usize>,
    /// Width of the hidden states.
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
    /// Activation of the convolutions (feature encoder and positional).
    pub feat_extract_activation: Activation,
    /// Output channels of each convolution of the feature encoder.
    pub conv_dim: Vec<usize>,
    /// Stride of each convolution of the feature encoder.
    pub conv_stride: Vec<usize>,
    /// Kernel size of each convolution of the feature encoder.
    pub conv_kernel: Vec<usize>,
    /// Whether the convolutions of the feature encoder have a bias.
    pub conv_bias: bool,
    /// Groups of the positional convolutions.
    pub num_conv_pos_embedding_groups: usize,
    /// Kernel size of the positional convolutions.
    pub conv_pos_kernel_size: usize,
    /// Number of stacked positional convolutions.
    pub num_conv_pos_embeddings: usize,
    /// Whether the audio classifiers mix every layer's hidden state.
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
    /// Padding token of the CTC vocabulary (the blank).
    pub pad_token_id: Option<i64>,
    /// Whether a convolutional adapter follows the encoder.
    pub add_adapter: bool,
    /// Kernel size of the adapter's convolutions.
    pub adapter_kernel_size: usize,
    /// Stride of the adapter's convolutions.
    pub adapter_stride: usize,
    /// Number of adapter convolutions.
    pub num_adapter_layers: usize,
    /// Width of the adapter's output; `None` is `hidden_size`.
    pub output_hidden_size: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Data2VecAudioConfig {
    /// `Data2VecAudioConfig()` in `transformers`.
    fn default() -> Self {
        let w = Wav2Vec2Config::default();
        Self {
            vocab_size: Some(32),
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-5,
            feat_extract_activation: Activation::Gelu,
            conv_dim: w.conv_dim,
            conv_stride: w.conv_stride,
            conv_kernel: w.conv_kernel,
            conv_bias: false,
            num_conv_pos_embedding_groups: 16,
            conv_pos_kernel_size: 19,
            num_conv_pos_embeddings: 5,
            use_weighted_layer_sum: false,
            classifier_proj_size: 256,
            tdnn_dim: w.tdnn_dim,
            tdnn_kernel: w.tdnn_kernel,
            tdnn_dilation: w.tdnn_dilation,
            xvector_output_dim: 512,
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

impl Data2VecAudioConfig {
    /// The [`Wav2Vec2Config`] the shared building blocks read: layer-norm feature encoder,
    /// post-norm encoder; the positional convolutions are described by
    /// [`autocandle_wav2vec2::PosConvKind::Stacked`] instead.
    pub fn to_wav2vec2(&self) -> Wav2Vec2Config {
        Wav2Vec2Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            layer_norm_eps: self.layer_norm_eps,
            feat_extract_norm: FeatExtractNorm::Layer,
            feat_extract_activation: self.feat_extract_activation,
            conv_dim: self.conv_dim.clone(),
            conv_stride: self.conv_stride.clone(),
            conv_kernel: self.conv_kernel.clone(),
            conv_bias: self.conv_bias,
            num_conv_pos_embeddings: self.conv_pos_kernel_size,
            num_conv_pos_embedding_groups: self.num_conv_pos_embedding_groups,
            do_stable_layer_norm: false,
            use_weighted_layer_sum: self.use_weighted_layer_sum,
            classifier_proj_size: self.classifier_proj_size,
            tdnn_dim: self.tdnn_dim.clone(),
            tdnn_kernel: self.tdnn_kernel.clone(),
            tdnn_dilation: self.tdnn_dilation.clone(),
            xvector_output_dim: self.xvector_output_dim,
            pad_token_id: self.pad_token_id,
            add_adapter: self.add_adapter,
            adapter_kernel_size: self.adapter_kernel_size,
            adapter_stride: self.adapter_stride,
            num_adapter_layers: self.num_adapter_layers,
            output_hidden_size: self.output_hidden_size,
            adapter_attn_dim: None,
            labels: self.labels.clone(),
            ..Wav2Vec2Config::default()
        }
    }

    /// Check what the network needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.to_wav2vec2().validate_as("data2vec-audio")
    }
}
