//! `transformers`' pipelines: `pipeline(task, model)` loads the model through the Auto
//! classes and its tokenizer through `AutoTokenizer`, then turns text into the results that
//! `transformers.pipeline(task)(...)` returns: fill-mask, text-classification
//! (`sentiment-analysis`), token-classification (`ner`), feature-extraction (with
//! sentence-transformers pooling), text-generation (streaming), image-classification,
//! zero-shot-image-classification, question-answering, text2text-generation, summarization,
//! translation (`translation_XX_to_YY`), automatic-speech-recognition,
//! audio-classification, object-detection, image-segmentation (semantic), depth-estimation
//! and image-feature-extraction. Each typed pipeline is usable alone
//! (`FillMaskPipeline::new(model)`); [`pipeline`] picks one by task: a [`PipelineTask`] or
//! its `transformers` name.
//!
//! `transformers` 5 removed the question-answering, text2text-generation, summarization and
//! translation pipelines; autocandle keeps them and follows `transformers` 4.57, the last
//! release that has them (its `task_specific_params` prefixes, generation defaults and
//! span decoding). The other pipelines follow 5.x. Tasks that 5.x removed for good
//! (visual question answering, image-to-image) are refused with its advice.
//!
//! ```no_run
//! use autocandle::pipelines::{pipeline, FillMaskPipeline, Pipeline};
//! # fn main() -> autocandle::Result<()> {
//! let fill = FillMaskPipeline::new("google-bert/bert-base-uncased")?;
//! for p in &fill.call("Paris is the [MASK] of France.")?[0] {
//!     println!("{} {:.3} {}", p.token_str, p.score, p.sequence);
//! }
//! if let Pipeline::TextClassification(classify) = pipeline("sentiment-analysis", "some/model")? {
//!     println!("{:?}", classify.call("I love it")?);
//! }
//! let ner = pipeline(autocandle::PipelineTask::TokenClassification, "some/model")?;
//! # let _ = ner;
//! # Ok(()) }
//! ```

mod audio_classification;
mod audio_input;
mod automatic_speech_recognition;
#[cfg(feature = "image")]
mod depth_estimation;
mod feature_extraction;
mod fill_mask;
#[cfg(feature = "image")]
mod image_classification;
#[cfg(feature = "image")]
mod image_feature_extraction;
#[cfg(feature = "image")]
mod image_segmentation;
#[cfg(feature = "image")]
mod image_text_to_text;
#[cfg(feature = "image")]
mod object_detection;
mod question_answering;
mod text2text;
mod text_classification;
mod text_generation;
mod token_classification;
#[cfg(feature = "image")]
mod vision;
#[cfg(feature = "image")]
mod zero_shot_image_classification;

pub use audio_classification::{AudioClassificationOptions, AudioClassificationPipeline};
pub use audio_input::AudioInput;
pub use automatic_speech_recognition::{
    AsrOptions, AutomaticSpeechRecognitionPipeline, ReturnTimestamps, Transcription, TranscriptionChunk,
};
#[cfg(feature = "image")]
pub use depth_estimation::{DepthEstimation, DepthEstimationPipeline};
pub use feature_extraction::{FeatureExtractionPipeline, Pooling, PoolingConfig};
pub use fill_mask::{FillMaskOptions, FillMaskPipeline, FillMaskPrediction};
#[cfg(feature = "image")]
pub use image_classification::{ImageClassificationOptions, ImageClassificationPipeline};
#[cfg(feature = "image")]
pub use image_feature_extraction::{ImageFeatureExtractionOptions, ImageFeatureExtractionPipeline};
#[cfg(feature = "image")]
pub use image_segmentation::{ImageSegmentationPipeline, Segment};
#[cfg(feature = "image")]
pub use image_text_to_text::ImageTextToTextPipeline;
#[cfg(feature = "image")]
pub use object_detection::{
    BoundingBox, DetectedObject, ObjectDetectionOptions, ObjectDetectionPipeline, DEFAULT_DETECTION_THRESHOLD,
};
pub use question_answering::{Answer, QuestionAnsweringOptions, QuestionAnsweringPipeline};
pub use text2text::{
    SummarizationPipeline, Text2TextGenerationPipeline, Text2TextOptions, Text2TextOutput, TranslationPipeline,
};
pub use text_classification::{ClassificationFunction, Label, TextClassificationOptions, TextClassificationPipeline};
pub use text_generation::{TextGenerationOptions, TextGenerationPipeline};
pub use token_classification::{AggregationStrategy, Entity, TokenClassificationOptions, TokenClassificationPipeline};
#[cfg(feature = "image")]
pub use zero_shot_image_classification::{ZeroShotImageClassificationPipeline, DEFAULT_HYPOTHESIS_TEMPLATE};

