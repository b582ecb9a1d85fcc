//! The zero-shot-image-classification pipeline
//! (`transformers.ZeroShotImageClassificationPipeline`): each candidate label is put into a
//! hypothesis template, and a contrastive image-text model (CLIP, SigLIP) scores the image
//! against every hypothesis.

use autocandle_core::{Error, ForZeroShotImageClassification, LoadOptions, Result};
use candle_core::{DType, Device, IndexOp};

use super::image_classification::to_rgb;
use super::{softmax, sorted_desc, Label};
use crate::{
    AutoConfig, AutoModelForZeroShotImageClassification, AutoProcessor, DynamicImage, EncodeOptions, Padding, Processor,
};

/// `transformers`' default hypothesis template; `{}` is replaced by each label.
pub const DEFAULT_HYPOTHESIS_TEMPLATE: &str = "This is a photo of {}.";

/// Classify images against labels chosen at call time.
#[derive(Debug)]
pub struct ZeroShotImageClassificationPipeline {
    processor: Processor,
    model: Box<dyn ForZeroShotImageClassification>,
    /// SigLIP models score each label alone (sigmoid) on texts padded to 64 tokens.
    siglip: bool,
    device: Device,
}

impl ZeroShotImageClassificationPipeline {
    /// Load the model (`AutoModelForZeroShotImageClassification`) and its processor
    /// (tokenizer + image processor, `AutoProcessor`) at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ZeroShotImageClassificationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("zero-shot-image-classification", model, || {
            let processor = AutoProcessor::from_pretrained_with(model, opts)?;
            if processor.tokenizer().is_none() || processor.image_processor().is_none() {
                return Err(Error::input(format!(
                    "zero-shot-image-classification needs a tokenizer and an image processor; `{model}` lacks one"
                )));
            }
            let siglip = AutoConfig::from_pretrained_with(model, opts)?.value.model_type().contains("siglip");
            let model = AutoModelForZeroShotImageClassification::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, siglip, device: opts.device.clone() })
        })
    }

    /// The candidate labels scored against `image` with the default template, best first.
    pub fn call(&self, image: &DynamicImage, candidate_labels: &[&str]) -> Result<Vec<Label>> {
        self.call_with(image, candidate_labels, DEFAULT_HYPOTHESIS_TEMPLATE)
    }

    /// [`ZeroShotImageClassificationPipeline::call`] with another hypothesis template (`{}`
    /// stands for the label). Scores are a softmax over the labels, or for SigLIP a sigmoid
    /// per label.
    pub fn call_with(&self, image: &DynamicImage, candidate_labels: &[&str], template: &str) -> Result<Vec<Label>> {
        if candidate_labels.is_empty() {
            return Err(Error::input("zero-shot-image-classification needs at least one candidate label"));
        }
        let texts: Vec<String> = candidate_labels.iter().map(|l| template.replacen("{}", l, 1)).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encode = if self.siglip {
            EncodeOptions::new().padding(Padding::MaxLength).max_length(64).truncation(true)
        } else {
            EncodeOptions::new().padding(Padding::Longest)
        };
        let inputs = self.processor.process(&texts, &[to_rgb(image)], &encode, &self.device)?;
        let logits = self.model.forward(&inputs)?.logits_per_image.to_dtype(DType::F32)?.i(0)?.to_vec1::<f32>()?;
        let scores =
            if self.siglip { logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect() } else { softmax(&logits) };
        Ok(sorted_desc(&scores)
            .into_iter()
            .map(|i| Label { label: candidate_labels[i].to_owned(), score: scores[i] })
            .collect())
    }
}
