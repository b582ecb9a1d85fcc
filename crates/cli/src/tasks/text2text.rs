//! `autocandle text2text-generation`, `summarization` and `translation`: text generated from
//! each input by a sequence-to-sequence model (T5, BART), after `transformers` 4.57's
//! pipelines (5.x removed them). The task's prefix and settings come from the config's
//! `task_specific_params` (T5's `"summarize: "`, `"translate English to German: "`).

use std::sync::OnceLock;

use anyhow::Result;
use autocandle::pipelines::{
    SummarizationPipeline, Text2TextGenerationPipeline, Text2TextOptions, Text2TextOutput, TranslationPipeline,
};
use autocandle::{GenerationConfig, LoadOptions};
use clap::Args;
use serde_json::{json, Value};

use super::text_generation::BeamArgs;
use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::Output;
use crate::ui;

/// Generation settings of the text-to-text commands. Unset ones come from the task's
/// `task_specific_params`, then the pipeline's defaults (256 new tokens, 4 beams), then the
/// model's generation config, as in `transformers` 4.57.
#[derive(Debug, Clone, Args)]
pub struct Seq2SeqArgs {
    /// Maximum number of new tokens [default: 256, or the model's max_length]
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Minimum length of the output in tokens, the decoder start token included
    #[arg(long, value_name = "N")]
    pub min_length: Option<usize>,
    /// --num-beams and the other beam search flags [default --num-beams: the task's, else 4]
    #[command(flatten)]
    pub beams: BeamArgs,
    /// Penalty for tokens already in the output (1.0: none)
    #[arg(long, value_name = "R")]
    pub repetition_penalty: Option<f64>,
    /// Sample the next token instead of beam search (with --temperature, --top-k, --top-p);
    /// sets --num-beams 1, as beam search with sampling is not implemented
    #[arg(long)]
    pub do_sample: bool,
    /// Sampling temperature
    #[arg(long, value_name = "T", requires = "do_sample")]
    pub temperature: Option<f64>,
    /// Sample among the K most likely tokens
    #[arg(long, value_name = "K", requires = "do_sample")]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to P
    #[arg(long, value_name = "P", requires = "do_sample")]
    pub top_p: Option<f64>,
    /// Seed of the sampler, for reproducible samples
    #[arg(long, value_name = "N", requires = "do_sample")]
    pub seed: Option<u64>,
    /// Stop at the first token of this text instead of the end-of-sequence token
    #[arg(long, value_name = "TEXT")]
    pub stop_sequence: Option<String>,
    /// Remove the spaces before punctuation in the output (clean_up_tokenization_spaces)
    #[arg(long)]
    pub clean_up_tokenization_spaces: bool,
    /// Cut inputs longer than the tokenizer's model_max_length instead of failing
    #[arg(long)]
    pub truncation: bool,
    /// Output the generated token ids instead of the text (return_tensors=True:
    /// `*_token_ids` in JSON)
    #[arg(long)]
    pub return_tensors: bool,
}

impl Seq2SeqArgs {
    /// The generation settings given on the command line.
    fn generation(&self) -> GenerationConfig {
        let mut config = GenerationConfig::new();
        config.max_new_tokens = self.max_new_tokens;
        config.min_length = self.min_length;
        self.beams.apply(&mut config);
        config.repetition_penalty = self.repetition_penalty;
        if self.do_sample {
            config.do_sample = Some(true);
            config.num_beams = Some(self.beams.num_beams.unwrap_or(1));
        }
        config.temperature = self.temperature;
        config.top_k = self.top_k;
        config.top_p = self.top_p;
        config.seed = self.seed;
        config
    }

    fn check(&self) -> Result<()> {
        if let (true, Some(beams)) = (self.do_sample, self.beams.num_beams) {
            anyhow::ensure!(
                beams == 1,
                "--do-sample with --num-beams {beams}: beam search with sampling is not implemented; use one or \
                 the other"
            );
        }
        if let Some(stop) = &self.stop_sequence {
            anyhow::ensure!(!stop.is_empty(), "--stop-sequence is empty: give the text to stop at");
        }
        self.generation().validate()?;
        Ok(())
    }

    fn options(&self) -> Text2TextOptions {
        Text2TextOptions {
            generation: Some(self.generation()),
            clean_up_tokenization_spaces: self.clean_up_tokenization_spaces,
            truncation: self.truncation,
            stop_sequence: self.stop_sequence.clone(),
        }
    }
}

