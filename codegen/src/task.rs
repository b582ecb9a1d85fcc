//! The task names `#[auto(task = "...")]` accepts, with the core types each one maps to.
//!
//! **Invariant:** [`SUPPORTED`] mirrors the `constructors!` list in
//! `autocandle_core::registry`, and [`SUPPORTED`] plus [`WITHOUT_TRAIT`] together are
//! exactly `autocandle_core::Task::ALL`; the tests below check the second half, and
//! `tests/register.rs` compiles and registers a head for every supported task.

/// A task that has a model trait and a constructor in `autocandle_core`.
#[derive(Debug)]
pub(crate) struct TaskSpec {
    /// The kebab-case name, as `Task::as_str` spells it (`masked-lm`).
    pub(crate) name: &'static str,
    /// The variant of both `autocandle_core::Task` and `registry::Constructor` (`MaskedLm`).
    pub(crate) variant: &'static str,
    /// The task trait in `autocandle_core` (`ForMaskedLm`).
    pub(crate) trait_name: &'static str,
}

const fn spec(name: &'static str, variant: &'static str, trait_name: &'static str) -> TaskSpec {
    TaskSpec { name, variant, trait_name }
}

/// Tasks a model can be registered for, in `Task` declaration order.
pub(crate) const SUPPORTED: &[TaskSpec] = &[
    spec("base", "Base", "Model"),
    spec("pretraining", "PreTraining", "ForPreTraining"),
    spec("causal-lm", "CausalLm", "ForCausalLm"),
    spec("masked-lm", "MaskedLm", "ForMaskedLm"),
    spec("seq2seq-lm", "Seq2SeqLm", "ForSeq2SeqLm"),
    spec("sequence-classification", "SequenceClassification", "ForSequenceClassification"),
    spec("multiple-choice", "MultipleChoice", "ForMultipleChoice"),
    spec("next-sentence-prediction", "NextSentencePrediction", "ForNextSentencePrediction"),
    spec("token-classification", "TokenClassification", "ForTokenClassification"),
    spec("question-answering", "QuestionAnswering", "ForQuestionAnswering"),
    spec("text-encoding", "TextEncoding", "ForTextEncoding"),
    spec("image-classification", "ImageClassification", "ForImageClassification"),
    spec("zero-shot-image-classification", "ZeroShotImageClassification", "ForZeroShotImageClassification"),
    spec("masked-image-modeling", "MaskedImageModeling", "ForMaskedImageModeling"),
];

/// Tasks that `autocandle_core::Task` names but that have no model trait yet.
pub(crate) const WITHOUT_TRAIT: &[&str] = &[
    "ctc",
    "speech-seq2seq",
    "audio-classification",
    "mask-generation",
    "depth-estimation",
    "normal-estimation",
    "pointmap-estimation",
    "image-matting",
    "text-recognition",
    "table-recognition",
    "video-classification",
    "pose-estimation",
    "keypoint-detection",
    "keypoint-matching",
    "object-detection",
    "image-segmentation",
    "image-to-image",
    "semantic-segmentation",
    "instance-segmentation",
    "universal-segmentation",
    "zero-shot-object-detection",
    "table-question-answering",
    "document-question-answering",
    "visual-question-answering",
    "vision2seq",
    "image-text-to-text",
    "multimodal-lm",
    "audio-frame-classification",
    "audio-xvector",
    "audio-tokenization",
    "text-to-spectrogram",
    "text-to-waveform",
    "time-series-prediction",
    "tdt",
];

/// `transformers` pipeline names and common abbreviations, mapped to the task they mean.
const ALIASES: &[(&str, &str)] = &[
    ("feature-extraction", "base"),
    ("fill-mask", "masked-lm"),
    ("mlm", "masked-lm"),
    ("text-generation", "causal-lm"),
    ("clm", "causal-lm"),
    ("lm", "causal-lm"),
    ("text-classification", "sequence-classification"),
    ("sentiment-analysis", "sequence-classification"),
    ("ner", "token-classification"),
    ("qa", "question-answering"),
    ("nsp", "next-sentence-prediction"),
    ("text2text-generation", "seq2seq-lm"),
    ("translation", "seq2seq-lm"),
    ("summarization", "seq2seq-lm"),
];

