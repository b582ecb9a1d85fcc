//! `ModernBertConfig`, field for field as `transformers`' `configuration_modernbert` (5.25),
//! and [`ModernBertSpec`], what the network needs of it once checked.
//!
//! Two spellings of the layer pattern and of the rotary bases are on the Hub: the 4.x one
//! (`global_attn_every_n_layers`, `global_rope_theta`, `local_rope_theta`, as in
//! `answerdotai/ModernBERT-base`) and the 5.x one (`layer_types`, `rope_parameters` keyed by
//! layer type). Both are read, as `ModernBertConfig.__post_init__` and
//! `convert_rope_params_to_dict` read them: `layer_types` wins over
//! `global_attn_every_n_layers`, and a `rope_theta` inside `rope_parameters` over the legacy
//! keys.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{RopeConfig, RopeContext, RopeParameters, RopeSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use autocandle_core::TokenIds;

/// The model type, for errors.
const MODEL_TYPE: &str = "modernbert";

/// `layer_types` entry of a global (full) attention layer.
const FULL: &str = "full_attention";
/// `layer_types` entry of a sliding-window (local) attention layer.
const SLIDING: &str = "sliding_attention";

/// The config of a ModernBERT model (`ModernBertConfig`), with the `transformers` defaults
/// (those of `answerdotai/ModernBERT-base`).
///
/// Fields `config.json` may hold that `ModernBertConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "modernbert")]
#[serde(default)]
pub struct ModernBertConfig {
    /// Number of tokens in the vocabulary: the rows of `tok_embeddings` `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the GeGLU feed-forward layer (`Wi` is `hidden -> 2 * intermediate_size`).
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each layer.
    pub num_attention_heads: usize,
    /// Activation of the GeGLU input half (`act(input) * gate`).
    pub hidden_activation: Activation,
    /// Context the rotary embedding was trained for (no position table; longer inputs run).
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Cutoff of the truncated-normal initialisation; unused at inference.
    pub initializer_cutoff_factor: f64,
    /// Epsilon of every LayerNorm.
    pub norm_eps: f64,
    /// Whether the LayerNorms have a bias.
    pub norm_bias: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// Id of `[CLS]`.
    pub cls_token_id: Option<i64>,
    /// Id of `[SEP]`.
    pub sep_token_id: Option<i64>,
    /// Whether `Wqkv` and the attention's `Wo` have biases.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// `full_attention` or `sliding_attention` for every layer (5.x spelling); `None` derives
    /// them from `global_attn_every_n_layers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
    /// Every how many layers one is global, counting from layer 0 (4.x spelling, default 3);
    /// read only when `layer_types` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_attn_every_n_layers: Option<usize>,
    /// Rotary settings per layer type (`{"full_attention": {...}, "sliding_attention": {...}}`),
    /// the 5.x spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<Value>,
    /// A legacy rope scaling dict applied to both layer types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// Rotary base of the global layers (4.x spelling; default 160000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_rope_theta: Option<f64>,
    /// Rotary base of the sliding-window layers (4.x spelling; default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_rope_theta: Option<f64>,
    /// The whole sliding window: a local layer's token attends to those at most
    /// `local_attention / 2` positions away.
    pub local_attention: usize,
    /// Training only: dropout is a no-op here.
    pub embedding_dropout: f64,
    /// Whether the MLP's `Wi` and `Wo` have biases.
    pub mlp_bias: bool,
    /// Training only: dropout is a no-op here.
    pub mlp_dropout: f64,
    /// Whether the masked LM decoder has a bias.
    pub decoder_bias: bool,
    /// `cls` (the first token) or `mean` (over the attended tokens): how the sequence and
    /// multiple choice heads pool.
    pub classifier_pooling: String,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: f64,
    /// Whether the prediction head's `dense` has a bias.
    pub classifier_bias: bool,
    /// Activation of the prediction head (`head.act`).
    pub classifier_activation: Activation,
    /// Flash attention only; no effect here.
    pub deterministic_flash_attn: bool,
    /// Training only: with labels, `transformers` scores only the masked tokens; the logits
    /// of a forward without labels are the full ones either way.
    pub sparse_prediction: bool,
    /// Training only: the label ignored by sparse prediction.
    pub sparse_pred_ignore_index: i64,
    /// The masked LM decoder shares the token embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ModernBertConfig {
    /// `ModernBertConfig()` in `transformers`: the `ModernBERT-base` shape.
    fn default() -> Self {
        Self {
            vocab_size: 50368,
            hidden_size: 768,
            intermediate_size: 1152,
            num_hidden_layers: 22,
            num_attention_heads: 12,
            hidden_activation: Activation::Gelu,
            max_position_embeddings: 8192,
            initializer_range: 0.02,
            initializer_cutoff_factor: 2.0,
            norm_eps: 1e-5,
            norm_bias: false,
            pad_token_id: Some(50283),
            eos_token_id: Some(TokenIds::One(50282)),
            bos_token_id: Some(50281),
            cls_token_id: Some(50281),
            sep_token_id: Some(50282),
            attention_bias: false,
            attention_dropout: 0.0,
            layer_types: None,
            global_attn_every_n_layers: None,
            rope_parameters: None,
            rope_scaling: None,
            global_rope_theta: None,
            local_rope_theta: None,
            local_attention: 128,
            embedding_dropout: 0.0,
            mlp_bias: false,
            mlp_dropout: 0.0,
            decoder_bias: true,
            classifier_pooling: "cls".to_owned(),
            classifier_dropout: 0.0,
            classifier_bias: false,
            classifier_activation: Activation::Gelu,
            deterministic_flash_attn: false,
            sparse_prediction: false,
            sparse_pred_ignore_index: -100,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

/// How the sequence and multiple choice heads pool the hidden states (`classifier_pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifierPooling {
    /// The first token (sequence classification), the first attended token (multiple choice).
    Cls,
    /// The mean over the attended tokens.
    Mean,
}

/// The attention of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Every token attends to every other (`full_attention`), with the global rotary base.
    Global,
    /// Tokens attend to those at most `local_attention / 2` positions away
    /// (`sliding_attention`), with the local rotary base.
    Sliding,
}

/// A checked [`ModernBertConfig`]: what the network and its heads are built from.
#[derive(Debug, Clone)]
pub struct ModernBertSpec {
    /// The config it was made from.
    pub config: ModernBertConfig,
    /// One entry per layer.
    pub layers: Vec<LayerKind>,
    /// Half the sliding window (`config.sliding_window` in `transformers`): a local layer's
    /// query attends to keys at most this far away.
    pub half_window: usize,
    /// The rotary embedding of the global layers.
    pub global_rope: RopeSpec,
    /// The rotary embedding of the sliding-window layers.
    pub local_rope: RopeSpec,
    /// How the sequence and multiple choice heads pool.
    pub pooling: ClassifierPooling,
}

impl ModernBertConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Check the config and resolve the layer pattern and both rotary embeddings.
    ///
    /// Errors: [`Error::InvalidConfig`] naming the key and what to set; an unknown rope type
    /// is [`Error::Unsupported`].
    pub fn spec(&self) -> Result<ModernBertSpec> {
        let invalid = |message: String| Err(Error::config(MODEL_TYPE, message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return invalid(format!("`norm_eps` must be a finite number >= 0, got {}", self.norm_eps));
        }
        let pooling = match self.classifier_pooling.as_str() {
            "cls" => ClassifierPooling::Cls,
            "mean" => ClassifierPooling::Mean,
            other => return invalid(format!("`classifier_pooling` must be `cls` or `mean`, got `{other}`")),
        };
        let layers = self.layer_kinds()?;
        let head_dim = self.head_dim();
        let global_rope = self.rope(FULL, self.global_rope_theta.unwrap_or(160_000.0), head_dim)?;
        let local_rope = self.rope(SLIDING, self.local_rope_theta.unwrap_or(10_000.0), head_dim)?;
        Ok(ModernBertSpec {
            config: self.clone(),
            layers,
            half_window: self.local_attention / 2,
            global_rope,
            local_rope,
            pooling,
        })
    }

    /// The kind of every layer: `layer_types`, else every `global_attn_every_n_layers`-th
    /// layer (from layer 0) global and the others sliding.
    fn layer_kinds(&self) -> Result<Vec<LayerKind>> {
        let invalid = |message: String| Err(Error::config(MODEL_TYPE, message));
        if let Some(types) = &self.layer_types {
            if types.len() != self.num_hidden_layers {
                return invalid(format!(
                    "`layer_types` has {} entries but `num_hidden_layers` is {}: give one type per layer",
                    types.len(),
                    self.num_hidden_layers
                ));
            }
            return types
                .iter()
                .enumerate()
                .map(|(i, t)| match t.as_str() {
                    FULL => Ok(LayerKind::Global),
                    SLIDING => Ok(LayerKind::Sliding),
                    other => Err(Error::config(
                        MODEL_TYPE,
                        format!("`layer_types[{i}]` is `{other}`: each entry must be `{FULL}` or `{SLIDING}`"),
                    )),
                })
                .collect();
        }
        let every = self.global_attn_every_n_layers.unwrap_or(3);
        if every == 0 {
            return invalid("`global_attn_every_n_layers` must be at least 1 (1 makes every layer global)".to_owned());
        }
        Ok((0..self.num_hidden_layers)
            .map(|i| if i % every == 0 { LayerKind::Global } else { LayerKind::Sliding })
            .collect())
    }

    /// The rotary embedding of `layer_type`: its `rope_parameters` entry, with `rope_scaling`
    /// merged in and `legacy_theta` where the entry has no `rope_theta`.
    fn rope(&self, layer_type: &str, legacy_theta: f64, head_dim: usize) -> Result<RopeSpec> {
        let invalid = |message: String| Error::config(MODEL_TYPE, message);
        let entry = match &self.rope_parameters {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => {
                if let Some(key) = map.keys().find(|k| k.as_str() != FULL && k.as_str() != SLIDING) {
                    return Err(invalid(format!(
                        "`rope_parameters` has the key `{key}`: ModernBERT's are keyed by layer type, \
                         `{{\"{FULL}\": {{...}}, \"{SLIDING}\": {{...}}}}`"
                    )));
                }
                map.get(layer_type).filter(|v| !v.is_null()).cloned()
            }
            Some(other) => {
                return Err(invalid(format!("`rope_parameters` must be an object keyed by layer type, got {other}")))
            }
        };
        let mut parameters: RopeParameters = match entry {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| invalid(format!("`rope_parameters.{layer_type}` is not a rope parameters dict: {e}")))?,
            None => RopeParameters::default(),
        };
        if let Some(scaling) = &self.rope_scaling {
            // `rope_parameters[t].update(rope_scaling)`: the scaling dict's keys win.
            let mut merged = serde_json::to_value(&parameters).map_err(|e| invalid(e.to_string()))?;
            let scaling = serde_json::to_value(scaling).map_err(|e| invalid(e.to_string()))?;
            if let (Value::Object(target), Value::Object(source)) = (&mut merged, scaling) {
                target.extend(source);
            }
            parameters = serde_json::from_value(merged).map_err(|e| invalid(e.to_string()))?;
        }
        if parameters.rope_theta.is_none() {
            parameters.rope_theta = Some(legacy_theta);
        }
        if parameters.rope_type.is_none() {
            parameters.rope_type = Some(parameters.rope_type().to_owned());
        }
        let ctx = RopeContext {
            model_type: MODEL_TYPE,
            head_dim,
            max_position_embeddings: self.max_position_embeddings,
            original_max_position_embeddings: None,
            partial_rotary: false,
        };
        RopeConfig { parameters }.resolve(&ctx)
    }
}
