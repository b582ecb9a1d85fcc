//! The automatic-speech-recognition pipeline (`transformers.AutomaticSpeechRecognitionPipeline`):
//! CTC models (wav2vec2, HuBERT, WavLM, ... through `AutoModelForCTC` and the CTC tokenizer),
//! whole files or in overlapping chunks (`chunk_length_s` / `stride_length_s`) with character
//! or word timestamps, and Whisper (`AutoModelForSpeechSeq2Seq` and Whisper's generation) with
//! `language`, `task`, segment timestamps and sequential long-form transcription of audio
//! longer than 30 s.

use autocandle_core::{Error, ForCtc, ForSpeechSeq2Seq, LoadOptions, PretrainedConfig, Result};
use candle_core::{DType, Device, IndexOp};
use serde_json::{json, Value};

use super::AudioInput;
use crate::audio::{AudioFeatureOptions, AudioFeatures, AudioPadding, AutoFeatureExtractor, FeatureExtractor};
use crate::whisper::{whisper_generate, WhisperGenerateOptions, WhisperGenerationConfig};
use crate::Wav2Vec2CtcTokenizer;
use crate::{AutoConfig, AutoModelForCTC, AutoModelForSpeechSeq2Seq, AutoTokenizer, PreTrainedTokenizer};

/// Which timestamps [`AutomaticSpeechRecognitionPipeline::call_with`] returns in
/// [`Transcription::chunks`] (`return_timestamps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnTimestamps {
    /// Whisper's segments (`return_timestamps=True`): spans of text with their start and end.
    Segments,
    /// One chunk per character (CTC models, `"char"`).
    Char,
    /// One chunk per word (CTC models, `"word"`).
    Word,
}

/// Options of [`AutomaticSpeechRecognitionPipeline::call_with`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AsrOptions {
    /// Cut the audio into chunks of this many seconds, run each alone and join the texts
    /// (CTC models; rounded to a whole number of logit frames). `None` or 0: the whole file.
    pub chunk_length_s: Option<f64>,
    /// Seconds of overlap on the (left, right) of each chunk whose logits are dropped
    /// (default `chunk_length_s / 6` on both sides).
    pub stride_length_s: Option<(f64, f64)>,
    /// Timestamps to return (none by default).
    pub return_timestamps: Option<ReturnTimestamps>,
    /// Whisper: the spoken language (`"en"`, `"english"`, `"<|en|>"`); detected when `None`.
    pub language: Option<String>,
    /// Whisper: `"transcribe"` (default) or `"translate"` (to English).
    pub task: Option<String>,
    /// Whisper: the most tokens to generate per 30 s window (default: the generation config's
    /// `max_new_tokens` or `max_length`, else 256 as `transformers`' pipeline).
    pub max_new_tokens: Option<usize>,
    /// Whisper: beams of the beam search (default: the generation config's `num_beams`, else 5
    /// as `transformers`' pipeline, following OpenAI's Whisper; 1 decodes greedily).
    pub num_beams: Option<usize>,
}

/// `transformers`' ASR pipeline default `num_beams` (`_default_generation_config`).
const DEFAULT_NUM_BEAMS: usize = 5;
/// `transformers`' ASR pipeline default `max_new_tokens`.
const DEFAULT_MAX_NEW_TOKENS: usize = 256;

/// A span of the transcription with its time in seconds (`{"text", "timestamp"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionChunk {
    /// The character, word or segment.
    pub text: String,
    /// (start, end) in seconds; Whisper may leave either unknown (`None`, JSON `null`).
    pub timestamp: (Option<f64>, Option<f64>),
}

/// What the pipeline returns for one input (`{"text", "chunks"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The recognised text.
    pub text: String,
    /// With [`AsrOptions::return_timestamps`]: the characters, words or segments.
    pub chunks: Option<Vec<TranscriptionChunk>>,
}

