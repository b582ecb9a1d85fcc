//! `autocandle text-generation`: continue each prompt with a causal LM, streaming the new
//! text to stdout as it is generated; with `--chat`, answer each input as a user message
//! through the model's chat template.

use std::ops::ControlFlow;

use anyhow::{Context, Result};
use autocandle::pipelines::{TextGenerationOptions, TextGenerationPipeline};
use autocandle::{ChatMessage, EarlyStopping, GenerationConfig, LoadOptions};
use clap::Args;
use serde_json::{json, Value};

use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::Output;

/// The generation flags of `text-generation` and `chat`.
#[derive(Debug, Clone, Args)]
pub struct GenerationArgs {
    /// Maximum number of new tokens
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Sample the next token (with --temperature, --top-k, --top-p)
    #[arg(long, conflicts_with = "greedy")]
    pub do_sample: bool,
    /// Always take the most likely token (do_sample=False)
    #[arg(long)]
    pub greedy: bool,
    /// Sampling temperature
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// Sample among the K most likely tokens
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to P
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// Penalty for tokens already in the text (1.0: none)
    #[arg(long, value_name = "R")]
    pub repetition_penalty: Option<f64>,
    /// Seed of the sampler, for reproducible samples
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub beams: BeamArgs,
}

/// The beam search flags of `text-generation`, `chat` and the text-to-text commands.
#[derive(Debug, Clone, Default, Args)]
pub struct BeamArgs {
    /// Number of beams of beam search (1: greedy decoding or sampling); text-generation then
    /// prints the text at the end instead of streaming it
    #[arg(long, value_name = "N")]
    pub num_beams: Option<usize>,
    /// How many sequences per input (at most --num-beams with beam search)
    #[arg(long, value_name = "N")]
    pub num_return_sequences: Option<usize>,
    /// Beam search: > 0 favours longer sequences, < 0 shorter ones [default: 1.0]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub length_penalty: Option<f64>,
    /// Beam search: stop when --num-beams sequences are finished (true), by a heuristic
    /// (false), or only when no better sequence is possible (never) [default: false]
    #[arg(long, value_name = "WHEN", value_parser = parse_early_stopping)]
    pub early_stopping: Option<EarlyStopping>,
    /// Never repeat an n-gram of this size (0: off)
    #[arg(long, value_name = "N")]
    pub no_repeat_ngram_size: Option<usize>,
}

impl BeamArgs {
    /// Set the beam search fields of `config` that were given.
    pub fn apply(&self, config: &mut GenerationConfig) {
        config.num_beams = self.num_beams;
        config.num_return_sequences = self.num_return_sequences;
        config.length_penalty = self.length_penalty;
        config.early_stopping = self.early_stopping;
        config.no_repeat_ngram_size = self.no_repeat_ngram_size;
    }

    /// Whether beam search was asked for (`--num-beams` above 1).
    pub fn beam_search(&self) -> bool {
        self.num_beams.is_some_and(|n| n > 1)
    }

    /// Whether several sequences come back per input.
    pub fn several(&self) -> bool {
        self.num_return_sequences.is_some_and(|n| n > 1)
    }
}

/// `--early-stopping`: `true`, `false` or `never`.
fn parse_early_stopping(value: &str) -> std::result::Result<EarlyStopping, String> {
    match value {
        "true" => Ok(EarlyStopping::Flag(true)),
        "false" => Ok(EarlyStopping::Flag(false)),
        "never" => Ok(EarlyStopping::NEVER),
        other => Err(format!("`{other}` is none of true, false, never")),
    }
}

impl GenerationArgs {
    /// The generation settings given on the command line (the rest is filled in by the
    /// pipeline from the model's generation config).
    pub fn config(&self) -> GenerationConfig {
        let mut config = GenerationConfig::new();
        config.max_new_tokens = self.max_new_tokens;
        config.do_sample = match (self.do_sample, self.greedy) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        config.temperature = self.temperature;
        config.top_k = self.top_k;
        config.top_p = self.top_p;
        config.repetition_penalty = self.repetition_penalty;
        config.seed = self.seed;
        self.beams.apply(&mut config);
        // Beam search decodes greedily unless --do-sample asks otherwise (the pipeline's
        // default is sampling, which beams do not combine with).
        if self.beams.beam_search() && !self.do_sample {
            config.do_sample = Some(false);
        }
        config
    }
}

