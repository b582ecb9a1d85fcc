//! The DeBERTa model type (`model_type` `deberta`), after `modeling_deberta`.

use crate::config::DebertaConfig;

autocandle_core::register_heads! {
    family: crate, config: DebertaConfig, prefix: "deberta";
    base: DebertaModel;
    text_encoding: DebertaTextEncoding as "DebertaModel";
    masked_lm: DebertaForMaskedLM;
    sequence_classification: DebertaForSequenceClassification;
    token_classification: DebertaForTokenClassification;
    question_answering: DebertaForQuestionAnswering;
}
