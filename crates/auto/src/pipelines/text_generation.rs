//! The text-generation pipeline (`transformers.TextGenerationPipeline`) for text prompts and
//! chats: a causal LM through [`GenerationMixin`], the prompt encoded without special tokens
//! (a chat rendered with the tokenizer's chat template, which writes them), the result decoded
//! without them and, for text prompts, by default appended to the prompt.

use std::ops::ControlFlow;

use autocandle_core::{ForCausalLm, LoadOptions, Result};
use autocandle_generation::GenerationConfig;

use crate::{AutoModelForCausalLM, AutoTokenizer, EncodeOptions, GenerationMixin, PreTrainedTokenizer, TextStreamer};

/// Options of [`TextGenerationPipeline::call_with`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextGenerationOptions {
    /// Return only the new text instead of prompt + new text (`return_full_text=False`).
    pub new_text_only: bool,
    /// Generation settings; unset fields come from the pipeline's
    /// [`TextGenerationPipeline::generation_config`].
    pub generation: Option<GenerationConfig>,
}

/// Continue a text prompt with a causal language model.
#[derive(Debug)]
pub struct TextGenerationPipeline {
    tokenizer: PreTrainedTokenizer,
    model: Box<dyn ForCausalLm>,
    generation_config: GenerationConfig,
}

