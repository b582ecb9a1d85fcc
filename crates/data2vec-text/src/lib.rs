//! Data2VecText for autocandle, after `transformers`' `modeling_data2vec_text` (5.25):
//! [`Data2VecTextConfig`] with [`Data2VecTextModel`], [`Data2VecTextForCausalLM`],
//! [`Data2VecTextForMaskedLM`], [`Data2VecTextForSequenceClassification`],
//! [`Data2VecTextForMultipleChoice`], [`Data2VecTextForTokenClassification`],
//! [`Data2VecTextForQuestionAnswering`] and [`Data2VecTextTextEncoding`]
//! (`AutoModelForTextEncoding`, `Data2VecTextModel`).
//!
//! The text model of data2vec is RoBERTa's network (`modular_data2vec_text` subclasses the
//! RoBERTa modules), so this crate holds no network: the config is RoBERTa's fields with
//! `Data2VecTextConfig`'s defaults (a 30522-token vocabulary, `pad_token_id` 1,
//! `bos_token_id` 0, `eos_token_id` 2), and the heads are `autocandle-roberta`'s with the
//! base model under `data2vec_text.` (`Data2VecTextPreTrainedModel.base_model_prefix`):
//! RoBERTa's position ids (counted from the padding token), `lm_head` and `classifier`.
//!
//! `transformers` maps `AutoModelForPreTraining` to `Data2VecTextForMaskedLM`, whose output
//! is a masked LM output, not a pretraining one: as for RoBERTa, the masked LM is registered
//! under `AutoModelForMaskedLM` only.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

autocandle_roberta::roberta_like_config! {
    /// The config of a Data2VecText model (`Data2VecTextConfig`), with the `transformers`
    /// defaults: RoBERTa's fields, a 30522-token vocabulary.
    ///
    /// Fields `config.json` may hold that `Data2VecTextConfig` does not declare are ignored.
    Data2VecTextConfig, model_type = "data2vec-text",
    vocab_size = 30522
}

autocandle_core::register_heads! {
    family: autocandle_roberta, config: Data2VecTextConfig, prefix: "data2vec_text";
    base: Data2VecTextModel;
    text_encoding: Data2VecTextTextEncoding as "Data2VecTextModel";
    causal_lm: Data2VecTextForCausalLM;
    masked_lm: Data2VecTextForMaskedLM;
    sequence_classification: Data2VecTextForSequenceClassification;
    multiple_choice: Data2VecTextForMultipleChoice;
    token_classification: Data2VecTextForTokenClassification;
    question_answering: Data2VecTextForQuestionAnswering;
}

#[cfg(test)]
mod tests;
