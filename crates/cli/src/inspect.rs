//! `autocandle inspect ID|PATH`: what autocandle makes of a model: its model type, the
//! class each Auto class resolves to, the weights (parameter count and dtypes read from the
//! safetensors headers), the files it reads, and the loading report of the Auto class that
//! `config.json`'s `architectures` names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use autocandle::arch_api::load::select_registration;
use autocandle::catalog::{model_type_info, resolve_head};
use autocandle::hub::ModelSource;
use autocandle::registry::{ModelRegistration, Registry};
use autocandle::weights::{find_weight_files, Checkpoint};
use autocandle::{AutoConfig, Device, LoadingReport, PretrainedConfig, Task, TaskModel, AUTO_MODEL_CLASSES};
use clap::Args;
use serde_json::{json, Value};

use crate::output::{table, Output};
use crate::tasks::{check_local_path, check_offline_cache, loading_spinner, offline_note, ModelArgs};
use crate::ui;

/// Show how autocandle resolves and loads a model: model type, Auto classes, weights, files,
/// loading report
#[derive(Debug, Clone, Args)]
pub struct Inspect {
    /// Hub repo id or local folder
    #[arg(value_name = "ID|PATH")]
    pub model: String,
    /// Branch, tag or commit of a Hub repo
    #[arg(long, default_value = "main", value_name = "R")]
    pub revision: String,
    /// Do not load the model (no loading report)
    #[arg(long)]
    pub no_load: bool,
    /// Inspect this GGUF file of the repo or folder (transformers' gguf_file)
    #[arg(long, value_name = "FILE")]
    pub gguf_file: Option<String>,
    /// Quantize the linear layers' weights to this ggml type for the loading report: q4_0, q4_1,
    /// q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k
    #[arg(long, value_parser = crate::tasks::parse_quantize, value_name = "TYPE")]
    pub quantize: Option<autocandle::QuantType>,
    /// Download the files again even when the Hub cache has them (a corrupt cache entry)
    #[arg(long)]
    pub force_download: bool,
    /// Follow symbolic links of the model folder that lead outside it (refused by default;
    /// the Hub cache's links into its `blobs/` always work)
    #[arg(long)]
    pub allow_external_links: bool,
}

/// The files autocandle may read besides the config and the weights, by role.
const OTHER_FILES: &[(&str, &str)] = &[
    ("tokenizer.json", "tokenizer"),
    ("tokenizer_config.json", "tokenizer"),
    ("special_tokens_map.json", "tokenizer"),
    ("added_tokens.json", "tokenizer"),
    ("vocab.txt", "tokenizer"),
    ("vocab.json", "tokenizer"),
    ("merges.txt", "tokenizer"),
    ("chat_template.jinja", "chat template"),
    ("chat_template.json", "chat template"),
    ("generation_config.json", "generation"),
    ("preprocessor_config.json", "image processor"),
    ("processor_config.json", "processor"),
    ("modules.json", "sentence-transformers modules"),
    ("1_Pooling/config.json", "sentence-transformers pooling"),
];

/// The tensors of a checkpoint by dtype: parameter count and tensor count.
#[derive(Debug, Default)]
struct WeightStats {
    format: &'static str,
    /// dtype name (safetensors' spelling) -> (elements, tensors)
    by_dtype: BTreeMap<String, (u64, usize)>,
}

impl WeightStats {
    fn add(&mut self, dtype: &str, elements: u64) {
        let entry = self.by_dtype.entry(dtype.to_owned()).or_default();
        entry.0 += elements;
        entry.1 += 1;
    }

    fn is_float(dtype: &str) -> bool {
        matches!(dtype, "F64" | "F32" | "F16" | "BF16") || dtype.starts_with("F8") || dtype.starts_with("F4")
    }

    /// Elements of the floating-point tensors: the parameters (integer tensors are buffers).
    fn parameters(&self) -> u64 {
        self.by_dtype.iter().filter(|(d, _)| Self::is_float(d)).map(|(_, (n, _))| n).sum()
    }

    fn tensors(&self) -> usize {
        self.by_dtype.values().map(|(_, t)| t).sum()
    }
}

