//! The RoBERTa model types (`model_type` `roberta`), after `modeling_roberta`.

use crate::config::RobertaConfig;

autocandle_core::register_heads! {
    family: crate, config: RobertaConfig, prefix: "roberta";
    base: RobertaModel;
    text_encoding: RobertaTextEncoding as "RobertaModel";
    causal_lm: RobertaForCausalLM;
    masked_lm: RobertaForMaskedLM;
    sequence_classification: RobertaForSequenceClassification;
    multiple_choice: RobertaForMultipleChoice;
    token_classification: RobertaForTokenClassification;
    question_answering: RobertaForQuestionAnswering;
}
