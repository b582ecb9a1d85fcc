//! The archives `torch.save` writes, read through the `zip` crate: its central directory
//! (zip64 included) gives each entry's size and where its data starts, and the data of stored
//! (uncompressed) entries is then read in place with positioned reads.
//!
//! Every offset and length comes from the file, so each one is checked against the file's size
//! (and a whole entry read against a limit) before it is used; nothing here can panic or
//! allocate more than the file holds.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use zip::{CompressionMethod, ZipArchive};

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

/// A [`Source`] as the `Read + Seek` stream the `zip` crate reads.
struct Cursor<'s, S: ?Sized> {
    src: &'s S,
    pos: u64,
}

impl<S: Source + ?Sized> Read for Cursor<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.src.len().saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.src.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Source + ?Sized> Seek for Cursor<'_, S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
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

impl From<zip::result::ZipError> for ZipError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => ZipError::Io(e),
            e => format(format!("the zip archive is malformed or truncated ({e})")),
        }
    }
}

fn format(message: impl Into<String>) -> ZipError {
    ZipError::Format(message.into())
}

type ZResult<T> = Result<T, ZipError>;

/// One entry of the archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    stored: bool,
    method: CompressionMethod,
    size: u64,
    data_start: u64,
}

/// The entries of an archive, by name.
#[derive(Debug, Default)]
pub(crate) struct ZipIndex {
    entries: BTreeMap<String, Entry>,
}

impl ZipIndex {
    /// Read the central directory of the archive in `src`, and the local header of each entry.
    pub(crate) fn read<S: Source + ?Sized>(src: &S) -> ZResult<Self> {
        let mut archive = ZipArchive::new(Cursor { src, pos: 0 })?;
        let mut entries = BTreeMap::new();
        for i in 0..archive.len() {
            let file = archive.by_index_raw(i)?;
            let name = String::from_utf8_lossy(file.name_raw()).into_owned();
            let data_start = file.data_start().ok_or_else(|| format(format!("entry `{name}` has no local header")))?;
            let stored = file.compression() == CompressionMethod::Stored && file.compressed_size() == file.size();
            entries.insert(name, Entry { stored, method: file.compression(), size: file.size(), data_start });
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

impl Entry {
    /// The uncompressed size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Where the data of this stored entry starts, checked to lie inside the file.
    pub(crate) fn data_offset<S: Source + ?Sized>(&self, src: &S, name: &str) -> ZResult<u64> {
        if !self.stored {
            return Err(format(format!(
                "entry `{name}` is compressed ({:?}); torch.save stores entries uncompressed, \
                 save the checkpoint again with torch.save or convert it to safetensors",
                self.method
            )));
        }
        match self.data_start.checked_add(self.size) {
            Some(end) if end <= src.len() => Ok(self.data_start),
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
        // At most `limit` bytes, and inside the file (checked above).
        let mut buf = vec![0u8; usize::try_from(self.size).map_err(|_| format("a zip entry is too large"))?];
        src.read_at(start, &mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const EOCD: u32 = 0x0605_4b50;
    const ZIP64_LOCATOR: u32 = 0x0706_4b50;
    const ZIP64_EOCD: u32 = 0x0606_4b50;
    const CENTRAL: u32 = 0x0201_4b50;
    const LOCAL: u32 = 0x0403_4b50;

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

    #[test]
    fn compressed_entries_are_refused_naming_them() {
        let mut bytes = make_zip(&[("a/data/0", b"0123456789")], false);
        // The central directory entry's method (offset 10) becomes deflate.
        let central = bytes.windows(4).position(|w| w == CENTRAL.to_le_bytes()).unwrap();
        bytes[central + 10] = 8;
        let index = ZipIndex::read(bytes.as_slice()).unwrap();
        let err = index.entry("a/data/0").unwrap().read(bytes.as_slice(), "a/data/0", 100).unwrap_err();
        assert!(matches!(&err, ZipError::Format(m) if m.contains("`a/data/0` is compressed")), "{err:?}");
    }
}
