//! Rotary position embeddings with `transformers`' scaling types (`modeling_rope_utils.py`):
//! reading them from a config ([`RopeConfig`]), resolving them for one architecture
//! ([`RopeSpec`]) and applying them ([`RotaryEmbedding`]).
//!
//! The inverse frequencies are computed with the same `f32` tensor arithmetic as `transformers`
//! (and `f64` where it uses Python floats), so they agree to the last bit or two.

use std::f64::consts::PI;

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use autocandle_core::{Error, Result};

/// The scaling types [`RopeConfig::resolve`] knows, as `rope_type` spells them.
pub const KNOWN_ROPE_TYPES: &[&str] = &["default", "linear", "dynamic", "yarn", "longrope", "llama3"];

/// The theta of `RotaryEmbeddingConfigMixin.default_theta`, used when a config gives none.
pub const DEFAULT_ROPE_THETA: f64 = 10_000.0;

/// One `rope_parameters` (or legacy `rope_scaling`) dict, `transformers`' `RopeParameters`.
///
/// Every key is optional as in `config.json`; keys this type does not name are kept in
/// `extra` so that a config round-trips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RopeParameters {
    /// `default`, `linear`, `dynamic`, `yarn`, `longrope` or `llama3`; `None` is `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    /// The legacy name of `rope_type` (`rope_scaling: {"type": "linear"}`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub legacy_type: Option<String>,
    /// Base of the rotary frequencies (`10000.0` when neither here nor in the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Fraction of each head's dimensions that are rotated (Phi-3, ...); `None` is all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_rotary_factor: Option<f64>,
    /// Context scaling factor of `linear`, `dynamic`, `yarn`, `llama3` and `longrope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Context length the model was pretrained with, before scaling (`yarn`, `llama3`,
    /// `longrope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
    /// Factor on cos and sin (`yarn`, `longrope`); `None` derives it from `factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_factor: Option<f64>,
    /// `yarn`: the fast boundary of the frequency ramp (default 32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_fast: Option<f64>,
    /// `yarn`: the slow boundary of the frequency ramp (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_slow: Option<f64>,
    /// `longrope`: per-frequency factors for sequences within the original context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_factor: Option<Vec<f64>>,
    /// `longrope`: per-frequency factors for sequences beyond the original context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_factor: Option<Vec<f64>>,
    /// `llama3`: wavelengths longer than `original_max_position_embeddings / low_freq_factor`
    /// are scaled by `factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// `llama3`: wavelengths shorter than `original_max_position_embeddings / high_freq_factor`
    /// are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// `yarn` (DeepSeek form): multiplier in the attention factor's `0.1 * mscale * ln(factor) + 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mscale: Option<f64>,
    /// `yarn` (DeepSeek form): the divisor's `mscale` in the attention factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mscale_all_dim: Option<f64>,
    /// `yarn`: round the ramp's boundaries to whole dimensions (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Keys not named above (`mrope_section`, ...), kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RopeParameters {
    /// Whether the dict is empty (`{}`), which `transformers` treats as absent.
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The scaling type: `rope_type`, else the legacy `type`, else `default`.
    pub fn rope_type(&self) -> &str {
        self.rope_type.as_deref().or(self.legacy_type.as_deref()).unwrap_or("default")
    }

    /// The base wavelength.
    pub fn theta(&self) -> f64 {
        self.rope_theta.unwrap_or(DEFAULT_ROPE_THETA)
    }
}

/// The rotary settings of a config, read from both spellings `transformers` accepts: the
/// older `rope_theta` + `rope_scaling` (with `type` or `rope_type`) and the newer
/// `rope_parameters` (`{"rope_type": ..., "rope_theta": ...}`), plus a top-level
/// `partial_rotary_factor`.
///
/// Flatten it into an architecture config (`#[serde(flatten)] pub rope: RopeConfig`). It is
/// standardised on reading as `convert_rope_params_to_dict` does (a non-empty `rope_scaling`
/// wins over `rope_parameters`; `rope_theta` and `partial_rotary_factor` fill in what the dict
/// lacks; `rope_type` defaults to `type`, then `default`) and written back as one
/// `rope_parameters` dict, as `transformers` saves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawRopeConfig", into = "RawRopeConfig")]
pub struct RopeConfig {
    /// The standardised `rope_parameters`: `rope_type` and `rope_theta` are always set.
    pub parameters: RopeParameters,
}

