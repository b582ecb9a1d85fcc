//! The task heads on top of [`GPTJModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification and question answering heads are `autocandle_core::heads`'
//! generic ones over [`GPTJModel`] (`modeling_layers`' `GenericForSequenceClassification` and
//! `GenericForQuestionAnswering`); the language modelling head is GPT-J's own (`lm_head`, with
//! a bias).

use candle_nn::VarBuilder;

use autocandle_core::heads::{QuestionAnswerer, SequenceClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};

use crate::config::GPTJConfig;
use crate::model::GPTJModel;

/// GPT-J with its language modelling head: `lm_head` (with bias) maps the final hidden
/// states to vocabulary logits, with a key/value cache for generation.
#[derive(Debug, Clone)]
pub struct GPTJLm {
    transformer: GPTJModel,
    lm_head: Linear,
}

impl GPTJLm {
    /// The underlying decoder.
    pub fn transformer(&self) -> &GPTJModel {
        &self.transformer
    }

    /// The LM head.
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

autocandle_decoder::own_causal_lm!(
    GPTJLm, base: transformer, max_positions: |transformer| Some(transformer.config().n_positions)
);

/// A head built from a [`GPTJConfig`].
pub trait GPTJHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &GPTJConfig) -> Result<Self>;
}

impl GPTJHead for GPTJLm {
    /// With `tie_word_embeddings` (false by default), `lm_head.weight` is `transformer.wte` as
    /// `transformers` ties it at load time (unless the checkpoint holds a different one; a
    /// checkpoint with only `lm_head.weight` ties the other way); `lm_head.bias` is always
    /// read.
    fn load(vb: VarBuilder<'_>, config: &GPTJConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head"], base: "transformer", embedding: "wte.weight" };
        let (transformer, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, true),
            (config.vocab_size, config.n_embd),
            |vb, embed| GPTJModel::new(vb, config, embed),
            GPTJModel::word_embeddings,
        )?;
        Ok(Self { transformer, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    GPTJHead for GPTJModel, config: GPTJConfig, prefix: "transformer", hidden: |config| config.n_embd;
    sequence_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the GPT-J registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = GPTJLm;
    pub type SequenceClassification = SequenceClassifier<GPTJModel>;
    pub type QuestionAnswering = QuestionAnswerer<GPTJModel>;

    /// Load the head `H`.
    pub fn load<H: GPTJHead>(vb: VarBuilder<'_>, config: &GPTJConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `GPTJModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: GPTJConfig, prefix: "transformer";
    /// `lm_head`, with bias; untied from `transformer.wte` unless `tie_word_embeddings`.
    causal_lm: GPTJForCausalLM;
    /// `score`, without bias, on the last token: the rightmost one that is not
    /// `pad_token_id` (the first one when every token is padding), or the last column when
    /// the config has no `pad_token_id`, which then only works for a batch of one.
    sequence_classification: GPTJForSequenceClassification;
    /// `qa_outputs` (with bias): always 2 outputs, whatever `num_labels` says.
    question_answering: GPTJForQuestionAnswering;
}
