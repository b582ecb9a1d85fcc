//! GPT-2 for autocandle, after `transformers`' `modeling_gpt2` (5.23): [`GPT2Config`],
//! [`GPT2Model`] and the heads [`GPT2LMHeadModel`], [`GPT2ForSequenceClassification`],
//! [`GPT2ForTokenClassification`] and [`GPT2ForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`transformer.wte.weight`,
//! `transformer.h.N.attn.c_attn.weight`, `lm_head.weight`, ...); the `Conv1D` layers keep
//! their `[in, out]` weights as stored. Every type registers itself with
//! `#[derive(AutoRegister)]` under model type `gpt2`.
//!
//! The LM head runs with a key/value cache ([`autocandle_core::KvCache`]) for incremental
//! decoding. Inference only: dropout is a no-op; there is no `inputs_embeds`, no
//! cross-attention (`add_cross_attention`) and no `GPT2DoubleHeadsModel`.

#![warn(missing_docs)]

mod config;
mod heads;
mod inputs;
mod model;

pub use config::{GPT2Config, TokenIds};
pub use heads::{
    __heads, GPT2ForQuestionAnswering, GPT2ForSequenceClassification, GPT2ForTokenClassification, GPT2Head,
    GPT2LMHeadModel, GPT2Lm,
};
pub use model::GPT2Model;

#[cfg(test)]
mod tests;
