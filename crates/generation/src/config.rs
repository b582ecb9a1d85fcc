//! `GenerationConfig`: the decoding settings of `generation_config.json`, after `transformers`'
//! `GenerationConfig`, with its defaults, its validation and its loading rules.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use autocandle_core::LoadOptions;
use autocandle_core::{Error, Result};

/// How a sequence is decoded (`transformers.GenerationConfig`).
///
/// Every field is optional, as in `transformers` 5: an unset field takes the value of the
/// model's `generation_config.json` when the config is merged with it
/// ([`GenerationConfig::fill_from`]), and otherwise `transformers`' global default, listed on
/// each field. Builder methods set single fields:
///
/// ```
/// use autocandle_generation::GenerationConfig;
/// let config = GenerationConfig::new().max_new_tokens(32).do_sample(true).temperature(0.7).top_p(0.9).seed(42);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct GenerationConfig {
    /// Largest total length, prompt included (default 20 new tokens after the prompt, capped at
    /// the model's `max_position_embeddings`). `max_new_tokens` takes precedence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Largest number of generated tokens, prompt excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    /// Smallest total length, prompt included, before an EOS token may be chosen (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Smallest number of generated tokens before an EOS token may be chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_new_tokens: Option<usize>,
    /// Sample from the distribution instead of taking the most likely token (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_sample: Option<bool>,
    /// Number of beams (default 1: greedy decoding or sampling); above 1, beam search, for
    /// causal and sequence-to-sequence models alike (not combined with `do_sample`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<usize>,
    /// Beam search: finished hypotheses score `sum(log p) / length ** length_penalty`, the
    /// length counting the generated tokens only (default 1.0; > 0 favours longer sequences,
    /// < 0 shorter ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<f64>,
    /// Beam search: when to stop (default `false`, a heuristic; `true` as soon as `num_beams`
    /// hypotheses are finished; `"never"` only when no better hypothesis is possible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// How many sequences to return per input (default 1; at most `num_beams` with beams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_return_sequences: Option<usize>,
    /// Encoder-decoders: the token the decoder starts from (default: the model config's).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "token_id")]
    pub decoder_start_token_id: Option<u32>,
    /// Force this token as the first generated one (mBART, BART's summarisation models).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "token_id")]
    pub forced_bos_token_id: Option<u32>,
    /// Force one of these tokens as the last one when `max_length` is reached.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "one_or_many_ids")]
    pub forced_eos_token_id: Option<Vec<u32>>,
    /// Whether to use the key/value cache when the model has one (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
    /// Divides the logits before sampling (default 1.0, sampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Keep the `top_k` most likely tokens (default 50, sampling only; 0 keeps every token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability adds up to `top_p`
    /// (default 1.0, sampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Drop tokens less likely than `min_p` times the most likely one (sampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Penalise tokens already in the sequence (default 1.0, no penalty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    /// Forbid repeating any n-gram of this size (default 0, off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_repeat_ngram_size: Option<usize>,
    /// Token(s) that end a sequence; `generation_config.json` has an integer or a list.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "one_or_many_ids")]
    pub eos_token_id: Option<Vec<u32>>,
    /// Token that fills finished rows (default: the first EOS token).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "token_id")]
    pub pad_token_id: Option<u32>,
    /// Beginning-of-sequence token.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "token_id")]
    pub bos_token_id: Option<u32>,
    /// Strings that end a sequence when generated (needs a tokenizer to decode the tokens).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "one_or_many_strings")]
    pub stop_strings: Option<Vec<String>>,
    /// Seed of the sampling random number generator (autocandle's addition: `transformers`
    /// seeds torch globally). `None` draws a fresh seed per call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// `early_stopping` of beam search: `true`, `false` or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EarlyStopping {
    /// `true` stops as soon as `num_beams` hypotheses are finished; `false` (the default)
    /// stops when a heuristic says no better hypothesis is likely.
    Flag(bool),
    /// `"never"`: stop only when no better hypothesis is possible (canonical beam search).
    Never(NeverTag),
}

/// The string `"never"` of [`EarlyStopping::Never`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NeverTag {
    #[serde(rename = "never")]
    Never,
}

