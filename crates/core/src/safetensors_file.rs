//! One safetensors file, read with positioned reads straight into each tensor's buffer.
//!
//! candle's `MmapedSafetensors` maps the file and copies each tensor out of the mapping; the
//! mapped pages then count in the process's resident memory next to the copies, so a load
//! peaked at twice the weights (issue 7). Here nothing is mapped: the header is read and
//! checked (with the `safetensors` crate's own validation), then each tensor is read with
//! `pread` into the allocation the tensor keeps, in chunks spread over rayon's threads when it
//! is large.

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor, WithDType};
use half::{bf16, f16};
use rayon::prelude::*;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use zerocopy::{FromBytes, IntoBytes};

use crate::error::{Error, Result};

/// Reads larger than this are split into chunks of this size, read in parallel.
const CHUNK: usize = 1 << 20;
/// The largest header accepted, the `safetensors` crate's own limit.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// An opened safetensors file: its header parsed and checked, its data read on demand.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    file: File,
    /// Where the data section starts: after the 8-byte length and the JSON header.
    data_start: u64,
    metadata: Metadata,
}

impl SafetensorsFile {
    /// Open `path` and check its header: offsets in order, sizes matching shapes and dtypes,
    /// and the file exactly as long as the header says (a truncated download is an error here).
    ///
    /// The header (an 8-byte little-endian length, then that many bytes of JSON) is read with
    /// positioned reads; its length is checked against the file's and against the `safetensors`
    /// crate's limit before anything is allocated, and the `safetensors` crate's own validation
    /// (`Metadata`'s deserialisation) checks the offsets, shapes and dtypes.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let error = |message: String| Error::Safetensors { path: path.to_path_buf(), message };
        let mut prefix = [0u8; 8];
        if file_len < 8 {
            return Err(error(format!("it has {file_len} bytes, fewer than the 8 of the header's length")));
        }
        read_exact_at(&file, &mut prefix, 0).map_err(|e| Error::io(path, e))?;
        let header_len = u64::from_le_bytes(prefix);
        if header_len > MAX_HEADER_LEN {
            return Err(error(format!("its header length {header_len} is over the limit of {MAX_HEADER_LEN} bytes")));
        }
        if header_len > file_len - 8 {
            return Err(error(format!("its header length {header_len} reaches past its end ({file_len} bytes)")));
        }
        // At most `MAX_HEADER_LEN` bytes, and no more than the file holds.
        let mut header = vec![0u8; header_len as usize];
        read_exact_at(&file, &mut header, 8).map_err(|e| Error::io(path, e))?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| error(format!("its header is invalid: {e}")))?;
        let data_start = 8 + header_len;
        let expected = u64::try_from(metadata.data_len()).ok().and_then(|n| n.checked_add(data_start));
        if expected != Some(file_len) {
            return Err(error(format!(
                "its header describes {} bytes of tensor data, the file holds {}",
                metadata.data_len(),
                file_len - data_start
            )));
        }
        Ok(Self { path: path.to_path_buf(), file, data_start, metadata })
    }

    /// The names of the tensors in the file.
    pub(crate) fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// The shape of tensor `name`, `None` when the file has no such tensor.
    pub(crate) fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata.info(name).map(|info| info.shape.as_slice())
    }

    /// Read tensor `name` (which must be in the file) onto `device`, in its stored dtype.
    pub(crate) fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let Some(info) = self.metadata.info(name) else {
            return Err(self.error(format!("it has no tensor `{name}`")));
        };
        // The data is little-endian; on such hosts the common dtypes are read in place.
        let in_place = cfg!(target_endian = "little");
        match info.dtype {
            Dtype::F32 if in_place => self.read_typed::<f32>(info, device),
            Dtype::BF16 if in_place => self.read_typed::<bf16>(info, device),
            Dtype::F16 if in_place => self.read_typed::<f16>(info, device),
            Dtype::F64 if in_place => self.read_typed::<f64>(info, device),
            Dtype::I64 if in_place => self.read_typed::<i64>(info, device),
            Dtype::U32 if in_place => self.read_typed::<u32>(info, device),
            Dtype::U8 if in_place => self.read_typed::<u8>(info, device),
            // Other dtypes (converted on the way, as candle does) and big-endian hosts: through
            // a byte buffer and candle's own conversion.
            _ => {
                let (start, end) = info.data_offsets;
                let mut bytes = vec![0u8; end - start];
                self.read_at(&mut bytes, start)?;
                let view = safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), &bytes)
                    .map_err(|e| self.error(e.to_string()))?;
                Ok(view.load(device)?)
            }
        }
    }

    /// Read a tensor whose stored element type is `T` into a `Vec<T>` the tensor then owns:
    /// no copy on the CPU.
    fn read_typed<T: WithDType + FromBytes + IntoBytes>(&self, info: &TensorInfo, device: &Device) -> Result<Tensor> {
        let (start, end) = info.data_offsets;
        // `read_metadata` checked that the byte range holds exactly the shape's elements.
        let count = (end - start) / std::mem::size_of::<T>();
        // Zeroed by the allocator (fresh pages from the kernel for large tensors, no memset).
        let mut data = T::new_vec_zeroed(count)
            .map_err(|_| self.error(format!("cannot allocate {count} elements for `{}`", info.dtype)))?;
        self.read_at(data.as_mut_bytes(), start)?;
        Ok(Tensor::from_vec(data, info.shape.as_slice(), device)?)
    }

    /// Fill `buf` from the data section at `offset`, large reads in parallel chunks.
    fn read_at(&self, buf: &mut [u8], offset: usize) -> Result<()> {
        let at = self.data_start + offset as u64;
        let read = if buf.len() <= 2 * CHUNK {
            read_exact_at(&self.file, buf, at)
        } else {
            buf.par_chunks_mut(CHUNK)
                .enumerate()
                .try_for_each(|(i, chunk)| read_exact_at(&self.file, chunk, at + (i * CHUNK) as u64))
        };
        read.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.error("it ended early (was it truncated after it was opened?)"),
            _ => Error::io(&self.path, e),
        })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Safetensors { path: self.path.clone(), message: message.into() }
    }
}

