//! The task names manifests may use, with the `autocandle_core::Task` variant each one maps to.
//!
//! xtask does not depend on `autocandle-core` (that would pull candle into every
//! `cargo xtask` run), so the table is kept here by hand; a test checks it against
//! the `tasks!` list in `crates/core/src/task.rs`, order included.

/// One task: its kebab-case name (as in manifests and fixtures) and its `Task` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDef {
    /// The kebab-case name (`masked-lm`).
    pub name: &'static str,
    /// The variant of `autocandle_core::Task` (`MaskedLm`).
    pub variant: &'static str,
}

const fn def(name: &'static str, variant: &'static str) -> TaskDef {
    TaskDef { name, variant }
}

/// Every task, in the order of the `Task` enum.
pub const TASKS: &[TaskDef] = &[
    def("base", "Base"),
    def("pretraining", "PreTraining"),
    def("causal-lm", "CausalLm"),
    def("masked-lm", "MaskedLm"),
    def("seq2seq-lm", "Seq2SeqLm"),
    def("sequence-classification", "SequenceClassification"),
    def("multiple-choice", "MultipleChoice"),
    def("next-sentence-prediction", "NextSentencePrediction"),
    def("token-classification", "TokenClassification"),
    def("question-answering", "QuestionAnswering"),
    def("text-encoding", "TextEncoding"),
    def("image-classification", "ImageClassification"),
    def("zero-shot-image-classification", "ZeroShotImageClassification"),
    def("masked-image-modeling", "MaskedImageModeling"),
    def("ctc", "Ctc"),
    def("speech-seq2seq", "SpeechSeq2Seq"),
    def("audio-classification", "AudioClassification"),
    def("mask-generation", "MaskGeneration"),
    def("depth-estimation", "DepthEstimation"),
    def("normal-estimation", "NormalEstimation"),
    def("pointmap-estimation", "PointmapEstimation"),
    def("image-matting", "ImageMatting"),
    def("text-recognition", "TextRecognition"),
    def("table-recognition", "TableRecognition"),
    def("video-classification", "VideoClassification"),
    def("pose-estimation", "PoseEstimation"),
    def("keypoint-detection", "KeypointDetection"),
    def("keypoint-matching", "KeypointMatching"),
    def("object-detection", "ObjectDetection"),
    def("image-segmentation", "ImageSegmentation"),
    def("image-to-image", "ImageToImage"),
    def("semantic-segmentation", "SemanticSegmentation"),
    def("instance-segmentation", "InstanceSegmentation"),
    def("universal-segmentation", "UniversalSegmentation"),
    def("zero-shot-object-detection", "ZeroShotObjectDetection"),
    def("table-question-answering", "TableQuestionAnswering"),
    def("document-question-answering", "DocumentQuestionAnswering"),
    def("visual-question-answering", "VisualQuestionAnswering"),
    def("vision2seq", "Vision2Seq"),
    def("image-text-to-text", "ImageTextToText"),
    def("multimodal-lm", "MultimodalLm"),
    def("audio-frame-classification", "AudioFrameClassification"),
    def("audio-xvector", "AudioXVector"),
    def("audio-tokenization", "AudioTokenization"),
    def("text-to-spectrogram", "TextToSpectrogram"),
    def("text-to-waveform", "TextToWaveform"),
    def("time-series-prediction", "TimeSeriesPrediction"),
    def("tdt", "Tdt"),
];

/// The position of the task called `name` in [`TASKS`], if there is one.
pub fn position(name: &str) -> Option<usize> {
    TASKS.iter().position(|t| t.name == name)
}

/// Every task name, comma-separated, for error messages.
pub fn known_names() -> String {
    TASKS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use anyhow::{bail, Context, Result};

    /// Reads the `(variant, name)` pairs of the `tasks! { ... }` invocation in `task.rs`.
    fn core_tasks(source: &str) -> Result<Vec<(String, String)>> {
        let mut lines = source.lines().skip_while(|l| l.trim() != "tasks! {");
        lines.next().context("no `tasks! {` invocation in crates/core/src/task.rs")?;
        let mut out = Vec::new();
        for line in lines {
            let line = line.trim();
            if line == "}" {
                return Ok(out);
            }
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let (variant, rest) =
                line.split_once("=>").with_context(|| format!("unexpected line in `tasks!`: {line}"))?;
            let name = rest.split('"').nth(1).with_context(|| format!("no task name in `tasks!` line: {line}"))?;
            out.push((variant.trim().to_owned(), name.to_owned()));
        }
        bail!("`tasks! {{` in crates/core/src/task.rs is not closed by a `}}` line")
    }

    #[test]
    fn table_matches_core_task_enum() -> Result<()> {
        let path = crate::workspace_root().join("crates/core/src/task.rs");
        let source = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let core = core_tasks(&source)?;
        let ours: Vec<(String, String)> = TASKS.iter().map(|t| (t.variant.to_owned(), t.name.to_owned())).collect();
        assert_eq!(
            ours, core,
            "xtask/src/tasks.rs TASKS is out of step with the `tasks!` list in crates/core/src/task.rs"
        );
        Ok(())
    }

    #[test]
    fn parser_reads_the_invocation_not_the_macro() -> Result<()> {
        let source = "macro_rules! tasks {\n    ($($v:ident => $n:literal;)*) => {};\n}\n\ntasks! {\n    Base => \"base\", \"AutoModel\";\n    CausalLm => \"causal-lm\", \"AutoModelForCausalLM\";\n}\n";
        let got = core_tasks(source)?;
        assert_eq!(got, vec![("Base".to_owned(), "base".to_owned()), ("CausalLm".to_owned(), "causal-lm".to_owned()),]);
        assert!(core_tasks("tasks! {\n    Base => \"base\", \"AutoModel\";\n").is_err());
        Ok(())
    }

    #[test]
    fn lookups() {
        assert_eq!(position("base"), Some(0));
        assert_eq!(position("seq2seq-lm").map(|i| TASKS[i].variant), Some("Seq2SeqLm"));
        assert_eq!(position("masked_lm"), None);
        assert!(known_names().starts_with("base, pretraining, causal-lm"));
    }
}
