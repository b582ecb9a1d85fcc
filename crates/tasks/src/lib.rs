//! The task table of autocandle: every task, one line each, and everything derived from it.
//!
//! A task is one `transformers` Auto model class (`AutoModelForMaskedLM`) and the head it
//! selects. Its line in [`for_each_task!`] gives, in this order:
//!
//! - the variant of `autocandle_core::Task` (and of `registry::Constructor`, `TaskModel`):
//!   `MaskedLm`;
//! - its kebab-case name, as manifests, fixtures and `#[auto(task = "...")]` spell it:
//!   `"masked-lm"` (the kebab-case of the Auto class name after `AutoModelFor`; `AutoModel` is
//!   `base`);
//! - the `transformers` Auto class, which the facade defines under the same name:
//!   `AutoModelForMaskedLM`;
//! - in brackets, the model trait of `autocandle_core` that the head implements and the first
//!   line of the Auto class's docs (`[ForMaskedLm, "A masked language model"]`), or `[]` for a
//!   task without a model trait yet (its Auto class resolves the model type and explains).
//!
//! Everything else is derived from that table: the `Task` enum and its names, the registry's
//! `Constructor` enum and `TaskHead` impls, the Auto classes and `TaskModel` of the facade, and
//! the tasks `#[derive(AutoRegister)]` and `cargo xtask` accept (through [`TASKS`], the same
//! table as data). **Invariant:** adding a task is one line in [`for_each_task!`]; a task with
//! a model trait also needs that trait in `autocandle_core::models`.
//!
//! This crate has no dependencies, so the derive macro and xtask can read it without candle.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// Call the macro `$callback` with the task table, one entry per task, in `Task` order.
///
/// The callback receives, for each task,
/// `Variant => "kebab-name", AutoClass, [Trait, "doc"];` or `Variant => "kebab-name", AutoClass, [];`
/// and matches them with
///
/// ```text
/// $($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*
/// ```
///
/// ```
/// macro_rules! count {
///     ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
///         [$($name,)*].len()
///     };
/// }
/// assert_eq!(autocandle_tasks::for_each_task!(count), autocandle_tasks::TASKS.len());
/// ```
#[macro_export]
macro_rules! for_each_task {
    ($callback:ident) => {
        $callback! {
            Base => "base", AutoModel, [Model, "The base model of an architecture, without a head"];
            PreTraining => "pretraining", AutoModelForPreTraining, [ForPreTraining, "A model with its pretraining heads"];
            CausalLm => "causal-lm", AutoModelForCausalLM, [ForCausalLm, "A causal language model"];
            MaskedLm => "masked-lm", AutoModelForMaskedLM, [ForMaskedLm, "A masked language model"];
            Seq2SeqLm => "seq2seq-lm", AutoModelForSeq2SeqLM, [ForSeq2SeqLm, "A sequence-to-sequence language model"];
            SequenceClassification => "sequence-classification", AutoModelForSequenceClassification, [ForSequenceClassification, "A sequence classifier"];
            MultipleChoice => "multiple-choice", AutoModelForMultipleChoice, [ForMultipleChoice, "A multiple choice model"];
            NextSentencePrediction => "next-sentence-prediction", AutoModelForNextSentencePrediction, [ForNextSentencePrediction, "A next sentence predictor"];
            TokenClassification => "token-classification", AutoModelForTokenClassification, [ForTokenClassification, "A token classifier"];
            QuestionAnswering => "question-answering", AutoModelForQuestionAnswering, [ForQuestionAnswering, "An extractive question answering model"];
            TextEncoding => "text-encoding", AutoModelForTextEncoding, [ForTextEncoding, "A text encoder, such as `T5EncoderModel`"];
            ImageClassification => "image-classification", AutoModelForImageClassification, [ForImageClassification, "An image classifier"];
            ZeroShotImageClassification => "zero-shot-image-classification", AutoModelForZeroShotImageClassification, [ForZeroShotImageClassification, "A contrastive image-text model"];
            MaskedImageModeling => "masked-image-modeling", AutoModelForMaskedImageModeling, [ForMaskedImageModeling, "A masked image model"];
            Ctc => "ctc", AutoModelForCTC, [ForCtc, "A CTC speech recogniser"];
            SpeechSeq2Seq => "speech-seq2seq", AutoModelForSpeechSeq2Seq, [ForSpeechSeq2Seq, "A speech-to-text encoder-decoder, such as Whisper"];
            AudioClassification => "audio-classification", AutoModelForAudioClassification, [ForAudioClassification, "An audio classifier"];
            MaskGeneration => "mask-generation", AutoModelForMaskGeneration, [];
            DepthEstimation => "depth-estimation", AutoModelForDepthEstimation, [ForDepthEstimation, "A depth estimator"];
            NormalEstimation => "normal-estimation", AutoModelForNormalEstimation, [];
            PointmapEstimation => "pointmap-estimation", AutoModelForPointmapEstimation, [];
            ImageMatting => "image-matting", AutoModelForImageMatting, [];
            TextRecognition => "text-recognition", AutoModelForTextRecognition, [];
            TableRecognition => "table-recognition", AutoModelForTableRecognition, [];
            VideoClassification => "video-classification", AutoModelForVideoClassification, [];
            PoseEstimation => "pose-estimation", AutoModelForPoseEstimation, [];
            KeypointDetection => "keypoint-detection", AutoModelForKeypointDetection, [];
            KeypointMatching => "keypoint-matching", AutoModelForKeypointMatching, [];
            ObjectDetection => "object-detection", AutoModelForObjectDetection, [ForObjectDetection, "An object detector"];
            ImageSegmentation => "image-segmentation", AutoModelForImageSegmentation, [];
            ImageToImage => "image-to-image", AutoModelForImageToImage, [];
            SemanticSegmentation => "semantic-segmentation", AutoModelForSemanticSegmentation, [ForSemanticSegmentation, "A semantic segmentation model"];
            InstanceSegmentation => "instance-segmentation", AutoModelForInstanceSegmentation, [];
            UniversalSegmentation => "universal-segmentation", AutoModelForUniversalSegmentation, [];
            ZeroShotObjectDetection => "zero-shot-object-detection", AutoModelForZeroShotObjectDetection, [];
            TableQuestionAnswering => "table-question-answering", AutoModelForTableQuestionAnswering, [];
            DocumentQuestionAnswering => "document-question-answering", AutoModelForDocumentQuestionAnswering, [];
            VisualQuestionAnswering => "visual-question-answering", AutoModelForVisualQuestionAnswering, [];
            Vision2Seq => "vision2seq", AutoModelForVision2Seq, [ForVision2Seq, "A vision-to-text model (`transformers` maps it as `AutoModelForImageTextToText`)"];
            ImageTextToText => "image-text-to-text", AutoModelForImageTextToText, [ForImageTextToText, "A vision-language model: text generated from images and text"];
            MultimodalLm => "multimodal-lm", AutoModelForMultimodalLM, [ForMultimodalLm, "A multimodal language model (here: image and text inputs)"];
            AudioFrameClassification => "audio-frame-classification", AutoModelForAudioFrameClassification, [ForAudioFrameClassification, "An audio frame classifier"];
            AudioXVector => "audio-xvector", AutoModelForAudioXVector, [ForAudioXVector, "A speaker-verification (x-vector) model"];
            AudioTokenization => "audio-tokenization", AutoModelForAudioTokenization, [];
            TextToSpectrogram => "text-to-spectrogram", AutoModelForTextToSpectrogram, [];
            TextToWaveform => "text-to-waveform", AutoModelForTextToWaveform, [];
            TimeSeriesPrediction => "time-series-prediction", AutoModelForTimeSeriesPrediction, [];
            Tdt => "tdt", AutoModelForTDT, [];
        }
    };
}

