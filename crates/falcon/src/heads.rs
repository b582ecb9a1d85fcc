//! The task heads on top of [`FalconModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! Sequence classification, token classification and question answering are
//! `autocandle_core::heads`' generic heads over [`FalconModel`]; the language-modelling head
//! is `lm_head`, tied to `transformer.word_embeddings`.

use autocandle_core::heads::{QuestionAnswerer, SequenceClassifier, TokenClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};
use candle_nn::VarBuilder;

use crate::config::FalconConfig;
use crate::model::FalconModel;

/// Falcon with its language-modelling head (`FalconForCausalLM`): `lm_head`, without
/// bias, maps the final hidden states to vocabulary logits; generation uses a key/value cache.
#[derive(Debug, Clone)]
pub struct FalconLm {
    transformer: FalconModel,
    lm_head: Linear,
}

impl FalconLm {
    /// The decoder under the head.
    pub fn transformer(&self) -> &FalconModel {
        &self.transformer
    }

    /// The head, `[vocab_size, hidden_size]` (the token embedding's tensor when tied).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

autocandle_decoder::own_causal_lm!(
    FalconLm, base: transformer, max_positions: |transformer| transformer.max_positions()
);

/// A head built from a [`FalconConfig`].
pub trait FalconHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &FalconConfig) -> Result<Self>;
}

impl FalconHead for FalconLm {
    /// `lm_head.weight`, tied to `transformer.word_embeddings` with `tie_word_embeddings` (the
    /// default).
    fn load(vb: VarBuilder<'_>, config: &FalconConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head"], base: "transformer", embedding: "word_embeddings.weight" };
        let (transformer, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.hidden()),
            |vb, embed| FalconModel::new(vb, config, embed),
            FalconModel::word_embeddings,
        )?;
        Ok(Self { transformer, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    FalconHead for FalconModel, config: FalconConfig, prefix: "transformer", hidden: |config| config.hidden();
    sequence_classification, token_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the Falcon registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = FalconLm;
    pub type SequenceClassification = SequenceClassifier<FalconModel>;
    pub type TokenClassification = TokenClassifier<FalconModel>;
    pub type QuestionAnswering = QuestionAnswerer<FalconModel>;

    /// Load the head `H`.
    pub fn load<H: FalconHead>(vb: VarBuilder<'_>, config: &FalconConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `FalconModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: FalconConfig, prefix: "transformer";
    /// `lm_head`, without bias, tied to `transformer.word_embeddings` as `transformers` ties it.
    causal_lm: FalconForCausalLM;
    /// `score`, without bias, on the rightmost token that is not `pad_token_id` (the last
    /// column without a `pad_token_id`, which then only works for a batch of one).
    sequence_classification: FalconForSequenceClassification;
    token_classification: FalconForTokenClassification;
    question_answering: FalconForQuestionAnswering;
}
