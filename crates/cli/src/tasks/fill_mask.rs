//! `autocandle fill-mask`: the best tokens for each mask of a text.

use anyhow::Result;
use autocandle::pipelines::{FillMaskOptions, FillMaskPipeline, FillMaskPrediction};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::{comma_list, json_score, CommaList, InputArgs, ModelArgs, TaskCommand};
use crate::output::{score, table, Output};

/// Fill the mask token (`[MASK]`, `<mask>`) of each input with a masked language model
#[derive(Debug, Clone, Args)]
pub struct FillMask {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many tokens per mask
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top_k: usize,
    /// Score only these words, separated by commas
    #[arg(long, value_parser = comma_list, value_name = "A,B,C")]
    pub targets: Option<CommaList>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl TaskCommand for FillMask {
    const TASK: &'static str = "fill-mask";
    type Pipeline = FillMaskPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        anyhow::ensure!(self.top_k > 0, "--top-k must be at least 1");
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<FillMaskPipeline> {
        FillMaskPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &FillMaskPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts = FillMaskOptions { top_k: self.top_k, targets: self.targets.clone().map(|t| t.0) };
        let masks = pipeline.call_with(input, &opts)?;
        out.line(input)?;
        for (i, predictions) in masks.iter().enumerate() {
            if masks.len() > 1 {
                out.line(format!("  mask {}", i + 1))?;
            }
            let rows: Vec<Vec<String>> =
                predictions.iter().map(|p| vec![score(p.score), p.token_str.clone(), p.sequence.clone()]).collect();
            for line in table(&rows) {
                out.line(line)?;
            }
        }
        // transformers returns the list of one mask itself, a list per mask otherwise.
        let rows: Vec<Value> = masks.iter().map(|p| Value::Array(p.iter().map(prediction).collect())).collect();
        Ok(match <[Value; 1]>::try_from(rows) {
            Ok([one]) => one,
            Err(rows) => Value::Array(rows),
        })
    }
}

fn prediction(p: &FillMaskPrediction) -> Value {
    json!({"score": json_score(p.score), "token": p.token, "token_str": p.token_str, "sequence": p.sequence})
}
