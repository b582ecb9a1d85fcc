//! GPT-NeoX for autocandle, after `transformers`' `modeling_gpt_neox` (5.25): [`GPTNeoXConfig`],
//! [`GPTNeoXModel`] and the heads [`GPTNeoXForCausalLM`], [`GPTNeoXForSequenceClassification`],
//! [`GPTNeoXForTokenClassification`] and [`GPTNeoXForQuestionAnswering`] (Pythia, GPT-NeoX-20B).
//!
//! Its own network, not Llama's: LayerNorms with biases, one fused `query_key_value`
//! projection laid out per head (`[heads, 3, head_dim]`: each head's query, key and value side
//! by side), rotary embeddings on the first `rotary_pct` of each head only, biases on every
//! projection (`attention_bias` for the attention ones), and a parallel residual
//! (`x + attn(ln1(x)) + mlp(ln2(x))`) unless `use_parallel_residual` is false. Weight names
//! read like the `transformers` state dict (`gpt_neox.layers.N.attention.query_key_value`,
//! `gpt_neox.final_layer_norm`, `lm_head`, or `embed_out` as checkpoints saved before
//! `transformers` 5 name the head).
//!
//! The rotary embedding, the masks, the attention and the tied head come from
//! `autocandle-decoder`; the cache is core's [`autocandle_core::KvCache`]. Inference only:
//! dropout is a no-op, and there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::GPTNeoXConfig;
pub use heads::{
    __heads, GPTNeoXForCausalLM, GPTNeoXForQuestionAnswering, GPTNeoXForSequenceClassification,
    GPTNeoXForTokenClassification, GPTNeoXHead, GPTNeoXLm,
};
pub use model::GPTNeoXModel;

#[cfg(test)]
mod tests;
