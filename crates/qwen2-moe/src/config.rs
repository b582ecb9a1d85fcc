//! `Qwen2MoeConfig`, field for field as `transformers`' `configuration_qwen2_moe.Qwen2MoeConfig`
//! (5.25).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, MoeSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Qwen2-MoE model (`Qwen2MoeConfig`), with the `transformers` defaults (those
/// of Qwen1.5-MoE-A2.7B).
///
/// Fields `config.json` may hold that `Qwen2MoeConfig` does not declare are ignored, except
/// `head_dim`, which `transformers` keeps as an extra attribute and its attention reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen2_moe")]
#[serde(default)]
pub struct Qwen2MoeConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the dense MLP of the layers that are not sparse (`mlp_only_layers`,
    /// `decoder_sparse_step`).
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: Option<usize>,
    /// Size of one attention head; not a declared field of `Qwen2MoeConfig`, but real
    /// checkpoints may set it and the attention reads it; `None` is
    /// `hidden_size / num_attention_heads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Activation of the feed-forward layers (`hidden_act`: `silu`, `gelu`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Without it `sliding_window` is ignored (`transformers` sets it to 0).
    pub use_sliding_window: bool,
    /// Width, in tokens, of the attention window of sliding layers; used only with `use_sliding_window`.
    pub sliding_window: Option<usize>,
    /// Without `layer_types`, the even layers (0, 2, ...) below this index slide (with
    /// `use_sliding_window`).
    pub max_window_layers: usize,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Every `decoder_sparse_step`-th layer (1-based) is sparse, unless in `mlp_only_layers`.
    pub decoder_sparse_step: usize,
    /// Width of one routed expert's gated MLP.
    pub moe_intermediate_size: usize,
    /// Width of the shared expert's gated MLP, which every token runs through (scaled by
    /// `sigmoid(shared_expert_gate(x))`).
    pub shared_expert_intermediate_size: usize,
    /// Experts each token is routed to (the top-k of the router's softmax).
    pub num_experts_per_tok: usize,
    /// Number of routed experts per sparse layer. 0: every layer is dense.
    pub num_experts: usize,
    /// Divide the top-k routing probabilities by their sum.
    pub norm_topk_prob: bool,
    /// Whether `transformers`' forward returns the router logits by default; here they are
    /// asked for with `CausalLm::forward_with_router_logits`.
    pub output_router_logits: bool,
    /// Weight of the load-balancing loss in training; unused at inference.
    pub router_aux_loss_coef: f64,
    /// Layers (0-based) that use the dense MLP instead of the experts.
    pub mlp_only_layers: Option<Vec<usize>>,
    /// Bias on `q_proj`, `k_proj` and `v_proj` (never on `o_proj`).
    pub qkv_bias: bool,
    /// `full_attention` or `sliding_attention` per layer.
    pub layer_types: Option<Vec<String>>,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Qwen2MoeConfig {
    /// `Qwen2MoeConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 151936,
            hidden_size: 2048,
            intermediate_size: 5632,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            num_key_value_heads: Some(16),
            head_dim: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 32768,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            use_sliding_window: false,
            sliding_window: Some(4096),
            max_window_layers: 28,
            attention_dropout: 0.0,
            decoder_sparse_step: 1,
            moe_intermediate_size: 1408,
            shared_expert_intermediate_size: 5632,
            num_experts_per_tok: 4,
            num_experts: 60,
            norm_topk_prob: false,
            output_router_logits: false,
            router_aux_loss_coef: 0.001,
            mlp_only_layers: None,
            qkv_bias: true,
            layer_types: None,
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Qwen2MoeConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = CommonConfig {
            model_type: "qwen2_moe",
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
        spec.options.qkv_bias = self.qkv_bias;
        spec.options.moe = Some(MoeSpec {
            num_experts: self.num_experts,
            num_experts_per_tok: self.num_experts_per_tok,
            moe_intermediate_size: self.moe_intermediate_size,
            norm_topk_prob: self.norm_topk_prob,
            f32_routing_weights: false,
            shared_expert_intermediate_size: Some(self.shared_expert_intermediate_size),
            sparse_layers: MoeSpec::qwen_sparse_layers(
                "qwen2_moe",
                self.num_hidden_layers,
                self.num_experts,
                self.decoder_sparse_step,
                self.mlp_only_layers.as_deref().unwrap_or_default(),
            )?,
        });
        let window = self.sliding_window.filter(|_| self.use_sliding_window);
        spec.set_layers(self.layer_types.as_deref(), window, |i| {
            window.is_some() && i % 2 == 0 && i < self.max_window_layers
        })?;
        Ok(spec)
    }
}
