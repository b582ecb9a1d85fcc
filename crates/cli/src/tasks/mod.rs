//! The pipeline commands: what every task shares (model options, default models, inputs
//! from arguments or stdin, loading under a spinner) and one module per task.
//!
//! Adding a task (a new `autocandle::pipelines` pipeline) takes three steps:
//! 1. a module here with the task's `clap::Args` struct (flattening [`ModelArgs`] and
//!    [`InputArgs`]) and its [`TaskCommand`] impl: the pipeline type, how to load it, and how
//!    to run one input (print the human lines, return the `transformers`-shaped JSON);
//! 2. a variant of `Command` in `main.rs` and its line in `run`'s dispatch
//!    (`Command::X(args) => tasks::execute(&args, json)`), and the task out of the
//!    `NOT_WIRED_YET` list of `main.rs`' tests;
//! 3. its row in [`DEFAULTS`] if it is not there yet (the model used without `--model`).

pub mod asr;
pub mod audio_classification;
pub mod chat;
pub mod depth_estimation;
pub mod embed;
pub mod feature_extraction;
pub mod fill_mask;
pub mod image_classification;
pub mod image_feature_extraction;
pub mod image_segmentation;
pub mod image_text_to_text;
pub mod object_detection;
pub mod question_answering;
pub mod rerank;
pub mod text2text;
pub mod text_classification;
pub mod text_generation;
pub mod token_classification;
pub mod vision;
pub mod zero_shot_image_classification;

use std::io::IsTerminal;

use anyhow::{Context, Result};
use autocandle::{DType, DTypeChoice, Device, LoadOptions, QuantType};
use clap::Args;
use serde_json::Value;

use crate::output::{short, Output};
use crate::ui;

/// `transformers`' default model for a pipeline task (`SUPPORTED_TASKS[task]["default"]`).
#[derive(Debug, Clone, Copy)]
pub struct TaskDefault {
    pub task: &'static str,
    pub model: &'static str,
    /// The revision `transformers` pins.
    pub revision: &'static str,
    /// Which `transformers` has this default; `autocandle: <why>` for a model autocandle
    /// picks where `transformers`' default is an architecture it does not implement.
    pub source: &'static str,
}

impl TaskDefault {
    /// Whose default this is, for messages: `transformers' default for TASK`, or autocandle's
    /// with the reason.
    pub fn whose(&self) -> String {
        match self.source.strip_prefix("autocandle: ") {
            Some(why) => format!("autocandle's default for {} ({why})", self.task),
            None => format!("transformers' default for {}", self.task),
        }
    }
}

