//! [`GgufFile`]: a bounded, strict GGUF reader (header, metadata, tensor infos, tensor bytes),
//! and [`dequantize_bytes`], ggml's block formats dequantized to `f32` exactly as the `gguf`
//! Python package does.
//!
//! Everything that describes the file is read and checked in [`GgufFile::open`]: the magic and
//! version, every metadata key and value, every tensor's name, shape, type and extent. Every
//! count and length read from the file is checked against the bytes left in it before anything
//! is allocated (a string of length `L` needs `L` bytes, an array of `N` elements at least `N`
//! times its element type's smallest encoding), arithmetic on sizes is overflow-checked, and
//! nested arrays are depth-bounded, so a corrupt or hostile header is an error, never a huge
//! allocation. Tensor data is read later, one tensor at a time, with positioned reads into a
//! buffer of exactly that tensor's (already checked) size.
//!
//! Format reference: ggml's `docs/gguf.md` and `ggml/src/gguf.cpp`; the little-endian layout of
//! versions 2 and 3 is the same (version 3 only added big-endian files, which are refused).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use rayon::prelude::*;
use zerocopy::{FromZeros, IntoBytes};

use crate::safetensors_file::read_exact_at;

use super::GgufValue;
use crate::error::{Error, Result};

/// The four bytes every GGUF file starts with.
const MAGIC: &[u8; 4] = b"GGUF";
/// ggml's `GGML_MAX_DIMS`: a tensor has at most this many dimensions.
const MAX_DIMS: u32 = 4;
/// `general.alignment` when the file does not set it (`GGUF_DEFAULT_ALIGNMENT`).
const DEFAULT_ALIGNMENT: u64 = 32;
/// How deep arrays of arrays may nest (ggml itself reads no nested arrays; gguf-py writes them).
const MAX_ARRAY_DEPTH: usize = 8;
/// At most this many elements are reserved ahead for an array; longer ones grow as their
/// elements are actually read, so memory follows the bytes present in the file.
const MAX_RESERVE: usize = 1 << 16;
/// At most this many array elements in all the metadata. Each becomes a [`GgufValue`] of 32
/// bytes however small its encoding, so this caps what a header can make us allocate (512 MiB);
/// real files hold a few million at most (a 262k-token vocabulary's tokens, scores, types and
/// merges).
const MAX_ARRAY_ELEMENTS: u64 = 1 << 24;
/// Tensors of at least this many elements are dequantized on rayon's threads.
const PARALLEL_ELEMENTS: usize = 1 << 16;
/// Tensor reads larger than this are split into chunks of this size, read in parallel.
const READ_CHUNK: usize = 1 << 20;

/// The ggml tensor types that autocandle reads: every type candle's [`GgmlDType`] knows.
pub const SUPPORTED_TENSOR_TYPES: &[GgmlDType] = &[
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
];

/// One tensor of a GGUF file, as its tensor info describes it (checked against the file).
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    /// The tensor's name in the file (`blk.0.attn_q.weight`).
    pub name: String,
    /// The shape in row-major (torch) order: ggml's `ne` reversed, so a `[out, in]` matrix is
    /// `[out, in]`.
    pub shape: Vec<usize>,
    /// How the elements are stored.
    pub ggml_type: GgmlDType,
    /// The absolute byte offset of the tensor's data in the file.
    pub offset: u64,
    /// The size of the tensor's data in bytes.
    pub size: u64,
}

