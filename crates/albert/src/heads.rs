//! The task heads on top of [`AlbertModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, multiple choice, token classification and question answering
//! heads are `autocandle_core::heads`' generic ones over [`AlbertModel`] (`classifier` on the
//! pooled output for sequences and choices, on every token for tokens, `qa_outputs` for
//! spans); the language modelling and sentence-order heads are ALBERT's own.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::lm_decoder;
use autocandle_core::heads::{
    require_two_labels, Classifier, Encoder, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier,
    TokenClassifier,
};
use autocandle_core::{
    Activation, ForMaskedLm, ForPreTraining, MaskedLmOutput, ModelInputs, PreTrainedModel, PreTrainingOutput, Result,
};

use crate::config::AlbertConfig;
use crate::model::AlbertModel;

/// `AlbertMLMHead` (`predictions`): dense to `embedding_size`, the activation, LayerNorm,
/// then the decoder, tied to the word embeddings (its bias to `predictions.bias`).
#[derive(Debug)]
struct AlbertMlmHead {
    dense: Linear,
    activation: Activation,
    layer_norm: LayerNorm,
    decoder: Linear,
}

impl AlbertMlmHead {
    fn load(vb: VarBuilder<'_>, cfg: &AlbertConfig, word_embeddings: &Tensor) -> Result<Self> {
        Ok(Self {
            dense: linear(cfg.hidden_size, cfg.embedding_size, vb.pp("dense"))?,
            activation: cfg.hidden_act,
            layer_norm: layer_norm(cfg.embedding_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            decoder: lm_decoder(vb, word_embeddings, cfg.tie_word_embeddings)?,
        })
    }

    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let x = self.activation.forward(&self.dense.forward(hidden)?)?;
        Ok(self.decoder.forward(&self.layer_norm.forward(&x)?)?)
    }
}

/// ALBERT with its masked language modelling head (`predictions`); `logits` are
/// `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct AlbertLm {
    albert: AlbertModel,
    predictions: AlbertMlmHead,
}

impl AlbertLm {
    /// The underlying encoder.
    pub fn albert(&self) -> &AlbertModel {
        &self.albert
    }
}

impl ForMaskedLm for AlbertLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.predictions.forward(&self.albert.run(inputs)?.last_hidden_state)?))
    }
}

/// ALBERT with its two pretraining heads: masked LM (`predictions`) and sentence-order
/// prediction (`sop_classifier.classifier` on the pooled output, `num_labels` outputs).
///
/// Its [`PreTrainingOutput`] has `transformers`' `AlbertForPreTrainingOutput` fields:
/// `prediction_logits` and `sop_logits`.
#[derive(Debug)]
pub struct AlbertPreTraining {
    albert: AlbertModel,
    predictions: AlbertMlmHead,
    sop_classifier: Linear,
}

impl AlbertPreTraining {
    /// The underlying encoder.
    pub fn albert(&self) -> &AlbertModel {
        &self.albert
    }
}

impl ForPreTraining for AlbertPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.albert.run(inputs)?;
        let prediction_logits = self.predictions.forward(&out.last_hidden_state)?;
        let pooled = Encoder::pooled(&self.albert, out)?;
        let sop_logits = self.sop_classifier.forward(&pooled)?;
        Ok(PreTrainingOutput::from_fields(vec![("prediction_logits", prediction_logits), ("sop_logits", sop_logits)]))
    }
}

macro_rules! through_albert {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.albert)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.albert)
            }
        }
    )*};
}

through_albert!(AlbertLm, AlbertPreTraining);

/// A head built from an [`AlbertConfig`]; `class` is the `transformers` class it is loaded as.
pub trait AlbertHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, class: &'static str) -> Result<Self>;
}

impl AlbertHead for AlbertModel {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.weight");
        AlbertModel::new(vb, config, add_pooling_layer)
    }
}

impl AlbertHead for AlbertLm {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let albert = AlbertModel::new(vb.pp("albert"), config, false)?;
        let predictions = AlbertMlmHead::load(vb.pp("predictions"), config, albert.word_embeddings())?;
        Ok(Self { albert, predictions })
    }
}

impl AlbertHead for AlbertPreTraining {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let albert = AlbertModel::new(vb.pp("albert"), config, true)?;
        let predictions = AlbertMlmHead::load(vb.pp("predictions"), config, albert.word_embeddings())?;
        let sop_classifier =
            linear(config.hidden_size, config.labels.num_labels(), vb.pp("sop_classifier.classifier"))?;
        Ok(Self { albert, predictions, sop_classifier })
    }
}

impl AlbertHead for SequenceClassifier<AlbertModel> {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let albert = AlbertModel::new(vb.pp("albert"), config, true)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(albert, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl AlbertHead for MultipleChoice<AlbertModel> {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let albert = AlbertModel::new(vb.pp("albert"), config, true)?;
        let classifier = linear(config.hidden_size, 1, vb.pp("classifier"))?;
        Ok(Self::new(albert, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl AlbertHead for TokenClassifier<AlbertModel> {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, _class: &'static str) -> Result<Self> {
        let albert = AlbertModel::new(vb.pp("albert"), config, false)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(albert, classifier))
    }
}

impl AlbertHead for QuestionAnswerer<AlbertModel> {
    fn load(vb: VarBuilder<'_>, config: &AlbertConfig, class: &'static str) -> Result<Self> {
        require_two_labels("albert", class, config.labels.num_labels())?;
        Self::with_qa_outputs(AlbertModel::new(vb.pp("albert"), config, false)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the ALBERT registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type TextEncoding = AlbertModel;
    pub type PreTraining = AlbertPreTraining;
    pub type MaskedLm = AlbertLm;
    pub type SequenceClassification = SequenceClassifier<AlbertModel>;
    pub type MultipleChoice = super::MultipleChoice<AlbertModel>;
    pub type TokenClassification = TokenClassifier<AlbertModel>;
    pub type QuestionAnswering = QuestionAnswerer<AlbertModel>;

    /// Load the head `H` as `class`.
    pub fn load<H: AlbertHead>(
        vb: VarBuilder<'_>,
        config: &AlbertConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, config, class)
    }
}

// `AlbertModel` (the base) is the encoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: AlbertConfig, prefix: "albert";
    text_encoding: AlbertTextEncoding as "AlbertModel";
    /// Masked LM and sentence-order prediction: `prediction_logits` and `sop_logits`
    /// `[batch, num_labels]`.
    pretraining: AlbertForPreTraining;
    /// `predictions`: dense, the activation, LayerNorm, then the decoder tied to the word
    /// embeddings.
    masked_lm: AlbertForMaskedLM;
    /// `classifier` on the pooled output; it has `num_labels` outputs.
    sequence_classification: AlbertForSequenceClassification;
    multiple_choice: AlbertForMultipleChoice;
    token_classification: AlbertForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: AlbertForQuestionAnswering;
}
