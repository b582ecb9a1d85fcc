//! Just enough of the zip format to read the archives `torch.save` writes: the central
//! directory (zip64 included), and the data of stored (uncompressed) entries.
//!
//! Every offset and length comes from the file, so each one is checked against the file's size
//! before it is used; nothing here can panic or allocate more than the file holds.

use std::collections::BTreeMap;
use std::io;

/// Random access to the bytes of an archive.
pub(crate) trait Source {
    /// The size in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` with the bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        buf.copy_from_slice(self.get(start..end).ok_or_else(eof)?);
        Ok(())
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")
}

/// Why an archive cannot be read: the file itself, or what it contains.
#[derive(Debug)]
pub(crate) enum ZipError {
    Io(io::Error),
    Format(String),
}

impl From<io::Error> for ZipError {
    fn from(e: io::Error) -> Self {
        ZipError::Io(e)
    }
}

fn format(message: impl Into<String>) -> ZipError {
    ZipError::Format(message.into())
}

type ZResult<T> = Result<T, ZipError>;

/// One entry of the central directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    method: u16,
    compressed: u64,
    size: u64,
    local_header: u64,
}

/// The entries of an archive, by name.
#[derive(Debug, Default)]
pub(crate) struct ZipIndex {
    entries: BTreeMap<String, Entry>,
}

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// The central directory of a PyTorch checkpoint has one entry per storage; this bounds the
/// memory a forged size could make us allocate.
const MAX_CENTRAL_DIRECTORY: u64 = 1 << 30;

fn u16_at(b: &[u8], at: usize) -> ZResult<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| format("a zip record is cut short"))
}

fn u32_at(b: &[u8], at: usize) -> ZResult<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format("a zip record is cut short"))
}

fn u64_at(b: &[u8], at: usize) -> ZResult<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| format("a zip record is cut short"))
}

fn read_vec<S: Source + ?Sized>(src: &S, offset: u64, len: u64) -> ZResult<Vec<u8>> {
    let end = offset.checked_add(len).ok_or_else(|| format("a zip offset overflows"))?;
    if end > src.len() {
        return Err(format(format!(
            "a zip record at byte {offset} runs past the end of the file ({} bytes): the file is truncated",
            src.len()
        )));
    }
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| format("a zip record is too large"))?];
    src.read_at(offset, &mut buf)?;
    Ok(buf)
}

impl ZipIndex {
    /// Read the central directory of the archive in `src`.
    pub(crate) fn read<S: Source + ?Sized>(src: &S) -> ZResult<Self> {
        let len = src.len();
        if len < 22 {
            return Err(format("the file is too short to be a zip archive: it is truncated or not a checkpoint"));
        }
        // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
        let tail_len = len.min(22 + 0xffff);
        let tail_start = len - tail_len;
        let tail = read_vec(src, tail_start, tail_len)?;
        let eocd = (0..=tail.len() - 22)
            .rev()
            .find(|&i| u32_at(&tail, i).ok() == Some(EOCD))
            .ok_or_else(|| format("no end-of-central-directory record: the file is truncated or not a zip archive"))?;
        let record = &tail[eocd..];
        let mut count = u64::from(u16_at(record, 10)?);
        let mut cd_size = u64::from(u32_at(record, 12)?);
        let mut cd_offset = u64::from(u32_at(record, 16)?);
        if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
            let locator_at = (tail_start + eocd as u64)
                .checked_sub(20)
                .ok_or_else(|| format("the zip64 end-of-central-directory locator is missing"))?;
            let locator = read_vec(src, locator_at, 20)?;
            if u32_at(&locator, 0)? != ZIP64_LOCATOR {
                return Err(format("the zip64 end-of-central-directory locator is missing"));
            }
            let record = read_vec(src, u64_at(&locator, 8)?, 56)?;
            if u32_at(&record, 0)? != ZIP64_EOCD {
                return Err(format("the zip64 end-of-central-directory record is missing"));
            }
            count = u64_at(&record, 32)?;
            cd_size = u64_at(&record, 40)?;
            cd_offset = u64_at(&record, 48)?;
        }
        if cd_size > MAX_CENTRAL_DIRECTORY {
            return Err(format(format!("the central directory claims {cd_size} bytes")));
        }
        let cd = read_vec(src, cd_offset, cd_size)?;
        let mut entries = BTreeMap::new();
        let mut at = 0usize;
        for _ in 0..count {
            if u32_at(&cd, at)? != CENTRAL {
                return Err(format("a central directory entry is malformed"));
            }
            let method = u16_at(&cd, at + 10)?;
            let mut compressed = u64::from(u32_at(&cd, at + 20)?);
            let mut size = u64::from(u32_at(&cd, at + 24)?);
            let name_len = usize::from(u16_at(&cd, at + 28)?);
            let extra_len = usize::from(u16_at(&cd, at + 30)?);
            let comment_len = usize::from(u16_at(&cd, at + 32)?);
            let mut local_header = u64::from(u32_at(&cd, at + 42)?);
            let name_at = at + 46;
            let name = cd.get(name_at..name_at + name_len).ok_or_else(|| format("a file name is cut short"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra =
                cd.get(name_at + name_len..name_at + name_len + extra_len).ok_or_else(|| format("cut short"))?;
            if size == 0xffff_ffff || compressed == 0xffff_ffff || local_header == 0xffff_ffff {
                let zip64 = zip64_extra(extra)?;
                let mut values = zip64.chunks_exact(8).map(|c| c.try_into().map(u64::from_le_bytes));
                let mut next = |field: &mut u64| -> ZResult<()> {
                    if *field == 0xffff_ffff {
                        *field = values
                            .next()
                            .and_then(|v| v.ok())
                            .ok_or_else(|| format("a zip64 extra field is cut short"))?;
                    }
                    Ok(())
                };
                next(&mut size)?;
                next(&mut compressed)?;
                next(&mut local_header)?;
            }
            entries.insert(name, Entry { method, compressed, size, local_header });
            at = name_at + name_len + extra_len + comment_len;
        }
        Ok(Self { entries })
    }

    /// Every entry name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The entry `name`.
    pub(crate) fn entry(&self, name: &str) -> Option<Entry> {
        self.entries.get(name).copied()
    }
}

fn zip64_extra(mut extra: &[u8]) -> ZResult<&[u8]> {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0)?;
        let size = usize::from(u16_at(extra, 2)?);
        let body = extra.get(4..4 + size).ok_or_else(|| format("a zip extra field is cut short"))?;
        if id == 0x0001 {
            return Ok(body);
        }
        extra = &extra[4 + size..];
    }
    Err(format("a zip64 entry has no zip64 extra field"))
}

