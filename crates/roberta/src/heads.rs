//! The heads of every RoBERTa-like model type, which `autocandle_core::register_heads!`
//! (`family: crate`) turns into registered types: RoBERTa and XLM-RoBERTa are the same
//! network under two config classes and two sets of class names.
//!
//! The classification, multiple choice, token classification and question answering heads
//! are `autocandle_core::heads`' generic ones over [`RobertaEncoder`]; the sequence classifier
//! is `RobertaClassificationHead` (`classifier`: dense, tanh, `out_proj` on the first token,
//! no pooler), the multiple choice head scores the pooled output (`roberta.pooler`).

use autocandle_core::heads::{
    require_two_labels, Classifier, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};
use autocandle_core::nn::linear;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use autocandle_core::{
    BaseModelOutput, CausalLmOutput, ForCausalLm, ForMaskedLm, ForTextEncoding, MaskedLmOutput, Model, ModelInputs,
    PreTrainedModel, Result,
};

use crate::config::{RobertaLikeConfig, RobertaSpec};
use crate::model::{RobertaEncoder, RobertaLmHead};

/// The encoder with its language modelling head (`lm_head`: dense, GELU, LayerNorm, decoder
/// tied to the word embeddings): `RobertaForMaskedLM`, and `RobertaForCausalLM`, whose
/// attention is causal when the config has `is_decoder` (as in `transformers`, bidirectional
/// otherwise; generation runs the whole sequence at every step, without a KV cache).
/// `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct RobertaLm {
    roberta: RobertaEncoder,
    lm_head: RobertaLmHead,
}

impl RobertaLm {
    fn logits(&self, inputs: &ModelInputs) -> Result<candle_core::Tensor> {
        self.lm_head.forward(&self.roberta.forward(inputs)?.last_hidden_state)
    }
}

impl PreTrainedModel for RobertaLm {
    fn device(&self) -> &Device {
        self.roberta.device()
    }

    fn dtype(&self) -> DType {
        self.roberta.dtype()
    }
}

impl ForMaskedLm for RobertaLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.logits(inputs)?))
    }
}

impl ForCausalLm for RobertaLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.logits(inputs)?))
    }

    fn max_positions(&self) -> Option<usize> {
        // Generation passes `position_ids` (0, 1, ... as `transformers` does), so every row
        // of the position table is usable.
        Some(self.roberta.max_positions())
    }
}

impl Model for RobertaEncoder {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        RobertaEncoder::forward(self, inputs)
    }
}

impl ForTextEncoding for RobertaEncoder {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        RobertaEncoder::forward(self, inputs)
    }
}

/// A head built from a [`RobertaSpec`]; `class` is the `transformers` class it is loaded as.
pub trait RobertaHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, class: &'static str) -> Result<Self>;
}

impl RobertaHead for RobertaEncoder {
    /// The base model: `pooler_output` (dense and tanh on the first token) is there when the
    /// weights hold `pooler.dense` (`transformers` would draw a random pooler otherwise).
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, _class: &'static str) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.dense.weight");
        RobertaEncoder::new(vb, spec, add_pooling_layer)
    }
}

impl RobertaHead for RobertaLm {
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, _class: &'static str) -> Result<Self> {
        let roberta = RobertaEncoder::new(vb.pp(spec.prefix), spec, false)?;
        let lm_head = RobertaLmHead::load(vb.pp("lm_head"), spec, roberta.word_embeddings())?;
        Ok(Self { roberta, lm_head })
    }
}

impl RobertaHead for SequenceClassifier<RobertaEncoder> {
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, _class: &'static str) -> Result<Self> {
        let (hidden, num_labels) = (spec.bert.hidden_size, spec.bert.labels.num_labels());
        let roberta = RobertaEncoder::new(vb.pp(spec.prefix), spec, false)?;
        let classifier = Classifier::dense_tanh(vb.pp("classifier"), hidden, num_labels)?;
        Ok(Self::new(roberta, Pooling::FirstToken, classifier))
    }
}

impl RobertaHead for MultipleChoice<RobertaEncoder> {
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, _class: &'static str) -> Result<Self> {
        let roberta = RobertaEncoder::new(vb.pp(spec.prefix), spec, true)?;
        let classifier = linear(spec.bert.hidden_size, 1, vb.pp("classifier"))?;
        Ok(Self::new(roberta, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl RobertaHead for TokenClassifier<RobertaEncoder> {
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, _class: &'static str) -> Result<Self> {
        let roberta = RobertaEncoder::new(vb.pp(spec.prefix), spec, false)?;
        let classifier = linear(spec.bert.hidden_size, spec.bert.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(roberta, classifier))
    }
}

impl RobertaHead for QuestionAnswerer<RobertaEncoder> {
    fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, class: &'static str) -> Result<Self> {
        require_two_labels(spec.model_type, class, spec.bert.labels.num_labels())?;
        Self::with_qa_outputs(RobertaEncoder::new(vb.pp(spec.prefix), spec, false)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the RoBERTa-like registered types
/// from. Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = RobertaEncoder;
    pub type TextEncoding = RobertaEncoder;
    pub type CausalLm = RobertaLm;
    pub type MaskedLm = RobertaLm;
    pub type SequenceClassification = SequenceClassifier<RobertaEncoder>;
    pub type MultipleChoice = super::MultipleChoice<RobertaEncoder>;
    pub type TokenClassification = TokenClassifier<RobertaEncoder>;
    pub type QuestionAnswering = QuestionAnswerer<RobertaEncoder>;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: RobertaHead, C: RobertaLikeConfig>(
        vb: VarBuilder<'_>,
        config: &C,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, &RobertaSpec::new(config)?.with_prefix(prefix), class)
    }
}
