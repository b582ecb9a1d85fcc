//! Gemma for autocandle, after `transformers`' `modeling_gemma` (5.23): [`GemmaConfig`],
//! [`GemmaModel`] and the heads [`GemmaForCausalLM`], [`GemmaForSequenceClassification`] and
//! [`GemmaForTokenClassification`].
//!
//! Gemma is Llama (the shared decoder of `autocandle-decoder`) with embeddings scaled by
//! `sqrt(hidden_size)` (rounded to the model dtype), RMSNorms that apply `(1 + weight)` in
//! f32, an explicit `head_dim`, a GELU (tanh) gated MLP and, by default, the LM head tied to
//! the embeddings.

#![warn(missing_docs)]

mod config;

pub use config::GemmaConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: GemmaConfig, prefix: "model";
    base: GemmaModel;
    causal_lm: GemmaForCausalLM;
    sequence_classification: GemmaForSequenceClassification;
    token_classification: GemmaForTokenClassification;
}

#[cfg(test)]
mod tests;