impl Default for RopeConfig {
    fn default() -> Self {
        Self::from(RawRopeConfig::default())
    }
}

/// The rope keys of `config.json` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawRopeConfig {
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "named::rope_parameters")]
    rope_parameters: Option<RopeParameters>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "named::rope_scaling")]
    rope_scaling: Option<RopeParameters>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "named::rope_theta")]
    rope_theta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "named::partial_rotary_factor")]
    partial_rotary_factor: Option<f64>,
}

/// The rope keys are read through `#[serde(flatten)]`, which loses the path that other config
/// errors name: these name the field themselves.
mod named {
    use serde::{Deserialize, Deserializer};

    use super::RopeParameters;

    fn field<'de, D: Deserializer<'de>, T: Deserialize<'de>>(name: &str, d: D) -> Result<T, D::Error> {
        T::deserialize(d).map_err(|e| serde::de::Error::custom(format!("field `{name}`: {e}")))
    }

    pub fn rope_parameters<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RopeParameters>, D::Error> {
        field("rope_parameters", d)
    }

    pub fn rope_scaling<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RopeParameters>, D::Error> {
        field("rope_scaling", d)
    }

    pub fn rope_theta<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        field("rope_theta", d)
    }

    pub fn partial_rotary_factor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        field("partial_rotary_factor", d)
    }
}

impl From<RawRopeConfig> for RopeConfig {
    fn from(raw: RawRopeConfig) -> Self {
        let mut parameters = match (raw.rope_scaling, raw.rope_parameters) {
            (Some(scaling), _) if !scaling.is_empty() => scaling,
            (_, Some(parameters)) => parameters,
            _ => RopeParameters::default(),
        };
        if parameters.rope_theta.is_none() {
            parameters.rope_theta = Some(raw.rope_theta.unwrap_or(DEFAULT_ROPE_THETA));
        }
        if parameters.partial_rotary_factor.is_none() {
            parameters.partial_rotary_factor = raw.partial_rotary_factor;
        }
        if parameters.rope_type.is_none() {
            parameters.rope_type = Some(parameters.rope_type().to_owned());
        }
        Self { parameters }
    }
}

impl From<RopeConfig> for RawRopeConfig {
    fn from(config: RopeConfig) -> Self {
        Self { rope_parameters: Some(config.parameters), ..Self::default() }
    }
}

/// What [`RopeConfig::resolve`] needs to know of the architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeContext {
    /// Names the architecture in errors.
    pub model_type: &'static str,
    /// Size of one attention head.
    pub head_dim: usize,
    /// `max_position_embeddings`.
    pub max_position_embeddings: usize,
    /// An `original_max_position_embeddings` the config keeps outside `rope_parameters`
    /// (Phi-3): it overrides the one in the dict for `llama3`, `yarn` and `longrope`, as
    /// `standardize_rope_params` does.
    pub original_max_position_embeddings: Option<usize>,
    /// Whether the architecture rotates only `partial_rotary_factor` of each head (Phi-3's
    /// `apply_rotary_pos_emb`) and honours the factor for `default` rope too. Llama-like
    /// architectures rotate the whole head: their `default` rope ignores the factor and
    /// the other types fail in `transformers` when it is below 1, so [`RopeConfig::resolve`]
    /// refuses that.
    pub partial_rotary: bool,
}

/// The resolved rotary embedding of a model: how many dimensions of each head rotate, and
/// the frequencies.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSpec {
    /// Rotated dimensions of each head (even); the rest pass through.
    pub rotary_dim: usize,
    /// The frequencies.
    pub kind: RopeKind,
}

