//! `SmolLM3Config`, field for field as `transformers`' `configuration_smollm3.SmolLM3Config` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// SmolLM3's `default_theta`: the rope base when a config gives none.
pub const SMOLLM3_DEFAULT_ROPE_THETA: f64 = 2_000_000.0;

/// The config of a SmolLM3 model (`SmolLM3Config`), with the `transformers` defaults (those of
/// SmolLM3-3B).
///
/// The rope keys (`rope_parameters`, or the older `rope_theta` + `rope_scaling`) are read
/// into [`RopeConfig`], with a base of 2,000,000 when none is given; fields `config.json` may
/// hold that `SmolLM3Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "smollm3")]
#[serde(default)]
pub struct SmolLM3Config {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`); the base defaults to 2,000,000.
    #[serde(flatten)]
    pub rope: SmolLM3Rope,
    /// Whether the `sliding_attention` layers derived from `no_rope_layers` exist (only when
    /// `layer_types` is not given).
    pub use_sliding_window: bool,
    /// The window of the `sliding_attention` layers.
    pub sliding_window: Option<usize>,
    /// Per layer, 1 where the layer applies the rotary embedding and 0 where it does not
    /// (NoPE); at least `num_hidden_layers` entries (the first ones count). `None`: every
    /// `no_rope_layer_interval`-th layer is NoPE.
    pub no_rope_layers: Option<Vec<i64>>,
    /// Without `no_rope_layers`, layers `interval - 1`, `2 * interval - 1`, ... are NoPE.
    pub no_rope_layer_interval: usize,
    /// `full_attention` or `sliding_attention` per layer; `None`: the NoPE layers slide when
    /// `use_sliding_window` and `sliding_window` are set, every other layer attends fully.
    pub layer_types: Option<Vec<String>>,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: Option<f64>,
    /// Bias on `gate_proj`, `up_proj` and `down_proj`.
    pub mlp_bias: bool,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `None` is `hidden_size / num_attention_heads` (`SmolLM3Config` does not declare it,
    /// but `transformers` honours one in `config.json`).
    pub head_dim: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for SmolLM3Config {
    /// `SmolLM3Config()` in `transformers`: the SmolLM3-3B shape.
    fn default() -> Self {
        Self {
            vocab_size: 128256,
            hidden_size: 2048,
            intermediate_size: 11008,
            num_hidden_layers: 36,
            num_attention_heads: 16,
            num_key_value_heads: Some(4),
            hidden_act: Activation::Silu,
            max_position_embeddings: 32768,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: Some(128004),
            bos_token_id: Some(128000),
            eos_token_id: Some(TokenIds::One(128001)),
            rope: SmolLM3Rope::default(),
            use_sliding_window: false,
            sliding_window: None,
            no_rope_layers: None,
            no_rope_layer_interval: 4,
            layer_types: None,
            attention_bias: false,
            attention_dropout: Some(0.0),
            mlp_bias: false,
            tie_word_embeddings: true,
            head_dim: None,
            labels: LabelConfig::default(),
        }
    }
}

/// The rope keys of a SmolLM3 config: a [`RopeConfig`] whose `rope_theta` defaults to
/// [`SMOLLM3_DEFAULT_ROPE_THETA`] (`SmolLM3Config.default_theta`) instead of 10,000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "RopeConfig")]
pub struct SmolLM3Rope(pub RopeConfig);

impl Default for SmolLM3Rope {
    fn default() -> Self {
        Self(RopeConfig::with_theta(SMOLLM3_DEFAULT_ROPE_THETA))
    }
}

impl TryFrom<Map<String, Value>> for SmolLM3Rope {
    type Error = serde_json::Error;

    /// Read from the config's keys (all of them are seen; only the rope keys are used).
    fn try_from(mut keys: Map<String, Value>) -> serde_json::Result<Self> {
        keys.retain(|k, _| {
            matches!(k.as_str(), "rope_parameters" | "rope_scaling" | "rope_theta" | "partial_rotary_factor")
        });
        if keys.get("rope_theta").is_none_or(Value::is_null) {
            keys.insert("rope_theta".to_owned(), Value::from(SMOLLM3_DEFAULT_ROPE_THETA));
        }
        serde_json::from_value(Value::Object(keys)).map(Self)
    }
}

impl From<SmolLM3Rope> for RopeConfig {
    fn from(rope: SmolLM3Rope) -> Self {
        rope.0
    }
}

impl SmolLM3Config {
    fn common(&self) -> CommonConfig<'_> {
        CommonConfig {
            model_type: "smollm3",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            hidden_act: self.hidden_act,
            rope: &self.rope.0,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }
    }

    /// Per layer, whether it applies the rotary embedding (`no_rope_layers`, or its default
    /// from `no_rope_layer_interval`).
    pub fn rope_layers(&self) -> Result<Vec<bool>> {
        let n = self.num_hidden_layers;
        match &self.no_rope_layers {
            Some(flags) if flags.len() < n => Err(Error::config(
                "smollm3",
                format!(
                    "`no_rope_layers` has {} entries but the model has {n} layers (`num_hidden_layers`): give one \
                     entry per layer (1: rope, 0: no rope)",
                    flags.len()
                ),
            )),
            Some(flags) => Ok(flags.iter().take(n).map(|&f| f != 0).collect()),
            None if self.no_rope_layer_interval == 0 => Err(Error::config(
                "smollm3",
                "`no_rope_layer_interval` must be at least 1 when `no_rope_layers` is not given, got 0",
            )),
            None => Ok((0..n).map(|i| (i + 1) % self.no_rope_layer_interval != 0).collect()),
        }
    }
}

impl DecoderConfig for SmolLM3Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = self.common().spec()?;
        spec.options.qkv_bias = self.attention_bias;
        spec.options.o_bias = self.attention_bias;
        spec.options.mlp_bias = self.mlp_bias;
        let rope_layers = self.rope_layers()?;
        let window = self.sliding_window.filter(|_| self.use_sliding_window);
        spec.set_layers(self.layer_types.as_deref(), self.sliding_window, |i| window.is_some() && !rope_layers[i])?;
        spec.options.skip_rope = rope_layers.iter().map(|&rope| !rope).collect();
        spec.validate()?;
        Ok(spec)
    }
}
