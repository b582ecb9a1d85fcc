//! [`DecoderSpec`]: everything the shared decoder needs to know of an architecture, built by
//! each architecture's config ([`DecoderConfig`]).

use autocandle_core::{Activation, Error, RegisteredConfig, Result};

use crate::moe::MoeSpec;
use crate::rope::RopeSpec;

/// A typed architecture config that the shared decoder can run.
pub trait DecoderConfig: RegisteredConfig {
    /// The runtime settings of the decoder; an invalid config is [`Error::InvalidConfig`].
    fn decoder_spec(&self) -> Result<DecoderSpec>;
}

/// The attention pattern of one layer (`layer_types` in `transformers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerType {
    /// `full_attention`: causal over every past position.
    Full,
    /// `sliding_attention`: causal over the last `sliding_window` positions (the query's own
    /// included), as `sliding_window_causal_mask_function`.
    Sliding,
}

impl LayerType {
    /// Parse a `layer_types` entry.
    pub fn from_name(name: &str, model_type: &str) -> Result<Self> {
        match name {
            "full_attention" => Ok(Self::Full),
            "sliding_attention" => Ok(Self::Sliding),
            other => Err(Error::config(
                model_type,
                format!(
                    "unknown layer type `{other}` in `layer_types`: known types: full_attention, sliding_attention"
                ),
            )),
        }
    }

    /// The `transformers` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full_attention",
            Self::Sliding => "sliding_attention",
        }
    }
}

/// How RMSNorm applies its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormStyle {
    /// Llama: `weight * (x / rms(x)).to(dtype)`.
    #[default]
    Weight,
    /// Gemma: `((x / rms(x)) * (1 + weight))` in f32, then cast to the dtype.
    OnePlusWeight,
    /// OLMo-2: `(weight * (x / rms(x)))` in f32, then cast to the dtype.
    WeightInF32,
}

/// The kind of every norm of a decoder (the layers' and the final one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormKind {
    /// RMSNorm, applied as [`NormStyle`] says (Llama).
    #[default]
    Rms,
    /// LayerNorm over the last dimension: `nn.LayerNorm` (Phi, StarCoder2, StableLM) with a
    /// `bias`, or Cohere's mean-centred `CohereLayerNorm` without one.
    LayerNorm {
        /// Whether the norm has a `bias`.
        bias: bool,
    },
}

/// Per-head LayerNorms of queries and keys before rope, in their three layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkLayerNorm {
    /// Phi: `q_layernorm` / `k_layernorm`, one LayerNorm with bias over `head_dim` shared by
    /// every head.
    Shared,
    /// Cohere: `q_norm` / `k_norm`, a `[heads, head_dim]` weight without bias: one norm per head.
    PerHead,
    /// StableLM: `q_layernorm.norms.{i}` / `k_layernorm.norms.{i}`, one LayerNorm without bias
    /// per head.
    PerHeadList,
}

/// The feed-forward block of each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MlpKind {
    /// Llama's gated MLP: `down_proj(act(gate_proj(x)) * up_proj(x))`.
    #[default]
    Gated,
    /// A plain MLP `down(act(up(x)))` with these projection names (Phi: `fc1` / `fc2`,
    /// StarCoder2: `c_fc` / `c_proj`); biases as [`DecoderOptions::mlp_bias`] says.
    Plain {
        /// The name of the input projection.
        up: &'static str,
        /// The name of the output projection.
        down: &'static str,
    },
}

