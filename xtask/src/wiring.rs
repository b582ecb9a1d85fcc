//! The per-architecture wiring that the manifests imply outside the architecture's own crate:
//! the root `[workspace.dependencies]` lines, the facade's optional dependencies, its
//! architecture and profile features, its re-export module, and the README's tables.
//!
//! Hand-written files hold these between marker lines (`# BEGIN generated: <block> ...` and
//! `# END generated: <block>`, or the same inside `<!-- -->` in Markdown); everything outside
//! the markers is left as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::features::{Part, AUTO_CARGO_TOML, PARTS};
use crate::manifest::{Manifest, PROFILES};
use crate::render::HEADER;

/// The workspace manifest, relative to the workspace root.
pub const ROOT_CARGO_TOML: &str = "Cargo.toml";
/// The facade's generated re-export module, relative to the workspace root.
pub const ARCHITECTURES_RS: &str = "crates/auto/src/architectures.rs";
/// The README, relative to the workspace root.
pub const README_MD: &str = "README.md";

/// One architecture crate, as the manifests describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arch<'m> {
    /// The facade's feature (`roberta`).
    pub feature: &'m str,
    /// The package (`autocandle-roberta`).
    pub crate_name: &'m str,
    /// Its folder, relative to the workspace root (`crates/roberta`).
    pub dir: String,
    /// Its profile (`text`).
    pub profile: &'m str,
    /// The manifests it implements, sorted by model type.
    pub manifests: Vec<&'m Manifest>,
}

impl Arch<'_> {
    /// The crate's name as a Rust path segment (`autocandle_roberta`).
    pub fn ident(&self) -> String {
        self.crate_name.replace('-', "_")
    }
}

/// The architecture crates, sorted by feature: one per feature of the manifests, with the
/// folder found by reading the `[package] name` of every `crates/*/Cargo.toml`.
pub fn archs<'m>(root: &Path, manifests: &'m [Manifest]) -> Result<Vec<Arch<'m>>> {
    let dirs = crate_dirs(root)?;
    let mut by_feature: BTreeMap<&str, Arch<'m>> = BTreeMap::new();
    let mut errors = Vec::new();
    for m in manifests {
        let (Some(krate), Some(feature), Some(profile)) = (&m.crate_name, &m.feature, &m.profile) else {
            continue;
        };
        if let Some(arch) = by_feature.get_mut(feature.as_str()) {
            arch.manifests.push(m);
            continue;
        }
        let Some(dir) = dirs.get(krate.as_str()) else {
            errors.push(format!(
                "{}: crate `{krate}` is not a package under crates/: create it (`cargo xtask new-arch {} --like llama` \
                 scaffolds one) or fix `crate`",
                m.file, m.model_type
            ));
            continue;
        };
        by_feature.insert(feature, Arch { feature, crate_name: krate, dir: dir.clone(), profile, manifests: vec![m] });
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(by_feature.into_values().collect())
}

/// Package name -> folder (relative to `root`) of every `crates/*/Cargo.toml`.
pub fn crate_dirs(root: &Path) -> Result<BTreeMap<String, String>> {
    let crates = root.join("crates");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))? {
        let entry = entry.with_context(|| format!("reading {}", crates.display()))?;
        let manifest = entry.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let dir = format!("crates/{}", entry.file_name().to_string_lossy());
        let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {dir}/Cargo.toml"))?;
        let doc: toml::Table = toml::from_str(&text).map_err(|e| anyhow!("{dir}/Cargo.toml: {e}"))?;
        if let Some(name) = doc.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) {
            out.insert(name.to_owned(), dir);
        }
    }
    Ok(out)
}

/// The `[workspace.package] version` of the root manifest.
pub fn workspace_version(root_toml: &str) -> Result<String> {
    let doc: toml::Table = toml::from_str(root_toml).map_err(|e| anyhow!("{ROOT_CARGO_TOML}: {e}"))?;
    doc.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{ROOT_CARGO_TOML}: no `[workspace.package] version`"))
}

