//! OLMoE for autocandle, after `transformers`' `modeling_olmoe` (5.25): [`OlmoeConfig`] and its
//! heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! OLMoE is Llama with RMSNorms over the whole query and key projections (`q_norm` of
//! `hidden_size`, `k_norm` of the key width; `DecoderOptions::qk_norm_full`), an optional
//! `clip_qkv` clamp after them, and a sparse mixture of experts in every layer
//! (`OlmoeSparseMoeBlock`: softmax, top `num_experts_per_tok`, `norm_topk_prob`). The router
//! logits and load-balancing loss come from `OlmoeForCausalLM::inner().forward_with_router_logits`.

#![warn(missing_docs)]

mod config;

pub use config::OlmoeConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: OlmoeConfig, prefix: "model";
    base: OlmoeModel;
    causal_lm: OlmoeForCausalLM;
}

#[cfg(test)]
mod tests;
