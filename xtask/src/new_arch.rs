//! `cargo xtask new-arch <model_type> --like <decoder>`: scaffolds an architecture crate and its
//! manifest, then regenerates the wiring (`gen-mappings`), so that the new model type builds
//! with its feature and loads through the Auto classes with no other file edited.
//!
//! The scaffold is a llama-like decoder on `autocandle-decoder`, copied from the architecture
//! named by `--like` (any crate whose heads are registered over the shared decoder: `llama`,
//! `mistral`, `qwen2`, `qwen3`, `gemma`, `gemma2`, `phi3`): its config struct and
//! `DecoderConfig` impl renamed, one `register_heads!` call for the heads both that crate and
//! the new model type's manifest have, and unit tests. The contributor then edits the config
//! (defaults, switches) to what `transformers`' `configuration_<model_type>.py` says and adds
//! parity fixtures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::gen_mappings::MANIFESTS_DIR;
use crate::manifest::{self, Manifest};

/// The architecture a scaffold is copied from: a crate whose heads are registered with
/// `register_heads!` over `autocandle_decoder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Like {
    pub model_type: String,
    /// Its config struct (`LlamaConfig`).
    pub config_class: String,
    /// Its crate folder (`crates/llama`).
    pub dir: String,
    /// `src/config.rs`.
    pub config_rs: String,
    /// (task name, `register_heads!` entry without the type name, base model prefix) of each head.
    pub heads: Vec<(String, String, String)>,
}

/// Reads the architecture `like` (a model type with a manifest) as a template.
pub fn like(root: &Path, like: &str, manifests: &[Manifest]) -> Result<Like> {
    let dirs = crate::wiring::crate_dirs(root)?;
    let crate_dir = |m: &Manifest| m.crate_name.as_ref().and_then(|k| dirs.get(k)).cloned().unwrap_or_default();
    let decoders = || {
        manifests
            .iter()
            .filter(|m| {
                m.crate_name.is_some()
                    && std::fs::read_to_string(root.join(crate_dir(m)).join("src/lib.rs"))
                        .is_ok_and(|src| src.contains("family: autocandle_decoder"))
            })
            .map(|m| m.model_type.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let m = manifests.iter().find(|m| m.model_type == like && m.crate_name.is_some());
    let Some(m) = m else {
        bail!("`--like {like}` is not an implemented model type; the llama-like ones are: {}", decoders());
    };
    let dir = crate_dir(m);
    let read = |file: &str| {
        std::fs::read_to_string(root.join(&dir).join(file)).with_context(|| format!("reading {dir}/{file}"))
    };
    let lib = read("src/lib.rs")?;
    let heads =
        register_heads_entries(&lib).filter(|_| lib.contains("family: autocandle_decoder")).with_context(|| {
            format!("`--like {like}`: {dir} is not a llama-like decoder; the llama-like ones are: {}", decoders())
        })?;
    let config_rs = read("src/config.rs")?;
    Ok(Like { model_type: like.to_owned(), config_class: m.config_class.clone(), dir, config_rs, heads })
}

/// The entries of the `register_heads!` call in `lib`: (task name, entry without the type
/// name, base model prefix).
fn register_heads_entries(lib: &str) -> Option<Vec<(String, String, String)>> {
    let start = lib.find("register_heads! {")?;
    let body = &lib[start..];
    let body = &body[body.find('{')? + 1..body.find("\n}")?];
    let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//"));
    let first = lines.next()?;
    let default_prefix = first.split("prefix: \"").nth(1)?.split('"').next()?.to_owned();
    let mut heads = Vec::new();
    for line in lines {
        let (entry, _name) = line.trim_end_matches(';').rsplit_once(':')?;
        let entry = entry.trim();
        let task_ident = entry.split('(').next()?.trim();
        let prefix = entry.split("prefix = \"").nth(1).and_then(|p| p.split('"').next()).unwrap_or(&default_prefix);
        heads.push((task_ident.replace('_', "-"), entry.to_owned(), prefix.to_owned()));
    }
    Some(heads)
}

/// What the scaffold is made of: names derived from the model type and its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub model_type: String,
    /// The display name.
    pub name: String,
    /// `autocandle-<kebab>`.
    pub crate_name: String,
    /// `crates/<kebab>`.
    pub dir: String,
    /// The facade's feature (`<kebab>`).
    pub feature: String,
    /// The config struct (the manifest's `config_class`).
    pub config_class: String,
    /// (task name, `register_heads!` entry, class name, base model prefix) of each head.
    /// The template it is copied from.
    pub like: Like,
    pub heads: Vec<(String, String, String, String)>,
    /// Whether `manifests/<model_type>.toml` exists already (known but not implemented).
    pub manifest_exists: bool,
}

/// `cargo xtask new-arch <model_type> --like <template>`.
pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    let (model_type, like) = match args {
        [ty, "--like", like] | ["--like", like, ty] => (*ty, *like),
        [ty] => (*ty, "llama"),
        _ => bail!("usage: cargo xtask new-arch <model_type> [--like <llama-like model type>]"),
    };
    let plan = scaffold(root, model_type, like)?;
    crate::gen_mappings::write(root)?;
    println!(
        "\nscaffolded `{}` in {} (feature `{}`, {} heads).\nnext:\n  \
         1. make {}/src/config.rs say what transformers' configuration_{}.py says (defaults, switches);\n  \
         2. add parity fixtures for every head (tests/fixtures/make_fixtures.py);\n  \
         3. cargo test -p {} && cargo test -p autocandle-tests --test parity",
        plan.model_type,
        plan.dir,
        plan.feature,
        plan.heads.len(),
        plan.dir,
        plan.model_type,
        plan.crate_name
    );
    Ok(())
}