impl EarlyStopping {
    /// `early_stopping = "never"`.
    pub const NEVER: EarlyStopping = EarlyStopping::Never(NeverTag::Never);
}

/// The largest values [`GenerationConfig::validate`] accepts for the sizes that set what
/// generation allocates.
pub mod limits {
    /// `num_beams` and `num_return_sequences`: at most this many rows per prompt.
    pub const MAX_ROWS: usize = 1024;
    /// `max_new_tokens` and `max_length`: at most this many positions (2^20).
    pub const MAX_LENGTH: usize = 1 << 20;
    /// A sequence-to-sequence model without a limit on its decoder positions (T5) generates
    /// at most this many tokens: beyond, a model that never emits its EOS token would run for
    /// days.
    pub const MAX_UNBOUNDED_TARGET: usize = 1 << 16;
}

/// `transformers`' global defaults (`GenerationConfig._get_default_generation_params`).
pub(crate) mod defaults {
    pub const MAX_LENGTH: usize = 20;
    pub const TEMPERATURE: f64 = 1.0;
    pub const TOP_K: usize = 50;
    pub const TOP_P: f64 = 1.0;
    pub const REPETITION_PENALTY: f64 = 1.0;
    pub const LENGTH_PENALTY: f64 = 1.0;
}

/// The fields that `transformers` reads from a model's `config.json` when the repo has no
/// `generation_config.json` (`GenerationConfig.from_model_config`), restricted to ours.
const FIELDS: [&str; 24] = [
    "max_length",
    "max_new_tokens",
    "min_length",
    "min_new_tokens",
    "do_sample",
    "num_beams",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "decoder_start_token_id",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "use_cache",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "eos_token_id",
    "pad_token_id",
    "bos_token_id",
    "stop_strings",
    "seed",
];

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = Some(value);
                self
            }
        )*
    };
}

