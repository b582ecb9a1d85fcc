//! `DebertaConfig`, field for field as `transformers`' `configuration_deberta.DebertaConfig`
//! (5.25), with the attributes `modeling_deberta` reads through `getattr` (`talking_head`,
//! `embedding_size`, `pooler_hidden_size`).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_deberta_v2::{deserialize_pos_att_type, resolve_max_relative, DebertaSpec, RelativeSpec, Version};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of a DeBERTa model (`DebertaConfig`), with the `transformers` defaults.
///
/// Fields `config.json` may hold that neither the config class nor the modeling code reads
/// (DeBERTa-v2's `position_buckets`, `share_att_key`, ...) are ignored, as `modeling_deberta`
/// ignores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "deberta")]
#[serde(default)]
pub struct DebertaConfig {
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
    /// The relative attention terms: any of `c2p` and `p2c`; a list or a `|`-separated string.
    /// Every entry counts in the score scale (`1 + len(pos_att_type)`), as in `transformers`.
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
    /// Mix the heads' attention scores (`head_logits_proj`) and probabilities
    /// (`head_weights_proj`).
    pub talking_head: bool,
    /// Width of the embeddings; `None` is `hidden_size`; another width adds `embed_proj`.
    pub embedding_size: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub cls_dropout: Option<f64>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for DebertaConfig {
    /// `DebertaConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50265,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
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
            talking_head: false,
            embedding_size: None,
            cls_dropout: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DebertaConfig {
    /// The checked network description: DeBERTa-v2's network with v1's weight names, its
    /// attention span (`min(seq, max_relative_positions)`, which reads the same rows of
    /// `rel_embeddings` as the full table at offset `max_relative_positions`), no buckets, no
    /// shared keys, no relative LayerNorm and no convolution.
    pub fn spec(&self) -> Result<DebertaSpec> {
        let c2p = self.pos_att_type.iter().any(|t| t == "c2p");
        let p2c = self.pos_att_type.iter().any(|t| t == "p2c");
        let relative = self.relative_attention.then(|| {
            let max_relative_positions =
                resolve_max_relative(self.max_relative_positions, self.max_position_embeddings);
            RelativeSpec {
                c2p,
                p2c,
                span: max_relative_positions,
                max_relative_positions,
                buckets: None,
                share_att_key: false,
                norm_rel_ebd: false,
            }
        });
        let spec = DebertaSpec {
            model_type: "deberta",
            version: Version::V1,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            embedding_size: self.embedding_size.unwrap_or(self.hidden_size),
            num_layers: self.num_hidden_layers,
            num_heads: self.num_attention_heads,
            head_size: self.hidden_size / self.num_attention_heads.max(1),
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps,
            position_biased_input: self.position_biased_input,
            relative,
            scale_factor: 1 + self.pos_att_type.len(),
            conv: None,
            talking_head: self.talking_head,
            pooler_hidden_act: self.pooler_hidden_act,
            legacy: self.legacy,
            tie_word_embeddings: self.tie_word_embeddings,
            labels: self.labels.clone(),
        };
        spec.validate(self.pooler_hidden_size)?;
        Ok(spec)
    }
}
