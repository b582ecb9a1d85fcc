//! SmolLM3 for autocandle, after `transformers`' `modeling_smollm3` (5.25): [`SmolLM3Config`] and
//! its heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! SmolLM3 is Llama with NoPE layers: `no_rope_layers` (1: rope, 0: none; by default every
//! `no_rope_layer_interval`-th layer has none) turns the rotary embedding off per layer; the
//! rope base defaults to 2,000,000, and NoPE layers may use a sliding window
//! (`use_sliding_window`). Weight names read as the `transformers` state dict
//! (`model.layers.N.self_attn.q_proj.weight`, `lm_head.weight`).

#![warn(missing_docs)]

mod config;

pub use config::{SmolLM3Config, SmolLM3Rope, SMOLLM3_DEFAULT_ROPE_THETA};

autocandle_core::register_heads! {
    family: autocandle_decoder, config: SmolLM3Config, prefix: "model";
    base: SmolLM3Model;
    causal_lm: SmolLM3ForCausalLM;
    sequence_classification: SmolLM3ForSequenceClassification;
    token_classification: SmolLM3ForTokenClassification;
    question_answering(prefix = "transformer"): SmolLM3ForQuestionAnswering;
}

#[cfg(test)]
mod tests;
