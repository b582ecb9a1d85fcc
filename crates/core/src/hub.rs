//! Where model files come from: a local folder, or the Hub through its cache.
//!
//! The cache has the layout of Python's `huggingface_hub` (`models--org--name/` with `refs/`,
//! `blobs/`, `snapshots/<commit>/` and `.no_exist/<commit>/`), so a cache filled by Python or
//! `huggingface-cli download` works here and the other way round. Looking a file up in the
//! cache is this module's own code and never touches the network: a file is served from
//! `snapshots/<commit>/` (the commit from `refs/<revision>`, or the revision itself when it is
//! a commit hash), and a file recorded in `.no_exist/<commit>/` is known to be missing.
//!
//! # Environment
//!
//! [`HubSettings`] reads the environment once per load, as `huggingface_hub` does:
//! `HF_HOME`, `HF_HUB_CACHE` (and the older `HUGGINGFACE_HUB_CACHE`), `XDG_CACHE_HOME`,
//! `HF_ENDPOINT`, `HF_TOKEN` (and the older `HUGGING_FACE_HUB_TOKEN`), `HF_TOKEN_PATH`, the
//! token file `huggingface-cli login` saves, `HF_HUB_DISABLE_IMPLICIT_TOKEN`, `HF_HUB_OFFLINE`
//! (and `TRANSFORMERS_OFFLINE`) and `HF_HUB_DISABLE_PROGRESS_BARS`; its docs say which wins.
//! `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT` are not honoured: hf-hub 0.4 gives no
//! way to set its HTTP timeouts (hf-hub 1.0 is a rewrite on tokio and reqwest, and does not read
//! them either).
//!
//! # Downloads (the `hub` feature)
//!
//! With the `hub` feature, a file the cache lacks is downloaded with hf-hub's blocking client
//! from `<endpoint>/<repo>/resolve/<revision>/<file>`, sending `Authorization: Bearer <token>`
//! when there is a token. hf-hub stores it as `huggingface_hub` does: the bytes in
//! `blobs/<etag>`, a relative symlink `snapshots/<commit>/<file>` to it, and the commit in
//! `refs/<revision>`; an interrupted download continues from `blobs/<etag>.part` with a
//! `Range: bytes=<n>-` request. Relative redirects (renamed repos, `/api/resolve-cache/...`)
//! are followed with the token; a redirect to another host (the CDN of large files) is
//! followed too. When the Hub answers 404 with an `X-Repo-Commit` header, this module records
//! the miss as `huggingface_hub` does, in `.no_exist/<commit>/<file>` and `refs/<revision>`, so
//! the next lookup of that file does not ask the Hub again.
//!
//! What hf-hub 0.4 does not do: timeouts (above); retries (none are configured); checking that
//! the server honoured the `Range` of a resumed download (a server that answers 200 with the
//! whole file would leave a wrong blob); checking the blob's hash against its etag; keeping
//! the token from another host (its size probe, `Range: bytes=0-0`, sends the token to the
//! host an absolute redirect names, where `huggingface_hub` does not follow one; the download
//! itself drops it); answering a redirect without `Location` with an error (it panics); and
//! proxies listed in `NO_PROXY` (ureq 2 reads `ALL_PROXY`, `HTTPS_PROXY` and `HTTP_PROXY`, the
//! same for every host).
//!
//! Without the `hub` feature there is no network code at all: local folders and a filled cache
//! work as with it, a file that a cached revision lacks is missing (as in offline mode), and a
//! repo or revision the cache does not have is an [`Error::Hub`] that says how to get the files.

#[cfg(feature = "hub")]
mod download;
mod settings;

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

pub use settings::{HubSettings, DEFAULT_ENDPOINT};

use crate::error::{Error, Result};
use crate::options::LoadOptions;

/// A model location: a local folder or a Hub repo at a revision.
#[derive(Debug, Clone)]
pub struct ModelSource {
    kind: SourceKind,
    subfolder: Option<String>,
    revision: String,
    settings: HubSettings,
    force_download: bool,
    variant: Option<String>,
    use_safetensors: Option<bool>,
    allow_external_links: bool,
}

#[derive(Debug, Clone)]
enum SourceKind {
    Local(PathBuf),
    Hub(String),
}

