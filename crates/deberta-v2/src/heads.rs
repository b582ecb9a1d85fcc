//! The heads of DeBERTa and DeBERTa-v2, which `autocandle_core::register_heads!` turns into
//! registered types (`family: crate` here, `family: autocandle_deberta_v2`'s re-export in the
//! `deberta` crate).
//!
//! The sequence classification and multiple choice heads are `autocandle_core::heads`' generic
//! ones over [`DebertaModel`] with its `ContextPooler` (`pooler`: the first token, `dense`,
//! `pooler_hidden_act`) and a linear `classifier`; token classification and question answering
//! are the generic ones on every token.

use autocandle_core::heads::{
    require_two_labels, Classifier, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};
use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, BaseModelOutput, ForMaskedLm, ForTextEncoding, MaskedLmOutput, Model, ModelInputs, PreTrainedModel,
    Result,
};

use crate::config::DebertaSpec;
use crate::model::{ContextPooler, DebertaModel};

/// The masked LM head of either form.
#[derive(Debug)]
enum LmHead {
    /// `cls.predictions` (`legacy`): `transform.dense` (hidden -> embedding size), the
    /// activation, `transform.LayerNorm`, then `decoder` (tied to the word embeddings, its bias
    /// to `cls.predictions.bias`).
    Legacy { dense: Linear, activation: Activation, layer_norm: LayerNorm, decoder: Linear },
    /// `lm_predictions.lm_head`: `dense`, the activation, `LayerNorm`, then the product with
    /// the word embeddings plus `bias`.
    Enhanced { dense: Linear, activation: Activation, layer_norm: LayerNorm, decoder: Linear },
}

impl LmHead {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, word_embeddings: &Tensor) -> Result<Self> {
        let (h, e) = (spec.hidden_size, spec.embedding_size);
        if spec.legacy {
            let p = vb.pp("cls.predictions");
            Ok(Self::Legacy {
                dense: linear(h, e, p.pp("transform.dense"))?,
                activation: spec.hidden_act,
                layer_norm: layer_norm(e, spec.layer_norm_eps, p.pp("transform.LayerNorm"))?,
                decoder: autocandle_bert::lm_decoder(p, word_embeddings, spec.tie_word_embeddings)?,
            })
        } else {
            spec.check_lm_head()?;
            let p = vb.pp("lm_predictions.lm_head");
            let bias = p.get(spec.vocab_size, "bias")?;
            Ok(Self::Enhanced {
                dense: linear(h, h, p.pp("dense"))?,
                activation: spec.hidden_act,
                layer_norm: layer_norm(h, spec.layer_norm_eps, p.pp("LayerNorm"))?,
                decoder: Linear::new(word_embeddings.clone(), Some(bias)),
            })
        }
    }

    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let (Self::Legacy { dense, activation, layer_norm, decoder }
        | Self::Enhanced { dense, activation, layer_norm, decoder }) = self;
        let x = layer_norm.forward(&activation.forward(&dense.forward(hidden)?)?)?;
        Ok(decoder.forward(&x)?)
    }
}

/// The encoder with its masked LM head (`DebertaV2ForMaskedLM`, `DebertaForMaskedLM`):
/// `cls.predictions` when the config is `legacy` (the default), else
/// `lm_predictions.lm_head`. `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct DebertaLm {
    deberta: DebertaModel,
    head: LmHead,
}

impl PreTrainedModel for DebertaLm {
    fn device(&self) -> &Device {
        self.deberta.device()
    }

    fn dtype(&self) -> DType {
        self.deberta.dtype()
    }
}

impl ForMaskedLm for DebertaLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let hidden = self.deberta.run(inputs)?.last_hidden_state;
        Ok(MaskedLmOutput::new(self.head.forward(&hidden)?))
    }
}

impl Model for DebertaModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}

impl ForTextEncoding for DebertaModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}

/// A head built from a [`DebertaSpec`]; `class` is the `transformers` class it is loaded as.
pub trait DebertaHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, class: &'static str) -> Result<Self>;
}

impl DebertaHead for DebertaModel {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, _class: &'static str) -> Result<Self> {
        DebertaModel::new(vb, spec)
    }
}

impl DebertaHead for DebertaLm {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, _class: &'static str) -> Result<Self> {
        let deberta = DebertaModel::new(vb.pp("deberta"), spec)?;
        let head = LmHead::load(vb, spec, deberta.word_embeddings())?;
        Ok(Self { deberta, head })
    }
}

/// The encoder with its `ContextPooler`, and a linear `classifier` with `outputs` outputs.
fn pooled_classifier(vb: &VarBuilder<'_>, spec: &DebertaSpec, outputs: usize) -> Result<(DebertaModel, Classifier)> {
    let deberta = DebertaModel::new(vb.pp("deberta"), spec)?.with_pooler(ContextPooler::load(vb.pp("pooler"), spec)?);
    let classifier = linear(spec.hidden_size, outputs, vb.pp("classifier"))?;
    Ok((deberta, Classifier::Linear(classifier)))
}

impl DebertaHead for SequenceClassifier<DebertaModel> {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, _class: &'static str) -> Result<Self> {
        let (deberta, classifier) = pooled_classifier(&vb, spec, spec.labels.num_labels())?;
        Ok(Self::new(deberta, Pooling::Pooler, classifier))
    }
}

impl DebertaHead for MultipleChoice<DebertaModel> {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, _class: &'static str) -> Result<Self> {
        let (deberta, classifier) = pooled_classifier(&vb, spec, 1)?;
        Ok(Self::new(deberta, Pooling::Pooler, classifier))
    }
}

impl DebertaHead for TokenClassifier<DebertaModel> {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, _class: &'static str) -> Result<Self> {
        let deberta = DebertaModel::new(vb.pp("deberta"), spec)?;
        let classifier = linear(spec.hidden_size, spec.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(deberta, classifier))
    }
}

impl DebertaHead for QuestionAnswerer<DebertaModel> {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, class: &'static str) -> Result<Self> {
        require_two_labels(spec.model_type, class, spec.labels.num_labels())?;
        Self::with_qa_outputs(DebertaModel::new(vb.pp("deberta"), spec)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the DeBERTa-v2 registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;
    use crate::config::DebertaV2Config;

    pub type Base = DebertaModel;
    pub type TextEncoding = DebertaModel;
    pub type MaskedLm = DebertaLm;
    pub type SequenceClassification = SequenceClassifier<DebertaModel>;
    pub type MultipleChoice = super::MultipleChoice<DebertaModel>;
    pub type TokenClassification = TokenClassifier<DebertaModel>;
    pub type QuestionAnswering = QuestionAnswerer<DebertaModel>;

    /// Check `config` and load the head `H` as `class`.
    pub fn load<H: DebertaHead>(
        vb: VarBuilder<'_>,
        config: &DebertaV2Config,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, &DebertaSpec::from_v2(config)?, class)
    }
}
