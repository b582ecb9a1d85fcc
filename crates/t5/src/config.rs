//! `T5Config`, field for field as `transformers`' `configuration_t5.T5Config` (5.23), and
//! [`T5Spec`], what a T5-like config (T5, mT5) resolves to before a model is built.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, RegisteredConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of a T5 model (`T5Config`), with the `transformers` defaults (those of
/// `google-t5/t5-small`). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `T5Config` does not declare are ignored.
///
/// The language-modelling head follows `transformers` 5.23: the decoder output is scaled by
/// `d_model ** -0.5` before `lm_head` when `scale_decoder_outputs` is true; a config that
/// does not have that key (saved before 5.x) scales unless it says
/// `"tie_word_embeddings": false`, as T5 v1.1 and flan-t5 configs do. See
/// [`T5Config::scale_decoder_outputs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "t5")]
#[serde(default)]
pub struct T5Config {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the residual stream (`hidden_size`).
    #[serde(alias = "hidden_size")]
    pub d_model: usize,
    /// Width of one attention head (`head_dim`); `d_kv * num_heads` need not be `d_model`.
    #[serde(alias = "head_dim")]
    pub d_kv: usize,
    /// Width of the feed-forward layers.
    pub d_ff: usize,
    /// Encoder layers (`num_hidden_layers`).
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
    /// `relu`, `gated-gelu` (T5 v1.1: `gelu_new` on a gated layer), `gated-silu`, or any
    /// `ACT` / `gated-ACT` with an activation name of `transformers`.
    pub feed_forward_proj: String,
    /// The activation as `transformers` saves it next to `feed_forward_proj`; when present it
    /// wins over the one derived from `feed_forward_proj`, as in `transformers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense_act_fn: Option<String>,
    /// Whether the feed-forward layer is gated; when present it wins over `feed_forward_proj`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_gated_act: Option<bool>,
    /// Whether the model is an encoder-decoder (true for T5-like checkpoints); kept for `config.json` round trips.
    pub is_encoder_decoder: bool,
    /// Generation only.
    pub use_cache: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// The first decoder token of generation and of `_shift_right`; T5 checkpoints set it
    /// to the pad token (0), `T5Config()` leaves it unset.
    pub decoder_start_token_id: Option<i64>,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: f64,
    /// Whether `transformers` builds the stack as a decoder; the encoder-decoder sets this per stack itself, so it only round-trips here.
    pub is_decoder: bool,
    /// As saved. `transformers` 5.23 always ties the LM head to the embeddings unless the
    /// checkpoint holds a separate `lm_head.weight`, and reads this key (when the config has
    /// no `scale_decoder_outputs`) only to decide the output scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
    /// Scale the decoder output by `d_model ** -0.5` before `lm_head` (original T5); `None`
    /// derives it from `tie_word_embeddings` as `transformers` does for older configs. (A
    /// config without this key takes a `tie_word_embeddings` override to change the scaling.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_decoder_outputs: Option<bool>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for T5Config {
    /// `T5Config()` in `transformers`: the `t5-small` shape.
    fn default() -> Self {
        Self {
            vocab_size: 32128,
            d_model: 512,
            d_kv: 64,
            d_ff: 2048,
            num_layers: 6,
            num_decoder_layers: None,
            num_heads: 8,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            initializer_factor: 1.0,
            feed_forward_proj: "relu".to_owned(),
            dense_act_fn: None,
            is_gated_act: None,
            is_encoder_decoder: true,
            use_cache: true,
            pad_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(1)),
            bos_token_id: None,
            decoder_start_token_id: None,
            classifier_dropout: 0.0,
            is_decoder: false,
            tie_word_embeddings: None,
            scale_decoder_outputs: None,
            labels: LabelConfig::default(),
        }
    }
}

impl T5Config {
    /// Whether the decoder output is scaled by `d_model ** -0.5` before `lm_head`, as
    /// `transformers` 5.23 decides it: `scale_decoder_outputs` when the config has it, else
    /// true unless `tie_word_embeddings` is false (the T5 v1.1 convention of older configs).
    pub fn scale_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs.unwrap_or(self.tie_word_embeddings != Some(false))
    }
}

/// A config that builds the T5 network: T5 itself, and variants such as mT5 that differ only
/// in their defaults and in the LM head scaling.
pub trait T5LikeConfig: RegisteredConfig {
    /// Resolve and check the config.
    fn t5_spec(&self) -> Result<T5Spec>;
}