/// Read the header of a safetensors file: `(dtype, shape)` per tensor.
fn safetensors_header(path: &Path) -> Result<Vec<(String, Vec<u64>)>> {
    let bad = |why: &str| anyhow::anyhow!("`{}` is not a valid safetensors file: {why}", path.display());
    let mut file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| bad("shorter than its 8-byte header length"))?;
    let len = u64::from_le_bytes(len);
    if len > size.saturating_sub(8) || len > 100_000_000 {
        return Err(bad("the header length exceeds the file; it may be truncated, download it again"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|_| bad("truncated header"))?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&header).map_err(|e| bad(&format!("its header is not JSON ({e})")))?;
    let mut tensors = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(Value::as_str).ok_or_else(|| bad(&format!("`{name}` has no dtype")))?;
        let shape = info
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|dims| dims.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .ok_or_else(|| bad(&format!("`{name}` has no valid shape")))?;
        tensors.push((dtype.to_owned(), shape));
    }
    Ok(tensors)
}

fn weight_stats(files: &[PathBuf]) -> Result<WeightStats> {
    let mut stats = WeightStats::default();
    if files.iter().all(|f| f.extension().is_some_and(|e| e == "safetensors")) {
        stats.format = "safetensors";
        for file in files {
            for (dtype, shape) in safetensors_header(file)? {
                stats.add(&dtype, shape.iter().product());
            }
        }
    } else {
        // PyTorch `.bin`: the restricted unpickler gives shapes; dtypes need the tensors.
        stats.format = "pytorch";
        let checkpoint = Checkpoint::open(files.to_vec())?;
        for name in checkpoint.names() {
            let tensor = checkpoint.tensor(name, &Device::Cpu)?;
            stats.add(&format!("{:?}", tensor.dtype()).to_uppercase(), tensor.elem_count() as u64);
        }
    }
    Ok(stats)
}

/// `1234567` as `1,234,567 (1.23M)`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let short = match n {
        n if n >= 1_000_000_000 => format!(" ({:.2}B)", n as f64 / 1e9),
        n if n >= 1_000_000 => format!(" ({:.2}M)", n as f64 / 1e6),
        n if n >= 1_000 => format!(" ({:.1}K)", n as f64 / 1e3),
        _ => String::new(),
    };
    format!("{grouped}{short}")
}

/// One Auto class and what it resolves to for this model.
struct Resolution {
    auto_class: &'static str,
    task: Task,
    class: Option<&'static str>,
    /// Why autocandle cannot build it (for a class transformers has).
    unavailable: Option<String>,
}

/// The registration `AutoModelFor<task>` picks: the class named in `architectures` among the
/// registered heads of the task, else the registry's default.
fn resolve(model_type: &str, task: Task, architectures: &[String]) -> autocandle::Result<&'static ModelRegistration> {
    let registry = Registry::global()?;
    let candidates: Vec<&ModelRegistration> =
        registry.heads(model_type).into_iter().filter(|r| r.task == task).collect();
    match select_registration(&candidates, architectures) {
        Some(reg) => Ok(reg),
        None => resolve_head(model_type, task),
    }
}

fn resolutions(config: &PretrainedConfig) -> Vec<Resolution> {
    let model_type = config.model_type();
    let architectures = config.architectures();
    let info = model_type_info(model_type);
    let mut out = Vec::new();
    for &(task, auto_class) in AUTO_MODEL_CLASSES {
        let in_transformers = info.and_then(|i| i.task_class(task)).map(|tc| tc.class_name);
        match resolve(model_type, task, &architectures) {
            Ok(reg) => out.push(Resolution { auto_class, task, class: Some(reg.class_name), unavailable: None }),
            Err(e) if in_transformers.is_some() => {
                out.push(Resolution { auto_class, task, class: in_transformers, unavailable: Some(e.to_string()) })
            }
            Err(_) => {}
        }
    }
    out
}

/// The task whose Auto class loads `architectures[0]` (the first one autocandle or the
/// catalog knows), else the base model.
fn task_of_architectures(config: &PretrainedConfig, resolutions: &[Resolution]) -> Task {
    for arch in config.architectures() {
        let registered = Registry::global()
            .ok()
            .and_then(|r| r.heads(config.model_type()).into_iter().find(|h| h.class_name == arch).map(|h| h.task));
        if let Some(task) = registered {
            return task;
        }
        if let Some(r) = resolutions.iter().find(|r| r.class == Some(arch.as_str())) {
            return r.task;
        }
    }
    Task::Base
}