impl Transcription {
    /// The JSON `transformers` returns: `{"text": ...}` and, with timestamps,
    /// `"chunks": [{"text": ..., "timestamp": [start, end]}, ...]`.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "text": self.text });
        if let Some(chunks) = &self.chunks {
            value["chunks"] =
                chunks.iter().map(|c| json!({ "text": c.text, "timestamp": [c.timestamp.0, c.timestamp.1] })).collect();
        }
        value
    }
}

/// The model behind the pipeline (`self.type` in `transformers`: `ctc` or `seq2seq_whisper`).
enum Recognizer {
    Ctc(Box<CtcParts>),
    Whisper(Box<WhisperParts>),
}

struct CtcParts {
    model: Box<dyn ForCtc>,
    tokenizer: Wav2Vec2CtcTokenizer,
    /// Samples per logit frame (`inputs_to_logits_ratio`).
    align_to: usize,
}

struct WhisperParts {
    model: Box<dyn ForSpeechSeq2Seq>,
    tokenizer: PreTrainedTokenizer,
    generation: WhisperGenerationConfig,
    /// Seconds per timestamp step: the extractor's `chunk_length` / `max_source_positions`.
    time_precision: f64,
    /// Samples of one 30 s window (`n_samples`): longer audio is transcribed long-form.
    n_samples: usize,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recognizer::Ctc(parts) => f.debug_struct("Ctc").field("align_to", &parts.align_to).finish(),
            Recognizer::Whisper(parts) => f.debug_struct("Whisper").field("n_samples", &parts.n_samples).finish(),
        }
    }
}

/// Transcribe speech: a CTC model (wav2vec2 and kin) or Whisper.
///
/// ```no_run
/// use autocandle::pipelines::{AsrOptions, AutomaticSpeechRecognitionPipeline, ReturnTimestamps};
/// # fn main() -> autocandle::Result<()> {
/// let asr = AutomaticSpeechRecognitionPipeline::new("facebook/wav2vec2-base-960h")?;
/// println!("{}", asr.call("speech.flac")?.text);
/// // A long file in 10 s chunks (2 s of overlap each side), with word timestamps.
/// let opts = AsrOptions {
///     chunk_length_s: Some(10.0),
///     return_timestamps: Some(ReturnTimestamps::Word),
///     ..Default::default()
/// };
/// for word in asr.call_with("lecture.wav", &opts)?.chunks.unwrap_or_default() {
///     println!("{:?} {}", word.timestamp, word.text);
/// }
/// // Whisper: translate French speech to English text, with segment timestamps.
/// let whisper = AutomaticSpeechRecognitionPipeline::new("openai/whisper-tiny")?;
/// let opts = AsrOptions {
///     language: Some("fr".into()),
///     task: Some("translate".into()),
///     return_timestamps: Some(ReturnTimestamps::Segments),
///     ..Default::default()
/// };
/// println!("{}", whisper.call_with("interview.mp3", &opts)?.to_json());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AutomaticSpeechRecognitionPipeline {
    extractor: FeatureExtractor,
    recognizer: Recognizer,
    device: Device,
}

