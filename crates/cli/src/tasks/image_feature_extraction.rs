//! `autocandle image-feature-extraction`: the features of each image file: one vector per
//! patch (the base model's last hidden state), or the pooled vector with `--pool`.

use anyhow::Result;
use autocandle::pipelines::{ImageFeatureExtractionOptions, ImageFeatureExtractionPipeline};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::Value;

use super::image_classification::open_image;
use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::{vector, Output};

/// Features of images (INPUT = image files: PNG or JPEG): the base model's last hidden state, or its pooler output with --pool
#[derive(Debug, Clone, Args)]
pub struct ImageFeatureExtraction {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The pooler output, one vector per image, instead of one vector per patch (transformers' `pool`)
    #[arg(long)]
    pub pool: bool,
    #[command(flatten)]
    pub inputs: InputArgs,
}

fn floats(values: &[f32]) -> Value {
    Value::Array(values.iter().map(|x| Value::from(f64::from(*x))).collect())
}

impl TaskCommand for ImageFeatureExtraction {
    const TASK: &'static str = "image-feature-extraction";
    type Pipeline = ImageFeatureExtractionPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ImageFeatureExtractionPipeline> {
        ImageFeatureExtractionPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ImageFeatureExtractionPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let features = pipeline.call_with(&image, &ImageFeatureExtractionOptions { pool: self.pool })?;
        out.line(input)?;
        out.line(format!("  shape {:?}", features.dims()))?;
        // Keep the batch dimension, as transformers' `tolist()` does.
        if self.pool {
            let rows = features.to_vec2::<f32>()?;
            for row in &rows {
                out.line(format!("  {}", vector(row, 6)))?;
            }
            return Ok(Value::Array(rows.iter().map(|r| floats(r)).collect()));
        }
        let batch = features.to_vec3::<f32>()?;
        let rows = batch.first().map(Vec::as_slice).unwrap_or_default();
        let n = rows.len();
        for (i, row) in rows.iter().enumerate() {
            if n > 8 && (3..n - 3).contains(&i) {
                if i == 3 {
                    out.line("  ...")?;
                }
                continue;
            }
            out.line(format!("  {}", vector(row, 6)))?;
        }
        Ok(Value::Array(batch.iter().map(|m| Value::Array(m.iter().map(|r| floats(r)).collect())).collect()))
    }
}