/// Inverse frequencies (`rotary_dim / 2` of them), fixed or chosen per call.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeKind {
    /// `default`, `linear`, `yarn`, `llama3`: one set of frequencies, and the factor
    /// `attention_scaling` that multiplies cos and sin.
    Fixed {
        /// The inverse frequencies.
        inv_freq: Vec<f32>,
        /// The factor on cos and sin.
        attention_scaling: f64,
    },
    /// `dynamic` (NTK): the base grows with the sequence once it is longer than
    /// `max_position_embeddings`, recomputed from the largest position of each call.
    ///
    /// `transformers` keeps the grown frequencies in the module until a call is shorter than
    /// `max_position_embeddings` again; here each call uses its own length. The two agree
    /// whenever calls grow (generation, with or without a cache) and differ only for a call
    /// shorter than an earlier one yet still beyond `max_position_embeddings`, where
    /// `transformers`' result depends on the calls before it.
    Dynamic {
        /// `rope_theta` before growing.
        base: f64,
        /// The scaling factor.
        factor: f64,
        /// The length beyond which the base grows.
        max_position_embeddings: usize,
        /// The frequencies of calls within `max_position_embeddings`.
        inv_freq: Vec<f32>,
    },
    /// `longrope`: `long` frequencies when the largest position of the call reaches
    /// `original_max_position_embeddings`, else `short`.
    LongRope {
        /// The frequencies within the original context (`short_factor` applied).
        short: Vec<f32>,
        /// The frequencies beyond it (`long_factor` applied).
        long: Vec<f32>,
        /// The length from which `long` is used.
        original_max_position_embeddings: usize,
        /// The factor on cos and sin.
        attention_scaling: f64,
    },
}

impl RopeSpec {
    /// Whether the model can attend beyond `max_position_embeddings` (`dynamic` rope exists
    /// for exactly that).
    pub fn extends_context(&self) -> bool {
        matches!(self.kind, RopeKind::Dynamic { .. })
    }

    /// The inverse frequencies used for a call whose largest position is `max_position`.
    pub fn inv_freq(&self, max_position: usize) -> Vec<f32> {
        let seq_len = max_position + 1;
        match &self.kind {
            RopeKind::Fixed { inv_freq, .. } => inv_freq.clone(),
            RopeKind::Dynamic { base, factor, max_position_embeddings, inv_freq } => {
                if seq_len > *max_position_embeddings {
                    dynamic_inv_freq_runtime(*base, *factor, *max_position_embeddings, seq_len, self.rotary_dim)
                } else {
                    inv_freq.clone()
                }
            }
            RopeKind::LongRope { short, long, original_max_position_embeddings, .. } => {
                if seq_len > *original_max_position_embeddings {
                    long.clone()
                } else {
                    short.clone()
                }
            }
        }
    }

    /// For `longrope`, `original_max_position_embeddings`: calls whose largest position
    /// reaches it use the long factors, so keys cached before with the short ones no longer
    /// match (Phi-3's `prepare_inputs_for_generation` drops its cache when the sequence first
    /// grows past it and recomputes the whole sequence).
    pub fn long_context_threshold(&self) -> Option<usize> {
        match &self.kind {
            RopeKind::LongRope { original_max_position_embeddings, .. } => Some(*original_max_position_embeddings),
            _ => None,
        }
    }

    /// The factor that multiplies cos and sin.
    pub fn attention_scaling(&self) -> f64 {
        match &self.kind {
            RopeKind::Fixed { attention_scaling, .. } | RopeKind::LongRope { attention_scaling, .. } => {
                *attention_scaling
            }
            RopeKind::Dynamic { .. } => 1.0,
        }
    }
}

impl RopeConfig {
    /// A config with the `default` type and `rope_theta`.
    pub fn with_theta(rope_theta: f64) -> Self {
        Self::from(RawRopeConfig { rope_theta: Some(rope_theta), ..RawRopeConfig::default() })
    }