impl AutomaticSpeechRecognitionPipeline {
    /// Load the model at `model` (Whisper through `AutoModelForSpeechSeq2Seq`, other models
    /// through `AutoModelForCTC`), its feature extractor and its tokenizer.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`AutomaticSpeechRecognitionPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("automatic-speech-recognition", model, || {
            let config = AutoConfig::from_pretrained_with(model, opts)?.value;
            let extractor = AutoFeatureExtractor::from_pretrained_with(model, opts)?;
            let recognizer = if config.model_type() == "whisper" {
                let FeatureExtractor::Whisper(whisper) = &extractor else {
                    return Err(Error::config(
                        "whisper",
                        format!(
                            "`{model}` is a Whisper model but its preprocessor_config.json is not a \
                             WhisperFeatureExtractor: give the model folder with Whisper's feature extractor"
                        ),
                    ));
                };
                let chunk_length = whisper.config().chunk_length as f64;
                let max_source_positions = config_usize(&config, "max_source_positions").unwrap_or(1500);
                Recognizer::Whisper(Box::new(WhisperParts {
                    model: AutoModelForSpeechSeq2Seq::from_pretrained_with(model, opts)?.value,
                    tokenizer: AutoTokenizer::from_pretrained_with(model, opts)?,
                    generation: WhisperGenerationConfig::from_pretrained_with(model, opts)?,
                    time_precision: chunk_length / max_source_positions.max(1) as f64,
                    n_samples: whisper.n_samples(),
                }))
            } else {
                Recognizer::Ctc(Box::new(CtcParts {
                    model: AutoModelForCTC::from_pretrained_with(model, opts)?.value,
                    tokenizer: Wav2Vec2CtcTokenizer::from_pretrained_with(model, opts)?,
                    align_to: inputs_to_logits_ratio(&config),
                }))
            };
            Ok(Self { extractor, recognizer, device: opts.device.clone() })
        })
    }

    /// The rate (Hz) audio is resampled to: the feature extractor's `sampling_rate`.
    pub fn sampling_rate(&self) -> u32 {
        self.extractor.sampling_rate()
    }

    /// Whether the model is Whisper (else a CTC model).
    pub fn is_whisper(&self) -> bool {
        matches!(self.recognizer, Recognizer::Whisper(_))
    }

    /// The text of `audio` (a file path or [`AudioInput`]).
    pub fn call(&self, audio: impl Into<AudioInput>) -> Result<Transcription> {
        self.call_with(audio, &AsrOptions::default())
    }

    /// The text of `audio` with options (chunking, timestamps, Whisper's language and task).
    pub fn call_with(&self, audio: impl Into<AudioInput>, opts: &AsrOptions) -> Result<Transcription> {
        self.call_with_progress(audio, opts, &mut |_, _| {})
    }

    /// [`AutomaticSpeechRecognitionPipeline::call_with`], calling `progress(done, total)` as
    /// the chunks of a chunked transcription finish (once with `(0, total)` first).
    pub fn call_with_progress(
        &self,
        audio: impl Into<AudioInput>,
        opts: &AsrOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Transcription> {
        let samples = audio.into().load(self.sampling_rate())?;
        self.check_options(opts)?;
        match &self.recognizer {
            Recognizer::Ctc(parts) => {
                self.transcribe_ctc(parts.model.as_ref(), &parts.tokenizer, parts.align_to, &samples, opts, progress)
            }
            Recognizer::Whisper(parts) => self.transcribe_whisper(parts, &samples, opts, progress),
        }
    }

    /// `_sanitize_parameters`' checks, before any work.
    fn check_options(&self, opts: &AsrOptions) -> Result<()> {
        let whisper = self.is_whisper();
        match (opts.return_timestamps, whisper) {
            (Some(ReturnTimestamps::Segments), false) => {
                return Err(Error::input(
                    "CTC can either predict character level timestamps, or word level timestamps: set \
                     return_timestamps to char or word",
                ))
            }
            (Some(ReturnTimestamps::Char), true) => {
                return Err(Error::input(
                    "Whisper cannot return char timestamps, only segment level timestamps: use \
                     return_timestamps segments (`true`)",
                ))
            }
            (Some(ReturnTimestamps::Word), true) => {
                return Err(Error::Unsupported(
                    "Whisper's word timestamps (cross-attention dynamic time warping) are not implemented in \
                     autocandle yet: use segment timestamps"
                        .to_owned(),
                ))
            }
            _ => {}
        }
        if !whisper && (opts.language.is_some() || opts.task.is_some()) {
            return Err(Error::input(
                "language and task are Whisper's generation options: a CTC model transcribes in the language \
                 it was trained on",
            ));
        }
        if let Some(chunk) = opts.chunk_length_s {
            if !chunk.is_finite() || chunk < 0.0 {
                return Err(Error::input(format!("chunk_length_s must be a positive number of seconds, got {chunk}")));
            }
            if whisper && chunk > 0.0 {
                return Err(Error::Unsupported(
                    "chunked Whisper transcription (chunk_length_s) is not implemented in autocandle: leave it out, \
                     and audio longer than 30 s is transcribed sequentially (Whisper's long-form generation, \
                     transformers' default)"
                        .to_owned(),
                ));
            }
        }
        if let Some((left, right)) = opts.stride_length_s {
            if !(left.is_finite() && right.is_finite() && left >= 0.0 && right >= 0.0) {
                return Err(Error::input(format!(
                    "stride_length_s must be non-negative seconds, got ({left}, {right})"
                )));
            }
        }
        Ok(())
    }

    /// Feature-extract one stretch of audio and move it to the model's device.
    fn features(&self, samples: &[f32], opts: &AudioFeatureOptions) -> Result<AudioFeatures> {
        self.extractor.extract(&[samples], opts)
    }

    /// The argmax token of every logit frame of one stretch of audio (`[frames]`).
    fn ctc_tokens(&self, model: &dyn ForCtc, samples: &[f32]) -> Result<Vec<u32>> {
        let opts = AudioFeatureOptions { return_attention_mask: Some(true), ..Default::default() };
        let inputs = self.features(samples, &opts)?.to_model_inputs().to_device(&self.device)?;
        let logits = model.forward(&inputs)?.logits.to_dtype(DType::F32)?;
        Ok(logits.i(0)?.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?)
    }

    fn transcribe_ctc(
        &self,
        model: &dyn ForCtc,
        tokenizer: &Wav2Vec2CtcTokenizer,
        align_to: usize,
        samples: &[f32],
        opts: &AsrOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Transcription> {
        let rate = self.sampling_rate();
        let tokens = match opts.chunk_length_s.filter(|c| *c > 0.0) {
            None => {
                progress(0, 1);
                let tokens = self.ctc_tokens(model, samples)?;
                progress(1, 1);
                tokens
            }
            Some(chunk_length_s) => {
                let plan = ChunkPlan::new(chunk_length_s, opts.stride_length_s, rate, align_to)?;
                let chunks = plan.chunks(samples.len());
                let mut tokens = Vec::new();
                progress(0, chunks.len());
                for (done, chunk) in chunks.iter().enumerate() {
                    let frames = self.ctc_tokens(model, &samples[chunk.start..chunk.end])?;
                    tokens.extend_from_slice(chunk.keep(&frames, align_to));
                    progress(done + 1, chunks.len());
                }
                tokens
            }
        };
        let text = tokenizer.decode(&tokens, false);
        let chunks = match opts.return_timestamps {
            None | Some(ReturnTimestamps::Segments) => None,
            Some(kind) => {
                let decoded = tokenizer.decode_with_offsets(&tokens);
                let seconds = |frame: usize| (frame * align_to) as f64 / f64::from(rate);
                Some(if kind == ReturnTimestamps::Char {
                    decoded
                        .char_offsets
                        .iter()
                        .map(|c| TranscriptionChunk {
                            text: c.char.clone(),
                            timestamp: (Some(seconds(c.start_offset)), Some(seconds(c.end_offset))),
                        })
                        .collect()
                } else {
                    decoded
                        .word_offsets
                        .iter()
                        .map(|w| TranscriptionChunk {
                            text: w.word.clone(),
                            timestamp: (Some(seconds(w.start_offset)), Some(seconds(w.end_offset))),
                        })
                        .collect()
                })
            }
        };
        Ok(Transcription { text, chunks })
    }

    fn transcribe_whisper(
        &self,
        parts: &WhisperParts,
        samples: &[f32],
        opts: &AsrOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Transcription> {
        // Audio longer than one window: unpadded features, which Whisper's generation
        // transcribes window after window (transformers' long-form path).
        let features_opts = if samples.len() > parts.n_samples {
            AudioFeatureOptions {
                padding: AudioPadding::Longest,
                truncation: Some(false),
                return_attention_mask: Some(true),
                ..Default::default()
            }
        } else {
            AudioFeatureOptions { return_attention_mask: Some(true), ..Default::default() }
        };
        let inputs = self.features(samples, &features_opts)?.to_model_inputs().to_device(&self.device)?;
        // The generation config's `return_timestamps` turns them on too (`_sanitize_parameters`).
        let return_timestamps = opts.return_timestamps == Some(ReturnTimestamps::Segments)
            || parts.generation.return_timestamps == Some(true);
        if samples.len() > parts.n_samples && !return_timestamps {
            // `_set_return_timestamps` of `transformers`' Whisper generation.
            return Err(Error::input(format!(
                "the audio is longer than Whisper's {} s window, which needs long-form transcription, and long-form \
                 transcription predicts timestamp tokens: ask for segment timestamps (return_timestamps, \
                 `--return-timestamps`), or give at most {} s of audio",
                parts.n_samples as f64 / f64::from(self.sampling_rate()),
                parts.n_samples as f64 / f64::from(self.sampling_rate()),
            )));
        }
        let mut gen_opts = WhisperGenerateOptions {
            language: opts.language.clone(),
            task: opts.task.clone(),
            return_timestamps: return_timestamps.then_some(true),
            ..Default::default()
        };
        // The pipeline's generation defaults (`_default_generation_config`: 5 beams, 256 new
        // tokens) for what the checkpoint's generation config leaves at `generate`'s defaults.
        let checkpoint = &parts.generation.generation;
        if matches!(checkpoint.num_beams, None | Some(1)) {
            gen_opts.generation.num_beams = Some(DEFAULT_NUM_BEAMS);
        }
        if checkpoint.max_new_tokens.is_none() && matches!(checkpoint.max_length, None | Some(20)) {
            gen_opts.generation.max_new_tokens = Some(DEFAULT_MAX_NEW_TOKENS);
        }
        if let Some(num_beams) = opts.num_beams {
            gen_opts.generation.num_beams = Some(num_beams.max(1));
        }
        if let Some(max_new_tokens) = opts.max_new_tokens {
            gen_opts.generation.max_new_tokens = Some(max_new_tokens);
        }
        progress(0, 1);
        let transcriptions = whisper_generate(parts.model.as_ref(), &parts.generation, &inputs, &gen_opts)?;
        progress(1, 1);
        let tokens = transcriptions
            .into_iter()
            .next()
            .map(|t| t.tokens)
            .ok_or_else(|| Error::input("Whisper's generation returned no transcription"))?;
        decode_whisper(&parts.tokenizer, &tokens, parts.time_precision, return_timestamps)
    }
}

/// Where chunked CTC transcription cuts the audio (`chunk_iter`), in samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ChunkPlan {
    chunk_len: usize,
    stride_left: usize,
    stride_right: usize,
}

/// One chunk: `samples[start..end]`, with `left` / `right` samples of stride to drop.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Chunk {
    start: usize,
    end: usize,
    left: usize,
    right: usize,
}