/// The model each task uses without `--model`: `transformers`' pipeline defaults, from
/// `transformers/pipelines/__init__.py` (5.x where the task still exists there, 4.57 for the
/// tasks 5.x removed, and 4.57's `gpt2` for text-generation, whose 5.x default
/// `HuggingFaceTB/SmolLM3-3B` is an architecture autocandle does not implement).
pub const DEFAULTS: &[TaskDefault] = &[
    TaskDefault {
        task: "audio-classification",
        model: "superb/wav2vec2-base-superb-ks",
        revision: "372e048",
        source: "4.x and 5.x",
    },
    TaskDefault {
        task: "automatic-speech-recognition",
        model: "facebook/wav2vec2-base-960h",
        revision: "22aad52",
        source: "4.x and 5.x",
    },
    TaskDefault { task: "depth-estimation", model: "Intel/dpt-large", revision: "bc15f29", source: "5.x" },
    TaskDefault {
        task: "feature-extraction",
        model: "distilbert/distilbert-base-cased",
        revision: "6ea8117",
        source: "4.x and 5.x",
    },
    TaskDefault {
        task: "fill-mask",
        model: "distilbert/distilroberta-base",
        revision: "fb53ab8",
        source: "4.x and 5.x",
    },
    TaskDefault {
        task: "image-classification",
        model: "google/vit-base-patch16-224",
        revision: "3f49326",
        source: "4.x and 5.x",
    },
    TaskDefault {
        task: "image-feature-extraction",
        model: "google/vit-base-patch16-224",
        revision: "3f49326",
        source: "5.x",
    },
    TaskDefault {
        task: "image-segmentation",
        model: "nvidia/segformer-b0-finetuned-ade-512-512",
        revision: "main",
        source: "autocandle: transformers' default, facebook/detr-resnet-50-panoptic, is a panoptic DETR, which \
                 autocandle does not implement",
    },
    TaskDefault { task: "image-text-to-text", model: "Qwen/Qwen3-VL-2B-Instruct", revision: "8964489", source: "5.x" },
    TaskDefault { task: "object-detection", model: "facebook/detr-resnet-50", revision: "1d5f47b", source: "5.x" },
    TaskDefault {
        task: "question-answering",
        model: "distilbert/distilbert-base-cased-distilled-squad",
        revision: "564e9b5",
        source: "4.x",
    },
    TaskDefault { task: "summarization", model: "sshleifer/distilbart-cnn-12-6", revision: "a4f8f3e", source: "4.x" },
    TaskDefault {
        task: "text-classification",
        model: "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        revision: "714eb0f",
        source: "4.x and 5.x",
    },
    TaskDefault {
        task: "text-generation",
        model: "openai-community/gpt2",
        revision: "607a30d",
        source: "4.x; 5.x has HuggingFaceTB/SmolLM3-3B, which autocandle does not implement",
    },
    TaskDefault { task: "text2text-generation", model: "google-t5/t5-base", revision: "a9723ea", source: "4.x" },
    TaskDefault {
        task: "token-classification",
        model: "dbmdz/bert-large-cased-finetuned-conll03-english",
        revision: "4c53496",
        source: "4.x and 5.x",
    },
    TaskDefault { task: "translation", model: "google-t5/t5-base", revision: "a9723ea", source: "4.x" },
    TaskDefault {
        task: "zero-shot-image-classification",
        model: "openai/clip-vit-base-patch32",
        revision: "3d74acf",
        source: "4.x and 5.x",
    },
];

/// The default of `task` (`translation_en_to_fr` is the translation task).
pub fn default_for(task: &str) -> Option<&'static TaskDefault> {
    let task = if task.starts_with("translation") { "translation" } else { task };
    DEFAULTS.iter().find(|d| d.task == task)
}

/// Where the model comes from and how it is loaded.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hub repo id or local folder [default: transformers' default model for the task]
    #[arg(long, short = 'm', value_name = "ID|PATH")]
    pub model: Option<String>,
    /// Branch, tag or commit of a Hub repo [default: main, or the revision transformers pins
    /// for the default model]
    #[arg(long, value_name = "R")]
    pub revision: Option<String>,
    /// Device to run on: cpu, cuda, cuda:N, metal, metal:N
    #[arg(long, default_value = "cpu", value_parser = parse_device, value_name = "DEVICE")]
    pub device: DeviceArg,
    /// Dtype of the weights: f32, f16, bf16, or auto (the config's `torch_dtype`)
    #[arg(long, default_value = "auto", value_parser = parse_dtype, value_name = "DTYPE")]
    pub dtype: DTypeChoice,
    /// Load config, tokenizer and weights from this GGUF file of the repo or folder
    /// (transformers' gguf_file)
    ///
    /// The weights stay quantized as the file has them, unless --dtype asks for f32, f16 or
    /// bf16, which dequantizes them as transformers does.
    #[arg(long, value_name = "FILE")]
    pub gguf_file: Option<String>,
    /// Quantize the weights of the linear layers to this ggml type as they load: q4_0, q4_1,
    /// q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k
    #[arg(long, value_parser = parse_quantize, value_name = "TYPE")]
    pub quantize: Option<QuantType>,
    /// Download the files again even when the Hub cache has them (a corrupt cache entry)
    #[arg(long)]
    pub force_download: bool,
    /// Follow symbolic links of the model folder that lead outside it (refused by default;
    /// the Hub cache's links into its `blobs/` always work)
    #[arg(long)]
    pub allow_external_links: bool,
}