    /// Resolve the settings for an architecture: check the keys the type needs and compute
    /// the frequencies (`ROPE_INIT_FUNCTIONS`).
    ///
    /// An unknown `rope_type` is [`Error::Unsupported`] naming it and listing
    /// [`KNOWN_ROPE_TYPES`]; a missing or meaningless key is [`Error::InvalidConfig`].
    pub fn resolve(&self, ctx: &RopeContext) -> Result<RopeSpec> {
        let p = &self.parameters;
        let rope_type = p.rope_type();
        let invalid = |message: String| Error::config(ctx.model_type, message);
        let require = |value: Option<f64>, key: &str| {
            value.ok_or_else(|| invalid(format!("`rope_parameters` of type `{rope_type}` needs `{key}`")))
        };
        if !KNOWN_ROPE_TYPES.contains(&rope_type) {
            return Err(Error::Unsupported(format!(
                "rope type `{rope_type}` of `{}`: known rope types: {}",
                ctx.model_type,
                KNOWN_ROPE_TYPES.join(", ")
            )));
        }
        for layer_type in ["full_attention", "sliding_attention"] {
            if p.extra.contains_key(layer_type) {
                return Err(Error::Unsupported(format!(
                    "per-layer-type `rope_parameters` (`{layer_type}`) in a `{}` config",
                    ctx.model_type
                )));
            }
        }
        let base = p.theta();
        if !(base.is_finite() && base > 1.0) {
            return Err(invalid(format!("`rope_theta` must be a finite number > 1, got {base}")));
        }
        let partial = p.partial_rotary_factor.unwrap_or(1.0);
        if !(partial > 0.0 && partial <= 1.0) {
            return Err(invalid(format!("`partial_rotary_factor` must be in (0, 1], got {partial}")));
        }
        let dim = if ctx.partial_rotary {
            (ctx.head_dim as f64 * partial) as usize
        } else {
            if partial < 1.0 && rope_type != "default" {
                return Err(Error::Unsupported(format!(
                    "`partial_rotary_factor` {partial} with rope type `{rope_type}`: `{}` rotates whole heads \
                     (transformers fails on this config too)",
                    ctx.model_type
                )));
            }
            ctx.head_dim
        };
        if dim == 0 || dim % 2 != 0 {
            return Err(invalid(format!(
                "the rotary dimension (head_dim {} x partial_rotary_factor {partial} = {dim}) must be even and \
                 at least 2",
                ctx.head_dim
            )));
        }
        let original_max = || -> Result<usize> {
            let value = ctx
                .original_max_position_embeddings
                .or(p.original_max_position_embeddings)
                .unwrap_or(ctx.max_position_embeddings);
            if value == 0 {
                return Err(invalid("`original_max_position_embeddings` must be at least 1".to_owned()));
            }
            Ok(value)
        };
        let positive = |value: f64, key: &str| -> Result<f64> {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(invalid(format!("`rope_parameters.{key}` must be a finite number > 0, got {value}")))
            }
        };

