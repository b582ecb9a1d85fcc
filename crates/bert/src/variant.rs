//! The members of the BERT family that differ from BERT in a few switches
//! ([`BertVariant`]): pre-LayerNorm layers with a final LayerNorm (Megatron-BERT,
//! XLM-RoBERTa-XL), no LayerNorm after the embeddings, ERNIE's task type embeddings; and
//! [`BertSpec`], a checked config with its variant and weight prefix, what the heads load from.

use autocandle_core::nn::{linear, Linear};
use candle_core::{Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{Activation, Result};

use crate::config::BertConfig;
use crate::model::BertSelfAttention;

/// The weight names of a pre-LayerNorm layer stack: the norms of a layer under
/// `encoder.layer.N`, the final norm under the base model's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreNormNames {
    /// The LayerNorm before the self-attention: `attention.ln` (Megatron-BERT),
    /// `attention.self_attn_layer_norm` (XLM-RoBERTa-XL), `attention.LayerNorm`
    /// (RoBERTa-PreLayerNorm).
    pub attention_norm: &'static str,
    /// The LayerNorm before the feed-forward block: `ln` (Megatron-BERT), `LayerNorm`
    /// (XLM-RoBERTa-XL), `intermediate.LayerNorm` (RoBERTa-PreLayerNorm).
    pub ffn_norm: &'static str,
    /// The LayerNorm after the last layer, from the base model's root: `encoder.ln`
    /// (Megatron-BERT), `encoder.LayerNorm` (XLM-RoBERTa-XL), `LayerNorm`
    /// (RoBERTa-PreLayerNorm).
    pub final_norm: &'static str,
}

/// How a network of the BERT family differs from BERT's; [`Default`] is BERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertVariant {
    /// Pre-LayerNorm layers (`x + attention(norm(x))`, then `x + mlp(norm(x))`, and a final
    /// LayerNorm) under these names; `None` is BERT's post-LayerNorm layers.
    pub pre_norm: Option<PreNormNames>,
    /// A LayerNorm after the embeddings (`embeddings.LayerNorm`), as BERT; Megatron-BERT and
    /// XLM-RoBERTa-XL have none.
    pub embedding_norm: bool,
    /// ERNIE's `use_task_id`: the rows of `embeddings.task_type_embeddings`. Without
    /// `task_type_ids` (autocandle takes none) every token is of task type 0, so row 0 is
    /// added to every embedding before the LayerNorm, as `transformers` does.
    pub task_type_vocab_size: Option<usize>,
    /// Token type embeddings (`embeddings.token_type_embeddings`), as BERT; BertGeneration
    /// has none (and ignores `token_type_ids`).
    pub token_types: bool,
}

impl Default for BertVariant {
    /// BERT's network.
    fn default() -> Self {
        Self { pre_norm: None, embedding_norm: true, task_type_vocab_size: None, token_types: true }
    }
}

impl BertVariant {
    /// Megatron-BERT's network: pre-LayerNorm layers (`attention.ln`, `ln`, final
    /// `encoder.ln`), no LayerNorm after the embeddings.
    pub fn megatron() -> Self {
        Self {
            pre_norm: Some(PreNormNames { attention_norm: "attention.ln", ffn_norm: "ln", final_norm: "encoder.ln" }),
            embedding_norm: false,
            task_type_vocab_size: None,
            token_types: true,
        }
    }

    /// XLM-RoBERTa-XL's network: pre-LayerNorm layers (`attention.self_attn_layer_norm`,
    /// `LayerNorm`, final `encoder.LayerNorm`), no LayerNorm after the embeddings.
    pub fn xlm_roberta_xl() -> Self {
        Self {
            pre_norm: Some(PreNormNames {
                attention_norm: "attention.self_attn_layer_norm",
                ffn_norm: "LayerNorm",
                final_norm: "encoder.LayerNorm",
            }),
            embedding_norm: false,
            task_type_vocab_size: None,
            token_types: true,
        }
    }

    /// BertGeneration's network: BERT's without token type embeddings.
    pub fn bert_generation() -> Self {
        Self { token_types: false, ..Self::default() }
    }