/// The inputs of a pipeline command.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Inputs; without any (or with `-`), one per line from stdin
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
}

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    Cpu,
    Cuda(usize),
    Metal(usize),
}

pub fn parse_device(s: &str) -> std::result::Result<DeviceArg, String> {
    let (name, ordinal) = match s.split_once(':') {
        Some((name, n)) => {
            let n = n.parse().map_err(|_| format!("`{n}` is not a device number: use e.g. `cuda:0`"))?;
            (name, Some(n))
        }
        None => (s, None),
    };
    match (name.to_ascii_lowercase().as_str(), ordinal) {
        ("cpu", None) => Ok(DeviceArg::Cpu),
        ("cuda", n) => Ok(DeviceArg::Cuda(n.unwrap_or(0))),
        ("metal", n) => Ok(DeviceArg::Metal(n.unwrap_or(0))),
        _ => Err("use cpu, cuda, cuda:N, metal or metal:N".to_owned()),
    }
}

pub fn parse_dtype(s: &str) -> std::result::Result<DTypeChoice, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "auto" => DTypeChoice::Auto,
        "f32" | "float32" => DTypeChoice::Fixed(DType::F32),
        "f16" | "float16" | "half" => DTypeChoice::Fixed(DType::F16),
        "bf16" | "bfloat16" => DTypeChoice::Fixed(DType::BF16),
        _ => return Err("use f32, f16, bf16 or auto".to_owned()),
    })
}

/// `--quantize`: a ggml type name (`q8_0`, `Q4_K`, `q4k`); the error lists the valid names.
pub fn parse_quantize(s: &str) -> std::result::Result<QuantType, String> {
    s.parse::<QuantType>().map_err(|e| {
        let message = e.to_string();
        message.strip_prefix("invalid input: ").map_or(message.clone(), str::to_owned)
    })
}

impl DeviceArg {
    /// Open the device; a GPU backend that is not compiled in says which feature to enable.
    pub fn open(self) -> Result<Device> {
        let (name, feature, result) = match self {
            DeviceArg::Cpu => return Ok(Device::Cpu),
            DeviceArg::Cuda(n) => (format!("cuda:{n}"), "cuda", Device::new_cuda(n)),
            DeviceArg::Metal(n) => (format!("metal:{n}"), "metal", Device::new_metal(n)),
        };
        let compiled = match feature {
            "cuda" => cfg!(feature = "cuda"),
            _ => cfg!(feature = "metal"),
        };
        result.map_err(|e| {
            let e = e.to_string();
            let e = e.lines().next().unwrap_or_default().to_owned();
            if compiled {
                anyhow::anyhow!("cannot open the device `{name}`: {e}")
            } else {
                anyhow::anyhow!(
                    "cannot open the device `{name}`: this autocandle was built without {feature} support; \
                     rebuild with `cargo install autocandle-cli --features {feature}` (or `cargo run -p autocandle-cli \
                     --features {feature}`), or use `--device cpu`"
                )
            }
        })
    }
}

impl ModelArgs {
    /// The model id or folder, and the revision: `--model`, else the task's default (with the
    /// note transformers prints on stderr).
    pub fn resolve(&self, task: &str) -> Result<(String, String)> {
        if let Some(model) = &self.model {
            check_local_path(model)?;
            return Ok((model.clone(), self.revision.clone().unwrap_or_else(|| "main".to_owned())));
        }
        let default = default_for(task).with_context(|| format!("the task `{task}` has no default model"))?;
        let revision = self.revision.clone().unwrap_or_else(|| default.revision.to_owned());
        ui::note(format!(
            "no --model given: using {} (revision {revision}), {}; pass --model to choose",
            default.model,
            default.whose()
        ));
        Ok((default.model.to_owned(), revision))
    }

