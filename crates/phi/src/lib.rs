//! Phi (Phi-1, Phi-1.5, Phi-2) for autocandle, after `transformers`' `modeling_phi` (5.25):
//! [`PhiConfig`], `PhiModel` and the heads `PhiForCausalLM`, `PhiForSequenceClassification` and
//! `PhiForTokenClassification`.
//!
//! Phi is the shared llama-like decoder of `autocandle-decoder` with these switches: a parallel
//! block (attention and MLP both read the one `input_layernorm`, a LayerNorm with bias, and add
//! to the residual together), rope on the first `partial_rotary_factor` (default 0.5) of each
//! head, biases on every projection, the attention output projection named `dense`, a plain
//! MLP `fc2(gelu_new(fc1(x)))`, the final norm `final_layernorm`, an `lm_head` with a bias,
//! and optional q/k LayerNorms (`qk_layernorm`: `q_layernorm` / `k_layernorm`, one LayerNorm
//! with bias over `head_dim` shared by the heads).

#![warn(missing_docs)]

mod config;

pub use config::{PhiConfig, DEFAULT_PARTIAL_ROTARY_FACTOR};

autocandle_core::register_heads! {
    family: autocandle_decoder, config: PhiConfig, prefix: "model";
    base: PhiModel;
    causal_lm: PhiForCausalLM;
    sequence_classification: PhiForSequenceClassification;
    token_classification: PhiForTokenClassification;
}

#[cfg(test)]
mod tests;