use std::fmt;
use std::str::FromStr;

use autocandle_core::{Error, LoadOptions, ModelInputs, PretrainedConfig, Result};
use candle_core::{Device, Tensor};
use serde_json::Value;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{AutoConfig, AutoTokenizer, PreTrainedTokenizer};

/// The tasks [`pipeline`] builds, by their `transformers` names.
pub const SUPPORTED_TASKS: &[&str] = &[
    "audio-classification",
    "automatic-speech-recognition",
    "depth-estimation",
    "feature-extraction",
    "fill-mask",
    "image-classification",
    "image-feature-extraction",
    "image-segmentation",
    "image-text-to-text",
    "object-detection",
    "question-answering",
    "summarization",
    "text-classification",
    "text-generation",
    "text2text-generation",
    "token-classification",
    "translation",
    "zero-shot-image-classification",
];

/// `transformers`' task aliases (`TASK_ALIASES`): alias -> task.
pub const TASK_ALIASES: &[(&str, &str)] =
    &[("sentiment-analysis", "text-classification"), ("ner", "token-classification")];

/// Tasks that `transformers` 5 removed, with its advice (`REMOVED_TASKS`), less those that
/// autocandle keeps after 4.57 (question-answering, text2text-generation, summarization,
/// translation).
const REMOVED_TASKS: &[(&str, &str)] = &[
    ("visual-question-answering", "Use the `image-text-to-text` pipeline with a vision-language chat model instead."),
    ("vqa", "Use the `image-text-to-text` pipeline with a vision-language chat model instead."),
    ("image-to-image", "For image generation tasks, please use 🤗 Diffusers instead."),
];

/// Tasks of `transformers`' `SUPPORTED_TASKS` that autocandle has no pipeline for yet.
const NOT_YET: &[&str] = &[
    "text-to-audio",
    "text-to-speech",
    "table-question-answering",
    "document-question-answering",
    "zero-shot-classification",
    "zero-shot-audio-classification",
    "zero-shot-object-detection",
    "video-classification",
    "mask-generation",
    "keypoint-matching",
    "any-to-any",
];

/// A task [`pipeline`] builds. Parse one from its `transformers` name or alias
/// (`"sentiment-analysis".parse()`, `"translation_en_to_fr".parse()`), or name it directly.
///
/// ```
/// use autocandle::PipelineTask;
/// let task: PipelineTask = "ner".parse()?;
/// assert_eq!(task, PipelineTask::TokenClassification);
/// let fr: PipelineTask = "translation_en_to_fr".parse()?;
/// assert_eq!((fr.name(), fr.to_string().as_str()), ("translation", "translation_en_to_fr"));
/// # Ok::<(), autocandle::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipelineTask {
    /// `audio-classification`.
    AudioClassification,
    /// `automatic-speech-recognition`.
    AutomaticSpeechRecognition,
    /// `depth-estimation`.
    DepthEstimation,
    /// `feature-extraction`.
    FeatureExtraction,
    /// `fill-mask`.
    FillMask,
    /// `image-classification`.
    ImageClassification,
    /// `image-feature-extraction`.
    ImageFeatureExtraction,
    /// `image-segmentation` (semantic segmentation models).
    ImageSegmentation,
    /// `image-text-to-text` (vision-language models).
    ImageTextToText,
    /// `object-detection`.
    ObjectDetection,
    /// `question-answering`.
    QuestionAnswering,
    /// `summarization`.
    Summarization,
    /// `text-classification` (alias `sentiment-analysis`).
    TextClassification,
    /// `text-generation`.
    TextGeneration,
    /// `text2text-generation`.
    Text2TextGeneration,
    /// `token-classification` (alias `ner`).
    TokenClassification,
    /// `translation` with `None`: the first `translation_XX_to_YY` entry of the config's
    /// `task_specific_params`, if any; `translation_{src}_to_{tgt}` with `Some((src, tgt))`.
    Translation(Option<(String, String)>),
    /// `zero-shot-image-classification`.
    ZeroShotImageClassification,
}

