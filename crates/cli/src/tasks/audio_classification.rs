//! `autocandle audio-classification`: the best labels of each audio file.

use anyhow::Result;
use autocandle::pipelines::{AudioClassificationOptions, AudioClassificationPipeline};
use autocandle::LoadOptions;
use clap::Args;
use serde_json::{json, Value};

use super::text_classification::{print_labels, Function};
use super::{json_score, parse_top_k, InputArgs, ModelArgs, TaskCommand, TopK};
use crate::output::Output;

/// Classify audio clips (INPUT = audio files: WAV, FLAC, MP3, Ogg Vorbis) with an audio
/// classifier
#[derive(Debug, Clone, Args)]
pub struct AudioClassification {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many labels, best first: a number or `all`
    #[arg(long, default_value = "5", value_parser = parse_top_k, value_name = "N|all")]
    pub top_k: TopK,
    /// The function applied to the logits [default: softmax; none for regression, sigmoid
    /// for multi-label models (the config's problem_type)]
    #[arg(long, value_enum, value_name = "FUNCTION")]
    pub function_to_apply: Option<Function>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl TaskCommand for AudioClassification {
    const TASK: &'static str = "audio-classification";
    type Pipeline = AudioClassificationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<AudioClassificationPipeline> {
        AudioClassificationPipeline::new_with(model, opts)
    }

    fn run(&self, pipeline: &AudioClassificationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        let opts = AudioClassificationOptions {
            top_k: self.top_k.get(),
            function_to_apply: self.function_to_apply.map(Function::to_library),
        };
        let labels = pipeline.call_with(input, &opts)?;
        out.line(input)?;
        print_labels(&labels, out)?;
        // `[{"score", "label"}]`, in the order `transformers`' audio pipeline writes them.
        Ok(labels.iter().map(|l| json!({"score": json_score(l.score), "label": l.label})).collect())
    }
}
