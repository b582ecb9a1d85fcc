//! `autocandle zero-shot-image-classification`: each image scored against labels given on
//! the command line.

use anyhow::Result;
use autocandle::pipelines::{ZeroShotImageClassificationPipeline, DEFAULT_HYPOTHESIS_TEMPLATE};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::image_classification::open_image;
use super::text_classification::print_labels;
use super::{comma_list, json_score, CommaList, InputArgs, ModelArgs, TaskCommand};
use crate::output::Output;

/// Score images (INPUT = image files) against candidate labels with CLIP or SigLIP
#[derive(Debug, Clone, Args)]
pub struct ZeroShotImageClassification {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The labels to score, separated by commas
    #[arg(long, required = true, value_parser = comma_list, value_name = "A,B,C")]
    pub candidate_labels: CommaList,
    /// The sentence each label is put in; `{}` stands for the label
    #[arg(long, default_value = DEFAULT_HYPOTHESIS_TEMPLATE, value_name = "TEMPLATE")]
    pub hypothesis_template: String,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl ZeroShotImageClassification {
    fn labels(&self) -> Vec<&str> {
        self.candidate_labels.0.iter().map(String::as_str).collect()
    }
}

impl TaskCommand for ZeroShotImageClassification {
    const TASK: &'static str = "zero-shot-image-classification";
    type Pipeline = ZeroShotImageClassificationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        anyhow::ensure!(
            self.hypothesis_template.contains("{}"),
            "--hypothesis-template `{}` has no `{{}}` where the label goes: write e.g. \"a photo of {{}}.\"",
            self.hypothesis_template
        );
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ZeroShotImageClassificationPipeline> {
        ZeroShotImageClassificationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ZeroShotImageClassificationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let labels = pipeline.call_with(&image, &self.labels(), &self.hypothesis_template)?;
        out.line(input)?;
        print_labels(&labels, out)?;
        // transformers' key order here is score, then label.
        Ok(Value::Array(labels.iter().map(|l| json!({"score": json_score(l.score), "label": l.label})).collect()))
    }
}
