//! autocandle: `transformers`' Auto classes for Rust, on candle.
//!
//! Hand it a Hub id or a folder; it reads `config.json`, picks the architecture and task head
//! registered for the `model_type`, and loads the weights and tokenizer:
//!
//! ```no_run
//! use autocandle::{AutoModelForMaskedLM, AutoTokenizer};
//! # fn main() -> autocandle::Result<()> {
//! let tok = AutoTokenizer::from_pretrained("google-bert/bert-base-uncased")?;
//! let model = AutoModelForMaskedLM::from_pretrained("google-bert/bert-base-uncased")?;
//! let batch = tok.encode_batch(&["Paris is the [MASK] of France.", "Hello"], true)?;
//! let out = model.forward(&batch.to_inputs(&candle_core::Device::Cpu)?)?; // out.logits: [2, T, vocab]
//! # Ok(()) }
//! ```
//!
//! Causal language models generate text through [`GenerationMixin`] (`model.generate(...)`,
//! streaming, stop strings) with a [`GenerationConfig`]; tokenizers render chat templates:
//!
//! ```no_run
//! use autocandle::{AutoModelForCausalLM, AutoTokenizer, ChatTemplateOptions, GenerationConfig, GenerationMixin};
//! # fn main() -> autocandle::Result<()> {
//! let id = "Qwen/Qwen2.5-0.5B-Instruct";
//! let (tok, model) = (AutoTokenizer::from_pretrained(id)?, AutoModelForCausalLM::from_pretrained(id)?);
//! let config = GenerationConfig::from_pretrained(id)?.max_new_tokens(64);
//! let chat = tok.encode_chat(&[("user", "Name three rivers.")], &ChatTemplateOptions::new().add_generation_prompt(true))?;
//! let out = model.generate_output(&chat, &config, Some(&tok))?;
//! println!("{}", tok.decode(out.generated(0), true)?);
//! # Ok(()) }
//! ```
//!
//! Encoder-decoders translate and summarise through [`Seq2SeqGenerationMixin`] (greedy,
//! sampling or beam search):
//!
//! ```no_run
//! use autocandle::{AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig, Seq2SeqGenerationMixin};
//! # fn main() -> autocandle::Result<()> {
//! let id = "google-t5/t5-small";
//! let (tok, model) = (AutoTokenizer::from_pretrained(id)?, AutoModelForSeq2SeqLM::from_pretrained(id)?);
//! let config = GenerationConfig::from_pretrained(id)?.max_new_tokens(40).num_beams(4);
//! let german = model.generate_text(&tok, &["translate English to German: The house is wonderful."], &config)?;
//! println!("{}", german[0]);
//! # Ok(()) }
//! ```
//!
//! Image models take `pixel_values` from [`AutoImageProcessor`]; [`AutoProcessor`] pairs it
//! with the tokenizer for image-text models:
//!
//! ```no_run
//! use autocandle::{open_image, AutoModelForZeroShotImageClassification, AutoProcessor, Device, EncodeOptions, Padding};
//! # fn main() -> autocandle::Result<()> {
//! let id = "openai/clip-vit-base-patch32";
//! let processor = AutoProcessor::from_pretrained(id)?;
//! let model = AutoModelForZeroShotImageClassification::from_pretrained(id)?;
//! let labels = ["a photo of a cat", "a photo of a dog"];
//! let padding = EncodeOptions { padding: Padding::Longest, ..EncodeOptions::default() };
//! let inputs = processor.process(&labels, &[open_image("cat.jpg")?], &padding, &Device::Cpu)?;
//! let scores: Vec<Vec<f32>> = model.forward(&inputs)?.logits_per_image.to_vec2()?; // [images, labels]
//! # Ok(()) }
//! ```
//!
//! Architectures are compiled in through features (`bert`, ..., or `all`).

pub mod catalog;
mod chat;
mod config;
mod generation;
mod image_processor;
mod mappings;
mod model;
pub mod pipelines;
mod processor;
mod tokenizer;