        let kind = match rope_type {
            "default" => RopeKind::Fixed { inv_freq: default_inv_freq(base, dim), attention_scaling: 1.0 },
            "linear" => {
                let factor = positive(require(p.factor, "factor")?, "factor")?;
                let factor32 = factor as f32;
                let inv_freq = default_inv_freq(base, dim).into_iter().map(|f| f / factor32).collect();
                RopeKind::Fixed { inv_freq, attention_scaling: 1.0 }
            }
            "dynamic" => {
                let factor = positive(require(p.factor, "factor")?, "factor")?;
                if dim <= 2 {
                    return Err(invalid(format!("dynamic rope needs a rotary dimension above 2, got {dim}")));
                }
                let max = ctx.max_position_embeddings;
                // At init `seq_len` is `max_position_embeddings`, in Python floats.
                let scaled =
                    base * ((factor * max as f64 / max as f64) - (factor - 1.0)).powf(dim as f64 / (dim - 2) as f64);
                RopeKind::Dynamic {
                    base,
                    factor,
                    max_position_embeddings: max,
                    inv_freq: default_inv_freq(scaled, dim),
                }
            }
            "yarn" => {
                let original = original_max()?;
                let factor = match p.factor {
                    Some(f) => positive(f, "factor")?,
                    None => ctx.max_position_embeddings as f64 / original as f64,
                };
                let (inv_freq, attention_scaling) = yarn(p, base, dim, factor, original);
                RopeKind::Fixed { inv_freq, attention_scaling }
            }
            "longrope" => {
                let original = original_max()?;
                let half = dim / 2;
                let factors = |value: &Option<Vec<f64>>, key: &str| -> Result<Vec<f32>> {
                    match value {
                        Some(v) if v.len() == half => Ok(v.iter().map(|&x| x as f32).collect()),
                        Some(v) => Err(invalid(format!(
                            "`rope_parameters.{key}` must have {half} entries (rotary dimension / 2), got {}",
                            v.len()
                        ))),
                        None => Err(invalid(format!("`rope_parameters` of type `longrope` needs `{key}`"))),
                    }
                };
                let short = factors(&p.short_factor, "short_factor")?;
                let long = factors(&p.long_factor, "long_factor")?;
                let factor = p.factor.unwrap_or(ctx.max_position_embeddings as f64 / original as f64);
                let attention_scaling = match p.attention_factor {
                    Some(a) => a,
                    None if factor <= 1.0 => 1.0,
                    None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
                };
                RopeKind::LongRope {
                    short: longrope_inv_freq(base, dim, &short),
                    long: longrope_inv_freq(base, dim, &long),
                    original_max_position_embeddings: original,
                    attention_scaling,
                }
            }
            "llama3" => {
                let factor = positive(require(p.factor, "factor")?, "factor")?;
                let low = positive(require(p.low_freq_factor, "low_freq_factor")?, "low_freq_factor")?;
                let high = positive(require(p.high_freq_factor, "high_freq_factor")?, "high_freq_factor")?;
                if high == low {
                    return Err(invalid(
                        "`rope_parameters.high_freq_factor` must differ from `low_freq_factor`".to_owned(),
                    ));
                }
                let inv_freq = llama3_inv_freq(base, dim, factor, low, high, original_max()? as f64);
                RopeKind::Fixed { inv_freq, attention_scaling: 1.0 }
            }
            // Checked against KNOWN_ROPE_TYPES above.
            other => return Err(Error::Unsupported(format!("rope type `{other}`"))),
        };
        Ok(RopeSpec { rotary_dim: dim, kind })
    }
}

/// `torch.arange(0, dim, 2).float() / dim`, in f32.
fn exponents(dim: usize) -> impl Iterator<Item = f32> {
    (0..dim).step_by(2).map(move |i| i as f32 / dim as f32)
}

/// `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`, in f32.
fn default_inv_freq(base: f64, dim: usize) -> Vec<f32> {
    let base = base as f32;
    exponents(dim).map(|e| 1.0 / base.powf(e)).collect()
}

/// `_compute_dynamic_ntk_parameters` with a tensor `seq_len`, as in the forward pass: the
/// new base is an f32 tensor.
fn dynamic_inv_freq_runtime(base: f64, factor: f64, max: usize, seq_len: usize, dim: usize) -> Vec<f32> {
    let ratio = (factor as f32) * (seq_len as f32) / (max as f32) - (factor - 1.0) as f32;
    let scaled = (base as f32) * ratio.powf((dim as f64 / (dim - 2) as f64) as f32);
    exponents(dim).map(|e| 1.0 / scaled.powf(e)).collect()
}

