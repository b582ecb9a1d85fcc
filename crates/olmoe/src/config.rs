//! `OlmoeConfig`, field for field as `transformers`' `configuration_olmoe.OlmoeConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, MoeSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of an OLMoE model (`OlmoeConfig`), with the `transformers` defaults (those of
/// OLMoE-1B-7B).
///
/// Fields `config.json` may hold that `OlmoeConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "olmoe")]
#[serde(default)]
pub struct OlmoeConfig {
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
    /// Activation of the experts (`hidden_act`: `silu`, `gelu`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm (the q/k norms included).
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
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Clamp the (normed) queries, keys and values to `[-clip_qkv, clip_qkv]`.
    pub clip_qkv: Option<f64>,
    /// Experts each token is routed to (the top-k of the router's softmax).
    pub num_experts_per_tok: usize,
    /// Number of experts per layer (`num_local_experts` is read too, `transformers`'
    /// `attribute_map`).
    #[serde(alias = "num_local_experts")]
    pub num_experts: usize,
    /// Whether `transformers`' forward returns the router logits by default; here they are
    /// asked for with `CausalLm::forward_with_router_logits`.
    pub output_router_logits: bool,
    /// Weight of the load-balancing loss in training; unused at inference.
    pub router_aux_loss_coef: f64,
    /// Divide the top-k routing probabilities by their sum.
    pub norm_topk_prob: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for OlmoeConfig {
    /// `OlmoeConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50304,
            hidden_size: 2048,
            intermediate_size: 2048,
            num_hidden_layers: 16,
            num_attention_heads: 16,
            num_key_value_heads: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 4096,
            initializer_range: 0.02,
            rms_norm_eps: 1e-5,
            use_cache: true,
            pad_token_id: Some(1),
            bos_token_id: None,
            eos_token_id: Some(TokenIds::One(50279)),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: 0.0,
            clip_qkv: None,
            num_experts_per_tok: 8,
            num_experts: 64,
            output_router_logits: false,
            router_aux_loss_coef: 0.01,
            norm_topk_prob: false,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for OlmoeConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let common = CommonConfig {
            model_type: "olmoe",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: None,
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
        };
        // The q/k norms are sized from `hidden_size / num_attention_heads`.
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        spec.options.qkv_bias = self.attention_bias;
        spec.options.o_bias = self.attention_bias;
        spec.options.qk_norm_full = true;
        if let Some(c) = self.clip_qkv {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::config("olmoe", format!("`clip_qkv` must be a finite number > 0 or null, got {c}")));
            }
        }
        spec.options.clip_qkv = self.clip_qkv;
        spec.options.moe = Some(MoeSpec {
            num_experts: self.num_experts,
            num_experts_per_tok: self.num_experts_per_tok,
            moe_intermediate_size: self.intermediate_size,
            norm_topk_prob: self.norm_topk_prob,
            f32_routing_weights: false,
            shared_expert_intermediate_size: None,
            sparse_layers: vec![true; self.num_hidden_layers],
        });
        spec.validate()?;
        Ok(spec)
    }
}
