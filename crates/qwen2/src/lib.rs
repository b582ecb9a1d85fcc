//! Qwen2 for autocandle, after `transformers`' `modeling_qwen2` (5.23): [`Qwen2Config`],
//! [`Qwen2Model`] and the heads [`Qwen2ForCausalLM`], [`Qwen2ForSequenceClassification`],
//! [`Qwen2ForTokenClassification`] and [`Qwen2ForQuestionAnswering`].
//!
//! Qwen2 is Llama (the shared decoder of `autocandle-decoder`) with a bias on `q_proj`,
//! `k_proj` and `v_proj` (none on `o_proj`), and optional sliding-window layers: with
//! `use_sliding_window`, the layers from `max_window_layers` on (or those `layer_types` names
//! `sliding_attention`) attend to the last `sliding_window` positions only.

#![warn(missing_docs)]

mod config;

pub use config::Qwen2Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Qwen2Config, prefix: "model";
    base: Qwen2Model;
    causal_lm: Qwen2ForCausalLM;
    sequence_classification: Qwen2ForSequenceClassification;
    token_classification: Qwen2ForTokenClassification;
    question_answering(prefix = "transformer"): Qwen2ForQuestionAnswering;
}

#[cfg(test)]
mod tests;