/// One task of the table, as data (for code that reads the table at run time: the derive
/// macro, xtask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskInfo {
    /// The kebab-case name (`masked-lm`).
    pub name: &'static str,
    /// The variant of `autocandle_core::Task` (`MaskedLm`).
    pub variant: &'static str,
    /// The `transformers` Auto class (`AutoModelForMaskedLM`).
    pub auto_class: &'static str,
    /// The model trait of `autocandle_core` (`ForMaskedLm`), `None` for a task without one yet.
    pub trait_name: Option<&'static str>,
}

impl TaskInfo {
    /// Whether a model can be registered for this task (it has a model trait).
    pub const fn has_trait(&self) -> bool {
        self.trait_name.is_some()
    }
}

/// `Some("Trait")` or `None`, from the optional trait of a table entry.
macro_rules! trait_name {
    () => {
        None
    };
    ($trait:ident) => {
        Some(stringify!($trait))
    };
}

macro_rules! task_infos {
    ($($variant:ident => $name:literal, $auto:ident, [$($trait:ident, $doc:literal)?];)*) => {
        /// Every task, in `Task` declaration order.
        pub const TASKS: &[TaskInfo] = &[$(
            TaskInfo {
                name: $name,
                variant: stringify!($variant),
                auto_class: stringify!($auto),
                trait_name: trait_name!($($trait)?),
            },
        )*];
    };
}

