//! The text-generation pipeline (`transformers.TextGenerationPipeline`) for text prompts: a
//! causal LM through [`GenerationMixin`], the prompt encoded without special tokens, the
//! result decoded without them and, by default, appended to the prompt.

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

    /// [`TextGenerationPipeline::call_with`], calling `on_text` with each new piece of text as
    /// soon as it is final ([`TextStreamer`], special tokens skipped); `ControlFlow::Break`
    /// stops generation there (and `on_text` is not called again). Returns what `call_with`
    /// returns for the tokens generated.
    pub fn stream(
        &self,
        prompt: &str,
        opts: &TextGenerationOptions,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let config = match &opts.generation {
            Some(config) => config.clone().fill_from(&self.generation_config),
            None => self.generation_config.clone(),
        };
        let encode = EncodeOptions::new().add_special_tokens(false);
        let ids = self.tokenizer.encode_batch_with(&[prompt], None, &encode)?.input_ids;
        let mut streamer = TextStreamer::new(&self.tokenizer).skip_special_tokens(true);
        let mut failed = None;
        let mut stopped = false;
        let out = self.model.generate_stream(ids, &config, Some(&self.tokenizer), |step| {
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
        let new_text = self.tokenizer.decode(out.generated(0), true)?;
        Ok(if opts.new_text_only { new_text } else { format!("{prompt}{new_text}") })
    }
}