/// The architecture switches of the decoder; `Default` is Llama's choice for each.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderOptions {
    /// Bias on `q_proj`, `k_proj`, `v_proj` (`qkv_proj` when fused).
    pub qkv_bias: bool,
    /// Bias on `o_proj`.
    pub o_bias: bool,
    /// Bias on the MLP projections.
    pub mlp_bias: bool,
    /// One `qkv_proj` (Phi-3) instead of `q_proj`/`k_proj`/`v_proj`.
    pub fused_qkv: bool,
    /// One `gate_up_proj` (Phi-3, gate first) instead of `gate_proj`/`up_proj`.
    pub fused_gate_up: bool,
    /// Per-head RMSNorm of queries and keys before rope (`q_norm`/`k_norm`, Qwen3).
    pub qk_norm: bool,
    /// How every RMSNorm applies its weight.
    pub norm_style: NormStyle,
    /// Gemma-2's four norms per layer: `post_attention_layernorm` on the attention output,
    /// `pre_feedforward_layernorm` / `post_feedforward_layernorm` around the MLP.
    pub sandwich_norms: bool,
    /// The factor of the attention scores; `None` is `head_dim ** -0.5` (Gemma-2 uses
    /// `query_pre_attn_scalar ** -0.5`).
    pub attention_scale: Option<f64>,
    /// `tanh(x / c) * c` on the attention scores before the mask (Gemma-2).
    pub attn_logit_softcapping: Option<f64>,
    /// `tanh(x / c) * c` on the language-model logits (Gemma-2).
    pub final_logit_softcapping: Option<f64>,
    /// Multiply the embeddings by `sqrt(hidden_size)`, rounded to the model dtype (Gemma).
    pub scale_embeddings: bool,
    /// With `scale_embeddings`: the scale belongs to the embedding layer
    /// (`Gemma3TextScaledWordEmbedding`), so `inputs_embeds` given to the model arrive scaled;
    /// otherwise (Gemma, Gemma-2) the model scales whatever embeddings it is given.
    pub scaled_embedding_layer: bool,
    /// Bias on the token classifier's `score` (`token_classification_bias`, default true).
    pub token_classification_bias: bool,
    /// Phi-3: generation drops the cache and recomputes the whole sequence when the context
    /// first grows past the `original_max_position_embeddings` of a `longrope` rope
    /// (`Phi3ForCausalLM.prepare_inputs_for_generation`; see [`crate::CausalLm::reset_cache_at`]).
    pub longrope_cache_reset: bool,
    /// The rotary embedding of the `sliding_attention` layers when it differs from
    /// [`DecoderSpec::rope`] (Gemma-3's local rope, `rope_local_base_freq`); `None`: every
    /// layer uses `rope`.
    pub sliding_rope: Option<RopeSpec>,
    /// Per layer, whether it skips the rotary embedding (SmolLM3's NoPE layers, where
    /// `no_rope_layers` holds 0); empty: every layer rotates.
    pub skip_rope: Vec<bool>,
    /// RMSNorm of the whole query and key projections (`q_norm` of size
    /// `num_attention_heads * head_dim`, `k_norm` of `num_key_value_heads * head_dim`) before
    /// the heads are split (OLMo-2, OLMoE); `qk_norm` is the per-head form.
    pub qk_norm_full: bool,
    /// OLMo-2's norms: no `input_layernorm`; `post_attention_layernorm` on the attention output
    /// and `post_feedforward_layernorm` on the MLP output, each before its residual add.
    pub post_norms: bool,
    /// Granite: the embeddings are multiplied by this (`embedding_multiplier`).
    pub embedding_multiplier: Option<f64>,
    /// Granite: the attention and MLP outputs are multiplied by this before their residual
    /// add (`residual_multiplier`).
    pub residual_multiplier: Option<f64>,
    /// Granite: the language-model logits are divided by this (`logits_scaling`).
    pub logits_scaling: Option<f64>,
    /// The kind of every norm; the epsilon is [`DecoderSpec::rms_norm_eps`] for each kind.
    pub norm_kind: NormKind,
    /// Per-head LayerNorms of queries and keys (Phi, StableLM, Cohere); exclusive with
    /// [`DecoderOptions::qk_norm`].
    pub qk_layernorm: Option<QkLayerNorm>,
    /// The name of the attention output projection (`o_proj`; Phi: `dense`).
    pub o_proj_name: &'static str,
    /// The feed-forward block: gated (Llama) or plain (Phi, StarCoder2).
    pub mlp_kind: MlpKind,
    /// Attention and MLP both read the one `input_layernorm` and add to the residual together,
    /// `x + attn(ln(x)) + mlp(ln(x))` (Phi, Cohere, StableLM's `use_parallel_residual`); there
    /// is no `post_attention_layernorm`.
    pub parallel_block: bool,
    /// The name of the final norm (`norm`; Phi: `final_layernorm`).
    pub final_norm_name: &'static str,
    /// Bias on `lm_head` (Phi); kept apart from the embedding when the weight is tied.
    pub lm_head_bias: bool,
    /// A factor on the language-model logits (Cohere's `logit_scale`).
    pub logit_scale: Option<f64>,
    /// Rotary embedding on interleaved pairs `(x[2i], x[2i + 1])` instead of the two halves
    /// (Cohere), computed in f32 as Cohere's `apply_rotary_pos_emb` does.
    pub interleaved_rope: bool,
    /// Clamp the query, key and value projections to `[-c, c]` after the q/k norms (OLMo's
    /// and OLMoE's `clip_qkv`).
    pub clip_qkv: Option<f64>,
    /// The sparse mixture-of-experts feed-forward and the layers that use it (Qwen-MoE,
    /// Mixtral, OLMoE); `None` is a dense MLP in every layer.
    pub moe: Option<MoeSpec>,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self {
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            fused_qkv: false,
            fused_gate_up: false,
            qk_norm: false,
            norm_style: NormStyle::Weight,
            sandwich_norms: false,
            attention_scale: None,
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
            scale_embeddings: false,
            scaled_embedding_layer: false,
            token_classification_bias: true,
            longrope_cache_reset: false,
            sliding_rope: None,
            skip_rope: Vec::new(),
            qk_norm_full: false,
            post_norms: false,
            embedding_multiplier: None,
            residual_multiplier: None,
            logits_scaling: None,
            norm_kind: NormKind::Rms,
            qk_layernorm: None,
            o_proj_name: "o_proj",
            mlp_kind: MlpKind::Gated,
            parallel_block: false,
            final_norm_name: "norm",
            lm_head_bias: false,
            logit_scale: None,
            interleaved_rope: false,
            clip_qkv: None,
            moe: None,
        }
    }
}

