//! The task heads on top of [`GPT2Model`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, token classification and question answering heads are
//! `autocandle_core::heads`' generic ones over [`GPT2Model`]; the language modelling head is
//! GPT-2's own (`lm_head`, tied to `transformer.wte`).

use autocandle_core::nn::linear_no_bias;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::heads::{same_values, QuestionAnswerer, SequenceClassifier, TokenClassifier};
use autocandle_core::{CausalLmOutput, ForCausalLm, KvCache, ModelInputs, PreTrainedModel, Result};

use crate::config::GPT2Config;
use crate::model::GPT2Model;

/// GPT-2 with its language modelling head: `lm_head`, without bias, maps the final hidden
/// states to vocabulary logits, with a key/value cache for generation.
#[derive(Debug)]
pub struct GPT2Lm {
    transformer: GPT2Model,
    /// `[vocab_size, hidden]`: always float (a quantized load dequantizes it).
    lm_head: Tensor,
}

impl GPT2Lm {
    /// The underlying decoder.
    pub fn transformer(&self) -> &GPT2Model {
        &self.transformer
    }

    /// The LM head weight `[vocab_size, n_embd]` (the token embeddings when tied).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }
}

impl PreTrainedModel for GPT2Lm {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.transformer)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.transformer)
    }
}

impl ForCausalLm for GPT2Lm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        let hidden = inputs.keep_for_logits(&self.transformer.run(inputs, None)?)?;
        Ok(CausalLmOutput::new(autocandle_core::kernels::linear(&hidden, &self.lm_head, None)?))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        let hidden = inputs.keep_for_logits(&self.transformer.run(inputs, Some(cache))?)?;
        Ok(CausalLmOutput::new(autocandle_core::kernels::linear(&hidden, &self.lm_head, None)?))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.transformer.config().n_positions)
    }
}

/// A head built from a [`GPT2Config`].
pub trait GPT2Head: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self>;
}

impl GPT2Head for GPT2Lm {
    /// Follows `transformers`' weight tying at load time: with `tie_word_embeddings` the head
    /// is the token embedding matrix `transformer.wte` (and a saved model has no
    /// `lm_head.weight`), unless the checkpoint also holds a different `lm_head.weight` (then
    /// `transformers` leaves them untied and so does this); a checkpoint with only
    /// `lm_head.weight` ties the other way.
    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        config.validate()?;
        let (vocab, h) = (config.vocab_size, config.n_embd);
        let has_head = vb.contains_tensor("lm_head.weight");
        let (transformer, weight) = if !config.tie_word_embeddings {
            let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
            (transformer, linear_no_bias(h, vocab, vb.pp("lm_head"))?.weight()?)
        } else if has_head && !vb.contains_tensor("transformer.wte.weight") {
            let weight = vb.get((vocab, h), "lm_head.weight")?;
            (GPT2Model::new(vb.pp("transformer"), config, Some(weight.clone()))?, weight)
        } else {
            let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
            let wte = transformer.word_embeddings().clone();
            let weight = if has_head {
                let own = vb.get((vocab, h), "lm_head.weight")?;
                if same_values(&own, &wte)? {
                    wte
                } else {
                    own
                }
            } else {
                wte
            };
            (transformer, weight)
        };
        Ok(Self { transformer, lm_head: weight })
    }
}

autocandle_decoder::own_generic_heads!(
    GPT2Head for GPT2Model, config: GPT2Config, prefix: "transformer", hidden: |config| config.n_embd;
    sequence_classification, token_classification, question_answering
);

/// The heads `autocandle_core::register_heads!` builds the GPT-2 registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type CausalLm = GPT2Lm;
    pub type SequenceClassification = SequenceClassifier<GPT2Model>;
    pub type TokenClassification = TokenClassifier<GPT2Model>;
    pub type QuestionAnswering = QuestionAnswerer<GPT2Model>;

    /// Load the head `H`.
    pub fn load<H: GPT2Head>(vb: VarBuilder<'_>, config: &GPT2Config, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `GPT2Model` (the base) is the decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: GPT2Config, prefix: "transformer";
    /// `lm_head`, without bias, is tied to the token embeddings `transformer.wte` as
    /// `transformers` ties it at load time.
    causal_lm: GPT2LMHeadModel;
    /// `score`, without bias, on the last token: as in `transformers`, the rightmost one that
    /// is not `pad_token_id` (left or right padding alike; the first one when every token is
    /// padding), or the last column when the config has no `pad_token_id`, which then only
    /// works for a batch of one.
    sequence_classification: GPT2ForSequenceClassification;
    token_classification: GPT2ForTokenClassification;
    /// Always 2 outputs, whatever `num_labels` says, as in `transformers`.
    question_answering: GPT2ForQuestionAnswering;
}
