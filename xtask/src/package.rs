//! Publishing: the order in which the workspace's crates go to crates.io
//! (`docs/publishing.md`, written by `gen-mappings`), and `cargo xtask check-package`, which
//! packages every publishable crate and builds and runs a user's crate against the packages
//! alone, with one architecture and none of the optional parts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

/// The generated publishing guide, relative to the workspace root.
pub const PUBLISHING_MD: &str = "docs/publishing.md";

/// crates.io refuses `.crate` files above 10 MB.
const MAX_CRATE_BYTES: u64 = 10 * 1024 * 1024;

/// One publishable package of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The package name (`autocandle-core`).
    pub name: String,
    /// Its folder, relative to the workspace root (`crates/core`).
    pub dir: String,
    /// The workspace packages it needs on the registry first: normal and build dependencies,
    /// and dev-dependencies that carry a version (version-less ones are dropped when packaging).
    pub needs: BTreeSet<String>,
}

/// The workspace's member folders that hold a package: `crates/*` and `codegen`.
fn member_dirs(root: &Path) -> Result<Vec<String>> {
    let mut dirs = vec!["codegen".to_owned()];
    let crates = root.join("crates");
    for entry in std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            dirs.push(format!("crates/{}", entry.file_name().to_string_lossy()));
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Manifests given as text instead of read from disk: (path relative to the root, contents).
/// `gen-mappings` passes the root and facade `Cargo.toml` it is about to write.
pub type Overrides<'a> = &'a [(&'a str, &'a str)];

/// The publishable packages (no `publish = false`), with what each needs published first.
pub fn packages(root: &Path) -> Result<Vec<Package>> {
    packages_with(root, &[])
}

fn packages_with(root: &Path, overrides: Overrides<'_>) -> Result<Vec<Package>> {
    let read = |rel: &str| -> Result<toml::Table> {
        match overrides.iter().find(|(path, _)| *path == rel) {
            Some((_, text)) => toml::from_str(text).map_err(|e| anyhow!("{rel}: {e}")),
            None => read_toml(&root.join(rel)),
        }
    };
    let workspace = read("Cargo.toml")?;
    let versioned: BTreeSet<String> = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.iter().filter(|(_, spec)| spec.get("version").is_some()).map(|(name, _)| name.clone()).collect()
        })
        .unwrap_or_default();
    let mut all = Vec::new();
    for dir in member_dirs(root)? {
        let toml = read(&format!("{dir}/Cargo.toml"))?;
        let package = toml.get("package").ok_or_else(|| anyhow!("{dir}/Cargo.toml: no [package]"))?;
        let name = package
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| anyhow!("{dir}/Cargo.toml: no package name"))?
            .to_owned();
        if package.get("publish").and_then(|p| p.as_bool()) == Some(false) {
            continue;
        }
        let mut needs = BTreeSet::new();
        for (section, dev) in [("dependencies", false), ("build-dependencies", false), ("dev-dependencies", true)] {
            let Some(deps) = toml.get(section).and_then(|d| d.as_table()) else { continue };
            for (dep, spec) in deps {
                let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
                let has_version =
                    spec.is_str() || spec.get("version").is_some() || (inherited && versioned.contains(dep));
                if dev && !has_version {
                    continue;
                }
                needs.insert(dep.clone());
            }
        }
        all.push(Package { name, dir, needs });
    }
    let names: BTreeSet<String> = all.iter().map(|p| p.name.clone()).collect();
    for p in &mut all {
        p.needs.retain(|n| names.contains(n));
    }
    Ok(all)
}

/// `packages` in an order crates.io accepts: each after everything it needs, ties by name.
pub fn publish_order(packages: &[Package]) -> Result<Vec<&Package>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    let mut left: BTreeMap<&str, &Package> = packages.iter().map(|p| (p.name.as_str(), p)).collect();
    while !left.is_empty() {
        let ready: Vec<&str> = left
            .values()
            .filter(|p| p.needs.iter().all(|n| done.contains(n.as_str())))
            .map(|p| p.name.as_str())
            .collect();
        if ready.is_empty() {
            let stuck = left.keys().copied().collect::<Vec<_>>().join(", ");
            bail!(
                "these packages need each other, so none can be published first: {stuck}; a dev-dependency on a \
                 crate that depends on this one must have no `version` (a path only)"
            );
        }
        for name in ready {
            if let Some(p) = left.remove(name) {
                order.push(p);
            }
            done.insert(name);
        }
    }
    Ok(order)
}

