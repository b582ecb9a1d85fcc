//! The `autocandle` command: `transformers`' pipelines from the shell
//! (`autocandle fill-mask --model ID|PATH "paris is the [MASK] of france."`; translation also
//! as `autocandle translation_XX_to_YY ...`, like `transformers.pipeline`), `chat` for a multi-turn
//! chat with a model (like `transformers chat`), `embed` and `sentence-similarity` for
//! sentence-transformers models, `inspect` to see how a model resolves and
//! loads, and `models` for the architecture table.
//!
//! Results go to stdout (human lines, or one JSON document with `--json`); notes, warnings,
//! the spinner and download bars to stderr. Errors are a line or two on stderr and exit code
//! 1 (2 for usage errors, as clap does).

mod draw;
mod inspect;
mod models;
mod output;
mod tasks;
mod ui;

use std::process::ExitCode;

use anyhow::Result;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// transformers' pipelines, Auto classes and model catalog on candle
#[derive(Debug, Parser)]
#[command(name = "autocandle", version, propagate_version = true)]
struct Cli {
    /// Print results as one JSON document (transformers' field names; one element per input)
    #[arg(long, global = true)]
    json: bool,
    /// No notes, warnings, log lines, spinner or progress bars on stderr (errors still print)
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Log what loading does on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins)
    ///
    /// -v: one line per model, tokenizer, processor or pipeline loaded (source, class, dtype,
    /// device, time). -vv: each file and where it came from (folder, cache, download), the
    /// config's model_type and the class picked, the weight format, tensor counts, and
    /// tokens/s of generation. RUST_LOG, when set, is used instead, with `tracing`'s syntax
    /// (`RUST_LOG=autocandle_core=debug`). --quiet silences both.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    FillMask(tasks::fill_mask::FillMask),
    #[command(alias = "sentiment-analysis")]
    TextClassification(tasks::text_classification::TextClassification),
    #[command(alias = "ner")]
    TokenClassification(tasks::token_classification::TokenClassification),
    FeatureExtraction(tasks::feature_extraction::FeatureExtraction),
    Embed(tasks::embed::Embed),
    SentenceSimilarity(tasks::embed::SentenceSimilarity),
    TextGeneration(tasks::text_generation::TextGeneration),
    Chat(tasks::chat::Chat),
    ImageClassification(tasks::image_classification::ImageClassification),
    ZeroShotImageClassification(tasks::zero_shot_image_classification::ZeroShotImageClassification),
    QuestionAnswering(tasks::question_answering::QuestionAnswering),
    #[command(name = "text2text-generation")]
    Text2TextGeneration(tasks::text2text::Text2TextGeneration),
    Summarization(tasks::text2text::Summarization),
    Translation(tasks::text2text::Translation),
    Rerank(tasks::rerank::Rerank),
    #[command(name = "automatic-speech-recognition", alias = "asr")]
    AutomaticSpeechRecognition(tasks::asr::Asr),
    AudioClassification(tasks::audio_classification::AudioClassification),
    ObjectDetection(tasks::object_detection::ObjectDetection),
    ImageSegmentation(tasks::image_segmentation::ImageSegmentation),
    DepthEstimation(tasks::depth_estimation::DepthEstimationCommand),
    ImageFeatureExtraction(tasks::image_feature_extraction::ImageFeatureExtraction),
    ImageTextToText(tasks::image_text_to_text::ImageTextToText),
    CrossEncode(tasks::rerank::CrossEncode),
    Inspect(inspect::Inspect),
    Models(models::Models),
}

fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        Command::FillMask(args) => tasks::execute(&args, json),
        Command::TextClassification(args) => tasks::execute(&args, json),
        Command::TokenClassification(args) => tasks::execute(&args, json),
        Command::FeatureExtraction(args) => tasks::execute(&args, json),
        Command::Embed(args) => args.run(json),
        Command::SentenceSimilarity(args) => args.run(json),
        Command::TextGeneration(args) => tasks::execute(&args, json),
        Command::Chat(args) => args.run(json),
        Command::ImageClassification(args) => tasks::execute(&args, json),
        Command::ZeroShotImageClassification(args) => tasks::execute(&args, json),
        Command::QuestionAnswering(args) => tasks::execute(&args, json),
        Command::Text2TextGeneration(args) => tasks::execute(&args, json),
        Command::Summarization(args) => tasks::execute(&args, json),
        Command::Translation(args) => tasks::execute(&args, json),
        Command::Rerank(args) => args.run(json),
        Command::AutomaticSpeechRecognition(args) => tasks::execute(&args, json),
        Command::AudioClassification(args) => tasks::execute(&args, json),
        Command::ObjectDetection(args) => tasks::execute(&args, json),
        Command::ImageSegmentation(args) => tasks::execute(&args, json),
        Command::DepthEstimation(args) => tasks::execute(&args, json),
        Command::ImageFeatureExtraction(args) => tasks::execute(&args, json),
        Command::ImageTextToText(args) => tasks::execute(&args, json),
        Command::CrossEncode(args) => args.run(json),
        Command::Inspect(args) => args.run(json),
        Command::Models(args) => args.run(json),
    }
}

