//! PLACEHOLDER until its helper writes it: `Gemma3Processor`.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;

use super::ImageTextProcessing;
use crate::image_processor::DynamicImage;
use crate::tokenizer::PreTrainedTokenizer;

/// `Gemma3Processor` (not written yet).
#[derive(Debug)]
pub(crate) struct Gemma3Processor;

impl Gemma3Processor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = (source, opts);
        Err(Error::Unsupported("Gemma3Processor is not written yet".to_owned()))
    }
}

impl ImageTextProcessing for Gemma3Processor {
    fn class(&self) -> &'static str {
        "Gemma3Processor"
    }

    fn process(&self, _: &PreTrainedTokenizer, _: &[&str], _: &[Vec<DynamicImage>], _: &Device) -> Result<ModelInputs> {
        Err(Error::Unsupported("Gemma3Processor is not written yet".to_owned()))
    }

    fn image_placeholder(&self) -> &str {
        "<image>"
    }
}
