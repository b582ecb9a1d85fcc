//! `Gemma2Config`, field for field as `transformers`' `configuration_gemma2.Gemma2Config` (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{
    refuse_bidirectional_attention, CommonConfig, DecoderConfig, DecoderSpec, NormStyle, RopeConfig, TokenIds,
};
use serde::{Deserialize, Serialize};

/// The config of a Gemma-2 model (`Gemma2Config`), with the `transformers` defaults (those of
/// gemma-2-2b). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `Gemma2Config` does not declare are ignored (among
/// them `hidden_act`: Gemma-2 reads its activation from `hidden_activation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "gemma2")]
#[serde(default)]
pub struct Gemma2Config {
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
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
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
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// The attention scores are scaled by `query_pre_attn_scalar ** -0.5`.
    pub query_pre_attn_scalar: f64,
    /// The window of the `sliding_attention` layers.
    pub sliding_window: Option<usize>,
    /// `full_attention` or `sliding_attention` per layer; without it the even layers (0, 2,
    /// ...) slide and the odd ones attend fully.
    pub layer_types: Option<Vec<String>>,
    /// `tanh(x / c) * c` on the LM logits.
    pub final_logit_softcapping: Option<f64>,
    /// `tanh(x / c) * c` on the attention scores.
    pub attn_logit_softcapping: Option<f64>,
    /// Bidirectional attention (embedding models); only `null`/`false` is supported.
    pub use_bidirectional_attention: Option<bool>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Gemma2Config {
    /// `Gemma2Config()` in `transformers`: the gemma-2-2b shape.
    fn default() -> Self {
        Self {
            vocab_size: 256000,
            hidden_size: 2304,
            intermediate_size: 9216,
            num_hidden_layers: 26,
            num_attention_heads: 8,
            num_key_value_heads: 4,
            head_dim: 256,
            hidden_activation: Activation::GeluTanh,
            max_position_embeddings: 8192,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(1)),
            bos_token_id: Some(2),
            tie_word_embeddings: true,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: 0.0,
            query_pre_attn_scalar: 256.0,
            sliding_window: Some(4096),
            layer_types: None,
            final_logit_softcapping: Some(30.0),
            attn_logit_softcapping: Some(50.0),
            use_bidirectional_attention: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Gemma2Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        refuse_bidirectional_attention("gemma2", self.use_bidirectional_attention)?;
        let common = CommonConfig {
            model_type: "gemma2",
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
            rope: &self.rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        };
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        let o = &mut spec.options;
        o.qkv_bias = self.attention_bias;
        o.o_bias = self.attention_bias;
        o.norm_style = NormStyle::OnePlusWeight;
        o.scale_embeddings = true;
        o.sandwich_norms = true;
        o.attention_scale = Some(self.query_pre_attn_scalar.powf(-0.5));
        o.attn_logit_softcapping = self.attn_logit_softcapping;
        o.final_logit_softcapping = self.final_logit_softcapping;
        spec.set_layers(self.layer_types.as_deref(), self.sliding_window, |i| (i + 1) % 2 == 1)?;
        Ok(spec)
    }
}
