//! Cross-checks between the manifests and the `[features]` of `crates/auto/Cargo.toml`.
//!
//! The generated `feature_enabled` uses `cfg!(feature = "...")`, so each manifest's
//! feature must exist, must pull in the manifest's crate, and the `all` profile must
//! enable it (the generated docs say so).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

use crate::manifest::Manifest;

/// The path of the facade's manifest, relative to the workspace root.
pub const AUTO_CARGO_TOML: &str = "crates/auto/Cargo.toml";

/// A feature of the facade that is not an architecture: a part of the library a user may
/// leave out of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The feature (`hub`).
    pub name: &'static str,
    /// The profiles that enable it besides `all` (`vision` for `image`).
    pub profiles: &'static [&'static str],
    /// What it brings, for the README's table.
    pub brings: &'static str,
}

/// The parts, in the order of the README's table. Their `[features]` entries are written by
/// hand in the facade's `Cargo.toml` (what each enables differs); the generated profiles
/// include them, and [`check`] requires each to be declared.
pub const PARTS: &[Part] = &[
    Part {
        name: "hub",
        profiles: &[],
        brings: "downloads from the Hugging Face Hub (hf-hub, ureq, rustls); without it, local folders and \
                 an existing Hub cache only",
    },
    Part {
        name: "image",
        profiles: &["vision"],
        brings: "image decoding (PNG, JPEG) and image processors: `AutoImageProcessor`, `AutoProcessor`, \
                 the image pipelines",
    },
    Part {
        name: "chat",
        profiles: &["text"],
        brings: "chat templates (minijinja): `apply_chat_template`, `encode_chat`",
    },
    Part {
        name: "onig",
        profiles: &[],
        brings: "the Oniguruma regex engine of `tokenizers`, the one Python uses (C code: needs a C compiler); \
                 without it, the pure-Rust `fancy-regex` engine",
    },
];

/// The facade's feature table, as far as the docs need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoFeatures {
    /// What `default` enables (empty when there is no `default` feature).
    pub default: Vec<String>,
}

/// Checks `manifests` against the text of `crates/auto/Cargo.toml`; reports every problem at once.
pub fn check(manifests: &[Manifest], cargo_toml: &str) -> Result<AutoFeatures> {
    let doc: toml::Table = toml::from_str(cargo_toml).map_err(|e| anyhow!("{AUTO_CARGO_TOML}: {e}"))?;
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(features) = doc.get("features") {
        let features = features.as_table().ok_or_else(|| anyhow!("{AUTO_CARGO_TOML}: `[features]` is not a table"))?;
        for (name, value) in features {
            let list = value
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| anyhow!("{AUTO_CARGO_TOML}: feature `{name}` is not a list of strings"))?;
            table.insert(name.clone(), list);
        }
    }

    let mut errors = Vec::new();
    let all = table.get("all");
    if all.is_none() {
        errors
            .push(format!("{AUTO_CARGO_TOML}: no `all` feature; add `all = [...]` listing every architecture feature"));
    }
    for part in PARTS {
        if !table.contains_key(part.name) {
            errors.push(format!(
                "{AUTO_CARGO_TOML}: the `{}` feature (a part of the library, see xtask's `PARTS`) is not declared \
                 in [features]",
                part.name
            ));
        }
    }
    for m in manifests {
        let (Some(krate), Some(feature)) = (&m.crate_name, &m.feature) else {
            continue;
        };
        let Some(enables) = table.get(feature) else {
            errors.push(format!(
                "{}: feature `{feature}` is not declared in {AUTO_CARGO_TOML}: add `{feature} = [\"dep:{krate}\"]` to its [features]",
                m.file
            ));
            continue;
        };
        let dep = format!("dep:{krate}");
        if !enables.contains(&dep) {
            errors.push(format!("{}: feature `{feature}` in {AUTO_CARGO_TOML} does not enable `{dep}`", m.file));
        }
        if let Some(all) = all {
            if !all.contains(feature) {
                errors.push(format!(
                    "{}: feature `{feature}` is missing from the `all` feature in {AUTO_CARGO_TOML}",
                    m.file
                ));
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(AutoFeatures { default: table.get("default").cloned().unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest;

    const BERT: &str = r#"
model_type = "bert"
name = "BERT"
config_class = "BertConfig"
crate = "autocandle-bert"
feature = "bert"
profile = "text"
implemented = ["base"]

[tasks]
base = "BertModel"
"#;

    const CARGO: &str = r#"
[package]
name = "autocandle"

[features]
default = ["bert"]
bert = ["dep:autocandle-bert"]
all = ["bert", "hub", "image", "chat", "onig"]
cuda = ["autocandle-bert?/cuda"]
hub = []
image = []
chat = []
onig = []
"#;

    fn bert() -> Result<Vec<Manifest>> {
        Ok(vec![manifest::parse("manifests/bert.toml", BERT)?])
    }

    fn error(cargo: &str) -> Result<String> {
        Ok(match check(&bert()?, cargo) {
            Ok(f) => bail!("expected {cargo} to be rejected, got {f:?}"),
            Err(e) => e.to_string(),
        })
    }

    #[test]
    fn accepts_consistent_features() -> Result<()> {
        let f = check(&bert()?, CARGO)?;
        assert_eq!(f.default, ["bert"]);
        Ok(())
    }

    #[test]
    fn rejects_an_undeclared_part() -> Result<()> {
        let msg = error(&CARGO.replace("onig = []\n", ""))?;
        assert!(msg.contains("the `onig` feature (a part of the library"), "{msg}");
        Ok(())
    }

    #[test]
    fn rejects_undeclared_feature() -> Result<()> {
        let msg = error(&CARGO.replace("bert = [\"dep:autocandle-bert\"]\n", ""))?;
        assert!(msg.contains("manifests/bert.toml: feature `bert` is not declared in crates/auto/Cargo.toml"), "{msg}");
        Ok(())
    }

    #[test]
    fn rejects_feature_without_its_crate() -> Result<()> {
        let msg = error(&CARGO.replace("dep:autocandle-bert", "dep:autocandle-other"))?;
        assert!(msg.contains("does not enable `dep:autocandle-bert`"), "{msg}");
        Ok(())
    }

    #[test]
    fn rejects_feature_missing_from_all() -> Result<()> {
        let all = "all = [\"bert\", \"hub\", \"image\", \"chat\", \"onig\"]\n";
        let msg = error(&CARGO.replace(all, "all = []\n"))?;
        assert!(msg.contains("missing from the `all` feature"), "{msg}");
        let msg = error(&CARGO.replace(all, ""))?;
        assert!(msg.contains("no `all` feature"), "{msg}");
        Ok(())
    }
}
