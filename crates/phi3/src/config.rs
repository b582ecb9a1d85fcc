//! `Phi3Config`, field for field as `transformers`' `configuration_phi3.Phi3Config` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Phi-3 model (`Phi3Config`), with the `transformers` defaults (those of
/// Phi-3-mini-4k-instruct). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `Phi3Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "phi3")]
#[serde(default)]
pub struct Phi3Config {
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
    /// Not a `Phi3Config` field, but `Phi3Attention` honours one that `config.json` sets;
    /// `None` is `hidden_size / num_attention_heads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub resid_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub embd_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// The context the model was trained on: `longrope` switches from its short to its long
    /// factors past it.
    pub original_max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`, whose legacy types `su` and `yarn`
    /// read as `longrope`), with `partial_rotary_factor`.
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// When set, every layer attends to the last `sliding_window` positions only.
    pub sliding_window: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Phi3Config {
    /// `Phi3Config()` in `transformers`: the Phi-3-mini shape.
    fn default() -> Self {
        Self {
            vocab_size: 32064,
            hidden_size: 3072,
            intermediate_size: 8192,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            head_dim: None,
            resid_pdrop: 0.0,
            embd_pdrop: 0.0,
            attention_dropout: 0.0,
            hidden_act: Activation::Silu,
            max_position_embeddings: 4096,
            original_max_position_embeddings: 4096,
            initializer_range: 0.02,
            rms_norm_eps: 1e-5,
            use_cache: true,
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(32000)),
            pad_token_id: Some(32000),
            sliding_window: None,
            labels: LabelConfig::default(),
        }
    }
}

impl Phi3Config {
    /// The rope with Phi-3's legacy types (`su`, `yarn`) renamed `longrope`, as
    /// `Phi3Config.convert_rope_params_to_dict` does; only `default` and `longrope` pass its
    /// `validate_rope`.
    fn phi3_rope(&self) -> Result<RopeConfig> {
        let mut rope = self.rope.clone();
        let p = &mut rope.parameters;
        let rope_type = p.rope_type().to_owned();
        let rope_type = match rope_type.as_str() {
            "su" | "yarn" => "longrope".to_owned(),
            "default" | "longrope" => rope_type,
            other => {
                return Err(Error::config(
                    "phi3",
                    format!("unknown rope type `{other}` for Phi-3: known types: default, longrope (su, yarn)"),
                ))
            }
        };
        p.rope_type = Some(rope_type);
        p.legacy_type = None;
        Ok(rope)
    }
}

impl DecoderConfig for Phi3Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let rope = self.phi3_rope()?;
        let mut spec = CommonConfig {
            model_type: "phi3",
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
            rope: &rope,
            partial_rotary: true,
            original_max_position_embeddings: Some(self.original_max_position_embeddings),
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }
        .spec()?;
        spec.options.fused_qkv = true;
        spec.options.fused_gate_up = true;
        spec.options.longrope_cache_reset = true;
        spec.set_layers(None, self.sliding_window, |_| self.sliding_window.is_some())?;
        Ok(spec)
    }
}
