//! The task heads every llama-like architecture shares: `XForCausalLM` ([`CausalLm`]) and
//! `modeling_layers.py`'s `GenericForSequenceClassification`, `GenericForTokenClassification`,
//! `GenericForQuestionAnswering` (`autocandle_core::heads`' generic heads over
//! [`DecoderModel`]), and the [`__heads`] module `autocandle_core::register_heads!` builds the
//! registered types from.
//!
//! Each takes the name its base model sits under (`model`, or `transformer` for the question
//! answering heads of Llama and Qwen, kept by `transformers` for backward compatibility).

use autocandle_core::heads::{self, same_values, Classifier, Encoder, Pooling};
use autocandle_core::nn::{linear_b, linear_no_bias, Embedding, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Init, VarBuilder};

use autocandle_core::{
    BaseModelOutput, CausalLmOutput, ForCausalLm, KvCache, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::layers::soft_cap;
use crate::model::DecoderModel;
use crate::spec::{DecoderConfig, DecoderSpec};

/// The decoder with its language-modelling head `lm_head` (`LlamaForCausalLM`), and Gemma-2's
/// final logit soft-capping.
///
/// Weight tying follows `transformers`' `tie_weights` at load: with `tie_word_embeddings`,
/// `lm_head` is `embed_tokens` (a checkpoint then usually has no `lm_head.weight`); when the
/// checkpoint holds both with different values they stay apart; when it holds only
/// `lm_head.weight`, the embeddings are tied to it instead.
#[derive(Debug, Clone)]
pub struct CausalLm {
    model: DecoderModel,
    lm_head: Linear,
    softcap: Option<f64>,
}

impl CausalLm {
    /// Load `model.*` (the base under `prefix`) and `lm_head` from `vb`.
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        let (vocab, hidden, bias) = (spec.vocab_size, spec.hidden_size, spec.options.lm_head_bias);
        let base_vb = vb.pp(prefix);
        let has_head = vb.contains_tensor("lm_head.weight");
        let (model, lm_head) = if spec.tie_word_embeddings {
            if !base_vb.contains_tensor("embed_tokens.weight") && has_head {
                let head = linear_b(hidden, vocab, bias, vb.pp("lm_head"))?;
                let embed = Embedding::tied_to(&head)?;
                (DecoderModel::load_with_embedding_layer(base_vb, spec, Some(embed))?, head)
            } else {
                let model = DecoderModel::load(base_vb, spec)?;
                let mut tied = Linear::tied_to(model.embed_tokens())?;
                if bias {
                    tied = with_bias(&tied, vb.pp("lm_head").get_with_hints(vocab, "bias", Init::Const(0.0))?)?;
                }
                let head = if has_head {
                    let own = linear_b(hidden, vocab, bias, vb.pp("lm_head"))?;
                    if same_layer_values(&own, &tied)? {
                        tied
                    } else {
                        own
                    }
                } else {
                    tied
                };
                (model, head)
            }
        } else {
            let model = DecoderModel::load(base_vb, spec)?;
            (model, linear_b(hidden, vocab, bias, vb.pp("lm_head"))?)
        };
        Ok(Self { model, lm_head, softcap: spec.options.final_logit_softcapping })
    }

    /// The decoder under the head.
    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// The language-modelling head (`lm_head`), float or quantized; the embedding's tensor
    /// itself when tied.
    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }

    /// The logits of hidden states `[batch, seq, hidden]`: `lm_head`, then the
    /// architecture's logit scaling and soft-capping.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let mut logits = self.lm_head.forward(hidden)?;
        let options = &self.model.spec().options;
        if let Some(scale) = options.logit_scale {
            logits = (logits * scale)?;
        }
        if let Some(s) = options.logits_scaling {
            logits = (logits / s)?;
        }
        soft_cap(&logits, self.softcap)
    }

    /// Logits `[batch, seq, vocab]` for every position (the last
    /// [`ModelInputs::logits_to_keep`] ones if set).
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.logits(&inputs.keep_for_logits(&self.model.forward(inputs)?)?)
    }

    /// Whether generation must drop the cache before growing the context from `past` to
    /// `total` positions: with [`DecoderOptions::longrope_cache_reset`](crate::DecoderOptions)
    /// and `longrope`, when `total` first exceeds `original_max_position_embeddings` (the
    /// cached keys were rotated with the short factors).
    pub fn reset_cache_at(&self, past: usize, total: usize) -> bool {
        let spec = self.model.spec();
        spec.options.longrope_cache_reset && spec.rope.long_context_threshold().is_some_and(|t| total > t && past <= t)
    }

    /// [`CausalLm::forward`] with `output_router_logits`: the logits, the router logits of
    /// every sparse layer (`[batch * seq, num_experts]` each) and, for a mixture-of-experts
    /// model, the load-balancing `aux_loss` over the rows `inputs.attention_mask` keeps
    /// (`MoeCausalLMOutputWithPast`).
    pub fn forward_with_router_logits(&self, inputs: &ModelInputs) -> Result<MoeCausalLmOutput> {
        let (hidden, router_logits) = self.model.forward_with_router_logits(inputs)?;
        let logits = self.logits(&inputs.keep_for_logits(&hidden)?)?;
        let aux_loss = match &self.model.spec().options.moe {
            Some(moe) if !router_logits.is_empty() => Some(crate::moe::load_balancing_loss(
                &router_logits,
                moe.num_experts,
                moe.num_experts_per_tok,
                inputs.attention_mask.as_ref(),
            )?),
            _ => None,
        };
        Ok(MoeCausalLmOutput { logits, router_logits, aux_loss })
    }

    /// Logits of `inputs_embeds` (see [`DecoderModel::forward_embeds`]; the last
    /// `inputs.logits_to_keep` positions if set), with `cache` when given.
    pub fn forward_embeds(
        &self,
        inputs_embeds: &Tensor,
        inputs: &ModelInputs,
        cache: Option<&mut KvCache>,
        extras: &crate::DecoderExtras,
    ) -> Result<Tensor> {
        let hidden = self.model.forward_embeds(inputs_embeds, inputs, cache, extras)?;
        self.logits(&inputs.keep_for_logits(&hidden)?)
    }

    /// Logits `[batch, new, vocab]` for the new tokens, with `cache`.
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<Tensor> {
        self.logits(&inputs.keep_for_logits(&self.model.forward_with_cache(inputs, cache)?)?)
    }
}

