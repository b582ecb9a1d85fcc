//! RoBERTa and XLM-RoBERTa for autocandle, after `transformers`' `modeling_roberta` and
//! `modeling_xlm_roberta` (5.23): [`RobertaConfig`] with [`RobertaModel`],
//! [`RobertaForCausalLM`], [`RobertaForMaskedLM`], [`RobertaForSequenceClassification`],
//! [`RobertaForMultipleChoice`], [`RobertaForTokenClassification`] and
//! [`RobertaForQuestionAnswering`]; [`XLMRobertaConfig`] with the same heads under the
//! `XLMRoberta*` names.
//!
//! The network is BERT's (`autocandle-bert`'s [`BertModel`](autocandle_bert::BertModel), not a
//! copy): `modeling_roberta` differs from `modeling_bert` in
//!
//! - position ids, counted from the padding token when the caller gives none
//!   ([`create_position_ids_from_input_ids`]): the `k`-th non-padding token of a row is at
//!   `pad_token_id + k`, padding at `pad_token_id`, so a model with 514 positions and
//!   `pad_token_id` 1 takes 512 tokens;
//! - the heads: `lm_head` (dense, exact GELU, `layer_norm`, decoder tied to the word
//!   embeddings and its bias to `lm_head.bias`), `classifier` (dense and tanh on the first
//!   token, then `out_proj`), and no pooler except in the base model and multiple choice;
//! - the weight prefix (`roberta.`) and the config defaults (`pad_token_id` 1,
//!   `bos_token_id` 0, `eos_token_id` 2; a 50265-token vocabulary for RoBERTa, 30522 for
//!   XLM-RoBERTa).
//!
//! Other model types whose config class declares RoBERTa's fields and whose network is
//! RoBERTa's (CamemBERT, Data2VecText) are thin crates: [`roberta_like_config!`] defines
//! their config, `autocandle_core::register_heads!` with `family: autocandle_roberta` their
//! heads, which find the base model under the registered prefix ([`RobertaSpec::prefix`]).
//!
//! XLM-RoBERTa is the same network (`modeling_xlm_roberta` is generated from
//! `modeling_roberta`). `transformers` maps `AutoModelForPreTraining` to the masked LM class,
//! whose output (`MaskedLMOutput`) is not a pretraining output, so autocandle registers the
//! masked LM under `AutoModelForMaskedLM` only.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;
mod roberta;
mod xlm_roberta;

#[doc(hidden)]
pub use config::__config;
pub use config::{RobertaConfig, RobertaLikeConfig, RobertaSpec, TokenIds, XLMRobertaConfig};
pub use heads::{__heads, RobertaHead, RobertaLm};
pub use model::{create_position_ids_from_input_ids, RobertaEncoder};
pub use roberta::{
    RobertaForCausalLM, RobertaForMaskedLM, RobertaForMultipleChoice, RobertaForQuestionAnswering,
    RobertaForSequenceClassification, RobertaForTokenClassification, RobertaModel,
};
pub use xlm_roberta::{
    XLMRobertaForCausalLM, XLMRobertaForMaskedLM, XLMRobertaForMultipleChoice, XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification, XLMRobertaForTokenClassification, XLMRobertaModel, XLMRobertaTextEncoding,
};

#[cfg(test)]
mod tests;
