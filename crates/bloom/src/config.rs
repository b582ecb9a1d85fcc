//! `BloomConfig`, field for field as `transformers`' `configuration_bloom.BloomConfig` (5.25).

use autocandle_core::{AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `BloomConfig.attribute_map`, and the old `n_embed` spelling of `hidden_size` that
    // `BloomConfig.__post_init__` still reads (it wins over `hidden_size`).
    attribute_map: [
        ("num_hidden_layers", "n_layer"),
        ("num_attention_heads", "n_head"),
        ("n_embed", "hidden_size"),
    ];
/// The config of a BLOOM model (`BloomConfig`), with the `transformers` defaults.
///
/// `transformers`' `attribute_map` names are accepted when reading, and win over the BLOOM
/// names as they do there: `num_hidden_layers` for `n_layer`, `num_attention_heads` for
/// `n_head`; so does the old `n_embed` for `hidden_size`. Fields `config.json` may hold that
/// `BloomConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "bloom")]
#[serde(default)]
pub struct BloomConfig {
    /// Number of tokens in the vocabulary: the rows of `word_embeddings`.
    pub vocab_size: usize,
    /// The hidden size.
    pub hidden_size: usize,
    /// The number of blocks (`num_hidden_layers`).
    pub n_layer: usize,
    /// The number of attention heads (`num_attention_heads`); any count works (the ALiBi
    /// slopes of a count that is not a power of two interleave two series).
    pub n_head: usize,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the initialisation.
    pub initializer_range: f64,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token.
    pub eos_token_id: Option<TokenIds>,
    /// The padding token, which `BloomForSequenceClassification` skips when it picks the
    /// last token of each row.
    pub pad_token_id: Option<i64>,
    /// The residual of each sub-layer is the layer-normed input instead of the input.
    pub apply_residual_connection_post_layernorm: bool,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// The tensor-parallel degree of training; with `slow_but_exact` `transformers` splits
    /// the output projections into that many slices, which changes the result only by
    /// rounding, so this implementation does not.
    pub pretraining_tp: usize,
    /// See `pretraining_tp`.
    pub slow_but_exact: bool,
    /// The LM head shares the token embedding matrix `transformer.word_embeddings`.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for BloomConfig {
    /// `BloomConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 250880,
            hidden_size: 64,
            n_layer: 2,
            n_head: 8,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            use_cache: true,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            pad_token_id: None,
            apply_residual_connection_post_layernorm: false,
            hidden_dropout: 0.0,
            attention_dropout: 0.0,
            pretraining_tp: 1,
            slow_but_exact: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl BloomConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("bloom", message));
        for (name, value) in
            [("vocab_size", self.vocab_size), ("hidden_size", self.hidden_size), ("n_head", self.n_head)]
        {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.n_head) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `n_head` ({}): each head gets an equal share of the \
                 hidden state",
                self.hidden_size, self.n_head
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

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.n_head.max(1)
    }
}