/// What the three text-to-text pipelines share.
pub trait Seq2SeqPipeline {
    /// The key of the text in `transformers`' results.
    const KEY: &'static str;

    fn generate(&self, text: &str, opts: &Text2TextOptions) -> autocandle::Result<Vec<Text2TextOutput>>;
}

impl Seq2SeqPipeline for Text2TextGenerationPipeline {
    const KEY: &'static str = Text2TextGenerationPipeline::OUTPUT_KEY;

    fn generate(&self, text: &str, opts: &Text2TextOptions) -> autocandle::Result<Vec<Text2TextOutput>> {
        self.call_with(text, opts)
    }
}

impl Seq2SeqPipeline for SummarizationPipeline {
    const KEY: &'static str = SummarizationPipeline::OUTPUT_KEY;

    fn generate(&self, text: &str, opts: &Text2TextOptions) -> autocandle::Result<Vec<Text2TextOutput>> {
        self.call_with(text, opts)
    }
}

impl Seq2SeqPipeline for TranslationPipeline {
    const KEY: &'static str = TranslationPipeline::OUTPUT_KEY;

    fn generate(&self, text: &str, opts: &Text2TextOptions) -> autocandle::Result<Vec<Text2TextOutput>> {
        self.call_with(text, opts)
    }
}

/// Run one input: one line per input with its text (the input, then one indented line per
/// sequence, when there are several); `[{KEY: text}, ...]` in JSON, one object per sequence.
fn generate<P: Seq2SeqPipeline>(pipeline: &P, args: &Seq2SeqArgs, input: &str, out: &mut Output) -> Result<Value> {
    let sequences = pipeline.generate(input, &args.options())?;
    let shown = |s: &Text2TextOutput| {
        if args.return_tensors {
            format!("{:?}", s.token_ids)
        } else {
            s.text.clone()
        }
    };
    match sequences.as_slice() {
        [one] => out.line(shown(one))?,
        many => {
            out.line(input)?;
            for s in many {
                out.line(format!("  {}", shown(s)))?;
            }
        }
    }
    // `generated_text` / `generated_token_ids`, as transformers names them.
    let key = if args.return_tensors { P::KEY.replace("_text", "_token_ids") } else { P::KEY.to_owned() };
    Ok(Value::Array(
        sequences
            .iter()
            .map(|s| {
                let value = if args.return_tensors { json!(s.token_ids) } else { json!(s.text) };
                Value::Object(std::iter::once((key.clone(), value)).collect())
            })
            .collect(),
    ))
}

/// A command that runs one of the text-to-text pipelines with no option of its own.
macro_rules! text2text_command {
    ($(#[$doc:meta])* $name:ident, $task:literal, $pipeline:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            #[command(flatten)]
            pub model: ModelArgs,
            #[command(flatten)]
            pub generation: Seq2SeqArgs,
            #[command(flatten)]
            pub inputs: InputArgs,
        }

        impl TaskCommand for $name {
            const TASK: &'static str = $task;
            type Pipeline = $pipeline;

            fn model_args(&self) -> &ModelArgs {
                &self.model
            }

            fn input_args(&self) -> &InputArgs {
                &self.inputs
            }

            fn check(&self) -> Result<()> {
                self.generation.check()
            }

            fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<$pipeline> {
                <$pipeline>::new_with(model, opts)
            }

            fn run(&self, pipeline: &$pipeline, input: &str, out: &mut Output) -> Result<Value> {
                generate(pipeline, &self.generation, input, out)
            }
        }
    };
}

text2text_command!(
    /// Generate text from each input with a sequence-to-sequence model (T5, BART, ...)
    ///
    /// The input is given to the model as is: add the prefix the model expects, e.g. "translate
    /// English to German: ". Prints the generated text of each input, one line per input
    /// (`[{"generated_text"}]` per input with --json).
    Text2TextGeneration,
    "text2text-generation",
    Text2TextGenerationPipeline
);

text2text_command!(
    /// Summarize each input with a sequence-to-sequence model (T5, BART, ...)
    ///
    /// T5 gets its "summarize: " prefix and settings from the config's task_specific_params.
    /// Prints the summary of each input, one line per input (`[{"summary_text"}]` per input with
    /// --json).
    Summarization,
    "summarization",
    SummarizationPipeline
);

