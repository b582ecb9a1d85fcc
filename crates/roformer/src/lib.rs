//! RoFormer for autocandle, after `transformers`' `modeling_roformer` (5.25):
//! [`RoFormerConfig`] with [`RoFormerModel`], [`RoFormerTextEncoding`]
//! (`AutoModelForTextEncoding`, `RoFormerModel`),
//! [`RoFormerForCausalLM`], [`RoFormerForMaskedLM`], [`RoFormerForSequenceClassification`],
//! [`RoFormerForMultipleChoice`], [`RoFormerForTokenClassification`] and
//! [`RoFormerForQuestionAnswering`].
//!
//! The layers are BERT's (`autocandle-bert`'s [`BertLayer`](autocandle_bert::BertLayer),
//! post-LayerNorm, same weight names) with rotary position embeddings in the self-attention
//! ([`SinusoidalRotary`](autocandle_bert::SinusoidalRotary): the sinusoidal table of
//! `RoFormerSinusoidalPositionalEmbedding`, read from `encoder.embed_positions.weight` as
//! `transformers` loads it, computed as `create_weight` does when the checkpoint lacks it;
//! pairs of dimensions rotated together, positions `0..seq`; the values too with
//! `rotary_value`). The embeddings are word and token type
//! embeddings of width `embedding_size` and their LayerNorm, projected to `hidden_size` by
//! `embeddings_project` when the widths differ; there are no position embeddings and no
//! pooler. The base model is under `roformer.`.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::RoFormerConfig;
pub use heads::{
    __heads, RoFormerForCausalLM, RoFormerForMaskedLM, RoFormerForMultipleChoice, RoFormerForQuestionAnswering,
    RoFormerForSequenceClassification, RoFormerForTokenClassification, RoFormerHead, RoFormerLm, RoFormerModel,
    RoFormerMultipleChoice, RoFormerSequenceClassifier, RoFormerTextEncoding,
};
pub use model::RoFormerEncoder;

#[cfg(test)]
mod tests;