/// The most layers a decoder config may have: real models have a few hundred; the bound keeps
/// a config's `num_hidden_layers` from sizing per-layer lists before the weights are read.
pub const MAX_HIDDEN_LAYERS: usize = 1 << 16;

/// The largest attention head a decoder config may have (real models: 64 to 512); the bound
/// keeps the rotary tables, sized by it before the weights are read, small.
pub const MAX_HEAD_DIM: usize = 1 << 16;

/// The runtime settings of a llama-like decoder, built from an architecture's config.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderSpec {
    /// Names the architecture in errors.
    pub model_type: &'static str,
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
    /// Size of one head (may differ from `hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Epsilon added to the mean square in every RMSNorm (to the variance in every LayerNorm
    /// with [`NormKind::LayerNorm`]).
    pub rms_norm_eps: f64,
    /// The MLP activation.
    pub hidden_act: Activation,
    /// The resolved rotary embedding (see [`crate::RopeConfig::resolve`]).
    pub rope: RopeSpec,
    /// One entry per layer; sliding layers need `sliding_window`.
    pub layer_types: Vec<LayerType>,
    /// The window of sliding layers.
    pub sliding_window: Option<usize>,
    /// The LM head shares `embed_tokens` (then `transformers` does not save `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// Sequence classification pools the last token that is not this one.
    pub pad_token_id: Option<i64>,
    /// Outputs of the sequence and token classifiers.
    pub num_labels: usize,
    /// `use_cache`: in `transformers` a forward pass without a cache but with `use_cache`
    /// builds an empty cache, which turns off its packed-sequence detection; mirrored.
    pub use_cache: bool,
    /// The switches where an architecture differs from Llama (norms, biases, soft-capping, ...).
    pub options: DecoderOptions,
}

impl DecoderSpec {
    /// Set `sliding_window` and `layer_types`: the config's `layer_types` names when it has
    /// them, else layer `i` slides when `default_sliding(i)`. Checked by
    /// [`DecoderSpec::validate`] (sliding layers need a window).
    pub fn set_layers(
        &mut self,
        names: Option<&[String]>,
        sliding_window: Option<usize>,
        default_sliding: impl Fn(usize) -> bool,
    ) -> Result<()> {
        self.layer_types = match names {
            Some(names) => names.iter().map(|n| LayerType::from_name(n, self.model_type)).collect::<Result<_>>()?,
            None => (0..self.num_hidden_layers)
                .map(|i| if default_sliding(i) { LayerType::Sliding } else { LayerType::Full })
                .collect(),
        };
        self.sliding_window = sliding_window;
        self.validate()
    }

