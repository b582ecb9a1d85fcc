//! `Gemma3Processor` (`transformers`' `processing_gemma3`, 5.25): `Gemma3ImageProcessor` (the
//! torchvision backend: RGB, resize to `size` with antialiased bilinear, rescale, normalize
//! with mean = std = 0.5 by default) and the prompt expansion of each `<start_of_image>` into
//! `"\n\n" + boi + image_seq_length x image_token + eoi + "\n\n"`, with `token_type_ids` 1 on
//! the image tokens.
//!
//! Pan and scan (extra crops of wide or tall images) is not implemented. `transformers` applies
//! it only when `processor(...)` is called with `do_pan_and_scan=True`: the processor's default
//! (`False`) outranks a `do_pan_and_scan: true` saved in the image processor's config, so such
//! a config changes nothing there, and here it is read the same way (with a warning).

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{Map, Value};

use super::ImageTextProcessing;
use crate::image_processor::{DynamicImage, ImageProcessor, ImageProcessorClass, ImageProcessorConfig};
use crate::tokenizer::{EncodeOptions, Padding, PreTrainedTokenizer};

/// The tokens when the tokenizer's config does not name them (those of the Gemma 3 tokenizer).
const BOI: &str = "<start_of_image>";
const EOI: &str = "<end_of_image>";
const IMAGE: &str = "<image_soft_token>";

/// `Gemma3Processor`: the image processor and the prompt expansion.
#[derive(Debug)]
pub(crate) struct Gemma3Processor {
    images: ImageProcessor,
    /// `image_seq_length` (the model's `mm_tokens_per_image`).
    image_seq_length: usize,
    chat_template: Option<String>,
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config("Gemma3Processor", format!("`{}` must hold a JSON object", path.display()))),
        Err(e) => Err(Error::config("Gemma3Processor", format!("`{}` is not valid JSON: {e}", path.display()))),
    }
}

/// The image processor settings: `processor_config.json`'s `image_processor` (as
/// `transformers` 5 saves them), else `preprocessor_config.json`; `Gemma3ImageProcessor`'s
/// defaults are `ViTImageProcessor`'s with `do_convert_rgb`.
fn image_processor(fields: &Map<String, Value>, origin: &str) -> Result<ImageProcessor> {
    let on = |key: &str| fields.get(key).and_then(Value::as_bool);
    if on("do_pan_and_scan") == Some(true) {
        // `Gemma3Processor.images_kwargs` (`do_pan_and_scan: False`) outranks the image
        // processor's saved value, so `processor(text=..., images=...)` does not pan and scan.
        tracing::warn!(
            from = origin,
            "`do_pan_and_scan: true` has no effect: transformers' Gemma3Processor only pans and scans when the call \
             asks for it, and autocandle does not implement pan and scan"
        );
    }
    let mut config = ImageProcessorConfig::from_json(ImageProcessorClass::Vit, fields, origin)?;
    config.do_convert_rgb = on("do_convert_rgb").unwrap_or(true);
    Ok(ImageProcessor::new(ImageProcessorClass::Vit, config))
}

/// A special token of the tokenizer config (`boi_token`, ...): a top-level key or an entry of
/// `extra_special_tokens`, as a string or an `AddedToken` object.
fn tokenizer_token<'a>(tokenizer: &'a PreTrainedTokenizer, key: &str, default: &'a str) -> &'a str {
    let settings = tokenizer.settings();
    let text = |v: &'a Value| -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("content").and_then(Value::as_str),
            _ => None,
        }
    };
    settings
        .get(key)
        .and_then(text)
        .or_else(|| settings.get("extra_special_tokens").and_then(|e| e.get(key)).and_then(text))
        .unwrap_or(default)
}

impl Gemma3Processor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = opts;
        let processor_config = match source.optional_file("processor_config.json")? {
            Some(path) => Some((read_object(&path)?, path)),
            None => None,
        };
        let preprocessor = match source.optional_file("preprocessor_config.json")? {
            Some(path) => Some((read_object(&path)?, path)),
            None => None,
        };
        let nested = processor_config.as_ref().and_then(|(c, p)| match c.get("image_processor") {
            Some(Value::Object(m)) => Some((m.clone(), p.clone())),
            _ => None,
        });
        let (fields, file) = match (nested, &preprocessor) {
            (Some(found), _) => found,
            (None, Some((m, p))) => (m.clone(), p.clone()),
            (None, None) => {
                return Err(Error::FileNotFound {
                    file: "preprocessor_config.json".to_owned(),
                    location: source.describe(),
                    hint: ": Gemma3Processor needs the image processor's settings (or `image_processor` in \
                           processor_config.json)"
                        .to_owned(),
                })
            }
        };
        let images = image_processor(&fields, &format!("`{}`", file.display()))?;
        // `image_seq_length`: processor_config.json, else the older preprocessor_config.json.
        let seq_len = [processor_config.as_ref().map(|(c, _)| c), preprocessor.as_ref().map(|(c, _)| c)]
            .into_iter()
            .flatten()
            .find_map(|c| c.get("image_seq_length").filter(|v| !v.is_null()).cloned());
        let image_seq_length = match seq_len {
            None => 256,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=65_536).contains(&n) => n as usize,
                _ => {
                    return Err(Error::config(
                        "Gemma3Processor",
                        format!("`image_seq_length` must be a positive number of tokens (at most 65536), got {v}"),
                    ))
                }
            },
        };
        let chat_template = super::processor_chat_template(source, processor_config.as_ref().map(|(c, _)| c))?;
        Ok(Self { images, image_seq_length, chat_template })
    }
}