/// `layer` (float or quantized, e.g. tied to the embedding) with `bias` added.
pub(crate) fn with_bias(layer: &Linear, bias: Tensor) -> Result<Linear> {
    Ok(match layer.qtensor() {
        Some(q) => Linear::quantized(q.clone(), Some(bias), layer.dtype())?,
        None => Linear::new(layer.weight()?, Some(bias)),
    })
}

/// What [`CausalLm::forward_with_router_logits`] returns (`MoeCausalLMOutputWithPast` without
/// the cache).
#[derive(Debug, Clone)]
pub struct MoeCausalLmOutput {
    /// `[batch, seq, vocab]`.
    pub logits: Tensor,
    /// One `[batch * seq, num_experts]` tensor per sparse layer, in layer order.
    pub router_logits: Vec<Tensor>,
    /// The load-balancing loss (an f32 scalar), for a mixture-of-experts model.
    pub aux_loss: Option<Tensor>,
}

/// Whether two layers hold the same weight values: compared as floats, or as stored bytes
/// when both are quantized (then no float copy of a large head is made).
pub(crate) fn same_layer_values(a: &Linear, b: &Linear) -> Result<bool> {
    match (a.dense_weight(), b.dense_weight(), a.qtensor(), b.qtensor()) {
        (Some(x), Some(y), _, _) => same_values(x, y),
        (_, _, Some(x), Some(y)) => Ok(x.dtype() == y.dtype()
            && x.shape() == y.shape()
            && (std::sync::Arc::ptr_eq(x, y) || x.data()? == y.data()?)),
        _ => same_values(&a.weight()?, &b.weight()?),
    }
}

