//! autocandle: `transformers`' Auto classes for Rust, on candle.
//!
//! Hand it a Hub id or a folder; it reads `config.json`, picks the architecture and task head
//! registered for the `model_type`, and loads the weights and tokenizer:
//!
//! ```no_run
//! use autocandle::{AutoModelForMaskedLM, AutoTokenizer, Device, EncodeOptions, Padding};
//! # fn main() -> autocandle::Result<()> {
//! let tok = AutoTokenizer::from_pretrained("google-bert/bert-base-uncased")?;
//! let model = AutoModelForMaskedLM::from_pretrained("google-bert/bert-base-uncased")?;
//! let batch = tok.encode_batch(&["Paris is the [MASK] of France.", "Hello"], &EncodeOptions::new().padding(Padding::Longest))?;
//! let out = model.forward(&batch.to_inputs(&Device::Cpu)?)?; // out.logits: [2, T, vocab]
//! # Ok(()) }
//! ```
//!
//! A folder works wherever a Hub id does, and [`pipelines`] do what `transformers.pipeline`
//! does. This one runs offline on the 2-layer BERT with random weights (so its guesses are
//! arbitrary) that the repository keeps in `tests/fixtures`:
//!
//! ```
//! use autocandle::pipelines::FillMaskPipeline;
//! # fn main() -> autocandle::Result<()> {
//! let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bert-masked-lm");
//! let fill_mask = FillMaskPipeline::new(folder)?;
//! let predictions = fill_mask.call("paris is the [MASK] of france.")?; // one list per mask
//! for p in &predictions[0] {
//!     println!("{:.4} {:<8} {}", p.score, p.token_str, p.sequence); // 0.0292 that  paris is the that of france.
//! }
//! assert_eq!(predictions[0].len(), 5);
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
//! let padding = EncodeOptions::new().padding(Padding::Longest);
//! let inputs = processor.process(&labels, &[open_image("cat.jpg")?], &padding, &Device::Cpu)?;
//! let scores: Vec<Vec<f32>> = model.forward(&inputs)?.logits_per_image.to_vec2()?; // [images, labels]
//! # Ok(()) }
//! ```
//!
//! Architectures are compiled in through features, one per architecture (`bert`, `llama`,
//! ...), or by profile (`text`, `vision`, `all`); `default` is `bert`. A model type whose
//! feature is off fails to load with [`Error::NotCompiledIn`], which names the feature.

#![warn(missing_docs)]

pub mod audio;
pub mod catalog;
#[cfg(feature = "chat")]
mod chat;
mod config;
mod cross_encoder;
mod ctc_tokenizer;
mod generation;
mod gguf_tokenizer;
#[cfg(feature = "image")]
pub mod image_processor;
mod mappings;
mod model;
mod panic_guard;
pub mod pipelines;
mod processor;
mod sentence_transformer;
mod tokenizer;
#[cfg(feature = "image")]
pub mod vlm_processor;
pub mod whisper;

