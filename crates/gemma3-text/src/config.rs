//! `Gemma3TextConfig`, field for field as `transformers`' `configuration_gemma3.Gemma3TextConfig`
//! (5.25), with the rope keys of every version ([`Gemma3Rope`]).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{
    refuse_bidirectional_attention, CommonConfig, DecoderConfig, DecoderSpec, NormStyle, RopeConfig, RopeContext,
    RopeParameters, TokenIds,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The rope base of the `full_attention` layers when a config gives none.
pub const GEMMA3_GLOBAL_ROPE_THETA: f64 = 1_000_000.0;
/// The rope base of the `sliding_attention` layers when a config gives none.
pub const GEMMA3_LOCAL_ROPE_THETA: f64 = 10_000.0;

/// The config of a Gemma-3 language model (`Gemma3TextConfig`), with the `transformers`
/// defaults (those of gemma-3-4b's text model).
///
/// Fields `config.json` may hold that `Gemma3TextConfig` does not declare are ignored (among
/// them `hidden_act`: Gemma-3 reads its activation from `hidden_activation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "gemma3_text")]
#[serde(default)]
pub struct Gemma3TextConfig {
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
    /// Number of key/value heads (grouped-query attention); `num_attention_heads` is plain multi-head attention.
    pub num_key_value_heads: usize,
    /// Size of one attention head (not `hidden_size / num_attention_heads` in general).
    pub head_dim: usize,
    /// The MLP activation.
    pub hidden_activation: Activation,
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
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// The rotary embedding of each layer type (`rope_parameters`, or the older `rope_theta`,
    /// `rope_local_base_freq` and `rope_scaling`).
    #[serde(flatten)]
    pub rope: Gemma3Rope,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// The attention scores are scaled by `query_pre_attn_scalar ** -0.5`.
    pub query_pre_attn_scalar: f64,
    /// The window of the `sliding_attention` layers.
    pub sliding_window: Option<usize>,
    /// Without `layer_types`, every `sliding_window_pattern`-th layer (the 6th, 12th, ... by
    /// default) attends fully and the others slide (the checkpoints' older key).
    pub sliding_window_pattern: Option<usize>,
    /// `full_attention` or `sliding_attention` per layer (see `sliding_window_pattern`).
    pub layer_types: Option<Vec<String>>,
    /// `tanh(x / c) * c` on the LM logits.
    pub final_logit_softcapping: Option<f64>,
    /// Declared by `Gemma3TextConfig` but not applied by `transformers`' Gemma-3 attention
    /// (5.25), so ignored here too.
    pub attn_logit_softcapping: Option<f64>,
    /// Bidirectional attention (embedding models); only `null`/`false` is supported.
    pub use_bidirectional_attention: Option<bool>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Gemma3TextConfig {
    /// `Gemma3TextConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 262_208,
            hidden_size: 2304,
            intermediate_size: 9216,
            num_hidden_layers: 26,
            num_attention_heads: 8,
            num_key_value_heads: 4,
            head_dim: 256,
            hidden_activation: Activation::GeluTanh,
            max_position_embeddings: 131_072,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(1)),
            bos_token_id: Some(2),
            tie_word_embeddings: true,
            rope: Gemma3Rope::default(),
            attention_bias: false,
            attention_dropout: 0.0,
            query_pre_attn_scalar: 256.0,
            sliding_window: Some(4096),
            sliding_window_pattern: None,
            layer_types: None,
            final_logit_softcapping: None,
            attn_logit_softcapping: None,
            use_bidirectional_attention: None,
            labels: LabelConfig::default(),
        }
    }
}

/// The rotary embeddings of Gemma-3: one for the `full_attention` layers, one for the
/// `sliding_attention` layers, read as `Gemma3TextConfig.convert_rope_params_to_dict` does:
/// `rope_parameters` with one dict per layer type (5.x), else the older `rope_theta` (full
/// layers, default 1,000,000), `rope_local_base_freq` (sliding layers, default 10,000) and
/// `rope_scaling` (full layers only). Keys of a `rope_parameters` that are not layer types
/// are ignored, as `transformers` ignores them. Written back as `rope_parameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "SavedGemma3Rope")]
pub struct Gemma3Rope {
    /// The rope of the `full_attention` layers.
    pub full_attention: RopeParameters,
    /// The rope of the `sliding_attention` layers.
    pub sliding_attention: RopeParameters,
}

impl Default for Gemma3Rope {
    fn default() -> Self {
        let with = |theta: f64| RopeParameters {
            rope_type: Some("default".to_owned()),
            rope_theta: Some(theta),
            ..RopeParameters::default()
        };
        Self { full_attention: with(GEMMA3_GLOBAL_ROPE_THETA), sliding_attention: with(GEMMA3_LOCAL_ROPE_THETA) }
    }
}

/// How [`Gemma3Rope`] is written: `{"rope_parameters": {"full_attention": ..., "sliding_attention": ...}}`.
#[derive(Serialize)]
struct SavedGemma3Rope {
    rope_parameters: Map<String, Value>,
}

