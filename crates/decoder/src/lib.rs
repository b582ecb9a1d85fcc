//! The llama-like decoder of autocandle, written once for every architecture that is a
//! variant of `transformers`' `modeling_llama` (Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma-2,
//! Phi-3, ...).
//!
//! - [`RopeConfig`] reads the rotary settings of a config (`rope_theta` + `rope_scaling`, or
//!   `rope_parameters`) and resolves them ([`RopeSpec`]) with `transformers`' scaling types:
//!   `default`, `linear`, `dynamic`, `yarn`, `longrope`, `llama3`;
//! - [`DecoderSpec`] (with [`DecoderOptions`]) is what an architecture's config turns into
//!   ([`DecoderConfig`]): sizes, rope, per-layer sliding windows, and the switches that tell
//!   the architectures apart (biases, fused projections, q/k norms, Gemma's norms and
//!   soft-capping, ...);
//! - [`DecoderModel`] is the stack (`model.embed_tokens`, `model.layers.N`, `model.norm`), with
//!   and without a [`KvCache`](autocandle_core::KvCache); masks follow `masking_utils`
//!   (causal, sliding window, padding, packed sequences) as eager attention uses them;
//! - the heads [`CausalLm`], [`SequenceClassifier`], [`TokenClassifier`] and
//!   [`QuestionAnswerer`] mirror `XForCausalLM` and `modeling_layers`' generic heads;
//! - [`decoder_heads!`] defines an architecture's registered head types in one call.
//!
//! An architecture crate is then its config struct, its `DecoderConfig` impl and one
//! `decoder_heads!` call.

mod config;
mod heads;
mod layers;
mod macros;
mod mask;
mod model;
mod norm;
mod rope;
mod spec;

pub use config::{refuse_bidirectional_attention, CommonConfig, TokenIds};
pub use heads::{CausalLm, HasDecoder, QuestionAnswerer, SequenceClassifier, TokenClassifier};
pub use layers::{Attention, DecoderLayer, Mlp};
pub use mask::{dtype_min, MaskBuilder, PackedSequences};
pub use model::DecoderModel;
pub use norm::RmsNorm;
pub use rope::{
    CosSin, RopeConfig, RopeContext, RopeKind, RopeParameters, RopeSpec, RotaryEmbedding, DEFAULT_ROPE_THETA,
    KNOWN_ROPE_TYPES,
};
pub use spec::{DecoderConfig, DecoderOptions, DecoderSpec, LayerType, NormStyle};

/// Re-exports for the code [`decoder_heads!`] generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use candle_core;
    pub use candle_nn::VarBuilder;
}

#[cfg(test)]
mod tests;
