//! The processors of vision-language models (`LlavaProcessor`, `LlavaNextProcessor`,
//! `PaliGemmaProcessor`, `Idefics3Processor`, `SmolVLMProcessor`, `Qwen2VLProcessor`,
//! `Qwen2_5_VLProcessor`, `Qwen3VLProcessor`,
//! `Gemma3Processor`): each one's image processor (resizing, tiling or dynamic resolution,
//! `pixel_values` and the extra image inputs) and the expansion of each image placeholder of
//! the prompt into the image tokens the model replaces with features, as `transformers`' processor
//! does it. [`crate::Processor::process_images`] runs them; [`crate::AutoProcessor`] loads them.

mod gemma3;
mod idefics3;
mod llava;
mod llava_next;
mod paligemma;
mod qwen2_vl;

use std::fmt::Debug;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;
use serde_json::{Map, Value};

use crate::image_processor::DynamicImage;
use crate::tokenizer::{read_json, PreTrainedTokenizer};

/// The processor classes of vision-language models, with the model types that use them.
pub const CLASSES: &[(&str, &[&str])] = &[
    ("LlavaProcessor", &["llava"]),
    ("LlavaNextProcessor", &["llava_next"]),
    ("PaliGemmaProcessor", &["paligemma"]),
    ("Idefics3Processor", &["idefics3"]),
    ("SmolVLMProcessor", &["smolvlm"]),
    ("Qwen2VLProcessor", &["qwen2_vl"]),
    ("Qwen2_5_VLProcessor", &["qwen2_5_vl"]),
    ("Qwen3VLProcessor", &["qwen3_vl"]),
    ("Gemma3Processor", &["gemma3"]),
];

/// One vision-language processor class: prompts and their images to model inputs.
pub trait ImageTextProcessing: Debug + Send + Sync {
    /// The `transformers` class name (`Qwen2VLProcessor`).
    fn class(&self) -> &'static str;

    /// `processor(text=texts, images=images, return_tensors="pt")`: `images[i]` are the images
    /// of `texts[i]`, in the order of its image placeholders ([`ImageTextProcessing::image_placeholder`];
    /// a text without any gets its images where the processor puts them, e.g. PaliGemma's
    /// prefix). Returns `input_ids`, `attention_mask` (rows padded as `transformers` pads them)
    /// and `pixel_values` with the class's other image inputs (`image_grid_thw`,
    /// `pixel_attention_mask`, `image_sizes`, `token_type_ids`, `mm_token_type_ids`), on
    /// `device`. More images than placeholders, or the reverse, is an error that says so.
    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs>;

    /// What stands for one image in a prompt before expansion (`<image>`,
    /// `<|vision_start|><|image_pad|><|vision_end|>`, `<start_of_image>`): what a chat template
    /// writes for an `{"type": "image"}` content part.
    fn image_placeholder(&self) -> &str;

    /// The processor's own chat template (`chat_template.jinja`, `chat_template.json` or
    /// `processor_config.json`'s `chat_template`), when the repo has one.
    fn chat_template(&self) -> Option<&str> {
        None
    }
}

/// Load the processor class `class` from `source`; `Ok(None)` when `class` is not a
/// vision-language processor.
pub(crate) fn load(
    class: &str,
    source: &ModelSource,
    opts: &LoadOptions,
) -> Result<Option<Box<dyn ImageTextProcessing>>> {
    Ok(Some(match class {
        "LlavaProcessor" => Box::new(llava::LlavaProcessor::load(source, opts)?),
        "LlavaNextProcessor" => Box::new(llava_next::LlavaNextProcessor::load(source, opts)?),
        "PaliGemmaProcessor" => Box::new(paligemma::PaliGemmaProcessor::load(source, opts)?),
        "Idefics3Processor" | "SmolVLMProcessor" => Box::new(idefics3::Idefics3Processor::load(class, source, opts)?),
        "Qwen2VLProcessor" | "Qwen2_5_VLProcessor" | "Qwen3VLProcessor" => {
            Box::new(qwen2_vl::Qwen2VlProcessor::load(class, source, opts)?)
        }
        "Gemma3Processor" => Box::new(gemma3::Gemma3Processor::load(source, opts)?),
        _ => return Ok(None),
    }))
}

/// A processor's own chat template, where `transformers` looks for it: `chat_template.jinja`,
/// then the `chat_template` of `chat_template.json`, then that of `processor_config`
/// (`processor_config.json`'s object, when the repo has one).
pub(crate) fn processor_chat_template(
    source: &ModelSource,
    processor_config: Option<&Map<String, Value>>,
) -> Result<Option<String>> {
    if let Some(path) = source.optional_file("chat_template.jinja")? {
        return Ok(Some(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?));
    }
    if let Some(path) = source.optional_file("chat_template.json")? {
        if let Some(Value::String(template)) = read_json(&path)?.get("chat_template") {
            return Ok(Some(template.clone()));
        }
    }
    Ok(processor_config.and_then(|c| c.get("chat_template")).and_then(Value::as_str).map(str::to_owned))
}