/// `docs/publishing.md`: the order and the commands, from the workspace's manifests as
/// `overrides` will leave them.
pub fn publishing_md(root: &Path, overrides: Overrides<'_>) -> Result<String> {
    let packages = packages_with(root, overrides)?;
    let order = publish_order(&packages)?;
    let mut s = String::from(
        "<!-- Generated by `cargo xtask gen-mappings` from the workspace's Cargo.toml files, do not edit by hand. -->\n\n\
         # Publishing to crates.io\n\n\
         Every crate of the workspace except `xtask`, `autocandle-tests`, `autocandle-bench` and the examples\n\
         is published, with the workspace's version. CI runs `cargo xtask check-package`: it packages each\n\
         crate (`cargo package`), then builds and runs a new crate that depends only on the packages, with\n\
         `autocandle = { version, default-features = false, features = [\"bert\"] }`, then checks it with\n\
         autocandle's `all` (every architecture and part), so every library compiles from its package.\n\n\
         To release: set `[workspace.package] version` and the `version` of the internal crates in\n\
         `[workspace.dependencies]` of the root `Cargo.toml`, run `cargo xtask gen-mappings`, then\n\
         `cargo publish --workspace` (cargo orders the crates itself), or publish one by one in this\n\
         order, each after everything it needs:\n\n\
         | # | crate | folder | needs |\n| --- | --- | --- | --- |\n",
    );
    for (i, p) in order.iter().enumerate() {
        let needs = p.needs.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let needs = if needs.is_empty() { "nothing".to_owned() } else { needs };
        let _ = writeln!(s, "| {} | `{}` | `{}` | {needs} |", i + 1, p.name, p.dir);
    }
    Ok(s)
}

/// `cargo xtask check-package`.
pub fn check_package(root: &Path) -> Result<()> {
    let packages = packages(root)?;
    let order = publish_order(&packages)?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let package_dir = target.join("package");

    println!("packaging {} crates", order.len());
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).args(["package", "--no-verify", "--allow-dirty", "--quiet"]);
    for p in &order {
        cmd.args(["-p", &p.name]);
    }
    run(&mut cmd, "cargo package")?;

    let version = workspace_version(root)?;
    let unpacked = target.join("package-check");
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked).with_context(|| format!("removing {}", unpacked.display()))?;
    }
    std::fs::create_dir_all(unpacked.join("crates"))?;
    let mut patch = String::new();
    for p in &order {
        let file = package_dir.join(format!("{}-{version}.crate", p.name));
        let bytes = std::fs::metadata(&file).with_context(|| format!("{} was not packaged", file.display()))?.len();
        if bytes > MAX_CRATE_BYTES {
            bail!("{} is {bytes} bytes, over crates.io's 10 MB: exclude large files in {}/Cargo.toml", p.name, p.dir);
        }
        println!("  {:<28} {:>8.1} KiB", p.name, bytes as f64 / 1024.0);
        run(Command::new("tar").arg("xzf").arg(&file).arg("-C").arg(unpacked.join("crates")), "tar")?;
        let _ = writeln!(patch, "{} = {{ path = \"../crates/{}-{version}\" }}", p.name, p.name);
    }

    // A user's crate: the packages only (through [patch.crates-io], as if from the registry),
    // one architecture, no default features. The workspace's profile, so that the external
    // crates built by the workspace's own build are reused.
    let user = unpacked.join("user");
    std::fs::create_dir_all(user.join("src"))?;
    let profile = profile_section(root)?;
    std::fs::write(
        user.join("Cargo.toml"),
        format!(
            "[package]\nname = \"autocandle-user-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nautocandle = {{ version = \"={version}\", default-features = false, features = [\"bert\"] }}\n\n\
             [features]\nall = [\"autocandle/all\"]\n\n\
             [patch.crates-io]\n{patch}\n{profile}\n[workspace]\n"
        ),
    )?;
    std::fs::write(user.join("src/main.rs"), USER_MAIN)?;
    // The workspace's lock pins the same versions of every external crate.
    std::fs::copy(root.join("Cargo.lock"), user.join("Cargo.lock")).context("copying Cargo.lock")?;

    println!("building a crate that depends on the packages: autocandle with `bert` only");
    let fixture = root.join("tests/fixtures/bert-masked-lm");
    let output = Command::new(cargo())
        .current_dir(&user)
        .env("CARGO_TARGET_DIR", &target)
        .args(["run", "--quiet", "--offline", "--"])
        .arg(&fixture)
        .output()
        .context("running cargo run on the user crate")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("the user crate failed:\n{stderr}{stdout}");
    }
    print!("{stdout}");
    // `[batch, tokens, vocabulary]` of the tiny BERT: one text of nine tokens, 122 entries.
    if !stdout.contains("logits [1, 9, 122]") {
        bail!("the user crate ran, but printed unexpected logits:\n{stdout}");
    }

    // Nothing beyond the one architecture and the required dependencies was built.
    let tree = Command::new(cargo())
        .current_dir(&user)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .context("running cargo tree on the user crate")?;
    let tree = String::from_utf8_lossy(&tree.stdout);
    let unwanted: Vec<&str> =
        ["hf-hub ", "ureq ", "image ", "jpeg-decoder ", "minijinja ", "onig ", "autocandle-llama "]
            .into_iter()
            .filter(|name| tree.lines().any(|l| l.starts_with(name)))
            .collect();
    if !unwanted.is_empty() {
        bail!("the lean build pulls in {}: a feature gate leaks", unwanted.join(", "));
    }
    println!("the packaged crates build and run with `bert` alone (no hub, image, chat or onig)");

    // Every other packaged library compiles from its package too (`all`: every architecture
    // and part).
    println!("checking the user crate with autocandle's `all`");
    run(
        Command::new(cargo()).current_dir(&user).env("CARGO_TARGET_DIR", &target).args([
            "check",
            "--quiet",
            "--offline",
            "--features",
            "all",
        ]),
        "cargo check --features all on the user crate",
    )?;
    println!("every packaged library compiles from its package");
    Ok(())
}

