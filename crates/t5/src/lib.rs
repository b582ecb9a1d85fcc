//! T5 for autocandle, after `transformers`' `modeling_t5` (5.23): [`T5Config`], [`T5Model`]
//! and the heads [`T5ForConditionalGeneration`], [`T5EncoderModel`],
//! [`T5ForSequenceClassification`], [`T5ForTokenClassification`] and
//! [`T5ForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`shared.weight`,
//! `encoder.block.N.layer.0.SelfAttention.q.weight`, `decoder.block.N.layer.1.EncDecAttention.*`,
//! `lm_head.weight`, ...). The network is written once for every T5-like architecture:
//! a config implements [`T5LikeConfig`] (resolving to a [`T5Spec`]) and one
//! `autocandle_core::register_heads!` call (`family: autocandle_t5`) defines its registered
//! heads, as `autocandle-mt5` does.
//!
//! What T5 does differently from BERT-like models: relative position buckets instead of
//! position embeddings (bidirectional in the encoder, causal in the decoder, the bias table
//! in the first layer of each stack and shared by the others), unscaled attention scores,
//! RMS layer norms without bias computed in f32, `relu` or gated (`gated-gelu`,
//! `gated-silu`) feed-forward layers, and an LM head tied to the embeddings with the decoder
//! output scaled by `d_model ** -0.5` (original T5) or not (v1.1), see [`T5Config`].
//!
//! Generation runs the encoder once ([`ForSeq2SeqLm::encode`](autocandle_core::ForSeq2SeqLm::encode))
//! and the decoder a few tokens at a time on a [`Seq2SeqCache`](autocandle_core::Seq2SeqCache):
//! the self-attention keys and values grow in the cache, the cross-attention ones are computed
//! once, and the relative position bias of the new positions counts the cached ones.
//!
//! Inference only: dropout is a no-op; `token_type_ids` and `position_ids` are ignored (T5
//! has neither); there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod inputs;
mod model;

pub use config::{feed_forward, T5Config, T5LikeConfig, T5Spec, TokenIds};
pub use heads::{
    __heads, base_output, Named, T5ConditionalGeneration, T5Head, T5QuestionAnswerer, T5SequenceClassifier,
    T5TokenClassifier,
};
pub use model::{relative_position_bucket, T5EncoderDecoder, T5EncoderStack};

autocandle_core::register_heads! {
    family: crate, config: T5Config, prefix: "transformer";
    base: T5Model;
    seq2seq_lm: T5ForConditionalGeneration;
    text_encoding: T5EncoderModel;
    sequence_classification: T5ForSequenceClassification;
    token_classification: T5ForTokenClassification;
    question_answering: T5ForQuestionAnswering;
}

#[cfg(test)]
mod tests;