impl T5LikeConfig for T5Config {
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
            scale_decoder_outputs: self.scale_decoder_outputs(),
            pad_token_id: self.pad_token_id,
            eos_token_ids: self.eos_token_id.as_ref().map(TokenIds::ids).unwrap_or_default(),
            decoder_start_token_id: self.decoder_start_token_id,
            num_labels: self.labels.num_labels(),
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The activation and gating of the feed-forward layers, as `T5Config.__post_init__` derives
/// them: `feed_forward_proj` is `ACT` or `gated-ACT`, `gated-gelu` means `gelu_new`, and a
/// saved `dense_act_fn` / `is_gated_act` wins over the derived value.
pub fn feed_forward(
    model_type: &str,
    feed_forward_proj: &str,
    dense_act_fn: Option<&str>,
    is_gated_act: Option<bool>,
) -> Result<(Activation, bool)> {
    let parts: Vec<&str> = feed_forward_proj.split('-').collect();
    if parts.len() > 2 || (parts.len() == 2 && parts[0] != "gated") {
        return Err(Error::config(
            model_type,
            format!(
                "`feed_forward_proj` `{feed_forward_proj}` is not a valid activation of the dense layer: write \
                 `gated-ACT` or `ACT`, e.g. `gated-gelu` or `relu`"
            ),
        ));
    }
    let derived = if feed_forward_proj == "gated-gelu" { "gelu_new" } else { parts[parts.len() - 1] };
    let name = dense_act_fn.unwrap_or(derived);
    let activation = Activation::from_name(name).map_err(|e| {
        Error::config(model_type, format!("the feed-forward activation `{name}` (from `feed_forward_proj`): {e}"))
    })?;
    Ok((activation, is_gated_act.unwrap_or(parts[0] == "gated")))
}

/// What the T5 network is built from: a T5-like config, resolved ([`T5LikeConfig::t5_spec`]).
#[derive(Debug, Clone, PartialEq)]
pub struct T5Spec {
    /// The model type, for error messages.
    pub model_type: &'static str,
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states (`hidden_size`), `[batch, seq, d_model]`.
    pub d_model: usize,
    /// Width of one attention head (`head_dim`); `d_kv * num_heads` need not be `d_model`.
    pub d_kv: usize,
    /// Width of the feed-forward layer inside each block.
    pub d_ff: usize,
    /// Number of attention heads in each block (`num_attention_heads`).
    pub num_heads: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Decoder layers.
    pub num_decoder_layers: usize,
    /// Number of buckets of the relative position bias.
    pub relative_attention_num_buckets: usize,
    /// Relative distance, in tokens, beyond which positions share the last bucket.
    pub relative_attention_max_distance: usize,
    /// Epsilon added to the mean square in every layer norm (T5's norm has no mean and no bias).
    pub layer_norm_epsilon: f64,
    /// Activation of the feed-forward layers.
    pub activation: Activation,
    /// `DenseGatedActDense` (`wi_0`, `wi_1`) rather than `DenseActDense` (`wi`).
    pub gated: bool,
    /// Scale the decoder output by `d_model ** -0.5` before `lm_head`.
    pub scale_decoder_outputs: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// `eos_token_id` as a list (empty when unset).
    pub eos_token_ids: Vec<i64>,
    /// First token fed to the decoder in generation and in `_shift_right`; T5 checkpoints use the pad token (0).
    pub decoder_start_token_id: Option<i64>,
    /// Outputs of the classification heads.
    pub num_labels: usize,
}

impl T5Spec {
    /// Check what the network needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(self.model_type, message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        // The encoder's buckets are split in two directions, each half exact and half
        // logarithmic: fewer than 4 leaves no exact bucket and `transformers` divides by zero.
        if self.relative_attention_num_buckets < 4 {
            return invalid(format!(
                "`relative_attention_num_buckets` must be at least 4, got {}",
                self.relative_attention_num_buckets
            ));
        }
        let max_exact = self.relative_attention_num_buckets / 2;
        if self.relative_attention_max_distance <= max_exact {
            return invalid(format!(
                "`relative_attention_max_distance` ({}) must be larger than half of \
                 `relative_attention_num_buckets` ({max_exact}): the logarithmic buckets span the distances between",
                self.relative_attention_max_distance
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return invalid(format!(
                "`layer_norm_epsilon` must be a finite number >= 0, got {}",
                self.layer_norm_epsilon
            ));
        }
        Ok(())
    }

    /// `num_heads * d_kv`: the width of the attention projections.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// `decoder_start_token_id` as a token id, if set and not negative.
    pub fn decoder_start_token(&self) -> Option<u32> {
        self.decoder_start_token_id.and_then(|id| u32::try_from(id).ok())
    }
}
