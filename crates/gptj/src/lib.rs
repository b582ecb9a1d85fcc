//! GPT-J for autocandle, after `transformers`' `modeling_gptj` (5.25): [`GPTJConfig`],
//! [`GPTJModel`] and the heads [`GPTJForCausalLM`], [`GPTJForSequenceClassification`] and
//! [`GPTJForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`transformer.wte.weight`,
//! `transformer.h.N.attn.q_proj.weight`, `transformer.h.N.mlp.fc_in.weight`,
//! `lm_head.weight`, `lm_head.bias`, ...). What sets GPT-J apart: attention and MLP run in
//! parallel from one `ln_1` and add to one residual; rotary embeddings (the frequencies of
//! `autocandle_decoder`'s default rope) rotate interleaved pairs of the first `rotary_dim`
//! dimensions of each head (`rotate_every_two`); the attention projections have no biases;
//! the LM head has one.
//!
//! The LM head runs with a key/value cache ([`autocandle_core::KvCache`]) for incremental
//! decoding (and beam search, through `KvCache::select_rows`). Inference only: dropout is a
//! no-op; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{GPTJConfig, TokenIds};
pub use heads::{__heads, GPTJForCausalLM, GPTJForQuestionAnswering, GPTJForSequenceClassification, GPTJHead, GPTJLm};
pub use model::GPTJModel;

#[cfg(test)]
mod tests;
