//! Granite for autocandle, after `transformers`' `modeling_granite` (5.25): [`GraniteConfig`] and
//! its heads, on the shared llama-like decoder of `autocandle-decoder`.
//!
//! Granite is Llama with four scalars: `embedding_multiplier` on the token embeddings,
//! `residual_multiplier` on the attention and MLP outputs before each residual add,
//! `attention_multiplier` as the attention scale (in place of `head_dim ** -0.5`), and
//! `logits_scaling`, which divides the language-model logits. Weight names read as the
//! `transformers` state dict.

#![warn(missing_docs)]

mod config;

pub use config::GraniteConfig;

autocandle_core::register_heads! {
    family: autocandle_decoder, config: GraniteConfig, prefix: "model";
    base: GraniteModel;
    causal_lm: GraniteForCausalLM;
}

#[cfg(test)]
mod tests;
