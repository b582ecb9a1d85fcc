//! What the end-to-end tests of the `autocandle` binary share: the repository root and the
//! binary run offline from it. Each test file uses what it needs.

#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;

/// The repository root (fixtures are named from it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary, run from the repository root, offline, with the Hub cache `cache` (an empty
/// temporary folder) and no terminal (so no spinner).
#[allow(clippy::unwrap_used)]
pub fn autocandle(cache: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("autocandle").unwrap();
    cmd.current_dir(repo_root())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", cache.path())
        .env_remove("HF_HOME")
        .env_remove("HF_TOKEN")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE");
    cmd
}
