//! MPNet for autocandle, after `transformers`' `modeling_mpnet` (5.25): [`MPNetConfig`],
//! [`MPNetModel`] and the heads [`MPNetForMaskedLM`], [`MPNetForSequenceClassification`],
//! [`MPNetForMultipleChoice`], [`MPNetForTokenClassification`] and
//! [`MPNetForQuestionAnswering`].
//!
//! An MPNet layer computes what a BERT layer does (post-norm self-attention, then the
//! feed-forward block), so the layers are `autocandle-bert`'s
//! [`BertLayer`](autocandle_bert::BertLayer) built from MPNet's weights (`attention.attn.q`,
//! `k`, `v`, `o`, `attention.LayerNorm`, ...). What differs from BERT:
//!
//! - a relative position bias added to every layer's attention scores: T5-style buckets of
//!   `key - query` (32 of them, half per direction, 8 exact, the rest log-spaced up to 128),
//!   one learned value per bucket and head, `encoder.relative_attention_bias`, computed once
//!   and shared by every layer;
//! - position ids counted from the padding token when the caller gives none, as RoBERTa's
//!   (`padding_idx` is fixed at 1 in `modeling_mpnet`, whatever `pad_token_id` says);
//! - no token type embeddings (`token_type_ids` are ignored);
//! - the heads: `lm_head` (dense, exact GELU, `layer_norm`, decoder tied to the word
//!   embeddings and its bias to `lm_head.bias`), `classifier` (dense and tanh on the first
//!   token, then `out_proj`), and a pooler only in the base model and multiple choice.
//!
//! `transformers` maps `AutoModelForPreTraining` to `MPNetForMaskedLM`, whose output
//! (`MaskedLMOutput`) is not a pretraining output, so, as for RoBERTa, autocandle registers
//! the masked LM under `AutoModelForMaskedLM` only.
//!
//! Inference only: dropout is a no-op; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{MPNetConfig, TokenIds};
pub use heads::{
    __heads, MPNetForMaskedLM, MPNetForMultipleChoice, MPNetForQuestionAnswering, MPNetForSequenceClassification,
    MPNetForTokenClassification, MPNetHead, MPNetLm,
};
pub use model::{relative_position_bucket, MPNetModel};

#[cfg(test)]
mod tests;
