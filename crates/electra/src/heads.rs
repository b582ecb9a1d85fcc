//! The task heads on top of [`ElectraModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The token classification and question answering heads are `autocandle_core::heads`'
//! generic ones over [`ElectraModel`]; the generator (masked and causal LM), the sequence
//! classifier (dense, exact GELU, `out_proj` on the first token) and the multiple choice head
//! (`ElectraSequenceSummary`, then `classifier`) are ELECTRA's own.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::tied_weight;
use autocandle_core::heads::{flatten_choices, require_two_labels, QuestionAnswerer, TokenClassifier};
use autocandle_core::{
    Activation, CausalLmOutput, ForCausalLm, ForMaskedLm, ForMultipleChoice, ForPreTraining, ForSequenceClassification,
    MaskedLmOutput, ModelInputs, MultipleChoiceOutput, PreTrainedModel, PreTrainingOutput, Result,
    SequenceClassifierOutput,
};

use crate::config::{ElectraConfig, SummaryType};
use crate::model::ElectraModel;

/// The ELECTRA generator: `generator_predictions` (dense to `embedding_size`, exact GELU,
/// LayerNorm), then `generator_lm_head`, whose weight is tied to the word embeddings;
/// `ElectraForMaskedLM` and `ElectraForCausalLM` (causal when the config has `is_decoder`).
/// `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct ElectraGenerator {
    electra: ElectraModel,
    dense: Linear,
    layer_norm: LayerNorm,
    lm_head: Linear,
}

impl ElectraGenerator {
    /// The underlying encoder.
    pub fn electra(&self) -> &ElectraModel {
        &self.electra
    }

    fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.electra.run(inputs)?;
        let x = Activation::Gelu.forward(&self.dense.forward(&hidden)?)?;
        Ok(self.lm_head.forward(&self.layer_norm.forward(&x)?)?)
    }
}

impl ForMaskedLm for ElectraGenerator {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.logits(inputs)?))
    }
}

impl ForCausalLm for ElectraGenerator {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.logits(inputs)?))
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.electra.config().max_position_embeddings)
    }
}

/// `ElectraClassificationHead`: the first token, dense, exact GELU, then `out_proj`; logits
/// `[batch, num_labels]`.
#[derive(Debug)]
pub struct ElectraSequenceClassifier {
    electra: ElectraModel,
    dense: Linear,
    out_proj: Linear,
}

impl ElectraSequenceClassifier {
    /// The underlying encoder.
    pub fn electra(&self) -> &ElectraModel {
        &self.electra
    }
}

impl ForSequenceClassification for ElectraSequenceClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let first = self.electra.run(inputs)?.narrow(1, 0, 1)?.squeeze(1)?;
        let x = Activation::Gelu.forward(&self.dense.forward(&first)?)?;
        Ok(SequenceClassifierOutput::new(self.out_proj.forward(&x)?))
    }
}

/// `ElectraForMultipleChoice`: each choice encoded on its own, summarised by
/// `ElectraSequenceSummary` (`summary_type`, the optional projection `sequence_summary.summary`
/// and `summary_activation`), then scored by `classifier`; logits `[batch, choices]`.
#[derive(Debug)]
pub struct ElectraMultipleChoice {
    electra: ElectraModel,
    summary_type: SummaryType,
    summary: Option<Linear>,
    activation: Option<Activation>,
    classifier: Linear,
}

impl ElectraMultipleChoice {
    /// The underlying encoder.
    pub fn electra(&self) -> &ElectraModel {
        &self.electra
    }
}

impl ForMultipleChoice for ElectraMultipleChoice {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        let (flat, (batch, choices)) = flatten_choices(inputs)?;
        let hidden = self.electra.run(&flat)?;
        let seq = hidden.dim(1)?;
        let mut x = match self.summary_type {
            SummaryType::First => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            SummaryType::Last => hidden.narrow(1, seq.saturating_sub(1), 1)?.squeeze(1)?,
            SummaryType::Mean => hidden.mean(1)?,
        };
        if let Some(summary) = &self.summary {
            x = summary.forward(&x)?;
        }
        if let Some(activation) = self.activation {
            x = activation.forward(&x)?;
        }
        Ok(MultipleChoiceOutput::new(self.classifier.forward(&x)?.reshape((batch, choices))?))
    }
}

/// The ELECTRA discriminator (`ElectraForPreTraining`): `discriminator_predictions` (dense,
/// `hidden_act`, `dense_prediction`) scores every token as replaced or original; logits
/// `[batch, seq]`.
///
/// Registered under `AutoModelForPreTraining` as `ElectraForPreTraining`: its
/// `PreTrainingOutput` has `transformers`' one field, `logits`.
#[derive(Debug)]
pub struct ElectraDiscriminator {
    electra: ElectraModel,
    dense: Linear,
    activation: Activation,
    dense_prediction: Linear,
}

impl ElectraDiscriminator {
    /// Load `ElectraForPreTraining` from the checkpoint root `vb` (`electra.*`,
    /// `discriminator_predictions.*`); errors as [`ElectraHead::load`].
    pub fn new(vb: VarBuilder<'_>, config: &ElectraConfig) -> Result<Self> {
        let h = config.hidden_size;
        let predictions = vb.pp("discriminator_predictions");
        Ok(Self {
            electra: ElectraModel::new(vb.pp("electra"), config)?,
            dense: linear(h, h, predictions.pp("dense"))?,
            activation: config.hidden_act,
            dense_prediction: linear(h, 1, predictions.pp("dense_prediction"))?,
        })
    }

