//! The XLM-RoBERTa model types (`model_type` `xlm-roberta`), after `modeling_xlm_roberta`:
//! RoBERTa's network under the `XLMRoberta*` class names. `AutoModelForTextEncoding` is
//! `XLMRobertaModel`, as in `transformers` 5.25.

use crate::config::XLMRobertaConfig;

autocandle_core::register_heads! {
    family: crate, config: XLMRobertaConfig, prefix: "roberta";
    base: XLMRobertaModel;
    text_encoding: XLMRobertaTextEncoding as "XLMRobertaModel";
    causal_lm: XLMRobertaForCausalLM;
    masked_lm: XLMRobertaForMaskedLM;
    sequence_classification: XLMRobertaForSequenceClassification;
    multiple_choice: XLMRobertaForMultipleChoice;
    token_classification: XLMRobertaForTokenClassification;
    question_answering: XLMRobertaForQuestionAnswering;
}