/// `_compute_yarn_parameters`: the frequencies and the attention factor.
fn yarn(p: &RopeParameters, base: f64, dim: usize, factor: f64, original: usize) -> (Vec<f32>, f64) {
    let get_mscale = |scale: f64, mscale: f64| if scale <= 1.0 { 1.0 } else { 0.1 * mscale * scale.ln() + 1.0 };
    let attention_factor = match (p.attention_factor, p.mscale, p.mscale_all_dim) {
        (Some(a), _, _) => a,
        (None, Some(m), Some(m_all)) if m != 0.0 && m_all != 0.0 => get_mscale(factor, m) / get_mscale(factor, m_all),
        _ => get_mscale(factor, 1.0),
    };
    // `or 32` / `or 1`: zero counts as unset.
    let beta_fast = p.beta_fast.filter(|&b| b != 0.0).unwrap_or(32.0);
    let beta_slow = p.beta_slow.filter(|&b| b != 0.0).unwrap_or(1.0);
    let truncate = p.truncate.unwrap_or(true);

    let correction_dim =
        |rotations: f64| (dim as f64 * (original as f64 / (rotations * 2.0 * PI)).ln()) / (2.0 * base.ln());
    let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
    if truncate {
        low = low.floor();
        high = high.ceil();
    }
    let low = low.max(0.0);
    let mut high = high.min((dim - 1) as f64);
    if low == high {
        high += 0.001;
    }

    let base32 = base as f32;
    let factor32 = factor as f32;
    let span = (high - low) as f32;
    let inv_freq = exponents(dim)
        .enumerate()
        .map(|(i, e)| {
            let pos_freq = base32.powf(e);
            let extrapolation = 1.0 / pos_freq;
            let interpolation = 1.0 / (factor32 * pos_freq);
            let ramp = ((i as f32 - low as f32) / span).clamp(0.0, 1.0);
            let extrapolation_factor = 1.0 - ramp;
            interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor
        })
        .collect();
    (inv_freq, attention_factor)
}

/// `_compute_longrope_parameters`: `1 / (ext_factors * base ** (arange / dim))`.
fn longrope_inv_freq(base: f64, dim: usize, factors: &[f32]) -> Vec<f32> {
    let base = base as f32;
    exponents(dim).zip(factors).map(|(e, f)| 1.0 / (f * base.powf(e))).collect()
}

/// `_compute_llama3_parameters`. `scalar / tensor` is `tensor.reciprocal() * scalar` in torch.
fn llama3_inv_freq(base: f64, dim: usize, factor: f64, low: f64, high: f64, old_context: f64) -> Vec<f32> {
    let low_freq_wavelen = (old_context / low) as f32;
    let high_freq_wavelen = (old_context / high) as f32;
    let factor32 = factor as f32;
    default_inv_freq(base, dim)
        .into_iter()
        .map(|inv| {
            let wavelen = (1.0 / inv) * (2.0 * PI) as f32;
            let scaled = if wavelen > low_freq_wavelen { inv / factor32 } else { inv };
            let smooth = ((1.0 / wavelen) * old_context as f32 - low as f32) / (high - low) as f32;
            let smoothed = (1.0 - smooth) * scaled / factor32 + smooth * scaled;
            // `~(w < high) * ~(w > low)`; the wavelengths are finite.
            let is_medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
            if is_medium {
                smoothed
            } else {
                scaled
            }
        })
        .collect()
}

/// The rotary embedding of a model: cos/sin for given positions, and their application to
/// queries and keys (`LlamaRotaryEmbedding` + `apply_rotary_pos_emb`, with Phi-3's partial
/// rotation).
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    spec: RopeSpec,
    head_dim: usize,
    /// The fixed inverse frequencies as a `[rotary_dim / 2]` f32 tensor, when they do not
    /// depend on the call.
    fixed: Option<Tensor>,
    device: Device,
    /// Rotate interleaved pairs `(x[2i], x[2i + 1])` (Cohere) instead of the two halves.
    interleaved: bool,
}

/// Cos and sin for one call, `[batch or 1, seq, rotary_dim / 2]` in the model dtype.
#[derive(Debug, Clone)]
pub struct CosSin {
    /// Cosines of the rotation angles.
    pub cos: Tensor,
    /// Sines of the rotation angles.
    pub sin: Tensor,
}

