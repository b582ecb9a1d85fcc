//! PLACEHOLDER until its helper writes it: `PaliGemmaProcessor`.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;

use super::ImageTextProcessing;
use crate::image_processor::DynamicImage;
use crate::tokenizer::PreTrainedTokenizer;

/// `PaliGemmaProcessor` (not written yet).
#[derive(Debug)]
pub(crate) struct PaliGemmaProcessor;

impl PaliGemmaProcessor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = (source, opts);
        Err(Error::Unsupported("PaliGemmaProcessor is not written yet".to_owned()))
    }
}

impl ImageTextProcessing for PaliGemmaProcessor {
    fn class(&self) -> &'static str {
        "PaliGemmaProcessor"
    }

    fn process(&self, _: &PreTrainedTokenizer, _: &[&str], _: &[Vec<DynamicImage>], _: &Device) -> Result<ModelInputs> {
        Err(Error::Unsupported("PaliGemmaProcessor is not written yet".to_owned()))
    }

    fn image_placeholder(&self) -> &str {
        "<image>"
    }
}
