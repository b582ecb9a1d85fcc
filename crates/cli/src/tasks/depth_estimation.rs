//! `autocandle depth-estimation`: the depth of each image file, with `--output` the depth
//! map as a grayscale picture.

use anyhow::Result;
use autocandle::image::DynamicImage;
use autocandle::pipelines::{DepthEstimation, DepthEstimationPipeline};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::image_classification::open_image;
use super::vision::{size, OutputArgs};
use super::{InputArgs, ModelArgs, TaskCommand};
use crate::draw;
use crate::output::Output;

/// Estimate the depth of images (INPUT = image files: PNG or JPEG) with a depth model (DPT, Depth Anything)
#[derive(Debug, Clone, Args)]
pub struct DepthEstimationCommand {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// The depth as `transformers` returns it: `{"predicted_depth": [[...]] (height rows of
/// width), "depth"}`, the 8-bit picture (a PIL image there) as a PNG `data:` URI.
pub fn depth_json(depth: &DepthEstimation) -> Result<Value> {
    let rows = depth.predicted_depth.to_vec2::<f32>()?;
    let rows: Vec<Value> =
        rows.iter().map(|r| Value::Array(r.iter().map(|v| Value::from(f64::from(*v))).collect())).collect();
    Ok(json!({
        "predicted_depth": rows,
        "depth": draw::png_data_uri(&DynamicImage::ImageLuma8(depth.depth.clone()))?,
    }))
}

/// The human line: the map's size and range.
pub fn depth_line(values: &[f32], height: usize, width: usize) -> String {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    format!("  predicted_depth {width}x{height}: min {min:.4}, max {max:.4}")
}

impl TaskCommand for DepthEstimationCommand {
    const TASK: &'static str = "depth-estimation";
    type Pipeline = DepthEstimationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.output.check()
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<DepthEstimationPipeline> {
        DepthEstimationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &DepthEstimationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let depth = pipeline.call(&image)?;
        let (height, width) = depth.predicted_depth.dims2()?;
        let values = depth.predicted_depth.flatten_all()?.to_vec1::<f32>()?;
        out.line(format!("{input} ({})", size(&image)))?;
        out.line(depth_line(&values, height, width))?;
        self.output.write(&self.inputs, || draw::depth_picture(&depth.depth))?;
        depth_json(&depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle::image::GrayImage;
    use autocandle::{Device, Tensor};

    #[test]
    fn depth_prints_in_transformers_shape() {
        let predicted_depth = Tensor::from_vec(vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &Device::Cpu).unwrap();
        let depth = DepthEstimation { predicted_depth, depth: GrayImage::new(3, 2) };
        let value = depth_json(&depth).unwrap();
        assert_eq!(value["predicted_depth"], json!([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        assert!(value["depth"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(depth_line(&[1.0, 6.0], 2, 3), "  predicted_depth 3x2: min 1.0000, max 6.0000");
    }
}
