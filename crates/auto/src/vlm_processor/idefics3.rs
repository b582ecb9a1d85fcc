//! `Idefics3Processor` and `SmolVLMProcessor` (`transformers` 5.25's `processing_idefics3.py`
//! and `processing_smolvlm.py`): the image processor of [`image`] and the expansion of every
//! `<image>` of a prompt into the tokens of its tiles.
//!
//! An image split into `rows x cols` tiles becomes, row after row,
//! `<fake_token_around_image><row_r_col_c>` + `<image>` x `image_seq_len` per tile, a `\n` after
//! each row, then `\n<fake_token_around_image><global-img>` + `<image>` x `image_seq_len` +
//! `<fake_token_around_image>` for the whole image; an image that was not split is only the
//! last part without the leading `\n`. Both classes expand alike; SmolVLM reads its token
//! strings from the tokenizer's `extra_special_tokens` where it has them.

mod image;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::Device;
use serde_json::{Map, Value};

use super::ImageTextProcessing;
use crate::image_processor::DynamicImage;
use crate::tokenizer::{EncodeOptions, Padding, PreTrainedTokenizer};

use image::ImageConfig;

/// The most image tokens one call may expand into: a bound on the prompt text built from the
/// images (an absurd `image_seq_len` or tile count is refused before the text is written).
const MAX_IMAGE_TOKENS: usize = 1 << 22;

/// The default `image_seq_len` of both classes.
const DEFAULT_IMAGE_SEQ_LEN: usize = 169;

/// `Idefics3Processor` or `SmolVLMProcessor`.
#[derive(Debug)]
pub(crate) struct Idefics3Processor {
    class: &'static str,
    image: ImageConfig,
    /// `<image>` tokens per tile.
    image_seq_len: usize,
    fake_image_token: String,
    image_token: String,
    global_image_token: String,
    chat_template: Option<String>,
}

fn read_object(path: &std::path::Path, class: &str) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config(class, format!("`{}` must hold a JSON object", path.display()))),
        Err(source) => Err(Error::MalformedJson { path: path.to_path_buf(), source }),
    }
}

impl Idefics3Processor {
    /// Read `preprocessor_config.json` (required), `processor_config.json` (`image_seq_len`,
    /// default 169), the processor's chat template and, for SmolVLM, the token strings of
    /// `tokenizer_config.json`'s `extra_special_tokens`. `opts.config_overrides` entries named
    /// like an image processor setting (`max_image_size`, `do_image_splitting`, `size`, ...) or
    /// `image_seq_len` replace the files' values.
    pub(crate) fn load(class: &str, source: &ModelSource, opts: &LoadOptions) -> Result<Self> {
        let class: &'static str = match class {
            "Idefics3Processor" => "Idefics3Processor",
            "SmolVLMProcessor" => "SmolVLMProcessor",
            other => return Err(Error::Unsupported(format!("`{other}` is not Idefics3Processor or SmolVLMProcessor"))),
        };
        let Some(path) = source.optional_file("preprocessor_config.json")? else {
            return Err(Error::FileNotFound {
                file: "preprocessor_config.json".to_owned(),
                location: source.describe(),
                hint: format!(": `{class}` needs the image processor's settings (`max_image_size`, `size`, ...)"),
            });
        };
        let mut fields = read_object(&path, class)?;
        for key in image::KEYS {
            if let Some(value) = opts.config_overrides.get(key) {
                fields.insert(key.to_owned(), value.clone());
            }
        }
        let image = ImageConfig::from_json(&fields, class)?;