/// Python's `round` (half to even), as an integer.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

impl ChunkPlan {
    /// `preprocess`' sizes: the chunk and strides rounded to whole logit frames (`align_to`
    /// samples each); the stride defaults to `chunk_length_s / 6` per side.
    fn new(chunk_length_s: f64, stride_length_s: Option<(f64, f64)>, rate: u32, align_to: usize) -> Result<Self> {
        let (left_s, right_s) = stride_length_s.unwrap_or((chunk_length_s / 6.0, chunk_length_s / 6.0));
        let align = align_to.max(1) as f64;
        let samples = |seconds: f64| -> Result<usize> {
            let n = py_round(seconds * f64::from(rate) / align) * align as i64;
            usize::try_from(n).map_err(|_| Error::input(format!("{seconds} s is not a usable chunk or stride length")))
        };
        let plan = Self {
            chunk_len: samples(chunk_length_s)?,
            stride_left: samples(left_s)?,
            stride_right: samples(right_s)?,
        };
        if plan.chunk_len < plan.stride_left + plan.stride_right {
            return Err(Error::input(format!(
                "chunk length must be superior to stride length: chunk_length_s {chunk_length_s} gives {} samples, \
                 the strides {} + {}",
                plan.chunk_len, plan.stride_left, plan.stride_right
            )));
        }
        if plan.chunk_len == plan.stride_left + plan.stride_right {
            return Err(Error::input(format!(
                "chunk_length_s {chunk_length_s} leaves nothing between the strides ({left_s} s + {right_s} s, \
                 rounded to {} logit frames of {align_to} samples): use a longer chunk or shorter strides",
                plan.chunk_len / align_to.max(1)
            )));
        }
        Ok(plan)
    }

