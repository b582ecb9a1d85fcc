//! The object-detection pipeline (`transformers.ObjectDetectionPipeline`): the image
//! processor of the model, its detector (`AutoModelForObjectDetection`: DETR, YOLOS), and
//! [`post_process_object_detection`] at the image's size: a list of `{score, label, box}`
//! whose box corners are whole pixels, as `transformers` truncates them (`box.int()`).

use autocandle_core::{ForObjectDetection, LoadOptions, Result};
use candle_core::Device;

use super::vision::{check_threshold, image_inputs};
use super::{config_labels, label_of};
use crate::image_processor::post_process_object_detection;
use crate::{AutoConfig, AutoImageProcessor, AutoModelForObjectDetection, DynamicImage, ImageProcessor};

/// `transformers`' default score threshold of the object-detection pipeline.
pub const DEFAULT_DETECTION_THRESHOLD: f32 = 0.5;

/// Options of [`ObjectDetectionPipeline::call_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectDetectionOptions {
    /// Keep the objects whose score is above this (default 0.5); in `(0, 1]`.
    pub threshold: f32,
}

impl Default for ObjectDetectionOptions {
    fn default() -> Self {
        Self { threshold: DEFAULT_DETECTION_THRESHOLD }
    }
}

/// A box in pixels of the input image, corners truncated to integers as `transformers`'
/// `_get_bounding_box` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoundingBox {
    /// Left edge.
    pub xmin: i64,
    /// Top edge.
    pub ymin: i64,
    /// Right edge.
    pub xmax: i64,
    /// Bottom edge.
    pub ymax: i64,
}

impl BoundingBox {
    /// The box of corners `[x0, y0, x1, y1]` in pixels, each truncated toward zero as torch's
    /// `Tensor.int()` does.
    pub fn from_corners(corners: [f32; 4]) -> Self {
        // `as` truncates toward zero and saturates, like torch's float-to-int cast on finite
        // values; NaN (a broken model) becomes 0.
        let [xmin, ymin, xmax, ymax] = corners.map(|v| v as i64);
        Self { xmin, ymin, xmax, ymax }
    }
}

/// One detected object: `{"score", "label", "box"}` of `transformers`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedObject {
    /// The probability of the label (softmax over the labels and "no object").
    pub score: f32,
    /// The label, from the config's `id2label`.
    pub label: String,
    /// The label's id.
    pub label_id: usize,
    /// Where it is, in pixels of the input image.
    pub bounding_box: BoundingBox,
}

/// Detect objects in images with an object detector.
#[derive(Debug)]
pub struct ObjectDetectionPipeline {
    processor: ImageProcessor,
    model: Box<dyn ForObjectDetection>,
    labels: Vec<String>,
    device: Device,
}

impl ObjectDetectionPipeline {
    /// Load the model (`AutoModelForObjectDetection`) and image processor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ObjectDetectionPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("object-detection", model, || {
            let processor = AutoImageProcessor::from_pretrained_with(model, opts)?;
            let labels = config_labels(&AutoConfig::from_pretrained_with(model, opts)?.value);
            let model = AutoModelForObjectDetection::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, labels, device: opts.device.clone() })
        })
    }

    /// The labels by id (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The objects of `image` scoring above 0.5, in the model's query order.
    pub fn call(&self, image: &DynamicImage) -> Result<Vec<DetectedObject>> {
        self.call_with(image, &ObjectDetectionOptions::default())
    }

    /// The objects of `image` scoring above `opts.threshold`, in the model's query order (as
    /// `transformers` returns them: not sorted by score).
    pub fn call_with(&self, image: &DynamicImage, opts: &ObjectDetectionOptions) -> Result<Vec<DetectedObject>> {
        check_threshold("object-detection", opts.threshold)?;
        let (inputs, size) = image_inputs("object-detection", &self.processor, image, &self.device)?;
        let output = self.model.forward(&inputs)?;
        let detections = post_process_object_detection(&output, opts.threshold, Some(&[size]))?;
        let Some(detections) = detections.into_iter().next() else { return Ok(Vec::new()) };
        Ok(detections
            .scores
            .iter()
            .zip(&detections.labels)
            .zip(&detections.boxes)
            .map(|((&score, &id), &corners)| DetectedObject {
                score,
                label: label_of(&self.labels, id),
                label_id: id,
                bounding_box: BoundingBox::from_corners(corners),
            })
            .collect())
    }

    /// [`ObjectDetectionPipeline::call_with`] on each image (one at a time, as the
    /// `transformers` pipeline runs a list).
    pub fn call_batch(
        &self,
        images: &[DynamicImage],
        opts: &ObjectDetectionOptions,
    ) -> Result<Vec<Vec<DetectedObject>>> {
        images.iter().map(|image| self.call_with(image, opts)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_corners_truncate_toward_zero_like_torch_int() {
        let b = BoundingBox::from_corners([1.9, 0.2, 36.99, 22.5]);
        assert_eq!(b, BoundingBox { xmin: 1, ymin: 0, xmax: 36, ymax: 22 });
        // Slightly outside the image on the left: -0.7 truncates to 0, as torch's `int()`.
        assert_eq!(BoundingBox::from_corners([-0.7, -1.2, 3.0, 4.0]).xmin, 0);
        assert_eq!(BoundingBox::from_corners([-0.7, -1.2, 3.0, 4.0]).ymin, -1);
    }
}