        let processor = match source.optional_file("processor_config.json")? {
            Some(path) => read_object(&path, class)?,
            None => Map::new(),
        };
        let seq_len = opts.config_overrides.get("image_seq_len").or_else(|| processor.get("image_seq_len"));
        let image_seq_len = match seq_len.filter(|v| !v.is_null()) {
            None => DEFAULT_IMAGE_SEQ_LEN,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= MAX_IMAGE_TOKENS as u64 => n as usize,
                _ => {
                    return Err(Error::config(
                        class,
                        format!("`image_seq_len` must be a whole number from 1 to {MAX_IMAGE_TOKENS}, not {v}"),
                    ))
                }
            },
        };

        let chat_template = super::processor_chat_template(source, Some(&processor))?;

        // SmolVLM: `getattr(tokenizer, "image_token", "<image>")` and the like, which
        // `extra_special_tokens` of tokenizer_config.json sets.
        let mut extra = Map::new();
        if class == "SmolVLMProcessor" {
            if let Some(path) = source.optional_file("tokenizer_config.json")? {
                if let Some(Value::Object(map)) = read_object(&path, class)?.remove("extra_special_tokens") {
                    extra = map;
                }
            }
        }
        let token = |key: &str, default: &str| -> String {
            let value = extra.get(key);
            let content = value.and_then(|v| v.as_str().or_else(|| v.get("content").and_then(Value::as_str)));
            content.filter(|s| !s.is_empty()).unwrap_or(default).to_owned()
        };
        Ok(Self {
            class,
            image,
            image_seq_len,
            fake_image_token: token("fake_image_token", "<fake_token_around_image>"),
            image_token: token("image_token", "<image>"),
            global_image_token: token("global_image_token", "<global-img>"),
            chat_template,
        })
    }

    /// `replace_image_token`: the text that stands for an image split into `rows x cols`.
    fn image_prompt(&self, rows: usize, cols: usize) -> String {
        let (fake, image, global) = (&self.fake_image_token, &self.image_token, &self.global_image_token);
        let tokens = image.repeat(self.image_seq_len);
        let mut text = String::new();
        if rows == 0 && cols == 0 {
            return format!("{fake}{global}{tokens}{fake}");
        }
        for r in 1..=rows {
            for c in 1..=cols {
                text.push_str(&format!("{fake}<row_{r}_col_{c}>{tokens}"));
            }
            text.push('\n');
        }
        text.push_str(&format!("\n{fake}{global}{tokens}{fake}"));
        text
    }

    /// Each `<image>` of `text`, in order, replaced by the next of `prompts`.
    fn expand(&self, text: &str, prompts: &mut impl Iterator<Item = String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pieces = text.split(self.image_token.as_str());
        if let Some(first) = pieces.next() {
            out.push_str(first);
        }
        for piece in pieces {
            out.push_str(&prompts.next().unwrap_or_default());
            out.push_str(piece);
        }
        out
    }
}