/// The Hub cache folder, resolved as `huggingface_hub` does from the process environment
/// (`HF_HUB_CACHE`, `HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub` or
/// `~/.cache/huggingface/hub`).
pub fn default_cache_dir() -> PathBuf {
    settings::cache_dir_from_env()
}

/// Whether `revision` is a full commit hash (40 hexadecimal digits).
fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Check that `path` is a relative path inside its folder: no `..`, no root, no drive.
pub fn check_relative_path(path: &str) -> Result<()> {
    let unsafe_path = |reason: &str| Error::UnsafePath { path: path.to_owned(), reason: reason.to_owned() };
    if path.is_empty() {
        return Err(unsafe_path("the path is empty"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(unsafe_path("backslashes and NUL bytes are not allowed"));
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(unsafe_path("drive letters are not allowed, give a path relative to the model folder"));
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(unsafe_path("`..` would leave the model folder"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path("absolute paths are not allowed, give a path relative to the model folder"));
            }
        }
    }
    Ok(())
}

/// Check a weight file variant (`fp16`): it becomes part of a file name, so it is one plain
/// name (letters, digits, `-`, `_`, inner `.`), never a path.
pub fn check_variant(variant: &str) -> Result<()> {
    let plain = !variant.is_empty()
        && variant.len() <= 64
        && variant.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !variant.starts_with('.')
        && !variant.ends_with('.')
        && !variant.contains("..");
    if plain {
        Ok(())
    } else {
        Err(Error::UnsafePath {
            path: variant.to_owned(),
            reason: "a weight variant is a plain name such as `fp16` (letters, digits, `-`, `_`, `.`)".to_owned(),
        })
    }
}

/// Validate a Hub repo id the way `huggingface_hub.validate_repo_id` does.
pub fn check_repo_id(id: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidRepoId { name: id.to_owned(), reason: reason.to_owned() };
    if id.is_empty() || id.len() > 96 {
        return Err(invalid("a repo id has 1 to 96 characters"));
    }
    if id.matches('/').count() > 1 {
        return Err(invalid("a repo id is `name` or `namespace/name`; no local folder has this path"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) {
        return Err(invalid("only letters, digits, `-`, `_`, `.` and one `/` are allowed"));
    }
    if id.contains("--") || id.contains("..") {
        return Err(invalid("`--` and `..` are forbidden in repo ids"));
    }
    if id.starts_with(['-', '.', '/']) || id.ends_with(['-', '.', '/']) {
        return Err(invalid("a repo id cannot start or end with `-`, `.` or `/`"));
    }
    Ok(())
}

impl ModelSource {
    /// Resolve `id_or_path`: an existing folder is used as is, anything else is a Hub repo id.
    /// The Hub settings come from `opts` and the process environment ([`HubSettings`]).
    pub fn resolve(id_or_path: &str, opts: &LoadOptions) -> Result<Self> {
        Self::resolve_with_env(id_or_path, opts, |name| std::env::var_os(name))
    }

    /// [`resolve`](Self::resolve) with the environment that `env` describes instead of the
    /// process's (`env("HF_HOME")` is the value of `HF_HOME`, `None` when unset).
    pub fn resolve_with_env(
        id_or_path: &str,
        opts: &LoadOptions,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        if let Some(sub) = &opts.subfolder {
            check_relative_path(sub)?;
        }
        if let Some(variant) = &opts.variant {
            check_variant(variant)?;
        }
        let path = Path::new(id_or_path);
        let kind = if path.is_dir() {
            SourceKind::Local(path.to_path_buf())
        } else {
            check_repo_id(id_or_path)?;
            // The revision names `refs/<revision>` in the cache.
            check_relative_path(&opts.revision)?;
            SourceKind::Hub(id_or_path.to_owned())
        };
        Ok(Self {
            kind,
            subfolder: opts.subfolder.clone(),
            revision: opts.revision.clone(),
            settings: HubSettings::from_lookup(opts, env),
            force_download: opts.force_download,
            variant: opts.variant.clone(),
            use_safetensors: opts.use_safetensors,
            allow_external_links: opts.allow_external_links,
        })
    }

    /// The Hub settings this source downloads with: cache folder, endpoint, token, offline.
    pub fn hub_settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The weight file variant asked for (`fp16`), if any.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Which weight formats to look for: `Some(true)` safetensors only, `Some(false)` `.bin`
    /// only, `None` both.
    pub fn use_safetensors(&self) -> Option<bool> {
        self.use_safetensors
    }

    /// A human-readable description: `folder `x`` or `Hub repo `org/name` (revision main)`.
    pub fn describe(&self) -> String {
        let sub = self.subfolder.as_deref().map(|s| format!(", subfolder `{s}`")).unwrap_or_default();
        match &self.kind {
            SourceKind::Local(p) => format!("folder `{}`{sub}", p.display()),
            SourceKind::Hub(id) => format!("Hub repo `{id}` (revision `{}`{sub})", self.revision),
        }
    }

    /// The local folder, when the source is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.kind {
            SourceKind::Local(p) => Some(p),
            SourceKind::Hub(_) => None,
        }
    }

    /// The name or path the source was resolved from.
    pub fn name(&self) -> String {
        match &self.kind {
            SourceKind::Local(p) => p.display().to_string(),
            SourceKind::Hub(id) => id.clone(),
        }
    }

    fn repo_file(&self, file: &str) -> String {
        match &self.subfolder {
            Some(sub) => format!("{}/{file}", sub.trim_end_matches('/')),
            None => file.to_owned(),
        }
    }

    /// The path of `file`, fetched into the cache when needed; `Ok(None)` when the source
    /// does not have it.
    pub fn optional_file(&self, file: &str) -> Result<Option<PathBuf>> {
        check_relative_path(file)?;
        let rel = self.repo_file(file);
        match &self.kind {
            SourceKind::Local(dir) => {
                let p = dir.join(&rel);
                if p.is_file() {
                    tracing::debug!(file = rel, path = %p.display(), "local file");
                    let p = self.confine(&rel, p, &folder_roots(dir))?;
                    if snapshot_repo(dir).is_some() {
                        check_cache_entry(&rel, &p)?;
                    }
                    Ok(Some(p))
                } else if let Some(target) = dangling_link(&p) {
                    Err(match snapshot_repo(dir) {
                        Some(_) => dangling_cache_entry(&rel, &p, &target),
                        None => Error::FileNotFound {
                            file: rel,
                            location: self.describe(),
                            hint: format!(
                                ": `{}` is a link to `{}`, which does not exist",
                                p.display(),
                                target.display()
                            ),
                        },
                    })
                } else {
                    tracing::debug!(file = rel, folder = %dir.display(), "no such local file");
                    Ok(None)
                }
            }
            SourceKind::Hub(id) => self.hub_file(id, &rel),
        }
    }

    /// The path of `file`, or an error that says where it was looked for.
    pub fn file(&self, file: &str) -> Result<PathBuf> {
        self.optional_file(file)?.ok_or_else(|| Error::FileNotFound {
            file: file.to_owned(),
            location: self.describe(),
            hint: match &self.kind {
                SourceKind::Hub(_) if self.settings.offline() => format!(
                    ": offline mode is on (HF_HUB_OFFLINE or local_files_only) and the cache `{}` does not have it",
                    self.settings.cache_dir().display()
                ),
                SourceKind::Hub(_) if !cfg!(feature = "hub") => format!(
                    ": the cache `{}` does not have it and this build has no Hub downloads (the `hub` feature of \
                     autocandle is off); enable that feature, or download the file with `huggingface-cli download`",
                    self.settings.cache_dir().display()
                ),
                _ => String::new(),
            },
        })
    }

    /// `path` (the file `rel`), checked to lead, after following links, into one of `roots`
    /// (canonical folders), unless the options allow external links.
    fn confine(&self, rel: &str, path: PathBuf, roots: &[PathBuf]) -> Result<PathBuf> {
        if self.allow_external_links {
            return Ok(path);
        }
        let target = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
        if roots.iter().any(|root| target.starts_with(root)) {
            return Ok(path);
        }
        tracing::debug!(file = rel, path = %path.display(), target = %target.display(), "link leaves the model folder");
        Err(Error::ExternalLink { file: rel.to_owned(), location: self.describe(), link: path, target })
    }

    /// A file of the cache of repo `id` (from a lookup or a download), confined to its
    /// snapshot and `blobs/` and checked for an empty file.
    fn cache_entry(&self, id: &str, rel: &str, path: PathBuf) -> Result<PathBuf> {
        let repo_dir = self.repo_cache_dir(id);
        let roots: Vec<PathBuf> = [repo_dir.join("snapshots"), repo_dir.join("blobs")]
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let path = self.confine(rel, path, &roots)?;
        check_cache_entry(rel, &path)?;
        Ok(path)
    }

    /// The cache folder of repo `id`: `<cache>/models--org--name`.
    fn repo_cache_dir(&self, id: &str) -> PathBuf {
        self.settings.cache_dir().join(format!("models--{}", id.replace('/', "--")))
    }

    /// Look `rel` up in the cache: `refs/<revision>` names a snapshot, unless the revision
    /// is itself a commit hash.
    fn cached_file(&self, id: &str, rel: &str) -> Result<CacheLookup> {
        let repo_dir = self.repo_cache_dir(id);
        let commit = if is_commit_hash(&self.revision) {
            self.revision.clone()
        } else {
            let ref_path = repo_dir.join("refs").join(&self.revision);
            match std::fs::read_to_string(&ref_path) {
                Ok(s) => s.trim().to_owned(),
                Err(_) => return Ok(CacheLookup::NotCached { revision_cached: false }),
            }
        };
        check_relative_path(&commit)?;
        let snapshot = repo_dir.join("snapshots").join(&commit);
        let path = snapshot.join(rel);
        if path.is_file() {
            return Ok(CacheLookup::Found(path));
        }
        if let Some(target) = dangling_link(&path) {
            return Ok(CacheLookup::Dangling(path, target));
        }
        if repo_dir.join(".no_exist").join(&commit).join(rel).exists() {
            return Ok(CacheLookup::KnownMissing);
        }
        Ok(CacheLookup::NotCached { revision_cached: snapshot.is_dir() })
    }

    fn hub_file(&self, id: &str, rel: &str) -> Result<Option<PathBuf>> {
        let lookup = self.cached_file(id, rel)?;
        if !self.force_download {
            match &lookup {
                CacheLookup::Found(p) => {
                    tracing::debug!(repo = id, revision = %self.revision, file = rel, path = %p.display(), "cache hit");
                    return self.cache_entry(id, rel, p.clone()).map(Some);
                }
                CacheLookup::Dangling(p, target) => return Err(dangling_cache_entry(rel, p, target)),
                CacheLookup::KnownMissing => {
                    tracing::debug!(repo = id, revision = %self.revision, file = rel, "known missing (cache)");
                    return Ok(None);
                }
                CacheLookup::NotCached { .. } => {}
            }
        }
        if self.settings.offline() {
            tracing::debug!(repo = id, revision = %self.revision, file = rel, "not in the cache (offline)");
            return Ok(None);
        }
        #[cfg(feature = "hub")]
        {
            tracing::debug!(repo = id, revision = %self.revision, file = rel, "downloading");
            match download::download(self, id, rel)? {
                Some(p) => self.cache_entry(id, rel, p).map(Some),
                None => Ok(None),
            }
        }
        #[cfg(not(feature = "hub"))]
        {
            // Like offline mode for a revision the cache has (so optional files that Python
            // never fetched are simply missing); a revision it lacks cannot load at all.
            let revision_cached = matches!(lookup, CacheLookup::NotCached { revision_cached: true });
            if revision_cached && !self.force_download {
                return Ok(None);
            }
            let why = if self.force_download {
                "force_download asks for a fresh copy".to_owned()
            } else {
                format!(
                    "the cache `{}` does not have revision `{}`",
                    self.settings.cache_dir().display(),
                    self.revision
                )
            };
            Err(Error::Hub {
                repo: id.to_owned(),
                file: rel.to_owned(),
                message: format!(
                    "{why} and this build has no Hub downloads (the `hub` feature of autocandle is off): enable \
                     the `hub` feature, fill the cache with `huggingface-cli download {id}` (or Python's \
                     `huggingface_hub`), or pass a local folder"
                ),
            })
        }
    }
}

/// What the cache knows about one file at one revision.
enum CacheLookup {
    /// In `snapshots/<commit>/`.
    Found(PathBuf),
    /// `snapshots/<commit>/<file>` is a link to something that does not exist (a removed or
    /// never completed blob): the link and its target.
    Dangling(PathBuf, PathBuf),
    /// Recorded in `.no_exist/<commit>/`: the repo does not have it.
    KnownMissing,
    /// Neither; `revision_cached` when the revision's snapshot folder exists (only builds
    /// without downloads need to know).
    NotCached {
        #[cfg_attr(feature = "hub", allow(dead_code))]
        revision_cached: bool,
    },
}

/// The canonical folders a file of the local folder `dir` may lead to: the folder itself and,
/// when the folder is (inside) a snapshot of the Hub cache, the repo's `blobs/`.
fn folder_roots(dir: &Path) -> Vec<PathBuf> {
    let Ok(folder) = std::fs::canonicalize(dir) else { return Vec::new() };
    let blobs = snapshot_repo(&folder).and_then(|repo| std::fs::canonicalize(repo.join("blobs")).ok());
    std::iter::once(folder).chain(blobs).collect()
}

/// The repo folder of the Hub cache (`models--org--name`) when `dir` is a snapshot
/// (`<repo>/snapshots/<commit>`) or a folder inside one, after following links.
fn snapshot_repo(dir: &Path) -> Option<PathBuf> {
    let folder = std::fs::canonicalize(dir).ok()?;
    let snapshots = folder.ancestors().skip(1).find(|a| a.file_name().is_some_and(|n| n == "snapshots"))?;
    let repo = snapshots.parent()?;
    repo.join("blobs").is_dir().then(|| repo.to_path_buf())
}

/// Where `path` points when it is a symbolic link to nothing (read from the link).
fn dangling_link(path: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() || path.exists() {
        return None;
    }
    Some(std::fs::read_link(path).unwrap_or_default())
}

fn dangling_cache_entry(rel: &str, path: &Path, target: &Path) -> Error {
    Error::CorruptCache {
        file: rel.to_owned(),
        path: path.to_path_buf(),
        problem: format!(
            "the snapshot link points to `{}`, which does not exist (an interrupted or removed download)",
            target.display()
        ),
    }
}

/// A file served from the Hub cache is never empty: an empty one is a failed download (no file
/// that autocandle reads is valid empty).
fn check_cache_entry(rel: &str, path: &Path) -> Result<()> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::CorruptCache {
            file: rel.to_owned(),
            path: path.to_path_buf(),
            problem: "the file is empty".to_owned(),
        });
    }
    Ok(())
}

