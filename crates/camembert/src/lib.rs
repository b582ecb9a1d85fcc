//! CamemBERT for autocandle, after `transformers`' `modeling_camembert` (5.25):
//! [`CamembertConfig`] with [`CamembertModel`], [`CamembertForCausalLM`],
//! [`CamembertForMaskedLM`], [`CamembertForSequenceClassification`],
//! [`CamembertForMultipleChoice`], [`CamembertForTokenClassification`] and
//! [`CamembertForQuestionAnswering`].
//!
//! `modeling_camembert` is `modeling_roberta` under other class names (its modular file
//! subclasses the RoBERTa classes), so this crate holds no network: the config is RoBERTa's
//! fields with `CamembertConfig`'s defaults (a 30522-token vocabulary, `pad_token_id` 1,
//! `bos_token_id` 0, `eos_token_id` 2), and the heads are `autocandle-roberta`'s, with the
//! base model under `roberta.` (`CamembertPreTrainedModel.base_model_prefix`), RoBERTa's
//! position ids (counted from the padding token) and RoBERTa's `lm_head` and `classifier`.
//!
//! `transformers` maps `AutoModelForPreTraining` to `CamembertForMaskedLM`, whose output is a
//! masked LM output, not a pretraining one: as for RoBERTa, the masked LM is registered under
//! `AutoModelForMaskedLM` only. `transformers` 5.25 has no `AutoModelForTextEncoding` entry
//! for CamemBERT, so there is none here either.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

autocandle_roberta::roberta_like_config! {
    /// The config of a CamemBERT model (`CamembertConfig`), with the `transformers` defaults:
    /// RoBERTa's fields, a 30522-token vocabulary.
    ///
    /// Fields `config.json` may hold that `CamembertConfig` does not declare are ignored.
    CamembertConfig, model_type = "camembert",
    vocab_size = 30522
}

autocandle_core::register_heads! {
    family: autocandle_roberta, config: CamembertConfig, prefix: "roberta";
    base: CamembertModel;
    causal_lm: CamembertForCausalLM;
    masked_lm: CamembertForMaskedLM;
    sequence_classification: CamembertForSequenceClassification;
    multiple_choice: CamembertForMultipleChoice;
    token_classification: CamembertForTokenClassification;
    question_answering: CamembertForQuestionAnswering;
}

#[cfg(test)]
mod tests;
