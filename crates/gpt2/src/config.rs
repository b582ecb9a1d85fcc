//! `GPT2Config`, field for field as `transformers`' `configuration_gpt2.GPT2Config` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `GPT2Config.attribute_map`: the common names `transformers` accepts for GPT-2's own.
    attribute_map: [
        ("hidden_size", "n_embd"),
        ("max_position_embeddings", "n_positions"),
        ("num_attention_heads", "n_head"),
        ("num_hidden_layers", "n_layer"),
    ];
/// The config of a GPT-2 model (`GPT2Config`), with the `transformers` defaults (those of
/// `openai-community/gpt2`).
///
/// `transformers`' `attribute_map` names are accepted when reading, and win over the GPT-2
/// names as they do there: `hidden_size` for `n_embd`, `max_position_embeddings` for
/// `n_positions`, `num_attention_heads` for `n_head` and `num_hidden_layers` for `n_layer`.
/// Fields `config.json` may hold that `GPT2Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "gpt2")]
#[serde(default)]
pub struct GPT2Config {
    /// Number of tokens in the vocabulary: the rows of `wte`, `[vocab_size, n_embd]`.
    pub vocab_size: usize,
    /// The number of positions (`max_position_embeddings`).
    pub n_positions: usize,
    /// The hidden size (`hidden_size`).
    pub n_embd: usize,
    /// The number of blocks (`num_hidden_layers`).
    pub n_layer: usize,
    /// The number of attention heads (`num_attention_heads`).
    pub n_head: usize,
    /// Inner size of the MLP; `None` is `4 * n_embd`.
    pub n_inner: Option<usize>,
    /// Activation of the MLP (`gelu_new` for GPT-2).
    pub activation_function: Activation,
    /// Training only: dropout is a no-op here.
    pub resid_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub embd_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub attn_pdrop: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the initialisation (of fresh Conv1D weights here too).
    pub initializer_range: f64,
    /// `GPT2DoubleHeadsModel` only, which autocandle does not implement; kept for round trips.
    pub summary_type: String,
    /// `GPT2DoubleHeadsModel` only.
    pub summary_use_proj: bool,
    /// `GPT2DoubleHeadsModel` only.
    pub summary_activation: Option<String>,
    /// `GPT2DoubleHeadsModel` only.
    pub summary_proj_to_labels: bool,
    /// `GPT2DoubleHeadsModel` only.
    pub summary_first_dropout: f64,
    /// Scale attention scores by `1 / sqrt(head_dim)`.
    pub scale_attn_weights: bool,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token (`<|endoftext|>`, 50256, in GPT-2).
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Marks the padding that `GPT2ForSequenceClassification` skips when it picks the last
    /// token of each row.
    pub pad_token_id: Option<i64>,
    /// Further scale the attention scores of block `i` by `1 / (i + 1)`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Compute the attention scores in f32 (`transformers` does only with eager attention;
    /// in f32 models this changes nothing).
    pub reorder_and_upcast_attn: bool,
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

impl Default for GPT2Config {
    /// `GPT2Config()` in `transformers`: the `openai-community/gpt2` shape.
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
            summary_type: "cls_index".to_owned(),
            summary_use_proj: true,
            summary_activation: None,
            summary_proj_to_labels: true,
            summary_first_dropout: 0.1,
            scale_attn_weights: true,
            use_cache: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            pad_token_id: None,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl GPT2Config {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("gpt2", message));
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
            return invalid(format!("`n_embd` ({}) must be a multiple of `n_head` ({})", self.n_embd, self.n_head));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return invalid(format!(
                "`layer_norm_epsilon` must be a finite number >= 0, got {}",
                self.layer_norm_epsilon
            ));
        }
        if self.add_cross_attention {
            return Err(Error::Unsupported(
                "GPT-2 with `add_cross_attention`: cross-attention needs `encoder_hidden_states`, which \
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

    /// Inner size of the MLP: `n_inner`, else `4 * n_embd`.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}
