//! The audio-classification pipeline (`transformers.AudioClassificationPipeline`): the
//! model's feature extractor, its classifier (`AutoModelForAudioClassification`), and the
//! top-k labels of `id2label`.

use autocandle_core::{Error, ForAudioClassification, LoadOptions, Result};
use candle_core::{DType, Device, IndexOp};
use serde_json::Value;

use super::{config_labels, label_of, sorted_desc, AudioInput, ClassificationFunction, Label};
use crate::audio::{AudioFeatureOptions, AutoFeatureExtractor, FeatureExtractor};
use crate::{AutoConfig, AutoModelForAudioClassification};

/// Options of [`AudioClassificationPipeline::call_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClassificationOptions {
    /// How many labels, best first (default 5, capped at the number of labels); `None` for all.
    pub top_k: Option<usize>,
    /// Override the function the config implies: none for `problem_type` `regression`,
    /// sigmoid for `multi_label_classification`, else softmax (with one label too, unlike
    /// text classification).
    pub function_to_apply: Option<ClassificationFunction>,
}

impl Default for AudioClassificationOptions {
    fn default() -> Self {
        Self { top_k: Some(5), function_to_apply: None }
    }
}

/// Classify audio clips with an audio classifier (wav2vec2, HuBERT, WavLM, Whisper's
/// encoder, ... with a sequence-classification head).
///
/// Each clip runs on its own (as `transformers`' pipeline does without `batch_size`), so a
/// clip's labels do not depend on the others' lengths.
///
/// ```no_run
/// use autocandle::pipelines::{AudioClassificationOptions, AudioClassificationPipeline, AudioInput};
/// # fn main() -> autocandle::Result<()> {
/// let classify = AudioClassificationPipeline::new("superb/wav2vec2-base-superb-ks")?;
/// for label in classify.call("yes.wav")? {
///     println!("{:.3} {}", label.score, label.label);
/// }
/// // Samples at any rate are resampled to the feature extractor's.
/// let opts = AudioClassificationOptions { top_k: Some(2), ..Default::default() };
/// let best = classify.call_with(AudioInput::samples(vec![0.0; 8000], 8000), &opts)?;
/// # let _ = best;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AudioClassificationPipeline {
    extractor: FeatureExtractor,
    model: Box<dyn ForAudioClassification>,
    labels: Vec<String>,
    default_function: ClassificationFunction,
    device: Device,
}

impl AudioClassificationPipeline {
    /// Load the model (`AutoModelForAudioClassification`) and feature extractor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`AudioClassificationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("audio-classification", model, || {
            let extractor = AutoFeatureExtractor::from_pretrained_with(model, opts)?;
            let config = AutoConfig::from_pretrained_with(model, opts)?.value;
            let labels = config_labels(&config);
            let default_function = match config.raw().get("problem_type").and_then(Value::as_str) {
                Some("regression") => ClassificationFunction::None,
                Some("multi_label_classification") => ClassificationFunction::Sigmoid,
                _ => ClassificationFunction::Softmax,
            };
            let model = AutoModelForAudioClassification::from_pretrained_with(model, opts)?.value;
            Ok(Self { extractor, model, labels, default_function, device: opts.device.clone() })
        })
    }

    /// The labels by id (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The rate (Hz) audio is resampled to: the feature extractor's `sampling_rate`.
    pub fn sampling_rate(&self) -> u32 {
        self.extractor.sampling_rate()
    }

    /// The 5 best labels of `audio` (a file path or [`AudioInput`]).
    pub fn call(&self, audio: impl Into<AudioInput>) -> Result<Vec<Label>> {
        self.call_with(audio, &AudioClassificationOptions::default())
    }

    /// The `top_k` best labels of `audio`, best first.
    pub fn call_with(&self, audio: impl Into<AudioInput>, opts: &AudioClassificationOptions) -> Result<Vec<Label>> {
        let samples = audio.into().load(self.sampling_rate())?;
        self.classify(&samples, opts)
    }

    /// The labels of each clip, in order (each clip runs on its own).
    pub fn call_batch<I>(&self, audios: I, opts: &AudioClassificationOptions) -> Result<Vec<Vec<Label>>>
    where
        I: IntoIterator,
        I::Item: Into<AudioInput>,
    {
        audios.into_iter().map(|audio| self.call_with(audio, opts)).collect()
    }

    /// Classify mono samples already at [`AudioClassificationPipeline::sampling_rate`].
    fn classify(&self, samples: &[f32], opts: &AudioClassificationOptions) -> Result<Vec<Label>> {
        let features = self.extractor.extract(&[samples], &AudioFeatureOptions::default())?;
        let inputs = features.to_model_inputs().to_device(&self.device)?;
        let logits = self.model.forward(&inputs)?.logits.to_dtype(DType::F32)?.i(0)?.to_vec1::<f32>()?;
        if logits.is_empty() {
            return Err(Error::input("audio-classification: the model returned no logits"));
        }
        let scores = opts.function_to_apply.unwrap_or(self.default_function).apply(&logits);
        // `transformers` caps `top_k` at `num_labels` (the number of logits).
        let top_k = opts.top_k.unwrap_or(scores.len()).min(scores.len());
        Ok(sorted_desc(&scores)
            .into_iter()
            .take(top_k)
            .map(|i| Label { label: label_of(&self.labels, i), score: scores[i] })
            .collect())
    }
}
