//! BLOOM for autocandle, after `transformers`' `modeling_bloom` (5.25): [`BloomConfig`],
//! [`BloomModel`] and the heads [`BloomForCausalLM`], [`BloomForSequenceClassification`],
//! [`BloomForTokenClassification`] and [`BloomForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict
//! (`transformer.word_embeddings.weight`, `transformer.h.N.self_attention.query_key_value.weight`,
//! `transformer.h.N.mlp.dense_h_to_4h.weight`, ...). What sets BLOOM apart: no position
//! embeddings but ALiBi biases on the attention scores ([`alibi_slopes`], positions counted
//! over the attended tokens as `build_alibi_tensor` does), a layer norm right after the
//! token embeddings, the fused `query_key_value` projection laid out per head
//! (`[heads, 3, head_dim]`), `apply_residual_connection_post_layernorm`, and BLOOM's own
//! tanh GELU ([`bloom_gelu`]).
//!
//! The LM head runs with a key/value cache ([`autocandle_core::KvCache`]) for incremental
//! decoding (and beam search, through `KvCache::select_rows`). Inference only: dropout is a
//! no-op; there is no `inputs_embeds`. `BloomForCausalLM` is also `transformers`'
//! pretraining class, which autocandle does not register: its `PreTrainingOutput` is BERT's
//! (prediction and next-sentence logits).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{BloomConfig, TokenIds};
pub use heads::{
    __heads, BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification, BloomForTokenClassification,
    BloomHead, BloomLm,
};
pub use model::{alibi_slopes, bloom_gelu, BloomModel};

#[cfg(test)]
mod tests;
