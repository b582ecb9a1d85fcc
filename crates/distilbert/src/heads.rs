//! The task heads on top of [`DistilBertModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, multiple choice, token classification and question answering
//! heads are `autocandle_core::heads`' generic ones over [`DistilBertModel`]; sequences and
//! choices are scored from the first token by `pre_classifier`, ReLU, then `classifier`.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::tied_weight;
use autocandle_core::heads::{
    require_two_labels, Classifier, Encoder, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier,
    TokenClassifier,
};
use autocandle_core::{Activation, BaseModelOutput, ForMaskedLm, MaskedLmOutput, ModelInputs, PreTrainedModel, Result};

use crate::config::DistilBertConfig;
use crate::model::DistilBertModel;

/// DistilBERT with its masked language modelling head: `vocab_transform`, the activation,
/// `vocab_layer_norm`, then `vocab_projector`, whose weight is tied to the word embeddings.
#[derive(Debug)]
pub struct DistilBertLm {
    distilbert: DistilBertModel,
    vocab_transform: Linear,
    activation: Activation,
    vocab_layer_norm: LayerNorm,
    vocab_projector: Linear,
}

impl DistilBertLm {
    /// The underlying encoder.
    pub fn distilbert(&self) -> &DistilBertModel {
        &self.distilbert
    }
}

impl PreTrainedModel for DistilBertLm {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.distilbert)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.distilbert)
    }
}

impl ForMaskedLm for DistilBertLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let hidden = self.distilbert.run(inputs)?;
        let x = self.activation.forward(&self.vocab_transform.forward(&hidden)?)?;
        let x = self.vocab_layer_norm.forward(&x)?;
        Ok(MaskedLmOutput::new(self.vocab_projector.forward(&x)?))
    }
}

/// `pre_classifier` (`dim -> dim`), ReLU, `classifier` (`dim -> outputs`).
fn pre_classifier(vb: &VarBuilder<'_>, dim: usize, outputs: usize) -> Result<Classifier> {
    Ok(Classifier::DenseRelu {
        dense: linear(dim, dim, vb.pp("pre_classifier"))?,
        out_proj: linear(dim, outputs, vb.pp("classifier"))?,
    })
}

/// A head built from a [`DistilBertConfig`]; `class` is the `transformers` class it is loaded
/// as.
pub trait DistilBertHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, class: &'static str) -> Result<Self>;
}

impl DistilBertHead for DistilBertLm {
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, _class: &'static str) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let dim = config.dim;
        let projector = vb.pp("vocab_projector");
        let weight = tied_weight(&projector, "weight", distilbert.word_embeddings(), config.tie_word_embeddings)?;
        let bias = projector.get(config.vocab_size, "bias")?;
        Ok(Self {
            vocab_transform: linear(dim, dim, vb.pp("vocab_transform"))?,
            activation: config.activation,
            vocab_layer_norm: layer_norm(dim, DistilBertConfig::LAYER_NORM_EPS, vb.pp("vocab_layer_norm"))?,
            vocab_projector: Linear::new(weight, Some(bias)),
            distilbert,
        })
    }
}

impl DistilBertHead for SequenceClassifier<DistilBertModel> {
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, _class: &'static str) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = pre_classifier(&vb, config.dim, config.labels.num_labels())?;
        Ok(Self::new(distilbert, Pooling::FirstToken, classifier))
    }
}

impl DistilBertHead for MultipleChoice<DistilBertModel> {
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, _class: &'static str) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = pre_classifier(&vb, config.dim, 1)?;
        Ok(Self::new(distilbert, Pooling::FirstToken, classifier))
    }
}

impl DistilBertHead for TokenClassifier<DistilBertModel> {
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, _class: &'static str) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = linear(config.dim, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(distilbert, classifier))
    }
}

impl DistilBertHead for QuestionAnswerer<DistilBertModel> {
    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig, class: &'static str) -> Result<Self> {
        require_two_labels("distilbert", class, config.labels.num_labels())?;
        Self::with_qa_outputs(DistilBertModel::new(vb.pp("distilbert"), config)?, vb)
    }
}

impl Encoder for DistilBertModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs)?, None))
    }

    fn hidden_size(&self) -> usize {
        self.config().dim
    }
}

/// The heads `autocandle_core::register_heads!` builds the DistilBERT registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type MaskedLm = DistilBertLm;
    pub type SequenceClassification = SequenceClassifier<DistilBertModel>;
    pub type MultipleChoice = super::MultipleChoice<DistilBertModel>;
    pub type TokenClassification = TokenClassifier<DistilBertModel>;
    pub type QuestionAnswering = QuestionAnswerer<DistilBertModel>;

    /// Load the head `H` as `class`.
    pub fn load<H: DistilBertHead>(
        vb: VarBuilder<'_>,
        config: &DistilBertConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, config, class)
    }
}

// `DistilBertModel` (the base) is the encoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: DistilBertConfig, prefix: "distilbert";
    /// `vocab_transform`, the activation, `vocab_layer_norm`, then `vocab_projector`, whose
    /// weight is tied to the word embeddings.
    masked_lm: DistilBertForMaskedLM;
    /// `pre_classifier`, ReLU, then `classifier` on the first token; it has `num_labels`
    /// outputs (`len(id2label)`, else `num_labels`, else 2).
    sequence_classification: DistilBertForSequenceClassification;
    /// Each choice is scored from its first token (`pre_classifier`, ReLU, `classifier`).
    multiple_choice: DistilBertForMultipleChoice;
    token_classification: DistilBertForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: DistilBertForQuestionAnswering;
}
