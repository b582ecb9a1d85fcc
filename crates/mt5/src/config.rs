//! `MT5Config`, field for field as `transformers`' `configuration_mt5.MT5Config` (5.23).

use autocandle_core::{AutoRegister, LabelConfig, RegisteredConfig, Result};
use autocandle_t5::{feed_forward, T5LikeConfig, T5Spec, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of an mT5 model (`MT5Config`), with the `transformers` defaults (those of
/// `google/mt5-small`). A field `config.json` leaves out takes its default.
///
/// The fields are those of [`T5Config`](autocandle_t5::T5Config) with mT5's defaults (a
/// 250112-token vocabulary, `gated-gelu`, `decoder_start_token_id` 0, ...). mT5 never
/// scales the decoder output before `lm_head` in `transformers` 5.23, whatever
/// `tie_word_embeddings` says; the head is the shared embedding matrix unless the checkpoint
/// holds its own `lm_head.weight` (as the released mT5 checkpoints do).
///
/// Fields `config.json` may hold that `MT5Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "mt5")]
#[serde(default)]
pub struct MT5Config {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states (`hidden_size`), `[batch, seq, d_model]`.
    #[serde(alias = "hidden_size")]
    pub d_model: usize,
    /// Width of one attention head (`head_dim`); `d_kv * num_heads` need not be `d_model`.
    #[serde(alias = "head_dim")]
    pub d_kv: usize,
    /// Width of the feed-forward layer inside each block.
    pub d_ff: usize,
    /// Number of encoder blocks (`num_hidden_layers`).
    #[serde(alias = "num_hidden_layers")]
    pub num_layers: usize,
    /// Decoder layers; `None` is `num_layers`.
    pub num_decoder_layers: Option<usize>,
    /// Number of attention heads in each block (`num_attention_heads`).
    #[serde(alias = "num_attention_heads")]
    pub num_heads: usize,
    /// Number of buckets of the relative position bias.
    pub relative_attention_num_buckets: usize,
    /// Relative distance, in tokens, beyond which positions share the last bucket.
    pub relative_attention_max_distance: usize,
    /// Training only: dropout is a no-op here.
    pub dropout_rate: f64,
    /// Epsilon added to the mean square in every layer norm (T5's norm has no mean and no bias).
    pub layer_norm_epsilon: f64,
    /// Scale of the initialisation in `transformers`; unused at inference.
    pub initializer_factor: f64,
    /// `gated-gelu` (`gelu_new` on a gated layer), `relu`, or any `ACT` / `gated-ACT`.
    pub feed_forward_proj: String,
    /// Wins over the activation derived from `feed_forward_proj` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense_act_fn: Option<String>,
    /// Wins over the gating derived from `feed_forward_proj` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_gated_act: Option<bool>,
    /// Whether the model is an encoder-decoder (true for T5-like checkpoints); kept for `config.json` round trips.
    pub is_encoder_decoder: bool,
    /// Generation only.
    pub use_cache: bool,
    /// As saved; `transformers` 5.23 forces it to true and ties the head unless the
    /// checkpoint holds a separate `lm_head.weight`.
    pub tie_word_embeddings: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// First token fed to the decoder in generation and in `_shift_right`; T5 checkpoints use the pad token (0).
    pub decoder_start_token_id: Option<i64>,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: f64,
    /// Whether `transformers` builds the stack as a decoder; the encoder-decoder sets this per stack itself, so it only round-trips here.
    pub is_decoder: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for MT5Config {
    /// `MT5Config()` in `transformers`: the `mt5-small` shape.
    fn default() -> Self {
        Self {
            vocab_size: 250112,
            d_model: 512,
            d_kv: 64,
            d_ff: 1024,
            num_layers: 8,
            num_decoder_layers: None,
            num_heads: 6,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            initializer_factor: 1.0,
            feed_forward_proj: "gated-gelu".to_owned(),
            dense_act_fn: None,
            is_gated_act: None,
            is_encoder_decoder: true,
            use_cache: true,
            tie_word_embeddings: true,
            bos_token_id: None,
            pad_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(1)),
            decoder_start_token_id: Some(0),
            classifier_dropout: 0.0,
            is_decoder: false,
            labels: LabelConfig::default(),
        }
    }
}

impl T5LikeConfig for MT5Config {
    fn t5_spec(&self) -> Result<T5Spec> {
        let model_type = Self::MODEL_TYPE;
        let (activation, gated) =
            feed_forward(model_type, &self.feed_forward_proj, self.dense_act_fn.as_deref(), self.is_gated_act)?;
        let spec = T5Spec {
            model_type,
            vocab_size: self.vocab_size,
            d_model: self.d_model,
            d_kv: self.d_kv,
            d_ff: self.d_ff,
            num_heads: self.num_heads,
            num_layers: self.num_layers,
            num_decoder_layers: self.num_decoder_layers.unwrap_or(self.num_layers),
            relative_attention_num_buckets: self.relative_attention_num_buckets,
            relative_attention_max_distance: self.relative_attention_max_distance,
            layer_norm_epsilon: self.layer_norm_epsilon,
            activation,
            gated,
            // `MT5ForConditionalGeneration` has no decoder output scaling in 5.23.
            scale_decoder_outputs: false,
            pad_token_id: self.pad_token_id,
            eos_token_ids: self.eos_token_id.as_ref().map(TokenIds::ids).unwrap_or_default(),
            decoder_start_token_id: self.decoder_start_token_id,
            num_labels: self.labels.num_labels(),
        };
        spec.validate()?;
        Ok(spec)
    }
}
