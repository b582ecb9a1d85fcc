//! `cargo xtask check-scaffold`: proves that adding a llama-like architecture is one crate and
//! one manifest. In a temporary copy of the workspace it runs `new-arch` and `gen-mappings`,
//! checks that nothing but the new crate, its manifest and the generated files changed, then
//! builds the facade with only the new feature and runs the parity harness on Llama's
//! causal-LM fixture relabelled as the new model type: it must load through
//! `AutoModelForCausalLM` and match `transformers`' logits and greedy tokens.
//!
//! The build shares the workspace's target folder, so only the copied workspace crates compile.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{gen_mappings, new_arch};

/// The model type the check scaffolds (no manifest may use it).
const MODEL_TYPE: &str = "toyllama";
/// The fixture it relabels.
const FIXTURE: &str = "tests/fixtures/llama-causal-lm";

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

    let plan = new_arch::scaffold(copy, MODEL_TYPE, "llama")?;
    gen_mappings::write_quiet(copy)?;
    gen_mappings::check(copy).context("the scaffolded copy is not up to date after gen-mappings")?;

    // Only the new crate, its manifest and generated files may differ.
    let after = snapshot(copy)?;
    let generated: Vec<&str> = gen_mappings::generate(copy)?.iter().map(|o| o.path).collect();
    let manifest = format!("{}/{MODEL_TYPE}.toml", gen_mappings::MANIFESTS_DIR);
    let mut edited = Vec::new();
    for (path, hash) in &after {
        let allowed =
            path.starts_with(&format!("{}/", plan.dir)) || *path == manifest || generated.contains(&path.as_str());
        if before.get(path) != Some(hash) && !allowed {
            edited.push(path.clone());
        }
    }
    edited.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    if !edited.is_empty() {
        bail!(
            "adding `{MODEL_TYPE}` changed files that are neither its crate, its manifest nor generated: {}",
            edited.join(", ")
        );
    }
    let changed: Vec<&String> = after.iter().filter(|(p, h)| before.get(*p) != Some(h)).map(|(p, _)| p).collect();
    println!("scaffolded `{MODEL_TYPE}`: {} files new or regenerated", changed.len());
    for path in &changed {
        println!("  {path}");
    }

    let fixtures = copy.join("scaffold-fixtures");
    relabel_fixture(&copy.join(FIXTURE), &fixtures.join(format!("{MODEL_TYPE}-causal-lm")), &plan)?;

    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let krate = plan.crate_name.as_str();
    println!("cargo fmt --check, clippy -D warnings and the unit tests of {krate}");
    cargo(copy, &target, &["fmt", "-p", krate, "--check"], None)?;
    cargo(copy, &target, &["clippy", "-p", krate, "--all-targets", "--", "-D", "warnings"], None)?;
    cargo(copy, &target, &["test", "-p", krate], None)?;

    let feature = format!("autocandle/{}", plan.feature);
    println!(
        "building autocandle with only `--features {feature}` and running the parity harness on the relabelled fixture"
    );
    let args = ["test", "-p", "autocandle-tests", "--no-default-features", "--features", &feature, "--test", "parity"];
    let stdout = cargo(copy, &target, &[&args[..], &["--", MODEL_TYPE]].concat(), Some(&fixtures))?;
    print!("{stdout}");
    let pass = format!("PASS {MODEL_TYPE}-causal-lm");
    if !stdout.contains(&pass) || !stdout.contains("parity: 1 passed, 0 failed") {
        bail!("the scaffolded `{MODEL_TYPE}` did not match the relabelled fixture");
    }
    println!("check-scaffold: `{MODEL_TYPE}` loads through AutoModelForCausalLM and matches transformers");
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

/// Copies the files git tracks or would track (not ignored) from `root` to `to`; returns how many.
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

/// Copies the Llama fixture `from` to `to` as a fixture of the scaffolded model type:
/// `model_type`, `architectures` and the reference's class renamed, weights and outputs as they are.
fn relabel_fixture(from: &Path, to: &Path, plan: &new_arch::Plan) -> Result<()> {
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
                obj.insert("model_type".into(), MODEL_TYPE.into());
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
