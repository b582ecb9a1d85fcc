//! The image-feature-extraction pipeline (`transformers.ImageFeatureExtractionPipeline`):
//! the image processor and the base model (`AutoModel`); the first output (the last hidden
//! state, one vector per patch and special token) or, with `pool`, the pooler output.

use autocandle_core::{Error, LoadOptions, Model, Result};
use candle_core::{DType, Device, Tensor};

use super::image_classification::to_rgb;
use crate::{AutoImageProcessor, AutoModel, DynamicImage, ImageProcessor};

/// Options of [`ImageFeatureExtractionPipeline::call_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageFeatureExtractionOptions {
    /// Return the pooler output `[1, hidden]` instead of the last hidden state
    /// `[1, seq, hidden]` (`transformers`' `pool`); an error for a model without a pooler.
    pub pool: bool,
}

/// Image features from a base model.
#[derive(Debug)]
pub struct ImageFeatureExtractionPipeline {
    processor: ImageProcessor,
    model: Box<dyn Model>,
    device: Device,
}

impl ImageFeatureExtractionPipeline {
    /// Load the base model (`AutoModel`) and image processor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ImageFeatureExtractionPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("image-feature-extraction", model, || {
            let processor = AutoImageProcessor::from_pretrained_with(model, opts)?;
            let model = AutoModel::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, device: opts.device.clone() })
        })
    }

    /// The last hidden state of `image`: `[1, seq, hidden]` f32 on the CPU.
    pub fn call(&self, image: &DynamicImage) -> Result<Tensor> {
        self.call_with(image, &ImageFeatureExtractionOptions::default())
    }

    /// The features of `image` as `opts` asks: `[1, seq, hidden]`, or `[1, hidden]` pooled;
    /// f32 on the CPU (`transformers` keeps the batch dimension).
    pub fn call_with(&self, image: &DynamicImage, opts: &ImageFeatureExtractionOptions) -> Result<Tensor> {
        let inputs = self.processor.to_inputs(&[to_rgb(image)], &self.device)?;
        let output = self.model.forward(&inputs)?;
        let features = if opts.pool {
            output.pooler_output.ok_or_else(|| {
                Error::input(
                    "image-feature-extraction: the model returned no pooled output: `pool` needs a model with a \
                     pooler layer (use the per-patch features instead)",
                )
            })?
        } else {
            output.last_hidden_state
        };
        Ok(features.to_device(&Device::Cpu)?.to_dtype(DType::F32)?)
    }

    /// [`ImageFeatureExtractionPipeline::call_with`] on each image (one at a time).
    pub fn call_batch(&self, images: &[DynamicImage], opts: &ImageFeatureExtractionOptions) -> Result<Vec<Tensor>> {
        images.iter().map(|image| self.call_with(image, opts)).collect()
    }
}
