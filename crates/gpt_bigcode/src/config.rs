//! `GPTBigCodeConfig`, field for field as `transformers`' `configuration_gpt_bigcode.GPTBigCodeConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `GPTBigCodeConfig.attribute_map`: the common names `transformers` accepts.
    attribute_map: [
        ("hidden_size", "n_embd"),
        ("max_position_embeddings", "n_positions"),
        ("num_attention_heads", "n_head"),
        ("num_hidden_layers", "n_layer"),
    ];
/// The config of a GPTBigCode model (`GPTBigCodeConfig`), with the `transformers` defaults
/// (those of `bigcode/gpt_bigcode-santacoder`).
///
/// `transformers`' `attribute_map` names are accepted when reading and win over the GPT-2
/// names: `hidden_size` for `n_embd`, `max_position_embeddings` for `n_positions`,
/// `num_attention_heads` for `n_head` and `num_hidden_layers` for `n_layer`. Fields
/// `config.json` may hold that `GPTBigCodeConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "gpt_bigcode")]
#[serde(default)]
pub struct GPTBigCodeConfig {
    /// Number of tokens in the vocabulary: the rows of `wte`, `[vocab_size, n_embd]`.
    pub vocab_size: usize,
    /// The number of learned positions (`max_position_embeddings`).
    pub n_positions: usize,
    /// The hidden size (`hidden_size`).
    pub n_embd: usize,
    /// The number of blocks (`num_hidden_layers`).
    pub n_layer: usize,
    /// The number of attention (query) heads (`num_attention_heads`).
    pub n_head: usize,
    /// Inner size of the MLP; `None` is `4 * n_embd`.
    pub n_inner: Option<usize>,
    /// Activation of the MLP (`gelu_pytorch_tanh`).
    pub activation_function: Activation,
    /// Training only: dropout is a no-op here.
    pub resid_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub embd_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub attn_pdrop: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Scale attention scores by `1 / sqrt(head_dim)`.
    pub scale_attn_weights: bool,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Marks the padding that `GPTBigCodeForSequenceClassification` skips when it picks the
    /// last token of each row.
    pub pad_token_id: Option<i64>,
    /// Softmax the attention scores in f32. `transformers` 5.25's attention always does (its
    /// eager softmax runs in f32), and so does autocandle: kept for round trips.
    pub attention_softmax_in_fp32: bool,
    /// Scale the scores in f32 before the softmax; as `attention_softmax_in_fp32`, without
    /// effect in `transformers` 5.25 and here.
    pub scale_attention_softmax_in_fp32: bool,
    /// One key/value head shared by every query head (StarCoder 1, SantaCoder), else one per
    /// query head.
    pub multi_query: bool,
    /// Cross-attention layers for an encoder-decoder: not supported (autocandle takes no
    /// `encoder_hidden_states`), a model with them fails to load.
    pub add_cross_attention: bool,
    /// The LM head shares the token embedding matrix `transformer.wte`.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for GPTBigCodeConfig {
    /// `GPTBigCodeConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: Activation::GeluTanh,
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            scale_attn_weights: true,
            use_cache: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            pad_token_id: None,
            attention_softmax_in_fp32: true,
            scale_attention_softmax_in_fp32: true,
            multi_query: true,
            add_cross_attention: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl GPTBigCodeConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("gpt_bigcode", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("n_inner", self.inner_dim()),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return invalid(format!(
                "`n_embd` ({}) must be a multiple of `n_head` ({}): each head gets n_embd / n_head dimensions",
                self.n_embd, self.n_head
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return invalid(format!(
                "`layer_norm_epsilon` must be a finite number >= 0, got {}",
                self.layer_norm_epsilon
            ));
        }
        if self.add_cross_attention {
            return Err(Error::Unsupported(
                "GPTBigCode with `add_cross_attention`: cross-attention needs `encoder_hidden_states`, which \
                 autocandle does not take; set `add_cross_attention` to false to use the decoder alone"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// Key/value heads: 1 with `multi_query`, else `n_head`.
    pub fn kv_heads(&self) -> usize {
        if self.multi_query {
            1
        } else {
            self.n_head
        }
    }

    /// Inner size of the MLP: `n_inner`, else `4 * n_embd`.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}
