//! `cargo xtask check-scaffold`: proves that adding a llama-like architecture is one crate and
//! one manifest. In a temporary copy of the workspace it runs `new-arch` (once `--like llama`,
//! once `--like qwen3`) and `gen-mappings`, checks that nothing but the new crates, their
//! manifests and the generated files changed, runs fmt and the new crates' unit tests, then
//! builds the facade with the new features (beside every other, as the workspace's build has
//! them, so dependencies are reused) and runs the parity harness on the templates' causal-LM
//! fixtures relabelled as the new model types: each must load through
//! `AutoModelForCausalLM` and match `transformers`' logits and greedy tokens.
//!
//! The build shares the workspace's target folder, and the copy keeps the files' modification
//! times, so only the new crates and what depends on the regenerated files compile.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{gen_mappings, new_arch};

/// The model types the check scaffolds (no manifest may use them), the architecture each is
/// copied from, and the fixture of that architecture it relabels.
const SCAFFOLDS: &[(&str, &str, &str)] =
    &[("toyllama", "llama", "tests/fixtures/llama-causal-lm"), ("toyqwen3", "qwen3", "tests/fixtures/qwen3-causal-lm")];

/// `cargo xtask check-scaffold [--keep]`.
pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    let keep = match args {
        [] => false,
        ["--keep"] => true,
        _ => bail!("usage: cargo xtask check-scaffold [--keep]"),
    };
    let copy = std::env::temp_dir().join(format!("autocandle-check-scaffold-{}", std::process::id()));
    if copy.exists() {
        std::fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    }
    let result = check(root, &copy);
    if result.is_ok() && !keep {
        std::fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    } else {
        eprintln!("the scaffolded copy is kept in {}", copy.display());
    }
    result
}

fn check(root: &Path, copy: &Path) -> Result<()> {
    let files = copy_workspace(root, copy)?;
    println!("copied {files} files of the workspace to {}", copy.display());
    let before = snapshot(copy)?;

    let mut plans = Vec::new();
    for (model_type, like, _) in SCAFFOLDS {
        plans.push(new_arch::scaffold(copy, model_type, like)?);
    }
    gen_mappings::write_quiet(copy)?;
    gen_mappings::check(copy).context("the scaffolded copy is not up to date after gen-mappings")?;

    // Only the new crates, their manifests and generated files may differ.
    let after = snapshot(copy)?;
    let outputs = gen_mappings::generate(copy)?;
    let generated: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
    let own = |path: &str| {
        plans.iter().any(|p| {
            path.starts_with(&format!("{}/", p.dir))
                || path == format!("{}/{}.toml", gen_mappings::MANIFESTS_DIR, p.model_type)
        })
    };
    let mut edited = Vec::new();
    for (path, hash) in &after {
        if before.get(path) != Some(hash) && !own(path) && !generated.contains(&path.as_str()) {
            edited.push(path.clone());
        }
    }
    edited.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    if !edited.is_empty() {
        bail!(
            "adding the scaffolds changed files that are neither their crates, their manifests nor generated: {}",
            edited.join(", ")
        );
    }
    let changed: Vec<&String> = after.iter().filter(|(p, h)| before.get(*p) != Some(h)).map(|(p, _)| p).collect();
    println!("scaffolded {}: {} files new or regenerated", SCAFFOLDS.len(), changed.len());
    for path in &changed {
        println!("  {path}");
    }

    let fixtures = copy.join("scaffold-fixtures");
    for ((model_type, _, fixture), plan) in SCAFFOLDS.iter().zip(&plans) {
        relabel_fixture(&copy.join(fixture), &fixtures.join(format!("{model_type}-causal-lm")), model_type, plan)?;
    }

    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let features = plans.iter().map(|p| format!("autocandle/{}", p.feature)).collect::<Vec<_>>().join(",");
    // The same packages as the workspace's own test build reaches (the harness with every
    // architecture, the CLI), so that dependencies resolve the same features and their
    // artifacts are reused: a narrower selection turns features off (tokenizers' `onig`, syn's
    // `full`) and rebuilds candle and everything on it. The CLI has no library: `--lib` skips it.
    let mut select: Vec<&str> = plans.iter().flat_map(|p| ["-p", p.crate_name.as_str()]).collect();
    select.extend(["-p", "autocandle-tests", "-p", "autocandle-cli", "--features", &features]);
    let crates: Vec<&str> = plans.iter().flat_map(|p| ["-p", p.crate_name.as_str()]).collect();
    println!("cargo fmt --check and the unit tests of the new crates");
    cargo(copy, &target, &[&["fmt"][..], &crates, &["--check"]].concat(), None)?;
    cargo(copy, &target, &[&["test"][..], &select, &["--lib"]].concat(), None)?;

    println!(
        "building autocandle with `--features {features}` and running the parity harness on the relabelled fixtures"
    );
    let args = [&["test"][..], &select, &["--test", "parity", "--"]].concat();
    let names: Vec<&str> = SCAFFOLDS.iter().map(|s| s.0).collect();
    let stdout = cargo(copy, &target, &[&args[..], &names].concat(), Some(&fixtures))?;
    print!("{stdout}");
    for name in &names {
        if !stdout.contains(&format!("PASS {name}-causal-lm")) {
            bail!("the scaffolded `{name}` did not match its relabelled fixture");
        }
    }
    if !stdout.contains(&format!("parity: {} passed, 0 failed", names.len())) {
        bail!("the parity harness ran other fixtures than the relabelled ones");
    }
    println!("check-scaffold: {} load through AutoModelForCausalLM and match transformers", names.join(", "));
    Ok(())
}

