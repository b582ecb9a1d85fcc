//! Qwen3 for autocandle, after `transformers`' `modeling_qwen3` (5.23): [`Qwen3Config`],
//! [`Qwen3Model`] and the heads [`Qwen3ForCausalLM`], [`Qwen3ForSequenceClassification`],
//! [`Qwen3ForTokenClassification`] and [`Qwen3ForQuestionAnswering`].
//!
//! Qwen3 is Llama (the shared decoder of `autocandle-decoder`) with an RMSNorm on each query
//! and key head before rope (`q_norm`, `k_norm`), an explicit `head_dim`, biases only with
//! `attention_bias`, and Qwen2's optional sliding-window layers: with `use_sliding_window`,
//! the layers from `max_window_layers` on (or those `layer_types` names `sliding_attention`)
//! attend to the last `sliding_window` positions only.

#![warn(missing_docs)]

mod config;

pub use config::Qwen3Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Qwen3Config, prefix: "model";
    base: Qwen3Model;
    causal_lm: Qwen3ForCausalLM;
    sequence_classification: Qwen3ForSequenceClassification;
    token_classification: Qwen3ForTokenClassification;
    question_answering(prefix = "transformer"): Qwen3ForQuestionAnswering;
}

#[cfg(test)]
mod tests;
