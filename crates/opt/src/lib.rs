//! OPT for autocandle, after `transformers`' `modeling_opt` (5.25): [`OPTConfig`],
//! [`OPTModel`] and the heads [`OPTForCausalLM`], [`OPTForSequenceClassification`] and
//! [`OPTForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict
//! (`model.decoder.embed_tokens.weight`, `model.decoder.layers.N.self_attn.q_proj.weight`,
//! `lm_head.weight`, ...). What sets OPT apart from GPT-2: learned positions offset by 2 and
//! counted from the attention mask (`cumsum(mask) * mask - 1`), pre-norm or post-norm layers
//! (`do_layer_norm_before`; OPT-350m is post-norm, without a final layer norm), token
//! embeddings narrower than the layers with `project_in` / `project_out`
//! (`word_embed_proj_dim`), optional biases (`enable_bias`) and layer norm weights
//! (`layer_norm_elementwise_affine`), ReLU.
//!
//! The LM head runs with a key/value cache ([`autocandle_core::KvCache`]) for incremental
//! decoding (and beam search, through `KvCache::select_rows`). Inference only: dropout and
//! layer drop are no-ops; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{OPTConfig, TokenIds};
pub use heads::{__heads, OPTForCausalLM, OPTForQuestionAnswering, OPTForSequenceClassification, OPTHead, OPTLm};
pub use model::OPTModel;

#[cfg(test)]
mod tests;