/// The core crate, for architecture authors (`LoadModel`, `AutoRegister`, ...).
pub use autocandle_core as core;
pub use autocandle_core::{
    hub, registry, weights, Activation, ArchConfig, BaseModelOutput, CausalLmOutput, DTypeChoice, EncoderOutput, Error,
    ForCausalLm, ForImageClassification, ForMaskedImageModeling, ForMaskedLm, ForMultipleChoice,
    ForNextSentencePrediction, ForPreTraining, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification,
    ForTextEncoding, ForTokenClassification, ForZeroShotImageClassification, ImageClassifierOutput, LoadOptions,
    Loaded, MaskedImageModelingOutput, MaskedLmOutput, Model, ModelInputs, ModelOutput, MultipleChoiceOutput,
    NextSentencePredictorOutput, PreTrainedModel, PreTrainingOutput, PretrainedConfig, QuestionAnsweringOutput, Result,
    Seq2SeqCache, Seq2SeqLmOutput, SequenceClassifierOutput, Task, TokenClassifierOutput,
    ZeroShotImageClassificationOutput,
};
/// What `from_pretrained_with` did with the weights (`transformers`' `output_loading_info`).
pub use autocandle_core::{LoadingReport, MismatchedKey};
/// candle's tensor types, so users need no direct candle dependency.
pub use candle_core::{DType, Device, Tensor};

/// Text generation: the config, the decoding loop, logits processors and stopping criteria.
pub use autocandle_core::generation::{
    generate_seq2seq, logits, EarlyStopping, FinishReason, GenerateOptions, GenerateOutput, GenerationConfig,
    Generator, IntoPrompts, LogitsProcessor, Prompts, StepTokens, StopStringCriteria, StoppingCriteria, TokenDecoder,
};
pub use chat::{ChatMessage, ChatTemplateOptions, ToChatMessage};
pub use config::AutoConfig;
pub use generation::{GenerationMixin, Seq2SeqGenerationMixin, TextStream, TextStreamer};
pub use image_processor::{
    image, open_image, AutoImageProcessor, DynamicImage, ImageProcessor, ImageProcessorClass, ImageProcessorConfig,
    ImageSize, Resampling,
};
// One `AutoModel*` class per task of the task table (`autocandle-tasks`); those whose task has
// no model trait yet resolve the model type and explain.
pub use model::classes::*;
pub use model::{TaskModel, AUTO_MODEL_CLASSES};
pub use pipelines::{pipeline, pipeline_with, Pipeline};
pub use processor::{AutoProcessor, Processor};
pub use tokenizer::{AutoTokenizer, BatchEncoding, EncodeOptions, Padding, PreTrainedTokenizer};

// Each enabled architecture crate is re-exported so that the linker keeps its registrations.
#[cfg(feature = "bart")]
pub use autocandle_bart as bart;
#[cfg(feature = "bert")]
pub use autocandle_bert as bert;
#[cfg(feature = "clip")]
pub use autocandle_clip as clip;
#[cfg(feature = "distilbert")]
pub use autocandle_distilbert as distilbert;
#[cfg(feature = "gemma")]
pub use autocandle_gemma as gemma;
#[cfg(feature = "gemma2")]
pub use autocandle_gemma2 as gemma2;
#[cfg(feature = "gpt2")]
pub use autocandle_gpt2 as gpt2;
#[cfg(feature = "llama")]
pub use autocandle_llama as llama;
#[cfg(feature = "mistral")]
pub use autocandle_mistral as mistral;
#[cfg(feature = "mt5")]
pub use autocandle_mt5 as mt5;
#[cfg(feature = "phi3")]
pub use autocandle_phi3 as phi3;
#[cfg(feature = "qwen2")]
pub use autocandle_qwen2 as qwen2;
#[cfg(feature = "qwen3")]
pub use autocandle_qwen3 as qwen3;
#[cfg(feature = "roberta")]
pub use autocandle_roberta as roberta;
#[cfg(feature = "siglip")]
pub use autocandle_siglip as siglip;
#[cfg(feature = "t5")]
pub use autocandle_t5 as t5;
#[cfg(feature = "vit")]
pub use autocandle_vit as vit;
