//! The llama-like decoder of autocandle, written once for every architecture that is a
//! variant of `transformers`' `modeling_llama` (Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma-2,
//! Gemma-3, Phi-3, Phi, StarCoder2, StableLM, Cohere, SmolLM3, OLMo-2, Granite, and the
//! mixtures of experts Qwen2-MoE, Qwen3-MoE, Mixtral and OLMoE), and the pieces that decoders
//! with networks of their own share (`own.rs`: input checks, grouped attention, tied heads).
//!
//! - [`RopeConfig`] reads the rotary settings of a config (`rope_theta` + `rope_scaling`, or
//!   `rope_parameters`) and resolves them ([`RopeSpec`]) with `transformers`' scaling types:
//!   `default`, `linear`, `dynamic`, `yarn`, `longrope`, `llama3`;
//! - [`DecoderSpec`] (with [`DecoderOptions`]) is what an architecture's config turns into
//!   ([`DecoderConfig`]): sizes, rope, per-layer sliding windows, and the switches that tell
//!   the architectures apart (biases, fused projections, q/k norms, Gemma's norms and
//!   soft-capping, LayerNorms, plain MLPs, parallel blocks, interleaved rope, per-layer rope,
//!   post-norms, multipliers, sparse mixture-of-experts feed-forwards ([`MoeSpec`]), ...);
//! - [`DecoderModel`] is the stack (`model.embed_tokens`, `model.layers.N`, `model.norm`), with
//!   and without a [`KvCache`](autocandle_core::KvCache); masks follow `masking_utils`
//!   (causal, sliding window, padding, packed sequences) as eager attention uses them;
//! - the heads [`CausalLm`], [`SequenceClassifier`], [`TokenClassifier`] and
//!   [`QuestionAnswerer`] mirror `XForCausalLM` and `modeling_layers`' generic heads;
//! - `autocandle_core::register_heads!` with `family: autocandle_decoder` defines an
//!   architecture's registered head types in one call.
//!
//! An architecture crate is then its config struct, its `DecoderConfig` impl and one
//! `register_heads!` call.

#![warn(missing_docs)]

mod config;
mod heads;
mod layers;
mod mask;
mod model;
mod moe;
mod norm;
mod own;
mod rope;
mod spec;

pub use config::{refuse_bidirectional_attention, CommonConfig, TokenIds};
pub use heads::{
    __heads, CausalLm, DecoderHead, MoeCausalLmOutput, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};
pub use layers::{Attention, DecoderLayer, FeedForward, Mlp};
pub use mask::{dtype_min, MaskBuilder, PackedSequences};
pub use model::{DecoderExtras, DecoderModel};
pub use moe::{load_balancing_loss, MoeSpec, SparseMoe};
pub use norm::{LayerNorm, Norm, RmsNorm};
#[doc(hidden)]
pub use own::__own;
pub use own::{
    alibi_slopes, attention_keep, cached_kv, cached_len, grouped_attention, load_tied_lm_head, prepare_inputs,
    DenseMlp, LmHeadNames, PreparedInputs,
};
pub use rope::{
    CosSin, RopeConfig, RopeContext, RopeKind, RopeParameters, RopeSpec, RotaryEmbedding, DEFAULT_ROPE_THETA,
    KNOWN_ROPE_TYPES,
};
pub use spec::{DecoderConfig, DecoderOptions, DecoderSpec, LayerType, MlpKind, NormKind, NormStyle, QkLayerNorm};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod moe_tests;