for_each_task!(task_infos);

/// The task called `name` (kebab-case, exactly as [`TaskInfo::name`] spells it).
pub fn find(name: &str) -> Option<&'static TaskInfo> {
    TASKS.iter().find(|t| t.name == name)
}

/// The position of the task called `name` in [`TASKS`], if there is one.
pub fn position(name: &str) -> Option<usize> {
    TASKS.iter().position(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_kebab_case() {
        for (i, t) in TASKS.iter().enumerate() {
            assert!(t.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", t.name);
            assert!(t.auto_class.starts_with("AutoModel"), "{}", t.auto_class);
            assert_eq!(position(t.name), Some(i), "`{}` is listed twice", t.name);
            assert!(TASKS.iter().filter(|u| u.variant == t.variant).count() == 1, "{}", t.variant);
            assert!(TASKS.iter().filter(|u| u.auto_class == t.auto_class).count() == 1, "{}", t.auto_class);
            if let Some(name) = t.trait_name {
                assert!(name == "Model" || name == format!("For{}", t.variant), "{name} for {}", t.variant);
            }
        }
    }

    #[test]
    fn names_follow_the_auto_class() {
        // `AutoModel` is `base`; every other name is the Auto class after `AutoModelFor`,
        // kebab-cased, and the variant is that class name in Rust's casing.
        for t in &TASKS[1..] {
            let rest = t.auto_class.strip_prefix("AutoModelFor").unwrap_or(t.auto_class);
            assert_eq!(t.name.replace('-', ""), rest.to_ascii_lowercase(), "{}", t.auto_class);
            assert!(rest.eq_ignore_ascii_case(t.variant), "{} vs {}", t.variant, t.auto_class);
        }
        assert_eq!((TASKS[0].name, TASKS[0].auto_class), ("base", "AutoModel"));
    }

    #[test]
    fn lookups() {
        assert_eq!(find("masked-lm").map(|t| t.variant), Some("MaskedLm"));
        assert_eq!(find("masked-lm").and_then(|t| t.trait_name), Some("ForMaskedLm"));
        assert_eq!(find("ctc").map(TaskInfo::has_trait), Some(true));
        assert_eq!(find("mask-generation").map(TaskInfo::has_trait), Some(false));
        assert_eq!(find("masked_lm"), None);
        assert_eq!(position("base"), Some(0));
        assert_eq!(TASKS.len(), 48);
        let with_trait = TASKS.iter().filter(|t| t.has_trait()).count();
        assert_eq!(with_trait, 25);
    }
}
