//! `DebertaV2Config`, field for field as `transformers`' `configuration_deberta_v2` (5.25),
//! with the attributes `modeling_deberta_v2` reads through `getattr` (`share_att_key`,
//! `position_buckets`, `norm_rel_ebd`, `conv_kernel_size`, `conv_act`, `conv_groups`,
//! `embedding_size`, `attention_head_size`, `pooler_hidden_size`), and [`DebertaSpec`], the
//! checked description of the network that DeBERTa (v1) builds too.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Deserializer, Serialize};

pub use autocandle_core::TokenIds;

/// `pos_att_type` as `config.json` may hold it: a list (`["p2c", "c2p"]`), a `|`-separated
/// string (`"p2c|c2p"`, lower-cased and trimmed, as the config class does) or `null` (none).
pub fn deserialize_pos_att_type<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(Raw::List(list)) => list,
        Some(Raw::Text(text)) => text.to_lowercase().split('|').map(|s| s.trim().to_owned()).collect(),
    })
}

/// The config of a DeBERTa-v2 or DeBERTa-v3 model (`DebertaV2Config`), with the
/// `transformers` defaults (those of deberta-v2-xlarge).
///
/// Fields `config.json` may hold that neither the config class nor the modeling code reads
/// are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "deberta-v2")]
#[serde(default)]
pub struct DebertaV2Config {
    /// Number of tokens in the vocabulary: the rows of the token embedding.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers and of the MLM head's transform.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Rows of the absolute position table (when `position_biased_input`), and the relative
    /// span when `max_relative_positions` is below 1.
    pub max_position_embeddings: usize,
    /// Number of token types; 0 (the default) means no token type embedding, and
    /// `token_type_ids` are ignored.
    pub type_vocab_size: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Disentangled (relative position) attention.
    pub relative_attention: bool,
    /// The relative span; below 1 means `max_position_embeddings`.
    pub max_relative_positions: i64,
    /// The padding token (the word embedding's `padding_idx`; not used in the forward pass).
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or ids, of the end-of-sequence token, if any.
    pub eos_token_id: Option<TokenIds>,
    /// Absolute position embeddings added to the input embeddings.
    pub position_biased_input: bool,
    /// The relative attention terms: any of `c2p` (content to position) and `p2c` (position
    /// to content); a list or a `|`-separated string.
    #[serde(deserialize_with = "deserialize_pos_att_type")]
    pub pos_att_type: Vec<String>,
    /// Training only: dropout is a no-op here.
    pub pooler_dropout: f64,
    /// Activation of the `ContextPooler` of the classification heads.
    pub pooler_hidden_act: Activation,
    /// Width of the `ContextPooler`; `None` is `hidden_size` (the only width that works).
    pub pooler_hidden_size: Option<usize>,
    /// The masked LM head: `cls.predictions` (`true`, the default) or `lm_predictions.lm_head`.
    pub legacy: bool,
    /// The legacy LM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// The relative positions use the content `query_proj`/`key_proj` instead of their own
    /// `pos_query_proj`/`pos_key_proj`.
    pub share_att_key: bool,
    /// Above 0: relative positions in this many log buckets (`make_log_bucket_position`).
    pub position_buckets: i64,
    /// `"layer_norm"`: the relative embeddings go through `encoder.LayerNorm`; `|`-separated.
    pub norm_rel_ebd: String,
    /// Above 0: a convolution (`encoder.conv`) of this width after the first layer.
    pub conv_kernel_size: usize,
    /// The activation of that convolution.
    pub conv_act: Activation,
    /// The groups of that convolution.
    pub conv_groups: usize,
    /// Width of the embeddings; `None` is `hidden_size`; another width adds `embed_proj`.
    pub embedding_size: Option<usize>,
    /// Width of an attention head; `None` is `hidden_size / num_attention_heads`.
    pub attention_head_size: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub cls_dropout: Option<f64>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for DebertaV2Config {
    /// `DebertaV2Config()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 128100,
            hidden_size: 1536,
            num_hidden_layers: 24,
            num_attention_heads: 24,
            intermediate_size: 6144,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-7,
            relative_attention: false,
            max_relative_positions: -1,
            pad_token_id: Some(0),
            bos_token_id: None,
            eos_token_id: None,
            position_biased_input: true,
            pos_att_type: Vec::new(),
            pooler_dropout: 0.0,
            pooler_hidden_act: Activation::Gelu,
            pooler_hidden_size: None,
            legacy: true,
            tie_word_embeddings: true,
            share_att_key: false,
            position_buckets: -1,
            norm_rel_ebd: "none".to_owned(),
            conv_kernel_size: 0,
            conv_act: Activation::Tanh,
            conv_groups: 1,
            embedding_size: None,
            attention_head_size: None,
            cls_dropout: None,
            labels: LabelConfig::default(),
        }
    }
}

