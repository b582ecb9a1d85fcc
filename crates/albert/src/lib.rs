//! ALBERT for autocandle, after `transformers`' `modeling_albert` (5.25): [`AlbertConfig`],
//! [`AlbertModel`] and the heads [`AlbertForPreTraining`], [`AlbertForMaskedLM`],
//! [`AlbertForSequenceClassification`], [`AlbertForMultipleChoice`],
//! [`AlbertForTokenClassification`], [`AlbertForQuestionAnswering`] and the text encoder.
//!
//! An ALBERT block computes what a BERT layer does (post-norm self-attention, then the
//! feed-forward block), so the blocks are `autocandle-bert`'s
//! [`BertLayer`](autocandle_bert::BertLayer) built from ALBERT's weights (`attention.query`,
//! `attention.dense`, `ffn`, `ffn_output`, `full_layer_layer_norm`, ...) and the embeddings are
//! BERT's at `embedding_size`. What differs from BERT:
//!
//! - factorised embeddings: `embedding_size` wide, mapped to `hidden_size` by
//!   `encoder.embedding_hidden_mapping_in`;
//! - shared layers: `num_hidden_layers` layers run `num_hidden_groups` groups of weights,
//!   layer `i` the group `int(i / (num_hidden_layers / num_hidden_groups))`, each group
//!   `inner_group_num` blocks in turn;
//! - the pooler is one linear layer (`pooler`) and tanh; the heads: `predictions` (dense to
//!   `embedding_size`, `hidden_act`, LayerNorm, decoder tied to the word embeddings) and the
//!   sentence-order head `sop_classifier` in pretraining, whose logits (`sop_logits` in
//!   `transformers`) are the `seq_relationship_logits` of autocandle's `PreTrainingOutput`.
//!
//! Inference only: dropout is a no-op; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{AlbertConfig, TokenIds};
pub use heads::{
    __heads, AlbertForMaskedLM, AlbertForMultipleChoice, AlbertForPreTraining, AlbertForQuestionAnswering,
    AlbertForSequenceClassification, AlbertForTokenClassification, AlbertHead, AlbertLm, AlbertPreTraining,
    AlbertTextEncoding,
};
pub use model::AlbertModel;

#[cfg(test)]
mod tests;