impl From<Gemma3Rope> for SavedGemma3Rope {
    fn from(rope: Gemma3Rope) -> Self {
        let mut map = Map::new();
        for (key, params) in [("full_attention", rope.full_attention), ("sliding_attention", rope.sliding_attention)] {
            map.insert(key.to_owned(), serde_json::to_value(params).unwrap_or(Value::Null));
        }
        Self { rope_parameters: map }
    }
}

impl TryFrom<Map<String, Value>> for Gemma3Rope {
    type Error = String;

    /// Read from the config's keys (all of them are seen; only the rope keys are used).
    fn try_from(keys: Map<String, Value>) -> std::result::Result<Self, String> {
        let number = |key: &str| -> std::result::Result<Option<f64>, String> {
            match keys.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("`{key}` must be a number, got {v}")),
            }
        };
        let params = |value: Option<&Value>, what: &str| -> std::result::Result<Option<RopeParameters>, String> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| format!("{what}: {e}")),
            }
        };
        let nested = match keys.get("rope_parameters") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => return Err(format!("`rope_parameters` must be an object, got {other}")),
        };
        let default = || RopeParameters { rope_type: Some("default".to_owned()), ..RopeParameters::default() };
        let mut full =
            params(nested.get("full_attention"), "`rope_parameters.full_attention`")?.unwrap_or_else(default);
        let mut sliding =
            params(nested.get("sliding_attention"), "`rope_parameters.sliding_attention`")?.unwrap_or_else(default);
        if let Some(scaling) = params(keys.get("rope_scaling"), "`rope_scaling`")? {
            // `rope_parameters["full_attention"].update(rope_scaling)`.
            let mut merged = match serde_json::to_value(&full) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            if let Ok(Value::Object(update)) = serde_json::to_value(&scaling) {
                merged.extend(update);
            }
            full = serde_json::from_value(Value::Object(merged)).map_err(|e| format!("`rope_scaling`: {e}"))?;
        }
        if full.rope_theta.is_none() {
            full.rope_theta = Some(number("rope_theta")?.unwrap_or(GEMMA3_GLOBAL_ROPE_THETA));
        }
        if sliding.rope_theta.is_none() {
            sliding.rope_theta = Some(number("rope_local_base_freq")?.unwrap_or(GEMMA3_LOCAL_ROPE_THETA));
        }
        for p in [&mut full, &mut sliding] {
            if p.rope_type.is_none() {
                p.rope_type = Some(p.rope_type().to_owned());
            }
        }
        Ok(Self { full_attention: full, sliding_attention: sliding })
    }
}

impl Gemma3TextConfig {
    /// Per layer, whether it slides: `layer_types` when given, else every
    /// `sliding_window_pattern`-th layer (default 6) attends fully.
    fn sliding_pattern(&self) -> Result<usize> {
        match self.sliding_window_pattern {
            Some(0) => Err(Error::config(
                "gemma3_text",
                "`sliding_window_pattern` must be at least 1 (every n-th layer attends fully), got 0",
            )),
            Some(p) => Ok(p),
            None => Ok(6),
        }
    }
}

impl DecoderConfig for Gemma3TextConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        refuse_bidirectional_attention("gemma3_text", self.use_bidirectional_attention)?;
        let full_rope = RopeConfig { parameters: self.rope.full_attention.clone() };
        let common = CommonConfig {
            model_type: "gemma3_text",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: Some(self.num_key_value_heads),
            head_dim: Some(self.head_dim),
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            hidden_act: self.hidden_activation,
            rope: &full_rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        };
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        if !(self.query_pre_attn_scalar.is_finite() && self.query_pre_attn_scalar > 0.0) {
            return Err(Error::config(
                "gemma3_text",
                format!("`query_pre_attn_scalar` must be a finite number > 0, got {}", self.query_pre_attn_scalar),
            ));
        }
        let sliding_rope = RopeConfig { parameters: self.rope.sliding_attention.clone() }.resolve(&RopeContext {
            model_type: "gemma3_text",
            head_dim: spec.head_dim,
            max_position_embeddings: self.max_position_embeddings,
            original_max_position_embeddings: None,
            partial_rotary: false,
        })?;
        let o = &mut spec.options;
        o.qkv_bias = self.attention_bias;
        o.o_bias = self.attention_bias;
        o.norm_style = NormStyle::OnePlusWeight;
        o.qk_norm = true;
        o.scale_embeddings = true;
        o.scaled_embedding_layer = true;
        o.sandwich_norms = true;
        o.attention_scale = Some(self.query_pre_attn_scalar.powf(-0.5));
        // `Gemma3Attention` does not pass `attn_logit_softcapping` to its attention function:
        // the field is read but has no effect in `transformers` 5.25, so none here either.
        o.attn_logit_softcapping = None;
        o.final_logit_softcapping = self.final_logit_softcapping;
        o.sliding_rope = Some(sliding_rope);
        let pattern = self.sliding_pattern()?;
        spec.set_layers(self.layer_types.as_deref(), self.sliding_window, |i| (i + 1) % pattern != 0)?;
        Ok(spec)
    }
}