impl RotaryEmbedding {
    /// The embedding for heads of `head_dim` dimensions.
    pub fn new(spec: RopeSpec, head_dim: usize, device: &Device) -> Result<Self> {
        if spec.rotary_dim > head_dim {
            return Err(Error::InvalidInput(format!(
                "rotary dimension {} is larger than the head dimension {head_dim}",
                spec.rotary_dim
            )));
        }
        let fixed = match &spec.kind {
            RopeKind::Fixed { inv_freq, .. } => Some(Tensor::new(inv_freq.as_slice(), device)?),
            _ => None,
        };
        Ok(Self { spec, head_dim, fixed, device: device.clone(), interleaved: false })
    }

    /// The same embedding rotating interleaved pairs `(x[2i], x[2i + 1])` when `interleaved`
    /// (Cohere's `rotate_half` with `repeat_interleave`d cos and sin), computed in f32 as
    /// Cohere's `apply_rotary_pos_emb` does.
    pub fn with_interleaved(mut self, interleaved: bool) -> Self {
        self.interleaved = interleaved;
        self
    }

    /// The resolved settings.
    pub fn spec(&self) -> &RopeSpec {
        &self.spec
    }

    /// Cos and sin for `positions` (`[batch or 1, seq]`, u32), whose largest value is
    /// `max_position` (it picks the frequencies of `dynamic` and `longrope`).
    pub fn cos_sin(&self, positions: &Tensor, max_position: usize, dtype: DType) -> Result<CosSin> {
        let inv_freq = match &self.fixed {
            Some(t) => t.clone(),
            None => Tensor::new(self.spec.inv_freq(max_position).as_slice(), &self.device)?,
        };
        let half = inv_freq.dim(0)?;
        let freqs =
            positions.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?.broadcast_mul(&inv_freq.reshape((1, 1, half))?)?;
        let scaling = self.spec.attention_scaling();
        let (mut cos, mut sin) = (freqs.cos()?, freqs.sin()?);
        if scaling != 1.0 {
            cos = cos.affine(scaling, 0.0)?;
            sin = sin.affine(scaling, 0.0)?;
        }
        Ok(CosSin { cos: cos.to_dtype(dtype)?.contiguous()?, sin: sin.to_dtype(dtype)?.contiguous()? })
    }

    /// Rotate `x` (`[batch, heads, seq, head_dim]`): `x * cos + rotate_half(x) * sin` on the
    /// first `rotary_dim` dimensions, the rest unchanged.
    pub fn apply(&self, x: &Tensor, cs: &CosSin) -> Result<Tensor> {
        let (batch, _, _, _) = x.dims4()?;
        let (cos, sin) = if cs.cos.dim(0)? == batch {
            (cs.cos.clone(), cs.sin.clone())
        } else {
            // One row of positions for every batch row.
            (cs.cos.squeeze(0)?, cs.sin.squeeze(0)?)
        };
        let rotary = self.spec.rotary_dim;
        if self.interleaved {
            return self.apply_interleaved(x, &cos, &sin);
        }
        if rotary == self.head_dim {
            return Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)?);
        }
        let rot = x.narrow(D::Minus1, 0, rotary)?.contiguous()?;
        let pass = x.narrow(D::Minus1, rotary, self.head_dim - rotary)?;
        let rot = candle_nn::rotary_emb::rope(&rot, &cos, &sin)?;
        Ok(Tensor::cat(&[&rot, &pass], D::Minus1)?.contiguous()?)
    }

    /// [`RotaryEmbedding::apply`] on interleaved pairs, in f32, the result cast back.
    fn apply_interleaved(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let f32 = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F32)?.contiguous()?) };
        let rotary = self.spec.rotary_dim;
        let (cos, sin) = (f32(cos)?, f32(sin)?);
        let rot = candle_nn::rotary_emb::rope_i(&f32(&x.narrow(D::Minus1, 0, rotary)?)?, &cos, &sin)?;
        let out = if rotary == self.head_dim {
            rot
        } else {
            let pass = x.narrow(D::Minus1, rotary, self.head_dim - rotary)?.to_dtype(DType::F32)?;
            Tensor::cat(&[&rot, &pass], D::Minus1)?
        };
        Ok(out.to_dtype(dtype)?.contiguous()?)
    }
}
