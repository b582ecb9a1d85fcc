//! The XLM-RoBERTa model types (`model_type` `xlm-roberta`), after `modeling_xlm_roberta`:
//! RoBERTa's network under the `XLMRoberta*` class names. `transformers` has no
//! `AutoModelForTextEncoding` entry for XLM-RoBERTa, so there is none here either.

use crate::config::XLMRobertaConfig;

autocandle_core::register_heads! {
    family: crate, config: XLMRobertaConfig, prefix: "roberta";
    base: XLMRobertaModel;
    causal_lm: XLMRobertaForCausalLM;
    masked_lm: XLMRobertaForMaskedLM;
    sequence_classification: XLMRobertaForSequenceClassification;
    multiple_choice: XLMRobertaForMultipleChoice;
    token_classification: XLMRobertaForTokenClassification;
    question_answering: XLMRobertaForQuestionAnswering;
}