    /// The chunks of `len` samples, as `chunk_iter` yields them.
    fn chunks(&self, len: usize) -> Vec<Chunk> {
        let step = self.chunk_len - self.stride_left - self.stride_right;
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < len {
            let end = start + self.chunk_len;
            let is_last = end >= len;
            let chunk = Chunk {
                start,
                end: end.min(len),
                left: if start == 0 { 0 } else { self.stride_left },
                right: if is_last { 0 } else { self.stride_right },
            };
            if chunk.end - chunk.start > chunk.left {
                chunks.push(chunk);
            }
            if is_last {
                break;
            }
            start += step;
        }
        chunks
    }
}

impl Chunk {
    /// The tokens of this chunk's frames without its strides (`rescale_stride` and the slice
    /// in `postprocess`).
    fn keep<'a>(&self, tokens: &'a [u32], align_to: usize) -> &'a [u32] {
        let input_n = (self.end - self.start) as f64;
        let token_n = py_round(input_n / align_to.max(1) as f64);
        let left = py_round(self.left as f64 / input_n * token_n as f64);
        let right = py_round(self.right as f64 / input_n * token_n as f64);
        // numpy's slice `[left:token_n - right]`, clamped to the frames there are.
        let clamp = |i: i64| i.clamp(0, tokens.len() as i64) as usize;
        let (from, to) = (clamp(left), clamp(token_n - right));
        if from >= to {
            &[]
        } else {
            &tokens[from..to]
        }
    }
}

