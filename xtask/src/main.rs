//! `cargo xtask`: repository automation for autocandle (run `cargo xtask help`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};

mod features;
mod gen_mappings;
mod manifest;
mod render;
mod tasks;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  gen-mappings          regenerate crates/auto/src/mappings.rs and docs/models.md from manifests/
  gen-mappings --check  fail with a diff if those files are not up to date
  help                  print this message";

fn main() -> ExitCode {
    // Print the error chain ourselves: `main -> Result` would add a backtrace
    // whenever RUST_BACKTRACE is set, burying the message.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root = workspace_root();
    match args.as_slice() {
        ["gen-mappings"] => gen_mappings::write(&root),
        ["gen-mappings", "--check"] => {
            gen_mappings::check(&root)?;
            println!("generated files are up to date with manifests/");
            Ok(())
        }
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        [] => bail!("no command given\n\n{USAGE}"),
        _ => bail!("unknown arguments: {}\n\n{USAGE}", args.join(" ")),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
