//! PLACEHOLDER until its helper writes it: `Qwen2VlProcessor`.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;

use super::ImageTextProcessing;
use crate::image_processor::DynamicImage;
use crate::tokenizer::PreTrainedTokenizer;

/// `Qwen2VlProcessor` (not written yet).
#[derive(Debug)]
pub(crate) struct Qwen2VlProcessor;

impl Qwen2VlProcessor {
    pub(crate) fn load(class: &str, source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = (class, source, opts);
        Err(Error::Unsupported("Qwen2VlProcessor is not written yet".to_owned()))
    }
}

impl ImageTextProcessing for Qwen2VlProcessor {
    fn class(&self) -> &'static str {
        "Qwen2VlProcessor"
    }

    fn process(&self, _: &PreTrainedTokenizer, _: &[&str], _: &[Vec<DynamicImage>], _: &Device) -> Result<ModelInputs> {
        Err(Error::Unsupported("Qwen2VlProcessor is not written yet".to_owned()))
    }

    fn image_placeholder(&self) -> &str {
        "<image>"
    }
}
