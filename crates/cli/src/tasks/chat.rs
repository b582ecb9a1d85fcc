//! `autocandle chat`: a multi-turn chat with a model, like `transformers chat`: one user turn
//! per line of stdin, each reply streamed to stdout, the history kept between turns.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};
use autocandle::pipelines::{ImageTextToTextPipeline, TextGenerationOptions, TextGenerationPipeline};
use autocandle::{AutoConfig, ChatMessage, LoadOptions};
use clap::Args;

use super::text_generation::{messages_json, stream_to, GenerationArgs};
use super::{check_offline_cache, loading_spinner, offline_note, ModelArgs};
use crate::output::Output;
use crate::ui;

/// The longest line (user turn) read from stdin, in bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const HELP: &str = "commands: /image PATH adds an image to your next message (vision-language models), /clear \
                    forgets the conversation (the --system message stays), /exit ends (so does Ctrl-D), /help shows \
                    this";

/// A text model's pipeline, or a vision-language model's (which reads `/image`s).
enum ChatPipeline {
    Text(Box<TextGenerationPipeline>),
    Vision(Box<ImageTextToTextPipeline>),
}

impl ChatPipeline {
    /// The vision-language pipeline for the model types of `autocandle::vlm_processor`, else
    /// the text-generation one.
    fn load(model: &str, opts: &LoadOptions) -> autocandle::Result<Self> {
        let config = AutoConfig::from_pretrained_with(model, opts)?;
        let vision =
            autocandle::vlm_processor::CLASSES.iter().any(|(_, types)| types.contains(&config.value.model_type()));
        Ok(if vision {
            Self::Vision(Box::new(ImageTextToTextPipeline::new_with(model, opts)?))
        } else {
            Self::Text(Box::new(TextGenerationPipeline::new_with(model, opts)?))
        })
    }

    fn stream_chat(
        &self,
        history: &[ChatMessage],
        opts: &TextGenerationOptions,
        on_text: &mut dyn FnMut(&str) -> std::ops::ControlFlow<()>,
    ) -> autocandle::Result<String> {
        match self {
            Self::Text(p) => p.stream_chat(history, opts, on_text),
            Self::Vision(p) => p.stream_chat(history, &[], opts, on_text),
        }
    }
}

