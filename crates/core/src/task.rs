//! The `Task` enum: which head an Auto class selects, named as in the fixture format.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

macro_rules! tasks {
    ($($variant:ident => $name:literal, $auto:literal;)*) => {
        /// A task head, one per `transformers` Auto model class.
        ///
        /// The string form is the kebab-case of the Auto class name after `AutoModelFor`
        /// (`AutoModel` is `base`), as in the reference fixture format.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Task {
            $(#[doc = concat!("`", $name, "`: `", $auto, "`")] $variant,)*
        }

        impl Task {
            /// Every task, in declaration order.
            pub const ALL: &'static [Task] = &[$(Task::$variant,)*];

            /// The task's kebab-case name (`masked-lm`).
            pub const fn as_str(self) -> &'static str {
                match self { $(Task::$variant => $name,)* }
            }

            /// The `transformers` Auto class that selects this task (`AutoModelForMaskedLM`).
            pub const fn auto_class(self) -> &'static str {
                match self { $(Task::$variant => $auto,)* }
            }
        }
    };
}

tasks! {
    Base => "base", "AutoModel";
    PreTraining => "pretraining", "AutoModelForPreTraining";
    CausalLm => "causal-lm", "AutoModelForCausalLM";
    MaskedLm => "masked-lm", "AutoModelForMaskedLM";
    Seq2SeqLm => "seq2seq-lm", "AutoModelForSeq2SeqLM";
    SequenceClassification => "sequence-classification", "AutoModelForSequenceClassification";
    MultipleChoice => "multiple-choice", "AutoModelForMultipleChoice";
    NextSentencePrediction => "next-sentence-prediction", "AutoModelForNextSentencePrediction";
    TokenClassification => "token-classification", "AutoModelForTokenClassification";
    QuestionAnswering => "question-answering", "AutoModelForQuestionAnswering";
    TextEncoding => "text-encoding", "AutoModelForTextEncoding";
    ImageClassification => "image-classification", "AutoModelForImageClassification";
    ZeroShotImageClassification => "zero-shot-image-classification", "AutoModelForZeroShotImageClassification";
    MaskedImageModeling => "masked-image-modeling", "AutoModelForMaskedImageModeling";
    Ctc => "ctc", "AutoModelForCTC";
    SpeechSeq2Seq => "speech-seq2seq", "AutoModelForSpeechSeq2Seq";
    AudioClassification => "audio-classification", "AutoModelForAudioClassification";
    MaskGeneration => "mask-generation", "AutoModelForMaskGeneration";
    DepthEstimation => "depth-estimation", "AutoModelForDepthEstimation";
    NormalEstimation => "normal-estimation", "AutoModelForNormalEstimation";
    PointmapEstimation => "pointmap-estimation", "AutoModelForPointmapEstimation";
    ImageMatting => "image-matting", "AutoModelForImageMatting";
    TextRecognition => "text-recognition", "AutoModelForTextRecognition";
    TableRecognition => "table-recognition", "AutoModelForTableRecognition";
    VideoClassification => "video-classification", "AutoModelForVideoClassification";
    PoseEstimation => "pose-estimation", "AutoModelForPoseEstimation";
    KeypointDetection => "keypoint-detection", "AutoModelForKeypointDetection";
    KeypointMatching => "keypoint-matching", "AutoModelForKeypointMatching";
    ObjectDetection => "object-detection", "AutoModelForObjectDetection";
    ImageSegmentation => "image-segmentation", "AutoModelForImageSegmentation";
    ImageToImage => "image-to-image", "AutoModelForImageToImage";
    SemanticSegmentation => "semantic-segmentation", "AutoModelForSemanticSegmentation";
    InstanceSegmentation => "instance-segmentation", "AutoModelForInstanceSegmentation";
    UniversalSegmentation => "universal-segmentation", "AutoModelForUniversalSegmentation";
    ZeroShotObjectDetection => "zero-shot-object-detection", "AutoModelForZeroShotObjectDetection";
    TableQuestionAnswering => "table-question-answering", "AutoModelForTableQuestionAnswering";
    DocumentQuestionAnswering => "document-question-answering", "AutoModelForDocumentQuestionAnswering";
    VisualQuestionAnswering => "visual-question-answering", "AutoModelForVisualQuestionAnswering";
    Vision2Seq => "vision2seq", "AutoModelForVision2Seq";
    ImageTextToText => "image-text-to-text", "AutoModelForImageTextToText";
    MultimodalLm => "multimodal-lm", "AutoModelForMultimodalLM";
    AudioFrameClassification => "audio-frame-classification", "AutoModelForAudioFrameClassification";
    AudioXVector => "audio-xvector", "AutoModelForAudioXVector";
    AudioTokenization => "audio-tokenization", "AutoModelForAudioTokenization";
    TextToSpectrogram => "text-to-spectrogram", "AutoModelForTextToSpectrogram";
    TextToWaveform => "text-to-waveform", "AutoModelForTextToWaveform";
    TimeSeriesPrediction => "time-series-prediction", "AutoModelForTimeSeriesPrediction";
    Tdt => "tdt", "AutoModelForTDT";
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Task::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| Error::UnknownTask {
            name: s.to_owned(),
            known: Task::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &task in Task::ALL {
            assert_eq!(task.as_str().parse::<Task>().unwrap(), task);
            assert!(task.auto_class().starts_with("AutoModel"));
        }
        assert!("masked_lm".parse::<Task>().is_err());
    }
}
