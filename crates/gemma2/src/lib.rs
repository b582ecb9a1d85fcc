//! Gemma-2 for autocandle, after `transformers`' `modeling_gemma2` (5.23): [`Gemma2Config`],
//! [`Gemma2Model`] and the heads [`Gemma2ForCausalLM`], [`Gemma2ForSequenceClassification`] and
//! [`Gemma2ForTokenClassification`].
//!
//! Gemma-2 is Gemma (the shared decoder of `autocandle-decoder` with scaled embeddings and
//! `(1 + weight)` RMSNorms) with four norms per layer (`post_attention_layernorm` on the
//! attention output, `pre_feedforward_layernorm`/`post_feedforward_layernorm` around the MLP),
//! attention scores scaled by `query_pre_attn_scalar ** -0.5` and soft-capped
//! (`attn_logit_softcapping`), soft-capped LM logits (`final_logit_softcapping`), and layers
//! alternating between a sliding window (`sliding_window`, even layers by default) and full
//! attention.

#![warn(missing_docs)]

mod config;

pub use config::Gemma2Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Gemma2Config, prefix: "model";
    base: Gemma2Model;
    causal_lm: Gemma2ForCausalLM;
    sequence_classification: Gemma2ForSequenceClassification;
    token_classification: Gemma2ForTokenClassification;
}

#[cfg(test)]
mod tests;
