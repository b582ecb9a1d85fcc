//! `RobertaConfig` and `XLMRobertaConfig`, field for field as `transformers`'
//! `configuration_roberta.RobertaConfig` and `configuration_xlm_roberta.XLMRobertaConfig`
//! (5.23): the same fields, with different defaults for `vocab_size` only.

use autocandle_bert::{BertConfig, BertSpec, BertVariant};
use autocandle_core::{Error, RegisteredConfig, Result};

pub use autocandle_core::TokenIds;

/// What [`roberta_like_config!`](crate::roberta_like_config) names. Not public API.
#[doc(hidden)]
pub mod __config {
    pub use autocandle_bert::BertConfig;
    pub use autocandle_core::{Activation, AutoRegister, LabelConfig};
    pub use serde::{Deserialize, Serialize};
}

/// What the RoBERTa network needs of a config: implemented by [`RobertaConfig`] and
/// [`XLMRobertaConfig`], whose fields are BERT's with other defaults.
pub trait RobertaLikeConfig: RegisteredConfig + Clone {
    /// The BERT config with the same values, which builds the encoder.
    fn bert_config(&self) -> BertConfig;
}

/// Define a config struct with the fields of `RobertaConfig` (BERT's), registered for
/// `model_type`, with the `transformers` defaults of `RobertaConfig` but the `field = value`
/// overrides given, and its [`RobertaLikeConfig`] impl: the config class of every model type
/// whose `configuration_*.py` declares exactly RoBERTa's fields (CamemBERT, Data2VecText,
/// XLM-RoBERTa-XL, ...).
///
/// ```text
/// autocandle_roberta::roberta_like_config! {
///     /// Docs of the struct.
///     CamembertConfig, model_type = "camembert", vocab_size = 30522
/// }
/// ```
///
/// The calling crate depends on `serde` and `autocandle-core` (the derives' generated code
/// names them).
#[macro_export]
macro_rules! roberta_like_config {
    (
        $(#[$meta:meta])*
        $name:ident, model_type = $model_type:literal $(, $field:ident = $value:expr)* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, PartialEq, $crate::__config::Serialize, $crate::__config::Deserialize,
            $crate::__config::AutoRegister,
        )]
        #[auto(config, model_type = $model_type)]
        #[serde(default)]
        pub struct $name {
            /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
            pub vocab_size: usize,
            /// Width of the hidden states, `[batch, seq, hidden_size]`.
            pub hidden_size: usize,
            /// Number of transformer blocks.
            pub num_hidden_layers: usize,
            /// Number of attention heads in each block (query heads where keys and values have fewer).
            pub num_attention_heads: usize,
            /// Width of the feed-forward (MLP) layer inside each block.
            pub intermediate_size: usize,
            /// Activation of the feed-forward layers (the LM head always uses exact GELU).
            pub hidden_act: $crate::__config::Activation,
            /// Training only: dropout is a no-op here.
            pub hidden_dropout_prob: f64,
            /// Training only: dropout is a no-op here.
            pub attention_probs_dropout_prob: f64,
            /// The size of the position table. Positions start after `pad_token_id`
            /// (`pad_token_id + 1` for the first token), so a sequence may hold
            /// `max_position_embeddings - pad_token_id - 1` tokens (514 positions give 512).
            pub max_position_embeddings: usize,
            /// Number of token types (segment ids in `token_type_ids`).
            pub type_vocab_size: usize,
            /// Standard deviation of the initialisation in `transformers`; unused at inference.
            pub initializer_range: f64,
            /// Epsilon added to the variance in every LayerNorm.
            pub layer_norm_eps: f64,
            /// The padding token; positions are counted from it (`padding_idx`), and tokens
            /// equal to it get it as their position. Needed unless `position_ids` are given.
            pub pad_token_id: Option<i64>,
            /// Id of the beginning-of-sequence token, if any.
            pub bos_token_id: Option<i64>,
            /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
            pub eos_token_id: Option<$crate::TokenIds>,
            /// Only `"absolute"` is supported, as for BERT (older configs still hold the field;
            /// `transformers` 5.23 no longer reads it).
            pub position_embedding_type: String,
            /// Generation only; autocandle keeps no KV cache for RoBERTa.
            pub use_cache: bool,
            /// Training only: dropout is a no-op here.
            pub classifier_dropout: Option<f64>,
            /// Causal self-attention (for the causal LM head).
            pub is_decoder: bool,
            /// Cross-attention layers for an encoder-decoder; they only act on
            /// `encoder_hidden_states`, which autocandle does not take, so they are not loaded.
            pub add_cross_attention: bool,
            /// The LM decoder shares the word embedding matrix.
            pub tie_word_embeddings: bool,
            /// `id2label`, `label2id`, `num_labels`, `problem_type`.
            #[serde(flatten)]
            pub labels: $crate::__config::LabelConfig,
        }

        impl Default for $name {
            #[doc = concat!("`", stringify!($name), "()` in `transformers`.")]
            fn default() -> Self {
                #[allow(unused_mut)]
                let mut config = Self {
                    vocab_size: 50265,
                    hidden_size: 768,
                    num_hidden_layers: 12,
                    num_attention_heads: 12,
                    intermediate_size: 3072,
                    hidden_act: $crate::__config::Activation::Gelu,
                    hidden_dropout_prob: 0.1,
                    attention_probs_dropout_prob: 0.1,
                    max_position_embeddings: 512,
                    type_vocab_size: 2,
                    initializer_range: 0.02,
                    layer_norm_eps: 1e-12,
                    pad_token_id: Some(1),
                    bos_token_id: Some(0),
                    eos_token_id: Some($crate::TokenIds::One(2)),
                    position_embedding_type: "absolute".to_owned(),
                    use_cache: true,
                    classifier_dropout: None,
                    is_decoder: false,
                    add_cross_attention: false,
                    tie_word_embeddings: true,
                    labels: $crate::__config::LabelConfig::default(),
                };
                $( config.$field = $value; )*
                config
            }
        }

        impl $crate::RobertaLikeConfig for $name {
            fn bert_config(&self) -> $crate::__config::BertConfig {
                $crate::__config::BertConfig {
                    vocab_size: self.vocab_size,
                    hidden_size: self.hidden_size,
                    num_hidden_layers: self.num_hidden_layers,
                    num_attention_heads: self.num_attention_heads,
                    intermediate_size: self.intermediate_size,
                    hidden_act: self.hidden_act,
                    hidden_dropout_prob: self.hidden_dropout_prob,
                    attention_probs_dropout_prob: self.attention_probs_dropout_prob,
                    max_position_embeddings: self.max_position_embeddings,
                    type_vocab_size: self.type_vocab_size,
                    initializer_range: self.initializer_range,
                    layer_norm_eps: self.layer_norm_eps,
                    pad_token_id: self.pad_token_id,
                    position_embedding_type: self.position_embedding_type.clone(),
                    use_cache: self.use_cache,
                    classifier_dropout: self.classifier_dropout,
                    is_decoder: self.is_decoder,
                    add_cross_attention: self.add_cross_attention,
                    bos_token_id: self.bos_token_id,
                    eos_token_id: self.eos_token_id.clone(),
                    tie_word_embeddings: self.tie_word_embeddings,
                    labels: self.labels.clone(),
                }
            }
        }
    };
}

