//! DeBERTa-v2 (and DeBERTa-v3, the same model type) for autocandle, after `transformers`'
//! `modeling_deberta_v2` (5.25): [`DebertaV2Config`] with [`DebertaV2Model`],
//! [`DebertaV2ForMaskedLM`], [`DebertaV2ForSequenceClassification`],
//! [`DebertaV2ForMultipleChoice`], [`DebertaV2ForTokenClassification`] and
//! [`DebertaV2ForQuestionAnswering`]. The network ([`DebertaModel`], built from a
//! [`DebertaSpec`]) also serves DeBERTa (v1), whose crate (`autocandle-deberta`) maps its
//! config and weight names onto it.
//!
//! - Disentangled attention: content-to-content scores plus, with `relative_attention`, the
//!   `pos_att_type` terms `c2p` (queries against projected relative embeddings) and `p2c`
//!   (keys against them), each read at the clamped relative position of the pair, all divided
//!   by `sqrt(head_size * (1 + number of terms))`. Relative positions may be put in log
//!   buckets (`position_buckets`, `make_log_bucket_position`); `share_att_key` projects the
//!   relative embeddings with the content projections; `norm_rel_ebd` `"layer_norm"` normalises
//!   them first. Only the rows of the relative table that a sequence length reaches are
//!   projected.
//! - Embeddings: word (+ absolute positions when `position_biased_input`) (+ token types when
//!   `type_vocab_size` > 0), `embed_proj` when `embedding_size` differs from `hidden_size`,
//!   LayerNorm, then zeroed at padding.
//! - Padding: query `i` attends to key `j` when both are tokens; a padding query sees every key
//!   masked alike, so its attention is uniform over all keys, as in `transformers`: outputs
//!   match at every position, padding included.
//! - `conv_kernel_size` > 0: `ConvLayer` on the embeddings, added to the first layer's output.
//! - The masked LM head is `cls.predictions` when `legacy` (the default) and
//!   `lm_predictions.lm_head` (DeBERTa's own enhanced-decoder head, product with the word
//!   embeddings plus `bias`) otherwise. `transformers` maps `AutoModelForPreTraining` to the
//!   masked LM class, whose output (`MaskedLMOutput`) is not a pretraining output, so autocandle
//!   registers it under `AutoModelForMaskedLM` only, as for RoBERTa.
//! - Classification and multiple choice: `ContextPooler` (`pooler`: first token, `dense`,
//!   `pooler_hidden_act`), then a linear `classifier`.
//!
//! Inference only: dropout is a no-op; no `inputs_embeds`; `z_steps` is always 0 in
//! `transformers` and is not modelled.

#![warn(missing_docs)]

mod config;
mod deberta_v2;
mod heads;
mod model;

pub use config::{
    deserialize_pos_att_type, resolve_max_relative, ConvSpec, DebertaSpec, DebertaV2Config, RelativeSpec, TokenIds,
    Version,
};
pub use deberta_v2::{
    DebertaV2ForMaskedLM, DebertaV2ForMultipleChoice, DebertaV2ForQuestionAnswering,
    DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification, DebertaV2Model, DebertaV2TextEncoding,
};
pub use heads::{__heads, DebertaHead, DebertaLm};
pub use model::{log_bucket_position, ContextPooler, DebertaModel};

#[cfg(test)]
mod tests;
