//! The image-classification pipeline (`transformers.ImageClassificationPipeline`): the
//! image processor of the model, its classifier, and the top-k labels of `id2label`.

use autocandle_core::{Error, ForImageClassification, LoadOptions, Result};
use candle_core::{DType, Device, IndexOp};
use serde_json::Value;

use super::{config_labels, label_of, sorted_desc, ClassificationFunction, Label};
use crate::{AutoConfig, AutoImageProcessor, AutoModelForImageClassification, DynamicImage, ImageProcessor};

/// Options of [`ImageClassificationPipeline::call_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImageClassificationOptions {
    /// How many labels, best first (default 5, capped at the number of labels); `None` for all.
    pub top_k: Option<usize>,
    /// Override the function the config implies ([`ClassificationFunction::default_for`]).
    pub function_to_apply: Option<ClassificationFunction>,
}

impl Default for ImageClassificationOptions {
    fn default() -> Self {
        Self { top_k: Some(5), function_to_apply: None }
    }
}

/// Classify images with an image classifier.
#[derive(Debug)]
pub struct ImageClassificationPipeline {
    processor: ImageProcessor,
    model: Box<dyn ForImageClassification>,
    labels: Vec<String>,
    default_function: ClassificationFunction,
    device: Device,
}

impl ImageClassificationPipeline {
    /// Load the model (`AutoModelForImageClassification`) and image processor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ImageClassificationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("image-classification", model, || {
            let processor = AutoImageProcessor::from_pretrained_with(model, opts)?;
            let config = AutoConfig::from_pretrained_with(model, opts)?.value;
            let labels = config_labels(&config);
            let problem_type = config.raw().get("problem_type").and_then(Value::as_str);
            let default_function = ClassificationFunction::default_for(problem_type, labels.len());
            let model = AutoModelForImageClassification::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, labels, default_function, device: opts.device.clone() })
        })
    }

    /// The labels by id (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The 5 best labels of `image`.
    pub fn call(&self, image: &DynamicImage) -> Result<Vec<Label>> {
        self.call_with(image, &ImageClassificationOptions::default())
    }

    /// The `top_k` best labels of `image`, best first.
    pub fn call_with(&self, image: &DynamicImage, opts: &ImageClassificationOptions) -> Result<Vec<Label>> {
        let inputs = self.processor.to_inputs(&[to_rgb(image)], &self.device)?;
        let logits = self.model.forward(&inputs)?.logits.to_dtype(DType::F32)?.i(0)?.to_vec1::<f32>()?;
        if logits.is_empty() {
            return Err(Error::input("image-classification: the model returned no logits"));
        }
        let scores = opts.function_to_apply.unwrap_or(self.default_function).apply(&logits);
        let top_k = opts.top_k.unwrap_or(scores.len()).min(self.labels.len().max(1));
        Ok(sorted_desc(&scores)
            .into_iter()
            .take(top_k)
            .map(|i| Label { label: label_of(&self.labels, i), score: scores[i] })
            .collect())
    }
}

/// The image as the pipelines' `load_image` hands it on: PIL's `convert("RGB")`, which drops
/// an alpha channel (the image processor alone would composite it onto white).
pub(crate) fn to_rgb(image: &DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgb8(_) => image.clone(),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}