/// Advice for a file that cannot be parsed: when `path` is in the Hub cache
/// (`models--org--name/snapshots/<commit>/...`), a truncated or corrupt download is a likely
/// cause and `force_download` the remedy; empty otherwise.
pub fn cache_advice(path: &Path) -> &'static str {
    let names: Vec<_> = path.components().filter_map(|c| c.as_os_str().to_str()).collect();
    let in_cache = names
        .windows(2)
        .any(|w| w[1] == "snapshots" && ["models--", "datasets--", "spaces--"].iter().any(|p| w[0].starts_with(p)));
    if in_cache {
        "; the file is in the Hub cache and may be a truncated or corrupt download: download it again with \
         `force_download` (`LoadOptions::force_download(true)`, `--force-download` on the command line)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        assert!(check_repo_id("google-bert/bert-base-uncased").is_ok());
        assert!(check_repo_id("gpt2").is_ok());
        assert!(check_repo_id("a/b/c").is_err());
        assert!(check_repo_id("../etc").is_err());
        assert!(check_repo_id("a--b/c").is_err());
        assert!(check_repo_id("has space/x").is_err());
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative_path("config.json").is_ok());
        assert!(check_relative_path("sub/model.safetensors").is_ok());
        assert!(check_relative_path("../secret").is_err());
        assert!(check_relative_path("/etc/passwd").is_err());
        assert!(check_relative_path("a\\..\\b").is_err());
        assert!(check_relative_path("sub/../../x").is_err());
        assert!(check_relative_path("C:/Windows/x").is_err());
        assert!(check_relative_path("").is_err());
    }

    #[test]
    fn variants() {
        assert!(check_variant("fp16").is_ok());
        assert!(check_variant("bf16-v2.1").is_ok());
        for bad in ["", "../x", "a/b", ".", "..", "a..b", "x\\y", ".hidden"] {
            assert!(check_variant(bad).is_err(), "{bad}");
        }
    }
}
