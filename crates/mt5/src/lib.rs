//! mT5 for autocandle, after `transformers`' `modeling_mt5` (5.23): [`MT5Config`],
//! [`MT5Model`] and the heads [`MT5ForConditionalGeneration`], [`MT5EncoderModel`],
//! [`MT5ForSequenceClassification`], [`MT5ForTokenClassification`] and
//! [`MT5ForQuestionAnswering`].
//!
//! mT5 is T5 v1.1 trained on many languages: the network is `autocandle-t5`'s, unchanged
//! (`modeling_mt5` copies `modeling_t5` class for class), built from [`MT5Config`] through
//! [`T5LikeConfig`](autocandle_t5::T5LikeConfig). What differs from T5 is the config's
//! defaults (a 250112-token vocabulary, `gated-gelu`, `decoder_start_token_id` 0) and the
//! LM head, whose input `transformers` 5.23 never scales by `d_model ** -0.5` for mT5.

#![warn(missing_docs)]

mod config;

pub use config::MT5Config;

autocandle_core::register_heads! {
    family: autocandle_t5, config: MT5Config, prefix: "transformer";
    base: MT5Model;
    seq2seq_lm: MT5ForConditionalGeneration;
    text_encoding: MT5EncoderModel;
    sequence_classification: MT5ForSequenceClassification;
    token_classification: MT5ForTokenClassification;
    question_answering: MT5ForQuestionAnswering;
}

#[cfg(test)]
mod tests;