impl TextGenerationPipeline {
    /// Load the model (`AutoModelForCausalLM`), tokenizer and generation config at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`TextGenerationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("text-generation", model, || {
            let tokenizer = AutoTokenizer::from_pretrained_with(model, opts)?;
            // The pipeline's defaults for what neither the caller nor the model's generation
            // config sets (`_default_generation_config`, plus the tokenizer's pad token).
            let mut defaults = GenerationConfig::new().max_new_tokens(256).do_sample(true).temperature(0.7);
            defaults.pad_token_id = tokenizer.special_token_id("pad_token");
            let generation_config = GenerationConfig::from_pretrained_with(model, opts)?.fill_from(&defaults);
            let model = AutoModelForCausalLM::from_pretrained_with(model, opts)?.value;
            Ok(Self { tokenizer, model, generation_config })
        })
    }

    /// The generation settings calls start from: the model's `generation_config.json` over
    /// the pipeline's defaults (256 new tokens, sampling at temperature 0.7).
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation_config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &PreTrainedTokenizer {
        &self.tokenizer
    }

    /// The prompt followed by its continuation (`[0]["generated_text"]`).
    pub fn call(&self, prompt: &str) -> Result<String> {
        self.call_with(prompt, &TextGenerationOptions::default())
    }

    /// The continuation of `prompt` under `opts`.
    pub fn call_with(&self, prompt: &str, opts: &TextGenerationOptions) -> Result<String> {
        self.stream(prompt, opts, |_| ControlFlow::Continue(()))
    }

    /// Every sequence generated for `prompt` under `opts` (`[i]["generated_text"]`): one, or
    /// `num_return_sequences` of them (the beams, best first, with beam search; samples when
    /// sampling), each the prompt and its continuation, or the continuation alone with
    /// [`TextGenerationOptions::new_text_only`].
    pub fn call_sequences(&self, prompt: &str, opts: &TextGenerationOptions) -> Result<Vec<String>> {
        let encode = EncodeOptions::new().add_special_tokens(false);
        let ids = self.tokenizer.encode_batch_with(&[prompt], None, &encode)?.input_ids;
        let out = self.model.generate_output(ids, &self.config_for(opts), Some(&self.tokenizer))?;
        (0..out.sequences.len())
            .map(|row| {
                let text = self.tokenizer.decode(out.generated(row), true)?;
                Ok(if opts.new_text_only { text } else { format!("{prompt}{text}") })
            })
            .collect()
    }

    /// The settings of a call: `opts.generation` over the pipeline's.
    fn config_for(&self, opts: &TextGenerationOptions) -> GenerationConfig {
        match &opts.generation {
            Some(config) => config.clone().fill_from(&self.generation_config),
            None => self.generation_config.clone(),
        }
    }

    /// [`TextGenerationPipeline::call_with`], calling `on_text` with each new piece of text as
    /// soon as it is final ([`TextStreamer`], special tokens skipped); `ControlFlow::Break`
    /// stops generation there (and `on_text` is not called again). Returns what `call_with`
    /// returns for the tokens generated.
    pub fn stream(
        &self,
        prompt: &str,
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let encode = EncodeOptions::new().add_special_tokens(false);
        let ids = self.tokenizer.encode_batch_with(&[prompt], None, &encode)?.input_ids;
        let new_text = self.generate_text(ids, opts, on_text)?;
        Ok(if opts.new_text_only { new_text } else { format!("{prompt}{new_text}") })
    }

    /// The assistant's reply to a chat (`pipeline(messages, return_full_text=False)`): the
    /// messages rendered with the tokenizer's chat template and an assistant header
    /// (`add_generation_prompt`), encoded without adding special tokens again (the template
    /// wrote them), and the new text decoded without special tokens. A chat that ends with an
    /// assistant message is continued instead (`continue_final_message`, as `transformers`
    /// does by default): the reply is then what follows that message's content.
    ///
    /// The reply is returned whatever [`TextGenerationOptions::new_text_only`] says: the full
    /// result of `transformers` for a chat is `messages` followed by
    /// `ChatMessage::assistant(reply)`. A tokenizer without a chat template is an error, as
    /// in `transformers`.
    ///
    /// ```no_run
    /// # fn main() -> autocandle::Result<()> {
    /// use autocandle::pipelines::{TextGenerationOptions, TextGenerationPipeline};
    /// use autocandle::ChatMessage;
    /// let pipe = TextGenerationPipeline::new("HuggingFaceTB/SmolLM2-135M-Instruct")?;
    /// let chat = [ChatMessage::system("Be brief."), ChatMessage::user("What is the capital of France?")];
    /// let reply = pipe.chat(&chat, &TextGenerationOptions::default())?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "chat")]
    pub fn chat(&self, messages: &[crate::ChatMessage], opts: &TextGenerationOptions) -> Result<String> {
        self.stream_chat(messages, opts, |_| ControlFlow::Continue(()))
    }

    /// [`TextGenerationPipeline::chat`], calling `on_text` with each new piece of the reply as
    /// [`TextGenerationPipeline::stream`] does.
    #[cfg(feature = "chat")]
    pub fn stream_chat(
        &self,
        messages: &[crate::ChatMessage],
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        self.chat_template()?;
        let Some(last) = messages.last() else {
            return Err(autocandle_core::Error::input("a chat needs at least one message"));
        };
        // A final assistant message is a prefill to continue (`continue_final_message=None`).
        let continue_final = last.role == "assistant";
        let template = crate::ChatTemplateOptions::new()
            .add_generation_prompt(!continue_final)
            .continue_final_message(continue_final);
        let ids = self.tokenizer.encode_chat(messages, &template)?.input_ids;
        self.generate_text(ids, opts, on_text)
    }

    /// The chat template that [`TextGenerationPipeline::chat`] renders (the tokenizer's
    /// default one); an error that says so when the tokenizer has none, as `transformers`
    /// raises then.
    #[cfg(feature = "chat")]
    pub fn chat_template(&self) -> Result<String> {
        if self.tokenizer.settings().get("chat_template").is_none_or(serde_json::Value::is_null) {
            return Err(autocandle_core::Error::input(format!(
                "the tokenizer of `{}` has no chat template (no `chat_template` in tokenizer_config.json and no \
                 chat_template.jinja), so it cannot render a chat: this model was not trained for chats; give it \
                 plain text prompts, or use a chat (instruct) model",
                self.tokenizer.name()
            )));
        }
        self.tokenizer.get_chat_template(None)
    }

    /// Generate from encoded prompt `ids` (one row), streaming the new text to `on_text`, and
    /// return the new text decoded without special tokens. Beam search ranks its beams at the
    /// end: the best one's text then comes in one piece.
    fn generate_text(
        &self,
        ids: Vec<Vec<u32>>,
        opts: &TextGenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        stream_new_text(self.model.as_ref(), ids, &self.config_for(opts), &self.tokenizer, on_text)
    }
}