/// The user crate's program: fill-mask logits on a fixture folder through the facade.
const USER_MAIN: &str = r#"//! A user's crate: autocandle from its packages, one architecture, no optional parts.
use autocandle::{AutoModelForMaskedLM, AutoTokenizer, Device};

fn main() -> autocandle::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let tokenizer = AutoTokenizer::from_pretrained(&dir)?;
    let model = AutoModelForMaskedLM::from_pretrained(&dir)?;
    let batch = tokenizer.encode("paris is the [MASK] of france.")?;
    let out = model.forward(&batch.to_inputs(&Device::Cpu)?)?;
    println!("logits {:?}", out.logits.dims());
    Ok(())
}
"#;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn workspace_version(root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    crate::wiring::workspace_version(&text)
}

/// The root manifest's `[profile.*]` tables, as TOML text.
fn profile_section(root: &Path) -> Result<String> {
    let toml = read_toml(&root.join("Cargo.toml"))?;
    let Some(profile) = toml.get("profile") else { return Ok(String::new()) };
    let mut wrapper = toml::Table::new();
    wrapper.insert("profile".to_owned(), profile.clone());
    toml::to_string(&wrapper).map_err(|e| anyhow!("writing the profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, needs: &[&str]) -> Package {
        Package {
            name: name.into(),
            dir: format!("crates/{name}"),
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn order_puts_dependencies_first() -> Result<()> {
        let packages = [
            package("auto", &["core", "bert"]),
            package("bert", &["core", "testing"]),
            package("core", &[]),
            package("testing", &["core"]),
        ];
        let order: Vec<&str> = publish_order(&packages)?.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["core", "testing", "bert", "auto"]);
        Ok(())
    }

    #[test]
    fn a_cycle_is_an_error_that_names_it() {
        let packages = [package("codegen", &["core"]), package("core", &["codegen"]), package("tasks", &[])];
        let err = publish_order(&packages).unwrap_err().to_string();
        assert!(err.contains("codegen, core"), "{err}");
    }

    #[test]
    fn the_workspace_has_an_order() -> Result<()> {
        let root = crate::workspace_root();
        let packages = packages(&root)?;
        let order: Vec<&str> = publish_order(&packages)?.iter().map(|p| p.name.as_str()).collect();
        for private in ["xtask", "autocandle-tests", "autocandle-bench"] {
            assert!(!order.contains(&private), "{private} must not be published");
        }
        let at = |name: &str| order.iter().position(|n| *n == name).unwrap_or(usize::MAX);
        assert!(at("autocandle-tasks") < at("autocandle-codegen"));
        assert!(at("autocandle-codegen") < at("autocandle-core"));
        assert!(at("autocandle-testing") < at("autocandle-llama"));
        assert_eq!(order.last(), Some(&"autocandle-cli"));
        Ok(())
    }
}
