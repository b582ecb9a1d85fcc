//! `WhisperConfig`, field for field as `transformers`' `configuration_whisper.WhisperConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result, TokenIds};
use serde::Serialize;

autocandle_core::config_with_attribute_map! {
    // `WhisperConfig.attribute_map`: the common names `transformers` accepts for Whisper's own.
    attribute_map: [
        ("num_key_value_heads", "encoder_attention_heads"),
        ("num_attention_heads", "encoder_attention_heads"),
        ("hidden_size", "d_model"),
        ("num_hidden_layers", "encoder_layers"),
    ];
/// The config of a Whisper model (`WhisperConfig`), with the `transformers` defaults (those of
/// `openai/whisper-tiny`).
///
/// `transformers`' `attribute_map` names are accepted when reading and win over the Whisper
/// names as they do there: `hidden_size` for `d_model`, `num_attention_heads` (and
/// `num_key_value_heads`) for `encoder_attention_heads`, `num_hidden_layers` for
/// `encoder_layers`. Fields `config.json` may hold that `WhisperConfig` does not declare
/// (generation settings of older configs: `forced_decoder_ids`, `max_length`, ...) are
/// ignored; `autocandle::whisper` reads them from `generation_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "whisper")]
#[serde(default)]
pub struct WhisperConfig {
    /// Number of tokens in the vocabulary: the rows of `model.decoder.embed_tokens`.
    pub vocab_size: usize,
    /// Mel bins of the input features (`input_features` `[batch, num_mel_bins, frames]`): the
    /// input channels of the encoder's first convolution.
    pub num_mel_bins: usize,
    /// Number of encoder blocks (`num_hidden_layers`).
    pub encoder_layers: usize,
    /// Attention heads per encoder block (`num_attention_heads`).
    pub encoder_attention_heads: usize,
    /// Number of decoder blocks.
    pub decoder_layers: usize,
    /// Attention heads per decoder block (self- and cross-attention).
    pub decoder_attention_heads: usize,
    /// Width of the decoder's feed-forward layers (`fc1`).
    pub decoder_ffn_dim: usize,
    /// Width of the encoder's feed-forward layers (`fc1`).
    pub encoder_ffn_dim: usize,
    /// Training only: layer drop is a no-op here.
    pub encoder_layerdrop: f64,
    /// Training only: layer drop is a no-op here.
    pub decoder_layerdrop: f64,
    /// The first decoder token (`<|startoftranscript|>`).
    pub decoder_start_token_id: Option<i64>,
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// True for the encoder-decoder; `WhisperForCausalLM` saves false.
    pub is_encoder_decoder: bool,
    /// Activation of the feed-forward layers (the convolutions always use exact GELU).
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
    /// Read but unused: `transformers` 5.25 computes `embed_scale` from it and never applies
    /// it (neither the encoder nor the decoder scales its embeddings), and neither does autocandle.
    pub scale_embedding: bool,
    /// Encoder positions after the stride-2 convolution: the encoder takes exactly
    /// `2 * max_source_positions` input frames (3000 for 30 s).
    pub max_source_positions: usize,
    /// Rows of the decoder's learned position table: the longest decoder sequence.
    pub max_target_positions: usize,
    /// The padding token (`<|endoftext|>`).
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// The end-of-sequence token(s).
    pub eos_token_id: Option<TokenIds>,
    /// Generation only (older configs): tokens suppressed at every step.
    pub suppress_tokens: Option<Vec<i64>>,
    /// Generation only (older configs): tokens suppressed at the first generated position.
    pub begin_suppress_tokens: Option<Vec<i64>>,
    /// `WhisperForAudioClassification`: classify a softmax-weighted sum of the encoder's
    /// `encoder_layers + 1` hidden states (`layer_weights`) instead of its last one.
    pub use_weighted_layer_sum: bool,
    /// `WhisperForAudioClassification`: width of `projector`, before mean pooling.
    pub classifier_proj_size: usize,
    /// Training only: SpecAugment is a no-op at inference.
    pub apply_spec_augment: bool,
    /// Training only (SpecAugment).
    pub mask_time_prob: f64,
    /// Training only (SpecAugment).
    pub mask_time_length: usize,
    /// Training only (SpecAugment).
    pub mask_time_min_masks: usize,
    /// Training only (SpecAugment).
    pub mask_feature_prob: f64,
    /// Training only (SpecAugment).
    pub mask_feature_length: usize,
    /// Training only (SpecAugment).
    pub mask_feature_min_masks: usize,
    /// Word-level timestamps only (median filter over cross-attention weights).
    pub median_filter_width: usize,
    /// `proj_out` shares `model.decoder.embed_tokens` (unless the checkpoint holds a
    /// different `proj_out.weight`).
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for WhisperConfig {
    /// `WhisperConfig()` in `transformers`: the `openai/whisper-tiny` shape.
    fn default() -> Self {
        Self {
            vocab_size: 51865,
            num_mel_bins: 80,
            encoder_layers: 4,
            encoder_attention_heads: 6,
            decoder_layers: 4,
            decoder_attention_heads: 6,
            decoder_ffn_dim: 1536,
            encoder_ffn_dim: 1536,
            encoder_layerdrop: 0.0,
            decoder_layerdrop: 0.0,
            decoder_start_token_id: Some(50257),
            use_cache: true,
            is_encoder_decoder: true,
            activation_function: Activation::Gelu,
            d_model: 384,
            dropout: 0.0,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: 0.02,
            scale_embedding: false,
            max_source_positions: 1500,
            max_target_positions: 448,
            pad_token_id: Some(50256),
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            suppress_tokens: None,
            begin_suppress_tokens: Some(vec![220, 50256]),
            use_weighted_layer_sum: false,
            classifier_proj_size: 256,
            apply_spec_augment: false,
            mask_time_prob: 0.05,
            mask_time_length: 10,
            mask_time_min_masks: 2,
            mask_feature_prob: 0.0,
            mask_feature_length: 10,
            mask_feature_min_masks: 0,
            median_filter_width: 7,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl WhisperConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("whisper", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("num_mel_bins", self.num_mel_bins),
            ("d_model", self.d_model),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("max_source_positions", self.max_source_positions),
            ("max_target_positions", self.max_target_positions),
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
                return invalid(format!(
                    "`d_model` ({}) must be a multiple of `{name}` ({heads}): each head takes `d_model / heads` \
                     channels",
                    self.d_model
                ));
            }
        }
        // 2 * max_source_positions input frames must be countable (and allocatable) at all.
        if self.max_source_positions.checked_mul(2).is_none_or(|f| f.checked_mul(self.num_mel_bins).is_none()) {
            return invalid(format!(
                "`max_source_positions` ({}) is too large: the encoder input would have {} x 2 x {} values",
                self.max_source_positions, self.max_source_positions, self.num_mel_bins
            ));
        }
        Ok(())
    }

    /// The number of input frames the encoder takes: `2 * max_source_positions` (the second
    /// convolution has stride 2), as `transformers` requires.
    pub fn expected_frames(&self) -> usize {
        self.max_source_positions.saturating_mul(2)
    }

    /// `WhisperForAudioClassification`'s number of labels: `len(id2label)` when given, else
    /// `num_labels`, else 2.
    pub fn num_labels(&self) -> usize {
        match (&self.labels.id2label, self.labels.num_labels) {
            (Some(map), _) if !map.is_empty() => map.len(),
            (_, Some(n)) => n,
            _ => 2,
        }
    }
}