/// The root `Cargo.toml` with its architecture block regenerated.
pub fn root_cargo_toml(text: &str, archs: &[Arch<'_>]) -> Result<String> {
    let version = workspace_version(text)?;
    let mut body = String::new();
    for arch in sorted_by_crate(archs) {
        let _ = writeln!(body, "{} = {{ path = \"{}\", version = \"{version}\" }}", arch.crate_name, arch.dir);
    }
    splice(ROOT_CARGO_TOML, text, Comment::Hash, "architecture crates", &body)
}

/// The facade's `Cargo.toml` with its dependency and feature blocks regenerated.
pub fn auto_cargo_toml(text: &str, archs: &[Arch<'_>]) -> Result<String> {
    let mut deps = String::new();
    for arch in sorted_by_crate(archs) {
        let _ = writeln!(deps, "{} = {{ workspace = true, optional = true }}", arch.crate_name);
    }
    let text = splice(AUTO_CARGO_TOML, text, Comment::Hash, "architecture dependencies", &deps)?;

    let mut features = String::from("# One feature per architecture.\n");
    for arch in archs {
        let _ = writeln!(features, "{} = [\"dep:{}\"]", arch.feature, arch.crate_name);
    }
    features.push_str("# Profiles: the architectures of one kind of input with the parts they use, and everything.\n");
    let list = |archs: Vec<&Arch<'_>>, parts: Vec<&Part>| {
        let names = archs.iter().map(|a| a.feature).chain(parts.iter().map(|p| p.name));
        names.map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    };
    for profile in PROFILES {
        let _ = writeln!(
            features,
            "{profile} = [{}]",
            list(
                archs.iter().filter(|a| a.profile == *profile).collect(),
                PARTS.iter().filter(|p| p.profiles.contains(profile)).collect()
            )
        );
    }
    let _ = writeln!(features, "all = [{}]", list(archs.iter().collect(), PARTS.iter().collect()));
    splice(AUTO_CARGO_TOML, &text, Comment::Hash, "architecture features", &features)
}

/// `crates/auto/src/architectures.rs` (before rustfmt): a `#[cfg(feature)] pub use` line per
/// architecture crate, so that the linker keeps the registrations of each enabled one.
pub fn architectures_rs(archs: &[Arch<'_>]) -> String {
    let mut s = format!("//! {HEADER}\n//!\n");
    s.push_str(
        "//! The architecture crates compiled in, one feature each: every enabled crate is \
         re-exported,\n//! which also makes the linker keep its `#[derive(AutoRegister)]` \
         registrations.\n\n",
    );
    for arch in archs {
        let module = arch.feature.replace('-', "_");
        let _ = writeln!(s, "#[cfg(feature = \"{}\")]\npub use {} as {module};", arch.feature, arch.ident());
    }
    s
}

/// The README with its feature table regenerated.
pub fn readme(text: &str, archs: &[Arch<'_>], default: &[String]) -> Result<String> {
    let mut body =
        String::from("| feature | profile | crate | model types | heads |\n| --- | --- | --- | --- | --- |\n");
    for arch in archs {
        let types = arch.manifests.iter().map(|m| format!("`{}`", m.model_type)).collect::<Vec<_>>().join(", ");
        let mut heads: Vec<&str> = Vec::new();
        for m in &arch.manifests {
            for t in m.implemented() {
                if !heads.contains(&t.task.name) {
                    heads.push(t.task.name);
                }
            }
        }
        let _ = writeln!(
            body,
            "| `{}` | `{}` | `{}` | {types} | {} |",
            arch.feature,
            arch.profile,
            arch.crate_name,
            heads.join(", ")
        );
    }
    body.push('\n');
    let profiles = PROFILES
        .iter()
        .map(|p| {
            let n = archs.iter().filter(|a| a.profile == *p).count();
            format!("`{p}` ({n})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let with_parts: Vec<String> = PROFILES
        .iter()
        .filter_map(|p| {
            let parts: Vec<String> =
                PARTS.iter().filter(|part| part.profiles.contains(p)).map(|part| format!("`{}`", part.name)).collect();
            (!parts.is_empty()).then(|| format!("`{p}` also enables {}", parts.join(", ")))
        })
        .collect();
    let _ = write!(
        body,
        "Profiles enable every architecture of one kind: {profiles} ({}); `all` enables every \
         architecture and every part below. `cuda` and `metal` turn on candle's GPU backends.",
        with_parts.join("; ")
    );
    if !default.is_empty() {
        let default = default.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            body,
            " The `default` feature enables {default}; with `default-features = false`, enable what you need."
        );
    }
    body.push_str("\n\nThe parts of the library that a build may leave out:\n\n| feature | in `default` | what it brings |\n| --- | --- | --- |\n");
    for part in PARTS {
        let in_default = if default.iter().any(|f| f == part.name) { "yes" } else { "no" };
        let _ = writeln!(body, "| `{}` | {in_default} | {} |", part.name, part.brings);
    }
    body.push_str(
        "\nWithout `onig`, `tokenizers` splits text with `fancy-regex`. On the pre-tokenizer regexes of GPT-2, \
         Llama 3, Qwen 2/3, GPT-4o-style, Mistral Tekken, DeepSeek-V3, BLOOM, Falcon, StarCoder2 and T5 it \
         splits exactly as Python does; it differs where a regex uses `\\w` or `\\b` on numbers such as `½` \
         (the `Whitespace` pre-tokenizer), and it cannot compile `\\R`, `\\X` or `\\p{^...}` \
         (`tests/regex_backends.rs` checks both engines against Python's splits).\n",
    );
    splice(README_MD, text, Comment::Html, "features", &body)
}

/// The `README.md` of an architecture crate (its crates.io page), relative to the workspace root.
pub fn arch_readme_path(arch: &Arch<'_>) -> String {
    format!("{}/README.md", arch.dir)
}

/// The `README.md` of an architecture crate: what it implements and how a user enables it
/// (through the facade's feature; nobody depends on an architecture crate directly).
pub fn arch_readme(arch: &Arch<'_>, version: &str) -> String {
    let names = arch.manifests.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
    let types = arch.manifests.iter().map(|m| format!("`{}`", m.model_type)).collect::<Vec<_>>().join(", ");
    let major_minor = version.rsplit_once('.').map_or(version, |(head, _)| head);
    let mut s = format!("<!-- {HEADER} -->\n\n# {}\n\n", arch.crate_name);
    let _ = write!(
        s,
        "{names} for [autocandle](https://crates.io/crates/autocandle), `transformers`' Auto classes for \
         Rust on [candle](https://github.com/huggingface/candle): the network and its task heads, \
         written after `transformers`' own modeling code, with weight names as in its state dicts.\n\n\
         Users do not depend on this crate directly: they enable the `{feature}` feature of \
         `autocandle` (or a profile that includes it: `{profile}`, `all`), and the Auto classes pick \
         it for every checkpoint whose `config.json` has `\"model_type\"` {types}.\n\n\
         ```toml\n[dependencies]\nautocandle = {{ version = \"{major_minor}\", features = [\"{feature}\"] }}\n```\n\n",
        feature = arch.feature,
        profile = arch.profile,
    );
    s.push_str("| model type | task | `transformers` class | Auto class |\n| --- | --- | --- | --- |\n");
    for m in &arch.manifests {
        for t in m.implemented() {
            let _ = writeln!(
                s,
                "| `{}` | `{}` | `{}` | `{}` |",
                m.model_type, t.task.name, t.class_name, t.task.auto_class
            );
        }
    }
    s.push_str("\nLicensed under Apache-2.0 (see `LICENSE`).\n");
    s
}

fn sorted_by_crate<'a, 'm>(archs: &'a [Arch<'m>]) -> Vec<&'a Arch<'m>> {
    let mut sorted: Vec<&Arch<'m>> = archs.iter().collect();
    sorted.sort_by_key(|a| a.crate_name);
    sorted
}

/// The comment syntax of a file with generated blocks.
#[derive(Debug, Clone, Copy)]
pub enum Comment {
    /// `# ...` (TOML).
    Hash,
    /// `<!-- ... -->` (Markdown).
    Html,
}

impl Comment {
    fn begin(self, block: &str) -> (String, String) {
        let prefix = format!("BEGIN generated: {block} ");
        match self {
            Comment::Hash => {
                (format!("# {prefix}"), format!("# {prefix}(`cargo xtask gen-mappings`, do not edit by hand)"))
            }
            Comment::Html => (
                format!("<!-- {prefix}"),
                format!("<!-- {prefix}(`cargo xtask gen-mappings`, do not edit by hand) -->"),
            ),
        }
    }

    fn end(self, block: &str) -> String {
        match self {
            Comment::Hash => format!("# END generated: {block}"),
            Comment::Html => format!("<!-- END generated: {block} -->"),
        }
    }
}

/// `text` with the lines between the markers of `block` replaced by `body` (which ends with a
/// newline, or is empty). Both markers must stand once each, in order, on lines of their own.
pub fn splice(file: &str, text: &str, comment: Comment, block: &str, body: &str) -> Result<String> {
    let (begin_prefix, begin_line) = comment.begin(block);
    let end_line = comment.end(block);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let find = |pred: &dyn Fn(&str) -> bool| -> Vec<usize> {
        lines.iter().enumerate().filter(|(_, l)| pred(l.trim())).map(|(i, _)| i).collect()
    };
    let begins = find(&|l| l.starts_with(&begin_prefix));
    let ends = find(&|l| l == end_line);
    let hint = format!("add the two lines\n  {begin_line}\n  {end_line}\nwhere the generated lines belong");
    let (begin, end) = match (begins.as_slice(), ends.as_slice()) {
        ([b], [e]) if b < e => (*b, *e),
        ([], _) | (_, []) => bail!("{file}: no generated block `{block}`: {hint}"),
        ([_], [_]) => bail!("{file}: the END marker of the generated block `{block}` stands before its BEGIN marker"),
        _ => bail!("{file}: the generated block `{block}` is marked more than once; keep one pair of markers"),
    };
    let mut out = String::with_capacity(text.len() + body.len());
    lines[..begin].iter().for_each(|l| out.push_str(l));
    out.push_str(&begin_line);
    out.push('\n');
    out.push_str(body);
    lines[end..].iter().for_each(|l| out.push_str(l));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::parse_all;

    const BLOCK: &str =
        "# BEGIN generated: things (`cargo xtask gen-mappings`, do not edit by hand)\nold\n# END generated: things\n";

    #[test]
    fn splice_replaces_only_the_block() -> Result<()> {
        let text = format!("a = 1\n{BLOCK}b = 2\n");
        let out = splice("x.toml", &text, Comment::Hash, "things", "new 1\nnew 2\n")?;
        assert_eq!(
            out,
            "a = 1\n# BEGIN generated: things (`cargo xtask gen-mappings`, do not edit by hand)\nnew 1\nnew 2\n# END generated: things\nb = 2\n"
        );
        // Idempotent, and an outdated BEGIN line is rewritten.
        assert_eq!(splice("x.toml", &out, Comment::Hash, "things", "new 1\nnew 2\n")?, out);
        let stale = text.replace("(`cargo xtask gen-mappings`, do not edit by hand)", "(old words)");
        assert_eq!(splice("x.toml", &stale, Comment::Hash, "things", "new 1\nnew 2\n")?, out);
        Ok(())
    }

    #[test]
    fn splice_reports_missing_and_misplaced_markers() {
        let err = |text: &str| match splice("x.toml", text, Comment::Hash, "things", "") {
            Ok(out) => panic!("accepted:\n{out}"),
            Err(e) => e.to_string(),
        };
        let msg = err("a = 1\n");
        assert!(
            msg.contains("x.toml: no generated block `things`") && msg.contains("# END generated: things"),
            "{msg}"
        );
        let msg = err("# END generated: things\n# BEGIN generated: things (x)\n");
        assert!(msg.contains("before its BEGIN"), "{msg}");
        let msg = err(&format!("{BLOCK}{BLOCK}"));
        assert!(msg.contains("more than once"), "{msg}");
    }

    fn manifests() -> Result<Vec<Manifest>> {
        let arch = |ty: &str, krate: &str, feature: &str, profile: &str| {
            (
                format!("manifests/{ty}.toml"),
                format!(
                    "model_type = \"{ty}\"\nname = \"X\"\nconfig_class = \"XConfig\"\ncrate = \"{krate}\"\n\
                     feature = \"{feature}\"\nprofile = \"{profile}\"\nimplemented = [\"base\"]\n\n[tasks]\nbase = \"XModel\"\n"
                ),
            )
        };
        parse_all(&[
            arch("roberta", "autocandle-roberta", "roberta", "text"),
            arch("xlm-roberta", "autocandle-roberta", "roberta", "text"),
            arch("vit", "autocandle-vit", "vit", "vision"),
        ])
    }

    fn sample<'m>(manifests: &'m [Manifest]) -> Vec<Arch<'m>> {
        let by_feature = |f: &str| manifests.iter().filter(|m| m.feature.as_deref() == Some(f)).collect::<Vec<_>>();
        vec![
            Arch {
                feature: "roberta",
                crate_name: "autocandle-roberta",
                dir: "crates/roberta".into(),
                profile: "text",
                manifests: by_feature("roberta"),
            },
            Arch {
                feature: "vit",
                crate_name: "autocandle-vit",
                dir: "crates/vit".into(),
                profile: "vision",
                manifests: by_feature("vit"),
            },
        ]
    }

    #[test]
    fn generated_blocks() -> Result<()> {
        let m = manifests()?;
        let archs = sample(&m);
        let root = "[workspace.package]\nversion = \"0.3.0\"\n\n[workspace.dependencies]\n\
                    # BEGIN generated: architecture crates (x)\n# END generated: architecture crates\nserde = \"1\"\n";
        let out = root_cargo_toml(root, &archs)?;
        assert!(out.contains(
            "autocandle-roberta = { path = \"crates/roberta\", version = \"0.3.0\" }\n\
             autocandle-vit = { path = \"crates/vit\", version = \"0.3.0\" }\n# END"
        ));
        let auto = "[dependencies]\n# BEGIN generated: architecture dependencies (x)\n# END generated: architecture dependencies\n\
                    [features]\ndefault = []\n# BEGIN generated: architecture features (x)\n# END generated: architecture features\n\
                    cuda = []\nhub = []\nimage = []\nchat = []\nonig = []\n";
        let out = auto_cargo_toml(auto, &archs)?;
        assert!(out.contains("autocandle-vit = { workspace = true, optional = true }\n"), "{out}");
        assert!(out.contains("roberta = [\"dep:autocandle-roberta\"]\nvit = [\"dep:autocandle-vit\"]\n"), "{out}");
        assert!(
            out.contains(
                "text = [\"roberta\", \"chat\"]\nvision = [\"vit\", \"image\"]\naudio = []\n\
                 all = [\"roberta\", \"vit\", \"hub\", \"image\", \"chat\", \"onig\"]\n"
            ),
            "{out}"
        );
        // What the generated features promise holds for the feature cross-check too.
        crate::features::check(&m, &out)?;

        let rs = architectures_rs(&archs);
        assert!(rs.starts_with(&format!("//! {HEADER}")));
        assert!(rs.contains("#[cfg(feature = \"roberta\")]\npub use autocandle_roberta as roberta;\n"), "{rs}");

        let md = "# x\n<!-- BEGIN generated: features (x) -->\nOLD BODY\n<!-- END generated: features -->\n";
        let out = readme(md, &archs, &["roberta".to_owned()])?;
        assert!(
            out.contains("| `roberta` | `text` | `autocandle-roberta` | `roberta`, `xlm-roberta` | base |"),
            "{out}"
        );
        assert!(
            out.contains("`text` (1), `vision` (1), `audio` (0)")
                && out.contains("`default` feature enables `roberta`")
        );
        assert!(out.contains("| `onig` | no | the Oniguruma regex engine"), "{out}");
        assert!(!out.contains("OLD BODY"));
        Ok(())
    }

    #[test]
    fn archs_find_crate_folders_and_report_missing_ones() -> Result<()> {
        let root = std::env::temp_dir().join(format!("xtask-wiring-{}", std::process::id()));
        std::fs::create_dir_all(root.join("crates/roberta"))?;
        std::fs::write(root.join("crates/roberta/Cargo.toml"), "[package]\nname = \"autocandle-roberta\"\n")?;
        let m = manifests()?;
        let result = archs(&root, &m);
        let msg = match result {
            Ok(a) => bail!("accepted a manifest whose crate is missing: {a:?}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("manifests/vit.toml: crate `autocandle-vit` is not a package under crates/"), "{msg}");
        std::fs::create_dir_all(root.join("crates/vision-transformer"))?;
        std::fs::write(root.join("crates/vision-transformer/Cargo.toml"), "[package]\nname = \"autocandle-vit\"\n")?;
        let found = archs(&root, &m);
        std::fs::remove_dir_all(&root)?;
        let found = found?;
        assert_eq!(found.len(), 2);
        assert_eq!((found[1].feature, found[1].dir.as_str()), ("vit", "crates/vision-transformer"));
        assert_eq!(found[0].manifests.len(), 2);
        Ok(())
    }
}
