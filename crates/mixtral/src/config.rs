//! `MixtralConfig`, field for field as `transformers`' `configuration_mixtral.MixtralConfig`
//! (5.25).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, MoeSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Deserializer, Serialize};

/// `MixtralConfig.default_theta`: the rope base when `config.json` names none.
pub const MIXTRAL_DEFAULT_ROPE_THETA: f64 = 1e6;

/// The config of a Mixtral model (`MixtralConfig`), with the `transformers` defaults (those of
/// Mixtral-8x7B).
///
/// Fields `config.json` may hold that `MixtralConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "mixtral")]
#[serde(default)]
pub struct MixtralConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of one expert's gated MLP.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); `None` is `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Size of one attention head; `None` (or 0) is `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// Activation of the experts (`hidden_act`: `silu`, `gelu`, ...).
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
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// When set, every layer attends to the last `sliding_window` positions only.
    pub sliding_window: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Experts each token is routed to: the top-k of the router's softmax, renormalised to sum to 1.
    pub num_experts_per_tok: usize,
    /// Number of experts per layer (`num_experts` is read too, `transformers`' `attribute_map`).
    #[serde(alias = "num_experts")]
    pub num_local_experts: usize,
    /// Whether `transformers`' forward returns the router logits by default; here they are
    /// asked for with `CausalLm::forward_with_router_logits`.
    pub output_router_logits: bool,
    /// Weight of the load-balancing loss in training; unused at inference.
    pub router_aux_loss_coef: f64,
    /// Training only: multiplicative noise on the router input; a no-op at inference.
    pub router_jitter_noise: f64,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`); the base is 1e6 when none is named.
    #[serde(flatten, deserialize_with = "mixtral_rope")]
    pub rope: RopeConfig,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

/// The rope keys with `MixtralConfig.default_theta` (1e6) where no `rope_theta` is given.
fn mixtral_rope<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<RopeConfig, D::Error> {
    use serde_json::Value;
    let mut keys = serde_json::Map::<String, Value>::deserialize(d)?;
    let named = |v: Option<&Value>| v.and_then(|v| v.get("rope_theta")).is_some_and(|t| !t.is_null());
    let has_theta = keys.get("rope_theta").is_some_and(|t| !t.is_null())
        || named(keys.get("rope_parameters"))
        || named(keys.get("rope_scaling"));
    if !has_theta {
        keys.insert("rope_theta".to_owned(), Value::from(MIXTRAL_DEFAULT_ROPE_THETA));
    }
    RopeConfig::deserialize(Value::Object(keys)).map_err(serde::de::Error::custom)
}

impl Default for MixtralConfig {
    /// `MixtralConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 14336,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: Some(8),
            head_dim: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 4096 * 32,
            initializer_range: 0.02,
            rms_norm_eps: 1e-5,
            use_cache: true,
            pad_token_id: None,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            tie_word_embeddings: false,
            sliding_window: None,
            attention_dropout: 0.0,
            num_experts_per_tok: 2,
            num_local_experts: 8,
            output_router_logits: false,
            router_aux_loss_coef: 0.001,
            router_jitter_noise: 0.0,
            rope: RopeConfig::with_theta(MIXTRAL_DEFAULT_ROPE_THETA),
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for MixtralConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = CommonConfig {
            model_type: "mixtral",
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
            rope: &self.rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }
        .spec()?;
        spec.options.moe = Some(MoeSpec {
            num_experts: self.num_local_experts,
            num_experts_per_tok: self.num_experts_per_tok,
            moe_intermediate_size: self.intermediate_size,
            norm_topk_prob: true,
            f32_routing_weights: true,
            shared_expert_intermediate_size: None,
            sparse_layers: vec![true; self.num_hidden_layers],
        });
        spec.set_layers(None, self.sliding_window, |_| self.sliding_window.is_some())?;
        Ok(spec)
    }
}
