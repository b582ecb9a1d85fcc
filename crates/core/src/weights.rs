//! Weight loading: finding the weight files of a model (safetensors or PyTorch `.bin`, single
//! or sharded, with a variant) and reading them behind a candle `VarBuilder` that follows
//! `transformers`' key conventions.
//!
//! Names are looked up as asked, then with the `base_model_prefix` added or removed (a base
//! checkpoint loads into a head model and back), then with the old `gamma`/`beta` names of
//! LayerNorm parameters.
//!
//! What a name that is not in the checkpoint does depends on the [`LoadPolicy`]. Strictly
//! ([`checkpoint_var_builder`]) it is a typed [`Error::TensorNotFound`]. The Auto classes load
//! a head model leniently: a tensor of the task head that the checkpoint lacks (a base
//! checkpoint, or one of another head) is initialised afresh as `transformers`'
//! `_init_weights` does and reported as missing, while a missing tensor of the base model
//! itself stays an error (the checkpoint is broken or does not match the config). A head
//! tensor is one whose name is outside the base model's prefix (`classifier.weight`, not
//! `bert.encoder...`) and whose top-level module (`classifier`) the checkpoint has nothing of,
//! with or without the prefix; so it needs no per-architecture code. `CLIPForImageClassification`
//! (whose vision tower is not under its prefix `clip`) gets a fresh `classifier` from a
//! checkpoint without one, while a missing `vision_model.encoder.layers.5...` is an error
//! because the checkpoint has a `vision_model`. `tests/loading.rs` checks the resulting
//! reports against `transformers`' `output_loading_info` for every head fixture.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::gguf::GgufCheckpoint;
use crate::hub::{check_relative_path, ModelSource};
use crate::options::{LoadingReport, MismatchedKey};
use crate::pickle::TorchFile;
use crate::safetensors_file::SafetensorsFile;

/// `model.safetensors`.
pub const SAFE_WEIGHTS_NAME: &str = "model.safetensors";
/// `model.safetensors.index.json`.
pub const SAFE_WEIGHTS_INDEX_NAME: &str = "model.safetensors.index.json";
/// `pytorch_model.bin`.
pub const WEIGHTS_NAME: &str = "pytorch_model.bin";
/// `pytorch_model.bin.index.json`.
pub const WEIGHTS_INDEX_NAME: &str = "pytorch_model.bin.index.json";

/// `transformers`' `_add_variant`: the variant goes before the last extension
/// (`model.fp16.safetensors`, `model.safetensors.index.fp16.json`).
pub fn add_variant(weights_name: &str, variant: Option<&str>) -> String {
    match (variant, weights_name.rsplit_once('.')) {
        (Some(v), Some((path, ext))) => format!("{path}.{v}.{ext}"),
        _ => weights_name.to_owned(),
    }
}

/// Find the weight files of `source`, in `transformers`' order: `model.safetensors`,
/// `model.safetensors.index.json`, `pytorch_model.bin`, `pytorch_model.bin.index.json`, each
/// with the source's variant, and only the formats its `use_safetensors` allows.
pub fn find_weight_files(source: &ModelSource) -> Result<Vec<PathBuf>> {
    let variant = source.variant();
    let mut tried = Vec::new();
    let formats: &[(&str, &str)] = match source.use_safetensors() {
        Some(true) => &[(SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)],
        Some(false) => &[(WEIGHTS_NAME, WEIGHTS_INDEX_NAME)],
        None => &[(SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME), (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)],
    };
    for (single, index) in formats {
        let single = add_variant(single, variant);
        if let Some(p) = source.optional_file(&single)? {
            tracing::debug!(format = format_name(&single), file = %p.display(), "weight file");
            return Ok(vec![p]);
        }
        let index = add_variant(index, variant);
        if let Some(p) = source.optional_file(&index)? {
            let shards = sharded_files(source, &p)?;
            tracing::debug!(
                format = format_name(&index),
                index = %p.display(),
                shards = shards.len(),
                "sharded weight files"
            );
            return Ok(shards);
        }
        tried.push(single);
        tried.push(index);
    }
    let mut tried = tried.join(", ");
    // Only a local folder is checked for the files without the variant: on the Hub, looking
    // would download them.
    if let (Some(v), Some(_)) = (variant, source.local_dir()) {
        for (single, index) in formats {
            for name in [single, index] {
                if source.optional_file(name)?.is_some() {
                    tried.push_str(&format!(
                        " (there is `{name}` without the variant `{v}`: load without a variant to use it)"
                    ));
                    return Err(Error::WeightsNotFound { location: source.describe(), tried });
                }
            }
        }
    }
    Err(Error::WeightsNotFound { location: source.describe(), tried })
}

