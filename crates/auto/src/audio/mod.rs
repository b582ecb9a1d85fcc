//! Audio input and feature extraction: decoding (WAV, FLAC, MP3, Ogg/Vorbis), mono mixing,
//! resampling, and `transformers`' `WhisperFeatureExtractor` / `Wav2Vec2FeatureExtractor`
//! behind [`AutoFeatureExtractor`].
//!
//! ```no_run
//! use autocandle::audio::{load_audio, AudioFeatureOptions, AutoFeatureExtractor};
//! # fn main() -> autocandle::Result<()> {
//! let extractor = AutoFeatureExtractor::from_pretrained("openai/whisper-tiny")?;
//! let samples = load_audio("speech.mp3", extractor.sampling_rate())?; // mono, resampled
//! let features = extractor.extract(&[&samples], &AudioFeatureOptions::default())?;
//! let inputs = features.to_model_inputs(); // input_features: [1, 80, 3000]
//! # Ok(()) }
//! ```

mod decode;
mod resample;
mod wav2vec2;
mod whisper;

use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};

use crate::tokenizer::read_json;

pub use decode::{decode_audio, decode_audio_with, load_audio, load_audio_with, AudioLoadOptions, DecodedAudio};
pub use resample::{resample, MAX_SAMPLING_RATE, MIN_SAMPLING_RATE};
pub use wav2vec2::{Wav2Vec2FeatureExtractor, Wav2Vec2FeatureExtractorConfig};
pub use whisper::{mel_filter_bank, WhisperFeatureExtractor, WhisperFeatureExtractorConfig};

/// How a batch of clips is padded (`padding=` of `transformers`' feature extractors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AudioPadding {
    /// The extractor's `transformers` default: `max_length` (30 s) for Whisper, no padding
    /// (`padding=False`) for wav2vec2, where a batch of unequal clips is then padded to the
    /// longest since the features form one tensor.
    #[default]
    ExtractorDefault,
    /// Pad every clip to the longest of the batch (`padding="longest"` / `True`).
    Longest,
    /// Pad every clip to `max_length` (`padding="max_length"`); Whisper's default length is
    /// `chunk_length * sampling_rate` samples.
    MaxLength,
    /// No padding (`padding=False`): the clips must then be equally long.
    DoNotPad,
}

/// Options of [`FeatureExtractor::extract`], the keyword arguments of a `transformers` feature
/// extractor call; `None` (and [`AudioPadding::ExtractorDefault`]) give each extractor's
/// default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioFeatureOptions {
    /// How to pad the batch.
    pub padding: AudioPadding,
    /// The length in samples to pad or truncate to (Whisper: `chunk_length * sampling_rate`).
    pub max_length: Option<usize>,
    /// Cut clips longer than `max_length` (Whisper: `true`, wav2vec2: `false`).
    pub truncation: Option<bool>,
    /// Return the attention mask (default: the config's `return_attention_mask`).
    pub return_attention_mask: Option<bool>,
    /// The rate of the samples given: an error when it differs from the extractor's
    /// (`resample` first).
    pub sampling_rate: Option<u32>,
    /// Zero-mean unit-variance normalisation (Whisper's `do_normalize`, default off;
    /// wav2vec2: the config's `do_normalize` when `None`).
    pub do_normalize: Option<bool>,
    /// Round the padded length up to a multiple of this (`pad_to_multiple_of`).
    pub pad_to_multiple_of: Option<usize>,
}

impl AudioFeatureOptions {
    /// The default options (each extractor's `transformers` defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`AudioFeatureOptions::padding`].
    pub fn padding(mut self, padding: AudioPadding) -> Self {
        self.padding = padding;
        self
    }

    /// Set [`AudioFeatureOptions::max_length`].
    pub fn max_length(mut self, max_length: usize) -> Self {
        self.max_length = Some(max_length);
        self
    }

    /// Set [`AudioFeatureOptions::truncation`].
    pub fn truncation(mut self, truncation: bool) -> Self {
        self.truncation = Some(truncation);
        self
    }

    /// Set [`AudioFeatureOptions::return_attention_mask`].
    pub fn return_attention_mask(mut self, yes: bool) -> Self {
        self.return_attention_mask = Some(yes);
        self
    }

    /// Set [`AudioFeatureOptions::sampling_rate`].
    pub fn sampling_rate(mut self, rate: u32) -> Self {
        self.sampling_rate = Some(rate);
        self
    }

    /// Set [`AudioFeatureOptions::do_normalize`].
    pub fn do_normalize(mut self, yes: bool) -> Self {
        self.do_normalize = Some(yes);
        self
    }
}

