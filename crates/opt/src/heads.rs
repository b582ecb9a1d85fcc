//! The task heads on top of [`OPTModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification and question answering heads are `autocandle_core::heads`'
//! generic ones over [`OPTModel`]; the language modelling head is OPT's own (`lm_head`, tied
//! to `model.decoder.embed_tokens`).

use candle_nn::VarBuilder;

use autocandle_core::heads::{QuestionAnswerer, SequenceClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};

use crate::config::OPTConfig;
use crate::model::OPTModel;

/// OPT with its language modelling head: `lm_head`, without bias, maps the final hidden
/// states (`word_embed_proj_dim` wide) to vocabulary logits, with a key/value cache for
/// generation.
#[derive(Debug, Clone)]
pub struct OPTLm {
    model: OPTModel,
    lm_head: Linear,
}

impl OPTLm {
    /// The underlying decoder.
    pub fn model(&self) -> &OPTModel {
        &self.model
    }

    /// The LM head (the token embeddings when tied).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

autocandle_decoder::own_causal_lm!(
    OPTLm, base: model, max_positions: |model| Some(model.config().max_position_embeddings)
);

/// A head built from an [`OPTConfig`].
pub trait OPTHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &OPTConfig) -> Result<Self>;
}

impl OPTHead for OPTLm {
    /// Follows `transformers`' weight tying at load time: with `tie_word_embeddings` the head
    /// is `model.decoder.embed_tokens` (a saved model has no `lm_head.weight`), unless the
    /// checkpoint also holds a different `lm_head.weight` (then they stay apart, as in
    /// `transformers`); a checkpoint with only `lm_head.weight` ties the other way.
    fn load(vb: VarBuilder<'_>, config: &OPTConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head"], base: "model", embedding: "decoder.embed_tokens.weight" };
        let (model, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.embed_dim()),
            |vb, embed| OPTModel::new(vb, config, embed),
            OPTModel::embed_tokens,
        )?;
        Ok(Self { model, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    OPTHead for OPTModel, config: OPTConfig, prefix: "model", hidden: |config| config.embed_dim();
    sequence_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the OPT registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = OPTLm;
    pub type SequenceClassification = SequenceClassifier<OPTModel>;
    pub type QuestionAnswering = QuestionAnswerer<OPTModel>;

    /// Load the head `H`.
    pub fn load<H: OPTHead>(vb: VarBuilder<'_>, config: &OPTConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `OPTModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: OPTConfig, prefix: "model";
    /// `lm_head`, without bias, is tied to the token embeddings `model.decoder.embed_tokens`
    /// as `transformers` ties it at load time.
    causal_lm: OPTForCausalLM;
    /// `score`, without bias, on the last token: the rightmost one that is not
    /// `pad_token_id` (the first one when every token is padding), or the last column when
    /// the config has no `pad_token_id`, which then only works for a batch of one.
    sequence_classification: OPTForSequenceClassification;
    /// `qa_outputs` (with bias): always 2 outputs, whatever `num_labels` says.
    question_answering: OPTForQuestionAnswering;
}