impl Entry {
    /// The uncompressed size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Where the data of this stored entry starts, checked to lie inside the file.
    pub(crate) fn data_offset<S: Source + ?Sized>(&self, src: &S, name: &str) -> ZResult<u64> {
        if self.method != 0 || self.compressed != self.size {
            return Err(format(format!(
                "entry `{name}` is compressed (method {}); torch.save stores entries uncompressed, \
                 save the checkpoint again with torch.save or convert it to safetensors",
                self.method
            )));
        }
        let header = read_vec(src, self.local_header, 30)?;
        if u32_at(&header, 0)? != LOCAL {
            return Err(format(format!("the local header of entry `{name}` is malformed")));
        }
        let start = self.local_header + 30 + u64::from(u16_at(&header, 26)?) + u64::from(u16_at(&header, 28)?);
        match start.checked_add(self.size) {
            Some(end) if end <= src.len() => Ok(start),
            _ => Err(format(format!(
                "entry `{name}` runs past the end of the file ({} bytes): the file is truncated",
                src.len()
            ))),
        }
    }

    /// The whole data of this stored entry, at most `limit` bytes.
    pub(crate) fn read<S: Source + ?Sized>(&self, src: &S, name: &str, limit: u64) -> ZResult<Vec<u8>> {
        if self.size > limit {
            return Err(format(format!("entry `{name}` is {} bytes, more than the {limit} allowed", self.size)));
        }
        let start = self.data_offset(src, name)?;
        read_vec(src, start, self.size)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored zip archive of `files`, laid out as `zipfile` or `torch.save` lay theirs out;
    /// with `zip64`, every entry's sizes and offset go through the zip64 extra field and the
    /// directory through the zip64 end records.
    pub(crate) fn make_zip(files: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in files {
            let offset = out.len() as u32;
            out.extend_from_slice(&LOCAL.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&CENTRAL.to_le_bytes());
            central.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let (size, local) = if zip64 { (0xffff_ffff, 0xffff_ffff) } else { (data.len() as u32, offset) };
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(if zip64 { 28u16 } else { 0 }).to_le_bytes());
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&local.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
            if zip64 {
                central.extend_from_slice(&1u16.to_le_bytes());
                central.extend_from_slice(&24u16.to_le_bytes());
                central.extend_from_slice(&(data.len() as u64).to_le_bytes());
                central.extend_from_slice(&(data.len() as u64).to_le_bytes());
                central.extend_from_slice(&u64::from(offset).to_le_bytes());
            }
        }
        let cd_offset = out.len() as u64;
        out.extend_from_slice(&central);
        if zip64 {
            let record_at = out.len() as u64;
            out.extend_from_slice(&ZIP64_EOCD.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(files.len() as u64).to_le_bytes());
            out.extend_from_slice(&(files.len() as u64).to_le_bytes());
            out.extend_from_slice(&(central.len() as u64).to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&record_at.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let count = if zip64 { 0xffff } else { files.len() as u16 };
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        let cd = if zip64 { 0xffff_ffff } else { cd_offset as u32 };
        out.extend_from_slice(&cd.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_plain_and_zip64_archives() {
        for zip64 in [false, true] {
            let bytes = make_zip(&[("a/data.pkl", b"hello"), ("a/data/0", b"0123456789")], zip64);
            let index = ZipIndex::read(bytes.as_slice()).unwrap();
            assert_eq!(index.names().collect::<Vec<_>>(), ["a/data.pkl", "a/data/0"]);
            let entry = index.entry("a/data/0").unwrap();
            assert_eq!(entry.read(bytes.as_slice(), "a/data/0", 100).unwrap(), b"0123456789");
            assert!(entry.read(bytes.as_slice(), "a/data/0", 5).is_err());
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for zip64 in [false, true] {
            let bytes = make_zip(&[("a/data.pkl", b"hello"), ("a/data/0", b"0123456789")], zip64);
            for len in 0..bytes.len() {
                let cut = &bytes[..len];
                let read = ZipIndex::read(cut).and_then(|index| {
                    let entry = index.entry("a/data/0").ok_or_else(|| format("gone"))?;
                    entry.read(cut, "a/data/0", 100)
                });
                assert!(read.is_err(), "{len} bytes of {}", bytes.len());
            }
        }
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let bytes = make_zip(&[("a/data.pkl", b"hello"), ("a/data/0", b"0123456789")], true);
        for i in 0..bytes.len() {
            for value in [0x00, 0xff, 0x7f] {
                let mut bad = bytes.clone();
                bad[i] = value;
                if let Ok(index) = ZipIndex::read(bad.as_slice()) {
                    for name in index.names().map(str::to_owned).collect::<Vec<_>>() {
                        if let Some(entry) = index.entry(&name) {
                            let _ = entry.read(bad.as_slice(), &name, 1 << 20);
                        }
                    }
                }
            }
        }
    }
}
