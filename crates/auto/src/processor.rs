//! `AutoProcessor`: the tokenizer and the image processor of a multimodal model together
//! (`CLIPProcessor`, `SiglipProcessor`), after `transformers`' `ProcessorMixin`.

use serde_json::Value;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;

use crate::image_processor::{AutoImageProcessor, DynamicImage, ImageProcessor};
use crate::tokenizer::{read_json, AutoTokenizer, EncodeOptions, PreTrainedTokenizer};

/// The processor classes autocandle knows, with the model types that use them.
const PROCESSORS: &[(&str, &[&str])] = &[
    ("CLIPProcessor", &["clip", "clip_text_model", "clip_vision_model"]),
    ("SiglipProcessor", &["siglip", "siglip_text_model", "siglip_vision_model"]),
];

/// Loads the processor of a model (`transformers.AutoProcessor`).
#[derive(Debug, Clone, Copy)]
pub struct AutoProcessor;

impl AutoProcessor {
    /// Load the processor of a Hub repo id or a local folder.
    pub fn from_pretrained(id_or_path: &str) -> Result<Processor> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`AutoProcessor::from_pretrained`] with options (revision, cache, subfolder, ...).
    ///
    /// The class comes from `processor_class` in `processor_config.json`,
    /// `preprocessor_config.json` or `tokenizer_config.json`, else from the `model_type` of
    /// `config.json`. A known processor class needs both its tokenizer and its image
    /// processor; otherwise, as `transformers` falls back to them, whichever of the two the
    /// repo has is loaded alone.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Processor> {
        let _span = tracing::info_span!("load_processor", model = id_or_path).entered();
        let source = ModelSource::resolve(id_or_path, opts)?;
        let class = processor_class(&source)?;
        let tokenizer = optional(AutoTokenizer::from_pretrained_with(id_or_path, opts))?;
        let image_processor = optional(AutoImageProcessor::from_pretrained_with(id_or_path, opts))?;
        match (&class, &tokenizer, &image_processor) {
            (Some(class), None, _) | (Some(class), _, None) => Err(Error::FileNotFound {
                file: if tokenizer.is_none() { "tokenizer.json" } else { "preprocessor_config.json" }.to_owned(),
                location: source.describe(),
                hint: format!(": `{class}` combines a tokenizer and an image processor"),
            }),
            (_, None, None) => Err(Error::FileNotFound {
                file: "tokenizer.json or preprocessor_config.json".to_owned(),
                location: source.describe(),
                hint: ": a processor needs a tokenizer, an image processor, or both".to_owned(),
            }),
            _ => {
                tracing::info!(
                    class = class.as_deref(),
                    tokenizer = tokenizer.is_some(),
                    image_processor = image_processor.is_some(),
                    "processor loaded"
                );
                Ok(Processor { class, tokenizer, image_processor })
            }
        }
    }
}

/// `Ok(None)` for a missing file, the value otherwise; other errors pass through.
fn optional<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::FileNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The processor class a repo names, or that its model type implies; `None` when neither says.
fn processor_class(source: &ModelSource) -> Result<Option<String>> {
    for file in ["processor_config.json", "preprocessor_config.json", "tokenizer_config.json"] {
        if let Some(path) = source.optional_file(file)? {
            if let Some(class) = read_json(&path)?.get("processor_class").and_then(Value::as_str) {
                tracing::debug!(class, file, "processor class named");
                return known(class).map(Some);
            }
        }
    }
    let Some(path) = source.optional_file("config.json")? else {
        return Ok(None);
    };
    let config = read_json(&path)?;
    let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or_default();
    Ok(PROCESSORS.iter().find(|(_, types)| types.contains(&model_type)).map(|(class, _)| (*class).to_owned()))
}

/// `class` when autocandle knows it, else an error listing the known ones.
fn known(class: &str) -> Result<String> {
    if PROCESSORS.iter().any(|(c, _)| *c == class) {
        return Ok(class.to_owned());
    }
    let names: Vec<&str> = PROCESSORS.iter().map(|(c, _)| *c).collect();
    Err(Error::Unsupported(format!("processor class `{class}`: autocandle knows {}", names.join(", "))))
}

/// A model's tokenizer and image processor (`CLIPProcessor`, `SiglipProcessor`).
#[derive(Debug)]
pub struct Processor {
    class: Option<String>,
    tokenizer: Option<PreTrainedTokenizer>,
    image_processor: Option<ImageProcessor>,
}

impl Processor {
    /// Combine a tokenizer and an image processor.
    pub fn new(tokenizer: Option<PreTrainedTokenizer>, image_processor: Option<ImageProcessor>) -> Self {
        Self { class: None, tokenizer, image_processor }
    }

    /// The `transformers` processor class, when the repo names one or its model type implies one.
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// The tokenizer, if the processor has one.
    pub fn tokenizer(&self) -> Option<&PreTrainedTokenizer> {
        self.tokenizer.as_ref()
    }

    /// The image processor, if the processor has one.
    pub fn image_processor(&self) -> Option<&ImageProcessor> {
        self.image_processor.as_ref()
    }

    /// `processor(text=texts, images=images, ...)`: `input_ids` and `attention_mask` of the
    /// texts (encoded with `options`; rows must come out equally long, so pad unless there is
    /// one text) and `pixel_values` of the images, on `device`. Either list may be empty, not
    /// both.
    pub fn process(
        &self,
        texts: &[&str],
        images: &[DynamicImage],
        options: &EncodeOptions,
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() && images.is_empty() {
            return Err(Error::input("give texts, images, or both to the processor"));
        }
        let mut inputs = ModelInputs::default();
        if !texts.is_empty() {
            let tokenizer = self.tokenizer.as_ref().ok_or_else(|| Error::input("this processor has no tokenizer"))?;
            let enc = tokenizer.encode_batch_with(texts, None, options)?.to_inputs(device)?;
            inputs.input_ids = enc.input_ids;
            inputs.attention_mask = enc.attention_mask;
        }
        if !images.is_empty() {
            let processor =
                self.image_processor.as_ref().ok_or_else(|| Error::input("this processor has no image processor"))?;
            inputs.pixel_values = Some(processor.preprocess(images)?.to_device(device)?);
        }
        Ok(inputs)
    }
}