    /// The most positions the model attends over, or `None` when its rope extends beyond
    /// `max_position_embeddings` (`dynamic`).
    pub fn max_positions(&self) -> Option<usize> {
        (!self.rope.extends_context()).then_some(self.max_position_embeddings)
    }

    /// Whether any layer uses a sliding window.
    pub fn has_sliding_layers(&self) -> bool {
        self.layer_types.contains(&LayerType::Sliding)
    }

    /// Check what the decoder needs of the settings.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(self.model_type, message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return invalid(format!(
                "`num_attention_heads` ({}) must be a multiple of `num_key_value_heads` ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.layer_types.len() != self.num_hidden_layers {
            return invalid(format!(
                "`layer_types` has {} entries but the model has {} layers (`num_hidden_layers`)",
                self.layer_types.len(),
                self.num_hidden_layers
            ));
        }
        match self.sliding_window {
            Some(0) => return invalid("`sliding_window` must be at least 1, got 0".to_owned()),
            None if self.has_sliding_layers() => {
                return invalid(
                    "`layer_types` has `sliding_attention` layers but no `sliding_window` is set \
                     (for Qwen, `use_sliding_window` must be true)"
                        .to_owned(),
                )
            }
            _ => {}
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return invalid(format!("`rms_norm_eps` must be a finite number >= 0, got {}", self.rms_norm_eps));
        }
        if self.rope.rotary_dim > self.head_dim {
            return invalid(format!(
                "the rotary dimension ({}) is larger than `head_dim` ({})",
                self.rope.rotary_dim, self.head_dim
            ));
        }
        let o = &self.options;
        for (name, cap) in [
            ("attn_logit_softcapping", o.attn_logit_softcapping),
            ("final_logit_softcapping", o.final_logit_softcapping),
        ] {
            if let Some(c) = cap {
                if !(c.is_finite() && c > 0.0) {
                    return invalid(format!("`{name}` must be a finite number > 0 or null, got {c}"));
                }
            }
        }
        if o.qk_norm && o.qk_layernorm.is_some() {
            return invalid("the RMSNorm `qk_norm` and a `qk_layernorm` cannot both be set".to_owned());
        }
        if let Some(s) = o.logit_scale {
            if !s.is_finite() {
                return invalid(format!("`logit_scale` must be a finite number, got {s}"));
            }
        }
        if let Some(s) = o.attention_scale {
            if !(s.is_finite() && s > 0.0) {
                return invalid(format!("the attention scale must be a finite number > 0, got {s}"));
            }
        }
        self.validate_variants()
    }

    /// The checks of the options added for Gemma-3, SmolLM3, OLMo-2 and Granite.
    fn validate_variants(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config(self.model_type, message));
        let o = &self.options;
        if let Some(rope) = &o.sliding_rope {
            if rope.rotary_dim > self.head_dim {
                return invalid(format!(
                    "the rotary dimension of the sliding layers ({}) is larger than `head_dim` ({})",
                    rope.rotary_dim, self.head_dim
                ));
            }
        }
        if !o.skip_rope.is_empty() && o.skip_rope.len() != self.num_hidden_layers {
            return invalid(format!(
                "the per-layer rope switches have {} entries but the model has {} layers (`num_hidden_layers`)",
                o.skip_rope.len(),
                self.num_hidden_layers
            ));
        }
        if o.qk_norm && o.qk_norm_full {
            return invalid("per-head and whole-projection q/k norms cannot both be on".to_owned());
        }
        if o.post_norms && o.sandwich_norms {
            return invalid("post-norms (OLMo-2) and sandwich norms (Gemma-2) cannot both be on".to_owned());
        }
        for (name, value) in [
            ("embedding_multiplier", o.embedding_multiplier),
            ("residual_multiplier", o.residual_multiplier),
            ("logits_scaling", o.logits_scaling),
        ] {
            if let Some(v) = value {
                if !(v.is_finite() && v != 0.0) {
                    return invalid(format!("`{name}` must be a finite, non-zero number, got {v}"));
                }
            }
        }
        if let Some(c) = o.clip_qkv {
            if !(c.is_finite() && c > 0.0) {
                return invalid(format!("`clip_qkv` must be a finite number > 0 or null, got {c}"));
            }
        }
        if let Some(moe) = &o.moe {
            moe.validate(self.model_type, self.num_hidden_layers)?;
        }
        Ok(())
    }
}
