//! Qwen2-MoE (Qwen1.5-MoE) for autocandle, after `transformers`' `modeling_qwen2_moe` (5.25):
//! [`Qwen2MoeConfig`] and its heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! Qwen2-MoE is Qwen2 (q/k/v biases, optional sliding layers) whose feed-forward is a sparse
//! mixture of experts (`Qwen2MoeSparseMoeBlock`): softmax-then-top-k routing as Qwen3-MoE
//! (`norm_topk_prob`, `decoder_sparse_step`, `mlp_only_layers`), plus a shared expert every
//! token runs through, scaled by `sigmoid(shared_expert_gate(x))`. Without `layer_types`, the
//! even layers below `max_window_layers` slide when `use_sliding_window` is set. The router
//! logits and load-balancing loss come from `Qwen2MoeForCausalLM::inner().forward_with_router_logits`.

#![warn(missing_docs)]

mod config;

pub use config::Qwen2MoeConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Qwen2MoeConfig, prefix: "model";
    base: Qwen2MoeModel;
    causal_lm: Qwen2MoeForCausalLM;
    sequence_classification: Qwen2MoeForSequenceClassification;
    token_classification: Qwen2MoeForTokenClassification;
    question_answering: Qwen2MoeForQuestionAnswering;
}

#[cfg(test)]
mod tests;
