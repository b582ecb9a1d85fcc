//! Weight loading: finding the weight files of a model and memory-mapping them behind a
//! candle `VarBuilder` that follows `transformers`' key conventions.
//!
//! Names are looked up as asked, then with the `base_model_prefix` added or removed (a base
//! checkpoint loads into a head model and back), then with the old `gamma`/`beta` names of
//! LayerNorm parameters.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hub::{check_relative_path, ModelSource};

/// Find the weight files of `source`, in `transformers`' order.
pub fn find_weight_files(source: &ModelSource) -> Result<Vec<PathBuf>> {
    if let Some(p) = source.optional_file("model.safetensors")? {
        return Ok(vec![p]);
    }
    if let Some(index) = source.optional_file("model.safetensors.index.json")? {
        return sharded_files(source, &index);
    }
    for legacy in ["pytorch_model.bin", "pytorch_model.bin.index.json"] {
        if source.optional_file(legacy)?.is_some() {
            return Err(Error::Unsupported(format!(
                "{} has only `{legacy}`; PyTorch pickle weights are not read yet: convert them to safetensors \
                 (in Python: `model.save_pretrained(dir, safe_serialization=True)`)",
                source.describe()
            )));
        }
    }
    Err(Error::WeightsNotFound {
        location: source.describe(),
        tried: "model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json"
            .to_owned(),
    })
}

fn sharded_files(source: &ModelSource, index: &std::path::Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: index.to_path_buf(), source })?;
    let Some(map) = json.get("weight_map").and_then(Value::as_object) else {
        return Err(Error::Safetensors {
            path: index.to_path_buf(),
            message: "the index has no `weight_map` object".to_owned(),
        });
    };
    let mut shards: Vec<&str> = Vec::new();
    for (tensor, file) in map {
        let Some(file) = file.as_str() else {
            return Err(Error::Safetensors {
                path: index.to_path_buf(),
                message: format!("`weight_map[{tensor}]` is not a file name"),
            });
        };
        if !shards.contains(&file) {
            shards.push(file);
        }
    }
    shards
        .into_iter()
        .map(|f| {
            check_relative_path(f)?;
            source.file(f)
        })
        .collect()
}

/// Memory-mapped safetensors files holding one checkpoint.
pub struct Checkpoint {
    files: Vec<PathBuf>,
    tensors: MmapedSafetensors,
    names: BTreeSet<String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint").field("files", &self.files).field("tensors", &self.names.len()).finish()
    }
}

#[allow(unsafe_code)]
fn mmap(files: &[PathBuf]) -> candle_core::Result<MmapedSafetensors> {
    // SAFETY: the files are mapped read-only; like every memory-mapped reader (candle,
    // safetensors, PyTorch), this assumes nobody truncates them while the model is loaded.
    unsafe { MmapedSafetensors::multi(files) }
}

impl Checkpoint {
    /// Map `files` and read their headers; a truncated or corrupt file is an error naming it.
    pub fn open(files: Vec<PathBuf>) -> Result<Self> {
        let tensors = match mmap(&files) {
            Ok(t) => t,
            Err(e) => {
                // Find the file at fault so the error names it.
                let culprit = files
                    .iter()
                    .find(|f| mmap(std::slice::from_ref(f)).is_err())
                    .cloned()
                    .unwrap_or_else(|| files.first().cloned().unwrap_or_default());
                if let Err(io) = std::fs::metadata(&culprit) {
                    return Err(Error::io(culprit, io));
                }
                return Err(Error::Safetensors { path: culprit, message: strip_candle_noise(&e) });
            }
        };
        let names = tensors.tensors().into_iter().map(|(n, _)| n).collect();
        Ok(Self { files, tensors, names })
    }

    /// Every tensor name in the checkpoint.
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// The files of the checkpoint.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn describe_files(&self) -> String {
        self.files
            .iter()
            .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn strip_candle_noise(e: &candle_core::Error) -> String {
    // candle prefixes `path: "..."`; the message already names the path.
    let s = e.to_string();
    let s = s.lines().next().unwrap_or_default().to_owned();
    match s.find("\" ") {
        Some(i) if s.starts_with("path: ") => s[i + 2..].to_owned(),
        _ => s,
    }
}

/// What happened while a model was built from a checkpoint: which tensors it read, and the
/// first error, kept typed so that it reaches the caller as is.
#[derive(Debug, Default)]
pub struct LoadTracker {
    used: Mutex<BTreeSet<String>>,
    first_error: Mutex<Option<Error>>,
}

impl LoadTracker {
    fn record_use(&self, key: &str) {
        self.used.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned());
    }

    fn record_error(&self, error: Error) -> candle_core::Error {
        let message = error.to_string();
        let mut slot = self.first_error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(error);
        }
        candle_core::Error::Msg(message)
    }

    /// The first error recorded while loading, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.first_error.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The checkpoint keys that were read.
    pub fn used(&self) -> BTreeSet<String> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

struct CheckpointBackend {
    checkpoint: Arc<Checkpoint>,
    prefix: String,
    tracker: Arc<LoadTracker>,
}

impl CheckpointBackend {
    /// The checkpoint key holding the parameter `name`, following `transformers`' renames.
    fn resolve(&self, name: &str) -> Option<String> {
        let mut candidates = vec![name.to_owned()];
        if !self.prefix.is_empty() {
            let with_dot = format!("{}.", self.prefix);
            match name.strip_prefix(&with_dot) {
                Some(stripped) => candidates.push(stripped.to_owned()),
                None => candidates.push(format!("{with_dot}{name}")),
            }
        }
        let legacy: Vec<String> = candidates
            .iter()
            .filter_map(|c| {
                c.strip_suffix(".weight")
                    .map(|s| format!("{s}.gamma"))
                    .or_else(|| c.strip_suffix(".bias").map(|s| format!("{s}.beta")))
            })
            .collect();
        candidates.extend(legacy);
        candidates.into_iter().find(|c| self.checkpoint.names.contains(c))
    }

    fn fetch(&self, name: &str, expected: Option<&Shape>, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let Some(key) = self.resolve(name) else {
            return Err(self.tracker.record_error(Error::TensorNotFound {
                name: name.to_owned(),
                files: self.checkpoint.describe_files(),
            }));
        };
        let view = self.checkpoint.tensors.get(&key)?;
        if let Some(expected) = expected {
            if view.shape() != expected.dims() {
                return Err(self.tracker.record_error(Error::TensorShape {
                    name: key,
                    expected: expected.dims().to_vec(),
                    got: view.shape().to_vec(),
                }));
            }
        }
        self.tracker.record_use(&key);
        view.load(dev)?.to_dtype(dtype)
    }
}

impl SimpleBackend for CheckpointBackend {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.fetch(name, Some(&s), dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.fetch(name, None, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }
}

/// A `VarBuilder` over `checkpoint` for a model whose base model lives under `prefix`.
pub fn checkpoint_var_builder(
    checkpoint: Arc<Checkpoint>,
    prefix: &str,
    dtype: DType,
    device: &Device,
) -> (VarBuilder<'static>, Arc<LoadTracker>) {
    let tracker = Arc::new(LoadTracker::default());
    let backend = CheckpointBackend { checkpoint, prefix: prefix.to_owned(), tracker: Arc::clone(&tracker) };
    (VarBuilder::from_backend(Box::new(backend), dtype, device.clone()), tracker)
}

/// A `VarBuilder` that initialises every weight afresh (`from_config`).
pub fn fresh_var_builder(dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_varmap(&VarMap::new(), dtype, device)
}