fn report_json(report: &LoadingReport) -> Value {
    json!({
        "missing_keys": report.missing_keys,
        "unexpected_keys": report.unexpected_keys,
        "mismatched_keys": report.mismatched_keys.iter().map(|k| json!({
            "key": k.name, "checkpoint_shape": k.checkpoint_shape, "model_shape": k.model_shape,
        })).collect::<Vec<_>>(),
    })
}

impl Inspect {
    pub fn run(&self, json: bool) -> Result<()> {
        check_local_path(&self.model)?;
        check_offline_cache(&self.model)?;
        let model = self.model.as_str();
        let model_args = ModelArgs {
            model: Some(model.to_owned()),
            revision: Some(self.revision.clone()),
            device: crate::tasks::DeviceArg::Cpu,
            dtype: autocandle::DTypeChoice::Auto,
            gguf_file: self.gguf_file.clone(),
            quantize: self.quantize,
            force_download: self.force_download,
            allow_external_links: self.allow_external_links,
        };
        let opts = model_args.load_options(&self.revision)?;
        let spinner = loading_spinner(model, &self.revision, &format!("inspecting {model}"));
        let note = offline_note(model);
        let source = ModelSource::resolve(model, &opts).with_context(|| format!("cannot inspect `{model}`"))?;
        let config = AutoConfig::from_pretrained_with(model, &opts)
            .with_context(|| format!("cannot read the config of `{model}`{note}"))?
            .value;
        let model_type = config.model_type().to_owned();
        let info = model_type_info(&model_type);
        let resolutions = resolutions(&config);
        // A GGUF file holds the config, the tokenizer and the weights; its tensors are not
        // counted here.
        let weight_files = match &self.gguf_file {
            Some(_) => Vec::new(),
            None => {
                find_weight_files(&source).with_context(|| format!("cannot find the weights of `{model}`{note}"))?
            }
        };
        let stats = match &self.gguf_file {
            Some(_) => WeightStats { format: "gguf", ..WeightStats::default() },
            None => weight_stats(&weight_files)?,
        };

        let mut files: Vec<(String, &str, u64)> = Vec::new();
        let mut add_file = |path: &Path, role: &'static str| {
            let name = match source.local_dir() {
                Some(dir) => path.strip_prefix(dir).unwrap_or(path).display().to_string(),
                None => {
                    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
                }
            };
            files.push((name, role, std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)));
        };
        match &self.gguf_file {
            Some(gguf) => add_file(&source.file(gguf)?, "gguf: config, tokenizer and weights"),
            None => add_file(&source.file("config.json")?, "config"),
        }
        for f in &weight_files {
            add_file(f, "weights");
        }
        for (file, role) in OTHER_FILES {
            if let Ok(Some(path)) = source.optional_file(file) {
                add_file(&path, role);
            }
        }

        let load_task = task_of_architectures(&config, &resolutions);
        let loading = if self.no_load {
            None
        } else {
            ui::mute_warnings(true);
            let loaded = TaskModel::from_pretrained_with(load_task, model, &opts);
            ui::mute_warnings(false);
            Some(loaded.map(|l| l.report))
        };
        drop(spinner);
        let load_class = resolutions.iter().find(|r| r.task == load_task).and_then(|r| r.class);

        if json {
            let doc = json!({
                "model": model,
                "source": source.describe(),
                "model_type": model_type,
                "name": info.map(|i| i.name),
                "crate": info.and_then(|i| i.crate_name),
                "feature": info.and_then(|i| i.feature),
                "architectures": config.architectures(),
                "config_dtype": config.dtype().map(|d| format!("{d:?}").to_lowercase()),
                "gguf_file": self.gguf_file,
                "quantize": self.quantize.map(|q| q.name()),
                "auto_classes": resolutions.iter().map(|r| json!({
                    "auto_class": r.auto_class,
                    "task": r.task.as_str(),
                    "class": r.class,
                    "implemented": r.unavailable.is_none(),
                })).collect::<Vec<_>>(),
                "weights": {
                    "format": stats.format,
                    "parameters": self.gguf_file.is_none().then(|| stats.parameters()),
                    "tensors": self.gguf_file.is_none().then(|| stats.tensors()),
                    "dtypes": stats.by_dtype.iter().map(|(d, (n, t))| (d.clone(), json!({"elements": n, "tensors": t})))
                        .collect::<serde_json::Map<String, Value>>(),
                },
                "files": files.iter().map(|(f, role, bytes)| json!({"file": f, "role": role, "bytes": bytes}))
                    .collect::<Vec<_>>(),
                "loading": match &loading {
                    None => Value::Null,
                    Some(result) => {
                        let mut v = match result {
                            Ok(report) => report_json(report),
                            Err(e) => json!({"error": e.to_string()}),
                        };
                        v["auto_class"] = json!(load_task.auto_class());
                        v["class"] = json!(load_class);
                        v
                    }
                },
            });
            Output::document(&doc)?;
        } else {
            let mut out = Output::new(false);
            let mut rows: Vec<Vec<String>> = vec![
                vec!["model".into(), format!("{model} ({})", source.describe())],
                vec![
                    "model_type".into(),
                    match info {
                        Some(i) => format!(
                            "{model_type} ({}{})",
                            i.name,
                            i.crate_name.map(|c| format!(", {c}")).unwrap_or_else(|| ", not implemented".into())
                        ),
                        None => format!("{model_type} (registered at run time)"),
                    },
                ],
                vec!["architectures".into(), config.architectures().join(", ")],
            ];
            if let Some(dtype) = config.dtype() {
                rows.push(vec!["config dtype".into(), format!("{dtype:?}").to_lowercase()]);
            }
            if let Some(gguf) = &self.gguf_file {
                rows.push(vec!["gguf file".into(), gguf.clone()]);
            }
            if let Some(quantize) = self.quantize {
                rows.push(vec!["quantize".into(), quantize.name().to_owned()]);
            }
            if self.gguf_file.is_none() {
                rows.push(vec!["parameters".into(), count(stats.parameters())]);
            }
            let dtypes: Vec<String> = stats
                .by_dtype
                .iter()
                .map(|(d, (n, t))| format!("{d}: {} elements in {t} tensors", count(*n)))
                .collect();
            let weights = match &self.gguf_file {
                Some(_) => "gguf (tensors not counted here)".to_owned(),
                None => format!("{}; {}", stats.format, dtypes.join("; ")),
            };
            rows.push(vec!["weights".into(), weights]);
            for line in table(&rows) {
                out.line(line.trim_start())?;
            }
            out.line("auto classes")?;
            let rows: Vec<Vec<String>> = resolutions
                .iter()
                .map(|r| {
                    let class = r.class.unwrap_or("-").to_owned();
                    let class = if r.unavailable.is_some() {
                        format!("{class} (not implemented in autocandle)")
                    } else {
                        class
                    };
                    vec![r.auto_class.to_owned(), format!("-> {class}")]
                })
                .collect();
            for line in table(&rows) {
                out.line(line)?;
            }
            out.line("files")?;
            let rows: Vec<Vec<String>> = files
                .iter()
                .map(|(f, role, bytes)| vec![f.clone(), format!("{bytes} bytes"), role.to_string()])
                .collect();
            for line in table(&rows) {
                out.line(line)?;
            }
            match &loading {
                None => {}
                Some(Ok(report)) => {
                    out.line(format!(
                        "loading report ({} -> {}): {report}",
                        load_task.auto_class(),
                        load_class.unwrap_or("-")
                    ))?;
                }
                Some(Err(_)) => {
                    out.line(format!("loading report ({}): the model did not load", load_task.auto_class()))?
                }
            }
            out.finish()?;
        }
        match loading {
            Some(Err(e)) => {
                Err(anyhow::Error::new(e).context(format!("`{model}` does not load with {}", load_task.auto_class())))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_and_shortened() {
        assert_eq!(count(12), "12");
        assert_eq!(count(1234), "1,234 (1.2K)");
        assert_eq!(count(1_234_567), "1,234,567 (1.23M)");
        assert_eq!(count(7_000_000_000), "7,000,000,000 (7.00B)");
    }

    #[test]
    fn truncated_safetensors_headers_are_errors() {
        let dir = std::env::temp_dir().join(format!("autocandle-cli-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.safetensors");
        std::fs::write(&path, 1000u64.to_le_bytes()).unwrap();
        let err = safetensors_header(&path).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("header length exceeds the file"), "{err}");
        std::fs::write(&path, [1u8, 2]).unwrap();
        assert!(safetensors_header(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
