//! `AutoProcessor`: the tokenizer and the image processor of a multimodal model together
//! (`CLIPProcessor`, `SiglipProcessor`), or the feature extractor and the tokenizer of a speech
//! model (`WhisperProcessor`, `Wav2Vec2Processor`), after `transformers`' `ProcessorMixin`.

use serde_json::Value;

use autocandle_core::hub::ModelSource;
#[cfg(feature = "image")]
use autocandle_core::ModelInputs;
use autocandle_core::{Error, LoadOptions, Result};
#[cfg(feature = "image")]
use candle_core::Device;

use crate::audio::{AudioFeatureOptions, AudioFeatures, AutoFeatureExtractor, FeatureExtractor};
use crate::ctc_tokenizer::Wav2Vec2CtcTokenizer;
#[cfg(feature = "image")]
use crate::image_processor::{AutoImageProcessor, DynamicImage, ImageProcessor};
#[cfg(feature = "image")]
use crate::tokenizer::EncodeOptions;
use crate::tokenizer::{read_json, AutoTokenizer, PreTrainedTokenizer};
#[cfg(feature = "image")]
use crate::vlm_processor::ImageTextProcessing;

/// The processor classes autocandle knows, with the model types that use them (the
/// vision-language ones are in `vlm_processor::CLASSES`).
const PROCESSORS: &[(&str, &[&str])] = &[
    ("CLIPProcessor", &["clip", "clip_text_model", "clip_vision_model"]),
    ("SiglipProcessor", &["siglip", "siglip_text_model", "siglip_vision_model"]),
    ("WhisperProcessor", &["whisper"]),
    (
        "Wav2Vec2Processor",
        &[
            "wav2vec2",
            "hubert",
            "wavlm",
            "data2vec-audio",
            "wav2vec2-conformer",
            "sew",
            "sew-d",
            "unispeech",
            "unispeech-sat",
        ],
    ),
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
        if let Some(kind) = audio_kind(&source, class.as_deref())? {
            return load_audio_processor(id_or_path, opts, &source, class, kind);
        }
        Self::load_image_text(id_or_path, opts, &source, class)
    }

    /// The image-text processors (and a repo with only a tokenizer).
    fn load_image_text(
        id_or_path: &str,
        opts: &LoadOptions,
        source: &ModelSource,
        class: Option<String>,
    ) -> Result<Processor> {
        #[cfg(feature = "image")]
        if let Some(image_text) =
            class.as_deref().map(|c| crate::vlm_processor::load(c, source, opts)).transpose()?.flatten()
        {
            let tokenizer = AutoTokenizer::from_pretrained_with(id_or_path, opts)?;
            tracing::info!(class = image_text.class(), "vision-language processor loaded");
            return Ok(Processor {
                class,
                tokenizer: Some(tokenizer),
                image_processor: None,
                feature_extractor: None,
                ctc_tokenizer: None,
                image_text: Some(image_text),
            });
        }
        let tokenizer = optional(AutoTokenizer::from_pretrained_with(id_or_path, opts))?;
        #[cfg(feature = "image")]
        let image_processor = optional(AutoImageProcessor::from_pretrained_with(id_or_path, opts))?;
        #[cfg(not(feature = "image"))]
        let image_processor: Option<()> = None;
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
                Ok(Processor {
                    class,
                    tokenizer,
                    #[cfg(feature = "image")]
                    image_processor,
                    feature_extractor: None,
                    ctc_tokenizer: None,
                    #[cfg(feature = "image")]
                    image_text: None,
                })
            }
        }
    }
}

/// Which speech processor a repo needs: `Some(true)` for a CTC tokenizer (wav2vec2 family),
/// `Some(false)` for a fast tokenizer (Whisper), `None` for no speech processor.
fn audio_kind(source: &ModelSource, class: Option<&str>) -> Result<Option<bool>> {
    match class {
        Some("WhisperProcessor") => return Ok(Some(false)),
        Some("Wav2Vec2Processor") => return Ok(Some(true)),
        Some(_) => return Ok(None),
        None => {}
    }
    let Some(path) = source.optional_file("preprocessor_config.json")? else {
        return Ok(None);
    };
    Ok(match read_json(&path)?.get("feature_extractor_type").and_then(Value::as_str) {
        Some("WhisperFeatureExtractor") => Some(false),
        Some(c) if crate::audio::is_known_class(c) => Some(true),
        _ => None,
    })
}