/// Which `transformers` module the network follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `modeling_deberta`: `in_proj` with `q_bias`/`v_bias`, `pos_proj`/`pos_q_proj`,
    /// `talking_head`, an attention span of `min(seq, max_relative_positions)`.
    V1,
    /// `modeling_deberta_v2`: `query_proj`/`key_proj`/`value_proj`, log buckets,
    /// `share_att_key`, `norm_rel_ebd`, the convolution.
    V2,
}

/// The convolution after the first layer (`ConvLayer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    /// `conv_kernel_size` (odd).
    pub kernel_size: usize,
    /// `conv_act`.
    pub activation: Activation,
    /// `conv_groups` (divides `hidden_size`).
    pub groups: usize,
}

/// A checked DeBERTa config, what the network is built from: made by
/// [`DebertaSpec::from_v2`] or by the `deberta` crate from its own config.
#[derive(Debug, Clone)]
pub struct DebertaSpec {
    /// The config's model type, for messages.
    pub model_type: &'static str,
    /// Which modeling file the weight names and the attention follow.
    pub version: Version,
    /// Rows of the word embedding.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Width of the embeddings (`embed_proj` maps it to `hidden_size` when they differ).
    pub embedding_size: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// Number of attention heads.
    pub num_heads: usize,
    /// Width of one head.
    pub head_size: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// `hidden_act`.
    pub hidden_act: Activation,
    /// Rows of the absolute position table.
    pub max_position_embeddings: usize,
    /// Rows of the token type table (0: none).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Absolute positions added to the embeddings.
    pub position_biased_input: bool,
    /// Disentangled attention with its terms; `None` when `relative_attention` is off.
    pub relative: Option<RelativeSpec>,
    /// `1 + ` the number of relative terms: the scores are divided by `sqrt(head_size * scale_factor)`.
    pub scale_factor: usize,
    /// The convolution after the first layer (v2).
    pub conv: Option<ConvSpec>,
    /// DeBERTa (v1)'s `talking_head`: the heads' scores and probabilities are mixed.
    pub talking_head: bool,
    /// The pooler's activation.
    pub pooler_hidden_act: Activation,
    /// `cls.predictions` (legacy) or `lm_predictions.lm_head`.
    pub legacy: bool,
    /// The legacy LM decoder shares the word embeddings.
    pub tie_word_embeddings: bool,
    /// Labels of the classification heads.
    pub labels: LabelConfig,
}

/// The relative attention of a [`DebertaSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelativeSpec {
    /// The content-to-position term.
    pub c2p: bool,
    /// The position-to-content term.
    pub p2c: bool,
    /// Half the rows of `rel_embeddings` (`pos_ebd_size`; `max_relative_positions` in v1).
    pub span: usize,
    /// `max_relative_positions`, resolved.
    pub max_relative_positions: usize,
    /// `position_buckets` when above 0.
    pub buckets: Option<usize>,
    /// The positional projections are the content ones.
    pub share_att_key: bool,
    /// `rel_embeddings` go through `encoder.LayerNorm`.
    pub norm_rel_ebd: bool,
}

