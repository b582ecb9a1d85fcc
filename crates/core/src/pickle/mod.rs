//! PyTorch `.bin` checkpoints (`pytorch_model.bin`, the zip archives `torch.save` writes), read
//! without executing anything.
//!
//! The archive's `data.pkl` goes through a restricted unpickler (`unpickle`) that accepts
//! only what a state dict is made of and refuses every other global by name (what
//! `torch.load(weights_only=True)` refuses, and more). Tensor bytes are then read straight
//! from the archive's `data/<key>` entries, on demand. Archives written before PyTorch 1.6
//! (not zip files) are refused.

mod unpickle;
mod zip;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use unpickle::{PickleError, StorageType, TensorRef};
use zip::{Source, ZipError, ZipIndex};

/// `data.pkl` larger than this is refused (a state dict's pickle holds only names and shapes).
const MAX_PICKLE_BYTES: u64 = 1 << 30;

struct FileSource {
    file: Mutex<File>,
    len: u64,
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// The shape, dtype and place of one tensor in the archive.
#[derive(Debug, Clone)]
struct TensorInfo {
    storage_type: StorageType,
    /// The archive entry holding the storage.
    entry: String,
    storage_numel: u64,
    offset: u64,
    shape: Vec<usize>,
    stride: Vec<usize>,
    contiguous: bool,
}

/// One PyTorch zip checkpoint: its tensors' descriptions, read once; their bytes, on demand.
pub struct TorchFile {
    path: PathBuf,
    source: FileSource,
    zip: ZipIndex,
    tensors: BTreeMap<String, TensorInfo>,
}

impl std::fmt::Debug for TorchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchFile").field("path", &self.path).field("tensors", &self.tensors.len()).finish()
    }
}

fn pickle_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Pickle { path: path.to_path_buf(), message: message.into() }
}

