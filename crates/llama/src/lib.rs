//! Llama for autocandle, after `transformers`' `modeling_llama` (5.23): [`LlamaConfig`],
//! [`LlamaModel`] and the heads [`LlamaForCausalLM`], [`LlamaForSequenceClassification`],
//! [`LlamaForTokenClassification`] and [`LlamaForQuestionAnswering`].
//!
//! The network is the shared decoder of `autocandle-decoder`; Llama is its plain form, with
//! the options `attention_bias` (on `q/k/v/o_proj`) and `mlp_bias`. Weight names read as the
//! `transformers` state dict (`model.layers.N.self_attn.q_proj.weight`, `lm_head.weight`;
//! `transformer.*` under the question answering head, as `transformers` keeps it).

#![warn(missing_docs)]

mod config;

pub use config::LlamaConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: LlamaConfig, prefix: "model";
    base: LlamaModel;
    causal_lm: LlamaForCausalLM;
    sequence_classification: LlamaForSequenceClassification;
    token_classification: LlamaForTokenClassification;
    question_answering(prefix = "transformer"): LlamaForQuestionAnswering;
}

#[cfg(test)]
mod tests;