/// What architecture authors need: the `autocandle-core` crate (`LoadModel`, `AutoRegister`,
/// `RegisteredConfig`, `KvCache`, `load::select_registration`, ...). Named `arch_api` rather
/// than `core` so that `use autocandle::*;` does not shadow the standard `core` crate.
pub use autocandle_core as arch_api;
/// A ggml block type to keep weights quantized in ([`LoadOptions::quantize`], `--quantize`).
pub use autocandle_core::QuantType;
pub use autocandle_core::{
    hub, registry, weights, Activation, ArchConfig, BaseModelOutput, CausalLmOutput, CtcOutput, DTypeChoice,
    DepthEstimatorOutput, EncoderOutput, Error, ForAudioClassification, ForAudioFrameClassification, ForAudioXVector,
    ForCausalLm, ForCtc, ForDepthEstimation, ForImageClassification, ForImageTextToText, ForMaskedImageModeling,
    ForMaskedLm, ForMultimodalLm, ForMultipleChoice, ForNextSentencePrediction, ForObjectDetection, ForPreTraining,
    ForQuestionAnswering, ForSemanticSegmentation, ForSeq2SeqLm, ForSequenceClassification, ForSpeechSeq2Seq,
    ForTextEncoding, ForTokenClassification, ForVision2Seq, ForZeroShotImageClassification, ImageClassifierOutput,
    ImageTextToTextOutput, LoadOptions, Loaded, MaskedImageModelingOutput, MaskedLmOutput, Model, ModelInputs,
    ModelOutput, MultipleChoiceOutput, NextSentencePredictorOutput, ObjectDetectionOutput, PreTrainedModel,
    PreTrainingOutput, PretrainedConfig, QuestionAnsweringOutput, Result, SemanticSegmenterOutput, Seq2SeqCache,
    Seq2SeqLmOutput, SequenceClassifierOutput, Task, TokenClassifierOutput, XVectorOutput,
    ZeroShotImageClassificationOutput,
};
/// What `from_pretrained_with` did with the weights (`transformers`' `output_loading_info`).
pub use autocandle_core::{LoadingReport, MismatchedKey};
/// candle's tensor types, so users need no direct candle dependency.
pub use candle_core::{DType, Device, Tensor};

/// Audio feature extraction (`transformers`' `AutoFeatureExtractor`); decoding and
/// resampling live in [`audio`].
pub use audio::{AudioFeatureOptions, AudioFeatures, AudioPadding, AutoFeatureExtractor, FeatureExtractor};
/// Text generation: the config, the decoding loop, logits processors and stopping criteria.
pub use autocandle_generation::{
    generate_seq2seq, logits, EarlyStopping, FinishReason, GenerateOptions, GenerateOutput, GenerationConfig,
    Generator, IntoPrompts, LogitsProcessor, Prompts, StepTokens, StopStringCriteria, StoppingCriteria, TokenDecoder,
    WithImages,
};
#[cfg(feature = "chat")]
pub use chat::{ChatMessage, ChatTemplateOptions, ToChatMessage};
pub use config::AutoConfig;
/// sentence-transformers' reranker: text pairs scored by a sequence-classification model.
pub use cross_encoder::{CrossEncoder, PredictOptions, Predictions, RankOptions, RankedDocument, ScoreActivation};
pub use ctc_tokenizer::{CharOffset, CtcDecodeOptions, CtcDecoding, Wav2Vec2CtcTokenizer, WordOffset};
pub use generation::{GenerationMixin, Seq2SeqGenerationMixin, TextStream, TextStreamer};
#[cfg(feature = "image")]
pub use image_processor::{
    image, open_image, AutoImageProcessor, DynamicImage, ImageProcessor, ImageProcessorClass, ImageProcessorConfig,
    ImageSize, ProcessedImages, Resampling,
};
// One `AutoModel*` class per task of the task table (`autocandle-tasks`); those whose task has
// no model trait yet resolve the model type and explain.
pub use model::classes::*;
pub use model::{TaskModel, AUTO_MODEL_CLASSES};
pub use pipelines::{pipeline, pipeline_with, IntoPipelineTask, Pipeline, PipelineTask};
pub use processor::{AutoProcessor, Processor};
/// sentence-transformers models: `modules.json`, prompts, similarity, Matryoshka.
pub use sentence_transformer::{
    DenseModule, PoolingModule, SentenceEncodeOptions, SentenceModule, SentenceTransformer, SimilarityFunction,
    SUPPORTED_MODULES,
};
pub use tokenizer::{AutoTokenizer, BatchEncoding, EncodeOptions, Padding, PreTrainedTokenizer};

// Each enabled architecture crate, re-exported so that the linker keeps its registrations
// (generated from manifests/).
// `autocandle::whisper` is the Whisper generation module, which re-exports the `whisper`
// architecture crate that the generated `architectures` module would put there.
#[allow(unused_imports)]
mod architectures;
#[allow(unused_imports)]
pub use architectures::*;

/// The examples of this crate's `README.md` (its crates.io page), compiled as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
