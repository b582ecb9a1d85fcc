//! The task heads on top of [`GPTBigCodeModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! Sequence and token classification are `autocandle_core::heads`' generic heads over
//! [`GPTBigCodeModel`]; the language-modelling head is `lm_head`, tied to `transformer.wte`.

use autocandle_core::heads::{SequenceClassifier, TokenClassifier};
use autocandle_core::nn::Linear;
use autocandle_core::Result;
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};
use candle_nn::VarBuilder;

use crate::config::GPTBigCodeConfig;
use crate::model::GPTBigCodeModel;

/// GPTBigCode with its language-modelling head (`GPTBigCodeForCausalLM`): `lm_head`, without
/// bias, maps the final hidden states to vocabulary logits; generation uses a key/value cache.
#[derive(Debug, Clone)]
pub struct GPTBigCodeLm {
    transformer: GPTBigCodeModel,
    lm_head: Linear,
}

impl GPTBigCodeLm {
    /// The decoder under the head.
    pub fn transformer(&self) -> &GPTBigCodeModel {
        &self.transformer
    }

    /// The head, `[vocab_size, n_embd]` (the token embedding's tensor when tied).
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }
}

autocandle_decoder::own_causal_lm!(
    GPTBigCodeLm, base: transformer, max_positions: |transformer| Some(transformer.config().n_positions)
);

/// A head built from a [`GPTBigCodeConfig`].
pub trait GPTBigCodeHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &GPTBigCodeConfig) -> Result<Self>;
}

impl GPTBigCodeHead for GPTBigCodeLm {
    /// `lm_head.weight`, tied to `transformer.wte` with `tie_word_embeddings` (the default).
    fn load(vb: VarBuilder<'_>, config: &GPTBigCodeConfig) -> Result<Self> {
        config.validate()?;
        let names = LmHeadNames { head: &["lm_head"], base: "transformer", embedding: "wte.weight" };
        let (transformer, lm_head) = load_tied_lm_head(
            vb,
            names,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.n_embd),
            |vb, embed| GPTBigCodeModel::new(vb, config, embed),
            GPTBigCodeModel::wte,
        )?;
        Ok(Self { transformer, lm_head })
    }
}

autocandle_decoder::own_generic_heads!(
    GPTBigCodeHead for GPTBigCodeModel, config: GPTBigCodeConfig, prefix: "transformer", hidden: |config| config.n_embd;
    sequence_classification, token_classification
);

/// The heads `autocandle_core::register_heads!` builds the GPTBigCode registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = GPTBigCodeLm;
    pub type SequenceClassification = SequenceClassifier<GPTBigCodeModel>;
    pub type TokenClassification = TokenClassifier<GPTBigCodeModel>;

    /// Load the head `H`.
    pub fn load<H: GPTBigCodeHead>(
        vb: VarBuilder<'_>,
        config: &GPTBigCodeConfig,
        _prefix: &str,
        _class: &str,
    ) -> Result<H> {
        H::load(vb, config)
    }
}

// `GPTBigCodeModel` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: GPTBigCodeConfig, prefix: "transformer";
    /// `lm_head`, without bias, tied to `transformer.wte` as `transformers` ties it at load.
    causal_lm: GPTBigCodeForCausalLM;
    /// `score`, without bias, on the rightmost token that is not `pad_token_id` (the last
    /// column without a `pad_token_id`, which then only works for a batch of one).
    sequence_classification: GPTBigCodeForSequenceClassification;
    token_classification: GPTBigCodeForTokenClassification;
}