    /// Load options for these arguments; download bars when stderr is a terminal.
    pub fn load_options(&self, revision: &str) -> Result<LoadOptions> {
        let mut opts = LoadOptions::new().revision(revision).device(self.device.open()?).progress(ui::interactive());
        opts.dtype = self.dtype;
        opts.gguf_file = self.gguf_file.clone();
        opts.quantize = self.quantize;
        opts.force_download = self.force_download;
        opts.allow_external_links = self.allow_external_links;
        Ok(opts)
    }
}

/// A model argument that is clearly a path (`./x`, `/x`, `x/`, `~/x`, an existing file) must
/// be an existing folder: otherwise the Hub would be asked for it.
pub fn check_local_path(model: &str) -> Result<()> {
    let path = std::path::Path::new(model);
    if path.is_dir() {
        return Ok(());
    }
    if path.is_file() {
        anyhow::bail!(
            "`{model}` is a file, not a model folder: give the folder that holds config.json and the weights"
        );
    }
    let looks_like_path = model.starts_with(['.', '/', '~', '\\'])
        || model.ends_with(['/', '\\'])
        || model.matches('/').count() > 1
        || (model.len() > 1 && model.as_bytes()[1] == b':');
    if looks_like_path {
        anyhow::bail!(
            "no model folder at `{model}`: give an existing folder with config.json and the weights, or a Hub repo id \
             such as `google-bert/bert-base-uncased`"
        );
    }
    Ok(())
}

/// Whether offline mode is on (`HF_HUB_OFFLINE`, ...), as the library reads it.
fn offline() -> bool {
    autocandle::hub::HubSettings::from_env(&autocandle::LoadOptions::new()).offline()
}

fn is_hub_id(model: &str) -> bool {
    !std::path::Path::new(model).is_dir()
}

/// Offline, a Hub repo that the cache does not have at all cannot load: say so at once.
pub fn check_offline_cache(model: &str) -> Result<()> {
    if !offline() || !is_hub_id(model) {
        return Ok(());
    }
    let cache = autocandle::hub::default_cache_dir();
    if !cache.join(format!("models--{}", model.replace('/', "--"))).is_dir() {
        anyhow::bail!(
            "`{model}` is not a local folder and not in the Hub cache `{}`, and offline mode is on (HF_HUB_OFFLINE): \
             download it once with network access, or give a local folder",
            cache.display()
        );
    }
    Ok(())
}

/// A spinner while a model loads; none while hf-hub may draw download bars (a Hub repo at a
/// revision the cache has not seen), as two bars on one line would garble each other.
pub fn loading_spinner(model: &str, revision: &str, message: &str) -> Option<ui::Spinner> {
    if is_hub_id(model) {
        let repo = autocandle::hub::default_cache_dir().join(format!("models--{}", model.replace('/', "--")));
        let cached = repo.join("refs").join(revision).is_file() || repo.join("snapshots").join(revision).is_dir();
        if !cached {
            return None;
        }
    }
    Some(ui::Spinner::start(message.to_owned()))
}

/// ` (offline mode: ...)` for a Hub repo loaded with `HF_HUB_OFFLINE`, where a file missing
/// from the cache cannot be downloaded.
pub fn offline_note(model: &str) -> &'static str {
    if offline() && is_hub_id(model) {
        " (offline mode: HF_HUB_OFFLINE is set, so only the Hub cache is used)"
    } else {
        ""
    }
}

/// One pipeline command.
pub trait TaskCommand {
    /// The `transformers` task name (`fill-mask`).
    const TASK: &'static str;
    /// The typed pipeline of `autocandle::pipelines`.
    type Pipeline;

    fn model_args(&self) -> &ModelArgs;
    fn input_args(&self) -> &InputArgs;

    /// The inputs to run: the INPUT arguments, or stdin's lines.
    fn inputs(&self) -> Inputs<'_> {
        Inputs::new(&self.input_args().inputs)
    }

    /// Check the options before anything loads.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Load the pipeline.
    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<Self::Pipeline>;

    /// Check, before any input runs, that the loaded pipeline can do what the options ask
    /// (`--chat` needs a chat template); `model` is the model's name for the message.
    fn check_loaded(&self, _pipeline: &Self::Pipeline, _model: &str) -> Result<()> {
        Ok(())
    }

    /// Run one input: print its human lines to `out` and return its JSON result, shaped
    /// as `transformers`' pipeline returns it for that one input.
    fn run(&self, pipeline: &Self::Pipeline, input: &str, out: &mut Output) -> Result<Value>;
}

