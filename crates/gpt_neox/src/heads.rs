//! The task heads on top of [`GPTNeoXModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! Sequence classification, token classification and question answering are
//! `autocandle_core::heads`' generic heads over [`GPTNeoXModel`]; the language-modelling head
//! is `lm_head` (`embed_out` in checkpoints saved before `transformers` 5).

use autocandle_core::heads::{QuestionAnswerer, SequenceClassifier, TokenClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};
use candle_nn::VarBuilder;

use crate::config::GPTNeoXConfig;
use crate::model::GPTNeoXModel;

/// GPT-NeoX with its language-modelling head (`GPTNeoXForCausalLM`): `lm_head`, without
/// bias, maps the final hidden states to vocabulary logits; generation uses a key/value cache.
#[derive(Debug, Clone)]
pub struct GPTNeoXLm {
    gpt_neox: GPTNeoXModel,
    lm_head: Linear,
}

impl GPTNeoXLm {
    /// The decoder under the head.
    pub fn gpt_neox(&self) -> &GPTNeoXModel {
        &self.gpt_neox
    }

    /// The head, `[vocab_size, hidden_size]` (the token embedding's tensor when tied).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

autocandle_decoder::own_causal_lm!(
    GPTNeoXLm, base: gpt_neox, max_positions: |gpt_neox| Some(gpt_neox.max_positions())
);

/// A head built from a [`GPTNeoXConfig`].
pub trait GPTNeoXHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &GPTNeoXConfig) -> Result<Self>;
}

impl GPTNeoXHead for GPTNeoXLm {
    /// `lm_head.weight`, or `embed_out.weight` as checkpoints saved before `transformers` 5
    /// name it; tied to `gpt_neox.embed_in` only with `tie_word_embeddings`.
    fn load(vb: VarBuilder<'_>, config: &GPTNeoXConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head", "embed_out"], base: "gpt_neox", embedding: "embed_in.weight" };
        let (gpt_neox, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.hidden_size),
            |vb, embed| GPTNeoXModel::new(vb, config, embed),
            GPTNeoXModel::embed_in,
        )?;
        Ok(Self { gpt_neox, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    GPTNeoXHead for GPTNeoXModel, config: GPTNeoXConfig, prefix: "gpt_neox", hidden: |config| config.hidden_size;
    sequence_classification, token_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the GPT-NeoX registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = GPTNeoXLm;
    pub type SequenceClassification = SequenceClassifier<GPTNeoXModel>;
    pub type TokenClassification = TokenClassifier<GPTNeoXModel>;
    pub type QuestionAnswering = QuestionAnswerer<GPTNeoXModel>;

    /// Load the head `H`.
    pub fn load<H: GPTNeoXHead>(vb: VarBuilder<'_>, config: &GPTNeoXConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `GPTNeoXModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: GPTNeoXConfig, prefix: "gpt_neox";
    /// `lm_head` (`embed_out` in older checkpoints), without bias.
    causal_lm: GPTNeoXForCausalLM;
    /// `score`, without bias, on the rightmost token that is not `pad_token_id` (the last
    /// column without a `pad_token_id`, which then only works for a batch of one).
    sequence_classification: GPTNeoXForSequenceClassification;
    token_classification: GPTNeoXForTokenClassification;
    question_answering: GPTNeoXForQuestionAnswering;
}