/// Writes the crate and the manifest of `model_type` (a llama-like scaffold) under `root`;
/// does not regenerate the wiring. Refuses to overwrite anything.
pub fn scaffold(root: &Path, model_type: &str, like: &str) -> Result<Plan> {
    let manifests = manifest::load_dir(root, MANIFESTS_DIR)?;
    let like = self::like(root, like, &manifests)?;
    let plan = plan(model_type, &manifests, like)?;
    let dir = root.join(&plan.dir);
    if dir.exists() {
        bail!("{} exists already: pick another model type or remove it", plan.dir);
    }
    let files = [
        ("Cargo.toml", cargo_toml(&plan)),
        ("src/lib.rs", lib_rs(&plan)),
        ("src/config.rs", config_rs(&plan)),
        ("src/tests.rs", tests_rs(&plan)),
    ];
    for (file, contents) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        println!("created {}/{file}", plan.dir);
    }
    link_license(root, &dir)?;
    println!("created {}/LICENSE (a link to the workspace's)", plan.dir);
    let manifest_path = root.join(MANIFESTS_DIR).join(format!("{model_type}.toml"));
    let text = if plan.manifest_exists {
        let old =
            std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
        add_implementation(&old, &plan)
    } else {
        new_manifest(&plan)
    };
    std::fs::write(&manifest_path, text).with_context(|| format!("writing {}", manifest_path.display()))?;
    println!("{} {MANIFESTS_DIR}/{model_type}.toml", if plan.manifest_exists { "updated" } else { "created" });
    Ok(plan)
}

/// Every published crate carries the workspace's license text: a link to `LICENSE` at the root
/// (a copy where links cannot be made), which `cargo package` stores as a file.
fn link_license(root: &Path, dir: &Path) -> Result<()> {
    let link = dir.join("LICENSE");
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink("../../LICENSE", &link);
    #[cfg(not(unix))]
    let made = std::fs::copy(root.join("LICENSE"), &link).map(drop);
    #[cfg(unix)]
    let _ = root;
    made.with_context(|| format!("creating {}", link.display()))
}

