//! `autocandle image-segmentation`: the labels of each image file's pixels (semantic
//! segmentation), with `--output` a picture with a coloured overlay and a legend.

use anyhow::Result;
use autocandle::image::DynamicImage;
use autocandle::pipelines::{ImageSegmentationPipeline, Segment};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::image_classification::open_image;
use super::vision::{size, OutputArgs};
use super::{InputArgs, ModelArgs, TaskCommand};
use crate::draw;
use crate::output::{table, Output};

/// Label each pixel of images (INPUT = image files: PNG or JPEG) with a semantic segmentation model (SegFormer, BEiT, DPT)
#[derive(Debug, Clone, Args)]
pub struct ImageSegmentation {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// One segment as `transformers` returns it: `{"score": null, "label", "mask"}`, the mask (a
/// PIL image there) as a PNG `data:` URI of 0 and 255.
pub fn segment_json(segment: &Segment) -> Result<Value> {
    Ok(json!({
        "score": segment.score.map(super::json_score),
        "label": segment.label,
        "mask": draw::png_data_uri(&DynamicImage::ImageLuma8(segment.mask.clone()))?,
    }))
}

/// The human lines: each label and the share of the pixels it covers.
pub fn segment_lines(segments: &[Segment]) -> Vec<String> {
    let rows: Vec<Vec<String>> = segments
        .iter()
        .map(|s| {
            let total = s.mask.as_raw().len().max(1);
            let on = s.mask.as_raw().iter().filter(|&&v| v > 127).count();
            vec![format!("{:>5.1}%", 100.0 * on as f64 / total as f64), s.label.clone()]
        })
        .collect();
    table(&rows)
}

impl TaskCommand for ImageSegmentation {
    const TASK: &'static str = "image-segmentation";
    type Pipeline = ImageSegmentationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.output.check()
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ImageSegmentationPipeline> {
        ImageSegmentationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ImageSegmentationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let segments = pipeline.call(&image)?;
        out.line(format!("{input} ({})", size(&image)))?;
        for line in segment_lines(&segments) {
            out.line(line)?;
        }
        self.output.write(&self.inputs, || draw::draw_segments(&image, &segments).into())?;
        Ok(Value::Array(segments.iter().map(segment_json).collect::<Result<_>>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle::image::GrayImage;

    #[test]
    fn segments_print_in_transformers_shape() {
        let mask = GrayImage::from_raw(2, 2, vec![255, 0, 0, 0]).unwrap();
        let segment = Segment { score: None, label: "sky".to_owned(), label_id: 0, mask };
        let value = segment_json(&segment).unwrap();
        assert_eq!(value["score"], Value::Null);
        assert_eq!(value["label"], "sky");
        assert!(value["mask"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(segment_lines(&[segment]), ["   25.0%  sky"]);
    }
}
