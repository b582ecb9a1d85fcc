//! `LlavaProcessor`: CLIP's image processor and the expansion of each `<image>` of the prompt
//! into the image tokens LLaVA replaces with projected features, as `transformers`'
//! `processing_llava.LlavaProcessor` (5.25).

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;
use serde_json::{Map, Value};

use super::ImageTextProcessing;
use crate::image_processor::{DynamicImage, ImageProcessor};
use crate::tokenizer::{EncodeOptions, Padding, PreTrainedTokenizer};

/// `LlavaProcessor`: the image processor (`CLIPImageProcessor` in LLaVA repos, read from
/// `processor_config.json`'s `image_processor` or from `preprocessor_config.json`) and the
/// prompt expansion: each image token of a text (`<image>`; the tokenizer's `image_token`
/// when it names one) becomes `(height / patch_size) * (width / patch_size) +
/// num_additional_image_tokens` image tokens, one fewer with the `default`
/// `vision_feature_select_strategy` (the class token is dropped), `height` and `width` being
/// those of the processed image.
#[derive(Debug)]
pub(crate) struct LlavaProcessor {
    image_processor: ImageProcessor,
    patch_size: usize,
    num_additional_image_tokens: usize,
    drop_cls: bool,
    image_token: String,
    chat_template: Option<String>,
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config("LlavaProcessor", format!("`{}` must hold a JSON object", path.display()))),
        Err(source) => Err(Error::MalformedJson { path: path.to_path_buf(), source }),
    }
}

/// A non-negative integer setting, `default` when absent or null.
fn uint(settings: &Map<String, Value>, key: &str, default: Option<usize>) -> Result<Option<usize>> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or_else(|| {
            Error::config("LlavaProcessor", format!("`{key}` must be a non-negative integer, found {v}"))
        }),
    }
}

impl LlavaProcessor {
    pub(crate) fn load(source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let _ = opts;
        let mut settings = match source.optional_file("processor_config.json")? {
            Some(p) => read_object(&p)?,
            None => Map::new(),
        };
        let image_processor = match settings.remove("image_processor") {
            Some(nested @ Value::Object(_)) => ImageProcessor::from_json(&nested)?,
            Some(_) => {
                return Err(Error::config(
                    "LlavaProcessor",
                    "`image_processor` in `processor_config.json` must be a JSON object",
                ))
            }
            None => ImageProcessor::from_json(&Value::Object(read_object(&source.file("preprocessor_config.json")?)?))?,
        };
        // `patch_size` and the strategy are `None` by default in `transformers`, where the
        // processor then fails on the first image; take the model's config for them.
        let model_config = match source.optional_file("config.json")? {
            Some(p) => read_object(&p)?,
            None => Map::new(),
        };
        let vision_patch = model_config.get("vision_config").and_then(|v| v.get("patch_size")).and_then(Value::as_u64);
        let patch_size = uint(&settings, "patch_size", vision_patch.and_then(|p| usize::try_from(p).ok()))?
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                Error::config(
                    "LlavaProcessor",
                    "`patch_size` is missing from `processor_config.json` (or is 0): the processor needs the vision \
                     tower's patch size to count the image tokens",
                )
            })?;
        let strategy = settings
            .get("vision_feature_select_strategy")
            .or_else(|| model_config.get("vision_feature_select_strategy"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let num_additional_image_tokens = uint(&settings, "num_additional_image_tokens", Some(0))?.unwrap_or(0);
        let image_token = settings.get("image_token").and_then(Value::as_str).unwrap_or("<image>").to_owned();
        let chat_template = super::processor_chat_template(source, Some(&settings))?;
        Ok(Self {
            image_processor,
            patch_size,
            num_additional_image_tokens,
            drop_cls: strategy == "default",
            image_token,
            chat_template,
        })
    }

    /// The image token: the tokenizer's `image_token` (its `extra_special_tokens`) when it has
    /// one, as `LlavaProcessor.__init__` takes it, else the processor's.
    fn image_token<'a>(&'a self, tokenizer: &'a PreTrainedTokenizer) -> &'a str {
        tokenizer
            .special_token("image_token")
            .or_else(|| tokenizer.settings().get("extra_special_tokens")?.get("image_token")?.as_str())
            .unwrap_or(&self.image_token)
    }

    /// Image tokens for one processed image of `height` x `width` pixels.
    fn tokens_per_image(&self, height: usize, width: usize) -> Result<usize> {
        let n = (height / self.patch_size) * (width / self.patch_size) + self.num_additional_image_tokens;
        let n = if self.drop_cls { n.saturating_sub(1) } else { n };
        if n == 0 {
            return Err(Error::input(format!(
                "processed images of {height}x{width} pixels hold no {0}x{0} patch: they give no image tokens",
                self.patch_size
            )));
        }
        Ok(n)
    }
}

