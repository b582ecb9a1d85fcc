//! The task heads on top of [`MPNetModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, multiple choice, token classification and question answering
//! heads are `autocandle_core::heads`' generic ones over [`MPNetModel`]: sequences are
//! scored from the first token by `classifier.dense`, tanh, `classifier.out_proj`; choices
//! from the pooler by `classifier`.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::lm_decoder;
use autocandle_core::heads::{
    require_two_labels, Classifier, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};
use autocandle_core::{Activation, ForMaskedLm, MaskedLmOutput, ModelInputs, PreTrainedModel, Result};

use crate::config::MPNetConfig;
use crate::model::MPNetModel;

/// MPNet with its masked language modelling head (`lm_head`: dense, exact GELU,
/// `layer_norm`, then the decoder tied to the word embeddings and its bias to
/// `lm_head.bias`); `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct MPNetLm {
    mpnet: MPNetModel,
    dense: Linear,
    layer_norm: LayerNorm,
    decoder: Linear,
}

impl MPNetLm {
    /// The underlying encoder.
    pub fn mpnet(&self) -> &MPNetModel {
        &self.mpnet
    }

    fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.mpnet.run(inputs)?.last_hidden_state;
        let x = Activation::Gelu.forward(&self.dense.forward(&hidden)?)?;
        Ok(self.decoder.forward(&self.layer_norm.forward(&x)?)?)
    }
}

impl PreTrainedModel for MPNetLm {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.mpnet)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.mpnet)
    }
}

impl ForMaskedLm for MPNetLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.logits(inputs)?))
    }
}

/// A head built from an [`MPNetConfig`]; `class` is the `transformers` class it is loaded as.
pub trait MPNetHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, class: &'static str) -> Result<Self>;
}

impl MPNetHead for MPNetLm {
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, _class: &'static str) -> Result<Self> {
        let mpnet = MPNetModel::new(vb.pp("mpnet"), config, false)?;
        let head = vb.pp("lm_head");
        let h = config.hidden_size;
        Ok(Self {
            dense: linear(h, h, head.pp("dense"))?,
            layer_norm: layer_norm(h, config.layer_norm_eps, head.pp("layer_norm"))?,
            decoder: lm_decoder(head, mpnet.word_embeddings(), config.tie_word_embeddings)?,
            mpnet,
        })
    }
}

impl MPNetHead for SequenceClassifier<MPNetModel> {
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, _class: &'static str) -> Result<Self> {
        let mpnet = MPNetModel::new(vb.pp("mpnet"), config, false)?;
        let classifier = Classifier::dense_tanh(vb.pp("classifier"), config.hidden_size, config.labels.num_labels())?;
        Ok(Self::new(mpnet, Pooling::FirstToken, classifier))
    }
}

impl MPNetHead for MultipleChoice<MPNetModel> {
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, _class: &'static str) -> Result<Self> {
        let mpnet = MPNetModel::new(vb.pp("mpnet"), config, true)?;
        let classifier = linear(config.hidden_size, 1, vb.pp("classifier"))?;
        Ok(Self::new(mpnet, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl MPNetHead for TokenClassifier<MPNetModel> {
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, _class: &'static str) -> Result<Self> {
        let mpnet = MPNetModel::new(vb.pp("mpnet"), config, false)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(mpnet, classifier))
    }
}

impl MPNetHead for QuestionAnswerer<MPNetModel> {
    fn load(vb: VarBuilder<'_>, config: &MPNetConfig, class: &'static str) -> Result<Self> {
        require_two_labels("mpnet", class, config.labels.num_labels())?;
        Self::with_qa_outputs(MPNetModel::new(vb.pp("mpnet"), config, false)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the MPNet registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type MaskedLm = MPNetLm;
    pub type SequenceClassification = SequenceClassifier<MPNetModel>;
    pub type MultipleChoice = super::MultipleChoice<MPNetModel>;
    pub type TokenClassification = TokenClassifier<MPNetModel>;
    pub type QuestionAnswering = QuestionAnswerer<MPNetModel>;

    /// Load the head `H` as `class`.
    pub fn load<H: MPNetHead>(
        vb: VarBuilder<'_>,
        config: &MPNetConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, config, class)
    }
}

// `MPNetModel` (the base) is the encoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: MPNetConfig, prefix: "mpnet";
    /// `lm_head`: dense, exact GELU, `layer_norm`, then the decoder tied to the word embeddings.
    masked_lm: MPNetForMaskedLM;
    /// Dense and tanh on the first token, then `out_proj`; it has `num_labels` outputs
    /// (`len(id2label)`, else `num_labels`, else 2).
    sequence_classification: MPNetForSequenceClassification;
    /// Each choice is scored from the pooler by `classifier`.
    multiple_choice: MPNetForMultipleChoice;
    token_classification: MPNetForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: MPNetForQuestionAnswering;
}
