//! XLM-RoBERTa-XL for autocandle, after `transformers`' `modeling_xlm_roberta_xl` (5.25):
//! [`XLMRobertaXLConfig`] with [`XLMRobertaXLModel`], [`XLMRobertaXLForCausalLM`],
//! [`XLMRobertaXLForMaskedLM`], [`XLMRobertaXLForSequenceClassification`],
//! [`XLMRobertaXLForMultipleChoice`], [`XLMRobertaXLForTokenClassification`],
//! [`XLMRobertaXLForQuestionAnswering`] and [`XLMRobertaXLTextEncoding`]
//! (`AutoModelForTextEncoding`, `XLMRobertaXLModel`).
//!
//! The network is RoBERTa's (`autocandle-roberta`, on `autocandle-bert`) with
//! pre-LayerNorm layers ([`BertVariant::xlm_roberta_xl`](autocandle_bert::BertVariant)):
//!
//! - no LayerNorm after the embeddings;
//! - each layer is `h = x + attention.output.dense(attention(attention.self_attn_layer_norm(x)))`,
//!   then `h + output.dense(act(intermediate.dense(LayerNorm(h))))`;
//! - a final `encoder.LayerNorm` after the last layer.
//!
//! Everything else is RoBERTa's: position ids counted from the padding token, the base model
//! under `roberta.`, `lm_head` (dense, exact GELU, `layer_norm`, decoder tied to the word
//! embeddings), `classifier` (dense, tanh, `out_proj` on the first token), and the config's
//! fields (with `XLMRobertaXLConfig`'s defaults: the 3.5B-parameter shape, a 250880-token
//! vocabulary, 514 positions, one token type, `layer_norm_eps` 1e-5).
//!
//! `transformers` maps `AutoModelForPreTraining` to `XLMRobertaXLForMaskedLM`, whose output
//! is a masked LM output, not a pretraining one: as for RoBERTa, the masked LM is registered
//! under `AutoModelForMaskedLM` only.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

autocandle_roberta::roberta_like_config! {
    /// The config of an XLM-RoBERTa-XL model (`XLMRobertaXLConfig`), with the `transformers`
    /// defaults (those of `facebook/xlm-roberta-xl`).
    ///
    /// Fields `config.json` may hold that `XLMRobertaXLConfig` does not declare are ignored.
    XLMRobertaXLConfig, model_type = "xlm-roberta-xl",
    vocab_size = 250880,
    hidden_size = 2560,
    num_hidden_layers = 36,
    num_attention_heads = 32,
    intermediate_size = 10240,
    max_position_embeddings = 514,
    type_vocab_size = 1,
    layer_norm_eps = 1e-5,
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

    use crate::XLMRobertaXLConfig;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: RobertaHead>(
        vb: VarBuilder<'_>,
        config: &XLMRobertaXLConfig,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        let spec = RobertaSpec::new(config)?.with_prefix(prefix).with_variant(BertVariant::xlm_roberta_xl());
        H::load(vb, &spec, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: XLMRobertaXLConfig, prefix: "roberta";
    base: XLMRobertaXLModel;
    text_encoding: XLMRobertaXLTextEncoding as "XLMRobertaXLModel";
    causal_lm: XLMRobertaXLForCausalLM;
    masked_lm: XLMRobertaXLForMaskedLM;
    sequence_classification: XLMRobertaXLForSequenceClassification;
    multiple_choice: XLMRobertaXLForMultipleChoice;
    token_classification: XLMRobertaXLForTokenClassification;
    question_answering: XLMRobertaXLForQuestionAnswering;
}

#[cfg(test)]
mod tests;