/// A speech processor: the feature extractor and the tokenizer (`vocab.json` CTC tokenizer for
/// the wav2vec2 family, `tokenizer.json` for Whisper); a repo with only one of them gets that
/// one, as `transformers` falls back to it, unless the repo names the processor class.
fn load_audio_processor(
    id_or_path: &str,
    opts: &LoadOptions,
    source: &ModelSource,
    class: Option<String>,
    ctc: bool,
) -> Result<Processor> {
    let feature_extractor = optional(AutoFeatureExtractor::from_pretrained_with(id_or_path, opts))?;
    let (tokenizer, ctc_tokenizer) = if ctc {
        (None, optional(Wav2Vec2CtcTokenizer::from_pretrained_with(id_or_path, opts))?)
    } else {
        (optional(AutoTokenizer::from_pretrained_with(id_or_path, opts))?, None)
    };
    let has_tokenizer = tokenizer.is_some() || ctc_tokenizer.is_some();
    let tokenizer_file = if ctc { "vocab.json" } else { "tokenizer.json" };
    match (&class, has_tokenizer, &feature_extractor) {
        (Some(class), false, _) | (Some(class), _, None) => Err(Error::FileNotFound {
            file: if has_tokenizer { "preprocessor_config.json" } else { tokenizer_file }.to_owned(),
            location: source.describe(),
            hint: format!(": `{class}` combines a feature extractor and a tokenizer"),
        }),
        (None, false, None) => Err(Error::FileNotFound {
            file: format!("{tokenizer_file} or preprocessor_config.json"),
            location: source.describe(),
            hint: ": a processor needs a tokenizer, a feature extractor, or both".to_owned(),
        }),
        _ => {
            tracing::info!(class = class.as_deref(), tokenizer = has_tokenizer, "speech processor loaded");
            Ok(Processor {
                class,
                tokenizer,
                #[cfg(feature = "image")]
                image_processor: None,
                feature_extractor,
                ctc_tokenizer,
                #[cfg(feature = "image")]
                image_text: None,
            })
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
    Ok(all_classes().find(|(_, types)| types.contains(&model_type)).map(|(class, _)| class.to_owned()))
}

/// Every processor class with its model types.
fn all_classes() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    #[cfg(feature = "image")]
    let vlm = crate::vlm_processor::CLASSES.iter();
    #[cfg(not(feature = "image"))]
    let vlm = [].iter();
    PROCESSORS.iter().chain(vlm).map(|(c, t)| (*c, *t))
}

/// `class` when autocandle knows it, else an error listing the known ones.
fn known(class: &str) -> Result<String> {
    if all_classes().any(|(c, _)| c == class) {
        return Ok(class.to_owned());
    }
    let names: Vec<&str> = all_classes().map(|(c, _)| c).collect();
    Err(Error::Unsupported(format!("processor class `{class}`: autocandle knows {}", names.join(", "))))
}

/// A model's tokenizer and image processor (`CLIPProcessor`, `SiglipProcessor`), or its feature
/// extractor and tokenizer (`WhisperProcessor`, `Wav2Vec2Processor`).
#[derive(Debug)]
pub struct Processor {
    class: Option<String>,
    tokenizer: Option<PreTrainedTokenizer>,
    #[cfg(feature = "image")]
    image_processor: Option<ImageProcessor>,
    feature_extractor: Option<FeatureExtractor>,
    ctc_tokenizer: Option<Wav2Vec2CtcTokenizer>,
    /// A vision-language model's processor (LLaVA, PaliGemma, Idefics3, Qwen2-VL, Gemma 3).
    #[cfg(feature = "image")]
    image_text: Option<Box<dyn ImageTextProcessing>>,
}

impl Processor {
    /// Combine a tokenizer and an image processor.
    #[cfg(feature = "image")]
    pub fn new(tokenizer: Option<PreTrainedTokenizer>, image_processor: Option<ImageProcessor>) -> Self {
        Self { class: None, tokenizer, image_processor, feature_extractor: None, ctc_tokenizer: None, image_text: None }
    }

    /// Combine a feature extractor with a fast tokenizer (Whisper) or a CTC tokenizer (wav2vec2).
    pub fn for_audio(
        feature_extractor: Option<FeatureExtractor>,
        tokenizer: Option<PreTrainedTokenizer>,
        ctc_tokenizer: Option<Wav2Vec2CtcTokenizer>,
    ) -> Self {
        Self {
            class: None,
            tokenizer,
            #[cfg(feature = "image")]
            image_processor: None,
            feature_extractor,
            ctc_tokenizer,
            #[cfg(feature = "image")]
            image_text: None,
        }
    }

    /// The feature extractor, if the processor has one (speech models).
    pub fn feature_extractor(&self) -> Option<&FeatureExtractor> {
        self.feature_extractor.as_ref()
    }

    /// The CTC tokenizer (`vocab.json`), if the processor has one (wav2vec2 family).
    pub fn ctc_tokenizer(&self) -> Option<&Wav2Vec2CtcTokenizer> {
        self.ctc_tokenizer.as_ref()
    }

    /// `processor(audio=..., sampling_rate=...)`: the feature extractor's output for a batch of
    /// mono clips.
    pub fn process_audio(&self, audio: &[&[f32]], options: &AudioFeatureOptions) -> Result<AudioFeatures> {
        let extractor =
            self.feature_extractor.as_ref().ok_or_else(|| Error::input("this processor has no feature extractor"))?;
        extractor.extract(audio, options)
    }

    /// `processor.batch_decode(ids, skip_special_tokens=...)` with whichever tokenizer the
    /// processor has (CTC decoding for the wav2vec2 family).
    pub fn batch_decode<S: AsRef<[u32]>>(&self, sequences: &[S], skip_special_tokens: bool) -> Result<Vec<String>> {
        if let Some(ctc) = &self.ctc_tokenizer {
            return Ok(ctc.batch_decode(sequences, skip_special_tokens));
        }
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| Error::input("this processor has no tokenizer"))?;
        sequences.iter().map(|s| tokenizer.decode(s.as_ref(), skip_special_tokens)).collect()
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
    #[cfg(feature = "image")]
    pub fn image_processor(&self) -> Option<&ImageProcessor> {
        self.image_processor.as_ref()
    }

    /// The vision-language processor (LLaVA, PaliGemma, Idefics3/SmolVLM, Qwen2-VL, Gemma 3),
    /// if this is one.
    #[cfg(feature = "image")]
    pub fn image_text(&self) -> Option<&dyn ImageTextProcessing> {
        self.image_text.as_deref()
    }

    /// A vision-language processor's `processor(text=texts, images=images)`: `images[i]` go
    /// with `texts[i]`, one per image placeholder; each placeholder is expanded into the
    /// model's image tokens, and the inputs come back on `device` (`input_ids`,
    /// `attention_mask`, `pixel_values` and the class's other image inputs), ready for the
    /// model's forward or for `generate` through `WithImages`.
    #[cfg(feature = "image")]
    pub fn process_images(&self, texts: &[&str], images: &[Vec<DynamicImage>], device: &Device) -> Result<ModelInputs> {
        let (Some(image_text), Some(tokenizer)) = (&self.image_text, &self.tokenizer) else {
            return Err(Error::input(format!(
                "`{}` is not a vision-language processor: use `process` for image and text models such as CLIP",
                self.class.as_deref().unwrap_or("this processor")
            )));
        };
        if texts.len() != images.len() {
            return Err(Error::input(format!(
                "{} texts but {} lists of images: give one list of images (maybe empty) per text",
                texts.len(),
                images.len()
            )));
        }
        image_text.process(tokenizer, texts, images, device)
    }

    /// `processor(text=texts, images=images, ...)`: `input_ids` and `attention_mask` of the
    /// texts (encoded with `options`; rows must come out equally long, so pad unless there is
    /// one text) and `pixel_values` of the images, on `device`. Either list may be empty, not
    /// both.
    #[cfg(feature = "image")]
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
