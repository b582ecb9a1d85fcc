//! The heads of RoFormer, which `autocandle_core::register_heads!` (`family: crate`) turns
//! into registered types.
//!
//! Token classification and question answering are `autocandle_core::heads`' generic heads
//! over [`RoFormerEncoder`]; the language modelling head (`cls.predictions`, which maps back to
//! `embedding_size`), the sequence classifier (`classifier`: dense, `hidden_act`, `out_proj`
//! on the first token) and the multiple choice head (`RoFormerSequenceSummary` with its
//! defaults: the last position of each choice, then `classifier`) are RoFormer's own.

use autocandle_core::heads::{flatten_choices, require_two_labels, QuestionAnswerer, TokenClassifier};
use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, BaseModelOutput, CausalLmOutput, ForCausalLm, ForMaskedLm, ForMultipleChoice,
    ForSequenceClassification, ForTextEncoding, MaskedLmOutput, Model, ModelInputs, MultipleChoiceOutput,
    PreTrainedModel, Result, SequenceClassifierOutput,
};

use crate::config::RoFormerConfig;
use crate::model::RoFormerEncoder;

/// RoFormer with its language modelling head (`cls.predictions`: transform dense
/// `hidden -> embedding_size`, `hidden_act`, LayerNorm, then the decoder tied to the word
/// embeddings): `RoFormerForMaskedLM`, and `RoFormerForCausalLM`, causal when the config has
/// `is_decoder` (generation runs the whole sequence at every step, without a KV cache).
#[derive(Debug)]
pub struct RoFormerLm {
    roformer: RoFormerEncoder,
    dense: Linear,
    activation: Activation,
    layer_norm: LayerNorm,
    decoder: Linear,
}

impl RoFormerLm {
    fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.roformer.run(inputs)?.last_hidden_state;
        let x = self.activation.forward(&self.dense.forward(&hidden)?)?;
        Ok(self.decoder.forward(&self.layer_norm.forward(&x)?)?)
    }
}

impl ForMaskedLm for RoFormerLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.logits(inputs)?))
    }
}

impl ForCausalLm for RoFormerLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.logits(inputs)?))
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.roformer.config().max_position_embeddings)
    }
}

/// `RoFormerForSequenceClassification`: `classifier.dense`, `hidden_act`,
/// `classifier.out_proj` on the first token; logits `[batch, num_labels]`.
#[derive(Debug)]
pub struct RoFormerSequenceClassifier {
    roformer: RoFormerEncoder,
    dense: Linear,
    activation: Activation,
    out_proj: Linear,
}

impl ForSequenceClassification for RoFormerSequenceClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let hidden = self.roformer.run(inputs)?.last_hidden_state;
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let x = self.activation.forward(&self.dense.forward(&first)?)?;
        Ok(SequenceClassifierOutput::new(self.out_proj.forward(&x)?))
    }
}

/// `RoFormerForMultipleChoice`: each choice encoded on its own, its last position (the
/// `"last"` summary of `RoFormerSequenceSummary`, padding or not, as `transformers`) scored
/// by `classifier`; logits `[batch, choices]`.
#[derive(Debug)]
pub struct RoFormerMultipleChoice {
    roformer: RoFormerEncoder,
    classifier: Linear,
}

impl ForMultipleChoice for RoFormerMultipleChoice {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        let (flat, (batch, choices)) = flatten_choices(inputs)?;
        let hidden = self.roformer.run(&flat)?.last_hidden_state;
        let seq = hidden.dim(1)?;
        let last = hidden.narrow(1, seq - 1, 1)?.squeeze(1)?;
        Ok(MultipleChoiceOutput::new(self.classifier.forward(&last)?.reshape((batch, choices))?))
    }
}

impl Model for RoFormerEncoder {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}

impl ForTextEncoding for RoFormerEncoder {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}

macro_rules! through_roformer {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.roformer)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.roformer)
            }
        }
    )*};
}

through_roformer!(RoFormerLm, RoFormerSequenceClassifier, RoFormerMultipleChoice);

/// A head built from a [`RoFormerConfig`]; `class` is the `transformers` class it is loaded as.
pub trait RoFormerHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, class: &'static str) -> Result<Self>;
}

impl RoFormerHead for RoFormerEncoder {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, _class: &'static str) -> Result<Self> {
        RoFormerEncoder::new(vb, config)
    }
}

impl RoFormerHead for RoFormerLm {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, _class: &'static str) -> Result<Self> {
        let roformer = RoFormerEncoder::new(vb.pp("roformer"), config)?;
        let (h, e) = (config.hidden_size, config.embedding_size());
        let predictions = vb.pp("cls.predictions");
        let transform = predictions.pp("transform");
        Ok(Self {
            dense: linear(h, e, transform.pp("dense"))?,
            activation: config.hidden_act,
            layer_norm: layer_norm(e, config.layer_norm_eps, transform.pp("LayerNorm"))?,
            decoder: autocandle_bert::lm_decoder(predictions, roformer.word_embeddings(), config.tie_word_embeddings)?,
            roformer,
        })
    }
}

impl RoFormerHead for RoFormerSequenceClassifier {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, _class: &'static str) -> Result<Self> {
        let h = config.hidden_size;
        Ok(Self {
            roformer: RoFormerEncoder::new(vb.pp("roformer"), config)?,
            dense: linear(h, h, vb.pp("classifier.dense"))?,
            activation: config.hidden_act,
            out_proj: linear(h, config.labels.num_labels(), vb.pp("classifier.out_proj"))?,
        })
    }
}

impl RoFormerHead for RoFormerMultipleChoice {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, _class: &'static str) -> Result<Self> {
        Ok(Self {
            roformer: RoFormerEncoder::new(vb.pp("roformer"), config)?,
            classifier: linear(config.hidden_size, 1, vb.pp("classifier"))?,
        })
    }
}

impl RoFormerHead for TokenClassifier<RoFormerEncoder> {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, _class: &'static str) -> Result<Self> {
        let roformer = RoFormerEncoder::new(vb.pp("roformer"), config)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(roformer, classifier))
    }
}

impl RoFormerHead for QuestionAnswerer<RoFormerEncoder> {
    fn load(vb: VarBuilder<'_>, config: &RoFormerConfig, class: &'static str) -> Result<Self> {
        require_two_labels("roformer", class, config.labels.num_labels())?;
        Self::with_qa_outputs(RoFormerEncoder::new(vb.pp("roformer"), config)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the RoFormer registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = RoFormerEncoder;
    pub type TextEncoding = RoFormerEncoder;
    pub type CausalLm = RoFormerLm;
    pub type MaskedLm = RoFormerLm;
    pub type SequenceClassification = RoFormerSequenceClassifier;
    pub type MultipleChoice = RoFormerMultipleChoice;
    pub type TokenClassification = TokenClassifier<RoFormerEncoder>;
    pub type QuestionAnswering = QuestionAnswerer<RoFormerEncoder>;

    /// Load the head `H` as `class`.
    pub fn load<H: RoFormerHead>(
        vb: VarBuilder<'_>,
        config: &RoFormerConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, config, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: RoFormerConfig, prefix: "roformer";
    base: RoFormerModel;
    text_encoding: RoFormerTextEncoding as "RoFormerModel";
    causal_lm: RoFormerForCausalLM;
    masked_lm: RoFormerForMaskedLM;
    /// It has `num_labels` outputs (`len(id2label)`, else `num_labels`, else 2).
    sequence_classification: RoFormerForSequenceClassification;
    multiple_choice: RoFormerForMultipleChoice;
    token_classification: RoFormerForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: RoFormerForQuestionAnswering;
}
