//! `FalconConfig`, field for field as `transformers`' `configuration_falcon.FalconConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{RopeConfig, RopeContext, RopeSpec, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Falcon model (`FalconConfig`), with the `transformers` defaults (those of
/// `tiiuae/falcon-7b`).
///
/// `n_embed`, the legacy name of `hidden_size`, wins over it when given, as in
/// `transformers`. Fields `config.json` may hold that `FalconConfig` does not declare are
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "falcon")]
#[serde(default)]
pub struct FalconConfig {
    /// Number of tokens in the vocabulary: the rows of `word_embeddings`.
    pub vocab_size: usize,
    /// Width of the hidden states (see [`FalconConfig::hidden`] for `n_embed`).
    pub hidden_size: usize,
    /// Legacy name of `hidden_size`; wins over it when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_embed: Option<usize>,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention (query) heads in each block.
    pub num_attention_heads: usize,
    /// LayerNorms of a parallel block: 2 (`ln_attn` and `ln_mlp`), or 1 (`input_layernorm`
    /// for both); `None` is 2 with `new_decoder_architecture`, else 1.
    pub num_ln_in_parallel_attn: Option<usize>,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Key/value heads of the new decoder architecture (and of the old one without
    /// `multi_query`, where they must equal the query heads); `None` is `num_attention_heads`.
    pub num_kv_heads: Option<usize>,
    /// ALiBi position biases in the attention instead of rotary embeddings.
    pub alibi: bool,
    /// Falcon-40B's decoder: `num_kv_heads` groups of queries with their key and value in one
    /// fused projection, and two LayerNorms per block; `multi_query` is ignored.
    pub new_decoder_architecture: bool,
    /// Old architecture: one key/value head for every query head.
    pub multi_query: bool,
    /// Old architecture: attention and MLP in parallel on the same normed input; without it,
    /// the MLP reads `post_attention_layernorm` of the attention's residual sum.
    pub parallel_attn: bool,
    /// Bias on every linear layer of the blocks.
    pub bias: bool,
    /// Longest sequence, in tokens, the model was trained for.
    pub max_position_embeddings: usize,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`); unused with `alibi`.
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Marks the padding that `FalconForSequenceClassification` skips when it picks the last
    /// token of each row.
    pub pad_token_id: Option<i64>,
    /// Width of the MLP; `None` is `4 * hidden_size`.
    pub ffn_hidden_size: Option<usize>,
    /// Activation of the MLP (`gelu`).
    pub activation: Activation,
    /// Whether the LM head shares the token embedding `word_embeddings`.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for FalconConfig {
    /// `FalconConfig()` in `transformers`: the Falcon-7B shape.
    fn default() -> Self {
        Self {
            vocab_size: 65024,
            hidden_size: 4544,
            n_embed: None,
            num_hidden_layers: 32,
            num_attention_heads: 71,
            num_ln_in_parallel_attn: None,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            use_cache: true,
            hidden_dropout: 0.0,
            attention_dropout: 0.0,
            num_kv_heads: None,
            alibi: false,
            new_decoder_architecture: false,
            multi_query: true,
            parallel_attn: true,
            bias: false,
            max_position_embeddings: 2048,
            rope: RopeConfig::default(),
            bos_token_id: Some(11),
            eos_token_id: Some(TokenIds::One(11)),
            pad_token_id: None,
            ffn_hidden_size: None,
            activation: Activation::Gelu,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

/// How the fused `query_key_value` projection is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkvLayout {
    /// New decoder architecture: `[kv_heads, heads / kv_heads + 2, head_dim]`, each group's
    /// queries, then its key and its value.
    Grouped,
    /// Old architecture with `multi_query`: `[heads + 2, head_dim]`, every query head, then the
    /// one key and the one value.
    MultiQuery,
    /// Old architecture without `multi_query`: `[heads, 3, head_dim]`, each head's query, key
    /// and value side by side.
    Interleaved,
}

/// Which LayerNorms a block has and how it sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockLayout {
    /// `ln_attn` before the attention and `ln_mlp` before the MLP, both reading the block's
    /// input; `x + (mlp + attn)` (new architecture, `num_ln_in_parallel_attn` 2).
    TwoNorms,
    /// `input_layernorm` read by both the attention and the MLP; `x + (mlp + attn)`.
    Parallel,
    /// `y = x + attn(input_layernorm(x))`, then `y + mlp(post_attention_layernorm(y))`.
    Sequential,
}

impl FalconConfig {
    /// The hidden size: `n_embed` when set, else `hidden_size`.
    pub fn hidden(&self) -> usize {
        self.n_embed.unwrap_or(self.hidden_size)
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden() / self.num_attention_heads.max(1)
    }

    /// The key/value heads the attention produces (and the cache stores):
    /// `num_kv_heads` (default `num_attention_heads`) with the new architecture or without
    /// `multi_query`, else 1.
    pub fn kv_heads(&self) -> usize {
        if self.new_decoder_architecture || !self.multi_query {
            self.num_kv_heads.unwrap_or(self.num_attention_heads)
        } else {
            1
        }
    }

    /// Width of the MLP: `ffn_hidden_size`, else `4 * hidden`.
    pub fn ffn_dim(&self) -> usize {
        self.ffn_hidden_size.unwrap_or(4 * self.hidden())
    }

    /// The layout of `query_key_value`.
    pub fn qkv_layout(&self) -> QkvLayout {
        if self.new_decoder_architecture {
            QkvLayout::Grouped
        } else if self.multi_query {
            QkvLayout::MultiQuery
        } else {
            QkvLayout::Interleaved
        }
    }

    /// The width of `query_key_value`'s output.
    pub fn qkv_dim(&self) -> usize {
        (self.num_attention_heads + 2 * self.kv_heads()) * self.head_dim()
    }

    /// The block's norms and sums, as `FalconDecoderLayer` builds them.
    pub fn block_layout(&self) -> BlockLayout {
        if !self.parallel_attn && !self.new_decoder_architecture {
            BlockLayout::Sequential
        } else if self.new_decoder_architecture && self.num_ln_in_parallel_attn.unwrap_or(2) == 2 {
            BlockLayout::TwoNorms
        } else {
            BlockLayout::Parallel
        }
    }

    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("falcon", message));
        let (hidden, heads, kv) = (self.hidden(), self.num_attention_heads, self.kv_heads());
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", hidden),
            ("num_attention_heads", heads),
            ("num_kv_heads", kv),
            ("ffn_hidden_size", self.ffn_dim()),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !hidden.is_multiple_of(heads) {
            return invalid(format!(
                "`hidden_size` ({hidden}) must be a multiple of `num_attention_heads` ({heads}): each head gets \
                 hidden_size / num_attention_heads dimensions"
            ));
        }
        if !heads.is_multiple_of(kv) {
            return invalid(format!(
                "`num_kv_heads` ({kv}) must divide `num_attention_heads` ({heads}): each key/value head serves a \
                 group of query heads"
            ));
        }
        if self.qkv_layout() == QkvLayout::Interleaved && kv != heads {
            return invalid(format!(
                "without `multi_query` or `new_decoder_architecture` the fused projection holds one key/value \
                 head per query head, so `num_kv_heads` ({kv}) must equal `num_attention_heads` ({heads}) or be \
                 left out"
            ));
        }
        match self.num_ln_in_parallel_attn {
            Some(n) if n != 1 && n != 2 => {
                return invalid(format!("`num_ln_in_parallel_attn` must be 1 or 2, got {n}"));
            }
            Some(2) if self.parallel_attn && !self.new_decoder_architecture => {
                return invalid(
                    "`num_ln_in_parallel_attn` 2 needs `new_decoder_architecture`: the old architecture's block \
                     reads `input_layernorm` (transformers fails on this config too); leave it out or set it to 1"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if self.new_decoder_architecture && !self.parallel_attn {
            return invalid(
                "`new_decoder_architecture` always runs attention and MLP in parallel (transformers fails on \
                 `parallel_attn` false with it); set `parallel_attn` to true"
                    .to_owned(),
            );
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return invalid(format!(
                "`layer_norm_epsilon` must be a finite number >= 0, got {}",
                self.layer_norm_epsilon
            ));
        }
        if !self.alibi {
            self.rope_spec()?;
        }
        Ok(())
    }

    /// The resolved rotary embedding (whole heads rotate); meaningless with `alibi`.
    pub fn rope_spec(&self) -> Result<RopeSpec> {
        self.rope.resolve(&RopeContext {
            model_type: "falcon",
            head_dim: self.head_dim(),
            max_position_embeddings: self.max_position_embeddings,
            original_max_position_embeddings: None,
            partial_rotary: false,
        })
    }
}