/// An opened GGUF file: its header, metadata and tensor infos read and validated, its tensor
/// data read on demand, one tensor at a time.
pub struct GgufFile {
    path: PathBuf,
    file: File,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
    index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Open `path` and read and validate its header, metadata and tensor infos.
    ///
    /// Errors ([`Error::Gguf`], naming the file) for anything that is not a well-formed
    /// little-endian GGUF file of version 2 or 3: a wrong magic, a truncated or inconsistent
    /// header, invalid UTF-8, duplicate keys or tensor names, lengths larger than the file,
    /// tensor types that autocandle cannot read, and tensors that are misaligned, overlap or
    /// reach past the end of the file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut parser =
            Parser { reader: BufReader::with_capacity(1 << 16, &file), pos: 0, len, path, array_elements: 0 };
        let header = parser.header()?;
        Ok(Self {
            path: path.to_path_buf(),
            version: header.version,
            metadata: header.metadata,
            index: header.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect(),
            tensors: header.tensors,
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Every metadata key and value.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` (`llama`, `qwen2`, ...); an error when it is missing or not a
    /// string.
    pub fn architecture(&self) -> Result<&str> {
        match self.metadata.get("general.architecture") {
            Some(GgufValue::String(s)) => Ok(s),
            Some(other) => Err(self.error(format!(
                "metadata `general.architecture` is a {}, not a string naming the model's architecture",
                other.type_name()
            ))),
            None => {
                Err(self
                    .error("metadata has no `general.architecture` (the string that names the model's architecture)"))
            }
        }
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw stored bytes of tensor `name` (ggml blocks, little-endian).
    pub fn read_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let info = self.info(name)?;
        let size = self.size(info)?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(size).map_err(|_| self.alloc_error(info))?;
        bytes.resize(size, 0);
        self.read_at(&mut bytes, info)?;
        Ok(bytes)
    }

    /// Tensor `name` as stored (quantized or float), in row-major shape, on `device`.
    pub fn qtensor(&self, name: &str, device: &Device) -> Result<QTensor> {
        let info = self.info(name)?;
        let size = self.size(info)?;
        // candle views the bytes as blocks and asserts their alignment: read into `u64`s.
        let mut words = u64::new_vec_zeroed(size.div_ceil(8)).map_err(|_| self.alloc_error(info))?;
        let bytes = &mut words.as_mut_bytes()[..size];
        self.read_at(bytes, info)?;
        let storage = QStorage::from_data(Cow::Borrowed(bytes), device, info.ggml_type)?;
        Ok(QTensor::new(storage, info.shape.as_slice())?)
    }

    /// Tensor `name` dequantized to `f32`, in row-major shape, on `device`: bit-equal to the
    /// `gguf` Python package's `gguf.quants.dequantize` (what `transformers` runs).
    pub fn dequantize(&self, name: &str, device: &Device) -> Result<Tensor> {
        let info = self.info(name)?;
        if info.ggml_type == GgmlDType::F32 && cfg!(target_endian = "little") {
            // Read in place: the bytes are the values.
            let count = self.size(info)? / 4;
            let mut values = f32::new_vec_zeroed(count).map_err(|_| self.alloc_error(info))?;
            self.read_at(values.as_mut_bytes(), info)?;
            return Ok(Tensor::from_vec(values, info.shape.as_slice(), device)?);
        }
        let bytes = self.read_bytes(name)?;
        let values = dequantize_bytes(info.ggml_type, &bytes, &info.shape)
            .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
        Ok(Tensor::from_vec(values, info.shape.as_slice(), device)?)
    }

    fn info(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.tensor(name)
            .ok_or_else(|| Error::TensorNotFound { name: name.to_string(), files: self.path.display().to_string() })
    }

    /// The tensor's size as `usize` (checked against the file at open; this only fails where
    /// `usize` is narrower than the file).
    fn size(&self, info: &GgufTensorInfo) -> Result<usize> {
        usize::try_from(info.size)
            .map_err(|_| self.error(format!("tensor `{}` of {} bytes does not fit in memory", info.name, info.size)))
    }

    fn alloc_error(&self, info: &GgufTensorInfo) -> Error {
        self.error(format!("cannot allocate {} bytes for tensor `{}`", info.size, info.name))
    }

    /// Fill `buf` with the tensor's bytes, large reads in parallel chunks.
    fn read_at(&self, buf: &mut [u8], info: &GgufTensorInfo) -> Result<()> {
        let at = info.offset;
        let read = if buf.len() <= 2 * READ_CHUNK {
            read_exact_at(&self.file, buf, at)
        } else {
            buf.par_chunks_mut(READ_CHUNK)
                .enumerate()
                .try_for_each(|(i, chunk)| read_exact_at(&self.file, chunk, at + (i * READ_CHUNK) as u64))
        };
        read.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                self.error(format!("it ended inside tensor `{}` (was it truncated after it was opened?)", info.name))
            }
            _ => Error::io(&self.path, e),
        })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Gguf { path: self.path.clone(), message: message.into() }
    }
}

/// What [`Parser::header`] reads.
struct Header {
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
}

/// A buffered reader over the header that knows how many bytes are left in the file.
struct Parser<'a> {
    reader: BufReader<&'a File>,
    pos: u64,
    len: u64,
    path: &'a Path,
    /// Array elements read so far, against [`MAX_ARRAY_ELEMENTS`].
    array_elements: u64,
}

/// The smallest encoding of a value of GGUF type `ty` (for array-length checks), `None` for
/// an unknown type.
fn min_value_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8, // a string is at least its u64 length
        9 => 12,          // an array is at least its element type and count
        _ => return None,
    })
}

fn value_type_name(ty: u32) -> &'static str {
    match ty {
        0 => "uint8",
        1 => "int8",
        2 => "uint16",
        3 => "int16",
        4 => "uint32",
        5 => "int32",
        6 => "float32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "uint64",
        11 => "int64",
        12 => "float64",
        _ => "unknown",
    }
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> Error {
        Error::Gguf { path: self.path.to_path_buf(), message: message.into() }
    }

    fn left(&self) -> u64 {
        self.len - self.pos
    }

    /// Read exactly `buf.len()` bytes of `what`; a clear error when the file ends first.
    fn fill(&mut self, buf: &mut [u8], what: &dyn Fn() -> String) -> Result<()> {
        let n = buf.len() as u64;
        if n > self.left() {
            return Err(self.error(format!(
                "it ends inside {} (at byte {}, {n} bytes needed, {} left); the file is truncated or corrupt, \
                 download it again",
                what(),
                self.pos,
                self.left()
            )));
        }
        self.reader.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                self.error(format!("it ended inside {} (was it truncated while being read?)", what()))
            }
            _ => Error::io(self.path, e),
        })?;
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string (u64 length, then bytes) as raw bytes; the length is checked against the
    /// file before anything is allocated.
    fn string_bytes(&mut self, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
        let len = self.u64(&|| format!("the length of {}", what()))?;
        if len > self.left() {
            return Err(self.error(format!(
                "{} has length {len}, more than the {} bytes left in the file; the file is truncated or corrupt",
                what(),
                self.left()
            )));
        }
        // At most the bytes left in the file.
        let mut bytes = vec![0u8; len as usize];
        self.fill(&mut bytes, what)?;
        Ok(bytes)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let bytes = self.string_bytes(what)?;
        String::from_utf8(bytes).map_err(|e| self.error(format!("{} is not valid UTF-8 ({e})", what())))
    }

    /// The header: magic, version, counts, metadata, tensor infos; then the tensors' extents.
    fn header(&mut self) -> Result<Header> {
        if self.len < 4 {
            let what =
                if self.len == 0 { "it is empty".to_string() } else { format!("it has only {} bytes", self.len) };
            return Err(self.error(format!("not a GGUF file: {what}, too short for the magic `GGUF`")));
        }
        let magic: [u8; 4] = self.array(&|| "the magic".into())?;
        if &magic != MAGIC {
            return Err(self.error(format!(
                "not a GGUF file: it starts with the bytes {:02x} {:02x} {:02x} {:02x}, not the magic `GGUF`",
                magic[0], magic[1], magic[2], magic[3]
            )));
        }
        let version = self.u32(&|| "the header (version)".into())?;
        if version & 0xFFFF == 0 && version != 0 {
            return Err(self.error(format!(
                "unsupported GGUF version {} stored big-endian: autocandle reads little-endian versions 2 and 3 \
                 (re-convert with a recent llama.cpp)",
                version.swap_bytes()
            )));
        }
        if !(2..=3).contains(&version) {
            return Err(self.error(format!(
                "unsupported GGUF version {version}: autocandle reads versions 2 and 3 (re-convert with a recent \
                 llama.cpp)"
            )));
        }
        let n_tensors = self.u64(&|| "the header (tensor count)".into())?;
        let n_kv = self.u64(&|| "the header (metadata count)".into())?;
        // A key/value is at least a key length, a value type and one byte; a tensor info at
        // least a name length, a dimension count, a type and an offset.
        self.check_count(n_kv, 8 + 4 + 1, "metadata count")?;
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = self.string(&|| format!("metadata key #{i}"))?;
            let ty = self.u32(&|| format!("the value type of metadata `{key}`"))?;
            let value = self.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(self.error(format!("metadata key `{key}` appears twice")));
            }
        }
        self.check_count(n_tensors, 8 + 4 + 4 + 8, "tensor count")?;
        let mut infos = Vec::with_capacity((n_tensors as usize).min(MAX_RESERVE));
        let mut names = std::collections::HashSet::new();
        for i in 0..n_tensors {
            let info = self.tensor_info(i)?;
            if !names.insert(info.0.clone()) {
                return Err(self.error(format!("tensor `{}` appears twice", info.0)));
            }
            infos.push(info);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(GgufValue::U32(a)) => {
                return Err(self.error(format!("`general.alignment` is {a}, not a power of two")));
            }
            Some(other) => {
                return Err(self.error(format!("`general.alignment` is a {}, not a uint32", other.type_name())));
            }
        };
        let data_start = self.pos.checked_next_multiple_of(alignment).unwrap_or(u64::MAX);
        let tensors = self.extents(infos, alignment, data_start)?;
        Ok(Header { version, metadata, tensors })
    }

    /// Refuse a count of items that cannot fit in the bytes left, each at least `min` bytes.
    fn check_count(&self, count: u64, min: u64, what: &str) -> Result<()> {
        if count.checked_mul(min).is_none_or(|n| n > self.left()) {
            return Err(self.error(format!(
                "its {what} is {count}, more than the {} bytes left in the file can hold; the file is truncated or corrupt",
                self.left()
            )));
        }
        Ok(())
    }

    /// One metadata value of type `ty` for `key`, arrays nested at most `MAX_ARRAY_DEPTH` deep.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<GgufValue> {
        let what = || format!("the value of metadata `{key}`");
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>(&what)?[0]),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(self.error(format!("metadata `{key}` is a bool stored as {b}, not 0 or 1"))),
            },
            8 => {
                let bytes = self.string_bytes(&what)?;
                let s = String::from_utf8(bytes)
                    .map_err(|e| self.error(format!("metadata `{key}` is a string that is not valid UTF-8 ({e})")))?;
                GgufValue::String(s)
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.error(format!("metadata `{key}` nests arrays more than {MAX_ARRAY_DEPTH} deep")));
                }
                let elem = self.u32(&|| format!("the element type of metadata array `{key}`"))?;
                let Some(min) = min_value_size(elem) else {
                    return Err(self.error(format!("metadata array `{key}` has elements of unknown value type {elem}")));
                };
                let count = self.u64(&|| format!("the length of metadata array `{key}`"))?;
                if count.checked_mul(min).is_none_or(|n| n > self.left()) {
                    return Err(self.error(format!(
                        "metadata array `{key}` has length {count}, more than the {} bytes left in the file can \
                         hold ({} elements take at least {min} bytes each); the file is truncated or corrupt",
                        self.left(),
                        value_type_name(elem)
                    )));
                }
                self.array_elements += count;
                if self.array_elements > MAX_ARRAY_ELEMENTS {
                    return Err(self.error(format!(
                        "metadata array `{key}` brings the metadata to {} array elements, more than autocandle's \
                         limit of {MAX_ARRAY_ELEMENTS}; the file is corrupt or not a model checkpoint",
                        self.array_elements
                    )));
                }
                let mut values = Vec::with_capacity((count as usize).min(MAX_RESERVE));
                for _ in 0..count {
                    values.push(self.value(elem, key, depth + 1)?);
                }
                GgufValue::Array(values)
            }
            10 => GgufValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(&what)?)),
            _ => {
                return Err(
                    self.error(format!("metadata `{key}` has unknown value type {ty} (GGUF value types are 0 to 12)"))
                )
            }
        })
    }

    /// Tensor info #`i`: name, dimensions, type, offset (relative to the data section).
    fn tensor_info(&mut self, i: u64) -> Result<(String, Vec<usize>, GgmlDType, u64)> {
        let name = self.string(&|| format!("the name of tensor #{i}"))?;
        let n_dims = self.u32(&|| format!("the dimension count of tensor `{name}`"))?;
        if n_dims > MAX_DIMS {
            return Err(
                self.error(format!("tensor `{name}` has {n_dims} dimensions, more than ggml's maximum of {MAX_DIMS}"))
            );
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            let dim = self.u64(&|| format!("dimension {d} of tensor `{name}`"))?;
            ne.push(dim);
        }
        let type_id = self.u32(&|| format!("the type of tensor `{name}`"))?;
        let offset = self.u64(&|| format!("the data offset of tensor `{name}`"))?;
        // Row-major (torch) order: ggml's `ne[0]` is the innermost dimension.
        let mut shape = Vec::with_capacity(ne.len());
        for &dim in ne.iter().rev() {
            if dim == 0 {
                return Err(self.error(format!("tensor `{name}` has a dimension of 0 (shape {ne:?} in ggml order)")));
            }
            let dim = usize::try_from(dim).ok().filter(|&d| i64::try_from(d).is_ok()).ok_or_else(|| {
                self.error(format!("tensor `{name}` has a dimension of {dim}, too large (shape {ne:?} in ggml order)"))
            })?;
            shape.push(dim);
        }
        let ggml_type = ggml_type(type_id).map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
        Ok((name, shape, ggml_type, offset))
    }

    /// Check each tensor's size, alignment and extent in the file, and that none overlap.
    fn extents(
        &self,
        infos: Vec<(String, Vec<usize>, GgmlDType, u64)>,
        alignment: u64,
        data_start: u64,
    ) -> Result<Vec<GgufTensorInfo>> {
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, shape, ggml_type, rel) in infos {
            let size = byte_size(ggml_type, &shape).map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
            if !rel.is_multiple_of(alignment) {
                return Err(self.error(format!(
                    "tensor `{name}` has data offset {rel}, not a multiple of the alignment {alignment}"
                )));
            }
            let start = data_start.checked_add(rel);
            let end = start.and_then(|s| s.checked_add(size));
            match (start, end) {
                (Some(start), Some(end)) if end <= self.len => {
                    tensors.push(GgufTensorInfo { name, shape, ggml_type, offset: start, size })
                }
                _ => {
                    return Err(self.error(format!(
                        "tensor `{name}` ({size} bytes at data offset {rel}, file offset {}) reaches past the end \
                         of the file ({} bytes); the file is truncated or corrupt",
                        start.map_or_else(|| "overflowing".to_string(), |s| s.to_string()),
                        self.len
                    )));
                }
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| (tensors[i].offset, tensors[i].size));
        for pair in order.windows(2) {
            let (a, b) = (&tensors[pair[0]], &tensors[pair[1]]);
            if a.offset + a.size > b.offset {
                return Err(self.error(format!(
                    "tensors `{}` (bytes {}..{}) and `{}` (bytes {}..{}) overlap",
                    a.name,
                    a.offset,
                    a.offset + a.size,
                    b.name,
                    b.offset,
                    b.offset + b.size
                )));
            }
        }
        Ok(tensors)
    }
}

/// The ggml type of type id `id`: every type candle knows; a clear error for the others.
fn ggml_type(id: u32) -> std::result::Result<GgmlDType, String> {
    use GgmlDType as T;
    let known_unsupported = match id {
        0 => return Ok(T::F32),
        1 => return Ok(T::F16),
        2 => return Ok(T::Q4_0),
        3 => return Ok(T::Q4_1),
        6 => return Ok(T::Q5_0),
        7 => return Ok(T::Q5_1),
        8 => return Ok(T::Q8_0),
        9 => return Ok(T::Q8_1),
        10 => return Ok(T::Q2K),
        11 => return Ok(T::Q3K),
        12 => return Ok(T::Q4K),
        13 => return Ok(T::Q5K),
        14 => return Ok(T::Q6K),
        15 => return Ok(T::Q8K),
        30 => return Ok(T::BF16),
        4 => "Q4_2 (removed from ggml)",
        5 => "Q4_3 (removed from ggml)",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        31 => "Q4_0_4_4 (removed from ggml)",
        32 => "Q4_0_4_8 (removed from ggml)",
        33 => "Q4_0_8_8 (removed from ggml)",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4 (removed from ggml)",
        37 => "IQ4_NL_4_8 (removed from ggml)",
        38 => "IQ4_NL_8_8 (removed from ggml)",
        39 => "MXFP4",
        40 => "NVFP4",
        41 => "Q1_0",
        _ => return Err(format!("unknown tensor type id {id}")),
    };
    let supported: Vec<&str> = SUPPORTED_TENSOR_TYPES.iter().map(|&t| type_name(t)).collect();
    Err(format!(
        "tensor type {known_unsupported} (id {id}) is not supported; autocandle reads {} (re-quantize the model \
         to one of them)",
        supported.join(", ")
    ))
}

/// ggml's name of a type (`Q4_K`).
fn type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// The stored size of a tensor of type `t` and row-major `shape`: whole blocks along the
/// innermost dimension, overflow-checked.
fn byte_size(t: GgmlDType, shape: &[usize]) -> std::result::Result<u64, String> {
    let block = t.block_size() as u64;
    let inner = shape.last().map_or(1, |&d| d as u64);
    if !inner.is_multiple_of(block) {
        return Err(format!(
            "its innermost dimension {inner} (shape {shape:?}) is not a multiple of the {} block size {block}",
            type_name(t)
        ));
    }
    let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    elements
        .and_then(|n| (n / block).checked_mul(t.type_size() as u64))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| format!("its shape {shape:?} has more elements than fit in a file"))
}

/// Dequantize `bytes`, a tensor of type `ggml_type` and row-major `shape` as stored in a GGUF
/// file, to `f32`, bit-equal to the `gguf` Python package's `gguf.quants.dequantize`.
///
/// Errors when the innermost dimension is not a multiple of the type's block size or when
/// `bytes` is not exactly the size the shape needs.
pub fn dequantize_bytes(ggml_type: GgmlDType, bytes: &[u8], shape: &[usize]) -> Result<Vec<f32>> {
    let size = byte_size(ggml_type, shape).map_err(|e| Error::input(format!("cannot dequantize: {e}")))?;
    if size != bytes.len() as u64 {
        return Err(Error::input(format!(
            "cannot dequantize {} bytes as a {} tensor of shape {shape:?}, which takes {size} bytes",
            bytes.len(),
            type_name(ggml_type)
        )));
    }
    let (block, type_size) = (ggml_type.block_size(), ggml_type.type_size());
    // The output is at most `block / type_size` times the input, which is in memory already.
    let count = bytes.len() / type_size * block;
    let mut out = f32::new_vec_zeroed(count)
        .map_err(|_| Error::input(format!("cannot allocate {count} floats to dequantize into")))?;
    let kernel: fn(&[u8], &mut [f32]) = match ggml_type {
        GgmlDType::F32 => f32_block,
        GgmlDType::F16 => f16_block,
        GgmlDType::BF16 => bf16_block,
        GgmlDType::Q4_0 => q4_0,
        GgmlDType::Q4_1 => q4_1,
        GgmlDType::Q5_0 => q5_0,
        GgmlDType::Q5_1 => q5_1,
        GgmlDType::Q8_0 => q8_0,
        GgmlDType::Q8_1 => q8_1,
        GgmlDType::Q2K => q2_k,
        GgmlDType::Q3K => q3_k,
        GgmlDType::Q4K => q4_k,
        GgmlDType::Q5K => q5_k,
        GgmlDType::Q6K => q6_k,
        GgmlDType::Q8K => q8_k,
    };
    // Float types run through the kernels in runs of elements; block types block by block.
    let (unit, unit_bytes) = if block == 1 { (256, 256 * type_size) } else { (block, type_size) };
    let run = |bytes: &[u8], out: &mut [f32]| {
        for (b, o) in bytes.chunks(unit_bytes).zip(out.chunks_mut(unit)) {
            kernel(b, o);
        }
    };
    if count >= PARALLEL_ELEMENTS {
        let units_per_task = (PARALLEL_ELEMENTS / 4).div_ceil(unit);
        out.par_chunks_mut(unit * units_per_task)
            .zip(bytes.par_chunks(unit_bytes * units_per_task))
            .for_each(|(o, b)| run(b, o));
    } else {
        run(bytes, &mut out);
    }
    Ok(out)
}

// The kernels below mirror `gguf/quants.py` (`dequantize_blocks` of each type) operation for
// operation in f32, so the results are bit-equal; ggml's block layouts are in the comments.

/// An f16 widened to f32 as numpy's `astype(np.float32)` does: exact for every finite value,
/// and NaN payloads kept as they are (numpy's `npy_halfbits_to_floatbits`; `half` would quiet
/// a signalling NaN).
fn f16_to_f32(h: u16) -> f32 {
    if h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 {
        let sign = u32::from(h & 0x8000) << 16;
        return f32::from_bits(sign | 0x7F80_0000 | (u32::from(h & 0x03FF) << 13));
    }
    f16::from_bits(h).to_f32()
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Little-endian f32s.
fn f32_block(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Little-endian f16s.
fn f16_block(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// Little-endian bf16s (the top half of an f32).
fn bf16_block(b: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
    }
}

/// `d: f16, qs: [u8; 16]`: `d * (q - 8)`, low nibbles first.
fn q4_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for l in 0..16 {
        out[l] = d * f32::from((qs[l] & 0x0F) as i8 - 8);
        out[l + 16] = d * f32::from((qs[l] >> 4) as i8 - 8);
    }
}

/// `d: f16, m: f16, qs: [u8; 16]`: `d * q + m`.
fn q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    for l in 0..16 {
        out[l] = d * f32::from(qs[l] & 0x0F) + m;
        out[l + 16] = d * f32::from(qs[l] >> 4) + m;
    }
}

/// The 5-bit quants of Q5_0/Q5_1: four nibble-and-bit halves.
fn q5_quants(qh: u32, qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for l in 0..16 {
        q[l] = (qs[l] & 0x0F) | ((((qh >> l) & 1) as u8) << 4);
        q[l + 16] = (qs[l] >> 4) | ((((qh >> (l + 16)) & 1) as u8) << 4);
    }
    q
}

/// `d: f16, qh: u32, qs: [u8; 16]`: `d * (q - 16)`.
fn q5_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let q = q5_quants(u32::from_le_bytes([b[2], b[3], b[4], b[5]]), &b[6..22]);
    for (o, &q) in out.iter_mut().zip(q.iter()) {
        *o = d * f32::from(q as i8 - 16);
    }
}

/// `d: f16, m: f16, qh: u32, qs: [u8; 16]`: `d * q + m`.
fn q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let q = q5_quants(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..24]);
    for (o, &q) in out.iter_mut().zip(q.iter()) {
        *o = d * f32::from(q) + m;
    }
}

/// `d: f16, qs: [i8; 32]`: `q * d`.
fn q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (o, &q) in out.iter_mut().zip(&b[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

/// `d: f16, s: f16, qs: [i8; 32]` (ggml's current layout; `s` is the sum, unused here): `q * d`.
fn q8_1(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (o, &q) in out.iter_mut().zip(&b[4..36]) {
        *o = f32::from(q as i8) * d;
    }
}

/// `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16`: 2-bit quants, 16 sub-blocks of 16 with
/// a 4-bit scale and min each: `(d * sc) * q - (dmin * m)`.
fn q2_k(b: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for g in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                let e = g * 128 + s * 32 + l;
                let sc = scales[e / 16];
                let dl = d * f32::from(sc & 0x0F);
                let ml = dmin * f32::from(sc >> 4);
                let q = (qs[g * 32 + l] >> (2 * s)) & 3;
                out[e] = dl * f32::from(q) - ml;
            }
        }
    }
}

/// `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`: 3-bit quants (2 low bits, one
/// high bit whose absence subtracts 4), 16 sub-blocks of 16 with 6-bit signed scales:
/// `(d * (sc - 32)) * q`.
fn q3_k(b: &[u8], out: &mut [f32]) {
    let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    let mut dl = [0f32; 16];
    for (k, dl) in dl.iter_mut().enumerate() {
        let low = if k < 8 { sc[k] & 0x0F } else { sc[k - 8] >> 4 };
        let high = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        *dl = d * f32::from((low | (high << 4)) as i8 - 32);
    }
    for g in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                let e = g * 128 + s * 32 + l;
                let low = ((qs[g * 32 + l] >> (2 * s)) & 3) as i8;
                let high = ((hmask[l] >> (e / 32)) & 1) ^ 1;
                out[e] = dl[e / 16] * f32::from(low - ((high << 2) as i8));
            }
        }
    }
}

/// The 6-bit scales and mins of Q4_K/Q5_K's 8 sub-blocks, packed in 12 bytes.
fn k_scale_min(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 0x3F;
        m[j] = s[j + 4] & 0x3F;
        sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
    }
    (sc, m)
}

/// `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`: 4-bit quants, 8 sub-blocks of 32:
/// `(d * sc) * q - (dmin * m)`.
fn q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (sc, m) = k_scale_min(&b[4..16]);
    let qs = &b[16..144];
    for g in 0..4 {
        for s in 0..2 {
            let j = g * 2 + s;
            let (dl, ml) = (d * f32::from(sc[j]), dmin * f32::from(m[j]));
            for l in 0..32 {
                let q = (qs[g * 32 + l] >> (4 * s)) & 0x0F;
                out[j * 32 + l] = dl * f32::from(q) - ml;
            }
        }
    }
}

/// `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`: Q4_K with a fifth bit.
fn q5_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (sc, m) = k_scale_min(&b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for g in 0..4 {
        for s in 0..2 {
            let j = g * 2 + s;
            let (dl, ml) = (d * f32::from(sc[j]), dmin * f32::from(m[j]));
            for l in 0..32 {
                let q = ((qs[g * 32 + l] >> (4 * s)) & 0x0F) | (((qh[l] >> j) & 1) << 4);
                out[j * 32 + l] = dl * f32::from(q) - ml;
            }
        }
    }
}

/// `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`: 6-bit quants, 16 sub-blocks of
/// 16: `(d * sc) * (q - 32)`.
fn q6_k(b: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    let mut dl = [0f32; 16];
    for (dl, &s) in dl.iter_mut().zip(scales) {
        *dl = d * f32::from(s as i8);
    }
    for g in 0..2 {
        for l in 0..32 {
            for s in 0..4 {
                // Element g*128 + s*32 + l: nibble `s / 2` of `ql[g*64 + (s % 2)*32 + l]`, bit
                // pair `s` of `qh[g*32 + l]`.
                let e = g * 128 + s * 32 + l;
                let low = (ql[g * 64 + (s % 2) * 32 + l] >> (4 * (s / 2))) & 0x0F;
                let high = (qh[g * 32 + l] >> (2 * s)) & 3;
                out[e] = dl[e / 16] * f32::from((low | (high << 4)) as i8 - 32);
            }
        }
    }
}

/// `d: f32, qs: [i8; 256], bsums: [i16; 16]`: `d * q`.
fn q8_k(b: &[u8], out: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (o, &q) in out.iter_mut().zip(&b[4..260]) {
        *o = d * f32::from(q as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_type_has_a_type_id_and_every_known_id_a_name() {
        let mut found = Vec::new();
        for id in 0..64 {
            match ggml_type(id) {
                Ok(t) => found.push(t),
                Err(e) if id <= 41 => assert!(e.contains("is not supported") && e.contains("Q4_K"), "{id}: {e}"),
                Err(e) => assert_eq!(e, format!("unknown tensor type id {id}")),
            }
        }
        assert_eq!(found.len(), SUPPORTED_TENSOR_TYPES.len());
        assert!(SUPPORTED_TENSOR_TYPES.iter().all(|t| found.contains(t)));
    }

    #[test]
    fn f16_widening_is_exact_and_keeps_nan_payloads() {
        for h in 0..=u16::MAX {
            let got = f16_to_f32(h);
            let (exp, man) = (i32::from((h >> 10) & 0x1F), f64::from(h & 0x03FF));
            let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
            if exp == 0x1F && man != 0.0 {
                // numpy's npy_halfbits_to_floatbits: sign, all-ones exponent, payload << 13.
                let want = (u32::from(h & 0x8000) << 16) | 0x7F80_0000 | (u32::from(h & 0x03FF) << 13);
                assert_eq!(got.to_bits(), want, "{h:#x}");
                continue;
            }
            let magnitude = match exp {
                0 => man * 2f64.powi(-24),
                0x1F => f64::INFINITY,
                _ => (1024.0 + man) * 2f64.powi(exp - 25),
            };
            assert_eq!(got.to_bits(), ((sign * magnitude) as f32).to_bits(), "{h:#x}");
        }
    }

    #[test]
    fn byte_sizes_follow_blocks() {
        assert_eq!(byte_size(GgmlDType::Q4_0, &[3, 64]), Ok(3 * 2 * 18));
        assert_eq!(byte_size(GgmlDType::Q6K, &[2, 512]), Ok(2 * 2 * 210));
        assert_eq!(byte_size(GgmlDType::F32, &[]), Ok(4));
        assert!(byte_size(GgmlDType::Q4K, &[]).is_err());
        assert!(byte_size(GgmlDType::Q8_0, &[33]).is_err());
        assert!(byte_size(GgmlDType::F32, &[usize::MAX, 2]).is_err());
    }
}
