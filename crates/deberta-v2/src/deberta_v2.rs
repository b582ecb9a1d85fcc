//! The DeBERTa-v2 model type (`model_type` `deberta-v2`), after `modeling_deberta_v2`.

use crate::config::DebertaV2Config;

autocandle_core::register_heads! {
    family: crate, config: DebertaV2Config, prefix: "deberta";
    base: DebertaV2Model;
    text_encoding: DebertaV2TextEncoding as "DebertaV2Model";
    masked_lm: DebertaV2ForMaskedLM;
    sequence_classification: DebertaV2ForSequenceClassification;
    multiple_choice: DebertaV2ForMultipleChoice;
    token_classification: DebertaV2ForTokenClassification;
    question_answering: DebertaV2ForQuestionAnswering;
}
