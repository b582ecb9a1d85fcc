//! Falcon for autocandle, after `transformers`' `modeling_falcon` (5.25): [`FalconConfig`],
//! [`FalconModel`] and the heads [`FalconForCausalLM`], [`FalconForSequenceClassification`],
//! [`FalconForTokenClassification`] and [`FalconForQuestionAnswering`].
//!
//! Its own network, in both of its architectures:
//!
//! - the old one (Falcon-7B, Falcon-RW): one `input_layernorm`, attention and MLP in parallel
//!   (`parallel_attn`) or in sequence (then a `post_attention_layernorm`), with one shared
//!   key/value head (`multi_query`: `query_key_value` is `[heads + 2, head_dim]`) or one per
//!   query head (`[heads, 3, head_dim]`, each head's query, key and value side by side);
//! - the new one (`new_decoder_architecture`, Falcon-40B/180B): `num_kv_heads` groups, the
//!   fused projection laid out `[kv_heads, heads / kv_heads + 2, head_dim]` (each group's
//!   queries, then its key and value), `ln_attn` and `ln_mlp` (or one `input_layernorm` with
//!   `num_ln_in_parallel_attn` 1).
//!
//! Positions are rotary (whole heads) or ALiBi biases (`alibi`, as `build_alibi_tensor`
//! computes them, padding included); every linear layer has a bias with `bias`. Weight names
//! read like the `transformers` state dict (`transformer.h.N.self_attention.query_key_value`,
//! `transformer.word_embeddings`, `lm_head`).
//!
//! The rotary embedding, the masks, the attention and the tied head come from
//! `autocandle-decoder`; the cache is core's [`autocandle_core::KvCache`]. Inference only:
//! dropout is a no-op, and there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{BlockLayout, FalconConfig, QkvLayout};
pub use heads::{
    __heads, FalconForCausalLM, FalconForQuestionAnswering, FalconForSequenceClassification,
    FalconForTokenClassification, FalconHead, FalconLm,
};
pub use model::{alibi_slopes, FalconModel};

#[cfg(test)]
mod tests;
