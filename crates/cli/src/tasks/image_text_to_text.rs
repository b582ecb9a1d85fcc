//! `autocandle image-text-to-text --image FILE "prompt"`: a vision-language model answers each
//! prompt about the images, streaming its reply; chat models get the prompt as a user message
//! with the images (their chat template), others the raw prompt.

use anyhow::{Context, Result};
use autocandle::image::DynamicImage;
use autocandle::pipelines::{ImageTextToTextPipeline, TextGenerationOptions};
use autocandle::{ChatMessage, LoadOptions};
use clap::Args;
use serde_json::{json, Value};

use super::image_classification::open_image;
use super::text_generation::{messages_json, stream_to, GenerationArgs};
use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::Output;

/// Answer each prompt about images with a vision-language model, streaming the reply
///
/// Each --image is read once and goes with every prompt, in order. A model whose tokenizer
/// has a chat template gets each prompt as a user message holding the images (as transformers'
/// pipeline does for a chat); --raw sends the prompt as it is instead, with the images' place
/// marked by the processor's placeholder (`<image>`, ...; added at the start when the prompt
/// has none). Settings not given here come from the model's generation_config.json, then from
/// the pipeline's default of 256 new tokens.
#[derive(Debug, Clone, Args)]
pub struct ImageTextToText {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image the prompts are about (repeat for several)
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<String>,
    /// Send each prompt as it is rather than as a chat message
    #[arg(long)]
    pub raw: bool,
    /// A system message before each user message (chat models)
    #[arg(long, value_name = "TEXT", conflicts_with = "raw")]
    pub system: Option<String>,
    /// Print only the new text (raw prompts; a chat prints only the reply anyway)
    #[arg(long)]
    pub new_text_only: bool,
    #[command(flatten)]
    pub generation: GenerationArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl ImageTextToText {
    fn images(&self) -> Result<Vec<DynamicImage>> {
        self.images.iter().map(|p| open_image(p).with_context(|| format!("cannot read the image `{p}`"))).collect()
    }

    /// Whether prompts go through the chat template.
    fn chat(&self, pipeline: &ImageTextToTextPipeline) -> bool {
        !self.raw
            && pipeline
                .processor()
                .tokenizer()
                .is_some_and(|t| t.settings().get("chat_template").is_some_and(|v| !v.is_null()))
    }
}

impl TaskCommand for ImageTextToText {
    const TASK: &'static str = "image-text-to-text";
    type Pipeline = ImageTextToTextPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.generation.config().validate()?;
        for path in &self.images {
            anyhow::ensure!(std::path::Path::new(path).is_file(), "--image `{path}` is not a file");
        }
        Ok(())
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<ImageTextToTextPipeline> {
        ImageTextToTextPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &ImageTextToTextPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let images = self.images()?;
        let opts =
            TextGenerationOptions { new_text_only: self.new_text_only, generation: Some(self.generation.config()) };
        if self.chat(pipeline) {
            let mut messages: Vec<ChatMessage> = self.system.iter().map(|s| ChatMessage::system(s.as_str())).collect();
            let mut parts: Vec<Value> = images.iter().map(|_| json!({"type": "image"})).collect();
            parts.push(json!({"type": "text", "text": input}));
            messages.push(ChatMessage::user(Value::Array(parts)));
            let reply = stream_to(out, |on_text| pipeline.stream_chat(&messages, &images, &opts, on_text))?;
            out.stream("\n")?;
            if self.new_text_only {
                return Ok(json!([{ "input_text": messages_json(&messages), "generated_text": reply }]));
            }
            let input_text = messages_json(&messages);
            messages.push(ChatMessage::assistant(reply));
            return Ok(json!([{ "input_text": input_text, "generated_text": messages_json(&messages) }]));
        }
        if !self.new_text_only {
            out.stream(input)?;
        }
        let text = stream_to(out, |on_text| pipeline.stream(&images, input, &opts, on_text))?;
        out.stream("\n")?;
        Ok(json!([{ "input_text": input, "generated_text": text }]))
    }
}
