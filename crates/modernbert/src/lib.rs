//! ModernBERT for autocandle, after `transformers`' `modeling_modernbert` (5.25):
//! [`ModernBertConfig`] with [`ModernBertModel`], [`ModernBertForMaskedLM`],
//! [`ModernBertForSequenceClassification`], [`ModernBertForMultipleChoice`],
//! [`ModernBertForTokenClassification`] and [`ModernBertForQuestionAnswering`].
//!
//! The network ([`ModernBertEncoder`]): token embeddings and a LayerNorm (`embedding_norm`),
//! pre-norm layers (layer 0 without `attn_norm`) of self-attention with a fused `Wqkv` and
//! rotary positions, and a GeGLU MLP (`Wi` to twice the intermediate width, split,
//! `Wo(act(input) * gate)`), then `final_norm`. Layers alternate between global attention and
//! a sliding window of `local_attention` tokens (`|q - k| <= local_attention / 2`), each kind
//! with its own rotary base (`layer_types` and `rope_parameters` in 5.x configs,
//! `global_attn_every_n_layers`, `global_rope_theta` and `local_rope_theta` in the older ones;
//! both are read). Biases are switches (`attention_bias`, `mlp_bias`, `norm_bias`,
//! `classifier_bias`, `decoder_bias`), all off but the decoder's by default.
//!
//! Padded batches are computed padded, with the padding masked out of attention, as
//! `transformers` 5.x does without flash attention; the tokens that are not padding get the
//! results of the unpadded path.
//!
//! Inference only: dropout is a no-op; there is no `inputs_embeds`.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{ClassifierPooling, LayerKind, ModernBertConfig, ModernBertSpec, TokenIds};
pub use heads::{
    __heads, ModernBertHead, ModernBertLm, ModernBertPooledClassifier, ModernBertTokenClassifier, PredictionHead,
};
pub use model::ModernBertEncoder;

autocandle_core::register_heads! {
    family: crate, config: ModernBertConfig, prefix: "model";
    base: ModernBertModel;
    masked_lm: ModernBertForMaskedLM;
    sequence_classification: ModernBertForSequenceClassification;
    multiple_choice: ModernBertForMultipleChoice;
    token_classification: ModernBertForTokenClassification;
    question_answering: ModernBertForQuestionAnswering;
}

#[cfg(test)]
mod tests;
