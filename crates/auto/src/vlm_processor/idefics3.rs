//! PLACEHOLDER until its helper writes it: `Idefics3Processor`.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;

use super::ImageTextProcessing;
use crate::image_processor::DynamicImage;
use crate::tokenizer::PreTrainedTokenizer;

/// `Idefics3Processor` (not written yet).
#[derive(Debug)]
pub(crate) struct Idefics3Processor;

impl Idefics3Processor {
    pub(crate) fn load(class: &str, source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = (class, source, opts);
        Err(Error::Unsupported("Idefics3Processor is not written yet".to_owned()))
    }
}

impl ImageTextProcessing for Idefics3Processor {
    fn class(&self) -> &'static str {
        "Idefics3Processor"
    }

    fn process(&self, _: &PreTrainedTokenizer, _: &[&str], _: &[Vec<DynamicImage>], _: &Device) -> Result<ModelInputs> {
        Err(Error::Unsupported("Idefics3Processor is not written yet".to_owned()))
    }

    fn image_placeholder(&self) -> &str {
        "<image>"
    }
}
