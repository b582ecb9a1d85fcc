//! Downloads from the Hub with hf-hub's blocking client (the `hub` feature), and the record of
//! files the Hub does not have (`.no_exist/<commit>/<file>`), as `huggingface_hub` keeps it.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::{is_commit_hash, ModelSource};
use crate::error::{Error, Result};

/// Download `rel` of repo `id` into the cache; `Ok(None)` when the Hub answers 404.
pub(super) fn download(source: &ModelSource, id: &str, rel: &str) -> Result<Option<PathBuf>> {
    let hub_err = |message: String| Error::Hub { repo: id.to_owned(), file: rel.to_owned(), message };
    let settings = &source.settings;
    // `from_cache`, not `new`: `new` looks for the home folder (and panics without one) to
    // read a token that `with_token` replaces anyway.
    let api = ApiBuilder::from_cache(Cache::new(settings.cache_dir().to_path_buf()))
        .with_endpoint(settings.endpoint().to_owned())
        .with_token(settings.token().map(str::to_owned))
        .with_progress(settings.progress())
        .with_user_agent("autocandle", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(|e| hub_err(e.to_string()))?;
    let repo = api.repo(Repo::with_revision(id.to_owned(), RepoType::Model, source.revision.clone()));
    // hf-hub writes the blob, the snapshot link and `refs/<revision>`.
    match repo.download(rel) {
        Ok(p) => Ok(Some(p)),
        Err(e) => match missing_file(&e) {
            Some(commit) => {
                if let Some(commit) = commit {
                    record_missing(&source.repo_cache_dir(id), &source.revision, commit, rel);
                }
                Ok(None)
            }
            None => Err(hub_err(format!("{e}; {}", advice(&e)))),
        },
    }
}

/// What to do about a failed request.
fn advice(e: &ApiError) -> &'static str {
    match e {
        ApiError::RequestError(e) if matches!(**e, ureq::Error::Status(401 | 403, _)) => {
            "the repo may be private or gated: accept its terms on the Hub and log in with `huggingface-cli login` \
             or set HF_TOKEN"
        }
        _ => "check the repo id, the revision, HF_ENDPOINT and your network, or set HF_HUB_OFFLINE=1 to use the cache only",
    }
}

/// For a 404 answer (the file is not in the repo): `Some`, with the commit the Hub named in
/// its `X-Repo-Commit` header if it did; `None` for any other error.
fn missing_file(e: &ApiError) -> Option<Option<&str>> {
    match e {
        ApiError::RequestError(e) => match &**e {
            ureq::Error::Status(404, response) => Some(response.header("x-repo-commit").map(str::trim)),
            _ => None,
        },
        _ => None,
    }
}

/// Record that `rel` is not in the repo at `commit`: an empty `.no_exist/<commit>/<rel>`, and
/// `refs/<revision>` pointing at `commit` (`huggingface_hub`'s `_get_metadata_or_catch_error`).
/// A commit that is not 40 hex digits is ignored, so nothing is written outside `repo_dir`
/// (`rel` and `revision` are checked relative paths). Failures are logged, not returned: the
/// record only saves a request next time.
fn record_missing(repo_dir: &Path, revision: &str, commit: &str, rel: &str) {
    if !is_commit_hash(commit) {
        tracing::debug!(commit, file = rel, "ignoring an X-Repo-Commit header that is not a commit hash");
        return;
    }
    let marker = repo_dir.join(".no_exist").join(commit).join(rel);
    let written = marker
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&marker).map(drop));
    if let Err(e) = written {
        tracing::warn!(path = %marker.display(), error = %e, "cannot record a missing file in the Hub cache");
    }
    if revision != commit {
        let ref_path = repo_dir.join("refs").join(revision);
        if std::fs::read_to_string(&ref_path).is_ok_and(|r| r.trim() == commit) {
            return;
        }
        let written =
            ref_path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&ref_path, commit));
        if let Err(e) = written {
            tracing::warn!(path = %ref_path.display(), error = %e, "cannot write a ref in the Hub cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, commit: Option<&str>) -> ApiError {
        let mut response = ureq::Response::new(code, "status", "").unwrap();
        if let Some(commit) = commit {
            let head = format!("HTTP/1.1 {code} status\r\nX-Repo-Commit: {commit}\r\n\r\n");
            response = head.parse().unwrap();
        }
        ApiError::RequestError(Box::new(ureq::Error::Status(code, response)))
    }

    #[test]
    fn only_a_404_status_is_a_missing_file() {
        assert_eq!(missing_file(&status(404, None)), Some(None));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(missing_file(&status(404, Some(sha))), Some(Some(sha)));
        for code in [401, 403, 500] {
            assert_eq!(missing_file(&status(code, Some(sha))), None, "{code}");
        }
        // A message that merely reads like one is not.
        let io = std::io::Error::other("https://huggingface.co/x: status code 404");
        assert_eq!(missing_file(&ApiError::IoError(io)), None);
        assert_eq!(missing_file(&ApiError::InvalidResume), None);
    }

    #[test]
    fn a_missing_file_is_recorded_only_under_a_commit_hash() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--name");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        record_missing(&repo, "main", sha, "sub/missing.json");
        assert!(repo.join(".no_exist").join(sha).join("sub/missing.json").is_file());
        assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), sha);

        // A header that is not a commit hash writes nothing, wherever it points.
        let other = tempfile::tempdir().unwrap();
        let repo = other.path().join("repo");
        for bad in ["../../escape", "/tmp/x", "0123", ""] {
            record_missing(&repo, "main", bad, "missing.json");
        }
        assert!(!repo.exists());
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
    }
}