impl PipelineTask {
    /// The canonical task name, one of [`SUPPORTED_TASKS`] (`"translation"` for every
    /// translation task).
    pub fn name(&self) -> &'static str {
        match self {
            PipelineTask::AudioClassification => "audio-classification",
            PipelineTask::AutomaticSpeechRecognition => "automatic-speech-recognition",
            PipelineTask::DepthEstimation => "depth-estimation",
            PipelineTask::FeatureExtraction => "feature-extraction",
            PipelineTask::FillMask => "fill-mask",
            PipelineTask::ImageClassification => "image-classification",
            PipelineTask::ImageFeatureExtraction => "image-feature-extraction",
            PipelineTask::ImageSegmentation => "image-segmentation",
            PipelineTask::ImageTextToText => "image-text-to-text",
            PipelineTask::ObjectDetection => "object-detection",
            PipelineTask::QuestionAnswering => "question-answering",
            PipelineTask::Summarization => "summarization",
            PipelineTask::TextClassification => "text-classification",
            PipelineTask::TextGeneration => "text-generation",
            PipelineTask::Text2TextGeneration => "text2text-generation",
            PipelineTask::TokenClassification => "token-classification",
            PipelineTask::Translation(_) => "translation",
            PipelineTask::ZeroShotImageClassification => "zero-shot-image-classification",
        }
    }
}

/// The task as `transformers` names it: [`PipelineTask::name`], and `translation_XX_to_YY`
/// for a translation with its languages.
impl fmt::Display for PipelineTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineTask::Translation(Some((src, tgt))) => write!(f, "translation_{src}_to_{tgt}"),
            task => f.write_str(task.name()),
        }
    }
}

/// A task name or alias of `transformers` (`translation_XX_to_YY` included), or an error that
/// says why there is no such pipeline: removed from `transformers`, not implemented yet, or
/// unknown (with the list of tasks).
impl FromStr for PipelineTask {
    type Err = Error;

