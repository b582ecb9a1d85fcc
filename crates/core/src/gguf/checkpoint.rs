//! A GGUF file as a checkpoint: the config it implies, and its tensors under `transformers`'
//! names, dequantized (as `transformers` loads them) or kept in their quantized blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use super::hf::{self, TensorSource, Transform};
use super::GgufFile;
use crate::config::PretrainedConfig;
use crate::error::{Error, Result};
use crate::hub::ModelSource;
use crate::options::LoadOptions;

/// `transformers`' config dict for the GGUF file `file` (`model_type` and every mapped field).
pub fn config_map(file: &GgufFile) -> Result<Map<String, Value>> {
    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    hf::config_json(file.metadata(), &names)
}

/// The config of the GGUF file at `path`, as `AutoConfig.from_pretrained(..., gguf_file=...)`
/// reads it.
pub fn read_config(path: &Path) -> Result<PretrainedConfig> {
    let file = GgufFile::open(path)?;
    PretrainedConfig::from_value(Value::Object(config_map(&file)?), path)
}

/// Whether `path` names a GGUF file (by its extension).
pub fn is_gguf_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Where a model's files come from, and its GGUF file when it is loaded from one: the
/// options' `gguf_file` inside the repo or folder, or `id_or_path` itself when it is the path
/// of a `.gguf` file (then its folder is the source).
pub fn locate(id_or_path: &str, opts: &LoadOptions) -> Result<(ModelSource, Option<PathBuf>)> {
    let path = Path::new(id_or_path);
    if opts.gguf_file.is_none() && path.is_file() && is_gguf_path(path) {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let source = ModelSource::resolve(&folder.to_string_lossy(), opts)?;
        return Ok((source, Some(path.to_path_buf())));
    }
    let source = ModelSource::resolve(id_or_path, opts)?;
    let gguf = match &opts.gguf_file {
        Some(name) => Some(source.file(name)?),
        None => None,
    };
    Ok((source, gguf))
}

/// Whether tensors of this type are stored as floats (and so are never kept quantized).
pub fn is_float(ggml_type: GgmlDType) -> bool {
    matches!(ggml_type, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
}

/// The tensors of a GGUF file under the names of the `transformers` model its config names.
pub struct GgufCheckpoint {
    file: GgufFile,
    map: BTreeMap<String, TensorSource>,
    unmapped: Vec<String>,
    /// Names served quantized (through [`GgufCheckpoint::quantized`]), for the loading report.
    quantized_used: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for GgufCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufCheckpoint")
            .field("file", &self.file.path())
            .field("tensors", &self.map.len())
            .field("unmapped", &self.unmapped.len())
            .finish()
    }
}

impl GgufCheckpoint {
    /// Open `path` for the model described by `config` (the file's own [`config_map`], with
    /// the user's overrides).
    pub fn open(path: &Path, config: &Map<String, Value>) -> Result<Self> {
        Self::from_file(GgufFile::open(path)?, config)
    }

    /// [`GgufCheckpoint::open`] on a file already opened.
    pub fn from_file(file: GgufFile, config: &Map<String, Value>) -> Result<Self> {
        let tensors: Vec<(&str, &[usize])> =
            file.tensors().iter().map(|t| (t.name.as_str(), t.shape.as_slice())).collect();
        let (map, unmapped) = hf::tensor_map(config, &tensors)?;
        if !unmapped.is_empty() {
            tracing::debug!(file = %file.path().display(), unmapped = ?unmapped, "GGUF tensors with no transformers name");
        }
        Ok(Self { file, map, unmapped, quantized_used: Mutex::new(BTreeSet::new()) })
    }

    /// The file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Every tensor under its `transformers` name.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// The file's tensors that no `transformers` name maps to.
    pub fn unmapped(&self) -> &[String] {
        &self.unmapped
    }

    fn source(&self, name: &str) -> Result<(&TensorSource, &super::GgufTensorInfo)> {
        let not_found =
            || Error::TensorNotFound { name: name.to_owned(), files: self.file.path().display().to_string() };
        let source = self.map.get(name).ok_or_else(not_found)?;
        let info = self.file.tensor(&source.gguf_name).ok_or_else(not_found)?;
        Ok((source, info))
    }

    /// The shape of `name` as `transformers` has it, `None` when there is no such tensor.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let (source, info) = self.source(name).ok()?;
        Some(hf::transformed_shape(&source.transform, &info.shape))
    }

    /// The block type `name` is stored in.
    pub fn ggml_type(&self, name: &str) -> Option<GgmlDType> {
        self.source(name).ok().map(|(_, info)| info.ggml_type)
    }

    /// Tensor `name`, dequantized to f32 and transformed as `transformers` loads it.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let (source, _) = self.source(name)?;
        let t = self.file.dequantize(&source.gguf_name, device)?;
        hf::apply(&source.transform, t)
    }

    /// Tensor `name` in its quantized blocks, when it is stored quantized, is a matrix, and its
    /// transform can be done on whole rows; `Ok(None)` otherwise (it is then read as floats).
    pub fn quantized(&self, name: &str, device: &Device) -> Result<Option<QTensor>> {
        let Ok((source, info)) = self.source(name) else { return Ok(None) };
        if is_float(info.ggml_type) || info.shape.len() != 2 {
            return Ok(None);
        }
        let qtensor = match &source.transform {
            Transform::None => self.file.qtensor(&source.gguf_name, device)?,
            other => {
                let bytes = self.file.read_bytes(&source.gguf_name)?;
                let Some(bytes) = hf::apply_to_rows(other, &bytes, info.shape[0]) else {
                    return Ok(None);
                };
                qtensor_from_bytes(&bytes, info, device)?
            }
        };
        self.quantized_used.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned());
        Ok(Some(qtensor))
    }

    /// The names served by [`GgufCheckpoint::quantized`] so far.
    pub fn quantized_used(&self) -> BTreeSet<String> {
        self.quantized_used.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn qtensor_from_bytes(bytes: &[u8], info: &super::GgufTensorInfo, device: &Device) -> Result<QTensor> {
    let storage =
        candle_core::quantized::QStorage::from_data(std::borrow::Cow::Borrowed(bytes), device, info.ggml_type)?;
    Ok(QTensor::new(storage, info.shape.as_slice())?)
}

/// The quantized weights of a GGUF checkpoint, for [`crate::quant::QuantSource`]: names are
/// tried as asked, then with the base model's prefix added or removed (as the float loader does).
#[derive(Debug)]
pub struct GgufQuantSource {
    checkpoint: Arc<GgufCheckpoint>,
    prefix: String,
}

impl GgufQuantSource {
    /// The quantized tensors of `checkpoint` for a model whose base model is under `prefix`.
    pub fn new(checkpoint: Arc<GgufCheckpoint>, prefix: &str) -> Self {
        Self { checkpoint, prefix: prefix.to_owned() }
    }

    fn resolve(&self, name: &str) -> Option<String> {
        let candidates = crate::weights::prefix_candidates(name, &self.prefix);
        candidates.into_iter().find(|c| self.checkpoint.map.contains_key(c))
    }
}

impl crate::quant::QuantSource for GgufQuantSource {
    fn quantized(&self, name: &str, device: &Device) -> Result<Option<Arc<QTensor>>> {
        match self.resolve(name) {
            Some(key) => Ok(self.checkpoint.quantized(&key, device)?.map(Arc::new)),
            None => Ok(None),
        }
    }
}
