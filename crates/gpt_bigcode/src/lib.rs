//! GPTBigCode for autocandle, after `transformers`' `modeling_gpt_bigcode` (5.25):
//! [`GPTBigCodeConfig`], [`GPTBigCodeModel`] and the heads [`GPTBigCodeForCausalLM`],
//! [`GPTBigCodeForSequenceClassification`] and [`GPTBigCodeForTokenClassification`]
//! (StarCoder 1, SantaCoder, WizardCoder, ...).
//!
//! GPT-2's network with `nn.Linear` layers (`[out, in]` weights, not GPT-2's `Conv1D`) and,
//! with `multi_query` (the default), one key/value head shared by every query head: `c_attn`
//! is then `[queries | key | value]`, `n_embd + 2 * head_dim` wide, and the cache holds one
//! head per layer. Without `multi_query` `c_attn` is laid out per head (`[heads, 3,
//! head_dim]`). Learned positions (`wpe`), a tied LM head. Weight names read like the
//! `transformers` state dict (`transformer.h.N.attn.c_attn.weight`, `lm_head.weight`).
//!
//! Masks, attention and the tied head come from `autocandle-decoder`; the cache is core's
//! [`autocandle_core::KvCache`]. Inference only: dropout is a no-op; there is no
//! `inputs_embeds` and no cross-attention (`add_cross_attention`).
//! `GPTBigCodeForCausalLM` is also `transformers`' pretraining class; autocandle registers it
//! for `causal-lm`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{GPTBigCodeConfig, TokenIds};
pub use heads::{
    __heads, GPTBigCodeForCausalLM, GPTBigCodeForSequenceClassification, GPTBigCodeForTokenClassification,
    GPTBigCodeHead, GPTBigCodeLm,
};
pub use model::GPTBigCodeModel;

#[cfg(test)]
mod tests;