impl ImageTextProcessing for LlavaProcessor {
    fn class(&self) -> &'static str {
        "LlavaProcessor"
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() {
            return Err(Error::input("LlavaProcessor needs at least one text"));
        }
        let token = self.image_token(tokenizer);
        for (i, (text, row)) in texts.iter().zip(images).enumerate() {
            let placeholders = text.matches(token).count();
            if placeholders != row.len() {
                return Err(Error::input(format!(
                    "text {i} has {placeholders} `{token}` placeholders but {} images: put one `{token}` in the text \
                     where each of its images goes",
                    row.len()
                )));
            }
        }
        let flat: Vec<DynamicImage> = images.iter().flatten().cloned().collect();
        let (pixel_values, per_image) = if flat.is_empty() {
            (None, 0)
        } else {
            let pixels = self.image_processor.preprocess(&flat)?;
            let (_, _, height, width) = pixels.dims4()?;
            (Some(pixels.to_device(device)?), self.tokens_per_image(height, width)?)
        };
        let expansion = token.repeat(per_image);
        let expanded: Vec<String> = texts.iter().map(|t| t.replace(token, &expansion)).collect();
        let expanded: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let options = EncodeOptions::new().padding(Padding::Longest);
        let enc = tokenizer.encode_batch_with(&expanded, None, &options)?.to_inputs(device)?;
        let mut inputs = ModelInputs::default();
        inputs.input_ids = enc.input_ids;
        inputs.attention_mask = enc.attention_mask;
        inputs.pixel_values = pixel_values;
        Ok(inputs)
    }

    fn image_placeholder(&self) -> &str {
        &self.image_token
    }

    fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

#[cfg(test)]
mod tests {
    // Tests may panic on failure.
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::*;
    use crate::image_processor::open_image;
    use crate::AutoProcessor;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vlm_processors/llava")
    }

    #[test]
    fn placeholders_and_images_must_match() {
        let processor = AutoProcessor::from_pretrained(&fixture().to_string_lossy()).unwrap();
        let image = open_image(fixture().join("../../images/gray_24x24.png")).unwrap();
        let image_text = processor.image_text().unwrap();
        assert_eq!((image_text.class(), image_text.image_placeholder()), ("LlavaProcessor", "<image>"));
        assert!(image_text.chat_template().unwrap().contains("ASSISTANT:"));
        let dev = Device::Cpu;
        let err = processor.process_images(&["<image> and <image>"], &[vec![image.clone()]], &dev).unwrap_err();
        assert!(err.to_string().contains("2 `<image>` placeholders but 1 images"), "{err}");
        let err = processor.process_images(&["no image here"], &[vec![image.clone()]], &dev).unwrap_err();
        assert!(err.to_string().contains("0 `<image>` placeholders"), "{err}");
        // Text alone: no `pixel_values`.
        let out = processor.process_images(&["hello world"], &[vec![]], &dev).unwrap();
        assert!(out.pixel_values.is_none() && out.input_ids.is_some());
        // 12 px crops of 4 px patches: 9 image tokens (the class token dropped).
        let out = processor.process_images(&["<image>"], &[vec![image]], &dev).unwrap();
        let ids = out.input_ids.unwrap().to_vec2::<u32>().unwrap();
        let image_id = processor.tokenizer().unwrap().token_to_id("<image>").unwrap();
        assert_eq!(ids[0].iter().filter(|&&i| i == image_id).count(), 9);
    }
}