/// The names of the scaffold of `model_type`, from its manifest when there is one.
pub fn plan(model_type: &str, manifests: &[Manifest], like: Like) -> Result<Plan> {
    if !manifest::is_model_type(model_type) {
        bail!("`{model_type}` is not a model type: lowercase ASCII letters, digits, `-`, `_` or `.`");
    }
    let kebab = model_type.replace(['_', '.'], "-");
    let existing = manifests.iter().find(|m| m.model_type == model_type);
    if let Some(m) = existing {
        if let Some(krate) = &m.crate_name {
            bail!("{}: `{model_type}` is implemented already, by `{krate}`", m.file);
        }
    }
    if let Some(m) = manifests.iter().find(|m| m.feature.as_deref() == Some(kebab.as_str())) {
        bail!("feature `{kebab}` is taken by {} (crate `{}`)", m.file, m.crate_name.as_deref().unwrap_or("?"));
    }
    if manifest::RESERVED_FEATURES.contains(&kebab.as_str()) || manifest::PROFILES.contains(&kebab.as_str()) {
        bail!("`{model_type}` would be the feature `{kebab}`, which autocandle uses for itself");
    }
    let camel = existing
        .and_then(|m| m.config_class.strip_suffix("Config"))
        .filter(|c| !c.is_empty())
        .map_or_else(|| camel_case(model_type), str::to_owned);
    let mut heads = Vec::new();
    for (task, entry, prefix) in &like.heads {
        let class = match existing {
            Some(m) => match m.tasks.iter().find(|t| t.task.name == task) {
                Some(t) => t.class_name.clone(),
                None => continue,
            },
            None => default_class(&camel, task),
        };
        heads.push((task.clone(), entry.clone(), class, prefix.clone()));
    }
    if heads.is_empty() {
        bail!(
            "manifests/{model_type}.toml lists none of the heads of `{}` ({}): a scaffold of it does not fit",
            like.model_type,
            like.heads.iter().map(|h| h.0.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    // `register_heads!` defines one Rust type per head: a class that two tasks share (as
    // `transformers` maps some) can only be scaffolded once.
    let mut seen = std::collections::BTreeSet::new();
    heads.retain(|h| seen.insert(h.2.clone()));
    Ok(Plan {
        model_type: model_type.to_owned(),
        name: existing.map_or_else(|| camel.clone(), |m| m.name.clone()),
        crate_name: format!("autocandle-{kebab}"),
        dir: format!("crates/{kebab}"),
        feature: kebab,
        config_class: existing.map_or_else(|| format!("{camel}Config"), |m| m.config_class.clone()),
        heads,
        manifest_exists: existing.is_some(),
        like,
    })
}

/// `transformers`' class name for a task of a new model type (`ToyForCausalLM`).
fn default_class(camel: &str, task: &str) -> String {
    match task {
        "base" => format!("{camel}Model"),
        "causal-lm" => format!("{camel}ForCausalLM"),
        "masked-lm" => format!("{camel}ForMaskedLM"),
        "text-encoding" => format!("{camel}Model"),
        _ => {
            let words: String = task.split('-').map(camel_case).collect();
            format!("{camel}For{words}")
        }
    }
}

/// `toy_llama-2` -> `ToyLlama2`.
fn camel_case(model_type: &str) -> String {
    model_type
        .split(['-', '_', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn cargo_toml(p: &Plan) -> String {
    format!(
        r#"[package]
name = "{krate}"
description = "{name} for autocandle, after transformers' modeling_{ty}"
version.workspace = true
edition.workspace = true
license.workspace = true
rust-version.workspace = true
repository.workspace = true
homepage.workspace = true
documentation = "https://docs.rs/{krate}"
readme = "README.md"
keywords.workspace = true
categories.workspace = true

[dependencies]
autocandle-core.workspace = true
autocandle-decoder.workspace = true
serde.workspace = true

[dev-dependencies]
autocandle-testing.workspace = true
serde_json.workspace = true

[lints]
workspace = true
"#,
        krate = p.crate_name,
        name = p.name,
        ty = p.model_type
    )
}

fn lib_rs(p: &Plan) -> String {
    let mut heads = String::new();
    for (_, entry, class, _) in &p.heads {
        let _ = writeln!(heads, "    {entry}: {class};");
    }
    format!(
        r#"//! {name} for autocandle, after `transformers`' `modeling_{ty}`: [`{config}`] and its heads,
//! on the shared llama-like decoder of `autocandle-decoder`.
//!
//! Scaffolded by `cargo xtask new-arch {ty} --like {like}`: the network is `{like}`'s until
//! `config.rs` sets the switches where {name} differs (`DecoderOptions`: q/k norms,
//! biases, sliding windows, soft-capping, ...). Weight names read as the `transformers` state
//! dict (`model.layers.N.self_attn.q_proj.weight`, `lm_head.weight`).

#![warn(missing_docs)]

mod config;

pub use config::{config};

autocandle_core::register_heads! {{
    family: autocandle_decoder, config: {config}, prefix: "model";
{heads}}}

#[cfg(test)]
mod tests;
"#,
        name = p.name,
        ty = p.model_type,
        config = p.config_class,
        like = p.like.model_type,
    )
}

/// The template's `config.rs` with its config struct, model type and `transformers` module
/// names renamed, and a note after its first line.
fn config_rs(p: &Plan) -> String {
    let like = &p.like;
    let mut out = rename_word(&like.config_rs, &like.config_class, &p.config_class);
    for (from, to) in [
        (format!("\"{}\"", like.model_type), format!("\"{}\"", p.model_type)),
        (format!("configuration_{}", like.model_type), format!("configuration_{}", p.model_type)),
        (format!("modeling_{}", like.model_type), format!("modeling_{}", p.model_type)),
    ] {
        out = out.replace(&from, &to);
    }
    let note = format!(
        "//!\n//! Scaffolded from `{}` by `cargo xtask new-arch {} --like {}`: the fields, defaults and\n\
         //! switches are `{}`'s until edited to what `transformers` says.\n",
        like.dir, p.model_type, like.model_type, like.config_class
    );
    match out.find('\n') {
        Some(at) if out.starts_with("//!") => format!("{}{note}{}", &out[..=at], &out[at + 1..]),
        _ => format!("{}{out}", note.trim_start_matches("//!\n")),
    }
}

/// `text` with every whole-word `from` (an identifier) replaced by `to`.
fn rename_word(text: &str, from: &str, to: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

fn tests_rs(p: &Plan) -> String {
    let mut expected = String::new();
    for (task, _, class, prefix) in &p.heads {
        let variant = crate::tasks::TASKS.iter().find(|t| t.name == task).map_or("Base", |t| t.variant);
        let _ = writeln!(expected, "        (Task::{variant}, \"{class}\".to_owned(), \"{prefix}\"),");
    }
    format!(
        r##"//! Unit tests: config defaults and parsing, and the registered heads. Parity with
//! `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::Task;
use autocandle_decoder::DecoderConfig;
use autocandle_testing::check_heads;

use crate::{config};

fn tiny() -> {config} {{
    serde_json::from_str(
        r#"{{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}}"#,
    )
    .unwrap()
}}

#[test]
fn config_defaults_are_the_default_impl() {{
    let cfg: {config} = serde_json::from_str("{{}}").unwrap();
    assert_eq!(cfg, {config}::default());
    let back: {config} = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    cfg.decoder_spec().unwrap();
}}

#[test]
fn every_head_is_registered_and_runs() {{
    let expected = vec![
{expected}    ];
    check_heads(&tiny(), &expected).unwrap();
}}
"##,
        config = p.config_class,
    )
}

/// A new manifest for a model type no manifest knows: the template's heads, all implemented.
fn new_manifest(p: &Plan) -> String {
    let mut s = format!(
        "# One model type of `transformers`; schema in manifests/README.md.\n\
         model_type = \"{}\"\nname = \"{}\"\nconfig_class = \"{}\"\n",
        p.model_type, p.name, p.config_class
    );
    s.push_str(&implementation_lines(p));
    s.push_str("\n[tasks]\n");
    for (task, _, class, _) in &p.heads {
        let _ = writeln!(s, "{task} = \"{class}\"");
    }
    s
}

/// `crate`, `feature`, `profile` and `implemented`, as manifest lines.
fn implementation_lines(p: &Plan) -> String {
    let implemented = p.heads.iter().map(|h| format!("\"{}\"", h.0)).collect::<Vec<_>>().join(", ");
    format!(
        "crate = \"{}\"\nfeature = \"{}\"\nprofile = \"text\"\nimplemented = [{implemented}]\n",
        p.crate_name, p.feature
    )
}

/// An existing manifest (known, not implemented) with the implementation lines added before
/// `[tasks]`; nothing else changes.
fn add_implementation(old: &str, p: &Plan) -> String {
    match old.find("\n[tasks]") {
        Some(at) => {
            let (head, tail) = old.split_at(at);
            format!("{}\n{}{tail}", head.trim_end_matches('\n'), implementation_lines(p))
        }
        None => format!("{}\n{}", old.trim_end_matches('\n'), implementation_lines(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::parse_all;

    const LIB: &str = "mod config;\n\nautocandle_core::register_heads! {\n    \
        family: autocandle_decoder, config: LlamaConfig, prefix: \"model\";\n    base: LlamaModel;\n    \
        causal_lm: LlamaForCausalLM;\n    /// Docs.\n    question_answering(prefix = \"transformer\"): LlamaForQuestionAnswering;\n}\n";

    const CONFIG: &str = "//! `LlamaConfig`, field for field as `transformers`' `configuration_llama.LlamaConfig`.\n\n\
        #[auto(config, model_type = \"llama\")]\npub struct LlamaConfig {}\nimpl LlamaConfig {\n    \
        fn f(&self) -> LlamaConfigRaw { rope(\"llama3\", \"llama\") }\n}\n";

    fn llama() -> Like {
        Like {
            model_type: "llama".into(),
            config_class: "LlamaConfig".into(),
            dir: "crates/llama".into(),
            config_rs: CONFIG.into(),
            heads: register_heads_entries(LIB).unwrap_or_default(),
        }
    }

    fn known() -> Result<Vec<Manifest>> {
        parse_all(&[
            (
                "manifests/olmo.toml".to_owned(),
                "model_type = \"olmo\"\nname = \"OLMo\"\nconfig_class = \"OlmoConfig\"\n\n[tasks]\n\
                 base = \"OlmoModel\"\ncausal-lm = \"OlmoForCausalLM\"\nsequence-classification = \"OlmoForSequenceClassification\"\n"
                    .to_owned(),
            ),
            (
                "manifests/bert.toml".to_owned(),
                "model_type = \"bert\"\nname = \"BERT\"\nconfig_class = \"BertConfig\"\ncrate = \"autocandle-bert\"\n\
                 feature = \"bert\"\nprofile = \"text\"\nimplemented = [\"base\"]\n\n[tasks]\nbase = \"BertModel\"\n"
                    .to_owned(),
            ),
        ])
    }

    #[test]
    fn reads_the_heads_of_a_register_heads_call() {
        let heads = llama().heads;
        assert_eq!(
            heads,
            [
                ("base".to_owned(), "base".to_owned(), "model".to_owned()),
                ("causal-lm".to_owned(), "causal_lm".to_owned(), "model".to_owned()),
                (
                    "question-answering".to_owned(),
                    "question_answering(prefix = \"transformer\")".to_owned(),
                    "transformer".to_owned()
                ),
            ]
        );
        assert_eq!(register_heads_entries("no macro here"), None);
    }

    #[test]
    fn plan_for_a_new_model_type() -> Result<()> {
        let p = plan("toy_llama", &known()?, llama())?;
        assert_eq!(
            (p.crate_name.as_str(), p.dir.as_str(), p.feature.as_str()),
            ("autocandle-toy-llama", "crates/toy-llama", "toy-llama")
        );
        assert_eq!(p.config_class, "ToyLlamaConfig");
        assert_eq!(
            p.heads.iter().map(|h| h.2.as_str()).collect::<Vec<_>>(),
            ["ToyLlamaModel", "ToyLlamaForCausalLM", "ToyLlamaForQuestionAnswering"]
        );
        assert!(!p.manifest_exists);
        let text = new_manifest(&p);
        let m = manifest::parse("manifests/toy_llama.toml", &text)?;
        assert_eq!(m.implemented().count(), 3);
        assert_eq!(m.profile.as_deref(), Some("text"));
        let lib = lib_rs(&p);
        assert!(lib.contains("config: ToyLlamaConfig, prefix: \"model\";\n    base: ToyLlamaModel;\n"), "{lib}");
        assert!(lib.contains("question_answering(prefix = \"transformer\"): ToyLlamaForQuestionAnswering;"), "{lib}");
        assert!(lib.contains("\n#![warn(missing_docs)]\n"), "a scaffolded crate documents its public items: {lib}");
        Ok(())
    }

    #[test]
    fn config_is_the_template_s_renamed() -> Result<()> {
        let p = plan("toy", &known()?, llama())?;
        let config = config_rs(&p);
        assert!(config.starts_with("//! `ToyConfig`, field for field as `transformers`' `configuration_toy.ToyConfig`.\n//!\n//! Scaffolded from `crates/llama`"), "{config}");
        assert!(config.contains("#[auto(config, model_type = \"toy\")]\npub struct ToyConfig {}"), "{config}");
        // Whole words and whole string literals only.
        assert!(config.contains("fn f(&self) -> LlamaConfigRaw { rope(\"llama3\", \"toy\") }"), "{config}");
        Ok(())
    }

    #[test]
    fn plan_for_a_known_model_type_follows_its_manifest() -> Result<()> {
        let all = known()?;
        let p = plan("olmo", &all, llama())?;
        assert_eq!(p.config_class, "OlmoConfig");
        // The manifest's classes, for the heads both have (no sequence classification in the template).
        assert_eq!(p.heads.iter().map(|h| h.2.as_str()).collect::<Vec<_>>(), ["OlmoModel", "OlmoForCausalLM"]);
        let old = "# c\nmodel_type = \"olmo\"\nname = \"OLMo\"\nconfig_class = \"OlmoConfig\"\n\n[tasks]\n\
                   base = \"OlmoModel\"\ncausal-lm = \"OlmoForCausalLM\"\n";
        let text = add_implementation(old, &p);
        assert!(text.starts_with("# c\nmodel_type"), "{text}");
        let m = manifest::parse("manifests/olmo.toml", &text)?;
        assert_eq!((m.crate_name.as_deref(), m.implemented().count()), (Some("autocandle-olmo"), 2));
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_scaffold() -> Result<()> {
        let all = known()?;
        let msg = |r: Result<Plan>| r.map(|p| format!("accepted {p:?}")).unwrap_or_else(|e| e.to_string());
        assert!(msg(plan("bert", &all, llama())).contains("implemented already, by `autocandle-bert`"));
        assert!(msg(plan("Bad Name", &all, llama())).contains("is not a model type"));
        assert!(msg(plan("all", &all, llama())).contains("autocandle uses for itself"));
        let root = crate::workspace_root();
        let manifests = manifest::load_dir(&root, MANIFESTS_DIR)?;
        let err = like(&root, "bert", &manifests).map(|l| format!("{l:?}")).unwrap_or_else(|e| e.to_string());
        assert!(err.contains("not a llama-like decoder") && err.contains("qwen3"), "{err}");
        let err = like(&root, "funnel", &manifests).map(|l| format!("{l:?}")).unwrap_or_else(|e| e.to_string());
        assert!(err.contains("not an implemented model type"), "{err}");
        // Every llama-like crate of the workspace is a template.
        for ty in ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"] {
            let l = like(&root, ty, &manifests)?;
            assert!(l.heads.iter().any(|h| h.0 == "causal-lm"), "{ty}: {:?}", l.heads);
            assert!(l.config_rs.contains(&format!("model_type = \"{ty}\"")), "{ty}");
        }
        Ok(())
    }

    #[test]
    fn camel_case_names() {
        assert_eq!(camel_case("toy_llama-2"), "ToyLlama2");
        assert_eq!(camel_case("olmo"), "Olmo");
        assert_eq!(default_class("Toy", "sequence-classification"), "ToyForSequenceClassification");
    }
}