impl PreTrainedModel for CausalLm {
    fn device(&self) -> &Device {
        self.model.device()
    }

    fn dtype(&self) -> DType {
        self.model.dtype()
    }
}

impl ForCausalLm for CausalLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(CausalLm::forward(self, inputs)?))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(CausalLm::forward_with_cache(self, inputs, cache)?))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        self.model.max_positions()
    }

    fn reset_cache_at(&self, past: usize, total: usize) -> bool {
        CausalLm::reset_cache_at(self, past, total)
    }
}

impl PreTrainedModel for DecoderModel {
    fn device(&self) -> &Device {
        DecoderModel::device(self)
    }

    fn dtype(&self) -> DType {
        DecoderModel::dtype(self)
    }
}

impl Model for DecoderModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(DecoderModel::forward(self, inputs)?, None))
    }
}

impl Encoder for DecoderModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(self, inputs)
    }

    fn hidden_size(&self) -> usize {
        self.spec().hidden_size
    }
}

/// `GenericForSequenceClassification`: `score` (no bias) on the last token that is not
/// padding.
pub type SequenceClassifier = heads::SequenceClassifier<DecoderModel>;

/// `GenericForTokenClassification`: `score` (with bias unless `token_classification_bias` is
/// false) on every token.
pub type TokenClassifier = heads::TokenClassifier<DecoderModel>;

/// `GenericForQuestionAnswering`: `qa_outputs` (hidden -> 2, with bias) scores every token
/// as the start and the end of the answer.
pub type QuestionAnswerer = heads::QuestionAnswerer<DecoderModel>;

/// A head built from a [`DecoderSpec`], with its base model under `prefix`.
pub trait DecoderHead: Sized {
    /// Load the head from the checkpoint root `vb`, the decoder from `vb.pp(prefix)`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self>;
}

impl DecoderHead for DecoderModel {
    /// The base model itself: its weights are at the root of `vb` (`prefix` is not used).
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, _prefix: &str) -> Result<Self> {
        DecoderModel::load(vb, spec)
    }
}

impl DecoderHead for CausalLm {
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        CausalLm::load(vb, spec, prefix)
    }
}

impl DecoderHead for SequenceClassifier {
    /// The base under `prefix` and `score` (`num_labels` outputs, no bias).
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        let model = DecoderModel::load(vb.pp(prefix), spec)?;
        let score = linear_no_bias(spec.hidden_size, spec.num_labels, vb.pp("score"))?;
        Ok(Self::new(model, Pooling::LastNonPad { pad_token_id: spec.pad_token_id }, Classifier::Linear(score)))
    }
}

impl DecoderHead for TokenClassifier {
    /// The base under `prefix` and `score` (`num_labels` outputs).
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        let model = DecoderModel::load(vb.pp(prefix), spec)?;
        let bias = spec.options.token_classification_bias;
        Ok(Self::new(model, linear_b(spec.hidden_size, spec.num_labels, bias, vb.pp("score"))?))
    }
}

impl DecoderHead for QuestionAnswerer {
    /// The base under `prefix` and `qa_outputs`.
    fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        Self::with_qa_outputs(DecoderModel::load(vb.pp(prefix), spec)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds a llama-like architecture's registered
/// types from (`family: autocandle_decoder`). Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = DecoderModel;
    pub type CausalLm = super::CausalLm;
    pub type SequenceClassification = SequenceClassifier;
    pub type TokenClassification = TokenClassifier;
    pub type QuestionAnswering = QuestionAnswerer;

    /// Resolve `config` and load the head `H` (its base model under `prefix`).
    pub fn load<H: DecoderHead, C: DecoderConfig>(
        vb: VarBuilder<'_>,
        config: &C,
        prefix: &str,
        _class: &str,
    ) -> Result<H> {
        H::load(vb, &config.decoder_spec()?, prefix)
    }
}