/// Translate each input with a sequence-to-sequence model (T5, BART, Marian-like, ...)
///
/// The languages are in the task name, as in transformers: `--task translation_en_to_de`, or
/// the task as the command itself: `autocandle translation_en_to_de "The house is wonderful."`.
/// T5 gets the task's prefix ("translate English to German: ") and settings from the config's
/// task_specific_params; without --task, the first translation_XX_to_YY there is used.
/// Prints the translation of each input, one line per input (`[{"translation_text"}]` per
/// input with --json).
#[derive(Debug, Clone, Args)]
pub struct Translation {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The translation task, `translation_XX_to_YY` (e.g. translation_en_to_de) [default: the
    /// first translation_XX_to_YY of the config's task_specific_params]
    #[arg(long, value_parser = parse_translation_task, value_name = "TASK")]
    pub task: Option<String>,
    #[command(flatten)]
    pub generation: Seq2SeqArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Set once the task picked without --task has been noted.
    #[arg(skip)]
    pub noted: OnceLock<()>,
}

/// `translation` or `translation_XX_to_YY`.
pub fn parse_translation_task(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    match autocandle::pipelines::normalize_task(s) {
        Ok("translation") => Ok(s.to_owned()),
        _ => Err("use `translation_XX_to_YY`, e.g. `translation_en_to_de`".to_owned()),
    }
}

/// `translation_XX_to_YY` given as the command (`autocandle translation_en_to_de ...`) becomes
/// `translation --task translation_XX_to_YY`, as `transformers.pipeline` takes such task
/// names. The command is the first argument that is not an option (the global options take
/// no value).
pub fn expand_translation_task(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(position) = args.iter().skip(1).position(|a| !a.to_string_lossy().starts_with('-')).map(|p| p + 1) else {
        return args;
    };
    let Some(task) = args[position].to_str().map(str::to_owned) else { return args };
    if task.starts_with("translation_") && parse_translation_task(&task).is_ok() {
        args.splice(position..=position, ["translation".into(), "--task".into(), task.into()]);
    }
    args
}

impl TaskCommand for Translation {
    const TASK: &'static str = "translation";
    type Pipeline = TranslationPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn check(&self) -> Result<()> {
        self.generation.check()
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<TranslationPipeline> {
        TranslationPipeline::for_task(model, self.task.as_deref().unwrap_or("translation"), opts)
    }

    fn run(&self, pipeline: &TranslationPipeline, input: &str, out: &mut Output) -> Result<Value> {
        // transformers warns when `translation` picks a `translation_XX_to_YY` of the config.
        if self.task.is_none() && pipeline.task() != "translation" && self.noted.set(()).is_ok() {
            ui::note(format!(
                "no --task given: translating as `{}`, from the config's task_specific_params",
                pipeline.task()
            ));
        }
        generate(pipeline, &self.generation, input, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    #[test]
    fn translation_task_names_become_the_translation_command() {
        assert_eq!(
            expand_translation_task(args("autocandle --json translation_en_to_de -m x hi")),
            args("autocandle --json translation --task translation_en_to_de -m x hi")
        );
        // Other commands, and malformed task names (left to the unknown-task message), stay.
        for line in ["autocandle translation --task translation_en_to_de x", "autocandle translation_en_de x"] {
            assert_eq!(expand_translation_task(args(line)), args(line));
        }
        assert_eq!(expand_translation_task(args("autocandle --json")), args("autocandle --json"));
        assert_eq!(parse_translation_task("translation_en_to_fr"), Ok("translation_en_to_fr".to_owned()));
        assert!(parse_translation_task("en_to_fr").is_err());
    }

    #[test]
    fn sampling_takes_one_beam() {
        let mut a = Seq2SeqArgs {
            max_new_tokens: None,
            min_length: None,
            beams: BeamArgs::default(),
            repetition_penalty: None,
            do_sample: true,
            temperature: None,
            top_k: None,
            top_p: None,
            seed: None,
            stop_sequence: None,
            clean_up_tokenization_spaces: false,
            truncation: false,
            return_tensors: false,
        };
        assert_eq!(a.generation().num_beams, Some(1));
        assert!(a.check().is_ok());
        a.beams.num_beams = Some(3);
        assert!(a.check().is_err());
    }
}
