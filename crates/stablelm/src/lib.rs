//! StableLM for autocandle, after `transformers`' `modeling_stablelm` (5.25):
//! [`StableLmConfig`], `StableLmModel` and the heads `StableLmForCausalLM`,
//! `StableLmForSequenceClassification` and `StableLmForTokenClassification`.
//!
//! StableLM is the shared llama-like decoder of `autocandle-decoder` (gated MLP, no bias on
//! `o_proj`) with LayerNorms (with bias) in place of RMSNorm, rope on the first
//! `partial_rotary_factor` (default 0.25) of each head, biases on `q_proj`/`k_proj`/`v_proj`
//! with `use_qkv_bias`, one LayerNorm (no bias) per head on the queries and keys with
//! `qk_layernorm` (`q_layernorm.norms.{i}`, `k_layernorm.norms.{i}`, one per key/value head for
//! the keys), and a parallel block with `use_parallel_residual` (attention and MLP both read
//! `input_layernorm`; no `post_attention_layernorm`).

#![warn(missing_docs)]

mod config;

pub use config::{StableLmConfig, DEFAULT_PARTIAL_ROTARY_FACTOR};

autocandle_core::register_heads! {
    family: autocandle_decoder, config: StableLmConfig, prefix: "model";
    base: StableLmModel;
    causal_lm: StableLmForCausalLM;
    sequence_classification: StableLmForSequenceClassification;
    token_classification: StableLmForTokenClassification;
}

#[cfg(test)]
mod tests;