    fn from_str(task: &str) -> Result<Self> {
        let task = task.trim();
        let canonical = TASK_ALIASES.iter().find(|(alias, _)| *alias == task).map_or(task, |(_, t)| *t);
        let known = match canonical {
            "audio-classification" => Some(PipelineTask::AudioClassification),
            "automatic-speech-recognition" => Some(PipelineTask::AutomaticSpeechRecognition),
            "depth-estimation" => Some(PipelineTask::DepthEstimation),
            "feature-extraction" => Some(PipelineTask::FeatureExtraction),
            "fill-mask" => Some(PipelineTask::FillMask),
            "image-classification" => Some(PipelineTask::ImageClassification),
            "image-feature-extraction" => Some(PipelineTask::ImageFeatureExtraction),
            "image-segmentation" => Some(PipelineTask::ImageSegmentation),
            "image-text-to-text" => Some(PipelineTask::ImageTextToText),
            "object-detection" => Some(PipelineTask::ObjectDetection),
            "question-answering" => Some(PipelineTask::QuestionAnswering),
            "summarization" => Some(PipelineTask::Summarization),
            "text-classification" => Some(PipelineTask::TextClassification),
            "text-generation" => Some(PipelineTask::TextGeneration),
            "text2text-generation" => Some(PipelineTask::Text2TextGeneration),
            "token-classification" => Some(PipelineTask::TokenClassification),
            "translation" => Some(PipelineTask::Translation(None)),
            "zero-shot-image-classification" => Some(PipelineTask::ZeroShotImageClassification),
            _ => None,
        };
        if let Some(known) = known {
            return Ok(known);
        }
        // `translation_en_to_fr` and friends are the translation task (4.57's `check_task`).
        if task.starts_with("translation") {
            return match text2text::language_pair(task) {
                Some((src, tgt)) => Ok(PipelineTask::Translation(Some((src.to_owned(), tgt.to_owned())))),
                None => Err(Error::input(format!("invalid translation task `{task}`: use `translation_XX_to_YY`"))),
            };
        }
        if let Some((_, advice)) = REMOVED_TASKS.iter().find(|(t, _)| *t == task) {
            return Err(Error::Unsupported(format!("the task `{task}` has been removed from transformers: {advice}")));
        }
        if NOT_YET.contains(&task) {
            return Err(Error::Unsupported(format!(
                "the `{task}` pipeline is not implemented in autocandle yet; pipelines available: {}",
                SUPPORTED_TASKS.join(", ")
            )));
        }
        Err(Error::input(format!(
            "unknown task `{task}`: available tasks are {} (aliases: {})",
            SUPPORTED_TASKS.join(", "),
            TASK_ALIASES.iter().map(|(a, t)| format!("{a} -> {t}")).collect::<Vec<_>>().join(", ")
        )))
    }
}

/// What [`pipeline`] takes as its task: a [`PipelineTask`], or a task name (`&str`, `String`)
/// parsed as [`PipelineTask`]'s [`FromStr`] does.
pub trait IntoPipelineTask {
    /// The task, or the parse error of a name.
    fn into_pipeline_task(self) -> Result<PipelineTask>;
}

impl IntoPipelineTask for PipelineTask {
    fn into_pipeline_task(self) -> Result<PipelineTask> {
        Ok(self)
    }
}

impl IntoPipelineTask for &PipelineTask {
    fn into_pipeline_task(self) -> Result<PipelineTask> {
        Ok(self.clone())
    }
}

impl IntoPipelineTask for &str {
    fn into_pipeline_task(self) -> Result<PipelineTask> {
        self.parse()
    }
}

impl IntoPipelineTask for String {
    fn into_pipeline_task(self) -> Result<PipelineTask> {
        self.parse()
    }
}

impl IntoPipelineTask for &String {
    fn into_pipeline_task(self) -> Result<PipelineTask> {
        self.parse()
    }
}

/// The canonical task name of `task` (aliases resolved, `translation_XX_to_YY` ->
/// `translation`), or an error that says why there is no such pipeline: removed from
/// `transformers`, not implemented yet, or unknown (with the list of tasks).
pub fn normalize_task(task: &str) -> Result<&'static str> {
    task.parse::<PipelineTask>().map(|t| t.name())
}

