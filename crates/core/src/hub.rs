//! Where model files come from: a local folder, or the Hub through its cache.
//!
//! The cache has the layout and environment variables of Python's `huggingface_hub`
//! (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`, `HF_TOKEN`), so a cache filled by Python
//! works here, and offline mode never touches the network.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::options::LoadOptions;

/// A model location: a local folder or a Hub repo at a revision.
#[derive(Debug, Clone)]
pub struct ModelSource {
    kind: SourceKind,
    subfolder: Option<String>,
    revision: String,
    cache_dir: PathBuf,
    offline: bool,
    force_download: bool,
    token: Option<String>,
    variant: Option<String>,
    use_safetensors: Option<bool>,
    progress: bool,
}

#[derive(Debug, Clone)]
enum SourceKind {
    Local(PathBuf),
    Hub(String),
}

/// Whether an environment flag like `HF_HUB_OFFLINE` is set to a true value.
fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
        .unwrap_or(false)
}

/// The Hub cache folder, resolved as `huggingface_hub` does.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface").join("hub")
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
    pub fn resolve(id_or_path: &str, opts: &LoadOptions) -> Result<Self> {
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
            SourceKind::Hub(id_or_path.to_owned())
        };
        Ok(Self {
            kind,
            subfolder: opts.subfolder.clone(),
            revision: opts.revision.clone(),
            cache_dir: opts.cache_dir.clone().unwrap_or_else(default_cache_dir),
            offline: opts.local_files_only || env_flag("HF_HUB_OFFLINE"),
            force_download: opts.force_download,
            token: opts.token.clone().or_else(|| std::env::var("HF_TOKEN").ok()),
            variant: opts.variant.clone(),
            use_safetensors: opts.use_safetensors,
            progress: opts.progress,
        })
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
                    Ok(Some(p))
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
            hint: match (&self.kind, self.offline) {
                (SourceKind::Hub(_), true) => format!(
                    ": offline mode is on (HF_HUB_OFFLINE or local_files_only) and the cache `{}` does not have it",
                    self.cache_dir.display()
                ),
                _ => String::new(),
            },
        })
    }

    fn repo_cache_dir(&self, id: &str) -> PathBuf {
        self.cache_dir.join(format!("models--{}", id.replace('/', "--")))
    }

    /// Look `rel` up in the cache: `refs/<revision>` names a snapshot, unless the revision
    /// is itself a commit hash.
    fn cached_file(&self, id: &str, rel: &str) -> Result<CacheLookup> {
        let repo_dir = self.repo_cache_dir(id);
        let is_commit = self.revision.len() == 40 && self.revision.chars().all(|c| c.is_ascii_hexdigit());
        let commit = if is_commit {
            self.revision.clone()
        } else {
            check_relative_path(&self.revision)?;
            let ref_path = repo_dir.join("refs").join(&self.revision);
            match std::fs::read_to_string(&ref_path) {
                Ok(s) => s.trim().to_owned(),
                Err(_) => return Ok(CacheLookup::Unknown),
            }
        };
        check_relative_path(&commit)?;
        let path = repo_dir.join("snapshots").join(&commit).join(rel);
        if path.is_file() {
            return Ok(CacheLookup::Found(path));
        }
        if repo_dir.join(".no_exist").join(&commit).join(rel).exists() {
            return Ok(CacheLookup::KnownMissing);
        }
        Ok(CacheLookup::Unknown)
    }

    fn hub_file(&self, id: &str, rel: &str) -> Result<Option<PathBuf>> {
        if !self.force_download {
            match self.cached_file(id, rel)? {
                CacheLookup::Found(p) => {
                    tracing::debug!(repo = id, revision = %self.revision, file = rel, path = %p.display(), "cache hit");
                    return Ok(Some(p));
                }
                CacheLookup::KnownMissing => {
                    tracing::debug!(repo = id, revision = %self.revision, file = rel, "known missing (cache)");
                    return Ok(None);
                }
                CacheLookup::Unknown => {}
            }
        }
        if self.offline {
            tracing::debug!(repo = id, revision = %self.revision, file = rel, "not in the cache (offline)");
            return Ok(None);
        }
        tracing::debug!(repo = id, revision = %self.revision, file = rel, "downloading");
        self.download(id, rel)
    }

    fn download(&self, id: &str, rel: &str) -> Result<Option<PathBuf>> {
        use hf_hub::api::sync::ApiBuilder;
        use hf_hub::{Repo, RepoType};
        let hub_err = |message: String| Error::Hub { repo: id.to_owned(), file: rel.to_owned(), message };
        let api = ApiBuilder::new()
            .with_cache_dir(self.cache_dir.clone())
            .with_token(self.token.clone())
            .with_progress(self.progress)
            .build()
            .map_err(|e| hub_err(e.to_string()))?;
        let repo = api.repo(Repo::with_revision(id.to_owned(), RepoType::Model, self.revision.clone()));
        let result = if self.force_download { repo.download(rel) } else { repo.get(rel) };
        match result {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_missing_file(&e) => Ok(None),
            Err(e) => Err(hub_err(format!(
                "{e}; check the repo id, the revision and your network, or set HF_HUB_OFFLINE=1 to use the cache only"
            ))),
        }
    }
}

/// Whether a Hub error says the file is not in the repo (HTTP 404).
fn is_missing_file(e: &hf_hub::api::sync::ApiError) -> bool {
    matches!(e, hf_hub::api::sync::ApiError::RequestError(e) if matches!(**e, ureq::Error::Status(404, _)))
}

enum CacheLookup {
    Found(PathBuf),
    KnownMissing,
    Unknown,
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

    #[test]
    fn only_a_404_status_is_a_missing_file() {
        use hf_hub::api::sync::ApiError;
        let status = |code: u16| {
            let response = ureq::Response::new(code, "status", "").unwrap();
            ApiError::RequestError(Box::new(ureq::Error::Status(code, response)))
        };
        assert!(is_missing_file(&status(404)));
        for code in [401, 403, 500] {
            assert!(!is_missing_file(&status(code)), "{code}");
        }
        // A message that merely reads like one is not.
        let io = std::io::Error::other("https://huggingface.co/x: status code 404");
        assert!(!is_missing_file(&ApiError::IoError(io)));
        assert!(!is_missing_file(&ApiError::InvalidResume));
    }
}