/// Why a task name was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// A task of `autocandle_core::Task` without a model trait.
    NoTrait,
    /// No task has this name; carries the closest known name, if any is close.
    Unknown(Option<&'static str>),
}

/// Look up a task by its kebab-case name.
pub(crate) fn lookup(name: &str) -> Result<&'static TaskSpec, Rejected> {
    if let Some(spec) = SUPPORTED.iter().find(|t| t.name == name) {
        return Ok(spec);
    }
    if WITHOUT_TRAIT.contains(&name) {
        return Err(Rejected::NoTrait);
    }
    Err(Rejected::Unknown(suggest(name)))
}

/// `base`, `pretraining`, ...: every supported task name, for error messages.
pub(crate) fn supported_list() -> String {
    SUPPORTED.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
}

fn all_names() -> impl Iterator<Item = &'static str> {
    SUPPORTED.iter().map(|t| t.name).chain(WITHOUT_TRAIT.iter().copied())
}

/// Lowercase ASCII letters and digits only, so `MaskedLM`, `masked_lm` and `masked-lm` agree.
fn normalize(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The known task name closest to `name`, when one is close enough to be a likely typo.
fn suggest(name: &str) -> Option<&'static str> {
    let wanted = normalize(name);
    if wanted.is_empty() {
        return None;
    }
    // `AutoModelForMaskedLM` and `BertForMaskedLM` name the task after `For`.
    let wanted = match wanted.rfind("for") {
        Some(at) if at + 3 < wanted.len() => wanted[at + 3..].to_owned(),
        _ => wanted,
    };
    if let Some((_, task)) = ALIASES.iter().find(|(alias, _)| normalize(alias) == wanted) {
        return Some(task);
    }
    if let Some(exact) = all_names().find(|n| normalize(n) == wanted) {
        return Some(exact);
    }
    all_names()
        .map(|n| (strsim::jaro_winkler(&wanted, &normalize(n)), n))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_names_resolve() {
        for spec in SUPPORTED {
            assert_eq!(lookup(spec.name).map(|s| s.variant), Ok(spec.variant));
        }
        assert_eq!(lookup("ctc").map(|s| s.name), Err(Rejected::NoTrait));
    }

    #[test]
    fn tasks_match_core() {
        let mut ours: Vec<&str> = all_names().collect();
        let mut core: Vec<&str> = autocandle_core::Task::ALL.iter().map(|t| t.as_str()).collect();
        ours.sort_unstable();
        core.sort_unstable();
        assert_eq!(ours, core, "update SUPPORTED / WITHOUT_TRAIT to match autocandle_core::Task");
        for &task in autocandle_core::Task::ALL {
            if let Ok(spec) = lookup(task.as_str()) {
                assert_eq!(spec.variant, format!("{task:?}"), "{task}");
            }
        }
    }

    #[test]
    fn suggestions() {
        let cases = [
            ("masked_lm", Some("masked-lm")),
            ("MaskedLM", Some("masked-lm")),
            ("AutoModelForMaskedLM", Some("masked-lm")),
            ("BertForSequenceClassification", Some("sequence-classification")),
            ("fill-mask", Some("masked-lm")),
            ("text-generation", Some("causal-lm")),
            ("token-classifcation", Some("token-classification")),
            ("sequence-classifier", Some("sequence-classification")),
            ("question-answer", Some("question-answering")),
            ("pre-training", Some("pretraining")),
            ("seq2seq", Some("seq2seq-lm")),
            ("tokenizer", None),
            ("", None),
            ("xyz", None),
        ];
        for (name, want) in cases {
            assert_eq!(lookup(name).map(|s| s.name), Err(Rejected::Unknown(want)), "{name}");
        }
    }
}
