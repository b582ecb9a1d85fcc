//! Gemma-3's language model for autocandle, after `transformers`' `modeling_gemma3` (5.25):
//! [`Gemma3TextConfig`] (`model_type` `gemma3_text`), [`Gemma3TextModel`] and the heads
//! [`Gemma3ForCausalLM`] and [`Gemma3TextForSequenceClassification`].
//!
//! Gemma-3 is Gemma-2 (the shared decoder with scaled embeddings, `(1 + weight)` RMSNorms,
//! four norms per layer, attention scaled by `query_pre_attn_scalar ** -0.5`, optional
//! soft-capping) with per-head q/k RMSNorms (`q_norm`/`k_norm`), layers that slide except
//! every `sliding_window_pattern`-th one (or as `layer_types` says), and a rotary embedding of
//! its own for the sliding layers (`rope_parameters.sliding_attention`, formerly
//! `rope_local_base_freq`).
//!
//! The multimodal `gemma3` model type (`Gemma3ForConditionalGeneration`, which
//! `AutoModelForCausalLM` picks for a `gemma3` checkpoint) is not this crate.

#![warn(missing_docs)]

mod config;

pub use config::{Gemma3Rope, Gemma3TextConfig, GEMMA3_GLOBAL_ROPE_THETA, GEMMA3_LOCAL_ROPE_THETA};

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Gemma3TextConfig, prefix: "model";
    base: Gemma3TextModel;
    causal_lm: Gemma3ForCausalLM;
    sequence_classification: Gemma3TextForSequenceClassification;
}

#[cfg(test)]
mod tests;