/// Fill `buf` from `file` at `offset` (a positioned read: no shared cursor, so threads may
/// read one file at once).
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fill `buf` from `file` at `offset` (a positioned read: no shared cursor, so threads may
/// read one file at once).
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn save(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join("model.safetensors");
        let map: std::collections::HashMap<String, Tensor> =
            tensors.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn tensors_read_back_equal_in_every_stored_dtype() {
        let dir = tempfile::tempdir().unwrap();
        // Large enough for the parallel chunked read (3 MB), and an odd size for the tail.
        let big = Tensor::arange(0f32, 786_433f32, &Device::Cpu).unwrap();
        let small = Tensor::new(&[[1.5f32, -2.0], [3.25, 4.0]], &Device::Cpu).unwrap();
        let tensors = [
            ("big", big.clone()),
            ("f32", small.clone()),
            ("bf16", small.to_dtype(DType::BF16).unwrap()),
            ("f16", small.to_dtype(DType::F16).unwrap()),
            ("f64", small.to_dtype(DType::F64).unwrap()),
            ("i64", small.to_dtype(DType::I64).unwrap()),
            ("u32", small.abs().unwrap().to_dtype(DType::U32).unwrap()),
            ("u8", small.abs().unwrap().to_dtype(DType::U8).unwrap()),
        ];
        let path = save(dir.path(), &tensors);
        let file = SafetensorsFile::open(&path).unwrap();
        let mut names = file.names();
        names.sort();
        assert_eq!(names, ["bf16", "big", "f16", "f32", "f64", "i64", "u32", "u8"]);
        for (name, expected) in &tensors {
            let got = file.tensor(name, &Device::Cpu).unwrap();
            assert_eq!(got.dtype(), expected.dtype(), "{name}");
            assert_eq!(got.dims(), expected.dims(), "{name}");
            let diff = (got.to_dtype(DType::F64).unwrap() - expected.to_dtype(DType::F64).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert_eq!(diff, 0.0, "{name}");
        }
        assert_eq!(file.shape("small"), None);
        assert_eq!(file.shape("f32"), Some(&[2usize, 2][..]));
    }

    #[test]
    fn a_file_cut_short_after_opening_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = Tensor::zeros(600_000, DType::F32, &Device::Cpu).unwrap();
        let path = save(dir.path(), &[("big", big)]);
        let file = SafetensorsFile::open(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 100).unwrap();
        let err = file.tensor("big", &Device::Cpu).unwrap_err();
        assert!(matches!(err, Error::Safetensors { .. }), "{err}");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
        // Opening it now fails on the header's check.
        let err = SafetensorsFile::open(&path).err().unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn corrupt_headers_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let file = |len: u64, header: &[u8], data: usize| {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(header);
            bytes.extend(std::iter::repeat_n(0u8, data));
            std::fs::write(&path, bytes).unwrap();
            SafetensorsFile::open(&path).err().map(|e| e.to_string())
        };
        assert_eq!(file(header.len() as u64, header, 8), None);
        let cases = [
            // An absurd length is refused before anything is allocated.
            (file(u64::MAX, header, 8), "over the limit"),
            (file(50_000_000, header, 8), "reaches past its end"),
            (file(header.len() as u64, header, 7), "the file holds 7"),
            (file(header.len() as u64, header, 9), "the file holds 9"),
            (
                file(header.len() as u64, b"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                "invalid",
            ),
            (file(3, b"{}}", 0), "invalid"),
        ];
        for (err, want) in cases {
            let err = err.unwrap();
            assert!(err.contains("model.safetensors") && err.contains(want), "{err}");
        }
        std::fs::write(&path, [1u8, 0, 0]).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("model.safetensors") && err.contains("fewer than the 8"), "{err}");
    }
}