impl GenerationConfig {
    /// A config with every field unset (`transformers`' defaults apply).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Largest total length, prompt included.
        max_length: usize,
        /// Largest number of generated tokens.
        max_new_tokens: usize,
        /// Smallest total length before EOS may be chosen.
        min_length: usize,
        /// Smallest number of generated tokens before EOS may be chosen.
        min_new_tokens: usize,
        /// Sample (`true`) or decode greedily (`false`).
        do_sample: bool,
        /// Number of beams (beam search above 1).
        num_beams: usize,
        /// Beam search length penalty.
        length_penalty: f64,
        /// Beam search stopping rule.
        early_stopping: EarlyStopping,
        /// Sequences returned per input.
        num_return_sequences: usize,
        /// The decoder's first token (encoder-decoders).
        decoder_start_token_id: u32,
        /// Token forced as the first generated one.
        forced_bos_token_id: u32,
        /// Use the model's key/value cache when it has one.
        use_cache: bool,
        /// Sampling temperature.
        temperature: f64,
        /// Top-k filtering (0 disables it).
        top_k: usize,
        /// Nucleus (top-p) filtering.
        top_p: f64,
        /// Min-p filtering.
        min_p: f64,
        /// Repetition penalty (1.0 disables it).
        repetition_penalty: f64,
        /// Forbid repeated n-grams of this size (0 disables it).
        no_repeat_ngram_size: usize,
        /// Token filling finished rows.
        pad_token_id: u32,
        /// Beginning-of-sequence token.
        bos_token_id: u32,
        /// Seed of the sampling RNG.
        seed: u64,
    }

    /// One EOS token.
    pub fn eos_token_id(mut self, id: u32) -> Self {
        self.eos_token_id = Some(vec![id]);
        self
    }

    /// Several EOS tokens: any of them ends a sequence.
    pub fn eos_token_ids(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
        self.eos_token_id = Some(ids.into_iter().collect());
        self
    }

    /// Force one of `ids` as the last token when `max_length` is reached.
    pub fn forced_eos_token_ids(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
        self.forced_eos_token_id = Some(ids.into_iter().collect());
        self
    }

    /// No EOS token: sequences end only at the length limit or a stop string.
    pub fn no_eos_token(mut self) -> Self {
        self.eos_token_id = None;
        self
    }

    /// Strings that end a sequence.
    pub fn stop_strings<S: Into<String>>(mut self, strings: impl IntoIterator<Item = S>) -> Self {
        self.stop_strings = Some(strings.into_iter().map(Into::into).collect());
        self
    }

    /// Fill every unset field from `defaults` (typically the model's `generation_config.json`),
    /// as `generate` merges a user's config with the model's.
    pub fn fill_from(mut self, defaults: &GenerationConfig) -> Self {
        macro_rules! fill {
            ($($f:ident),*) => { $(if self.$f.is_none() { self.$f = defaults.$f.clone(); })* };
        }
        fill!(
            max_length,
            max_new_tokens,
            min_length,
            min_new_tokens,
            do_sample,
            num_beams,
            length_penalty,
            early_stopping,
            num_return_sequences,
            decoder_start_token_id,
            forced_bos_token_id,
            forced_eos_token_id,
            use_cache,
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            no_repeat_ngram_size,
            eos_token_id,
            pad_token_id,
            bos_token_id,
            stop_strings,
            seed
        );
        self
    }

    /// Whether sampling is on (`do_sample`, default false).
    pub fn sampling(&self) -> bool {
        self.do_sample == Some(true)
    }

    /// Load `generation_config.json` from a Hub repo id or a local folder; when the repo has
    /// none, the generation fields of `config.json` (`transformers`' `from_model_config`).
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`GenerationConfig::from_pretrained`] with options (revision, cache, subfolder, ...).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Self> {
        let (source, gguf) = autocandle_core::gguf::locate(id_or_path, opts)?;
        let config = if let Some(path) = source.optional_file("generation_config.json")? {
            Self::from_file(&path)?
        } else if let Some(path) = gguf {
            // transformers: `from_model_config` of the config the GGUF metadata gives.
            Self::from_model_config_value(autocandle_core::gguf::read_config(&path)?.to_json(), &path)?
        } else if let Some(path) = source.optional_file("config.json")? {
            Self::from_model_config_file(&path)?
        } else {
            return Err(Error::FileNotFound {
                file: "generation_config.json".to_owned(),
                location: source.describe(),
                hint: ": neither `generation_config.json` nor `config.json` is there".to_owned(),
            });
        };
        config.validate_settings()?;
        Ok(config)
    }

    /// Parse a `generation_config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_value(read_json(path)?, path)
    }

    /// The generation fields of a model's `config.json`: top-level values that are not null,
    /// then unset ones from a nested `text_config` / `decoder` / `generator`.
    pub fn from_model_config_file(path: &Path) -> Result<Self> {
        Self::from_model_config_value(read_json(path)?, path)
    }

    /// [`GenerationConfig::from_model_config_file`] on a config already read; `path` names it
    /// in errors.
    pub fn from_model_config_value(value: Value, path: &Path) -> Result<Self> {
        let Value::Object(raw) = value else {
            return Err(Error::config("generation", format!("`{}` must hold a JSON object", path.display())));
        };
        let pick = |map: &Map<String, Value>| -> Value {
            Value::Object(
                map.iter()
                    .filter(|(k, v)| FIELDS.contains(&k.as_str()) && !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        let mut config = Self::from_value(pick(&raw), path)?;
        let nested =
            ["decoder", "generator", "text_config"].iter().find_map(|k| raw.get(*k).and_then(Value::as_object));
        if let Some(nested) = nested {
            config = config.fill_from(&Self::from_value(pick(nested), path)?);
        }
        Ok(config)
    }

    /// Parse a config from JSON; `origin` names it in errors, which name the faulty field.
    pub fn from_value(value: Value, origin: &Path) -> Result<Self> {
        let Value::Object(map) = &value else {
            return Err(Error::config("generation", format!("`{}` must hold a JSON object", origin.display())));
        };
        serde_json::from_value::<Self>(value.clone()).map_err(|e| {
            // Find the field that fails on its own, so the message can name it.
            let field = map.iter().find(|(k, v)| {
                let one = Value::Object(std::iter::once(((*k).clone(), (*v).clone())).collect());
                serde_json::from_value::<Self>(one).is_err()
            });
            let message = match field {
                Some((k, v)) => format!("`{}`: field `{k}` = {v}: {e}", origin.display()),
                None => format!("`{}`: {e}", origin.display()),
            };
            Error::config("generation", message)
        })
    }

    /// Check the settings as `transformers` does (`GenerationConfig.validate` and the
    /// constructors of the logits processors `generate` would build): conflicting or out of
    /// range values are errors. Sampling-only values are only checked when sampling is on,
    /// as `transformers` only warns about them otherwise. `from_pretrained` runs the first
    /// part only, so a file with, say, `temperature: 0` loads and can be fixed before use.
    pub fn validate(&self) -> Result<()> {
        self.validate_settings()?;
        self.validate_processors()
    }

    /// The checks of `transformers`' `GenerationConfig.validate`, which runs when a config is
    /// created or loaded.
    fn validate_settings(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("generation", message));
        if self.max_new_tokens == Some(0) {
            return invalid("`max_new_tokens` must be greater than 0, but is 0".to_owned());
        }
        if self.num_beams == Some(0) {
            return invalid("`num_beams` must be at least 1, but is 0".to_owned());
        }
        // Bounds that keep what generation allocates (rows x length of the cache) finite.
        for (field, value, limit) in [
            ("num_beams", self.num_beams, limits::MAX_ROWS),
            ("num_return_sequences", self.num_return_sequences, limits::MAX_ROWS),
            ("max_new_tokens", self.max_new_tokens, limits::MAX_LENGTH),
            ("max_length", self.max_length, limits::MAX_LENGTH),
        ] {
            if let Some(v) = value.filter(|v| *v > limit) {
                return invalid(format!(
                    "`{field}` is {v}, more than the {limit} generation allows (each row and position takes memory \
                     for its cache): ask for fewer"
                ));
            }
        }
        let beams = self.num_beams.unwrap_or(1);
        match self.num_return_sequences {
            Some(0) => return invalid("`num_return_sequences` must be at least 1, but is 0".to_owned()),
            Some(n) if beams > 1 && n > beams => {
                return invalid(format!(
                    "`num_return_sequences` ({n}) has to be smaller or equal to `num_beams` ({beams})"
                ))
            }
            _ => {}
        }
        if let Some(p) = self.length_penalty {
            if !p.is_finite() {
                return invalid(format!("`length_penalty` must be a finite number, but is {p}"));
            }
        }
        Ok(())
    }

    /// The checks of the logits processors' constructors, which `transformers` runs when
    /// `generate` builds them: only for the processors the config turns on.
    fn validate_processors(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("generation", message));
        if let Some(p) = self.repetition_penalty {
            if p != defaults::REPETITION_PENALTY && !(p > 0.0 && p.is_finite()) {
                return invalid(format!("`repetition_penalty` has to be a strictly positive float, but is {p}"));
            }
        }
        if let Some(strings) = &self.stop_strings {
            if strings.iter().any(String::is_empty) {
                return invalid("`stop_strings` cannot hold an empty string".to_owned());
            }
        }
        if !self.sampling() {
            return Ok(());
        }
        if let Some(t) = self.temperature {
            if t != defaults::TEMPERATURE && !(t > 0.0 && t.is_finite()) {
                let greedy = if t == 0.0 {
                    "; for greedy decoding set `do_sample` to false instead of `temperature` to 0"
                } else {
                    ""
                };
                return invalid(format!(
                    "`temperature` (={t}) has to be a strictly positive float when sampling (`do_sample` is true){greedy}"
                ));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return invalid(format!("`top_p` has to be a float in (0, 1], but is {p}"));
            }
        }
        if let Some(p) = self.min_p {
            if !(0.0..=1.0).contains(&p) {
                return invalid(format!("`min_p` has to be a float in the [0, 1] interval, but is {p}"));
            }
        }
        Ok(())
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: path.to_path_buf(), source })
}