/// Load the pipeline of `cmd` and run it on every input; with `--json`, print one array with
/// one result per input.
pub fn execute<T: TaskCommand>(cmd: &T, json: bool) -> Result<()> {
    cmd.check()?;
    let (model, revision) = cmd.model_args().resolve(T::TASK)?;
    check_offline_cache(&model)?;
    let opts = cmd.model_args().load_options(&revision)?;
    let pipeline = {
        let _spinner = loading_spinner(&model, &revision, &format!("loading {model} for {}", T::TASK));
        cmd.load(&model, &opts)
            .with_context(|| format!("cannot load the {} pipeline from `{model}`{}", T::TASK, offline_note(&model)))?
    };
    cmd.check_loaded(&pipeline, &model)?;
    let mut out = Output::new(json);
    let mut count = 0usize;
    for input in cmd.inputs() {
        let input = input?;
        count += 1;
        let value = cmd
            .run(&pipeline, &input, &mut out)
            .with_context(|| format!("{} failed on input {count} (`{}`)", T::TASK, short(&input, 60)))?;
        out.push(value);
    }
    if count == 0 {
        ui::note(format!("no input: give INPUT arguments, or lines on stdin (`autocandle {} --help`)", T::TASK));
    }
    out.finish()?;
    Ok(())
}

/// The inputs: the arguments in order, `-` standing for the lines of stdin; stdin alone when
/// there is no argument. Lines are read as they come (empty lines skipped), so results
/// follow their input.
///
/// A line longer than [`chat::MAX_LINE_BYTES`] is an error found without reading more of it,
/// so an endless stdin without newlines (`< /dev/zero`) cannot exhaust memory.
pub struct Inputs<'a> {
    args: std::slice::Iter<'a, String>,
    stdin: Option<std::io::StdinLock<'static>>,
    stdin_used: bool,
}

impl<'a> Inputs<'a> {
    pub fn new(args: &'a [String]) -> Self {
        let mut inputs = Self { args: args.iter(), stdin: None, stdin_used: false };
        if args.is_empty() {
            inputs.open_stdin();
        }
        inputs
    }

    fn open_stdin(&mut self) {
        if self.stdin_used {
            return;
        }
        self.stdin_used = true;
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            ui::note("reading inputs from stdin, one per line (end with Ctrl-D)");
        }
        self.stdin = Some(stdin.lock());
    }
}

impl Iterator for Inputs<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = &mut self.stdin {
                match chat::read_line(reader, chat::MAX_LINE_BYTES) {
                    Ok(Some(line)) => {
                        if line.trim().is_empty() {
                            continue;
                        }
                        return Some(Ok(line));
                    }
                    Ok(None) => self.stdin = None,
                    Err(e) => {
                        // Reading goes no further after a bad line.
                        self.stdin = None;
                        return Some(Err(e.context("cannot read an input line from stdin")));
                    }
                }
            }
            match self.args.next() {
                Some(arg) if arg == "-" => self.open_stdin(),
                Some(arg) => return Some(Ok(arg.clone())),
                None => return None,
            }
        }
    }
}

/// A list given as `a,b,c` in one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommaList(pub Vec<String>);

/// `a,b,c` as a list of trimmed, non-empty items.
pub fn comma_list(s: &str) -> std::result::Result<CommaList, String> {
    let items: Vec<String> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned).collect();
    if items.is_empty() {
        return Err("give at least one item, separated by commas".to_owned());
    }
    Ok(CommaList(items))
}

/// `--top-k`: a number, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    N(usize),
    All,
}

impl TopK {
    pub fn get(self) -> Option<usize> {
        match self {
            TopK::N(n) => Some(n),
            TopK::All => None,
        }
    }
}

