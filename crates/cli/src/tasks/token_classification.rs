//! `autocandle token-classification` (alias `ner`): labelled tokens or entity groups with
//! character offsets.

use anyhow::Result;
use autocandle::pipelines::{AggregationStrategy, TokenClassificationOptions, TokenClassificationPipeline};
use autocandle::LoadOptions;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::{json_score, InputArgs, ModelArgs, TaskCommand};
use crate::output::{score, table, Output};

/// Label the tokens of each input with a token classifier (named entities, ...)
#[derive(Debug, Clone, Args)]
pub struct TokenClassification {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How tokens are grouped into entities
    #[arg(long, value_enum, default_value = "none", value_name = "STRATEGY")]
    pub aggregation_strategy: Strategy,
    /// Labels left out of the result, separated by commas (`--ignore-labels ''` keeps all)
    #[arg(long, default_value = "O", value_name = "A,B")]
    pub ignore_labels: String,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// `aggregation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    None,
    Simple,
    First,
    Average,
    Max,
}

impl TaskCommand for TokenClassification {
    const TASK: &'static str = "token-classification";
    type Pipeline = TokenClassificationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<TokenClassificationPipeline> {
        TokenClassificationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &TokenClassificationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let strategy = match self.aggregation_strategy {
            Strategy::None => AggregationStrategy::None,
            Strategy::Simple => AggregationStrategy::Simple,
            Strategy::First => AggregationStrategy::First,
            Strategy::Average => AggregationStrategy::Average,
            Strategy::Max => AggregationStrategy::Max,
        };
        let ignore_labels =
            self.ignore_labels.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        let opts = TokenClassificationOptions { aggregation_strategy: strategy, ignore_labels };
        let entities = pipeline.call_with(input, &opts)?;
        out.line(input)?;
        let rows: Vec<Vec<String>> = entities
            .iter()
            .map(|e| {
                let mut row = vec![e.entity.clone(), score(e.score), format!("{}..{}", e.start, e.end)];
                if let Some(index) = e.index {
                    row.push(format!("#{index}"));
                }
                row.push(e.word.clone());
                row
            })
            .collect();
        for line in table(&rows) {
            out.line(line)?;
        }
        let grouped = strategy != AggregationStrategy::None;
        Ok(Value::Array(
            entities
                .iter()
                .map(|e| match (grouped, e.index) {
                    (false, Some(index)) => json!({
                        "entity": e.entity, "score": json_score(e.score), "index": index,
                        "word": e.word, "start": e.start, "end": e.end,
                    }),
                    _ => json!({
                        "entity_group": e.entity, "score": json_score(e.score),
                        "word": e.word, "start": e.start, "end": e.end,
                    }),
                })
                .collect(),
        ))
    }
}
