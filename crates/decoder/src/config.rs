//! Helpers for the configs of llama-like architectures: [`TokenIds`] and
//! [`CommonConfig`], the fields every one of them has, turned into a [`DecoderSpec`].

use autocandle_core::{Activation, Error, LabelConfig, Result};

use crate::rope::{RopeConfig, RopeContext};
use crate::spec::{DecoderOptions, DecoderSpec, LayerType};

pub use autocandle_core::TokenIds;

/// The fields every llama-like config has, borrowed from it; [`CommonConfig::spec`] makes
/// the [`DecoderSpec`] of a plain Llama (every layer full attention, [`DecoderOptions`]
/// defaults), which an architecture then adjusts.
#[derive(Debug, Clone, Copy)]
pub struct CommonConfig<'a> {
    /// The model type, for error messages.
    pub model_type: &'static str,
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads` (multi-head attention).
    pub num_key_value_heads: Option<usize>,
    /// `None` (or 0) is `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// The rotary embedding settings (`rope_parameters`, or `rope_theta` + `rope_scaling`).
    pub rope: &'a RopeConfig,
    /// See [`RopeContext::partial_rotary`].
    pub partial_rotary: bool,
    /// See [`RopeContext::original_max_position_embeddings`].
    pub original_max_position_embeddings: Option<usize>,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    pub labels: &'a LabelConfig,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
}

impl CommonConfig<'_> {
    /// The spec of a plain Llama with these fields: checks the sizes, resolves the rope.
    pub fn spec(&self) -> Result<DecoderSpec> {
        // Checked before the per-layer lists are allocated (a config may say 2^40 layers).
        if self.num_hidden_layers > crate::spec::MAX_HIDDEN_LAYERS {
            return Err(Error::config(
                self.model_type,
                format!(
                    "`num_hidden_layers` is {}, more than the {} layers autocandle builds",
                    self.num_hidden_layers,
                    crate::spec::MAX_HIDDEN_LAYERS
                ),
            ));
        }
        if self.num_attention_heads == 0 {
            return Err(Error::config(self.model_type, "`num_attention_heads` must be at least 1, got 0"));
        }
        let head_dim = match self.head_dim {
            Some(d) if d > 0 => d,
            _ => self.hidden_size / self.num_attention_heads,
        };
        // The rotary frequencies are sized by `head_dim` before the weights are read.
        if head_dim > crate::spec::MAX_HEAD_DIM {
            return Err(Error::config(
                self.model_type,
                format!(
                    "the head dimension (`head_dim`, or `hidden_size` / `num_attention_heads`) is {head_dim}, more \
                     than the {} autocandle builds",
                    crate::spec::MAX_HEAD_DIM
                ),
            ));
        }
        let rope = self.rope.resolve(&RopeContext {
            model_type: self.model_type,
            head_dim,
            max_position_embeddings: self.max_position_embeddings,
            original_max_position_embeddings: self.original_max_position_embeddings,
            partial_rotary: self.partial_rotary,
        })?;
        let spec = DecoderSpec {
            model_type: self.model_type,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim,
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            hidden_act: self.hidden_act,
            rope,
            layer_types: vec![LayerType::Full; self.num_hidden_layers],
            sliding_window: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            num_labels: self.labels.num_labels(),
            use_cache: self.use_cache,
            options: DecoderOptions::default(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// An error unless `hidden_size` is a multiple of `num_attention_heads` (the
    /// `validate_architecture` of Llama and Gemma-2 configs, which holds even when
    /// `head_dim` is given).
    pub fn require_heads_divide_hidden(&self) -> Result<()> {
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::config(
                self.model_type,
                format!(
                    "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        Ok(())
    }
}

/// An error for `use_bidirectional_attention: true` (Gemma, Gemma-2), which `transformers`
/// honours only in some attention implementations (its eager path still masks causally):
/// there is no single behaviour to match, so the shared decoder stays causal and says so.
pub fn refuse_bidirectional_attention(model_type: &'static str, flag: Option<bool>) -> Result<()> {
    if flag == Some(true) {
        return Err(Error::config(
            model_type,
            "`use_bidirectional_attention: true` is not supported: autocandle runs this architecture as a \
             causal decoder; set it to false or null",
        ));
    }
    Ok(())
}