/// A token id from JSON: a non-negative integer. A negative id (some configs say `-1` for
/// "none") is treated as unset, with a warning, as it can never be generated.
fn token_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    let Some(id) = Option::<i64>::deserialize(d)? else {
        return Ok(None);
    };
    to_token_id(id).map_err(serde::de::Error::custom)
}

fn to_token_id(id: i64) -> std::result::Result<Option<u32>, String> {
    if id < 0 {
        tracing::warn!("ignoring the negative token id {id} in the generation config");
        return Ok(None);
    }
    u32::try_from(id).map(Some).map_err(|_| format!("token id {id} is too large"))
}

/// `eos_token_id`: an integer or a list of integers.
fn one_or_many_ids<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<u32>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(i64),
        Many(Vec<i64>),
    }
    let ids = match Option::<OneOrMany>::deserialize(d)? {
        None => return Ok(None),
        Some(OneOrMany::One(id)) => vec![id],
        Some(OneOrMany::Many(ids)) => ids,
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(id) = to_token_id(id).map_err(serde::de::Error::custom)? {
            out.push(id);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// `stop_strings`: a string or a list of strings.
fn one_or_many_strings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_set_memory_are_bounded() {
        for config in [
            GenerationConfig::new().num_beams(1_000_000),
            GenerationConfig::new().max_new_tokens(1_000_000_000_000),
            GenerationConfig::new().num_beams(2).num_return_sequences(5000),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("more than the") && err.contains("generation allows"), "{err}");
        }
        assert!(GenerationConfig::new().num_beams(8).max_new_tokens(4096).validate().is_ok());
    }

    fn parse(json: &str) -> Result<GenerationConfig> {
        GenerationConfig::from_value(serde_json::from_str(json).unwrap(), Path::new("generation_config.json"))
    }

    #[test]
    fn parses_transformers_files() {
        let c = parse(
            r#"{"bos_token_id": 1, "eos_token_id": [2, 32000], "do_sample": true, "temperature": 0.6,
            "top_p": 0.9, "transformers_version": "5.23.0", "_from_model_config": true}"#,
        )
        .unwrap();
        assert_eq!(c.eos_token_id, Some(vec![2, 32000]));
        assert_eq!(c.bos_token_id, Some(1));
        assert_eq!((c.temperature, c.top_p, c.do_sample), (Some(0.6), Some(0.9), Some(true)));
        assert_eq!(parse(r#"{"eos_token_id": 7}"#).unwrap().eos_token_id, Some(vec![7]));
        assert_eq!(parse(r#"{"pad_token_id": -1}"#).unwrap().pad_token_id, None);
        assert_eq!(parse(r#"{"stop_strings": "\n"}"#).unwrap().stop_strings, Some(vec!["\n".to_owned()]));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let err = parse(r#"{"max_new_tokens": 5, "top_k": -3}"#).unwrap_err().to_string();
        assert!(err.contains("`top_k`"), "{err}");
    }

    #[test]
    fn fill_from_keeps_set_fields() {
        let model = GenerationConfig::new().eos_token_id(2).temperature(0.6).max_new_tokens(100);
        let c = GenerationConfig::new().max_new_tokens(5).fill_from(&model);
        assert_eq!((c.max_new_tokens, c.temperature, c.eos_token_id), (Some(5), Some(0.6), Some(vec![2])));
    }

    #[test]
    fn validation() {
        assert!(GenerationConfig::new().validate().is_ok());
        // Sampling-only values are not checked when sampling is off (transformers warns only).
        assert!(GenerationConfig::new().temperature(0.0).validate().is_ok());
        let err = GenerationConfig::new().do_sample(true).temperature(0.0).validate().unwrap_err().to_string();
        assert!(err.contains("do_sample"), "{err}");
        assert!(GenerationConfig::new().do_sample(true).top_p(0.0).validate().is_err());
        assert!(GenerationConfig::new().do_sample(true).top_p(1.5).validate().is_err());
        assert!(GenerationConfig::new().do_sample(true).top_p(1.0).validate().is_ok());
        assert!(GenerationConfig::new().do_sample(true).min_p(1.5).validate().is_err());
        assert!(GenerationConfig::new().repetition_penalty(0.0).validate().is_err());
        assert!(GenerationConfig::new().repetition_penalty(-1.0).validate().is_err());
        assert!(GenerationConfig::new().max_new_tokens(0).validate().is_err());
        assert!(GenerationConfig::new().stop_strings([""]).validate().is_err());
    }
}