/// A pipeline for a task chosen at run time (`transformers.pipeline(task, model=...)`).
#[derive(Debug)]
#[non_exhaustive]
pub enum Pipeline {
    /// `fill-mask`.
    FillMask(FillMaskPipeline),
    /// `text-classification` (`sentiment-analysis`).
    TextClassification(TextClassificationPipeline),
    /// `token-classification` (`ner`).
    TokenClassification(TokenClassificationPipeline),
    /// `feature-extraction`.
    FeatureExtraction(FeatureExtractionPipeline),
    /// `image-classification`.
    #[cfg(feature = "image")]
    ImageClassification(ImageClassificationPipeline),
    /// `text-generation`.
    TextGeneration(TextGenerationPipeline),
    /// `zero-shot-image-classification`.
    #[cfg(feature = "image")]
    ZeroShotImageClassification(ZeroShotImageClassificationPipeline),
    /// `question-answering`.
    QuestionAnswering(QuestionAnsweringPipeline),
    /// `text2text-generation`.
    Text2TextGeneration(Text2TextGenerationPipeline),
    /// `summarization`.
    Summarization(SummarizationPipeline),
    /// `translation` (`translation_XX_to_YY`).
    Translation(TranslationPipeline),
    /// `automatic-speech-recognition`.
    AutomaticSpeechRecognition(AutomaticSpeechRecognitionPipeline),
    /// `audio-classification`.
    AudioClassification(AudioClassificationPipeline),
    /// `object-detection`.
    #[cfg(feature = "image")]
    ObjectDetection(ObjectDetectionPipeline),
    /// `image-segmentation`.
    #[cfg(feature = "image")]
    ImageSegmentation(ImageSegmentationPipeline),
    /// `depth-estimation`.
    #[cfg(feature = "image")]
    DepthEstimation(DepthEstimationPipeline),
    /// `image-feature-extraction`.
    #[cfg(feature = "image")]
    ImageFeatureExtraction(ImageFeatureExtractionPipeline),
    /// `image-text-to-text`.
    #[cfg(feature = "image")]
    ImageTextToText(ImageTextToTextPipeline),
}

impl Pipeline {
    /// The canonical task name (`"fill-mask"`, ...).
    pub fn task(&self) -> &'static str {
        match self {
            Pipeline::FillMask(_) => "fill-mask",
            Pipeline::TextClassification(_) => "text-classification",
            Pipeline::TokenClassification(_) => "token-classification",
            Pipeline::FeatureExtraction(_) => "feature-extraction",
            #[cfg(feature = "image")]
            Pipeline::ImageClassification(_) => "image-classification",
            Pipeline::TextGeneration(_) => "text-generation",
            #[cfg(feature = "image")]
            Pipeline::ZeroShotImageClassification(_) => "zero-shot-image-classification",
            Pipeline::QuestionAnswering(_) => "question-answering",
            Pipeline::Text2TextGeneration(_) => "text2text-generation",
            Pipeline::Summarization(_) => "summarization",
            Pipeline::Translation(_) => "translation",
            Pipeline::AutomaticSpeechRecognition(_) => "automatic-speech-recognition",
            Pipeline::AudioClassification(_) => "audio-classification",
            #[cfg(feature = "image")]
            Pipeline::ObjectDetection(_) => "object-detection",
            #[cfg(feature = "image")]
            Pipeline::ImageSegmentation(_) => "image-segmentation",
            #[cfg(feature = "image")]
            Pipeline::DepthEstimation(_) => "depth-estimation",
            #[cfg(feature = "image")]
            Pipeline::ImageFeatureExtraction(_) => "image-feature-extraction",
            #[cfg(feature = "image")]
            Pipeline::ImageTextToText(_) => "image-text-to-text",
        }
    }
}

/// The pipeline for `task` on the model at `model` (a Hub id or a folder), with default
/// loading options. The task is a [`PipelineTask`] or a name or alias of `transformers`
/// (`"fill-mask"`, `"sentiment-analysis"`, `"translation_en_to_de"`, ...).
pub fn pipeline(task: impl IntoPipelineTask, model: &str) -> Result<Pipeline> {
    pipeline_with(task, model, &LoadOptions::default())
}

