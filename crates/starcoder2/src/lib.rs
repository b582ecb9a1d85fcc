//! StarCoder2 for autocandle, after `transformers`' `modeling_starcoder2` (5.25):
//! [`Starcoder2Config`], `Starcoder2Model` and the heads `Starcoder2ForCausalLM`,
//! `Starcoder2ForSequenceClassification` and `Starcoder2ForTokenClassification`.
//!
//! StarCoder2 is the shared llama-like decoder of `autocandle-decoder` with LayerNorms (with
//! bias, epsilon `norm_epsilon`) in place of RMSNorm, biases on every projection when
//! `use_bias`, a plain MLP `c_proj(act(c_fc(x)))`, grouped-query attention and, with
//! `sliding_window`, a sliding window on every layer.

#![warn(missing_docs)]

mod config;

pub use config::Starcoder2Config;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: Starcoder2Config, prefix: "model";
    base: Starcoder2Model;
    causal_lm: Starcoder2ForCausalLM;
    sequence_classification: Starcoder2ForSequenceClassification;
    token_classification: Starcoder2ForTokenClassification;
}

#[cfg(test)]
mod tests;