impl ImageTextProcessing for Idefics3Processor {
    fn class(&self) -> &'static str {
        self.class
    }

    fn process(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        images: &[Vec<DynamicImage>],
        device: &Device,
    ) -> Result<ModelInputs> {
        if texts.is_empty() {
            return Err(Error::input(format!("`{}` needs at least one text", self.class)));
        }
        if texts.len() != images.len() {
            return Err(Error::input(format!(
                "{} texts but {} lists of images: give one list of images (maybe empty) per text",
                texts.len(),
                images.len()
            )));
        }
        let token = &self.image_token;
        let in_text: Vec<usize> = texts.iter().map(|t| t.matches(token.as_str()).count()).collect();
        let given: Vec<usize> = images.iter().map(Vec::len).collect();
        if in_text != given {
            return Err(Error::input(format!(
                "the number of {token} tokens in each prompt should be the same as the number of images passed: \
                 found {in_text:?} {token} tokens and {given:?} images per prompt; write one {token} where each image \
                 goes"
            )));
        }
        let has_images = given.iter().any(|&n| n > 0);
        let options = EncodeOptions::new().padding(if texts.len() > 1 { Padding::Longest } else { Padding::DoNotPad });
        if !has_images {
            let mut inputs = tokenizer.encode_batch(texts, &options)?.to_inputs(device)?;
            inputs.token_type_ids = None;
            return Ok(inputs);
        }
        let image_token_id = tokenizer.token_to_id(token).ok_or_else(|| {
            Error::input(format!(
                "the tokenizer has no `{token}` token, which `{}` expands each image into: use the model's own \
                 tokenizer",
                self.class
            ))
        })?;

        let tiles = self.image.process(images, self.image_seq_len)?;
        let mut prompts =
            tiles.iter().flatten().map(|t| self.image_prompt(t.rows, t.cols)).collect::<Vec<_>>().into_iter();
        let expanded: Vec<String> = texts.iter().map(|t| self.expand(t, &mut prompts)).collect();
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let encoding = tokenizer.encode_batch(&refs, &options)?;

        // `_check_special_mm_tokens`: every `<image>` of the text must be one token.
        for (i, (text, ids)) in expanded.iter().zip(&encoding.input_ids).enumerate() {
            let want = text.matches(token.as_str()).count();
            let got = ids.iter().filter(|&&id| id == image_token_id).count();
            if want != got {
                return Err(Error::input(format!(
                    "text {i}: the prompt has {want} {token} after expansion but the tokenizer gave {got} {token} \
                     tokens (truncation, or a tokenizer that splits {token}): the model could not place the image \
                     features"
                )));
            }
        }
        let (pixel_values, pixel_attention_mask) = image::batch(&tiles, self.image.do_pad, device)?;
        let mut inputs = encoding.to_inputs(device)?.with_pixel_values(pixel_values);
        inputs.token_type_ids = None;
        inputs.pixel_attention_mask = pixel_attention_mask;
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
    use super::*;

    fn processor(class: &'static str) -> Idefics3Processor {
        Idefics3Processor {
            class,
            image: ImageConfig::default(),
            image_seq_len: 2,
            fake_image_token: "<fake_token_around_image>".to_owned(),
            image_token: "<image>".to_owned(),
            global_image_token: "<global-img>".to_owned(),
            chat_template: None,
        }
    }

    #[test]
    fn prompts_as_replace_image_token_writes_them() {
        let p = processor("Idefics3Processor");
        assert_eq!(
            p.image_prompt(0, 0),
            "<fake_token_around_image><global-img><image><image><fake_token_around_image>"
        );
        assert_eq!(
            p.image_prompt(1, 2),
            "<fake_token_around_image><row_1_col_1><image><image><fake_token_around_image><row_1_col_2><image><image>\n\
             \n<fake_token_around_image><global-img><image><image><fake_token_around_image>"
        );
        let mut prompts = vec!["A".to_owned(), "B".to_owned()].into_iter();
        assert_eq!(p.expand("x<image>y<image>", &mut prompts), "xAyB");
    }

    /// The `idefics3` fixture repo (tests/fixtures/vlm_processors/idefics3) and its tokenizer.
    fn fixture() -> (Idefics3Processor, PreTrainedTokenizer) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vlm_processors/idefics3");
        let dir = dir.to_string_lossy();
        let opts = LoadOptions::default();
        let source = ModelSource::resolve(&dir, &opts).expect("fixture folder");
        let processor = Idefics3Processor::load("Idefics3Processor", &source, &opts).expect("fixture processor");
        let tokenizer = crate::AutoTokenizer::from_pretrained(&dir).expect("fixture tokenizer");
        (processor, tokenizer)
    }

    #[test]
    fn placeholders_and_images_must_match() {
        let (p, tok) = fixture();
        let image = || DynamicImage::new_rgb8(23, 17);
        let cpu = &Device::Cpu;
        let e = p.process(&tok, &["<image> and <image>"], &[vec![image()]], cpu).expect_err("2 tokens, 1 image");
        assert!(e.to_string().contains("found [2] <image> tokens and [1] images"), "{e}");
        let e = p.process(&tok, &["no placeholder"], &[vec![image()]], cpu).expect_err("0 tokens, 1 image");
        assert!(e.to_string().contains("found [0] <image> tokens and [1] images"), "{e}");
        let e = p.process(&tok, &["<image>"], &[vec![]], cpu).expect_err("1 token, no image");
        assert!(e.to_string().contains("found [1] <image> tokens and [0] images"), "{e}");
        let e = p.process(&tok, &["<image>", "x"], &[vec![image()]], cpu).expect_err("2 texts, 1 list");
        assert!(e.to_string().contains("2 texts but 1 lists"), "{e}");
        let e = p.process(&tok, &["<image>"], &[vec![DynamicImage::new_rgb8(0, 0)]], cpu).expect_err("empty image");
        assert!(e.to_string().contains("empty"), "{e}");
        let ok = p.process(&tok, &["<image> fine"], &[vec![image()]], cpu).expect("one image");
        assert!(ok.pixel_values.is_some() && ok.pixel_attention_mask.is_some());
    }

    #[test]
    fn a_tokenizer_without_the_image_token_is_refused() {
        let (mut p, tok) = fixture();
        p.image_token = "<img>".to_owned();
        let e = p.process(&tok, &["<img>"], &[vec![DynamicImage::new_rgb8(5, 5)]], &Device::Cpu).expect_err("no token");
        assert!(e.to_string().contains("has no `<img>` token"), "{e}");
    }

    #[test]
    fn loading_needs_the_image_processor_config() {
        let dir = std::env::temp_dir().join(format!("autocandle-idefics3-missing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let opts = LoadOptions::default();
        let source = ModelSource::resolve(&dir.to_string_lossy(), &opts).expect("local source");
        let e = Idefics3Processor::load("SmolVLMProcessor", &source, &opts).expect_err("no preprocessor_config.json");
        assert!(e.to_string().contains("preprocessor_config.json"), "{e}");
        std::fs::write(dir.join("preprocessor_config.json"), "{}").expect("write");
        std::fs::write(dir.join("processor_config.json"), r#"{"image_seq_len": 0}"#).expect("write");
        let e = Idefics3Processor::load("SmolVLMProcessor", &source, &opts).expect_err("zero image_seq_len");
        assert!(e.to_string().contains("image_seq_len"), "{e}");
        std::fs::write(dir.join("processor_config.json"), r#"{"image_seq_len": 5}"#).expect("write");
        let p = Idefics3Processor::load("SmolVLMProcessor", &source, &opts).expect("defaults");
        assert_eq!((p.class, p.image_seq_len, p.image.max_image_size), ("SmolVLMProcessor", 5, 364));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