/// What a feature extractor returns (`transformers`' `BatchFeature`), on the CPU.
#[derive(Debug, Clone)]
pub struct AudioFeatures {
    /// Whisper's log-mel features, `[batch, feature_size, frames]`, f32.
    pub input_features: Option<Tensor>,
    /// wav2vec2's raw (normalised) samples, `[batch, samples]`, f32.
    pub input_values: Option<Tensor>,
    /// 1 for real samples (wav2vec2) or frames (Whisper), 0 for padding, u32, when asked for.
    pub attention_mask: Option<Tensor>,
}

impl AudioFeatures {
    /// The features as model inputs (`input_features` or `input_values`, and `attention_mask`).
    pub fn to_model_inputs(&self) -> ModelInputs {
        let mut inputs = ModelInputs::default();
        if let Some(features) = &self.input_features {
            inputs = inputs.with_input_features(features.clone());
        }
        if let Some(values) = &self.input_values {
            inputs = inputs.with_input_values(values.clone());
        }
        if let Some(mask) = &self.attention_mask {
            inputs = inputs.with_attention_mask(mask.clone());
        }
        inputs
    }

    /// The features moved to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        let move_to = |t: &Option<Tensor>| t.as_ref().map(|t| t.to_device(device)).transpose();
        Ok(Self {
            input_features: move_to(&self.input_features)?,
            input_values: move_to(&self.input_values)?,
            attention_mask: move_to(&self.attention_mask)?,
        })
    }
}

/// The feature extractor classes autocandle knows, with the model types that use them.
pub const FEATURE_EXTRACTORS: &[(&str, &[&str])] = &[
    ("WhisperFeatureExtractor", &["whisper"]),
    (
        "Wav2Vec2FeatureExtractor",
        &[
            "wav2vec2",
            "hubert",
            "wavlm",
            "data2vec-audio",
            "wav2vec2-conformer",
            "wav2vec2-bert",
            "sew",
            "sew-d",
            "unispeech",
            "unispeech-sat",
        ],
    ),
];

/// A loaded feature extractor (`transformers`' `AutoFeatureExtractor.from_pretrained` result).
#[derive(Debug, Clone)]
pub enum FeatureExtractor {
    /// `WhisperFeatureExtractor`: log-mel spectrograms.
    Whisper(WhisperFeatureExtractor),
    /// `Wav2Vec2FeatureExtractor`: normalised raw samples.
    Wav2Vec2(Wav2Vec2FeatureExtractor),
}

impl FeatureExtractor {
    /// The sampling rate the extractor expects, in Hz.
    pub fn sampling_rate(&self) -> u32 {
        match self {
            Self::Whisper(e) => e.config().sampling_rate,
            Self::Wav2Vec2(e) => e.config().sampling_rate,
        }
    }

    /// The `transformers` class name (`WhisperFeatureExtractor`, ...).
    pub fn class(&self) -> &'static str {
        match self {
            Self::Whisper(_) => "WhisperFeatureExtractor",
            Self::Wav2Vec2(_) => "Wav2Vec2FeatureExtractor",
        }
    }

    /// The name of the model input the extractor makes (`input_features` or `input_values`).
    pub fn model_input_name(&self) -> &'static str {
        match self {
            Self::Whisper(_) => "input_features",
            Self::Wav2Vec2(_) => "input_values",
        }
    }

    /// Extract the features of a batch of mono clips sampled at [`FeatureExtractor::sampling_rate`].
    pub fn extract(&self, audio: &[&[f32]], opts: &AudioFeatureOptions) -> Result<AudioFeatures> {
        match self {
            Self::Whisper(e) => e.extract(audio, opts),
            Self::Wav2Vec2(e) => e.extract(audio, opts),
        }
    }
}

/// Loads the feature extractor of a model (`transformers.AutoFeatureExtractor`).
#[derive(Debug, Clone, Copy)]
pub struct AutoFeatureExtractor;

