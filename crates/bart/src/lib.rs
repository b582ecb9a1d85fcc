//! BART for autocandle, after `transformers`' `modeling_bart` (5.23): [`BartConfig`],
//! [`BartModel`] and the heads [`BartForConditionalGeneration`],
//! [`BartForSequenceClassification`] and [`BartForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`model.shared.weight`,
//! `model.encoder.layers.N.self_attn.q_proj.weight`, `model.decoder.layers.N.encoder_attn.*`,
//! `final_logits_bias`, `lm_head.weight`, ...), and every type registers itself with
//! `#[derive(AutoRegister)]` under model type `bart`.
//!
//! The LM head implements [`autocandle_core::ForSeq2SeqLm`] with an incremental decoder on a
//! [`autocandle_core::Seq2SeqCache`], so `transformers`-style generation (greedy, sampling,
//! beam search) runs the encoder once and the decoder one token per step. Inference only:
//! dropout and layer drop are no-ops; there is no `inputs_embeds`, no `encoder_outputs`
//! argument and no `BartForCausalLM`.

#![warn(missing_docs)]

mod config;
mod heads;
mod inputs;
mod model;

pub use config::{BartConfig, TokenIds};
pub use heads::{
    __heads, BartClassifier, BartForConditionalGeneration, BartForQuestionAnswering, BartForSequenceClassification,
    BartHead, BartLm,
};
pub use model::BartModel;

#[cfg(test)]
mod tests;