/// `safetensors` or `pytorch .bin`, for the log.
fn format_name(file: &str) -> &'static str {
    if file.contains(".safetensors") {
        "safetensors"
    } else {
        "pytorch .bin"
    }
}

/// The shard files an index names, in order of first appearance; each must be a plain
/// relative path inside the model folder.
fn sharded_files(source: &ModelSource, index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: index.to_path_buf(), source })?;
    let bad_index = |message: String| Error::Safetensors { path: index.to_path_buf(), message };
    let Some(map) = json.get("weight_map").and_then(Value::as_object) else {
        return Err(bad_index("the index has no `weight_map` object".to_owned()));
    };
    let mut shards: Vec<&str> = Vec::new();
    for (tensor, file) in map {
        let Some(file) = file.as_str() else {
            return Err(bad_index(format!("`weight_map[{tensor}]` is not a file name")));
        };
        if !shards.contains(&file) {
            // Checked before anything is fetched: an index must not reach outside the snapshot.
            check_relative_path(file)?;
            shards.push(file);
        }
    }
    if shards.is_empty() {
        return Err(bad_index("the index's `weight_map` is empty".to_owned()));
    }
    shards.into_iter().map(|f| source.file(f)).collect()
}

/// The opened files of one checkpoint: safetensors, or PyTorch `.bin` archives.
enum Store {
    Safetensors(Vec<SafetensorsFile>),
    Torch(Vec<TorchFile>),
    Gguf(Arc<GgufCheckpoint>),
}

/// The weight files holding one checkpoint, opened: safetensors headers are read and checked
/// (each tensor is later read straight into its own buffer, see `safetensors_file`), PyTorch
/// `.bin` files read through the restricted unpickler of [`crate::pickle`] (nothing in them is
/// ever executed; a pickle that names anything but tensors is refused).
pub struct Checkpoint {
    files: Vec<PathBuf>,
    store: Store,
    /// The file each tensor is read from: a later file wins, as `state_dict.update(...)` does.
    index: HashMap<String, usize>,
    names: BTreeSet<String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint").field("files", &self.files).field("tensors", &self.names.len()).finish()
    }
}

fn is_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

/// Open every file with `open` and index the names each lists (later files win).
fn open_all<F>(
    files: &[PathBuf],
    open: impl Fn(&Path) -> Result<F>,
    names: impl Fn(&F) -> Vec<String>,
) -> Result<(Vec<F>, HashMap<String, usize>)> {
    let mut opened = Vec::with_capacity(files.len());
    let mut index = HashMap::new();
    for (i, path) in files.iter().enumerate() {
        let file = open(path)?;
        index.extend(names(&file).into_iter().map(|n| (n, i)));
        opened.push(file);
    }
    Ok((opened, index))
}

