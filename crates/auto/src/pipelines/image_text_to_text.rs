//! The image-text-to-text pipeline (`transformers.ImageTextToTextPipeline`): a vision-language
//! model (`AutoModelForImageTextToText`) and its processor (`AutoProcessor`) answer a prompt
//! or a chat about images, streaming the reply.

use std::ops::ControlFlow;
#[cfg(feature = "chat")]
use std::path::Path;

use autocandle_core::{Error, ForImageTextToText, LoadOptions, ModelInputs, Result};
use autocandle_generation::{GenerationConfig, WithImages};
#[cfg(feature = "chat")]
use serde_json::Value;

#[cfg(feature = "chat")]
use crate::image_processor::open_image;
use crate::image_processor::DynamicImage;
use crate::pipelines::TextGenerationOptions;
#[cfg(feature = "chat")]
use crate::EncodeOptions;
use crate::{AutoModelForImageTextToText, AutoProcessor, Processor};

/// Answer prompts and chats about images with a vision-language model.
///
/// ```no_run
/// # fn main() -> autocandle::Result<()> {
/// use autocandle::image_processor::open_image;
/// use autocandle::pipelines::{ImageTextToTextPipeline, TextGenerationOptions};
/// use autocandle::ChatMessage;
/// let pipe = ImageTextToTextPipeline::new("HuggingFaceTB/SmolVLM-256M-Instruct")?;
/// let chat = [ChatMessage::user(serde_json::json!([
///     {"type": "image", "path": "cat.png"},
///     {"type": "text", "text": "Describe this image."},
/// ]))];
/// let reply = pipe.chat(&chat, &[], &TextGenerationOptions::default())?;
/// let answer = pipe.call(&[open_image("cat.png")?], "<image>What animal is this?")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ImageTextToTextPipeline {
    processor: Processor,
    model: Box<dyn ForImageTextToText>,
    generation_config: GenerationConfig,
}

