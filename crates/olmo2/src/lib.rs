//! OLMo-2 for autocandle, after `transformers`' `modeling_olmo2` (5.25): [`Olmo2Config`] and its
//! heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! OLMo-2 is Llama with its norms after the sublayers instead of before them: no
//! `input_layernorm`; `post_attention_layernorm` on the attention output and
//! `post_feedforward_layernorm` on the MLP output, each before its residual add; queries and
//! keys go through an RMSNorm over the whole projection (`q_norm` of size heads * head_dim,
//! `k_norm` of size kv_heads * head_dim) before the heads are split. Its RMSNorm applies the
//! weight in f32 before casting back. Weight names read as the `transformers` state dict.

#![warn(missing_docs)]

mod config;

pub use config::Olmo2Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Olmo2Config, prefix: "model";
    base: Olmo2Model;
    causal_lm: Olmo2ForCausalLM;
    sequence_classification: Olmo2ForSequenceClassification;
}

#[cfg(test)]
mod tests;