    /// The underlying encoder.
    pub fn electra(&self) -> &ElectraModel {
        &self.electra
    }

    /// One logit per token, `[batch, seq]`: positive where the discriminator thinks the token
    /// was replaced.
    pub fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.electra.run(inputs)?;
        let x = self.activation.forward(&self.dense.forward(&hidden)?)?;
        Ok(self.dense_prediction.forward(&x)?.squeeze(2)?)
    }
}

macro_rules! through_electra {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.electra)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.electra)
            }
        }
    )*};
}

through_electra!(ElectraGenerator, ElectraSequenceClassifier, ElectraMultipleChoice, ElectraDiscriminator);

/// A head built from an [`ElectraConfig`]; `class` is the `transformers` class it is loaded as.
pub trait ElectraHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, class: &'static str) -> Result<Self>;
}

impl ElectraHead for ElectraModel {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        ElectraModel::new(vb, config)
    }
}

impl ElectraHead for ElectraGenerator {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        let electra = ElectraModel::new(vb.pp("electra"), config)?;
        let (h, e) = (config.hidden_size, config.embedding_size);
        let predictions = vb.pp("generator_predictions");
        let head = vb.pp("generator_lm_head");
        let weight = tied_weight(&head, "weight", electra.word_embeddings(), config.tie_word_embeddings)?;
        let bias = head.get(config.vocab_size, "bias")?;
        Ok(Self {
            dense: linear(h, e, predictions.pp("dense"))?,
            layer_norm: layer_norm(e, config.layer_norm_eps, predictions.pp("LayerNorm"))?,
            lm_head: Linear::new(weight, Some(bias)),
            electra,
        })
    }
}

impl ElectraHead for ElectraDiscriminator {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        ElectraDiscriminator::new(vb, config)
    }
}

impl ForPreTraining for ElectraDiscriminator {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        Ok(PreTrainingOutput::from_fields(vec![("logits", self.logits(inputs)?)]))
    }
}

impl ElectraHead for ElectraSequenceClassifier {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        let h = config.hidden_size;
        let classifier = vb.pp("classifier");
        Ok(Self {
            electra: ElectraModel::new(vb.pp("electra"), config)?,
            dense: linear(h, h, classifier.pp("dense"))?,
            out_proj: linear(h, config.labels.num_labels(), classifier.pp("out_proj"))?,
        })
    }
}

impl ElectraHead for ElectraMultipleChoice {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        let h = config.hidden_size;
        let electra = ElectraModel::new(vb.pp("electra"), config)?;
        let summary = if config.summary_use_proj {
            let labels = config.labels.num_labels();
            let outputs = if config.summary_proj_to_labels && labels > 0 { labels } else { h };
            Some(linear(h, outputs, vb.pp("sequence_summary.summary"))?)
        } else {
            None
        };
        Ok(Self {
            electra,
            summary_type: config.summary()?,
            summary,
            activation: config.summary_activation()?,
            classifier: linear(h, 1, vb.pp("classifier"))?,
        })
    }
}

impl ElectraHead for TokenClassifier<ElectraModel> {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, _class: &'static str) -> Result<Self> {
        let electra = ElectraModel::new(vb.pp("electra"), config)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(electra, classifier))
    }
}

impl ElectraHead for QuestionAnswerer<ElectraModel> {
    fn load(vb: VarBuilder<'_>, config: &ElectraConfig, class: &'static str) -> Result<Self> {
        require_two_labels("electra", class, config.labels.num_labels())?;
        Self::with_qa_outputs(ElectraModel::new(vb.pp("electra"), config)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the ELECTRA registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type TextEncoding = ElectraModel;
    pub type CausalLm = ElectraGenerator;
    pub type MaskedLm = ElectraGenerator;
    pub type SequenceClassification = ElectraSequenceClassifier;
    pub type MultipleChoice = ElectraMultipleChoice;
    pub type PreTraining = ElectraDiscriminator;
    pub type TokenClassification = TokenClassifier<ElectraModel>;
    pub type QuestionAnswering = QuestionAnswerer<ElectraModel>;

    /// Load the head `H` as `class`.
    pub fn load<H: ElectraHead>(
        vb: VarBuilder<'_>,
        config: &ElectraConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, config, class)
    }
}

// `ElectraModel` (the base) is the encoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: ElectraConfig, prefix: "electra";
    text_encoding: ElectraTextEncoding as "ElectraModel";
    /// The discriminator: `discriminator_predictions` scores every token as replaced or
    /// original; `logits` are `[batch, seq]` (the output's only field).
    pretraining: ElectraForPreTraining;
    /// The generator, causal when the config has `is_decoder` (bidirectional otherwise, as
    /// in `transformers`).
    causal_lm: ElectraForCausalLM;
    /// The generator: `generator_predictions`, then `generator_lm_head`.
    masked_lm: ElectraForMaskedLM;
    /// Dense, exact GELU and `out_proj` on the first token; it has `num_labels` outputs.
    sequence_classification: ElectraForSequenceClassification;
    /// `ElectraSequenceSummary` (`summary_type`, `summary_use_proj`, `summary_activation`),
    /// then `classifier`.
    multiple_choice: ElectraForMultipleChoice;
    token_classification: ElectraForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: ElectraForQuestionAnswering;
}