impl TorchFile {
    /// Read the archive at `path` and interpret its pickle; nothing in it is executed.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let source = FileSource { file: Mutex::new(file), len };
        let mut magic = [0u8; 4];
        if len >= 4 {
            source.read_at(0, &mut magic).map_err(|e| Error::io(path, e))?;
        }
        if magic != *b"PK\x03\x04" {
            let message = if magic[0] == 0x80 {
                "this is a PyTorch checkpoint in the format before PyTorch 1.6 (a bare pickle), which is not read: \
                 save it again with a recent torch.save or convert it to safetensors"
            } else {
                "not a PyTorch checkpoint (a zip archive written by torch.save): the file is truncated, corrupt, \
                 or something else"
            };
            return Err(pickle_error(path, message));
        }
        let zip_err = |e: ZipError| match e {
            ZipError::Io(e) => Error::io(path, e),
            ZipError::Format(m) => pickle_error(path, m),
        };
        let zip = ZipIndex::read(&source).map_err(zip_err)?;
        // `<archive>/data.pkl`; the storages are `<archive>/data/<key>`.
        let pickles: Vec<&str> =
            zip.names().filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1).collect();
        let [pkl_name] = pickles.as_slice() else {
            return Err(pickle_error(
                path,
                "the archive has no single `<name>/data.pkl`, so it is not a torch.save file",
            ));
        };
        let pkl_name = (*pkl_name).to_owned();
        let root = pkl_name.trim_end_matches("data.pkl").to_owned();
        if let Some(entry) = zip.entry(&format!("{root}byteorder")) {
            let order = entry.read(&source, "byteorder", 16).map_err(zip_err)?;
            if order != b"little" {
                return Err(pickle_error(
                    path,
                    "the checkpoint was saved on a big-endian machine, which is not supported",
                ));
            }
        }
        let pkl = zip.entry(&pkl_name).ok_or_else(|| pickle_error(path, "data.pkl vanished"))?;
        let data = pkl.read(&source, &pkl_name, MAX_PICKLE_BYTES).map_err(zip_err)?;
        let refs = unpickle::state_dict(&data).map_err(|e| match e {
            PickleError::Forbidden(global) => Error::UnsafePickle { path: path.to_path_buf(), global },
            PickleError::Invalid(m) => pickle_error(path, m),
        })?;
        let mut tensors = BTreeMap::new();
        for (name, t) in refs {
            tensors.insert(name, Self::describe(&root, &t));
        }
        Ok(Self { path: path.to_path_buf(), source, zip, tensors })
    }

    fn describe(root: &str, t: &TensorRef) -> TensorInfo {
        TensorInfo {
            storage_type: t.storage.ty,
            entry: format!("{root}data/{}", t.storage.key),
            storage_numel: t.storage.numel,
            offset: t.offset,
            shape: t.shape.clone(),
            stride: t.stride.clone(),
            contiguous: t.is_contiguous(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// The dtype tensor `name` is stored in (booleans read as `u8`).
    pub fn dtype(&self, name: &str) -> Option<DType> {
        self.tensors.get(name).map(|t| t.storage_type.dtype())
    }

    /// What tensor `name` views (storage entry, offset, shape, stride): two names with the same
    /// view are one tensor saved twice (tied weights).
    pub(crate) fn view_identity(&self, name: &str) -> Option<String> {
        self.tensors.get(name).map(|t| format!("{}@{}:{:?}:{:?}", t.entry, t.offset, t.shape, t.stride))
    }

    /// Read tensor `name` onto `device`, in its stored dtype.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::TensorNotFound { name: name.to_owned(), files: self.path.display().to_string() })?;
        let zip_err = |e: ZipError| match e {
            ZipError::Io(e) => Error::io(&self.path, e),
            ZipError::Format(m) => pickle_error(&self.path, m),
        };
        let entry = self
            .zip
            .entry(&info.entry)
            .ok_or_else(|| pickle_error(&self.path, format!("`{name}`: the archive has no entry `{}`", info.entry)))?;
        let elem = info.storage_type.size();
        if u128::from(entry.size()) < u128::from(info.storage_numel) * elem as u128 {
            return Err(pickle_error(
                &self.path,
                format!("`{name}`: entry `{}` is shorter than its storage: the file is truncated", info.entry),
            ));
        }
        let start = entry.data_offset(&self.source, &info.entry).map_err(zip_err)?;
        let numel = info.shape.iter().product::<usize>();
        let bytes = if numel == 0 {
            Vec::new()
        } else if info.contiguous {
            let mut buf = vec![0u8; numel * elem];
            self.source.read_at(start + info.offset * elem as u64, &mut buf).map_err(|e| Error::io(&self.path, e))?;
            buf
        } else {
            // Read the span the view covers, then gather its elements in row-major order.
            let last: u64 =
                info.shape.iter().zip(&info.stride).map(|(&n, &s)| n.saturating_sub(1) as u64 * s as u64).sum::<u64>()
                    + info.offset;
            let first = info.offset;
            let span = usize::try_from((last - first + 1) * elem as u64)
                .map_err(|_| pickle_error(&self.path, format!("`{name}` is too large")))?;
            let mut raw = vec![0u8; span];
            self.source.read_at(start + first * elem as u64, &mut raw).map_err(|e| Error::io(&self.path, e))?;
            gather(&raw, &info.shape, &info.stride, elem)
        };
        Ok(Tensor::from_raw_buffer(&bytes, info.storage_type.dtype(), &info.shape, device)?)
    }
}

/// The elements of a strided view over `raw` (starting at element 0), in row-major order.
fn gather(raw: &[u8], shape: &[usize], stride: &[usize], elem: usize) -> Vec<u8> {
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel * elem);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at: usize = index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>() * elem;
        out.extend_from_slice(&raw[at..at + elem]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unpickle::tests::state_dict_pickle;
    use super::zip::tests::make_zip;
    use super::*;

    fn write(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("pytorch_model.bin");
        std::fs::write(&path, make_zip(files, false)).unwrap();
        path
    }

    fn floats(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_contiguous_and_strided_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let data = floats(&[0., 1., 2., 3., 4., 5.]);
        let pkl = state_dict_pickle("FloatStorage", 6, &[2, 3], &[3, 1]);
        let path = write(dir.path(), &[("archive/data.pkl", &pkl), ("archive/data/0", &data)]);
        let file = TorchFile::open(&path).unwrap();
        let t = file.tensor("w", &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), [[0., 1., 2.], [3., 4., 5.]]);

        let pkl = state_dict_pickle("FloatStorage", 6, &[3, 2], &[1, 3]);
        let path = write(dir.path(), &[("archive/data.pkl", &pkl), ("archive/data/0", &data)]);
        let t = TorchFile::open(&path).unwrap().tensor("w", &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), [[0., 3.], [1., 4.], [2., 5.]]);
    }

    #[test]
    fn short_storage_and_missing_entry_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pkl = state_dict_pickle("FloatStorage", 6, &[2, 3], &[3, 1]);
        let path = write(dir.path(), &[("archive/data.pkl", &pkl), ("archive/data/0", &floats(&[0.; 5]))]);
        let err = TorchFile::open(&path).unwrap().tensor("w", &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("shorter than its storage"), "{err}");
        let path = write(dir.path(), &[("archive/data.pkl", &pkl)]);
        let err = TorchFile::open(&path).unwrap().tensor("w", &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("no entry `archive/data/0`"), "{err}");
    }

    #[test]
    fn legacy_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        std::fs::write(&path, b"\x80\x02\x8a\x0alp\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
        let err = TorchFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("before PyTorch 1.6"), "{err}");
        std::fs::write(&path, b"").unwrap();
        assert!(TorchFile::open(&path).unwrap_err().to_string().contains("not a PyTorch checkpoint"));
    }
}
