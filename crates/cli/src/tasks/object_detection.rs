//! `autocandle object-detection`: the objects in each image file, with `--output` a picture
//! with their boxes, labels and scores.

use anyhow::Result;
use autocandle::pipelines::{DetectedObject, ObjectDetectionOptions, ObjectDetectionPipeline};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::image_classification::open_image;
use super::vision::{parse_threshold, size, OutputArgs};
use super::{json_score, InputArgs, ModelArgs, TaskCommand};
use crate::draw;
use crate::output::{score, table, Output};

/// Detect objects in images (INPUT = image files: PNG or JPEG) with an object detector (DETR, YOLOS)
#[derive(Debug, Clone, Args)]
pub struct ObjectDetection {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Keep the objects whose score is above this (a probability: above 0, at most 1)
    #[arg(long, default_value = "0.5", value_parser = parse_threshold, value_name = "T")]
    pub threshold: f32,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// One object as `transformers` returns it: `{"score", "label", "box": {xmin, ymin, xmax, ymax}}`.
pub fn object_json(object: &DetectedObject) -> Value {
    let b = object.bounding_box;
    json!({
        "score": json_score(object.score),
        "label": object.label,
        "box": {"xmin": b.xmin, "ymin": b.ymin, "xmax": b.xmax, "ymax": b.ymax},
    })
}

/// The human lines of the objects: score, label and box corners, one object a line.
pub fn object_lines(objects: &[DetectedObject], threshold: f32) -> Vec<String> {
    if objects.is_empty() {
        return vec![format!("  no object scores above {threshold}")];
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let b = o.bounding_box;
            vec![score(o.score), o.label.clone(), format!("({}, {}) - ({}, {})", b.xmin, b.ymin, b.xmax, b.ymax)]
        })
        .collect();
    table(&rows)
}

impl TaskCommand for ObjectDetection {
    const TASK: &'static str = "object-detection";
    type Pipeline = ObjectDetectionPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.output.check()
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ObjectDetectionPipeline> {
        ObjectDetectionPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ObjectDetectionPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let image = open_image(input)?;
        let objects = pipeline.call_with(&image, &ObjectDetectionOptions { threshold: self.threshold })?;
        out.line(format!("{input} ({})", size(&image)))?;
        for line in object_lines(&objects, self.threshold) {
            out.line(line)?;
        }
        self.output.write(&self.inputs, || draw::draw_detections(&image, &objects).into())?;
        Ok(Value::Array(objects.iter().map(object_json).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle::pipelines::BoundingBox;

    #[test]
    fn objects_print_in_transformers_shape() {
        let object = DetectedObject {
            score: 0.75,
            label: "cat".to_owned(),
            label_id: 2,
            bounding_box: BoundingBox { xmin: 1, ymin: 2, xmax: 30, ymax: 20 },
        };
        assert_eq!(
            object_json(&object),
            json!({"score": 0.75, "label": "cat", "box": {"xmin": 1, "ymin": 2, "xmax": 30, "ymax": 20}})
        );
        assert_eq!(object_lines(&[object], 0.5), ["  0.7500  cat  (1, 2) - (30, 20)"]);
        assert_eq!(object_lines(&[], 0.9), ["  no object scores above 0.9"]);
    }
}