/// The clap command, with each task's default model in its help.
fn command() -> clap::Command {
    let mut command = Cli::command();
    let mut defaults = String::from("Default models (transformers' pipeline defaults, used without --model):\n");
    for d in tasks::DEFAULTS {
        let source = d
            .source
            .strip_prefix("autocandle: ")
            .map_or_else(|| format!("transformers {}", d.source), |why| format!("autocandle's choice: {why}"));
        defaults.push_str(&format!("  {:<32} {} (revision {}; {source})\n", d.task, d.model, d.revision));
        if command.find_subcommand(d.task).is_some() {
            let help = format!("Default model: {} (revision {}), {}", d.model, d.revision, d.whose());
            command = command.mut_subcommand(d.task, |sub| sub.after_help(help));
        }
    }
    command.after_help(defaults)
}

/// An unknown subcommand that names a pipeline task gets the library's explanation (removed
/// from transformers, not implemented yet, or unknown with the list of tasks).
fn unknown_task(error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::InvalidSubcommand {
        return None;
    }
    let Some(ContextValue::String(name)) = error.get(ContextKind::InvalidSubcommand) else { return None };
    Some(match autocandle::pipelines::normalize_task(name) {
        Err(e) => {
            let message = e.to_string();
            message.strip_prefix("invalid input: ").map_or(message.clone(), str::to_owned)
        }
        Ok(task) => format!("the `{task}` pipeline exists in the library but has no command yet"),
    })
}

/// `error: <what>` then, on a second line, the causes (those that add something).
fn print_error(error: &anyhow::Error) {
    let mut lines: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !lines.iter().any(|l| l.contains(&text)) {
            lines.push(text);
        }
    }
    let mut lines = lines.into_iter();
    eprintln!("error: {}", lines.next().unwrap_or_default());
    let causes: Vec<String> = lines.collect();
    if !causes.is_empty() {
        eprintln!("  {}", causes.join(": "));
    }
}

/// A write to a closed pipe (`autocandle ... | head -1`) ends the command quietly.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Without `RUST_BACKTRACE`, a bug reads as one plain error line instead of a panic report.
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown error".to_owned());
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{location}: {message}");
        eprintln!("  this is a bug in autocandle: please report it with the output of RUST_BACKTRACE=1");
    }));
}

fn main() -> ExitCode {
    install_panic_hook();
    let args = tasks::text2text::expand_translation_task(std::env::args_os().collect());
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            if let Some(message) = unknown_task(&e) {
                eprintln!("error: {message}");
                eprintln!("  run `autocandle --help` for the tasks and commands");
                return ExitCode::from(2);
            }
            e.exit()
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    ui::init(cli.quiet, cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    /// Library pipelines that have no command yet (being added to the library while this
    /// crate was written); wiring one is a module in `tasks/`, a `Command` variant and its
    /// line in `run`. Remove it from here then.
    const NOT_WIRED_YET: &[&str] = &[];

    #[test]
    fn every_pipeline_of_the_library_has_a_command() {
        let command = command();
        for task in autocandle::pipelines::SUPPORTED_TASKS {
            let wired = command.find_subcommand(task).is_some();
            if NOT_WIRED_YET.contains(task) {
                assert!(!wired, "{task} has a command now: remove it from NOT_WIRED_YET");
                println!("{task}: no command yet");
            } else {
                assert!(wired, "no command for the library's `{task}` pipeline");
            }
        }
        for (alias, _) in autocandle::pipelines::TASK_ALIASES {
            assert!(command.find_subcommand(alias).is_some(), "no alias {alias}");
        }
    }
}
