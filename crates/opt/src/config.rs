//! `OPTConfig`, field for field as `transformers`' `configuration_opt.OPTConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of an OPT model (`OPTConfig`), with the `transformers` defaults (the
/// `facebook/opt-125m` shape). Fields `config.json` may hold that `OPTConfig` does not declare
/// are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "opt")]
#[serde(default)]
pub struct OPTConfig {
    /// Number of tokens in the vocabulary: the rows of `embed_tokens`.
    pub vocab_size: usize,
    /// Width of the hidden states inside the decoder layers.
    pub hidden_size: usize,
    /// The number of decoder layers.
    pub num_hidden_layers: usize,
    /// Inner size of each layer's feed-forward network (`fc1`).
    pub ffn_dim: usize,
    /// The number of learned positions (the table holds 2 more: OPT's position offset).
    pub max_position_embeddings: usize,
    /// Pre-norm layers (every OPT but 350m) when true; post-norm (OPT-350m) when false, which
    /// also drops the final layer norm.
    pub do_layer_norm_before: bool,
    /// Drop the final layer norm of a pre-norm model (checkpoints fine-tuned before
    /// `transformers` 4.20.1).
    #[serde(rename = "_remove_final_layer_norm")]
    pub remove_final_layer_norm: bool,
    /// Width of the token embeddings and of the model's output (`None` is `hidden_size`);
    /// when it differs, `project_in` and `project_out` map between the two (OPT-350m).
    pub word_embed_proj_dim: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// The number of attention heads.
    pub num_attention_heads: usize,
    /// Activation of the feed-forward network (`relu` for OPT).
    pub activation_function: Activation,
    /// Training only: layer drop is a no-op here.
    pub layerdrop: f64,
    /// Standard deviation of the initialisation.
    pub init_std: f64,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// The padding token, which `OPTForSequenceClassification` skips when it picks the last
    /// token of each row.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token.
    pub eos_token_id: Option<TokenIds>,
    /// Biases on the attention projections and the feed-forward layers.
    pub enable_bias: bool,
    /// Learned weights and biases in the layer norms (else plain normalisation).
    pub layer_norm_elementwise_affine: bool,
    /// The LM head shares the token embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for OPTConfig {
    /// `OPTConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50272,
            hidden_size: 768,
            num_hidden_layers: 12,
            ffn_dim: 3072,
            max_position_embeddings: 2048,
            do_layer_norm_before: true,
            remove_final_layer_norm: false,
            word_embed_proj_dim: None,
            dropout: 0.1,
            attention_dropout: 0.0,
            num_attention_heads: 12,
            activation_function: Activation::Relu,
            layerdrop: 0.0,
            init_std: 0.02,
            use_cache: true,
            pad_token_id: Some(1),
            bos_token_id: Some(2),
            eos_token_id: Some(TokenIds::One(2)),
            enable_bias: true,
            layer_norm_elementwise_affine: true,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

/// The epsilon of every OPT layer norm (`nn.LayerNorm`'s default).
pub(crate) const LAYER_NORM_EPS: f64 = 1e-5;

/// The offset OPT adds to every position id before looking it up.
pub(crate) const POSITION_OFFSET: usize = 2;

impl OPTConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("opt", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("ffn_dim", self.ffn_dim),
            ("max_position_embeddings", self.max_position_embeddings),
            ("word_embed_proj_dim", self.embed_dim()),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({}): each head gets an equal \
                 share of the hidden state",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Width of the token embeddings and of the output: `word_embed_proj_dim`, else
    /// `hidden_size`.
    pub fn embed_dim(&self) -> usize {
        self.word_embed_proj_dim.unwrap_or(self.hidden_size)
    }

    /// Whether the decoder ends with `final_layer_norm`.
    pub fn has_final_layer_norm(&self) -> bool {
        self.do_layer_norm_before && !self.remove_final_layer_norm
    }
}