/// Chat with a model in turns, like `transformers chat`: each line of stdin is a user message
///
/// Each reply streams to stdout as it is generated, and the model sees the whole
/// conversation so far (rendered with its chat template). Commands, alone on a line: /clear
/// forgets the conversation (the --system message stays), /help lists them, /exit (or the end
/// of stdin, Ctrl-D) ends. A `> ` prompt shows on stderr when stdin is a terminal; piped stdin
/// is read as one user turn per line. With --json nothing streams: the conversation (the
/// messages since the last /clear, with the replies as assistant messages) prints at the end.
/// Settings not given here come from the model's generation_config.json, then from the
/// pipeline's defaults (256 new tokens, sampling at temperature 0.7).
#[derive(Debug, Clone, Args)]
pub struct Chat {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system message at the start of the conversation
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

impl Chat {
    pub fn run(&self, json: bool) -> Result<()> {
        let generation = self.generation.config();
        generation.validate()?;
        if self.model.model.is_none() {
            anyhow::bail!(
                "give the model to chat with: `autocandle chat --model ID|PATH` (a model with a chat template)"
            );
        }
        let (model, revision) = self.model.resolve("text-generation")?;
        check_offline_cache(&model)?;
        let opts = self.model.load_options(&revision)?;
        let pipeline = {
            let _spinner = loading_spinner(&model, &revision, &format!("loading {model} to chat"));
            ChatPipeline::load(&model, &opts)
                .with_context(|| format!("cannot load `{model}` to chat{}", offline_note(&model)))?
        };
        if let ChatPipeline::Text(text) = &pipeline {
            text.chat_template().with_context(|| format!("cannot chat with `{model}`"))?;
        }
        // Images added with `/image` for the next user message.
        let mut pending_images: Vec<String> = Vec::new();

        let stdin = std::io::stdin();
        let terminal = stdin.is_terminal();
        let mut reader = stdin.lock();
        let mut out = Output::new(json);
        let start: Vec<ChatMessage> = self.system.iter().map(|s| ChatMessage::system(s.as_str())).collect();
        let mut history = start.clone();
        let opts = TextGenerationOptions { new_text_only: true, generation: Some(generation) };
        if terminal {
            ui::note(format!("chatting with {model}; {HELP}"));
        }
        let mut turn = 0usize;
        loop {
            if terminal {
                prompt()?;
            }
            let Some(line) = read_line(&mut reader, MAX_LINE_BYTES)? else { break };
            match line.trim() {
                "" => continue,
                "/exit" | "/quit" => break,
                "/clear" => {
                    history.clone_from(&start);
                    if terminal {
                        ui::note("conversation cleared");
                    }
                    continue;
                }
                "/help" => {
                    ui::note(HELP);
                    continue;
                }
                command if command.starts_with("/image") => {
                    let path = command.trim_start_matches("/image").trim();
                    match image_command(&pipeline, path) {
                        Ok(()) => {
                            pending_images.push(path.to_owned());
                            if terminal {
                                ui::note(format!("{path} goes with your next message"));
                            }
                        }
                        // A mistyped path is not worth ending the chat over.
                        Err(e) => ui::note(format!("{e:#}")),
                    }
                    continue;
                }
                _ => {}
            }
            turn += 1;
            if pending_images.is_empty() {
                history.push(ChatMessage::user(line));
            } else {
                let mut parts: Vec<serde_json::Value> =
                    pending_images.drain(..).map(|path| serde_json::json!({"type": "image", "path": path})).collect();
                parts.push(serde_json::json!({"type": "text", "text": line}));
                history.push(ChatMessage::user(serde_json::Value::Array(parts)));
            }
            let reply = stream_to(&mut out, |on_text| pipeline.stream_chat(&history, &opts, on_text))
                .with_context(|| format!("cannot answer turn {turn}"))?;
            out.stream("\n")?;
            history.push(ChatMessage::assistant(reply));
        }
        if terminal {
            // Ctrl-D leaves the cursor after the prompt.
            eprintln!();
        }
        if let serde_json::Value::Array(messages) = messages_json(&history) {
            for message in messages {
                out.push(message);
            }
        }
        out.finish()?;
        Ok(())
    }
}

/// Check `/image PATH`: the model reads images and `path` is an image file.
fn image_command(pipeline: &ChatPipeline, path: &str) -> Result<()> {
    if matches!(pipeline, ChatPipeline::Text(_)) {
        anyhow::bail!("this model reads no images: /image needs a vision-language model (LLaVA, Qwen2-VL, ...)");
    }
    anyhow::ensure!(!path.is_empty(), "give the image's path: /image PATH");
    autocandle::open_image(path).with_context(|| format!("cannot use `{path}` as an image"))?;
    Ok(())
}

/// `> ` on stderr, where it stays out of the conversation on stdout.
fn prompt() -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(b"> ")?;
    err.flush()?;
    Ok(())
}

/// The next line of `reader` without its line ending, `None` at the end; a line longer than
/// `max` bytes is an error, found without reading more than `max` bytes of it.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("cannot read a line from stdin")),
        };
        if available.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            break;
        }
        let (take, end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let text = if end { take - 1 } else { take };
        if line.len() + text > max {
            anyhow::bail!(
                "a line of stdin is longer than {} MiB, the most one chat turn may be: give shorter lines",
                max >> 20
            );
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if end {
            break;
        }
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).context("a line of stdin is not UTF-8 text")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Option<String>>> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let next = read_line(&mut reader, max);
            let stop = !matches!(next, Ok(Some(_)));
            out.push(next);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn lines_end_at_newlines_and_lose_their_endings() {
        let got: Vec<Option<String>> = lines(b"hello there\r\n\nlast", 64).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [Some("hello there".to_owned()), Some(String::new()), Some("last".to_owned()), None]);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_an_error() {
        let got = lines(b"0123456789\nok\n", 8);
        let err = got[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
        // Exactly at the limit is fine; the newline does not count.
        assert_eq!(lines(b"01234567\n", 8)[0].as_ref().unwrap().as_deref(), Some("01234567"));
        let invalid = lines(b"\xff\xfe\n", 8);
        assert!(invalid[0].as_ref().unwrap_err().to_string().contains("UTF-8"));
    }
}
