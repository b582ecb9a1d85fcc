//! RoBERTa-PreLayerNorm for autocandle, after `transformers`' `modeling_roberta_prelayernorm`
//! (5.25): [`RobertaPreLayerNormConfig`] with [`RobertaPreLayerNormModel`],
//! [`RobertaPreLayerNormForCausalLM`], [`RobertaPreLayerNormForMaskedLM`],
//! [`RobertaPreLayerNormForSequenceClassification`], [`RobertaPreLayerNormForMultipleChoice`],
//! [`RobertaPreLayerNormForTokenClassification`], [`RobertaPreLayerNormForQuestionAnswering`]
//! and [`RobertaPreLayerNormTextEncoding`] (`AutoModelForTextEncoding`,
//! `RobertaPreLayerNormModel`).
//!
//! The network is RoBERTa's (`autocandle-roberta`, on `autocandle-bert`) with pre-LayerNorm
//! layers ([`BertVariant::roberta_prelayernorm`](autocandle_bert::BertVariant)):
//!
//! - the embeddings keep their LayerNorm;
//! - each layer is `h = x + attention.output.dense(attention(attention.LayerNorm(x)))`, then
//!   `h + output.dense(act(intermediate.dense(intermediate.LayerNorm(h))))`;
//! - a final `LayerNorm` at the base model's root, before the pooler.
//!
//! Everything else is RoBERTa's: position ids counted from the padding token, `lm_head`,
//! `classifier`, and the config's fields and defaults; the base model is under
//! `roberta_prelayernorm.`.
//!
//! `transformers` maps `AutoModelForPreTraining` to `RobertaPreLayerNormForMaskedLM`, whose
//! output is a masked LM output, not a pretraining one: as for RoBERTa, the masked LM is
//! registered under `AutoModelForMaskedLM` only.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

autocandle_roberta::roberta_like_config! {
    /// The config of a RoBERTa-PreLayerNorm model (`RobertaPreLayerNormConfig`), with the
    /// `transformers` defaults (RoBERTa's).
    ///
    /// Fields `config.json` may hold that `RobertaPreLayerNormConfig` does not declare are
    /// ignored.
    RobertaPreLayerNormConfig, model_type = "roberta-prelayernorm",
    vocab_size = 50265,
}

/// RoBERTa's heads over the pre-LayerNorm network, which
/// `autocandle_core::register_heads!` builds the registered types from. Not public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_bert::BertVariant;
    use autocandle_core::Result;
    use autocandle_roberta::{RobertaHead, RobertaSpec};
    use candle_nn::VarBuilder;

    pub use autocandle_roberta::__heads::{
        Base, CausalLm, MaskedLm, MultipleChoice, QuestionAnswering, SequenceClassification, TextEncoding,
        TokenClassification,
    };

    use crate::RobertaPreLayerNormConfig;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: RobertaHead>(
        vb: VarBuilder<'_>,
        config: &RobertaPreLayerNormConfig,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        let spec = RobertaSpec::new(config)?.with_prefix(prefix).with_variant(BertVariant::roberta_prelayernorm());
        H::load(vb, &spec, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: RobertaPreLayerNormConfig, prefix: "roberta_prelayernorm";
    base: RobertaPreLayerNormModel;
    text_encoding: RobertaPreLayerNormTextEncoding as "RobertaPreLayerNormModel";
    causal_lm: RobertaPreLayerNormForCausalLM;
    masked_lm: RobertaPreLayerNormForMaskedLM;
    sequence_classification: RobertaPreLayerNormForSequenceClassification;
    multiple_choice: RobertaPreLayerNormForMultipleChoice;
    token_classification: RobertaPreLayerNormForTokenClassification;
    question_answering: RobertaPreLayerNormForQuestionAnswering;
}

#[cfg(test)]
mod tests;
