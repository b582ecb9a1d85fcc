//! `autocandle question-answering`: extractive answers to questions about a context, with
//! their character offsets in the context (`transformers` 4.57's pipeline; 5.x removed it).
//!
//! Inputs: the context once (`--context TEXT`, or `--context-file FILE`, `-` for stdin) and
//! the questions as arguments, `--question`, or lines of stdin; without a context, each input
//! is a JSON object `{"question": ..., "context": ...}` (JSON Lines on stdin).

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use autocandle::pipelines::{Answer, QuestionAnsweringOptions, QuestionAnsweringPipeline};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::{json_score, InputArgs, Inputs, ModelArgs, TaskCommand};
use crate::output::{score, short, table, Output};

/// Answer questions about a context with an extractive question-answering model
///
/// Give the context with --context TEXT or --context-file FILE (`-` reads it from stdin), and
/// the questions as INPUT arguments, with --question, or one per line on stdin:
///
///   autocandle question-answering --context "The cat sat on the mat." "Where is the cat?"
///
///   autocandle question-answering --context-file article.txt < questions.txt
///
/// Without a context, each input is a JSON object {"question": "...", "context": "..."}
/// (one per line on stdin: JSON Lines), for questions about different contexts. Answers are
/// {"score", "start", "end", "answer"}: `start` and `end` are character offsets in the context.
#[derive(Debug, Clone, Args)]
#[command(verbatim_doc_comment)]
pub struct QuestionAnswering {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The question (instead of INPUT arguments)
    #[arg(long, value_name = "TEXT", conflicts_with = "inputs")]
    pub question: Option<String>,
    /// The context the answers are taken from, for every question
    #[arg(long, value_name = "TEXT", conflicts_with = "context_file")]
    pub context: Option<String>,
    /// Read the context from this file (`-`: stdin), for every question
    #[arg(long, value_name = "FILE")]
    pub context_file: Option<PathBuf>,
    /// How many answers per question, best first
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub top_k: usize,
    /// Overlap in tokens between the windows of a long context [default: min(max-seq-len / 2, 128)]
    #[arg(long, value_name = "N")]
    pub doc_stride: Option<usize>,
    /// Longest answer, in tokens
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub max_answer_len: usize,
    /// Tokens per window, question and special tokens included [default: min(model_max_length, 384)]
    #[arg(long, value_name = "N")]
    pub max_seq_len: Option<usize>,
    /// Also propose the empty answer ("no answer in the context")
    #[arg(long)]
    pub handle_impossible_answer: bool,
    /// Keep the answers' token boundaries instead of widening them to whole words
    /// (align_to_words=False)
    #[arg(long)]
    pub no_align_to_words: bool,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The context, read once.
    #[arg(skip)]
    pub context_text: OnceLock<String>,
}

const NO_CONTEXT: &str = "give the context with --context TEXT or --context-file FILE, or inputs as JSON objects \
                          {\"question\": \"...\", \"context\": \"...\"}";

impl QuestionAnswering {
    fn options(&self) -> QuestionAnsweringOptions {
        QuestionAnsweringOptions {
            top_k: self.top_k,
            doc_stride: self.doc_stride,
            max_answer_len: self.max_answer_len,
            max_seq_len: self.max_seq_len,
            handle_impossible_answer: self.handle_impossible_answer,
            align_to_words: !self.no_align_to_words,
        }
    }

    /// Whether the questions come from stdin (no argument, or `-` among them).
    fn questions_from_stdin(&self) -> bool {
        match &self.question {
            Some(q) => q == "-",
            None => self.inputs.inputs.is_empty() || self.inputs.inputs.iter().any(|i| i == "-"),
        }
    }

    /// The context of `--context` / `--context-file`, if one was given.
    fn context(&self) -> Option<&str> {
        self.context.as_deref().or_else(|| self.context_text.get().map(String::as_str))
    }

