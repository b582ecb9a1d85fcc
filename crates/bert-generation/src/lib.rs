//! BertGeneration for autocandle, after `transformers`' `modeling_bert_generation` (5.25):
//! [`BertGenerationConfig`] with [`BertGenerationEncoder`] (`AutoModel`) and
//! [`BertGenerationDecoder`] (`AutoModelForCausalLM`).
//!
//! The network is BERT's (`autocandle-bert`) without token type embeddings
//! ([`BertVariant::bert_generation`](autocandle_bert::BertVariant); `token_type_ids` are
//! ignored) and without a pooler, under `bert.`; the decoder's head is `lm_head.decoder`
//! alone (no transform), tied to the word embeddings, its bias to `lm_head.bias`.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

use autocandle_bert::{lm_decoder, BertBase, BertConfig, BertHead, BertModel, BertSpec, BertVariant};
use autocandle_core::nn::Linear;
use autocandle_core::{
    Activation, AutoRegister, CausalLmOutput, ForCausalLm, LabelConfig, Model, ModelInputs, PreTrainedModel, Result,
    TokenIds,
};
use candle_core::{DType, Device, Module};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// The config of a BertGeneration model (`BertGenerationConfig`), field for field, with the
/// `transformers` defaults (those of `google/bert_for_seq_generation_L-24_bbc_encoder`).
///
/// Fields `config.json` may hold that `BertGenerationConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "bert-generation")]
#[serde(default)]
pub struct BertGenerationConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// The size of the position table.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Generation only; autocandle keeps no KV cache for BertGeneration.
    pub use_cache: bool,
    /// Causal self-attention (for `MegatronBertForCausalLM`).
    pub is_decoder: bool,
    /// Cross-attention layers for an encoder-decoder; they only act on `encoder_hidden_states`,
    /// which autocandle does not take, so their weights are not loaded.
    pub add_cross_attention: bool,
    /// The LM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for BertGenerationConfig {
    /// `BertGenerationConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50358,
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            intermediate_size: 4096,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            bos_token_id: Some(2),
            eos_token_id: Some(TokenIds::One(1)),
            use_cache: true,
            is_decoder: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl BertGenerationConfig {
    /// The BERT config with the same values, which builds the network.
    pub fn bert_config(&self) -> BertConfig {
        BertConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            // No token type embeddings (`BertVariant::bert_generation`); 1 passes the checks.
            type_vocab_size: 1,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            position_embedding_type: "absolute".to_owned(),
            use_cache: self.use_cache,
            classifier_dropout: None,
            is_decoder: self.is_decoder,
            add_cross_attention: self.add_cross_attention,
            bos_token_id: self.bos_token_id,
            eos_token_id: self.eos_token_id.clone(),
            tie_word_embeddings: self.tie_word_embeddings,
            labels: self.labels.clone(),
        }
    }
}

/// `BertGenerationDecoder`'s network: the encoder and `lm_head.decoder`; causal when the
/// config has `is_decoder` (generation runs the whole sequence at every step, without a KV
/// cache). `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct BertGenerationLm {
    bert: BertModel,
    decoder: Linear,
}

impl ForCausalLm for BertGenerationLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        let hidden = Model::forward(&self.bert, inputs)?.last_hidden_state;
        Ok(CausalLmOutput::new(self.decoder.forward(&hidden)?))
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.bert.config().max_position_embeddings)
    }
}

impl PreTrainedModel for BertGenerationLm {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.bert)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.bert)
    }
}

/// A head built from a [`BertSpec`] of BertGeneration; `class` is the `transformers` class.
pub trait BertGenerationHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`.
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, class: &'static str) -> Result<Self>;
}

impl BertGenerationHead for BertBase {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, class: &'static str) -> Result<Self> {
        <BertBase as BertHead>::load(vb, spec, class)
    }
}

impl BertGenerationHead for BertGenerationLm {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix()), spec, false)?;
        let decoder = lm_decoder(vb.pp("lm_head"), bert.word_embeddings(), spec.config().tie_word_embeddings)?;
        Ok(Self { bert, decoder })
    }
}

/// The heads `autocandle_core::register_heads!` builds the registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = BertBase;
    pub type CausalLm = BertGenerationLm;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: BertGenerationHead>(
        vb: VarBuilder<'_>,
        config: &BertGenerationConfig,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        let spec =
            BertSpec::for_model_type(&config.bert_config(), "bert-generation", BertVariant::bert_generation(), prefix)?;
        H::load(vb, &spec, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: BertGenerationConfig, prefix: "bert";
    base: BertGenerationEncoder;
    causal_lm: BertGenerationDecoder;
}

#[cfg(test)]
mod tests;