impl AutoFeatureExtractor {
    /// Load the feature extractor of a Hub repo id, a local folder, or a
    /// `preprocessor_config.json` file.
    pub fn from_pretrained(id_or_path: &str) -> Result<FeatureExtractor> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`AutoFeatureExtractor::from_pretrained`] with options (revision, cache, subfolder,
    /// ...); entries of `opts.config_overrides` named like extractor settings replace the file's
    /// values.
    ///
    /// The class is `feature_extractor_type` of `preprocessor_config.json`, else the
    /// `model_type` of `config.json` (a `processor_config.json` with a `feature_extractor`
    /// entry takes precedence, as in `transformers`).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<FeatureExtractor> {
        let _span = tracing::info_span!("load_feature_extractor", model = id_or_path).entered();
        let path = Path::new(id_or_path);
        let (mut fields, origin, source) = if path.is_file() {
            (read_object(path)?, path.display().to_string(), None)
        } else {
            let source = ModelSource::resolve(id_or_path, opts)?;
            let nested = match source.optional_file("processor_config.json")? {
                Some(p) => read_object(&p)?.remove("feature_extractor").map(|v| (v, p)),
                None => None,
            };
            let (fields, file) = match nested {
                Some((Value::Object(map), p)) => (map, p),
                Some((_, p)) => {
                    return Err(Error::config(
                        "feature extractor",
                        format!("`feature_extractor` in `{}` must be a JSON object", p.display()),
                    ))
                }
                None => {
                    let p = source.file("preprocessor_config.json")?;
                    (read_object(&p)?, p)
                }
            };
            (fields, file.display().to_string(), Some(source))
        };
        for (key, value) in &opts.config_overrides {
            fields.insert(key.clone(), value.clone());
        }
        let class = match fields.get("feature_extractor_type").and_then(Value::as_str) {
            Some(class) => class.to_owned(),
            None => class_from_model_type(source.as_ref(), &origin)?,
        };
        let extractor = from_fields(&class, Value::Object(fields), &origin)?;
        tracing::info!(class, sampling_rate = extractor.sampling_rate(), "feature extractor loaded");
        Ok(extractor)
    }

    /// The feature extractor class for `model_type`, if autocandle has one.
    pub fn class_for_model_type(model_type: &str) -> Option<&'static str> {
        FEATURE_EXTRACTORS.iter().find(|(_, types)| types.contains(&model_type)).map(|(class, _)| *class)
    }
}

/// Build the extractor of class `class` from its JSON config.
pub(crate) fn from_fields(class: &str, fields: Value, origin: &str) -> Result<FeatureExtractor> {
    let parse_error = |e: serde_json::Error| Error::config(class, format!("cannot read `{origin}`: {e}"));
    match class {
        "WhisperFeatureExtractor" => {
            let config: WhisperFeatureExtractorConfig = serde_json::from_value(fields).map_err(parse_error)?;
            Ok(FeatureExtractor::Whisper(WhisperFeatureExtractor::new(config)?))
        }
        "Wav2Vec2FeatureExtractor" => {
            let config: Wav2Vec2FeatureExtractorConfig = serde_json::from_value(fields).map_err(parse_error)?;
            Ok(FeatureExtractor::Wav2Vec2(Wav2Vec2FeatureExtractor::new(config)?))
        }
        other => {
            let known: Vec<&str> = FEATURE_EXTRACTORS.iter().map(|(c, _)| *c).collect();
            Err(Error::Unsupported(format!(
                "feature extractor class `{other}` (in `{origin}`): autocandle knows {}",
                known.join(", ")
            )))
        }
    }
}

/// Whether `class` names a feature extractor autocandle knows.
pub(crate) fn is_known_class(class: &str) -> bool {
    FEATURE_EXTRACTORS.iter().any(|(c, _)| *c == class)
}

fn class_from_model_type(source: Option<&ModelSource>, origin: &str) -> Result<String> {
    let hint = "add `feature_extractor_type` (for example `\"WhisperFeatureExtractor\"`) to it";
    let Some(source) = source else {
        return Err(Error::config("feature extractor", format!("`{origin}` has no `feature_extractor_type`: {hint}")));
    };
    let Some(config) = source.optional_file("config.json")? else {
        return Err(Error::config(
            "feature extractor",
            format!("`{origin}` has no `feature_extractor_type` and there is no config.json: {hint}"),
        ));
    };
    let model_type = read_json(&config)?.get("model_type").and_then(Value::as_str).unwrap_or_default().to_owned();
    AutoFeatureExtractor::class_for_model_type(&model_type).map(str::to_owned).ok_or_else(|| {
        let known: Vec<&str> = FEATURE_EXTRACTORS.iter().map(|(c, _)| *c).collect();
        Error::Unsupported(format!(
            "no feature extractor for model type `{model_type}` (`{origin}` names no `feature_extractor_type`): \
             autocandle knows {}",
            known.join(", ")
        ))
    })
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    match read_json(path)? {
        Value::Object(map) => Ok(map),
        _ => Err(Error::config("feature extractor", format!("`{}` must hold a JSON object", path.display()))),
    }
}

