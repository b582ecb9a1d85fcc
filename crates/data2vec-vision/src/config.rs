//! `Data2VecVisionConfig`, field for field as `transformers`'
//! `configuration_data2vec_vision.Data2VecVisionConfig` (5.25).

use autocandle_beit::BeitConfig;
use autocandle_core::{Activation, AutoRegister, LabelConfig};
use autocandle_vit::Size2;
use serde::{Deserialize, Serialize};

/// The config of a data2vec-vision model (`Data2VecVisionConfig`), with the `transformers`
/// defaults (those of facebook/data2vec-vision-base). A field `config.json` leaves out takes
/// its default. The model is BEiT's; [`Data2VecVisionConfig::to_beit`] gives its BEiT config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "data2vec-vision")]
#[serde(default)]
pub struct Data2VecVisionConfig {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The size of the images the model was trained on (see [`BeitConfig::image_size`]).
    pub image_size: Size2,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: usize,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Whether the embeddings hold a mask token (for `bool_masked_pos`).
    pub use_mask_token: bool,
    /// Learned absolute position embeddings added to the patch embeddings.
    pub use_absolute_position_embeddings: bool,
    /// A relative position bias table in every layer.
    pub use_relative_position_bias: bool,
    /// One relative position bias table shared by every layer.
    pub use_shared_relative_position_bias: bool,
    /// Layer scale: the initial value of `lambda_1` / `lambda_2`; 0 disables them.
    pub layer_scale_init_value: f64,
    /// Training only (stochastic depth): a no-op here.
    pub drop_path_rate: f64,
    /// Pool by the mean of the patch states and a LayerNorm (else the final LayerNorm and the
    /// `[CLS]` state).
    pub use_mean_pooling: bool,
    /// The hidden states the semantic segmentation head reads: entry `i` of `transformers`'
    /// `hidden_states` tuple is read when `i + 1` is listed (four of them).
    pub out_indices: Vec<i64>,
    /// Scales of the pyramid pooling module of the semantic segmentation head.
    pub pool_scales: Vec<usize>,
    /// Whether the semantic segmentation model has the auxiliary FCN head.
    pub use_auxiliary_head: bool,
    /// Training only.
    pub auxiliary_loss_weight: f64,
    /// Channels of the auxiliary head.
    pub auxiliary_channels: usize,
    /// Convolutions of the auxiliary head.
    pub auxiliary_num_convs: usize,
    /// Whether the auxiliary head concatenates its input to its convolutions' output.
    pub auxiliary_concat_input: bool,
    /// Training only.
    pub semantic_loss_ignore_index: i64,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Data2VecVisionConfig {
    /// `Data2VecVisionConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            image_size: Size2::Square(224),
            patch_size: 16,
            num_channels: 3,
            use_mask_token: false,
            use_absolute_position_embeddings: false,
            use_relative_position_bias: false,
            use_shared_relative_position_bias: false,
            layer_scale_init_value: 0.1,
            drop_path_rate: 0.1,
            use_mean_pooling: true,
            out_indices: vec![3, 5, 7, 11],
            pool_scales: vec![1, 2, 3, 6],
            use_auxiliary_head: true,
            auxiliary_loss_weight: 0.4,
            auxiliary_channels: 256,
            auxiliary_num_convs: 1,
            auxiliary_concat_input: false,
            semantic_loss_ignore_index: 255,
            labels: LabelConfig::default(),
        }
    }
}

impl Data2VecVisionConfig {
    /// The same model as a [`BeitConfig`] (its `out_indices` are kept as given; the semantic
    /// segmentation model reads them with [`Data2VecVisionConfig::hidden_state_indices`]).
    pub fn to_beit(&self) -> BeitConfig {
        BeitConfig {
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            image_size: self.image_size,
            patch_size: self.patch_size,
            num_channels: self.num_channels,
            use_mask_token: self.use_mask_token,
            use_absolute_position_embeddings: self.use_absolute_position_embeddings,
            use_relative_position_bias: self.use_relative_position_bias,
            use_shared_relative_position_bias: self.use_shared_relative_position_bias,
            layer_scale_init_value: self.layer_scale_init_value,
            drop_path_rate: self.drop_path_rate,
            use_mean_pooling: self.use_mean_pooling,
            pool_scales: self.pool_scales.clone(),
            use_auxiliary_head: self.use_auxiliary_head,
            auxiliary_loss_weight: self.auxiliary_loss_weight,
            auxiliary_channels: self.auxiliary_channels,
            auxiliary_num_convs: self.auxiliary_num_convs,
            auxiliary_concat_input: self.auxiliary_concat_input,
            semantic_loss_ignore_index: self.semantic_loss_ignore_index,
            out_indices: Some(self.out_indices.clone()),
            labels: self.labels.clone(),
            ..BeitConfig::default()
        }
    }

    /// The entries of `transformers`' `hidden_states` tuple (`0` the embeddings, `i` the
    /// output of layer `i`) the segmentation head reads: those `i` with `i + 1` in
    /// `out_indices`, in order (`[feature for idx, feature in enumerate(hidden_states) if idx
    /// + 1 in out_indices]`).
    pub fn hidden_state_indices(&self) -> Vec<usize> {
        (0..=self.num_hidden_layers).filter(|&i| self.out_indices.contains(&(i as i64 + 1))).collect()
    }
}