    /// Read `--context-file` (once).
    fn read_context_file(&self) -> Result<()> {
        let Some(path) = &self.context_file else { return Ok(()) };
        let text = if path.as_os_str() == "-" {
            anyhow::ensure!(
                !self.questions_from_stdin(),
                "stdin cannot hold both the context (--context-file -) and the questions: give the questions as \
                 arguments or with --question"
            );
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the context from stdin")?;
            text
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the context file `{}`", path.display()))?
        };
        anyhow::ensure!(!text.trim().is_empty(), "the context is empty: give a text to take the answers from");
        let _ = self.context_text.set(text);
        Ok(())
    }
}

/// `{"question": ..., "context": ...}` of one input given without `--context`.
fn parse_pair(input: &str) -> Result<(String, String)> {
    if !input.trim_start().starts_with('{') {
        anyhow::bail!("no context for the question: {NO_CONTEXT}");
    }
    let value: Value = serde_json::from_str(input)
        .map_err(|e| anyhow::anyhow!("the input is not a JSON object {{\"question\", \"context\"}}: {e}"))?;
    let field = |name: &str| -> Result<String> {
        value.get(name).and_then(Value::as_str).map(str::to_owned).with_context(|| {
            format!("the JSON input has no string `{name}`: give {{\"question\": \"...\", \"context\": \"...\"}}")
        })
    };
    Ok((field("question")?, field("context")?))
}

fn answer(a: &Answer) -> Value {
    json!({"score": json_score(a.score), "start": a.start, "end": a.end, "answer": a.answer})
}

impl TaskCommand for QuestionAnswering {
    const TASK: &'static str = "question-answering";
    type Pipeline = QuestionAnsweringPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn inputs(&self) -> Inputs<'_> {
        match &self.question {
            Some(question) => Inputs::new(std::slice::from_ref(question)),
            None => Inputs::new(&self.inputs.inputs),
        }
    }

    fn check(&self) -> Result<()> {
        anyhow::ensure!(self.top_k > 0, "--top-k must be at least 1");
        anyhow::ensure!(self.max_answer_len > 0, "--max-answer-len must be at least 1");
        if let (Some(stride), Some(len)) = (self.doc_stride, self.max_seq_len) {
            anyhow::ensure!(stride <= len, "--doc-stride ({stride}) is larger than --max-seq-len ({len})");
        }
        if let Some(context) = &self.context {
            anyhow::ensure!(!context.trim().is_empty(), "--context is empty: give a text to take the answers from");
        }
        self.read_context_file()?;
        if self.context().is_none() {
            // Arguments that are not JSON objects are questions without a context.
            let given = self.question.iter().chain(&self.inputs.inputs);
            if let Some(question) = given.filter(|q| *q != "-").find(|q| !q.trim_start().starts_with('{')) {
                anyhow::bail!("no context for the question `{}`: {NO_CONTEXT}", short(question, 60));
            }
        }
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<QuestionAnsweringPipeline> {
        QuestionAnsweringPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &QuestionAnsweringPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let (question, context) = match self.context() {
            Some(context) => (input.to_owned(), context.to_owned()),
            None => parse_pair(input)?,
        };
        let answers = pipeline.call_with(&question, &context, &self.options())?;
        out.line(&question)?;
        let rows: Vec<Vec<String>> = answers
            .iter()
            .map(|a| {
                let text = if a.answer.is_empty() { "(no answer)".to_owned() } else { a.answer.clone() };
                vec![score(a.score), format!("{}..{}", a.start, a.end), text]
            })
            .collect();
        for line in table(&rows) {
            out.line(line)?;
        }
        // transformers returns the answer itself when there is one, a list otherwise.
        let mut answers: Vec<Value> = answers.iter().map(answer).collect();
        Ok(match answers.len() {
            1 => answers.remove(0),
            _ => Value::Array(answers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pairs_parse() {
        let (q, c) = parse_pair(r#"{"question": "where?", "context": "here"}"#).unwrap_or_default();
        assert_eq!((q.as_str(), c.as_str()), ("where?", "here"));
        assert!(parse_pair("where?").unwrap_err().to_string().contains("--context"));
        assert!(parse_pair(r#"{"question": "where?"}"#).unwrap_err().to_string().contains("`context`"));
        assert!(parse_pair("{oops").unwrap_err().to_string().contains("not a JSON object"));
    }
}