impl ImageTextToTextPipeline {
    /// Load the model (`AutoModelForImageTextToText`), its processor and generation config.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ImageTextToTextPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("image-text-to-text", model, || {
            let processor = AutoProcessor::from_pretrained_with(model, opts)?;
            if processor.image_text().is_none() {
                return Err(Error::Unsupported(format!(
                    "`{model}` has no vision-language processor (its processor is `{}`): the image-text-to-text \
                     pipeline needs one of {}",
                    processor.class().unwrap_or("a tokenizer alone"),
                    crate::vlm_processor::CLASSES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                )));
            }
            // `_default_generation_config`: 256 new tokens; the tokenizer's pad token.
            let mut defaults = GenerationConfig::new().max_new_tokens(256);
            defaults.pad_token_id = processor.tokenizer().and_then(|t| t.special_token_id("pad_token"));
            let generation_config = GenerationConfig::from_pretrained_with(model, opts)?.fill_from(&defaults);
            let model = AutoModelForImageTextToText::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, generation_config })
        })
    }

    /// The generation settings calls start from: the model's `generation_config.json` over
    /// the pipeline's default of 256 new tokens (greedy unless the model's config samples).
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation_config
    }

    /// The processor (tokenizer and vision-language processor).
    pub fn processor(&self) -> &Processor {
        &self.processor
    }

    /// The model.
    pub fn model(&self) -> &dyn ForImageTextToText {
        self.model.as_ref()
    }

    /// What stands for an image in a prompt (`<image>`, ...): the processor's placeholder.
    pub fn image_placeholder(&self) -> &str {
        self.processor.image_text().map_or("<image>", |p| p.image_placeholder())
    }

    /// The prompt followed by its continuation (`pipe(images=images, text=prompt)[0]
    /// ["generated_text"]`). The prompt holds one image placeholder per image
    /// ([`ImageTextToTextPipeline::image_placeholder`]); a prompt without any gets them at its
    /// start.
    pub fn call(&self, images: &[DynamicImage], prompt: &str) -> Result<String> {
        self.call_with(images, prompt, &TextGenerationOptions::default())
    }

    /// [`ImageTextToTextPipeline::call`] under `opts` (the continuation alone with
    /// `new_text_only`).
    pub fn call_with(&self, images: &[DynamicImage], prompt: &str, opts: &TextGenerationOptions) -> Result<String> {
        self.stream(images, prompt, opts, |_| ControlFlow::Continue(()))
    }

    /// [`ImageTextToTextPipeline::call_with`], calling `on_text` with each new piece of text as
    /// soon as it is final; `ControlFlow::Break` stops generation there.
    pub fn stream(
        &self,
        images: &[DynamicImage],
        prompt: &str,
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let placeholder = self.image_placeholder();
        let text = if images.is_empty() || prompt.contains(placeholder) {
            prompt.to_owned()
        } else {
            format!("{}{prompt}", placeholder.repeat(images.len()))
        };
        let inputs = self.processor.process_images(&[text.as_str()], &[images.to_vec()], self.model.device())?;
        let new_text = self.generate(inputs, opts, on_text)?;
        Ok(if opts.new_text_only { new_text } else { format!("{prompt}{new_text}") })
    }

    /// The assistant's reply to a chat whose user messages may hold images
    /// (`pipe(text=messages)`): content parts `{"type": "image"}` take the next image of
    /// `images`, and parts `{"type": "image", "path": ...}` (or `"url"` / `"image"` naming a
    /// local file) are read from disk. The chat is rendered with the processor's chat template
    /// and its images expanded into image tokens. A chat ending with an assistant message is
    /// continued (`continue_final_message`).
    #[cfg(feature = "chat")]
    pub fn chat(
        &self,
        messages: &[crate::ChatMessage],
        images: &[DynamicImage],
        opts: &TextGenerationOptions,
    ) -> Result<String> {
        self.stream_chat(messages, images, opts, |_| ControlFlow::Continue(()))
    }

    /// [`ImageTextToTextPipeline::chat`], calling `on_text` with each new piece of the reply.
    #[cfg(feature = "chat")]
    pub fn stream_chat(
        &self,
        messages: &[crate::ChatMessage],
        images: &[DynamicImage],
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let tokenizer = self.processor.tokenizer().ok_or_else(|| Error::input("the processor has no tokenizer"))?;
        let Some(last) = messages.last() else {
            return Err(Error::input("a chat needs at least one message"));
        };
        let all_images = chat_images(messages, images)?;
        let continue_final = last.role == "assistant";
        let template = crate::ChatTemplateOptions::new()
            .add_generation_prompt(!continue_final)
            .continue_final_message(continue_final);
        let rendered = tokenizer.apply_chat_template_with(messages, &template)?;
        let text = self.without_leading_bos(&rendered)?;
        let inputs = self.processor.process_images(&[text.as_str()], &[all_images], self.model.device())?;
        self.generate(inputs, opts, on_text)
    }

    /// `rendered` without the BOS token it starts with when the processor's tokenizer adds that
    /// token itself: `transformers`' `apply_chat_template` encodes such a prompt without
    /// special tokens, which comes to the same ids.
    #[cfg(feature = "chat")]
    fn without_leading_bos(&self, rendered: &str) -> Result<String> {
        let Some(tokenizer) = self.processor.tokenizer() else { return Ok(rendered.to_owned()) };
        let Some(bos) = tokenizer.special_token("bos_token").map(str::to_owned) else {
            return Ok(rendered.to_owned());
        };
        let Some(rest) = rendered.strip_prefix(bos.as_str()) else { return Ok(rendered.to_owned()) };
        let with = tokenizer.encode_batch_with(&[rest], None, &EncodeOptions::new())?.input_ids;
        let without =
            tokenizer.encode_batch_with(&[rendered], None, &EncodeOptions::new().add_special_tokens(false))?.input_ids;
        Ok(if with == without { rest.to_owned() } else { rendered.to_owned() })
    }

    /// Generate from processed inputs (one row), streaming the new text to `on_text`; returns
    /// the new text without special tokens.
    fn generate(
        &self,
        inputs: ModelInputs,
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let tokenizer = self.processor.tokenizer().ok_or_else(|| Error::input("the processor has no tokenizer"))?;
        let config = match &opts.generation {
            Some(config) => config.clone().fill_from(&self.generation_config),
            None => self.generation_config.clone(),
        };
        let ids = inputs.input_ids()?.to_dtype(candle_core::DType::U32)?.to_vec2::<u32>()?;
        let prompts = match &inputs.attention_mask {
            Some(mask) => {
                crate::Prompts::new(ids).with_attention_mask(mask.to_dtype(candle_core::DType::U32)?.to_vec2::<u32>()?)
            }
            None => crate::Prompts::new(ids),
        };
        let model = WithImages::new(self.model.as_ref(), inputs);
        super::text_generation::stream_new_text(&model, prompts, &config, tokenizer, on_text)
    }
}

/// The images of a chat in the order its content parts name them: a part `{"type": "image"}`
/// with a `path`, `url` or `image` string is read from that file, one without takes the next
/// of `given`. Every given image must be used.
#[cfg(feature = "chat")]
fn chat_images(messages: &[crate::ChatMessage], given: &[DynamicImage]) -> Result<Vec<DynamicImage>> {
    let mut out = Vec::new();
    let mut next = given.iter();
    for message in messages {
        let Value::Array(parts) = &message.content else { continue };
        for part in parts {
            if part.get("type").and_then(Value::as_str) != Some("image") {
                continue;
            }
            let named = ["path", "url", "image"].iter().find_map(|k| part.get(*k).and_then(Value::as_str));
            match named {
                Some(location) if location.starts_with("http://") || location.starts_with("https://") => {
                    return Err(Error::input(format!(
                        "image `{location}` is a web address: download it and give its local path (autocandle does \
                         not fetch images from the web)"
                    )))
                }
                Some(path) => out.push(open_image(Path::new(path))?),
                None => out.push(
                    next.next()
                        .ok_or_else(|| {
                            Error::input(format!(
                                "the chat has more `{{\"type\": \"image\"}}` parts than the {} images given",
                                given.len()
                            ))
                        })?
                        .clone(),
                ),
            }
        }
    }
    if next.next().is_some() {
        return Err(Error::input(format!(
            "{} images were given but the chat has fewer `{{\"type\": \"image\"}}` parts without a path: put one \
             image part in a user message for each image",
            given.len()
        )));
    }
    Ok(out)
}
