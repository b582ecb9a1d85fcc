//! The task heads on top of [`BloomModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, token classification and question answering heads are
//! `autocandle_core::heads`' generic ones over [`BloomModel`]; the language modelling head is
//! BLOOM's own (`lm_head`, tied to `transformer.word_embeddings`).

use candle_nn::VarBuilder;

use autocandle_core::heads::{QuestionAnswerer, SequenceClassifier, TokenClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};

use crate::config::BloomConfig;
use crate::model::BloomModel;

/// BLOOM with its language modelling head: `lm_head`, without bias, maps the final hidden
/// states to vocabulary logits, with a key/value cache for generation.
#[derive(Debug, Clone)]
pub struct BloomLm {
    model: BloomModel,
    lm_head: Linear,
}

impl BloomLm {
    /// The underlying decoder.
    pub fn transformer(&self) -> &BloomModel {
        &self.model
    }

    /// The LM head (the token embeddings when tied).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

// `max_positions` is `None`: ALiBi sets no limit.
autocandle_decoder::own_causal_lm!(
    BloomLm, base: model, max_positions: |_model| None
);

/// A head built from an [`BloomConfig`].
pub trait BloomHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &BloomConfig) -> Result<Self>;
}

impl BloomHead for BloomLm {
    /// Follows `transformers`' weight tying at load time: with `tie_word_embeddings` the head
    /// is `transformer.word_embeddings` (a saved model has no `lm_head.weight`), unless the
    /// checkpoint also holds a different `lm_head.weight` (then they stay apart, as in
    /// `transformers`); a checkpoint with only `lm_head.weight` ties the other way.
    fn load(vb: VarBuilder<'_>, config: &BloomConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head"], base: "transformer", embedding: "word_embeddings.weight" };
        let (model, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.hidden_size),
            |vb, embed| BloomModel::new(vb, config, embed),
            BloomModel::word_embeddings,
        )?;
        Ok(Self { model, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    BloomHead for BloomModel, config: BloomConfig, prefix: "transformer", hidden: |config| config.hidden_size;
    sequence_classification, token_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the BLOOM registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = BloomLm;
    pub type SequenceClassification = SequenceClassifier<BloomModel>;
    pub type TokenClassification = TokenClassifier<BloomModel>;
    pub type QuestionAnswering = QuestionAnswerer<BloomModel>;

    /// Load the head `H`.
    pub fn load<H: BloomHead>(vb: VarBuilder<'_>, config: &BloomConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `BloomModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: BloomConfig, prefix: "transformer";
    /// `lm_head`, without bias, is tied to the token embeddings `transformer.word_embeddings`
    /// as `transformers` ties it at load time.
    causal_lm: BloomForCausalLM;
    /// `score`, without bias, on the last token: the rightmost one that is not
    /// `pad_token_id` (the first one when every token is padding), or the last column when
    /// the config has no `pad_token_id`, which then only works for a batch of one.
    sequence_classification: BloomForSequenceClassification;
    /// `classifier` (with bias) on every token.
    token_classification: BloomForTokenClassification;
    /// `qa_outputs` (with bias): always 2 outputs, whatever `num_labels` says.
    question_answering: BloomForQuestionAnswering;
}