/// Generate one row from `prompts` with `model`, streaming its new text to `on_text` as soon
/// as each piece is final ([`TextStreamer`], special tokens skipped; `ControlFlow::Break`
/// stops generation), and return the new text. Beam search ranks its beams at the end: the
/// best one's text then comes in one piece.
pub(crate) fn stream_new_text<M: ForCausalLm + ?Sized>(
    model: &M,
    prompts: impl crate::IntoPrompts,
    config: &GenerationConfig,
    tokenizer: &PreTrainedTokenizer,
    mut on_text: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<String> {
    if config.num_beams.is_some_and(|n| n > 1) {
        let out = model.generate_output(prompts, config, Some(tokenizer))?;
        let text = tokenizer.decode(out.generated(0), true)?;
        if !text.is_empty() {
            let _ = on_text(&text);
        }
        return Ok(text);
    }
    let mut streamer = TextStreamer::new(tokenizer).skip_special_tokens(true);
    let mut failed = None;
    let mut stopped = false;
    let out = model.generate_stream(prompts, config, Some(tokenizer), |step| {
        // One row: its token belongs to the output while the row is active.
        let token = match (step.active.first(), step.tokens.first()) {
            (Some(true), Some(token)) => *token,
            _ => return ControlFlow::Continue(()),
        };
        let piece = match streamer.put(&[token]) {
            Ok(piece) => piece,
            Err(e) => {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        };
        if piece.is_empty() {
            return ControlFlow::Continue(());
        }
        let flow = on_text(&piece);
        stopped = flow.is_break();
        flow
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let rest = streamer.end()?;
    if !stopped && !rest.is_empty() {
        // The last piece; stopping is moot, generation is over.
        let _ = on_text(&rest);
    }
    tokenizer.decode(out.generated(0), true)
}

/// Chats against Python `transformers`' pipeline on the tiny Qwen3 chat fixture
/// (`tests/fixtures/chat-cli/expected.json`, made by `make_expected.py` next to it).
#[cfg(all(test, feature = "qwen3", feature = "chat"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::*;
    use crate::ChatMessage;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
    }

    fn expected() -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("chat-cli/expected.json")).unwrap()).unwrap()
    }

    fn greedy() -> TextGenerationOptions {
        TextGenerationOptions { new_text_only: false, generation: Some(GenerationConfig::new().do_sample(false)) }
    }

    fn messages(system: &Value, user: &str) -> Vec<ChatMessage> {
        let mut out: Vec<ChatMessage> = system.as_str().map(ChatMessage::system).into_iter().collect();
        out.push(ChatMessage::user(user));
        out
    }

    #[test]
    fn chat_replies_equal_python_s_pipeline() {
        let pipe = TextGenerationPipeline::new(fixtures().join("qwen3-chat").to_str().unwrap()).unwrap();
        let expected = expected();
        for case in expected["single"].as_array().unwrap() {
            let chat = messages(&case["system"], case["user"].as_str().unwrap());
            let mut streamed = String::new();
            let reply = pipe
                .stream_chat(&chat, &greedy(), |piece| {
                    streamed.push_str(piece);
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(reply, case["new_text"].as_str().unwrap(), "{case}");
            assert_eq!(streamed, reply);
            assert_eq!(pipe.chat(&chat, &greedy()).unwrap(), reply);
        }
        // History as `transformers chat` keeps it: each reply appended as an assistant message.
        let conversation = &expected["conversation"];
        let mut history = vec![ChatMessage::system(conversation["system"].as_str().unwrap())];
        for (turn, want) in
            conversation["turns"].as_array().unwrap().iter().zip(conversation["replies"].as_array().unwrap())
        {
            history.push(ChatMessage::user(turn.as_str().unwrap()));
            let reply = pipe.chat(&history, &greedy()).unwrap();
            assert_eq!(reply, want.as_str().unwrap(), "turn {turn}");
            history.push(ChatMessage::assistant(reply));
        }
    }

    #[test]
    fn a_final_assistant_message_is_continued() {
        let pipe = TextGenerationPipeline::new(fixtures().join("qwen3-chat").to_str().unwrap()).unwrap();
        let tok = pipe.tokenizer();
        let chat = [ChatMessage::user("Hi!"), ChatMessage::assistant("Hello")];
        let template = crate::ChatTemplateOptions::new().continue_final_message(true);
        let prompt = tok.apply_chat_template_with(&chat, &template).unwrap();
        assert!(prompt.ends_with("Hello"), "{prompt:?}");
        let empty = pipe.chat(&[], &greedy()).unwrap_err().to_string();
        assert!(empty.contains("at least one message"), "{empty}");
        // The same as continuing the rendered text as a plain prompt.
        let text = TextGenerationOptions { new_text_only: true, ..greedy() };
        assert_eq!(pipe.chat(&chat, &greedy()).unwrap(), pipe.call_with(&prompt, &text).unwrap());
    }

    #[test]
    fn a_model_without_a_chat_template_cannot_chat() {
        let source = fixtures().join("qwen3-chat");
        let dir = std::env::temp_dir().join(format!("autocandle-no-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
        let mut settings: Value =
            serde_json::from_str(&std::fs::read_to_string(source.join("tokenizer_config.json")).unwrap()).unwrap();
        settings.as_object_mut().unwrap().remove("chat_template");
        std::fs::write(dir.join("tokenizer_config.json"), settings.to_string()).unwrap();
        let pipe = TextGenerationPipeline::new(dir.to_str().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        let pipe = pipe.unwrap();
        let err = pipe.chat(&[ChatMessage::user("Hi!")], &greedy()).unwrap_err().to_string();
        assert!(err.contains("has no chat template"), "{err}");
        assert!(pipe.chat_template().is_err());
    }
}
