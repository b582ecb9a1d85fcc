//! `autocandle image-classification`: the best labels of each image file.

use anyhow::Result;
use autocandle::pipelines::{ImageClassificationOptions, ImageClassificationPipeline};
use autocandle::{DynamicImage, LoadOptions};
use clap::Args;
use serde_json::Value;

use super::text_classification::{labels_json, print_labels, Function};
use super::{parse_top_k, InputArgs, ModelArgs, TaskCommand, TopK};
use crate::output::Output;

/// Classify images (INPUT = image files: PNG or JPEG) with an image classifier
#[derive(Debug, Clone, Args)]
pub struct ImageClassification {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many labels, best first: a number or `all`
    #[arg(long, default_value = "5", value_parser = parse_top_k, value_name = "N|all")]
    pub top_k: TopK,
    /// The function applied to the logits [default: from the config's problem_type]
    #[arg(long, value_enum, value_name = "FUNCTION")]
    pub function_to_apply: Option<Function>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// Open an image file named on the command line (the error names the file).
pub fn open_image(path: &str) -> Result<DynamicImage> {
    Ok(autocandle::open_image(path)?)
}

impl TaskCommand for ImageClassification {
    const TASK: &'static str = "image-classification";
    type Pipeline = ImageClassificationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ImageClassificationPipeline> {
        ImageClassificationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ImageClassificationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let opts = ImageClassificationOptions {
            top_k: self.top_k.get(),
            function_to_apply: self.function_to_apply.map(Function::to_library),
        };
        let labels = pipeline.call_with(&image, &opts)?;
        out.line(input)?;
        print_labels(&labels, out)?;
        Ok(labels_json(&labels))
    }
}
