//! Mistral for autocandle, after `transformers`' `modeling_mistral` (5.23): [`MistralConfig`],
//! [`MistralModel`] and the heads [`MistralForCausalLM`], [`MistralForSequenceClassification`],
//! [`MistralForTokenClassification`] and [`MistralForQuestionAnswering`].
//!
//! Mistral is Llama (the shared decoder of `autocandle-decoder`) without biases and with a
//! sliding window: when `sliding_window` is set, every layer attends to the last
//! `sliding_window` positions only (`create_sliding_window_causal_mask`). Unlike Llama and
//! Qwen, its question answering head keeps the base model under `model`.

#![warn(missing_docs)]

mod config;

pub use config::MistralConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: MistralConfig, prefix: "model";
    base: MistralModel;
    causal_lm: MistralForCausalLM;
    sequence_classification: MistralForSequenceClassification;
    token_classification: MistralForTokenClassification;
    question_answering: MistralForQuestionAnswering;
}

#[cfg(test)]
mod tests;