pub fn parse_top_k(s: &str) -> std::result::Result<TopK, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(TopK::All);
    }
    match s.parse::<usize>() {
        Ok(0) | Err(_) => Err("use a positive number, or `all`".to_owned()),
        Ok(n) => Ok(TopK::N(n)),
    }
}

/// `score` as a JSON number (an f32 widened to f64, as Python's `float(np.float32)`).
pub fn json_score(score: f32) -> Value {
    Value::from(f64::from(score))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_dtypes_parse() {
        assert_eq!(parse_device("cpu"), Ok(DeviceArg::Cpu));
        assert_eq!(parse_device("cuda"), Ok(DeviceArg::Cuda(0)));
        assert_eq!(parse_device("cuda:1"), Ok(DeviceArg::Cuda(1)));
        assert_eq!(parse_device("Metal"), Ok(DeviceArg::Metal(0)));
        assert!(parse_device("tpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        assert!(parse_device("cpu:1").is_err());
        assert_eq!(parse_dtype("bf16"), Ok(DTypeChoice::Fixed(DType::BF16)));
        assert_eq!(parse_dtype("auto"), Ok(DTypeChoice::Auto));
        assert!(parse_dtype("int8").is_err());
    }

    #[test]
    fn quantization_types_parse_and_the_error_lists_them() {
        assert_eq!(parse_quantize("q8_0"), Ok(QuantType::Q8_0));
        assert_eq!(parse_quantize("Q4_K"), Ok(QuantType::Q4K));
        let err = parse_quantize("q3").unwrap_err();
        assert!(err.starts_with("unknown quantization type `q3`"), "{err}");
        for t in QuantType::ALL {
            assert!(err.contains(t.name()), "{err}");
        }
    }

    #[test]
    fn gguf_file_and_quantize_reach_the_load_options() {
        let args = ModelArgs {
            model: None,
            revision: None,
            device: DeviceArg::Cpu,
            dtype: DTypeChoice::Auto,
            gguf_file: Some("model.Q4_1.gguf".to_owned()),
            quantize: Some(QuantType::Q8_0),
            force_download: true,
            allow_external_links: true,
        };
        let opts = args.load_options("main").unwrap();
        assert_eq!(opts.gguf_file.as_deref(), Some("model.Q4_1.gguf"));
        assert_eq!(opts.quantize, Some(QuantType::Q8_0));
        assert!(opts.force_download && opts.allow_external_links);
    }

    #[test]
    fn top_k_and_lists() {
        assert_eq!(parse_top_k("3"), Ok(TopK::N(3)));
        assert_eq!(parse_top_k("all"), Ok(TopK::All));
        assert!(parse_top_k("0").is_err());
        assert_eq!(comma_list(" a, b ,,c "), Ok(CommaList(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])));
        assert!(comma_list(" , ").is_err());
    }

    #[test]
    fn every_default_is_a_task_of_transformers() {
        for d in DEFAULTS {
            // transformers pins a 7-character commit; autocandle's own picks follow `main`.
            let pinned = d.revision.len() == 7 || (d.source.starts_with("autocandle: ") && d.revision == "main");
            assert!(d.model.contains('/') && pinned, "{d:?}");
        }
        assert_eq!(default_for("translation_en_to_de").map(|d| d.model), Some("google-t5/t5-base"));
        assert!(default_for("no-such-task").is_none());
        for task in autocandle::pipelines::SUPPORTED_TASKS {
            assert!(default_for(task).is_some(), "{task} has no default");
        }
    }

    #[test]
    fn paths_that_are_not_folders_are_refused_before_the_hub() {
        assert!(check_local_path("org/name").is_ok());
        assert!(check_local_path("gpt2").is_ok());
        assert!(check_local_path("./no/such/folder").is_err());
        assert!(check_local_path("/no/such/folder").is_err());
        assert!(check_local_path("a/b/c").is_err());
        assert!(check_local_path(".").is_ok());
    }
}
