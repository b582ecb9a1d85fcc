//! `cargo xtask check-msrv`: the minimum supported Rust version (`rust-version` of the
//! workspace) holds.
//!
//! Three parts: every crate in the lock file declares a `rust-version` no newer than ours
//! (a dependency update that needs a newer compiler fails here, not on a user's machine);
//! clippy's `incompatible_msrv` lint, which reads the same `rust-version` and flags standard
//! library items stabilised after it, is never allowed in the sources (CI runs clippy with
//! warnings denied); and, where the MSRV toolchain is installed (`rustup toolchain install
//! 1.89`), `cargo +1.89 check` of the library with every architecture. Language features newer
//! than the MSRV are caught only by that last part, which says so when it has to skip.

use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

/// `1.89` or `1.89.0` -> (1, 89, 0).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The packages of `metadata` (cargo metadata's JSON) whose `rust-version` is newer than `msrv`.
fn too_new(metadata: &serde_json::Value, msrv: (u64, u64, u64)) -> Vec<String> {
    let mut out = Vec::new();
    for p in metadata["packages"].as_array().into_iter().flatten() {
        let Some(rv) = p["rust_version"].as_str() else { continue };
        if parse_version(rv).is_some_and(|v| v > msrv) {
            out.push(format!(
                "{} {} (rust-version {rv})",
                p["name"].as_str().unwrap_or("?"),
                p["version"].as_str().unwrap_or("?")
            ));
        }
    }
    out.sort();
    out
}

/// Source files that allow `incompatible_msrv`.
fn lint_allowed(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![root.join("crates"), root.join("codegen"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                if text.contains("incompatible_msrv") {
                    found.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
                }
            }
        }
    }
    Ok(found)
}

/// `cargo xtask check-msrv`.
pub fn check_msrv(root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let text = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let toml: toml::Table = toml::from_str(&text).map_err(|e| anyhow!("Cargo.toml: {e}"))?;
    let msrv_text = toml
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("Cargo.toml: no [workspace.package] rust-version"))?
        .to_owned();
    let msrv =
        parse_version(&msrv_text).ok_or_else(|| anyhow!("Cargo.toml: rust-version `{msrv_text}` is not a version"))?;

    // Not `--offline`: the lock file holds packages of other platforms (ctrlc's macOS ones),
    // which a build here never downloads and metadata needs to read.
    let output = Command::new(&cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let count = metadata["packages"].as_array().map_or(0, Vec::len);
    let newer = too_new(&metadata, msrv);
    if !newer.is_empty() {
        bail!(
            "these crates need a newer Rust than the workspace's rust-version {msrv_text}: {}; raise rust-version \
             (and the README's) or pin older versions (`cargo update -p NAME --precise VERSION`)",
            newer.join(", ")
        );
    }
    println!("{count} crates in the lock file: none declares a rust-version above {msrv_text}");

    let allowed = lint_allowed(root)?;
    if !allowed.is_empty() {
        bail!("clippy's `incompatible_msrv` lint is named (allowed?) in {}: remove it", allowed.join(", "));
    }
    println!(
        "clippy's `incompatible_msrv` lint is on everywhere (CI's clippy step checks std items against {msrv_text})"
    );

    let toolchains = Command::new("rustup").args(["toolchain", "list"]).output();
    let installed = toolchains
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with(&format!("{msrv_text}-")) || l.starts_with(&format!("{msrv_text}.0-")))
        })
        .unwrap_or(false);
    if installed {
        println!("checking the library with Rust {msrv_text}");
        let status = Command::new("cargo")
            .current_dir(root)
            .args([
                &format!("+{msrv_text}"),
                "check",
                "--locked",
                "-p",
                "autocandle",
                "-p",
                "autocandle-cli",
                "--features",
                "autocandle/all",
            ])
            .env("CARGO_TARGET_DIR", root.join("target").join("msrv"))
            .status()
            .context("running cargo check with the MSRV toolchain")?;
        if !status.success() {
            bail!("the library does not build with Rust {msrv_text}: raise rust-version or avoid the newer feature");
        }
    } else {
        println!(
            "skipped: building with Rust {msrv_text} itself (the toolchain is not installed here, and this machine \
             cannot download it); run `rustup toolchain install {msrv_text}` to include that part"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(parse_version("1.89"), Some((1, 89, 0)));
        assert!(parse_version("1.100").unwrap() > parse_version("1.89.5").unwrap());
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn newer_dependencies_are_named() {
        let metadata = serde_json::json!({"packages": [
            {"name": "old", "version": "1.0.0", "rust_version": "1.70"},
            {"name": "same", "version": "1.0.0", "rust_version": "1.89"},
            {"name": "none", "version": "1.0.0", "rust_version": null},
            {"name": "new", "version": "2.0.0", "rust_version": "1.90"},
        ]});
        assert_eq!(too_new(&metadata, (1, 89, 0)), ["new 2.0.0 (rust-version 1.90)"]);
    }
}
