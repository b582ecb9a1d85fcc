//! Qwen3-MoE for autocandle, after `transformers`' `modeling_qwen3_moe` (5.25): [`Qwen3MoeConfig`]
//! and its heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! Qwen3-MoE is Qwen3 (per-head q/k RMSNorms, optional sliding window on every layer) whose
//! feed-forward is a sparse mixture of experts (`Qwen3MoeSparseMoeBlock`): the router
//! (`mlp.gate`) takes a softmax in f32 over `num_experts`, keeps the top `num_experts_per_tok`
//! (renormalised with `norm_topk_prob`), and only those experts run, each on the tokens routed
//! to it. Layers in `mlp_only_layers`, or not a multiple of `decoder_sparse_step`, keep a dense
//! MLP of `intermediate_size`. Experts load from `experts.gate_up_proj` / `experts.down_proj`
//! (`transformers` 5) or from the per-expert `experts.N.{gate,up,down}_proj` of Hub
//! checkpoints. The router logits and load-balancing loss (`output_router_logits`) come from
//! `Qwen3MoeForCausalLM::inner().forward_with_router_logits`.

#![warn(missing_docs)]

mod config;

pub use config::Qwen3MoeConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Qwen3MoeConfig, prefix: "model";
    base: Qwen3MoeModel;
    causal_lm: Qwen3MoeForCausalLM;
    sequence_classification: Qwen3MoeForSequenceClassification;
    token_classification: Qwen3MoeForTokenClassification;
    question_answering(prefix = "transformer"): Qwen3MoeForQuestionAnswering;
}

#[cfg(test)]
mod tests;
