//! `GPTNeoXConfig`, field for field as `transformers`' `configuration_gpt_neox.GPTNeoXConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{RopeConfig, RopeContext, RopeSpec, TokenIds, DEFAULT_ROPE_THETA};
use serde::{Deserialize, Serialize};

/// The config of a GPT-NeoX model (`GPTNeoXConfig`), with the `transformers` defaults (those
/// of `EleutherAI/gpt-neox-20b`).
///
/// The rotary settings are read from `rope_parameters` (or `rope_scaling`) and, as
/// `convert_rope_params_to_dict` does, from the legacy keys Pythia checkpoints carry:
/// `rotary_pct` (the fraction of each head that rotates, 0.25 when absent) and
/// `rotary_emb_base` (the rope base). Fields `config.json` may hold that `GPTNeoXConfig` does
/// not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "gpt_neox")]
#[serde(default)]
pub struct GPTNeoXConfig {
    /// Number of tokens in the vocabulary: the rows of `embed_in`, `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the MLP inside each block.
    pub intermediate_size: usize,
    /// Activation of the MLP (`gelu`, exact, for Pythia).
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: f64,
    /// Longest sequence, in tokens, the model was trained for.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Marks the padding that `GPTNeoXForSequenceClassification` skips when it picks the
    /// last token of each row.
    pub pad_token_id: Option<i64>,
    /// Whether the LM head shares the token embedding `embed_in` (false for Pythia).
    pub tie_word_embeddings: bool,
    /// `x + attn(ln1(x)) + mlp(ln2(x))` when true, else `y = x + attn(ln1(x))`,
    /// `y + mlp(ln2(y))`.
    pub use_parallel_residual: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Legacy name of `rope_parameters.partial_rotary_factor` (Pythia configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotary_pct: Option<f64>,
    /// Legacy name of `rope_parameters.rope_theta` (Pythia configs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotary_emb_base: Option<f64>,
    /// Bias on `query_key_value` and `dense`.
    pub attention_bias: bool,
    /// Not used by the decoder-only model.
    pub is_decoder: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for GPTNeoXConfig {
    /// `GPTNeoXConfig()` in `transformers`: the GPT-NeoX-20B shape.
    fn default() -> Self {
        Self {
            vocab_size: 50432,
            hidden_size: 6144,
            num_hidden_layers: 44,
            num_attention_heads: 64,
            intermediate_size: 24576,
            hidden_act: Activation::Gelu,
            attention_dropout: 0.0,
            hidden_dropout: 0.0,
            classifier_dropout: 0.1,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            use_cache: true,
            bos_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(2)),
            pad_token_id: None,
            tie_word_embeddings: false,
            use_parallel_residual: true,
            rope: RopeConfig::default(),
            rotary_pct: None,
            rotary_emb_base: None,
            attention_bias: true,
            is_decoder: false,
            labels: LabelConfig::default(),
        }
    }
}

impl GPTNeoXConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("gpt_neox", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({}): each head gets \
                 hidden_size / num_attention_heads dimensions",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        self.rope_spec().map(|_| ())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// The rotary settings with the legacy keys folded in: `rotary_pct` when the rope
    /// parameters name no `partial_rotary_factor` (0.25 when neither does), `rotary_emb_base`
    /// when they give no other base than the default.
    pub fn rope_config(&self) -> RopeConfig {
        let mut rope = self.rope.clone();
        let p = &mut rope.parameters;
        if p.partial_rotary_factor.is_none() {
            p.partial_rotary_factor = Some(self.rotary_pct.unwrap_or(0.25));
        }
        if let Some(base) = self.rotary_emb_base {
            if p.rope_theta.is_none_or(|theta| theta == DEFAULT_ROPE_THETA) {
                p.rope_theta = Some(base);
            }
        }
        rope
    }

    /// The resolved rotary embedding: the first `head_dim * partial_rotary_factor` dimensions
    /// of each head rotate.
    pub fn rope_spec(&self) -> Result<RopeSpec> {
        self.rope_config().resolve(&RopeContext {
            model_type: "gpt_neox",
            head_dim: self.head_dim(),
            max_position_embeddings: self.max_position_embeddings,
            original_max_position_embeddings: None,
            partial_rotary: true,
        })
    }
}