roberta_like_config! {
    /// The config of a RoBERTa model (`RobertaConfig`), with the `transformers` defaults.
    ///
    /// Fields `config.json` may hold that `RobertaConfig` does not declare are ignored.
    RobertaConfig, model_type = "roberta",
    vocab_size = 50265
}

roberta_like_config! {
    /// The config of an XLM-RoBERTa model (`XLMRobertaConfig`), with the `transformers`
    /// defaults: those of [`RobertaConfig`] but a 30522-token vocabulary.
    ///
    /// Fields `config.json` may hold that `XLMRobertaConfig` does not declare are ignored.
    XLMRobertaConfig, model_type = "xlm-roberta",
    vocab_size = 30522
}

/// A checked RoBERTa config, what the network is built from.
#[derive(Debug, Clone)]
pub struct RobertaSpec {
    pub(crate) bert: BertConfig,
    /// `pad_token_id`, checked to be a row of both embedding tables.
    pub(crate) padding_idx: Option<u32>,
    pub(crate) model_type: &'static str,
    /// The base model's weight prefix in a head's checkpoint (`roberta`, `data2vec_text`).
    pub(crate) prefix: &'static str,
    /// How the network differs from BERT's (XLM-RoBERTa-XL's pre-LayerNorm layers).
    pub(crate) variant: BertVariant,
}

impl RobertaSpec {
    /// Check `config` (as BERT's, and `pad_token_id`); the heads find the base model under
    /// `roberta`.
    pub fn new<C: RobertaLikeConfig>(config: &C) -> Result<Self> {
        let bert = config.bert_config();
        let model_type = C::MODEL_TYPE;
        bert.validate_as(model_type)?;
        let padding_idx = match bert.pad_token_id {
            None => None,
            Some(pad) => {
                let rows = bert.vocab_size.min(bert.max_position_embeddings);
                match u32::try_from(pad).ok().filter(|p| (*p as usize) < rows) {
                    Some(p) => Some(p),
                    None => {
                        return Err(Error::config(
                            model_type,
                            format!(
                                "`pad_token_id` ({pad}) must be a row of the word and position embeddings, \
                                 below `vocab_size` ({}) and `max_position_embeddings` ({})",
                                bert.vocab_size, bert.max_position_embeddings
                            ),
                        ))
                    }
                }
            }
        };
        Ok(Self { bert, padding_idx, model_type, prefix: "roberta", variant: BertVariant::default() })
    }

    /// The same spec, with the heads finding the base model under `prefix` (the
    /// `base_model_prefix` of the `transformers` class).
    pub fn with_prefix(self, prefix: &'static str) -> Self {
        Self { prefix, ..self }
    }

    /// The same spec with the network of `variant` (BERT's by default).
    pub fn with_variant(self, variant: BertVariant) -> Self {
        Self { variant, ..self }
    }

    /// The spec of the BERT network under the encoder.
    pub(crate) fn bert_spec(&self) -> Result<BertSpec> {
        BertSpec::for_model_type(&self.bert, self.model_type, self.variant, self.prefix)
    }

    /// The BERT config the encoder is built from.
    pub fn bert(&self) -> &BertConfig {
        &self.bert
    }

    /// The checked `pad_token_id`, from which positions are counted.
    pub fn padding_idx(&self) -> Option<u32> {
        self.padding_idx
    }

    /// The model type the config was registered for (`roberta`, `camembert`, ...).
    pub fn model_type(&self) -> &'static str {
        self.model_type
    }

    /// The base model's weight prefix in a head's checkpoint.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }
}