/// Continue each prompt with a causal language model, streaming tokens as they come
///
/// Settings not given here come from the model's generation_config.json, then from the
/// pipeline's defaults (256 new tokens, sampling at temperature 0.7).
///
/// With --chat, each input is a user message (after the --system message, when given),
/// rendered with the model's chat template, and the output is the assistant's reply; --json
/// then gives transformers' result for a chat: the messages followed by the new assistant
/// message, or with --new-text-only the reply alone.
#[derive(Debug, Clone, Args)]
pub struct TextGeneration {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub generation: GenerationArgs,
    /// Print only the new text, not the prompt before it (return_full_text=False)
    #[arg(long)]
    pub new_text_only: bool,
    /// Treat each input as a user message of a chat, rendered with the model's chat template
    #[arg(long)]
    pub chat: bool,
    /// A system message before each user message (needs --chat)
    #[arg(long, value_name = "TEXT", requires = "chat")]
    pub system: Option<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl TextGeneration {
    /// The chat of one input: the system message, when given, then the input as a user message.
    fn messages(&self, input: &str) -> Vec<ChatMessage> {
        let mut messages: Vec<ChatMessage> = self.system.iter().map(|s| ChatMessage::system(s.as_str())).collect();
        messages.push(ChatMessage::user(input));
        messages
    }
}

/// `messages` as the JSON objects transformers' pipeline takes and returns.
pub fn messages_json(messages: &[ChatMessage]) -> Value {
    Value::Array(messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect())
}

/// Set by Ctrl-C while a generation streams ([`stream_to`]).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Make Ctrl-C stop the generation that is streaming (the text so far stays printed and the
/// command goes on to its end), once; a second Ctrl-C, or one while nothing streams, ends the
/// process as usual (exit status 130).
fn catch_interrupts() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if STREAMING.load(std::sync::atomic::Ordering::SeqCst)
                && !INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                return;
            }
            std::process::exit(130);
        });
        if let Err(e) = installed {
            tracing::debug!("no Ctrl-C handler: {e}");
        }
    });
}

/// Whether a generation is streaming now (Ctrl-C then stops it rather than the process).
static STREAMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stream each piece of generated text to `out`; a failed write stops generation and is
/// returned after it. Ctrl-C stops generation too: the text so far is kept and returned.
pub fn stream_to(
    out: &mut Output,
    generate: impl FnOnce(&mut dyn FnMut(&str) -> ControlFlow<()>) -> autocandle::Result<String>,
) -> Result<String> {
    use std::sync::atomic::Ordering;
    catch_interrupts();
    INTERRUPTED.store(false, Ordering::SeqCst);
    STREAMING.store(true, Ordering::SeqCst);
    let mut write_error = None;
    let result = generate(&mut |piece: &str| {
        if let Err(e) = out.stream(piece) {
            write_error = Some(e);
            return ControlFlow::Break(());
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            crate::ui::note("interrupted (Ctrl-C): generation stopped");
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    STREAMING.store(false, Ordering::SeqCst);
    let text = result?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    Ok(text)
}

impl TaskCommand for TextGeneration {
    const TASK: &'static str = "text-generation";
    type Pipeline = TextGenerationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.generation.config().validate()?;
        anyhow::ensure!(
            !(self.chat && self.generation.beams.several()),
            "--num-return-sequences with --chat: a chat takes one reply; drop one of them"
        );
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<TextGenerationPipeline> {
        TextGenerationPipeline::new_with(model, opts)
    }

    fn check_loaded(&self, pipeline: &TextGenerationPipeline, model: &str) -> Result<()> {
        if self.chat {
            pipeline.chat_template().with_context(|| format!("cannot chat with `{model}` (--chat)"))?;
        }
        Ok(())
    }

    fn run(&self, pipeline: &TextGenerationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts =
            TextGenerationOptions { new_text_only: self.new_text_only, generation: Some(self.generation.config()) };
        if self.chat {
            let mut messages = self.messages(input);
            let reply = stream_to(out, |on_text| pipeline.stream_chat(&messages, &opts, on_text))?;
            out.stream("\n")?;
            if self.new_text_only {
                return Ok(json!([{ "generated_text": reply }]));
            }
            messages.push(ChatMessage::assistant(reply));
            return Ok(json!([{ "generated_text": messages_json(&messages) }]));
        }
        if self.generation.beams.several() {
            // One line per sequence, after the input (text2text's layout).
            let texts = pipeline.call_sequences(input, &opts)?;
            out.line(input)?;
            for text in &texts {
                out.line(format!("  {text}"))?;
            }
            return Ok(Value::Array(texts.iter().map(|t| json!({ "generated_text": t })).collect()));
        }
        if !self.new_text_only {
            out.stream(input)?;
        }
        let text = stream_to(out, |on_text| pipeline.stream(input, &opts, on_text))?;
        out.stream("\n")?;
        Ok(json!([{ "generated_text": text }]))
    }
}
