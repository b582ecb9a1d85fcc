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
#[serde(default)]
pub struct BartConfig {
    /// Number of tokens in the vocabulary: the rows of `model.shared`, `[vocab_size, d_model]`.
    pub vocab_size: usize,
    /// Learned positions of the encoder and of the decoder (each stores 2 more rows).
    pub max_position_embeddings: usize,
    /// Number of encoder blocks (`num_hidden_layers`).
    pub encoder_layers: usize,
    /// Width of the encoder's feed-forward layers (`fc1`).
    pub encoder_ffn_dim: usize,
    /// Attention heads per encoder block (`num_attention_heads`).
    pub encoder_attention_heads: usize,
    /// Number of decoder blocks.
    pub decoder_layers: usize,
    /// Width of the decoder's feed-forward layers (`fc1`).
    pub decoder_ffn_dim: usize,
    /// Attention heads per decoder block (self- and cross-attention).
    pub decoder_attention_heads: usize,
    /// Training only: layer drop is a no-op here.
    pub encoder_layerdrop: f64,
    /// Training only: layer drop is a no-op here.
    pub decoder_layerdrop: f64,
    /// Activation of the feed-forward layers.
    pub activation_function: Activation,
    /// The hidden size (`hidden_size`).
    pub d_model: usize,
    /// Training only: dropout is a no-op here.
    pub dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub activation_dropout: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub init_std: f64,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: f64,
    /// Multiply the token embeddings by `sqrt(d_model)`.
    pub scale_embedding: bool,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// Fills the decoder inputs that `shift_tokens_right` builds from `-100` labels; required
    /// when the decoder inputs are made from `input_ids`.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token (`<s>`).
    pub bos_token_id: Option<i64>,
    /// The token whose (last) position `BartForSequenceClassification` pools.
    pub eos_token_id: Option<TokenIds>,
    /// Always true for BART; kept for `config.json` round trips.
    pub is_encoder_decoder: bool,
    /// The first decoder token (generation, and `shift_tokens_right` of `input_ids`).
    pub decoder_start_token_id: Option<i64>,
    /// Generation only (read by `GenerationConfig`, not by the model).
    pub forced_eos_token_id: Option<TokenIds>,
    /// `BartForCausalLM` only, which autocandle does not implement; kept for round trips.
    pub is_decoder: bool,
    /// The encoder and decoder token embeddings and the LM head share `model.shared`.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for BartConfig {
    /// `BartConfig()` in `transformers`: the `facebook/bart-large` shape.
    fn default() -> Self {
        Self {
            vocab_size: 50265,
            max_position_embeddings: 1024,
            encoder_layers: 12,
            encoder_ffn_dim: 4096,
            encoder_attention_heads: 16,
            decoder_layers: 12,
            decoder_ffn_dim: 4096,
            decoder_attention_heads: 16,
            encoder_layerdrop: 0.0,
            decoder_layerdrop: 0.0,
            activation_function: Activation::Gelu,
            d_model: 1024,
            dropout: 0.1,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: 0.02,
            classifier_dropout: 0.0,
            scale_embedding: false,
            use_cache: true,
            pad_token_id: Some(1),
            bos_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(2)),
            is_encoder_decoder: true,
            decoder_start_token_id: Some(2),
            forced_eos_token_id: Some(TokenIds::One(2)),
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