/// [`pipeline`] with loading options (device, dtype, revision, cache, ...).
pub fn pipeline_with(task: impl IntoPipelineTask, model: &str, opts: &LoadOptions) -> Result<Pipeline> {
    let task = task.into_pipeline_task()?;
    Ok(match &task {
        PipelineTask::FillMask => Pipeline::FillMask(FillMaskPipeline::new_with(model, opts)?),
        PipelineTask::TextClassification => {
            Pipeline::TextClassification(TextClassificationPipeline::new_with(model, opts)?)
        }
        PipelineTask::TokenClassification => {
            Pipeline::TokenClassification(TokenClassificationPipeline::new_with(model, opts)?)
        }
        PipelineTask::FeatureExtraction => {
            Pipeline::FeatureExtraction(FeatureExtractionPipeline::new_with(model, opts)?)
        }
        #[cfg(feature = "image")]
        PipelineTask::ImageClassification => {
            Pipeline::ImageClassification(ImageClassificationPipeline::new_with(model, opts)?)
        }
        PipelineTask::TextGeneration => Pipeline::TextGeneration(TextGenerationPipeline::new_with(model, opts)?),
        #[cfg(feature = "image")]
        PipelineTask::ZeroShotImageClassification => {
            Pipeline::ZeroShotImageClassification(ZeroShotImageClassificationPipeline::new_with(model, opts)?)
        }
        #[cfg(feature = "image")]
        PipelineTask::ObjectDetection => Pipeline::ObjectDetection(ObjectDetectionPipeline::new_with(model, opts)?),
        #[cfg(feature = "image")]
        PipelineTask::ImageSegmentation => {
            Pipeline::ImageSegmentation(ImageSegmentationPipeline::new_with(model, opts)?)
        }
        #[cfg(feature = "image")]
        PipelineTask::DepthEstimation => Pipeline::DepthEstimation(DepthEstimationPipeline::new_with(model, opts)?),
        #[cfg(feature = "image")]
        PipelineTask::ImageFeatureExtraction => {
            Pipeline::ImageFeatureExtraction(ImageFeatureExtractionPipeline::new_with(model, opts)?)
        }
        #[cfg(feature = "image")]
        PipelineTask::ImageTextToText => Pipeline::ImageTextToText(ImageTextToTextPipeline::new_with(model, opts)?),
        #[cfg(not(feature = "image"))]
        PipelineTask::ImageClassification
        | PipelineTask::ImageTextToText
        | PipelineTask::ZeroShotImageClassification
        | PipelineTask::ObjectDetection
        | PipelineTask::ImageSegmentation
        | PipelineTask::DepthEstimation
        | PipelineTask::ImageFeatureExtraction => {
            return Err(Error::input(format!(
                "the `{task}` pipeline needs the `image` feature of autocandle (image decoding and \
                 image processors): enable it in your Cargo.toml"
            )));
        }
        PipelineTask::QuestionAnswering => {
            Pipeline::QuestionAnswering(QuestionAnsweringPipeline::new_with(model, opts)?)
        }
        PipelineTask::Text2TextGeneration => {
            Pipeline::Text2TextGeneration(Text2TextGenerationPipeline::new_with(model, opts)?)
        }
        PipelineTask::Summarization => Pipeline::Summarization(SummarizationPipeline::new_with(model, opts)?),
        // `translation_XX_to_YY` picks its `task_specific_params`.
        PipelineTask::Translation(_) => {
            Pipeline::Translation(TranslationPipeline::for_task(model, &task.to_string(), opts)?)
        }
        PipelineTask::AutomaticSpeechRecognition => {
            Pipeline::AutomaticSpeechRecognition(AutomaticSpeechRecognitionPipeline::new_with(model, opts)?)
        }
        PipelineTask::AudioClassification => {
            Pipeline::AudioClassification(AudioClassificationPipeline::new_with(model, opts)?)
        }
    })
}

/// Run `load` (a pipeline's constructor) inside a `pipeline` span, and log its creation with
/// the time it took.
pub(crate) fn traced<T>(task: &str, model: &str, load: impl FnOnce() -> Result<T>) -> Result<T> {
    let _span = tracing::info_span!("pipeline", task, model).entered();
    let started = std::time::Instant::now();
    let pipeline = load()?;
    tracing::info!(elapsed = ?started.elapsed(), "pipeline created");
    Ok(pipeline)
}

/// What every text pipeline loads besides its model: the tokenizer (with a private copy of
/// the `tokenizers` backend for char offsets and special-token masks) and the config.
#[derive(Debug)]
pub(crate) struct TextParts {
    pub tokenizer: PreTrainedTokenizer,
    backend: Tokenizer,
    pub config: PretrainedConfig,
    pub device: Device,
}