/// Checks shared by the extractors: a non-empty batch of non-empty, finite clips at the right rate.
pub(crate) fn check_batch(audio: &[&[f32]], opts: &AudioFeatureOptions, rate: u32, class: &str) -> Result<()> {
    if audio.is_empty() {
        return Err(Error::input(format!("{class}: the batch is empty: give at least one clip")));
    }
    if let Some(given) = opts.sampling_rate {
        if given != rate {
            return Err(Error::input(format!(
                "{class} expects audio sampled at {rate} Hz, got {given} Hz: resample it first \
                 (`autocandle::audio::resample(samples, {given}, {rate})`)"
            )));
        }
    }
    for (i, clip) in audio.iter().enumerate() {
        if clip.is_empty() {
            return Err(Error::input(format!("{class}: clip {i} of the batch is empty (no samples)")));
        }
        if let Some(j) = clip.iter().position(|x| !x.is_finite()) {
            return Err(Error::input(format!(
                "{class}: sample {j} of clip {i} is {} (not a finite number): clean the audio first",
                clip[j]
            )));
        }
    }
    Ok(())
}

/// The per-clip lengths after truncation and the padded length, as `SequenceFeatureExtractor.pad`.
pub(crate) struct PadPlan {
    /// Real samples of each clip after truncation.
    pub lengths: Vec<usize>,
    /// Common length of the batch.
    pub target: usize,
}

/// `SequenceFeatureExtractor.pad`'s lengths: truncation to `max_length`, then padding to the
/// longest or `max_length` (rounded up to `pad_to_multiple_of`).
pub(crate) fn plan_padding(
    audio: &[&[f32]],
    padding: AudioPadding,
    max_length: Option<usize>,
    truncation: bool,
    pad_to_multiple_of: Option<usize>,
    class: &str,
) -> Result<PadPlan> {
    let round = |n: usize| match pad_to_multiple_of {
        Some(m) if m > 0 && !n.is_multiple_of(m) => (n / m + 1) * m,
        _ => n,
    };
    if padding == AudioPadding::MaxLength && max_length.is_none() {
        return Err(Error::input(format!("{class}: padding to `max_length` needs a `max_length`: set one")));
    }
    let lengths: Vec<usize> = if truncation {
        let max = max_length
            .ok_or_else(|| Error::input(format!("{class}: truncation needs a `max_length`: set one")))
            .map(round)?;
        audio.iter().map(|c| c.len().min(max)).collect()
    } else {
        audio.iter().map(|c| c.len()).collect()
    };
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let target = match padding {
        AudioPadding::Longest | AudioPadding::ExtractorDefault => round(longest),
        AudioPadding::MaxLength => round(max_length.unwrap_or(longest)),
        AudioPadding::DoNotPad => {
            if lengths.iter().any(|&n| n != longest) {
                return Err(Error::input(format!(
                    "{class}: the clips have different lengths ({lengths:?} samples) and padding is off: pad \
                     them (`AudioPadding::Longest`) to make one tensor"
                )));
            }
            longest
        }
    };
    if let Some(&n) = lengths.iter().find(|&&n| n > target) {
        return Err(Error::input(format!(
            "{class}: a clip of {n} samples is longer than `max_length` ({target}) and truncation is off: \
             truncate or split it"
        )));
    }
    Ok(PadPlan { lengths, target })
}

/// `transformers`' `zero_mean_unit_var_norm` on one clip, in place: statistics over the first
/// `len` samples (all of them when there is no attention mask), padding set to `padding_value`.
pub(crate) fn normalize(clip: &mut [f32], len: usize, padding_value: f32) {
    let n = len.min(clip.len());
    if n == 0 {
        return;
    }
    // numpy works in f32: the mean and variance rounded to f32, then f32 element-wise arithmetic.
    let mean = (clip[..n].iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64) as f32;
    let var = (clip[..n].iter().map(|&x| f64::from(x - mean).powi(2)).sum::<f64>() / n as f64) as f32;
    let denom = (var + 1e-7).sqrt();
    for x in clip[..n].iter_mut() {
        *x = (*x - mean) / denom;
    }
    for x in clip[n..].iter_mut() {
        *x = padding_value;
    }
}

/// A `[batch, len]` u32 mask with `lengths[i]` ones per row (each scaled by `step`: frame `f`
/// is real when sample `f * step` is).
pub(crate) fn mask_tensor(lengths: &[usize], len: usize, step: usize) -> Result<Tensor> {
    let mut data = Vec::with_capacity(lengths.len() * len);
    for &n in lengths {
        data.extend((0..len).map(|f| u32::from(f * step < n)));
    }
    Ok(Tensor::from_vec(data, (lengths.len(), len), &Device::Cpu)?)
}
