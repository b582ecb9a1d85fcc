//! `autocandle text-generation`: continue each prompt with a causal LM, streaming the new
//! text to stdout as it is generated.

use std::ops::ControlFlow;

use anyhow::Result;
use autocandle::pipelines::{TextGenerationOptions, TextGenerationPipeline};
use autocandle::{GenerationConfig, LoadOptions};
use clap::Args;
use serde_json::{json, Value};

use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::Output;

/// Continue each prompt with a causal language model, streaming tokens as they come
///
/// Settings not given here come from the model's generation_config.json, then from the
/// pipeline's defaults (256 new tokens, sampling at temperature 0.7).
#[derive(Debug, Clone, Args)]
pub struct TextGeneration {
    #[command(flatten)]
    pub model: ModelArgs,
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
    /// Print only the new text, not the prompt before it (return_full_text=False)
    #[arg(long)]
    pub new_text_only: bool,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl TextGeneration {
    /// The generation settings given on the command line (the rest is filled in by the
    /// pipeline from the model's generation config).
    fn generation(&self) -> GenerationConfig {
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
        config
    }
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
        self.generation().validate()?;
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<TextGenerationPipeline> {
        TextGenerationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &TextGenerationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts = TextGenerationOptions { new_text_only: self.new_text_only, generation: Some(self.generation()) };
        if !self.new_text_only {
            out.stream(input)?;
        }
        let mut write_error = None;
        let text = pipeline.stream(input, &opts, |piece| match out.stream(piece) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_error = Some(e);
                ControlFlow::Break(())
            }
        })?;
        if let Some(e) = write_error {
            return Err(e.into());
        }
        out.stream("\n")?;
        Ok(json!([{ "generated_text": text }]))
    }
}