/// `inputs_to_logits_ratio`: the product of the feature encoder's `conv_stride` (samples per
/// logit frame), 1 for a config without one.
fn inputs_to_logits_ratio(config: &PretrainedConfig) -> usize {
    config
        .raw()
        .get("conv_stride")
        .and_then(Value::as_array)
        .map_or(1, |strides| strides.iter().filter_map(Value::as_u64).product::<u64>().max(1) as usize)
}

fn config_usize(config: &PretrainedConfig, key: &str) -> Option<usize> {
    config.raw().get(key).and_then(Value::as_u64).map(|v| v as usize)
}

/// Python's `round(x, 2)`.
fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// `_decode_asr` of `transformers`' Whisper tokenizer for one un-chunked output (a 30 s
/// window, or the concatenated segments of long-form generation): text tokens between
/// timestamp pairs become segments; timestamps restart at 0 in each window, which the
/// running offset (`prev_segments_len`) undoes.
fn decode_whisper(
    tokenizer: &PreTrainedTokenizer,
    tokens: &[u32],
    time_precision: f64,
    return_timestamps: bool,
) -> Result<Transcription> {
    const SEGMENT_SIZE: f64 = 1500.0;
    let id = |token: &str| {
        tokenizer.token_to_id(token).ok_or_else(|| {
            Error::config("whisper", format!("the Whisper tokenizer has no `{token}` token: give Whisper's tokenizer"))
        })
    };
    let timestamp_begin = id("<|notimestamps|>")? + 1;
    let special: std::collections::HashSet<u32> = tokenizer
        .backend()
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| id)
        .collect();
    // `_strip_prompt`: a prompt (`<|startofprev|>` ...) ends at `<|startoftranscript|>`.
    let tokens = match (tokenizer.token_to_id("<|startofprev|>"), tokenizer.token_to_id("<|startoftranscript|>")) {
        (Some(prev), Some(start)) if tokens.first() == Some(&prev) => {
            tokens.iter().position(|t| *t == start).map_or(&[][..], |i| &tokens[i..])
        }
        _ => tokens,
    };

    let mut chunks: Vec<TranscriptionChunk> = Vec::new();
    let mut chunk = (None::<f64>, None::<f64>);
    let mut current: Vec<u32> = Vec::new();
    let mut skip = false;
    let (mut cur_max, mut prev_segments_len, mut penultimate) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &token) in tokens.iter().enumerate() {
        if special.contains(&token) {
            continue;
        }
        if token < timestamp_begin {
            current.push(token);
            continue;
        }
        let timestamp = f64::from(token - timestamp_begin) * time_precision;
        if timestamp < cur_max {
            // A new window of long-form generation has started.
            let last_was_single_ending =
                i >= 2 && !(tokens[i - 1] >= timestamp_begin && tokens[i - 2] >= timestamp_begin);
            if last_was_single_ending {
                prev_segments_len += time_precision * SEGMENT_SIZE;
            } else {
                cur_max = penultimate;
                prev_segments_len += penultimate;
            }
        }
        penultimate = cur_max;
        cur_max = timestamp;
        let time = round2(f64::from(token - timestamp_begin) * time_precision + prev_segments_len);
        if skip {
            skip = false;
        } else if chunk.0.is_none() {
            chunk.0 = Some(time);
        } else if chunk.0 != Some(time) {
            chunk.1 = Some(time);
            chunks.push(TranscriptionChunk { text: tokenizer.decode(&current, false)?, timestamp: chunk });
            current.clear();
            chunk = (None, None);
        }
    }
    if !current.is_empty() {
        if return_timestamps {
            tracing::warn!(
                "Whisper did not predict an ending timestamp, which can happen if audio is cut off in the middle of \
                 a word"
            );
        }
        chunks.push(TranscriptionChunk { text: tokenizer.decode(&current, false)?, timestamp: chunk });
    }
    let text = chunks.iter().map(|c| c.text.as_str()).collect();
    Ok(Transcription { text, chunks: return_timestamps.then_some(chunks) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_chunk_iter() {
        // 0.5 s chunks, 0.1 s strides, 80 samples per frame at 16 kHz.
        let plan = ChunkPlan::new(0.5, Some((0.1, 0.1)), 16000, 80).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.chunk_len, plan.stride_left, plan.stride_right), (8000, 1600, 1600));
        let chunks = plan.chunks(20000);
        let starts: Vec<usize> = chunks.iter().map(|c| c.start).collect();
        assert_eq!(starts, vec![0, 4800, 9600, 14400]);
        assert_eq!(chunks[0], Chunk { start: 0, end: 8000, left: 0, right: 1600 });
        assert_eq!(chunks[3], Chunk { start: 14400, end: 20000, left: 1600, right: 0 });
        // Default strides: chunk / 6 each side.
        let default = ChunkPlan::new(0.4, None, 16000, 80).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((default.chunk_len, default.stride_left), (6400, 1040));
        // The strides' frames are dropped.
        let tokens: Vec<u32> = (0..100).collect();
        let kept = chunks[1].keep(&tokens[..99], 80);
        assert_eq!((kept.first(), kept.len()), (Some(&20), 60));
        assert!(ChunkPlan::new(0.1, Some((0.1, 0.1)), 16000, 80).is_err());
    }

    #[test]
    fn python_rounding() {
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
        assert_eq!(round2(1.005), 1.0);
        assert_eq!(round2(0.126), 0.13);
    }
}
