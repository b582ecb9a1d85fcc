//! `PaliGemmaProcessor`: SigLIP's image processor and PaliGemma's prompt, as `transformers`'
//! `processing_paligemma` (5.25) builds it: each image is `image_seq_length` `<image>` tokens,
//! then `<bos>`, the prompt and `"\n"`; `token_type_ids` are 0 on that prefix.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::Value;

use super::ImageTextProcessing;
use crate::image_processor::{AutoImageProcessor, DynamicImage, ImageProcessor};
use crate::tokenizer::{EncodeOptions, Padding, PreTrainedTokenizer};

/// The image placeholder of PaliGemma prompts (`IMAGE_TOKEN`).
const IMAGE_TOKEN: &str = "<image>";

/// `PaliGemmaProcessor`: a SigLIP image processor (`SiglipImageProcessor`) and the tokenizer,
/// with `image_seq_length` image tokens per image.
#[derive(Debug)]
pub(crate) struct PaliGemmaProcessor {
    image_processor: ImageProcessor,
    image_seq_length: usize,
}

/// The image processor's settings (`processor_config.json`'s `image_processor`, else
/// `preprocessor_config.json`).
fn image_processor_fields(source: &ModelSource) -> Result<Value> {
    if let Some(path) = source.optional_file("processor_config.json")? {
        let value = crate::tokenizer::read_json(&path)?;
        if let Some(nested) = value.get("image_processor") {
            return Ok(nested.clone());
        }
    }
    crate::tokenizer::read_json(&source.file("preprocessor_config.json")?)
}

impl PaliGemmaProcessor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let fields = image_processor_fields(source)?;
        let image_seq_length = match fields.get("image_seq_length").and_then(Value::as_u64) {
            Some(n) if n > 0 && n <= 1 << 20 => n as usize,
            Some(n) => {
                return Err(Error::config("PaliGemmaProcessor", format!("`image_seq_length` {n} is out of range")))
            }
            None => {
                return Err(Error::config(
                    "PaliGemmaProcessor",
                    "the image processor config has no `image_seq_length` (the image tokens per image)",
                ))
            }
        };
        let id = match source.local_dir() {
            Some(dir) => dir.to_string_lossy().into_owned(),
            None => source.name(),
        };
        let image_processor = AutoImageProcessor::from_pretrained_with(&id, opts)?;
        Ok(Self { image_processor, image_seq_length })
    }

    /// The prompt as `prepare_inputs_layout` writes it, with each `<image>` expanded.
    fn prompt(&self, text: &str, images: usize, bos: &str) -> Result<String> {
        let placeholders = text.matches(IMAGE_TOKEN).count();
        let expanded = IMAGE_TOKEN.repeat(self.image_seq_length);
        if placeholders == 0 {
            // The images go first, then bos, the prompt and a newline.
            return Ok(format!("{}{bos}{text}\n", expanded.repeat(images)));
        }
        if placeholders != images {
            return Err(Error::input(format!(
                "the prompt has {placeholders} `{IMAGE_TOKEN}` placeholders but {images} images were given: give one \
                 image per placeholder, or no placeholder (the images then go before the prompt)"
            )));
        }
        let end = text.rfind(IMAGE_TOKEN).map_or(0, |i| i + IMAGE_TOKEN.len());
        let laid_out = format!("{}{bos}{}\n", &text[..end], &text[end..]);
        Ok(laid_out.replace(IMAGE_TOKEN, &expanded))
    }
}

impl ImageTextProcessing for PaliGemmaProcessor {
    fn class(&self) -> &'static str {
        "PaliGemmaProcessor"
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if images.iter().all(Vec::is_empty) {
            return Err(Error::input(
                "PaliGemmaProcessor needs images (`transformers` refuses a call without them); for a text-only \
                 prompt, tokenize it with the tokenizer and give `token_type_ids` of 0",
            ));
        }
        if tokenizer.token_to_id(IMAGE_TOKEN).is_none() {
            return Err(Error::config(
                "PaliGemmaProcessor",
                format!("the tokenizer has no `{IMAGE_TOKEN}` token: use the tokenizer saved with the processor"),
            ));
        }
        let bos = tokenizer.special_token("bos_token").unwrap_or("<bos>").to_owned();
        let prompts =
            texts.iter().zip(images).map(|(t, i)| self.prompt(t, i.len(), &bos)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        // The processor turns the tokenizer's bos and eos off (`add_bos_token = False`).
        let options = EncodeOptions::new().add_special_tokens(false).padding(Padding::Longest);
        let encoding = tokenizer.encode_batch(&refs, &options)?;
        let mut inputs = encoding.to_inputs(device)?;
        let (rows, width) = (encoding.input_ids.len(), encoding.input_ids.first().map_or(0, Vec::len));
        inputs.token_type_ids = Some(Tensor::zeros((rows, width), candle_core::DType::U32, device)?);
        let all: Vec<DynamicImage> = images.iter().flatten().cloned().collect();
        let pixels = self.image_processor.preprocess(&all)?;
        inputs.pixel_values = Some(pixels.to_device(device)?);
        Ok(inputs)
    }

    fn image_placeholder(&self) -> &str {
        IMAGE_TOKEN
    }
}
