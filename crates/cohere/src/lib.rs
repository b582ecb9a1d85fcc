//! Cohere (Command-R) for autocandle, after `transformers`' `modeling_cohere` (5.25):
//! [`CohereConfig`], `CohereModel` and the head `CohereForCausalLM`.
//!
//! Cohere is the shared llama-like decoder of `autocandle-decoder` (gated MLP without biases)
//! with these switches: a parallel block (attention and MLP both read the one
//! `input_layernorm` and add to the residual together), Cohere's mean-centred LayerNorm
//! without bias in place of RMSNorm, rope on interleaved pairs `(x[2i], x[2i + 1])` computed in
//! f32, optional per-head q/k LayerNorms (`use_qk_norm`: `q_norm` / `k_norm` weights
//! `[heads, head_dim]`), biases on the attention projections with `attention_bias`, the logits
//! multiplied by `logit_scale`, tied embeddings by default and a default `rope_theta` of
//! 500000.

#![warn(missing_docs)]

mod config;

pub use config::{CohereConfig, DEFAULT_ROPE_THETA};

autocandle_core::register_heads! {
    family: autocandle_decoder, config: CohereConfig, prefix: "model";
    base: CohereModel;
    causal_lm: CohereForCausalLM;
}

#[cfg(test)]
mod tests;
