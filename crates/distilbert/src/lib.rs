//! DistilBERT for autocandle, after `transformers`' `modeling_distilbert` (5.23):
//! [`DistilBertConfig`], [`DistilBertModel`] and the heads [`DistilBertForMaskedLM`],
//! [`DistilBertForSequenceClassification`], [`DistilBertForMultipleChoice`],
//! [`DistilBertForTokenClassification`] and [`DistilBertForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`distilbert.embeddings.*`,
//! `distilbert.transformer.layer.N.attention.q_lin.weight`, `vocab_projector.bias`, ...), and
//! every type registers itself with `#[derive(AutoRegister)]` under model type `distilbert`.
//!
//! A DistilBERT layer computes what a BERT layer does (post-norm self-attention and
//! feed-forward block), so the layers are `autocandle-bert`'s
//! [`BertLayer`](autocandle_bert::BertLayer), built from DistilBERT's weights. What differs
//! from BERT: no token type embeddings (`token_type_ids` are ignored), no pooler (the
//! classification heads take the first token through `pre_classifier` and ReLU), a fixed
//! LayerNorm epsilon of 1e-12, optional sinusoidal position embeddings, and the config's
//! names (`dim`, `n_layers`, `n_heads`, `hidden_dim`, `activation`).
//!
//! Inference only: dropout is a no-op; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{DistilBertConfig, TokenIds};
pub use heads::{
    __heads, DistilBertForMaskedLM, DistilBertForMultipleChoice, DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification, DistilBertForTokenClassification, DistilBertHead, DistilBertLm,
};
pub use model::{sinusoidal_position_embeddings, DistilBertModel};

#[cfg(test)]
mod tests;