    /// RoBERTa-PreLayerNorm's network: the embeddings' LayerNorm, pre-LayerNorm layers
    /// (`attention.LayerNorm`, `intermediate.LayerNorm`), a final `LayerNorm` at the base
    /// model's root (before the pooler).
    pub fn roberta_prelayernorm() -> Self {
        Self {
            pre_norm: Some(PreNormNames {
                attention_norm: "attention.LayerNorm",
                ffn_norm: "intermediate.LayerNorm",
                final_norm: "LayerNorm",
            }),
            embedding_norm: true,
            task_type_vocab_size: None,
            token_types: true,
        }
    }
}

/// A checked BERT config with the variant of the network and the weight prefix of the base
/// model in a head's checkpoint: what every BERT head loads from.
#[derive(Debug, Clone)]
pub struct BertSpec {
    pub(crate) config: BertConfig,
    pub(crate) variant: BertVariant,
    pub(crate) prefix: &'static str,
    pub(crate) model_type: &'static str,
}

impl BertSpec {
    /// BERT itself (base model under `bert`); checks `config`.
    pub fn new(config: &BertConfig) -> Result<Self> {
        Self::for_model_type(config, "bert", BertVariant::default(), "bert")
    }

    /// Another model type on BERT's network: errors name `model_type`; the heads find the
    /// base model under `prefix`.
    pub fn for_model_type(
        config: &BertConfig,
        model_type: &'static str,
        variant: BertVariant,
        prefix: &'static str,
    ) -> Result<Self> {
        config.validate_as(model_type)?;
        if variant.task_type_vocab_size == Some(0) {
            return Err(autocandle_core::Error::config(
                model_type,
                "`task_type_vocab_size` must be at least 1 with `use_task_id`, got 0",
            ));
        }
        Ok(Self { config: config.clone(), variant, prefix, model_type })
    }

    /// The config.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The variant of the network.
    pub fn variant(&self) -> &BertVariant {
        &self.variant
    }

    /// The base model's weight prefix in a head's checkpoint.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The model type errors name.
    pub fn model_type(&self) -> &'static str {
        self.model_type
    }
}

/// One pre-LayerNorm layer: `h = x + output(attention(attention_norm(x)))`, then
/// `h + output(activation(intermediate(ffn_norm(h))))`.
#[derive(Debug)]
struct PreNormLayer {
    attention_norm: LayerNorm,
    attention: BertSelfAttention,
    attention_output: Linear,
    ffn_norm: LayerNorm,
    intermediate: Linear,
    activation: Activation,
    output: Linear,
}

impl PreNormLayer {
    fn load(vb: VarBuilder<'_>, cfg: &BertConfig, names: &PreNormNames) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        Ok(Self {
            attention_norm: layer_norm(h, eps, vb.pp(names.attention_norm))?,
            attention: BertSelfAttention::load(vb.pp("attention.self"), cfg)?,
            attention_output: linear(h, h, vb.pp("attention.output.dense"))?,
            ffn_norm: layer_norm(h, eps, vb.pp(names.ffn_norm))?,
            intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            activation: cfg.hidden_act,
            output: linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let attended = self.attention.forward(&self.attention_norm.forward(x)?, mask)?;
        let h = (self.attention_output.forward(&attended)? + x)?;
        let inner = self.activation.forward(&self.intermediate.forward(&self.ffn_norm.forward(&h)?)?)?;
        Ok((self.output.forward(&inner)? + h)?)
    }
}

/// The pre-LayerNorm layer stack and its final LayerNorm.
#[derive(Debug)]
pub(crate) struct PreNormEncoder {
    layers: Vec<PreNormLayer>,
    final_norm: LayerNorm,
}

impl PreNormEncoder {
    /// `vb` is the base model's root.
    pub(crate) fn load(vb: VarBuilder<'_>, cfg: &BertConfig, names: &PreNormNames) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| PreNormLayer::load(vb.pp(format!("encoder.layer.{i}")), cfg, names))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp(names.final_norm))?;
        Ok(Self { layers, final_norm })
    }

    /// `mask` additive, broadcastable to `[B, heads, T, T]`.
    pub(crate) fn forward(&self, hidden: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut hidden = hidden.clone();
        for layer in &self.layers {
            hidden = layer.forward(&hidden, mask)?;
        }
        Ok(self.final_norm.forward(&hidden)?)
    }
}
