//! Mixtral for autocandle, after `transformers`' `modeling_mixtral` (5.25): [`MixtralConfig`] and
//! its heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! Mixtral is Mistral (optional sliding window on every layer) whose feed-forward is a sparse
//! mixture of `num_local_experts` experts (`MixtralSparseMoeBlock`): a softmax in f32 over the
//! router logits, the top `num_experts_per_tok` renormalised to sum to 1 and kept in f32 when
//! they scale the experts' outputs. Experts load from `mlp.experts.gate_up_proj` /
//! `mlp.experts.down_proj` (`transformers` 5) or the original `block_sparse_moe.experts.N.w1/w3/w2`.
//! The rope base defaults to 1e6 (`default_theta`). The router logits and load-balancing loss
//! come from `MixtralForCausalLM::inner().forward_with_router_logits`.

#![warn(missing_docs)]

mod config;

pub use config::MixtralConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: MixtralConfig, prefix: "model";
    base: MixtralModel;
    causal_lm: MixtralForCausalLM;
    sequence_classification: MixtralForSequenceClassification;
}

#[cfg(test)]
mod tests;