impl Checkpoint {
    /// Open `files`: all safetensors (headers read and checked) or all PyTorch `.bin`
    /// archives (pickles interpreted). A truncated, corrupt or unsafe file is an error naming it.
    pub fn open(files: Vec<PathBuf>) -> Result<Self> {
        let started = std::time::Instant::now();
        let safetensors = files.iter().filter(|f| is_safetensors(f)).count();
        let (store, index) = if safetensors == files.len() {
            let (opened, index) = open_all(&files, SafetensorsFile::open, SafetensorsFile::names)?;
            (Store::Safetensors(opened), index)
        } else if safetensors == 0 {
            let (opened, index) = open_all(&files, TorchFile::open, |f| f.names().map(str::to_owned).collect())?;
            (Store::Torch(opened), index)
        } else {
            return Err(Error::Unsupported(format!(
                "the checkpoint mixes safetensors and PyTorch files ({}): use one format",
                describe(&files)
            )));
        };
        let names: BTreeSet<String> = index.keys().cloned().collect();
        tracing::debug!(
            format = if matches!(store, Store::Torch(_)) { "pytorch .bin" } else { "safetensors" },
            files = files.len(),
            tensors = names.len(),
            elapsed = ?started.elapsed(),
            "checkpoint opened"
        );
        Ok(Self { files, store, index, names })
    }

    /// A GGUF file as a checkpoint: its tensors under `transformers`' names, dequantized when read.
    pub fn from_gguf(gguf: Arc<GgufCheckpoint>) -> Self {
        let names: BTreeSet<String> = gguf.names().cloned().collect();
        let index = names.iter().map(|n| (n.clone(), 0)).collect();
        let files = vec![gguf.file().path().to_path_buf()];
        tracing::debug!(format = "gguf", tensors = names.len(), "checkpoint opened");
        Self { files, store: Store::Gguf(gguf), index, names }
    }

    /// The GGUF file behind the checkpoint, when it is one.
    pub fn gguf(&self) -> Option<&Arc<GgufCheckpoint>> {
        match &self.store {
            Store::Gguf(g) => Some(g),
            _ => None,
        }
    }

    /// Every tensor name in the checkpoint.
    pub fn names(&self) -> &BTreeSet<String> {
        &self.names
    }

    /// The files of the checkpoint.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether the checkpoint is PyTorch `.bin` files.
    pub fn is_pickle(&self) -> bool {
        matches!(self.store, Store::Torch(_))
    }

    /// The shape of tensor `name`, `None` when there is no such tensor.
    pub fn shape(&self, name: &str) -> Result<Option<Vec<usize>>> {
        let Some(&i) = self.index.get(name) else { return Ok(None) };
        let shape = match &self.store {
            Store::Safetensors(files) => files.get(i).and_then(|f| f.shape(name)),
            Store::Torch(files) => files.get(i).and_then(|f| f.shape(name)),
            Store::Gguf(g) => return Ok(g.shape(name)),
        };
        Ok(shape.map(<[usize]>::to_vec))
    }

    /// Read tensor `name` onto `device`, in its stored dtype.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let not_found = || Error::TensorNotFound { name: name.to_owned(), files: self.describe_files() };
        let i = *self.index.get(name).ok_or_else(not_found)?;
        match &self.store {
            Store::Safetensors(files) => files.get(i).ok_or_else(not_found)?.tensor(name, device),
            Store::Torch(files) => files.get(i).ok_or_else(not_found)?.tensor(name, device),
            Store::Gguf(g) => g.tensor(name, device),
        }
    }

    /// Tensors of a `.bin` checkpoint saved twice (tied weights) have the same identity.
    fn view_identity(&self, name: &str) -> Option<String> {
        match &self.store {
            Store::Safetensors(_) | Store::Gguf(_) => None,
            Store::Torch(files) => {
                let i = *self.index.get(name)?;
                files.get(i)?.view_identity(name).map(|id| format!("{i}/{id}"))
            }
        }
    }

    /// The checkpoint's file names, for messages: `model-00001-of-00002.safetensors, ...`.
    pub fn describe_files(&self) -> String {
        describe(&self.files)
    }
}

