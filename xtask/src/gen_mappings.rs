//! `cargo xtask gen-mappings [--check]`: regenerates the files derived from `manifests/`,
//! or checks that the committed ones are up to date.

use std::path::Path;

use anyhow::{bail, Context, Result};
use similar::TextDiff;

use crate::{features, import, manifest, package, render, wiring};

/// The directory of the manifests, relative to the workspace root.
pub const MANIFESTS_DIR: &str = "manifests";
/// The generated Rust mappings, relative to the workspace root.
pub const MAPPINGS_RS: &str = "crates/auto/src/mappings.rs";
/// The generated model table, relative to the workspace root.
pub const MODELS_MD: &str = "docs/models.md";

/// One generated file: where it goes (relative to the workspace root) and what it holds.
#[derive(Debug)]
pub struct Output {
    pub path: String,
    pub contents: String,
}

/// Reads and validates the manifests and renders every generated file, in memory: the
/// catalog and model table, and the per-architecture wiring of [`wiring`] (the generated
/// blocks of the root and facade `Cargo.toml` and of the README, and the facade's re-export
/// module).
pub fn generate(root: &Path) -> Result<Vec<Output>> {
    let manifests = manifest::load_dir(root, MANIFESTS_DIR)?;
    check_seed_types(root, &manifests)?;
    let archs = wiring::archs(root, &manifests)?;
    let read = |path: &str| std::fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"));
    let root_toml = wiring::root_cargo_toml(&read(wiring::ROOT_CARGO_TOML)?, &archs)?;
    let auto_toml = wiring::auto_cargo_toml(&read(features::AUTO_CARGO_TOML)?, &archs)?;
    // The generated features, checked against the manifests as a user's build will see them.
    let auto_features = features::check(&manifests, &auto_toml)?;
    let readme = wiring::readme(&read(wiring::README_MD)?, &archs, &auto_features.default)?;
    let rust = render::rustfmt(root, &render::rust(&manifests))?;
    let architectures = render::rustfmt(root, &wiring::architectures_rs(&archs))?;
    let version = wiring::workspace_version(&root_toml)?;
    // From the manifests as this run writes them: a new architecture is a new dependency of
    // the facade.
    let publishing = package::publishing_md(
        root,
        &[(wiring::ROOT_CARGO_TOML, &root_toml), (features::AUTO_CARGO_TOML, &auto_toml)],
    )?;
    let mut outputs = vec![
        Output { path: MAPPINGS_RS.into(), contents: rust },
        Output { path: MODELS_MD.into(), contents: render::docs(&manifests, &auto_features) },
        Output { path: wiring::ROOT_CARGO_TOML.into(), contents: root_toml },
        Output { path: features::AUTO_CARGO_TOML.into(), contents: auto_toml },
        Output { path: wiring::ARCHITECTURES_RS.into(), contents: architectures },
        Output { path: wiring::README_MD.into(), contents: readme },
    ];
    outputs.push(Output { path: package::PUBLISHING_MD.into(), contents: publishing });
    for arch in &archs {
        outputs.push(Output { path: wiring::arch_readme_path(arch), contents: wiring::arch_readme(arch, &version) });
    }
    Ok(outputs)
}

/// Every model type of the imported seed page ([`import::SEED_TYPES_FILE`], when present) must
/// have a manifest: a deleted or renamed manifest is an error, not a silent gap.
fn check_seed_types(root: &Path, manifests: &[manifest::Manifest]) -> Result<()> {
    let text = match std::fs::read_to_string(root.join(import::SEED_TYPES_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", import::SEED_TYPES_FILE)),
    };
    let missing: Vec<String> =
        import::read_type_list(&text).into_iter().filter(|t| !manifests.iter().any(|m| &m.model_type == t)).collect();
    if !missing.is_empty() {
        bail!(
            "{} lists model types without a manifest: {}; restore manifests/<model_type>.toml (or re-run `cargo xtask import-seed`)",
            import::SEED_TYPES_FILE,
            missing.join(", ")
        );
    }
    Ok(())
}

/// Writes every generated file that changed and says which did, after a line per manifest.
pub fn write(root: &Path) -> Result<()> {
    let manifests = manifest::load_dir(root, MANIFESTS_DIR)?;
    for m in &manifests {
        println!("  {}", manifest::summary(m));
    }
    write_quiet(root)
}

/// Writes every generated file that changed and says which did.
pub fn write_quiet(root: &Path) -> Result<()> {
    for out in generate(root)? {
        let path = root.join(&out.path);
        let old = std::fs::read_to_string(&path).ok();
        if old.as_deref() == Some(out.contents.as_str()) {
            println!("unchanged {}", out.path);
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, &out.contents).with_context(|| format!("writing {}", out.path))?;
        println!("{} {}", if old.is_some() { "updated" } else { "created" }, out.path);
    }
    Ok(())
}

/// Regenerates in memory and fails with a unified diff for every committed file
/// that differs from what the manifests generate (or is missing).
pub fn check(root: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for out in generate(root)? {
        let old = match std::fs::read_to_string(root.join(&out.path)) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", out.path)),
        };
        if old.as_deref() == Some(out.contents.as_str()) {
            continue;
        }
        let diff = TextDiff::from_lines(old.as_deref().unwrap_or(""), &out.contents)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{} (committed)", out.path), &format!("b/{} (generated)", out.path))
            .to_string();
        let what = if old.is_some() { "is out of date" } else { "is missing" };
        eprintln!("{} {what}:\n{diff}", out.path);
        stale.push(out.path);
    }
    if !stale.is_empty() {
        bail!("{} not up to date with manifests/: run `cargo xtask gen-mappings` to update", stale.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed generated files must match the manifests (the same check as
    /// `cargo xtask gen-mappings --check`), so `cargo test --workspace` catches drift.
    #[test]
    fn generated_files_are_up_to_date() -> Result<()> {
        check(&crate::workspace_root())
    }

    #[test]
    fn seed_types_without_manifest_are_rejected() -> Result<()> {
        let root = std::env::temp_dir().join(format!("xtask-seed-types-{}", std::process::id()));
        std::fs::create_dir_all(root.join("manifests"))?;
        let bert = "model_type = \"bert\"\nname = \"BERT\"\nconfig_class = \"BertConfig\"\n\n[tasks]\n";
        let manifests = manifest::parse_all(&[("manifests/bert.toml".to_owned(), bert.to_owned())])?;
        // No list: nothing to check.
        check_seed_types(&root, &manifests)?;
        std::fs::write(root.join(import::SEED_TYPES_FILE), "# header\nbert\nroberta\n")?;
        let result = check_seed_types(&root, &manifests);
        std::fs::remove_dir_all(&root)?;
        let msg = match result {
            Ok(()) => bail!("a seed type without manifest was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("model types without a manifest: roberta"), "{msg}");
        Ok(())
    }

    #[test]
    fn generation_is_deterministic() -> Result<()> {
        let root = crate::workspace_root();
        let a = generate(&root)?;
        let b = generate(&root)?;
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.path, b.path);
            assert_eq!(a.contents, b.contents, "{} differs between two runs", a.path);
        }
        Ok(())
    }
}
