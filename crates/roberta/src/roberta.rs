//! The RoBERTa model types (`model_type` `roberta`), after `modeling_roberta`.

use crate::config::RobertaConfig;

roberta_heads! {
    config: RobertaConfig, model_type: "roberta", name: "RoBERTa";
    base: RobertaModel;
    text_encoding: RobertaModel as "RobertaModel";
    causal_lm: RobertaForCausalLM;
    masked_lm: RobertaForMaskedLM;
    sequence_classification: RobertaForSequenceClassification;
    multiple_choice: RobertaForMultipleChoice;
    token_classification: RobertaForTokenClassification;
    question_answering: RobertaForQuestionAnswering;
}
