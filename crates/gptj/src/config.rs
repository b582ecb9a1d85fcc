//! `GPTJConfig`, field for field as `transformers`' `configuration_gptj.GPTJConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `GPTJConfig.attribute_map`: the common names `transformers` accepts for GPT-J's own.
    attribute_map: [
        ("hidden_size", "n_embd"),
        ("max_position_embeddings", "n_positions"),
        ("num_attention_heads", "n_head"),
        ("num_hidden_layers", "n_layer"),
    ];
/// The config of a GPT-J model (`GPTJConfig`), with the `transformers` defaults (those of
/// `EleutherAI/gpt-j-6b`).
///
/// `transformers`' `attribute_map` names are accepted when reading, and win over the GPT-J
/// names as they do there: `hidden_size` for `n_embd`, `max_position_embeddings` for
/// `n_positions`, `num_attention_heads` for `n_head` and `num_hidden_layers` for `n_layer`.
/// Fields `config.json` may hold that `GPTJConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "gptj")]
#[serde(default)]
pub struct GPTJConfig {
    /// Number of tokens in the vocabulary: the rows of `wte`.
    pub vocab_size: usize,
    /// The number of positions (`max_position_embeddings`).
    pub n_positions: usize,
    /// The hidden size (`hidden_size`).
    pub n_embd: usize,
    /// The number of blocks (`num_hidden_layers`).
    pub n_layer: usize,
    /// The number of attention heads (`num_attention_heads`).
    pub n_head: usize,
    /// The leading dimensions of each head that rotate (even, at most the head size); `None`
    /// rotates the whole head (`transformers` can only run that with a single head).
    pub rotary_dim: Option<usize>,
    /// Inner size of the MLP; `None` is `4 * n_embd`.
    pub n_inner: Option<usize>,
    /// Activation of the MLP (`gelu_new` for GPT-J).
    pub activation_function: Activation,
    /// Training only: dropout is a no-op here.
    pub resid_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub embd_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub attn_pdrop: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the initialisation.
    pub initializer_range: f64,
    /// Whether `transformers` builds a cache in its forward pass; without one (false) it looks
    /// for packed sequences in `position_ids` when there is no `attention_mask`, and so does this.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token.
    pub eos_token_id: Option<TokenIds>,
    /// The padding token, which `GPTJForSequenceClassification` skips when it picks the last
    /// token of each row.
    pub pad_token_id: Option<i64>,
    /// The LM head shares the token embedding matrix `transformer.wte` (its bias stays its own).
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for GPTJConfig {
    /// `GPTJConfig()` in `transformers`: the GPT-J 6B shape.
    fn default() -> Self {
        Self {
            vocab_size: 50400,
            n_positions: 2048,
            n_embd: 4096,
            n_layer: 28,
            n_head: 16,
            rotary_dim: Some(64),
            n_inner: None,
            activation_function: Activation::GeluTanh,
            resid_pdrop: 0.0,
            embd_pdrop: 0.0,
            attn_pdrop: 0.0,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            use_cache: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            pad_token_id: None,
            tie_word_embeddings: false,
            labels: LabelConfig::default(),
        }
    }
}

impl GPTJConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("gptj", message));
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
                "`n_embd` ({}) must be a multiple of `n_head` ({}): each head gets an equal share of the hidden state",
                self.n_embd, self.n_head
            ));
        }
        let head_dim = self.head_dim();
        match self.rotary_dim {
            Some(0) => return invalid("`rotary_dim` must be at least 2, got 0".to_owned()),
            Some(r) if r > head_dim => {
                return invalid(format!(
                    "`rotary_dim` ({r}) is larger than the head size `n_embd / n_head` ({head_dim}): set it to at \
                     most {head_dim}"
                ))
            }
            Some(r) if !r.is_multiple_of(2) => {
                return invalid(format!("`rotary_dim` ({r}) must be even: dimensions rotate in pairs"))
            }
            None if !head_dim.is_multiple_of(2) => {
                return invalid(format!(
                    "the head size ({head_dim}) must be even to rotate whole heads (`rotary_dim` is null)"
                ))
            }
            _ => {}
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return invalid(format!(
                "`layer_norm_epsilon` must be a finite number >= 0, got {}",
                self.layer_norm_epsilon
            ));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// The rotated dimensions of each head: `rotary_dim`, else the whole head.
    pub fn rotary_dims(&self) -> usize {
        self.rotary_dim.unwrap_or_else(|| self.head_dim())
    }

    /// Inner size of the MLP: `n_inner`, else `4 * n_embd`.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}