impl DebertaSpec {
    /// Check a DeBERTa-v2 config.
    pub fn from_v2(c: &DebertaV2Config) -> Result<Self> {
        let model_type = "deberta-v2";
        let invalid = |message: String| Err(Error::config(model_type, message));
        let embedding_size = c.embedding_size.unwrap_or(c.hidden_size);
        let head_size = match c.attention_head_size {
            Some(size) => size,
            None => c.hidden_size / c.num_attention_heads.max(1),
        };
        let c2p = c.pos_att_type.iter().any(|t| t == "c2p");
        let p2c = c.pos_att_type.iter().any(|t| t == "p2c");
        let relative = if c.relative_attention {
            let max_relative_positions = resolve_max_relative(c.max_relative_positions, c.max_position_embeddings);
            let buckets = usize::try_from(c.position_buckets).ok().filter(|&b| b > 0);
            if let Some(b) = buckets {
                if b < 2 || max_relative_positions <= b / 2 + 1 {
                    return invalid(format!(
                        "`position_buckets` ({b}) needs at least 2 buckets and `max_relative_positions` ({}) above \
                         `position_buckets / 2 + 1` (the log buckets divide by log((max_relative_positions - 1) / \
                         (position_buckets / 2))): raise `max_relative_positions` or set `position_buckets` to -1",
                        max_relative_positions
                    ));
                }
            }
            let norms: Vec<String> = c.norm_rel_ebd.to_lowercase().split('|').map(|s| s.trim().to_owned()).collect();
            Some(RelativeSpec {
                c2p,
                p2c,
                span: buckets.unwrap_or(max_relative_positions),
                max_relative_positions,
                buckets,
                share_att_key: c.share_att_key,
                norm_rel_ebd: norms.iter().any(|n| n == "layer_norm"),
            })
        } else {
            None
        };
        let conv = (c.conv_kernel_size > 0).then_some(ConvSpec {
            kernel_size: c.conv_kernel_size,
            activation: c.conv_act,
            groups: c.conv_groups,
        });
        if c.attention_head_size == Some(0) {
            return invalid("`attention_head_size` must be at least 1, got 0".to_owned());
        }
        let spec = Self {
            model_type,
            version: Version::V2,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            embedding_size,
            num_layers: c.num_hidden_layers,
            num_heads: c.num_attention_heads,
            head_size,
            intermediate_size: c.intermediate_size,
            hidden_act: c.hidden_act,
            max_position_embeddings: c.max_position_embeddings,
            type_vocab_size: c.type_vocab_size,
            layer_norm_eps: c.layer_norm_eps,
            position_biased_input: c.position_biased_input,
            relative,
            scale_factor: 1 + usize::from(c2p) + usize::from(p2c),
            conv,
            talking_head: false,
            pooler_hidden_act: c.pooler_hidden_act,
            legacy: c.legacy,
            tie_word_embeddings: c.tie_word_embeddings,
            labels: c.labels.clone(),
        };
        spec.validate(c.pooler_hidden_size)?;
        Ok(spec)
    }

    /// The checks both versions share; `pooler_hidden_size` is the config's.
    pub fn validate(&self, pooler_hidden_size: Option<usize>) -> Result<()> {
        let invalid = |message: String| Err(Error::config(self.model_type, message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("embedding_size", self.embedding_size),
            ("num_attention_heads", self.num_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            // transformers checks this even when `attention_head_size` is given.
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_heads
            ));
        }
        if self.all_head_size() != self.hidden_size {
            return invalid(format!(
                "`attention_head_size` ({}) times `num_attention_heads` ({}) must equal `hidden_size` ({}): the \
                 attention output projection is `hidden_size` wide; remove `attention_head_size`",
                self.head_size, self.num_heads, self.hidden_size
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        if let Some(size) = pooler_hidden_size {
            if size != self.hidden_size {
                return invalid(format!(
                    "`pooler_hidden_size` ({size}) must equal `hidden_size` ({}): the classifier after the pooler \
                     takes `hidden_size` inputs; remove `pooler_hidden_size` or set it to `hidden_size`",
                    self.hidden_size
                ));
            }
        }
        if let Some(conv) = &self.conv {
            if conv.kernel_size.is_multiple_of(2) {
                return invalid(format!(
                    "`conv_kernel_size` ({}) must be odd: an even kernel with padding (k - 1) / 2 shortens the \
                     sequence (transformers fails on it too)",
                    conv.kernel_size
                ));
            }
            if conv.groups == 0 || !self.hidden_size.is_multiple_of(conv.groups) {
                return invalid(format!(
                    "`conv_groups` ({}) must divide `hidden_size` ({})",
                    conv.groups, self.hidden_size
                ));
            }
        }
        Ok(())
    }

    /// The check of the non-legacy masked LM head (`lm_predictions.lm_head`), which multiplies
    /// `hidden_size` features with the `embedding_size`-wide word embeddings.
    pub fn check_lm_head(&self) -> Result<()> {
        if !self.legacy && self.embedding_size != self.hidden_size {
            return Err(Error::config(
                self.model_type,
                format!(
                    "the masked LM head with `legacy` false needs `embedding_size` ({}) equal to `hidden_size` ({}): \
                     it multiplies the hidden states by the word embeddings; set `legacy` to true or make the \
                     sizes equal",
                    self.embedding_size, self.hidden_size
                ),
            ));
        }
        Ok(())
    }

    /// The width of all heads together (`num_heads * head_size`).
    pub fn all_head_size(&self) -> usize {
        self.num_heads * self.head_size
    }
}

/// `max_relative_positions`, with values below 1 meaning `max_position_embeddings`.
pub fn resolve_max_relative(max_relative_positions: i64, max_position_embeddings: usize) -> usize {
    match usize::try_from(max_relative_positions) {
        Ok(m) if m >= 1 => m,
        _ => max_position_embeddings,
    }
}
