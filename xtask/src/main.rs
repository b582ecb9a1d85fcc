//! `cargo xtask`: repository automation for autocandle (run `cargo xtask help`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};

mod bench;
mod bench_gguf;
mod features;
mod gen_mappings;
mod import;
mod manifest;
mod msrv;
mod new_arch;
mod package;
mod pysource;
mod render;
mod scaffold_check;
mod seed;
mod tasks;
mod wiring;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  gen-mappings          regenerate what the manifests imply: crates/auto/src/mappings.rs,
                        crates/auto/src/architectures.rs, docs/models.md, the architecture
                        crates' README.md, docs/publishing.md, and the generated blocks of
                        Cargo.toml, crates/auto/Cargo.toml and README.md
  gen-mappings --check  fail with a diff if any of those is not up to date
  new-arch <model_type> [--like <decoder>]
                        scaffold crates/<model_type> and its manifest from a llama-like
                        decoder crate (default llama), then regenerate; the new model type
                        builds with its feature
  check-scaffold [--keep]
                        in a temporary copy of the workspace: new-arch (like llama, like qwen3),
                        gen-mappings, fmt and tests of the new crates, the facade with
                        the new features matching the templates' relabelled fixtures
  check-package         package every publishable crate (`cargo package`), then build and run a
                        crate that depends on the packages alone with `bert` and no default
                        features; docs/publishing.md (from gen-mappings) lists the order
  check-msrv            the workspace's rust-version holds: no crate in the lock file needs a
                        newer Rust, clippy's incompatible_msrv lint is never allowed, and
                        `cargo +<msrv> check` where that toolchain is installed
  import-seed <page> [<newer page>] [--dry-run]
                        create or update manifests/<model_type>.toml for every model type of
                        transformers' Auto classes reference page (v4.x, any translation);
                        <newer page> (class names only) is checked against the Task table
  import-transformers <transformers/models/auto> <model_type>... [--dry-run]
                        the same for the named model types, read from transformers' source
  bench [options]       benchmark autocandle against candle-transformers and PyTorch and write
                        the table to docs/performance.md (`cargo xtask bench --help`)
  help                  print this message

The importers add what a manifest lacks and never change or remove a line (see manifests/README.md).";

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
        ["new-arch", rest @ ..] => new_arch::run(&root, rest),
        ["check-scaffold", rest @ ..] => scaffold_check::run(&root, rest),
        ["check-package"] => package::check_package(&root),
        ["check-msrv"] => msrv::check_msrv(&root),
        ["import-seed", rest @ ..] => import::import_seed(&root, rest),
        ["import-transformers", rest @ ..] => import::import_transformers(&root, rest),
        ["bench", rest @ ..] => bench::bench(&root, rest),
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
