//! `BartConfig`, field for field as `transformers`' `configuration_bart.BartConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `BartConfig.attribute_map`: the common names `transformers` accepts for BART's own.
    attribute_map: [
        ("num_attention_heads", "encoder_attention_heads"),
        ("hidden_size", "d_model"),
        ("num_hidden_layers", "encoder_layers"),
    ];
/// The config of a BART model (`BartConfig`), with the `transformers` defaults (those of
/// `facebook/bart-large`).
///
/// `transformers`' `attribute_map` names are accepted when reading, and win over the BART
/// names as they do there: `hidden_size` for `d_model`, `num_attention_heads` for
/// `encoder_attention_heads` and `num_hidden_layers` for `encoder_layers`. Fields
/// `config.json` may hold that `BartConfig` does not declare (`forced_bos_token_id`,
/// `no_repeat_ngram_size`, ... of older configs: generation settings) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "bart")]
pub struct BartConfig {
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Learned positions of the encoder and of the decoder (each stores 2 more rows).
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "defaults::layers")]
    pub encoder_layers: usize,
    #[serde(default = "defaults::ffn_dim")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "defaults::attention_heads")]
    pub encoder_attention_heads: usize,
    #[serde(default = "defaults::layers")]
    pub decoder_layers: usize,
    #[serde(default = "defaults::ffn_dim")]
    pub decoder_ffn_dim: usize,
    #[serde(default = "defaults::attention_heads")]
    pub decoder_attention_heads: usize,
    /// Training only: layer drop is a no-op here.
    #[serde(default)]
    pub encoder_layerdrop: f64,
    /// Training only: layer drop is a no-op here.
    #[serde(default)]
    pub decoder_layerdrop: f64,
    /// Activation of the feed-forward layers.
    #[serde(default = "defaults::activation_function")]
    pub activation_function: Activation,
    /// The hidden size (`hidden_size`).
    #[serde(default = "defaults::d_model")]
    pub d_model: usize,
    /// Training only: dropout is a no-op here.
    #[serde(default = "defaults::dropout")]
    pub dropout: f64,
    /// Training only: dropout is a no-op here.
    #[serde(default)]
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    #[serde(default)]
    pub activation_dropout: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    #[serde(default = "defaults::init_std")]
    pub init_std: f64,
    /// Training only: dropout is a no-op here.
    #[serde(default)]
    pub classifier_dropout: f64,
    /// Multiply the token embeddings by `sqrt(d_model)`.
    #[serde(default)]
    pub scale_embedding: bool,
    /// Generation only: autocandle's cache is passed explicitly.
    #[serde(default = "defaults::yes")]
    pub use_cache: bool,
    /// Fills the decoder inputs that `shift_tokens_right` builds from `-100` labels; required
    /// when the decoder inputs are made from `input_ids`.
    #[serde(default = "defaults::pad_token_id")]
    pub pad_token_id: Option<i64>,
    #[serde(default = "defaults::bos_token_id")]
    pub bos_token_id: Option<i64>,
    /// The token whose (last) position `BartForSequenceClassification` pools.
    #[serde(default = "defaults::eos_token_id")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default = "defaults::yes")]
    pub is_encoder_decoder: bool,
    /// The first decoder token (generation, and `shift_tokens_right` of `input_ids`).
    #[serde(default = "defaults::eos_token_id_one")]
    pub decoder_start_token_id: Option<i64>,
    /// Generation only (read by `GenerationConfig`, not by the model).
    #[serde(default = "defaults::eos_token_id")]
    pub forced_eos_token_id: Option<TokenIds>,
    /// `BartForCausalLM` only, which autocandle does not implement; kept for round trips.
    #[serde(default)]
    pub is_decoder: bool,
    /// The encoder and decoder token embeddings and the LM head share `model.shared`.
    #[serde(default = "defaults::yes")]
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

mod defaults {
    use super::TokenIds;
    use autocandle_core::Activation;

    pub(super) fn vocab_size() -> usize {
        50265
    }
    pub(super) fn max_position_embeddings() -> usize {
        1024
    }
    pub(super) fn layers() -> usize {
        12
    }
    pub(super) fn ffn_dim() -> usize {
        4096
    }
    pub(super) fn attention_heads() -> usize {
        16
    }
    pub(super) fn activation_function() -> Activation {
        Activation::Gelu
    }
    pub(super) fn d_model() -> usize {
        1024
    }
    pub(super) fn dropout() -> f64 {
        0.1
    }
    pub(super) fn init_std() -> f64 {
        0.02
    }
    pub(super) fn pad_token_id() -> Option<i64> {
        Some(1)
    }
    pub(super) fn bos_token_id() -> Option<i64> {
        Some(0)
    }
    pub(super) fn eos_token_id_one() -> Option<i64> {
        Some(2)
    }
    pub(super) fn eos_token_id() -> Option<TokenIds> {
        Some(TokenIds::One(2))
    }
    pub(super) fn yes() -> bool {
        true
    }
}

impl Default for BartConfig {
    /// `BartConfig()` in `transformers`: the `facebook/bart-large` shape.
    fn default() -> Self {
        Self {
            vocab_size: defaults::vocab_size(),
            max_position_embeddings: defaults::max_position_embeddings(),
            encoder_layers: defaults::layers(),
            encoder_ffn_dim: defaults::ffn_dim(),
            encoder_attention_heads: defaults::attention_heads(),
            decoder_layers: defaults::layers(),
            decoder_ffn_dim: defaults::ffn_dim(),
            decoder_attention_heads: defaults::attention_heads(),
            encoder_layerdrop: 0.0,
            decoder_layerdrop: 0.0,
            activation_function: defaults::activation_function(),
            d_model: defaults::d_model(),
            dropout: defaults::dropout(),
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: defaults::init_std(),
            classifier_dropout: 0.0,
            scale_embedding: false,
            use_cache: true,
            pad_token_id: defaults::pad_token_id(),
            bos_token_id: defaults::bos_token_id(),
            eos_token_id: defaults::eos_token_id(),
            is_encoder_decoder: true,
            decoder_start_token_id: defaults::eos_token_id_one(),
            forced_eos_token_id: defaults::eos_token_id(),
            is_decoder: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl BartConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("bart", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("d_model", self.d_model),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        for (name, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if !self.d_model.is_multiple_of(heads) {
                return invalid(format!("`d_model` ({}) must be a multiple of `{name}` ({heads})", self.d_model));
            }
        }
        Ok(())
    }

    /// The number of labels of the classification head: `len(id2label)` when given, else
    /// `num_labels`, else 3 (`BartConfig`'s own default, not the usual 2).
    pub fn num_labels(&self) -> usize {
        match (&self.labels.id2label, self.labels.num_labels) {
            (Some(map), _) if !map.is_empty() => map.len(),
            (_, Some(n)) => n,
            _ => 3,
        }
    }

    /// The single `eos_token_id` that sequence classification pools at.
    pub(crate) fn single_eos_token_id(&self) -> Result<i64> {
        match &self.eos_token_id {
            Some(TokenIds::One(id)) => Ok(*id),
            Some(TokenIds::Many(ids)) if ids.len() == 1 => Ok(ids[0]),
            Some(TokenIds::Many(ids)) => Err(Error::config(
                "bart",
                format!(
                    "sequence classification pools at the `eos_token_id` of each row and needs one id, but the \
                     config lists {ids:?}"
                ),
            )),
            None => Err(Error::config(
                "bart",
                "sequence classification pools at the `eos_token_id` of each row, but the config has none",
            )),
        }
    }
}
