//! `autocandle automatic-speech-recognition`: the text of each audio file, optionally in
//! chunks with character, word or segment timestamps, with a progress bar over the chunks
//! of a long file.

use std::cell::OnceCell;
use std::time::Duration;

use anyhow::Result;
use autocandle::pipelines::{AsrOptions, AutomaticSpeechRecognitionPipeline, ReturnTimestamps, Transcription};
use autocandle::LoadOptions;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::{table, Output};
use crate::ui;

/// Transcribe speech (INPUT = audio files: WAV, FLAC, MP3, Ogg Vorbis) with a CTC model
/// (wav2vec2, HuBERT, WavLM, ...) or Whisper
#[derive(Debug, Clone, Args)]
pub struct Asr {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Whisper: the spoken language (`en`, `english`) [default: detected]
    #[arg(long, value_name = "LANG")]
    pub language: Option<String>,
    /// Whisper: transcribe, or translate to English [default: transcribe]
    #[arg(long, value_enum, value_name = "TASK")]
    pub task: Option<WhisperTask>,
    /// Return timestamps: `--return-timestamps=char` or `=word` (CTC models), `=segment`
    /// (Whisper); alone, the model's kind: word for CTC, segment for Whisper
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto"
    )]
    pub return_timestamps: Option<TimestampKind>,
    /// CTC models: transcribe in chunks of this many seconds (for long files)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub chunk_length_s: Option<f64>,
    /// CTC models: seconds of overlap on each side of a chunk, or `LEFT,RIGHT`
    /// [default: chunk length / 6]
    #[arg(long, value_name = "SECONDS[,SECONDS]", value_parser = parse_stride, requires = "chunk_length_s")]
    pub stride_length_s: Option<(f64, f64)>,
    /// Whisper: the most tokens generated per 30 s window [default: the generation config's]
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Whisper: beams of the beam search; 1 decodes greedily [default: the generation
    /// config's, else 5 as transformers' pipeline]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub num_beams: Option<u64>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// `--task` of Whisper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhisperTask {
    Transcribe,
    Translate,
}

/// `--return-timestamps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimestampKind {
    /// The model's kind: word for CTC models, segment for Whisper.
    Auto,
    Char,
    Word,
    #[value(alias = "true")]
    Segment,
}

/// A positive number of seconds.
pub fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("use a positive number of seconds, such as 30 or 2.5".to_owned()),
    }
}

/// `S` (both sides) or `LEFT,RIGHT`, seconds >= 0.
pub fn parse_stride(s: &str) -> std::result::Result<(f64, f64), String> {
    let side = |v: &str| match v.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("use seconds >= 0: one number for both sides, or LEFT,RIGHT".to_owned()),
    };
    match s.split_once(',') {
        Some((left, right)) => Ok((side(left)?, side(right)?)),
        None => side(s).map(|v| (v, v)),
    }
}

impl Asr {
    fn options(&self, whisper: bool) -> AsrOptions {
        let return_timestamps = self.return_timestamps.map(|kind| match kind {
            TimestampKind::Auto if whisper => ReturnTimestamps::Segments,
            TimestampKind::Auto | TimestampKind::Word => ReturnTimestamps::Word,
            TimestampKind::Char => ReturnTimestamps::Char,
            TimestampKind::Segment => ReturnTimestamps::Segments,
        });
        AsrOptions {
            chunk_length_s: self.chunk_length_s,
            stride_length_s: self.stride_length_s,
            return_timestamps,
            language: self.language.clone(),
            task: self.task.map(|t| match t {
                WhisperTask::Transcribe => "transcribe".to_owned(),
                WhisperTask::Translate => "translate".to_owned(),
            }),
            max_new_tokens: self.max_new_tokens,
            num_beams: self.num_beams.map(|n| n as usize),
        }
    }
}

impl TaskCommand for Asr {
    const TASK: &'static str = "automatic-speech-recognition";
    type Pipeline = AutomaticSpeechRecognitionPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<AutomaticSpeechRecognitionPipeline> {
        AutomaticSpeechRecognitionPipeline::new_with(model, opts)
    }

    fn check_loaded(&self, pipeline: &AutomaticSpeechRecognitionPipeline, model: &str) -> Result<()> {
        let whisper = pipeline.is_whisper();
        if !whisper && (self.language.is_some() || self.task.is_some()) {
            anyhow::bail!("--language and --task are Whisper's options, and `{model}` is a CTC model: leave them out");
        }
        if whisper && self.chunk_length_s.is_some() {
            anyhow::bail!(
                "--chunk-length-s is for CTC models; `{model}` is Whisper, which transcribes audio longer than 30 s \
                 window after window by itself: leave it out"
            );
        }
        Ok(())
    }

    fn run(&self, pipeline: &AutomaticSpeechRecognitionPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts = self.options(pipeline.is_whisper());
        let bar = Progress::new(input);
        let transcription = pipeline.call_with_progress(input, &opts, &mut |done, total| bar.update(done, total))?;
        drop(bar);
        out.line(input)?;
        print_transcription(&transcription, out)?;
        Ok(transcription.to_json())
    }
}

/// The text, then one `start-end  text` line per chunk.
fn print_transcription(transcription: &Transcription, out: &mut Output) -> Result<()> {
    out.line(format!("  {}", transcription.text))?;
    if let Some(chunks) = &transcription.chunks {
        let time = |t: Option<f64>| t.map_or_else(|| "?".to_owned(), |t| format!("{t:.2}"));
        let rows: Vec<Vec<String>> = chunks
            .iter()
            .map(|c| vec![format!("{}-{}", time(c.timestamp.0), time(c.timestamp.1)), c.text.clone()])
            .collect();
        for line in table(&rows) {
            out.line(line)?;
        }
    }
    Ok(())
}

/// A bar over the chunks of one file, shown when there are several and stderr is a terminal.
struct Progress {
    bar: OnceCell<ProgressBar>,
    name: String,
}

impl Progress {
    fn new(input: &str) -> Self {
        Self { bar: OnceCell::new(), name: crate::output::short(input, 40) }
    }

    fn update(&self, done: usize, total: usize) {
        if total < 2 || !ui::interactive() {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let bar = ProgressBar::new(total as u64).with_message(self.name.clone());
            if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} chunks {elapsed}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        bar.set_position(done as u64);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}
