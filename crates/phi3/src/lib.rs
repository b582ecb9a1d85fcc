//! Phi-3 for autocandle, after `transformers`' `modeling_phi3` (5.23): [`Phi3Config`],
//! [`Phi3Model`] and the heads [`Phi3ForCausalLM`], [`Phi3ForSequenceClassification`] and
//! [`Phi3ForTokenClassification`].
//!
//! Phi-3 is Llama (the shared decoder of `autocandle-decoder`) with fused projections
//! (`self_attn.qkv_proj`, `mlp.gate_up_proj` with the gate first), rope on the first
//! `partial_rotary_factor` of each head only, `longrope` scaling (the legacy `su` and `yarn`
//! included) switching from short to long factors past `original_max_position_embeddings`,
//! and an optional sliding window on every layer. As `Phi3ForCausalLM` does, generation
//! recomputes the whole sequence once when the context first grows past
//! `original_max_position_embeddings` under `longrope`.

#![warn(missing_docs)]

mod config;

pub use config::Phi3Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Phi3Config, prefix: "model";
    base: Phi3Model;
    causal_lm: Phi3ForCausalLM;
    sequence_classification: Phi3ForSequenceClassification;
    token_classification: Phi3ForTokenClassification;
}

#[cfg(test)]
mod tests;
