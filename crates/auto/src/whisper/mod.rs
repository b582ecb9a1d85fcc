//! Whisper generation as `transformers` 5 does it (`WhisperGenerationMixin.generate`): the
//! decoder prompt `<|startoftranscript|><|lang|><|task|>` (and `<|notimestamps|>` unless
//! timestamps are asked), language detection, `suppress_tokens` / `begin_suppress_tokens`,
//! the timestamp rules and segments, long-form transcription by sequential windows,
//! `prompt_ids` and `condition_on_prev_tokens`; greedy decoding, beam search and sampling run
//! through `autocandle_generation`.
//!
//! ```no_run
//! use autocandle::whisper::{whisper_generate, WhisperGenerateOptions, WhisperGenerationConfig};
//! use autocandle::{AutoModelForSpeechSeq2Seq, ModelInputs};
//! # fn demo(features: autocandle::Tensor) -> autocandle::Result<()> {
//! let id = "openai/whisper-tiny";
//! let model = AutoModelForSpeechSeq2Seq::from_pretrained(id)?;
//! let config = WhisperGenerationConfig::from_pretrained(id)?;
//! let opts = WhisperGenerateOptions { language: Some("en".into()), return_timestamps: Some(true), ..Default::default() };
//! let out = whisper_generate(&*model, &config, &ModelInputs::from_input_features(features), &opts)?;
//! for segment in &out[0].segments {
//!     println!("{:.2}-{:.2}: {:?}", segment.start, segment.end, segment.tokens);
//! }
//! # Ok(()) }
//! ```
//!
//! Not implemented: temperature fallback with `compression_ratio_threshold` /
//! `logprob_threshold` / `no_speech_threshold`, token-level timestamps
//! (`return_token_timestamps`, `alignment_heads`).

mod config;
mod generate;
mod processors;

/// The Whisper architecture (`autocandle-whisper`: `WhisperConfig`, `WhisperModel`,
/// `WhisperForConditionalGeneration`, ...), which the facade would otherwise export as
/// `autocandle::whisper`.
#[cfg(feature = "whisper")]
pub use autocandle_whisper::*;

pub use config::WhisperGenerationConfig;
pub use generate::{whisper_generate, PromptCondition, WhisperGenerateOptions, WhisperSegment, WhisperTranscription};
pub use processors::{SuppressTokens, SuppressTokensAtBegin, WhisperTimestamps};

use autocandle_core::Result;

use crate::tokenizer::PreTrainedTokenizer;

/// The text of `tokens` (a transcription or a segment): timestamp tokens dropped, special
/// tokens skipped, as `tokenizer.decode(ids, skip_special_tokens=True)` of Whisper.
pub fn decode_text(
    tokenizer: &PreTrainedTokenizer,
    config: &WhisperGenerationConfig,
    tokens: &[u32],
) -> Result<String> {
    let begin = config.timestamp_begin().unwrap_or(u32::MAX);
    let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < begin).collect();
    tokenizer.decode(&text, true)
}
