//! `autocandle models [--task TASK]`: the architectures autocandle implements, from the
//! catalog generated out of manifests/ (`crates/auto/src/mappings.rs`).

use anyhow::Result;
use autocandle::catalog::{is_feature_enabled, model_types, ModelTypeInfo, TaskClass};
use autocandle::Task;
use clap::Args;
use serde_json::{json, Value};

use crate::output::{table, Output};

/// List the supported model types and their heads (the generated catalog)
#[derive(Debug, Clone, Args)]
pub struct Models {
    /// Only model types with a head for TASK: a pipeline task (fill-mask, text-generation,
    /// ...) or an Auto class task (masked-lm, causal-lm, ...)
    #[arg(long, value_parser = parse_task, value_name = "TASK")]
    pub task: Option<Task>,
    /// Also list the model types transformers has that autocandle does not implement
    #[arg(long)]
    pub all: bool,
}

/// The model head a pipeline task loads (`transformers`' `SUPPORTED_TASKS[task]["pt"]`).
pub const PIPELINE_HEADS: &[(&str, Task)] = &[
    ("feature-extraction", Task::Base),
    ("fill-mask", Task::MaskedLm),
    ("image-classification", Task::ImageClassification),
    ("ner", Task::TokenClassification),
    ("question-answering", Task::QuestionAnswering),
    ("sentiment-analysis", Task::SequenceClassification),
    ("summarization", Task::Seq2SeqLm),
    ("text-classification", Task::SequenceClassification),
    ("text-generation", Task::CausalLm),
    ("text2text-generation", Task::Seq2SeqLm),
    ("token-classification", Task::TokenClassification),
    ("translation", Task::Seq2SeqLm),
    ("zero-shot-image-classification", Task::ZeroShotImageClassification),
];

pub fn parse_task(s: &str) -> std::result::Result<Task, String> {
    let name = if s.starts_with("translation_") { "translation" } else { s };
    if let Some((_, task)) = PIPELINE_HEADS.iter().find(|(p, _)| *p == name) {
        return Ok(*task);
    }
    if let Some(task) = Task::ALL.iter().find(|t| t.as_str() == s || t.auto_class() == s) {
        return Ok(*task);
    }
    Err(format!(
        "unknown task; use a pipeline task ({}) or an Auto class task (masked-lm, causal-lm, seq2seq-lm, ...: the \
         kebab-case of the AutoModelFor* name)",
        PIPELINE_HEADS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", "),
    ))
}

impl Models {
    /// The heads of `info` to show: those for `--task`, else every one, implemented ones
    /// only without `--all`.
    fn heads(&self, info: &ModelTypeInfo) -> Vec<&'static TaskClass> {
        info.tasks
            .iter()
            .filter(|t| self.task.is_none_or(|task| t.task == task))
            .filter(|t| self.all || t.implemented)
            .collect()
    }

    pub fn run(&self, json: bool) -> Result<()> {
        let rows: Vec<(&ModelTypeInfo, Vec<&TaskClass>)> = model_types()
            .iter()
            .filter(|info| self.all || info.is_implemented())
            .map(|info| (info, self.heads(info)))
            .filter(|(_, heads)| self.task.is_none() || !heads.is_empty())
            .collect();
        if json {
            let doc: Vec<Value> = rows
                .iter()
                .map(|(info, heads)| {
                    json!({
                        "model_type": info.model_type,
                        "name": info.name,
                        "crate": info.crate_name,
                        "feature": info.feature,
                        "compiled_in": info.feature.is_some_and(is_feature_enabled),
                        "heads": heads.iter().map(|h| json!({
                            "task": h.task.as_str(),
                            "auto_class": h.task.auto_class(),
                            "class": h.class_name,
                            "implemented": h.implemented,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Output::document(&Value::Array(doc))?;
            return Ok(());
        }
        let mut out = Output::new(false);
        let mark = |h: &TaskClass, text: String| if h.implemented { text } else { format!("({text})") };
        let mut table_rows: Vec<Vec<String>> = match self.task {
            Some(task) => vec![vec!["model_type".into(), "name".into(), "feature".into(), task.auto_class().into()]],
            None => vec![vec!["model_type".into(), "name".into(), "feature".into(), "heads".into()]],
        };
        for (info, heads) in &rows {
            let feature = info.feature.unwrap_or("-").to_owned();
            let heads = match self.task {
                Some(_) => heads.iter().map(|h| mark(h, h.class_name.to_owned())).collect::<Vec<_>>().join(", "),
                None if heads.is_empty() => "-".to_owned(),
                None => heads.iter().map(|h| mark(h, h.task.as_str().to_owned())).collect::<Vec<_>>().join(", "),
            };
            table_rows.push(vec![info.model_type.to_owned(), info.name.to_owned(), feature, heads]);
        }
        for line in table(&table_rows) {
            out.line(line)?;
        }
        let what = match self.task {
            Some(task) => format!(" with a {task} head ({})", task.auto_class()),
            None => String::new(),
        };
        let not_implemented = if self.all { "; in parentheses: not implemented in autocandle" } else { "" };
        out.line(format!("{} model types{what}{not_implemented}", rows.len()))?;
        out.finish()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_parse_by_pipeline_or_auto_class_name() {
        assert_eq!(parse_task("fill-mask"), Ok(Task::MaskedLm));
        assert_eq!(parse_task("ner"), Ok(Task::TokenClassification));
        assert_eq!(parse_task("translation_en_to_fr"), Ok(Task::Seq2SeqLm));
        assert_eq!(parse_task("causal-lm"), Ok(Task::CausalLm));
        assert_eq!(parse_task("AutoModelForImageClassification"), Ok(Task::ImageClassification));
        assert!(parse_task("fill-the-mask").is_err());
    }
}
