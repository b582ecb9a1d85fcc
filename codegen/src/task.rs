//! The task names `#[auto(task = "...")]` accepts, with the core types each one maps to.
//!
//! The tasks come from the task table of `autocandle-tasks`, the one `autocandle_core::Task`,
//! `registry::Constructor` and the facade's Auto classes are generated from; a task can be
//! registered for when it has a model trait there. `tests/register.rs` compiles and registers a
//! head for every such task.

use autocandle_tasks::TASKS;

/// A task that has a model trait and a constructor in `autocandle_core`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskSpec {
    /// The kebab-case name, as `Task::as_str` spells it (`masked-lm`).
    pub(crate) name: &'static str,
    /// The variant of both `autocandle_core::Task` and `registry::Constructor` (`MaskedLm`).
    pub(crate) variant: &'static str,
    /// The task trait in `autocandle_core` (`ForMaskedLm`).
    pub(crate) trait_name: &'static str,
}

/// Tasks a model can be registered for, in `Task` declaration order.
fn supported() -> impl Iterator<Item = TaskSpec> {
    TASKS.iter().filter_map(|t| Some(TaskSpec { name: t.name, variant: t.variant, trait_name: t.trait_name? }))
}

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
pub(crate) fn lookup(name: &str) -> Result<TaskSpec, Rejected> {
    if let Some(spec) = supported().find(|t| t.name == name) {
        return Ok(spec);
    }
    if TASKS.iter().any(|t| t.name == name) {
        return Err(Rejected::NoTrait);
    }
    Err(Rejected::Unknown(suggest(name)))
}

/// `base`, `pretraining`, ...: every supported task name, for error messages.
pub(crate) fn supported_list() -> String {
    supported().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
}

fn all_names() -> impl Iterator<Item = &'static str> {
    TASKS.iter().map(|t| t.name)
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
        for spec in supported() {
            assert_eq!(lookup(spec.name), Ok(spec));
        }
        assert_eq!(lookup("masked-lm").map(|s| s.trait_name), Ok("ForMaskedLm"));
        assert_eq!(lookup("ctc").map(|s| s.trait_name), Ok("ForCtc"));
        assert_eq!(lookup("mask-generation").map(|s| s.name), Err(Rejected::NoTrait));
        assert_eq!(supported().count(), 25);
    }

    #[test]
    fn aliases_name_tasks() {
        for (alias, task) in ALIASES {
            assert!(lookup(task).is_ok(), "alias `{alias}` names `{task}`, which cannot be registered for");
            assert!(lookup(alias).is_err(), "alias `{alias}` is a task name itself");
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