impl TextParts {
    /// Load the tokenizer and config; `truncate` truncates inputs to `model_max_length`.
    pub fn load(model: &str, opts: &LoadOptions, truncate: bool) -> Result<Self> {
        let tokenizer = AutoTokenizer::from_pretrained_with(model, opts)?;
        let config = AutoConfig::from_pretrained_with(model, opts)?.value;
        let mut backend = tokenizer.backend();
        if let (true, Some(max_length)) = (truncate, tokenizer.model_max_length()) {
            let left = tokenizer.settings().get("truncation_side").and_then(Value::as_str) == Some("left");
            let params = TruncationParams {
                direction: if left { TruncationDirection::Left } else { TruncationDirection::Right },
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            };
            backend.with_truncation(Some(params)).map_err(|e| Error::Tokenizer(e.to_string()))?;
        }
        Ok(Self { tokenizer, backend, config, device: opts.device.clone() })
    }

    /// Encode one text (or pair) with special tokens; offsets are in characters, as Python's.
    pub fn encode(&self, text: &str, pair: Option<&str>) -> Result<Encoding> {
        let result = match pair {
            Some(pair) => self.backend.encode_char_offsets((text, pair), true),
            None => self.backend.encode_char_offsets(text, true),
        };
        result.map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// `[1, seq]` model inputs of one encoding.
    pub fn inputs(&self, encoding: &Encoding) -> Result<ModelInputs> {
        let row = |v: &[u32]| Tensor::from_slice(v, (1, v.len()), &self.device);
        Ok(ModelInputs::new(row(encoding.get_ids())?)
            .with_attention_mask(row(encoding.get_attention_mask())?)
            .with_token_type_ids(row(encoding.get_type_ids())?))
    }

    /// `convert_tokens_to_string`: the backend decoder on the tokens, else joined by spaces.
    pub fn tokens_to_string(&self, tokens: Vec<String>) -> Result<String> {
        use tokenizers::Decoder;
        match self.backend.get_decoder() {
            Some(decoder) => decoder.decode(tokens).map_err(|e| Error::Tokenizer(e.to_string())),
            None => Ok(tokens.join(" ")),
        }
    }

    /// Whether the tokenizer model marks word continuations (`continuing_subword_prefix`).
    pub fn has_subword_prefix(&self) -> bool {
        serde_json::to_value(self.backend.get_model())
            .ok()
            .is_some_and(|m| m.get("continuing_subword_prefix").and_then(Value::as_str).is_some_and(|p| !p.is_empty()))
    }
}

/// The config's labels by id: `id2label`, else `LABEL_i` for `num_labels` (default 2).
pub(crate) fn config_labels(config: &PretrainedConfig) -> Vec<String> {
    let raw = config.raw();
    if let Some(map) = raw.get("id2label").and_then(Value::as_object).filter(|m| !m.is_empty()) {
        let mut pairs: Vec<(usize, String)> = map
            .iter()
            .map(|(k, v)| (k.parse().unwrap_or(usize::MAX), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        pairs.sort_by_key(|(i, _)| *i);
        return pairs.into_iter().map(|(_, l)| l).collect();
    }
    let n = raw.get("num_labels").and_then(Value::as_u64).unwrap_or(2) as usize;
    (0..n).map(|i| format!("LABEL_{i}")).collect()
}

/// The label of `id`, or `LABEL_{id}` when the config has fewer labels than logits.
pub(crate) fn label_of(labels: &[String], id: usize) -> String {
    labels.get(id).cloned().unwrap_or_else(|| format!("LABEL_{id}"))
}

/// Numerically stable softmax in f32, as torch and numpy compute it in the Python pipelines.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The index and value of the largest entry (the first of ties, as numpy's `argmax`).
pub(crate) fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| if v > best.1 { (i, v) } else { best })
}

/// Indices of `values` sorted by value, largest first; ties keep index order (torch's topk
/// and a stable sort agree on distinct values).
pub(crate) fn sorted_desc(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    order
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn task_names_and_aliases_resolve_like_transformers() {
        assert_eq!(normalize_task("fill-mask").ok(), Some("fill-mask"));
        assert_eq!(normalize_task("sentiment-analysis").ok(), Some("text-classification"));
        assert_eq!(normalize_task("ner").ok(), Some("token-classification"));
        // Removed in transformers 5, kept after 4.57.
        assert_eq!(normalize_task("question-answering").ok(), Some("question-answering"));
        assert_eq!(normalize_task("summarization").ok(), Some("summarization"));
        assert_eq!(normalize_task("text2text-generation").ok(), Some("text2text-generation"));
        assert_eq!(normalize_task("translation").ok(), Some("translation"));
        assert_eq!(normalize_task("translation_en_to_fr").ok(), Some("translation"));
        let bad = normalize_task("translation_en_fr").unwrap_err().to_string();
        assert!(bad.contains("translation_XX_to_YY"), "{bad}");
        let removed = normalize_task("vqa").unwrap_err().to_string();
        assert!(removed.contains("removed from transformers"), "{removed}");
        assert_eq!(normalize_task("image-segmentation").ok(), Some("image-segmentation"));
        assert_eq!(normalize_task("object-detection").ok(), Some("object-detection"));
        let later = normalize_task("mask-generation").unwrap_err().to_string();
        assert!(later.contains("not implemented in autocandle yet"), "{later}");
        let unknown = normalize_task("fill-the-mask").unwrap_err().to_string();
        assert!(unknown.contains("unknown task") && unknown.contains("fill-mask"), "{unknown}");
    }

    #[test]
    fn every_supported_task_parses_to_itself_and_back() {
        for name in SUPPORTED_TASKS {
            let task: PipelineTask = name.parse().unwrap();
            assert_eq!(task.name(), *name);
            assert_eq!(task.to_string(), *name);
        }
        for (alias, name) in TASK_ALIASES {
            assert_eq!(alias.parse::<PipelineTask>().unwrap().name(), *name);
        }
        let de: PipelineTask = " translation_en_to_de ".parse().unwrap();
        assert_eq!(de, PipelineTask::Translation(Some(("en".to_owned(), "de".to_owned()))));
        assert_eq!(de.to_string(), "translation_en_to_de");
        assert_eq!(de.to_string().parse::<PipelineTask>().unwrap(), de);
        // Every way of naming a task reaches the same one.
        let want = PipelineTask::TextClassification;
        assert_eq!("sentiment-analysis".into_pipeline_task().unwrap(), want);
        assert_eq!("text-classification".to_owned().into_pipeline_task().unwrap(), want);
        assert_eq!((&"text-classification".to_owned()).into_pipeline_task().unwrap(), want);
        assert_eq!((&want).into_pipeline_task().unwrap(), want);
        assert_eq!(want.clone().into_pipeline_task().unwrap(), want);
    }

    #[test]
    fn pipeline_takes_a_typed_task_or_a_name_with_the_same_errors() {
        // A local folder without model files: both fail the same way, without the network.
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let by_name = pipeline("fill-mask", folder).unwrap_err().to_string();
        let by_task = pipeline(PipelineTask::FillMask, folder).unwrap_err().to_string();
        assert_eq!(by_name, by_task);
        assert!(by_name.contains("not found"), "{by_name}");
        let unknown = pipeline("fill-the-mask".to_owned(), folder).unwrap_err().to_string();
        assert!(unknown.contains("unknown task `fill-the-mask`"), "{unknown}");
    }

    #[test]
    fn softmax_argmax_and_order() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[2] - 0.665_240_9).abs() < 1e-6);
        assert_eq!(argmax(&[0.1, 0.5, 0.5]), (1, 0.5));
        assert_eq!(sorted_desc(&[0.1, 0.5, 0.3]), vec![1, 2, 0]);
    }
}
