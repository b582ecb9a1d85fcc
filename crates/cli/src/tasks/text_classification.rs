//! `autocandle text-classification` (alias `sentiment-analysis`): labels and scores.

use anyhow::Result;
use autocandle::pipelines::{ClassificationFunction, Label, TextClassificationOptions, TextClassificationPipeline};
use autocandle::LoadOptions;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::{json_score, parse_top_k, InputArgs, ModelArgs, TaskCommand, TopK};
use crate::output::{score, table, Output};

/// Classify each input text with a sequence classifier (labels from the config's id2label)
#[derive(Debug, Clone, Args)]
pub struct TextClassification {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many labels, best first: a number or `all`
    #[arg(long, default_value = "1", value_parser = parse_top_k, value_name = "N|all")]
    pub top_k: TopK,
    /// The function applied to the logits [default: from the config's problem_type]
    #[arg(long, value_enum, value_name = "FUNCTION")]
    pub function_to_apply: Option<Function>,
    /// Second text of a pair (`{"text", "text_pair"}`), used with every input
    #[arg(long, value_name = "TEXT")]
    pub text_pair: Option<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// `function_to_apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    Softmax,
    Sigmoid,
    None,
}

impl Function {
    pub fn to_library(self) -> ClassificationFunction {
        match self {
            Function::Softmax => ClassificationFunction::Softmax,
            Function::Sigmoid => ClassificationFunction::Sigmoid,
            Function::None => ClassificationFunction::None,
        }
    }
}

impl TaskCommand for TextClassification {
    const TASK: &'static str = "text-classification";
    type Pipeline = TextClassificationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<TextClassificationPipeline> {
        TextClassificationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &TextClassificationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts = TextClassificationOptions {
            top_k: self.top_k.get(),
            function_to_apply: self.function_to_apply.map(Function::to_library),
        };
        let labels = pipeline.call_with(input, self.text_pair.as_deref(), &opts)?;
        match &self.text_pair {
            Some(pair) => out.line(format!("{input} | {pair}"))?,
            None => out.line(input)?,
        }
        print_labels(&labels, out)?;
        Ok(labels_json(&labels))
    }
}

/// `label  score` lines.
pub fn print_labels(labels: &[Label], out: &mut Output) -> Result<()> {
    let rows: Vec<Vec<String>> = labels.iter().map(|l| vec![l.label.clone(), score(l.score)]).collect();
    for line in table(&rows) {
        out.line(line)?;
    }
    Ok(())
}

/// `[{"label", "score"}]`.
pub fn labels_json(labels: &[Label]) -> Value {
    Value::Array(labels.iter().map(|l| json!({"label": l.label, "score": json_score(l.score)})).collect())
}