/// Runs `cargo <args>` on the workspace in `copy` with the target folder `target` (and
/// `AUTOCANDLE_FIXTURES=fixtures`); returns its standard output, or fails with the end of its
/// standard error.
fn cargo(copy: &Path, target: &Path, args: &[&str], fixtures: Option<&Path>) -> Result<String> {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&program);
    command.args(args).current_dir(copy).env("CARGO_TARGET_DIR", target);
    if let Some(fixtures) = fixtures {
        command.env("AUTOCANDLE_FIXTURES", fixtures);
    }
    let output = command.output().with_context(|| format!("running {}", program.to_string_lossy()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        bail!(
            "`cargo {}` failed in the scaffolded copy ({}):\n{stdout}{}",
            args.join(" "),
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(stdout)
}

/// Copies the files git tracks or would track (not ignored) from `root` to `to`, with their
/// modification times; returns how many.
fn copy_workspace(root: &Path, to: &Path) -> Result<usize> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .context("running `git ls-files` (the check copies the files git sees)")?;
    if !output.status.success() {
        bail!("`git ls-files` failed in {}: {}", root.display(), String::from_utf8_lossy(&output.stderr));
    }
    let mut count = 0;
    for name in output.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("a file name that is not UTF-8")?;
        let from = root.join(name);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(name);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::copy(&from, &dest).with_context(|| format!("copying {name}"))?;
        // Keep the modification time: cargo keys workspace crates by name and relative path,
        // so the copy's unchanged crates (core, decoder, ...) are then fresh against the
        // artifacts the workspace built from the same sources, and only what the scaffold
        // adds or regenerates compiles.
        let modified =
            std::fs::metadata(&from).and_then(|m| m.modified()).with_context(|| format!("reading {name}"))?;
        std::fs::File::options()
            .write(true)
            .open(&dest)
            .and_then(|f| f.set_modified(modified))
            .with_context(|| format!("setting the modification time of {}", dest.display()))?;
        count += 1;
    }
    Ok(count)
}

/// Relative path -> hash of the contents, of every file under `root`.
fn snapshot(root: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut hasher);
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.insert(rel, hasher.finish());
            }
        }
    }
    Ok(out)
}

/// Copies the template's fixture `from` to `to` as a fixture of the scaffolded model type:
/// `model_type`, `architectures` and the reference's class renamed, weights and outputs as they are.
fn relabel_fixture(from: &Path, to: &Path, model_type: &str, plan: &new_arch::Plan) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let causal = plan
        .heads
        .iter()
        .find(|h| h.0 == "causal-lm")
        .map(|h| h.2.clone())
        .context("the scaffold has no causal-lm head")?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let dest = to.join(name);
        match name {
            "config.json" | "reference.json" => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let mut json: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
                let obj = json.as_object_mut().with_context(|| format!("{} is not an object", path.display()))?;
                obj.insert("model_type".into(), model_type.into());
                if name == "config.json" {
                    obj.insert("architectures".into(), serde_json::json!([causal]));
                } else {
                    obj.insert("hf_class".into(), causal.clone().into());
                }
                std::fs::write(&dest, serde_json::to_string_pretty(&json)?)?;
            }
            _ => {
                std::fs::copy(&path, &dest).with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    Ok(())
}