impl ImageTextProcessing for Gemma3Processor {
    fn class(&self) -> &'static str {
        "Gemma3Processor"
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() {
            return Err(Error::input("no texts to process: give at least one prompt"));
        }
        let boi = tokenizer_token(tokenizer, "boi_token", BOI);
        let eoi = tokenizer_token(tokenizer, "eoi_token", EOI);
        let image_token = tokenizer_token(tokenizer, "image_token", IMAGE);
        let image_id = tokenizer.token_to_id(image_token).ok_or_else(|| {
            Error::config(
                "Gemma3Processor",
                format!("the tokenizer has no image token `{image_token}`: load the model's own tokenizer"),
            )
        })?;
        let any_images = images.iter().any(|row| !row.is_empty());
        let expanded: Vec<String> = if any_images {
            let in_text: Vec<usize> = texts.iter().map(|t| t.matches(boi).count()).collect();
            let given: Vec<usize> = images.iter().map(Vec::len).collect();
            if in_text != given {
                return Err(Error::input(format!(
                    "The number of {boi} tokens in each prompt should be the same as the number of images passed. \
                     Found {in_text:?} {boi} tokens and {given:?} images per sample"
                )));
            }
            let full = format!("\n\n{boi}{}{eoi}\n\n", image_token.repeat(self.image_seq_length));
            texts.iter().map(|t| t.replace(boi, &full)).collect()
        } else {
            texts.iter().map(|t| (*t).to_owned()).collect()
        };
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let padding = if refs.len() > 1 { Padding::Longest } else { Padding::DoNotPad };
        let encoding = tokenizer.encode_batch(&refs, &EncodeOptions::new().padding(padding))?;
        let mut inputs = encoding.to_inputs(device)?;
        let input_ids = inputs.input_ids()?.clone();
        let types = input_ids.eq(image_id)?.to_dtype(DType::I64)?;
        inputs.token_type_ids = Some(types);
        if any_images {
            let all: Vec<DynamicImage> = images.iter().flatten().cloned().collect();
            let pixels: Tensor = self.images.preprocess(&all)?;
            inputs.pixel_values = Some(pixels.to_device(device)?);
        } else {
            inputs.pixel_values = None;
        }
        Ok(inputs)
    }

    fn image_placeholder(&self) -> &str {
        BOI
    }

    fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_processor::open_image;
    use crate::tokenizer::AutoTokenizer;

    fn fixture() -> String {
        format!("{}/../../tests/fixtures/vlm_processors/gemma3", env!("CARGO_MANIFEST_DIR"))
    }

    fn image(name: &str) -> DynamicImage {
        open_image(format!("{}/../../tests/fixtures/images/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn placeholders_and_images_must_match() {
        let dir = fixture();
        let opts = LoadOptions::default();
        let processor = Gemma3Processor::load(&ModelSource::resolve(&dir, &opts).unwrap(), &opts).unwrap();
        let tokenizer = AutoTokenizer::from_pretrained(&dir).unwrap();
        assert_eq!(processor.image_seq_length, 4);
        assert!(processor.chat_template().is_some_and(|t| t.contains("<start_of_image>")));
        let two = vec![image("rgb_37x23.png"), image("gray_24x24.png")];
        let err = processor.process(&tokenizer, &["one <start_of_image>"], &[two], &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("Found [1] <start_of_image> tokens and [2] images"), "{err}");
        let err = processor
            .process(
                &tokenizer,
                &["<start_of_image>", "none"],
                &[vec![image("rgb_37x23.png")], vec![image("rgb_37x23.png")]],
                &Device::Cpu,
            )
            .unwrap_err();
        assert!(err.to_string().contains("[1, 0]"), "{err}");
        // A prompt with its image: 4 image tokens, marked in `token_type_ids`.
        let out = processor
            .process(&tokenizer, &["see <start_of_image>"], &[vec![image("rgb_37x23.png")]], &Device::Cpu)
            .unwrap();
        let types = out.token_type_ids.unwrap().sum_all().unwrap().to_scalar::<i64>().unwrap();
        assert_eq!(types, 4);
        assert_eq!(out.pixel_values.unwrap().dims(), [1, 3, 24, 24]);
    }

    #[test]
    fn saved_pan_and_scan_changes_nothing_as_in_transformers() {
        let mut fields = Map::new();
        fields.insert("do_pan_and_scan".to_owned(), Value::Bool(true));
        let panned = image_processor(&fields, "`preprocessor_config.json`").unwrap();
        fields.insert("do_pan_and_scan".to_owned(), Value::Null);
        let plain = image_processor(&fields, "`preprocessor_config.json`").unwrap();
        assert_eq!(panned.config(), plain.config());
        assert!(plain.config().do_convert_rgb);
    }
}