fn describe(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How forgiving a load is about tensors the checkpoint lacks or shapes it disagrees on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPolicy {
    /// Initialise afresh (and report as missing) the task head's tensors that the checkpoint
    /// lacks, as `transformers` does when it loads a base checkpoint into a head model;
    /// `false`: every missing tensor is an error.
    pub init_missing_head: bool,
    /// Initialise afresh (and report) tensors whose checkpoint shape differs, instead of an error.
    pub ignore_mismatched_sizes: bool,
    /// The standard deviation of fresh matrices (`initializer_range` of the config).
    pub initializer_range: f64,
}

impl LoadPolicy {
    /// Every tensor must be in the checkpoint with the model's shape.
    pub fn strict() -> Self {
        Self { init_missing_head: false, ignore_mismatched_sizes: false, initializer_range: 0.02 }
    }
}

impl Default for LoadPolicy {
    fn default() -> Self {
        Self::strict()
    }
}

/// What happened while a model was built from a checkpoint: which tensors it read, which it
/// initialised afresh, and the first error, kept typed so that it reaches the caller as is.
#[derive(Debug, Default)]
pub struct LoadTracker {
    used: Mutex<BTreeSet<String>>,
    missing: Mutex<BTreeSet<String>>,
    mismatched: Mutex<BTreeMap<String, MismatchedKey>>,
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

    /// The model's tensors that were initialised afresh because the checkpoint lacks them.
    pub fn missing(&self) -> BTreeSet<String> {
        self.missing.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The model's tensors that were initialised afresh because their shapes differ.
    pub fn mismatched(&self) -> Vec<MismatchedKey> {
        self.mismatched.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }
}

/// Buffers that older checkpoints saved and `transformers` ignores on load (GPT-NeoX's
/// `_keys_to_ignore_on_load_unexpected`: `attention.bias`, `attention.masked_bias`; Swin's
/// and Swin v2's window tables `relative_position_index`, `relative_coords_table`, which are
/// computed from the window size).
fn ignored_buffer(name: &str) -> bool {
    [
        "position_ids",
        "attn.bias",
        "attn.masked_bias",
        "rotary_emb.inv_freq",
        ".attention.bias",
        ".attention.masked_bias",
        ".attention.self.relative_position_index",
        ".attention.self.relative_coords_table",
    ]
    .iter()
    .any(|b| name.ends_with(b))
}

/// The report of a load: what `tracker` saw, and the checkpoint tensors nobody read (except
/// ignored buffers, and the second names of tied tensors that `.bin` files save twice).
pub fn loading_report(checkpoint: &Checkpoint, tracker: &LoadTracker) -> LoadingReport {
    let mut used = tracker.used();
    if let Store::Gguf(g) = &checkpoint.store {
        used.extend(g.quantized_used());
    }
    let used_views: HashSet<String> = used.iter().filter_map(|k| checkpoint.view_identity(k)).collect();
    let unexpected = checkpoint
        .names()
        .iter()
        .filter(|n| !used.contains(*n) && !ignored_buffer(n))
        .filter(|n| checkpoint.view_identity(n).is_none_or(|id| !used_views.contains(&id)))
        .cloned()
        .collect();
    LoadingReport {
        missing_keys: tracker.missing().into_iter().collect(),
        unexpected_keys: unexpected,
        mismatched_keys: tracker.mismatched(),
    }
}

/// A fresh tensor for `name`, as `transformers`' `_init_weights` makes them for the usual
/// layers: matrices (and convolution kernels) `normal(0, std)`, vectors named `weight` (norm
/// scales) ones, everything else (biases, `final_logits_bias`, ...) zeros.
fn fresh_tensor(name: &str, shape: &Shape, std: f64, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if leaf == "weight" && shape.rank() >= 2 {
        Tensor::randn(0f32, std as f32, shape, dev)?.to_dtype(dtype)
    } else if leaf == "weight" {
        Tensor::ones(shape, dtype, dev)
    } else {
        Tensor::zeros(shape, dtype, dev)
    }
}

/// `name` as asked, then with the base model's `prefix` removed (when it starts with it) or
/// added: a base checkpoint loads into a head model and back, as in `transformers`.
pub(crate) fn prefix_candidates(name: &str, prefix: &str) -> Vec<String> {
    let mut candidates = vec![name.to_owned()];
    if !prefix.is_empty() {
        let with_dot = format!("{prefix}.");
        match name.strip_prefix(&with_dot) {
            Some(stripped) => candidates.push(stripped.to_owned()),
            None => candidates.push(format!("{with_dot}{name}")),
        }
    }
    candidates
}

struct CheckpointBackend {
    checkpoint: Arc<Checkpoint>,
    prefix: String,
    tracker: Arc<LoadTracker>,
    policy: LoadPolicy,
    /// The checkpoint's top-level module names, with and without the prefix.
    modules: BTreeSet<String>,
    /// Fresh tensors already made, so that a name asked twice gets one tensor.
    fresh: Mutex<HashMap<String, Tensor>>,
}

impl CheckpointBackend {
    /// The checkpoint key holding the parameter `name`, following `transformers`' renames.
    fn resolve(&self, name: &str) -> Option<String> {
        let mut candidates = prefix_candidates(name, &self.prefix);
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

    /// Whether a missing `name` belongs to the task head rather than to the base model: it is
    /// outside the base model's prefix and the checkpoint has nothing of its top-level module.
    fn is_head_only(&self, name: &str) -> bool {
        if !self.policy.init_missing_head {
            return false;
        }
        if !self.prefix.is_empty() && name.strip_prefix(self.prefix.as_str()).is_some_and(|r| r.starts_with('.')) {
            return false;
        }
        let top = name.split('.').next().unwrap_or(name);
        !self.modules.contains(top)
    }

    fn fresh(&self, name: &str, shape: &Shape, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = fresh.get(name).filter(|t| t.shape() == shape) {
            return t.to_dtype(dtype)?.to_device(dev);
        }
        let t = fresh_tensor(name, shape, self.policy.initializer_range, dtype, dev)?;
        fresh.insert(name.to_owned(), t.clone());
        Ok(t)
    }

    fn fetch(&self, name: &str, expected: Option<&Shape>, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let Some(key) = self.resolve(name) else {
            if let Some(shape) = expected.filter(|_| self.is_head_only(name)) {
                self.tracker.missing.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned());
                return self.fresh(name, shape, dtype, dev);
            }
            return Err(self.tracker.record_error(Error::TensorNotFound {
                name: name.to_owned(),
                files: self.checkpoint.describe_files(),
            }));
        };
        let got = match self.checkpoint.shape(&key) {
            Ok(Some(shape)) => shape,
            Ok(None) => {
                let files = self.checkpoint.describe_files();
                return Err(self.tracker.record_error(Error::TensorNotFound { name: key, files }));
            }
            Err(e) => return Err(self.tracker.record_error(e)),
        };
        if let Some(expected) = expected {
            if got != expected.dims() {
                if self.policy.ignore_mismatched_sizes {
                    self.tracker.record_use(&key);
                    let mismatch = MismatchedKey {
                        name: name.to_owned(),
                        checkpoint_shape: got,
                        model_shape: expected.dims().to_vec(),
                    };
                    self.tracker
                        .mismatched
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(name.to_owned(), mismatch);
                    return self.fresh(name, expected, dtype, dev);
                }
                return Err(self.tracker.record_error(Error::TensorShape {
                    name: key,
                    expected: expected.dims().to_vec(),
                    got,
                }));
            }
        }
        self.tracker.record_use(&key);
        match self.checkpoint.tensor(&key, dev) {
            Ok(t) => t.to_dtype(dtype),
            Err(e) => Err(self.tracker.record_error(e)),
        }
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

/// A strict `VarBuilder` over `checkpoint` for a model whose base model lives under `prefix`:
/// every tensor must be there ([`LoadPolicy::strict`]).
pub fn checkpoint_var_builder(
    checkpoint: Arc<Checkpoint>,
    prefix: &str,
    dtype: DType,
    device: &Device,
) -> (VarBuilder<'static>, Arc<LoadTracker>) {
    checkpoint_var_builder_with(checkpoint, prefix, dtype, device, LoadPolicy::strict())
}

/// A `VarBuilder` over `checkpoint` for a model whose base model lives under `prefix`, with
/// `policy` for missing and misshapen tensors; [`loading_report`] tells what happened.
pub fn checkpoint_var_builder_with(
    checkpoint: Arc<Checkpoint>,
    prefix: &str,
    dtype: DType,
    device: &Device,
    policy: LoadPolicy,
) -> (VarBuilder<'static>, Arc<LoadTracker>) {
    let tracker = Arc::new(LoadTracker::default());
    let mut modules = BTreeSet::new();
    let with_dot = format!("{prefix}.");
    for name in checkpoint.names() {
        if let Some(top) = name.split('.').next() {
            modules.insert(top.to_owned());
        }
        if let Some(rest) = name.strip_prefix(&with_dot).filter(|_| !prefix.is_empty()) {
            if let Some(top) = rest.split('.').next() {
                modules.insert(top.to_owned());
            }
        }
    }
    let backend = CheckpointBackend {
        checkpoint,
        prefix: prefix.to_owned(),
        tracker: Arc::clone(&tracker),
        policy,
        modules,
        fresh: Mutex::new(HashMap::new()),
    };
    (VarBuilder::from_backend(Box::new(backend), dtype, device.clone()), tracker)
}

/// A `VarBuilder` that initialises every weight afresh (`from_config`).
pub fn fresh_var_builder(dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_varmap(&VarMap::new(), dtype, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_follow_add_variant() {
        assert_eq!(add_variant(SAFE_WEIGHTS_NAME, Some("fp16")), "model.fp16.safetensors");
        assert_eq!(add_variant(SAFE_WEIGHTS_INDEX_NAME, Some("fp16")), "model.safetensors.index.fp16.json");
        assert_eq!(add_variant(WEIGHTS_NAME, Some("fp16")), "pytorch_model.fp16.bin");
        assert_eq!(add_variant(WEIGHTS_INDEX_NAME, Some("fp16")), "pytorch_model.bin.index.fp16.json");
        assert_eq!(add_variant(WEIGHTS_NAME, None), WEIGHTS_NAME);
    }

    fn save(dir: &Path, tensors: &[(&str, Tensor)]) -> Arc<Checkpoint> {
        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = tensors.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        Arc::new(Checkpoint::open(vec![path]).unwrap())
    }

    /// A `tracing` subscriber that keeps every event as `LEVEL message key=value ...`.
    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    struct Line(String);

    impl tracing::field::Visit for Line {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            match field.name() {
                "message" => self.0.push_str(&format!(" {value:?}")),
                name => self.0.push_str(&format!(" {name}={value:?}")),
            }
        }
    }

    impl tracing::Subscriber for Collect {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = Line(event.metadata().level().to_string());
            event.record(&mut line);
            self.0.lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn finding_and_opening_weights_is_logged_at_debug() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::ones((3, 2), DType::F32, &Device::Cpu).unwrap();
        save(dir.path(), &[("encoder.weight", w.clone()), ("decoder.weight", w)]);
        let source = ModelSource::resolve(dir.path().to_str().unwrap(), &crate::LoadOptions::default()).unwrap();
        let collect = Arc::new(Collect::default());
        tracing::subscriber::with_default(Arc::clone(&collect), || {
            Checkpoint::open(find_weight_files(&source).unwrap()).unwrap();
        });
        let lines = collect.0.lock().unwrap().clone();
        let has = |parts: &[&str]| lines.iter().any(|l| parts.iter().all(|p| l.contains(p)));
        assert!(has(&["DEBUG", "local file", "file=\"model.safetensors\""]), "{lines:#?}");
        assert!(has(&["DEBUG", "weight file", "format=\"safetensors\"", "model.safetensors"]), "{lines:#?}");
        assert!(has(&["DEBUG", "checkpoint opened", "files=1", "tensors=2", "elapsed="]), "{lines:#?}");
        assert!(lines.iter().all(|l| l.starts_with("DEBUG")), "{lines:#?}");
    }

    fn lenient() -> LoadPolicy {
        LoadPolicy { init_missing_head: true, ..LoadPolicy::strict() }
    }

    #[test]
    fn head_tensors_are_fresh_and_base_tensors_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let w = Tensor::ones((3, 2), DType::F32, &dev).unwrap();
        let ckpt = save(dir.path(), &[("encoder.weight", w.clone())]);
        let (vb, tracker) = checkpoint_var_builder_with(ckpt.clone(), "toy", DType::F32, &dev, lenient());
        // The base model under the prefix resolves without it.
        assert!(vb.get((3, 2), "toy.encoder.weight").is_ok());
        // The head: fresh, reported, and the same tensor when asked twice.
        let a = vb.get((4, 3), "classifier.weight").unwrap();
        let b = vb.get((4, 3), "classifier.weight").unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        assert_eq!(vb.get(4, "classifier.bias").unwrap().to_vec1::<f32>().unwrap(), [0.; 4]);
        assert_eq!(vb.get(4, "head.norm.weight").unwrap().to_vec1::<f32>().unwrap(), [1.; 4]);
        // A missing tensor of the base model, or of a module the checkpoint has, is an error.
        assert!(vb.get((3, 2), "toy.decoder.weight").is_err());
        assert!(
            matches!(tracker.take_error(), Some(Error::TensorNotFound { name, .. }) if name == "toy.decoder.weight")
        );
        assert!(vb.get(2, "encoder.bias").is_err());
        let report = loading_report(&ckpt, &tracker);
        assert_eq!(report.missing_keys, ["classifier.bias", "classifier.weight", "head.norm.weight"]);
        assert!(report.unexpected_keys.is_empty());

        // Strictly, a head tensor is an error too.
        let (vb, tracker) = checkpoint_var_builder(ckpt, "toy", DType::F32, &dev);
        assert!(vb.get((4, 3), "classifier.weight").is_err());
        assert!(tracker.take_error().is_some());
    }

    #[test]
    fn mismatched_shapes_are_errors_unless_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let ckpt = save(dir.path(), &[("classifier.weight", Tensor::ones((2, 3), DType::F32, &dev).unwrap())]);
        let (vb, tracker) = checkpoint_var_builder_with(ckpt.clone(), "toy", DType::F32, &dev, lenient());
        assert!(vb.get((5, 3), "classifier.weight").is_err());
        assert!(matches!(tracker.take_error(), Some(Error::TensorShape { .. })));
        let policy = LoadPolicy { ignore_mismatched_sizes: true, ..lenient() };
        let (vb, tracker) = checkpoint_var_builder_with(ckpt.clone(), "toy", DType::F32, &dev, policy);
        assert_eq!(vb.get((5, 3), "classifier.weight").unwrap().dims(), [5, 3]);
        let report = loading_report(&ckpt, &tracker);
        assert_eq!(
            report.mismatched_keys,
            [MismatchedKey { name: "classifier.weight".into(), checkpoint_shape: vec![2, 3], model_shape: vec![5, 3] }]
        );
        assert!(report.unexpected_keys.is_empty() && report.missing_keys.is_empty());
    }

    #[test]
    fn swin_window_tables_are_not_unexpected() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let w = Tensor::ones((3, 2), DType::F32, &dev).unwrap();
        let index = Tensor::zeros((4, 4), DType::I64, &dev).unwrap();
        let block = "swin.encoder.layers.0.blocks.0.attention.self";
        let ckpt = save(
            dir.path(),
            &[
                (&format!("{block}.query.weight"), w),
                (&format!("{block}.relative_position_index"), index.clone()),
                (&format!("{block}.relative_coords_table"), index.to_dtype(DType::F32).unwrap()),
            ],
        );
        let (vb, tracker) = checkpoint_var_builder(ckpt.clone(), "swin", DType::F32, &dev);
        vb.get((3, 2), &format!("{block}.query.weight")).unwrap();
        assert!(loading_report(&ckpt, &tracker).unexpected_keys.is_empty());
    }
}
