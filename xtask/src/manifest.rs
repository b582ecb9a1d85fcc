//! The per-model-type manifests in `manifests/*.toml`: schema, parsing and validation.
//!
//! The schema is documented in `manifests/README.md`. Every check reports the
//! manifest file and the key involved; all problems in all files are reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::tasks::{self, TaskDef, TASKS};

/// A manifest as written in TOML, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    model_type: String,
    name: String,
    config_class: String,
    tokenizer_class: Option<String>,
    tokenizer_fast_class: Option<String>,
    #[serde(rename = "crate")]
    crate_name: Option<String>,
    feature: Option<String>,
    profile: Option<String>,
    #[serde(default)]
    implemented: Vec<String>,
    tasks: BTreeMap<String, String>,
}

/// A validated manifest: one model type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it was read from, relative to the workspace root (`manifests/bert.toml`).
    pub file: String,
    pub model_type: String,
    pub name: String,
    pub config_class: String,
    pub tokenizer_class: Option<String>,
    pub tokenizer_fast_class: Option<String>,
    /// The crate that implements it; `None` when autocandle knows it but does not implement it.
    pub crate_name: Option<String>,
    /// The feature of `autocandle` that compiles `crate_name` in; set exactly when it is.
    pub feature: Option<String>,
    /// The feature profile of `autocandle` (one of [`PROFILES`]) that includes `feature`; set
    /// exactly when `feature` is.
    pub profile: Option<String>,
    /// Every task `transformers` has for this model type, in `Task` enum order.
    pub tasks: Vec<TaskEntry>,
}

/// One task of a model type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEntry {
    pub task: TaskDef,
    /// The `transformers` class (`BertForMaskedLM`).
    pub class_name: String,
    /// Whether autocandle implements it.
    pub implemented: bool,
}

impl Manifest {
    /// The tasks autocandle implements for this model type, in `Task` enum order.
    pub fn implemented(&self) -> impl Iterator<Item = &TaskEntry> {
        self.tasks.iter().filter(|t| t.implemented)
    }
}

/// Parses and validates one manifest; `file` is the path shown in errors
/// (relative to the workspace root) and its file name must be `<model_type>.toml`.
pub fn parse(file: &str, text: &str) -> Result<Manifest> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        // toml's message already names the key and shows the line.
        anyhow::anyhow!("{file}: {}", e.to_string().trim_end())
    })?;
    let mut errors = Vec::new();
    let manifest = validate(file, raw, &mut errors);
    if errors.is_empty() {
        Ok(manifest)
    } else {
        bail!("{}", errors.join("\n"))
    }
}

/// Reads every `*.toml` file in `dir` (sorted by name), validates each, and checks
/// across files. Returns the manifests sorted by `model_type`.
pub fn load_dir(root: &Path, dir: &str) -> Result<Vec<Manifest>> {
    let full = root.join(dir);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&full).with_context(|| format!("reading {}", full.display()))? {
        let entry = entry.with_context(|| format!("reading {}", full.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            files.push(name);
        }
    }
    files.sort();
    let mut sources = Vec::new();
    for name in files {
        let file = format!("{dir}/{name}");
        let text = std::fs::read_to_string(root.join(&file)).with_context(|| format!("reading {file}"))?;
        sources.push((file, text));
    }
    parse_all(&sources)
}

/// Parses `(file, text)` pairs and checks across them; reports every problem at once.
pub fn parse_all(sources: &[(String, String)]) -> Result<Vec<Manifest>> {
    let mut errors = Vec::new();
    let mut manifests = Vec::new();
    for (file, text) in sources {
        match parse(file, text) {
            Ok(m) => manifests.push(m),
            Err(e) => errors.push(e.to_string()),
        }
    }
    check_across(&manifests, &mut errors);
    if !errors.is_empty() {
        bail!("invalid manifests (schema: manifests/README.md):\n{}", errors.join("\n"));
    }
    if manifests.is_empty() {
        bail!("no manifests found: expected manifests/<model_type>.toml files");
    }
    manifests.sort_by(|a, b| a.model_type.cmp(&b.model_type));
    Ok(manifests)
}

fn validate(file: &str, raw: RawManifest, errors: &mut Vec<String>) -> Manifest {
    let mut err = |msg: String| errors.push(format!("{file}: {msg}"));

    if !is_model_type(&raw.model_type) {
        err(format!(
            "`model_type` `{}` must be lowercase ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            raw.model_type
        ));
    }
    let file_name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let expected = format!("{}.toml", raw.model_type);
    if file_name != expected {
        err(format!("file name must be `{expected}` (the `model_type` plus `.toml`), not `{file_name}`"));
    }
    if raw.name.trim().is_empty() {
        err("`name` must not be empty".to_owned());
    }
    for (key, value) in [
        ("config_class", Some(&raw.config_class)),
        ("tokenizer_class", raw.tokenizer_class.as_ref()),
        ("tokenizer_fast_class", raw.tokenizer_fast_class.as_ref()),
    ] {
        if let Some(value) = value {
            if !is_class_name(value) {
                err(format!("`{key}` `{value}` is not a Python class name"));
            }
        }
    }

    match (&raw.crate_name, &raw.feature) {
        (Some(_), None) => err("`crate` is set but `feature` is not: set both or neither".to_owned()),
        (None, Some(_)) => err("`feature` is set but `crate` is not: set both or neither".to_owned()),
        _ => {}
    }
    if let Some(krate) = &raw.crate_name {
        if !is_feature_like(krate) {
            err(format!("`crate` `{krate}` is not a crate name"));
        }
    }
    if let Some(feature) = &raw.feature {
        if !is_feature_like(feature) {
            err(format!("`feature` `{feature}` must be lowercase ASCII letters, digits, `-` or `_`"));
        }
        if PROFILES.contains(&feature.as_str()) || RESERVED_FEATURES.contains(&feature.as_str()) {
            err(format!("`feature` `{feature}` is a feature of autocandle itself: name the architecture instead"));
        }
    }
    match (&raw.feature, &raw.profile) {
        (Some(_), None) => err(format!(
            "`feature` is set but `profile` is not: add `profile = \"...\"`, one of {}",
            PROFILES.join(", ")
        )),
        (None, Some(_)) => err("`profile` is set but `feature` is not: a profile groups features".to_owned()),
        (_, Some(profile)) if !PROFILES.contains(&profile.as_str()) => {
            err(format!("`profile` `{profile}` is not a profile; expected one of: {}", PROFILES.join(", ")))
        }
        _ => {}
    }

    // An empty `[tasks]` is a model type that no Auto model class of autocandle's tasks
    // loads (a backbone or a sub-config); it cannot have a crate (`implemented` must be empty).
    let mut entries: Vec<(usize, TaskEntry)> = Vec::new();
    for (name, class_name) in &raw.tasks {
        let Some(pos) = tasks::position(name) else {
            err(format!("`[tasks]` key `{name}` is not a task name; expected one of: {}", tasks::known_names()));
            continue;
        };
        if !is_class_name(class_name) {
            err(format!("`[tasks]` value for `{name}`: `{class_name}` is not a Python class name"));
        }
        entries.push((pos, TaskEntry { task: TASKS[pos], class_name: class_name.clone(), implemented: false }));
    }
    entries.sort_by_key(|(pos, _)| *pos);

    let mut seen = BTreeSet::new();
    for name in &raw.implemented {
        if !seen.insert(name.as_str()) {
            err(format!("`implemented` lists `{name}` twice"));
            continue;
        }
        if let Some((_, entry)) = entries.iter_mut().find(|(_, e)| e.task.name == name) {
            entry.implemented = true;
        } else if tasks::position(name).is_none() {
            err(format!("`implemented` entry `{name}` is not a task name; expected one of: {}", tasks::known_names()));
        } else {
            err(format!(
                "`implemented` entry `{name}` is not in `[tasks]`: add `{name} = \"<transformers class>\"` there"
            ));
        }
    }
    if raw.crate_name.is_none() && !raw.implemented.is_empty() {
        err("`implemented` is not empty but `crate` is not set: name the crate that implements them".to_owned());
    }
    if raw.crate_name.is_some() && raw.implemented.is_empty() {
        err("`crate` is set but `implemented` is empty: list the tasks the crate implements".to_owned());
    }

    Manifest {
        file: file.to_owned(),
        model_type: raw.model_type,
        name: raw.name,
        config_class: raw.config_class,
        tokenizer_class: raw.tokenizer_class,
        tokenizer_fast_class: raw.tokenizer_fast_class,
        crate_name: raw.crate_name,
        feature: raw.feature,
        profile: raw.profile,
        tasks: entries.into_iter().map(|(_, e)| e).collect(),
    }
}

/// The feature profiles of `autocandle` besides `all`: each architecture feature is in one.
pub const PROFILES: &[&str] = &["text", "vision", "audio"];

/// Features of `autocandle` that are not architectures.
pub const RESERVED_FEATURES: &[&str] = &["all", "default", "cuda", "metal"];

/// Checks that need every manifest: unique model types, one crate per feature, one profile per feature.
fn check_across(manifests: &[Manifest], errors: &mut Vec<String>) {
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for m in manifests {
        if let Some(first) = by_type.insert(&m.model_type, &m.file) {
            errors.push(format!("{}: duplicate model type `{}` (also in {first})", m.file, m.model_type));
        }
    }
    let mut by_feature: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut by_crate: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut profiles: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for m in manifests {
        let (Some(krate), Some(feature)) = (&m.crate_name, &m.feature) else {
            continue;
        };
        if let Some(profile) = &m.profile {
            if let Some((other, file)) = profiles.insert(feature, (profile, &m.file)) {
                if other != profile {
                    errors.push(format!(
                        "{}: feature `{feature}` is given profile `{profile}` here but `{other}` in {file}",
                        m.file
                    ));
                }
            }
        }
        if let Some((other, file)) = by_feature.insert(feature, (krate, &m.file)) {
            if other != krate {
                errors.push(format!(
                    "{}: feature `{feature}` is given crate `{krate}` here but `{other}` in {file}",
                    m.file
                ));
            }
        }
        if let Some((other, file)) = by_crate.insert(krate, (feature, &m.file)) {
            if other != feature {
                errors.push(format!(
                    "{}: crate `{krate}` is given feature `{feature}` here but `{other}` in {file}",
                    m.file
                ));
            }
        }
    }
}

/// The features and crates that the manifests name: feature -> (crate, model types).
pub fn features(manifests: &[Manifest]) -> BTreeMap<&str, (&str, Vec<&str>)> {
    let mut out: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
    for m in manifests {
        if let (Some(krate), Some(feature)) = (&m.crate_name, &m.feature) {
            out.entry(feature).or_insert_with(|| (krate, Vec::new())).1.push(&m.model_type);
        }
    }
    out
}

/// A one-line summary (`bert: 9 tasks, 9 implemented (feature bert)`), for `gen-mappings` output.
pub fn summary(m: &Manifest) -> String {
    let mut s = format!("{}: {} tasks, {} implemented", m.model_type, m.tasks.len(), m.implemented().count());
    if let Some(feature) = &m.feature {
        let _ = write!(s, " (feature `{feature}`)");
    }
    s
}

pub fn is_model_type(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn is_feature_like(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
}

pub fn is_class_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: &str = r#"
model_type = "bert"
name = "BERT"
config_class = "BertConfig"
tokenizer_class = "BertTokenizer"
tokenizer_fast_class = "BertTokenizerFast"
crate = "autocandle-bert"
feature = "bert"
profile = "text"
implemented = ["masked-lm", "base"]

[tasks]
masked-lm = "BertForMaskedLM"
base = "BertModel"
causal-lm = "BertLMHeadModel"
"#;

    const KNOWN: &str = r#"
model_type = "t5"
name = "T5"
config_class = "T5Config"

[tasks]
base = "T5Model"
seq2seq-lm = "T5ForConditionalGeneration"
"#;

    /// The error message of parsing `text` as `file`; fails the test if it parses.
    fn error(file: &str, text: &str) -> String {
        match parse(file, text) {
            Ok(m) => panic!("expected {file} to be rejected, got {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The error message of `parse_all(sources)`; fails the test if they parse.
    fn all_error(sources: &[(String, String)]) -> String {
        match parse_all(sources) {
            Ok(all) => panic!("expected the manifests to be rejected, got {all:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_mentions(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(message.contains(part), "expected error to mention {part:?}, got:\n{message}");
        }
    }

    #[test]
    fn parses_and_orders_tasks_by_enum() -> Result<()> {
        let m = parse("manifests/bert.toml", BERT)?;
        assert_eq!(m.model_type, "bert");
        assert_eq!(m.crate_name.as_deref(), Some("autocandle-bert"));
        let got: Vec<(&str, &str, bool)> =
            m.tasks.iter().map(|t| (t.task.variant, t.class_name.as_str(), t.implemented)).collect();
        assert_eq!(
            got,
            [
                ("Base", "BertModel", true),
                ("CausalLm", "BertLMHeadModel", false),
                ("MaskedLm", "BertForMaskedLM", true),
            ]
        );
        Ok(())
    }

    #[test]
    fn known_but_not_implemented() -> Result<()> {
        let m = parse("manifests/t5.toml", KNOWN)?;
        assert_eq!(m.crate_name, None);
        assert_eq!(m.tokenizer_class, None);
        assert_eq!(m.implemented().count(), 0);
        Ok(())
    }

    #[test]
    fn rejects_unknown_key() {
        let text = BERT.replace("name = \"BERT\"", "name = \"BERT\"\nnmae = \"typo\"");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["manifests/bert.toml", "unknown field", "nmae"]);
    }

    #[test]
    fn rejects_missing_key() {
        let text = BERT.replace("config_class = \"BertConfig\"\n", "");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["manifests/bert.toml", "config_class"]);
    }

    #[test]
    fn rejects_unknown_task_name() {
        let text = BERT.replace("causal-lm = ", "causal_lm = ");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["manifests/bert.toml", "`[tasks]` key `causal_lm`", "causal-lm"]);
    }

    #[test]
    fn rejects_implemented_not_in_tasks() {
        let text = BERT.replace(
            "implemented = [\"masked-lm\", \"base\"]",
            "implemented = [\"masked-lm\", \"base\", \"question-answering\"]",
        );
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["manifests/bert.toml", "`implemented` entry `question-answering` is not in `[tasks]`"]);

        let text = BERT.replace("\"masked-lm\", \"base\"", "\"masked_lm\"");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`implemented` entry `masked_lm` is not a task name"]);

        let text = BERT.replace("\"masked-lm\", \"base\"", "\"base\", \"base\"");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`implemented` lists `base` twice"]);
    }

    #[test]
    fn rejects_crate_without_feature_and_back() {
        let text = BERT.replace("feature = \"bert\"\n", "");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["manifests/bert.toml", "`crate` is set but `feature` is not"]);

        let text = KNOWN.replace("config_class = \"T5Config\"", "config_class = \"T5Config\"\nfeature = \"t5\"");
        let msg = error("manifests/t5.toml", &text);
        assert_mentions(&msg, &["manifests/t5.toml", "`feature` is set but `crate` is not"]);
    }

    #[test]
    fn rejects_implemented_without_crate_and_crate_without_implemented() {
        let text = KNOWN.replace("[tasks]", "implemented = [\"base\"]\n\n[tasks]");
        let msg = error("manifests/t5.toml", &text);
        assert_mentions(&msg, &["`implemented` is not empty but `crate` is not set"]);

        let text = BERT.replace("implemented = [\"masked-lm\", \"base\"]\n", "");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`crate` is set but `implemented` is empty"]);
    }

    #[test]
    fn rejects_file_name_mismatch() {
        let msg = error("manifests/roberta.toml", BERT);
        assert_mentions(&msg, &["manifests/roberta.toml", "file name must be `bert.toml`"]);
    }

    #[test]
    fn rejects_bad_values() {
        let text = BERT.replace("\"BertForMaskedLM\"", "\"BertFor MaskedLM\"");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`[tasks]` value for `masked-lm`"]);

        let text = BERT.replace(
            "[tasks]\nmasked-lm = \"BertForMaskedLM\"\nbase = \"BertModel\"\ncausal-lm = \"BertLMHeadModel\"\n",
            "[tasks]\n",
        );
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`implemented` entry `masked-lm` is not in `[tasks]`"]);
    }

    #[test]
    fn accepts_known_type_without_tasks() -> Result<()> {
        let text =
            KNOWN.replace("[tasks]\nbase = \"T5Model\"\nseq2seq-lm = \"T5ForConditionalGeneration\"\n", "[tasks]\n");
        let m = parse("manifests/t5.toml", &text)?;
        assert!(m.tasks.is_empty());
        Ok(())
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = BERT.replace("feature = \"bert\"\n", "").replace("causal-lm = ", "causal_lm = ");
        let msg = error("manifests/bert.toml", &text);
        assert_mentions(&msg, &["`feature` is not", "`causal_lm`"]);
    }

    #[test]
    fn profile_goes_with_feature() {
        let text = BERT.replace("profile = \"text\"\n", "");
        assert_mentions(&error("manifests/bert.toml", &text), &["`feature` is set but `profile` is not"]);
        let text = BERT.replace("profile = \"text\"", "profile = \"speech\"");
        assert_mentions(&error("manifests/bert.toml", &text), &["`profile` `speech` is not a profile", "audio"]);
        let text = KNOWN.replace("[tasks]", "profile = \"text\"\n\n[tasks]");
        assert_mentions(&error("manifests/t5.toml", &text), &["`profile` is set but `feature` is not"]);
        let text = BERT.replace("feature = \"bert\"", "feature = \"all\"");
        assert_mentions(&error("manifests/bert.toml", &text), &["`feature` `all` is a feature of autocandle itself"]);
        let roberta = BERT.replace("\"bert\"", "\"roberta\"").replace("feature = \"roberta\"", "feature = \"bert\"");
        let roberta = roberta.replace("profile = \"text\"", "profile = \"vision\"");
        let sources =
            vec![("manifests/bert.toml".to_owned(), BERT.to_owned()), ("manifests/roberta.toml".to_owned(), roberta)];
        assert_mentions(&all_error(&sources), &["feature `bert` is given profile `vision` here but `text`"]);
    }

    #[test]
    fn rejects_duplicate_model_types_and_inconsistent_features() {
        let sources =
            vec![("manifests/bert.toml".to_owned(), BERT.to_owned()), ("other/bert.toml".to_owned(), BERT.to_owned())];
        let msg = all_error(&sources);
        assert_mentions(&msg, &["other/bert.toml: duplicate model type `bert` (also in manifests/bert.toml)"]);

        let roberta = BERT
            .replace("\"bert\"", "\"roberta\"")
            .replace("autocandle-bert", "autocandle-roberta")
            .replace("feature = \"roberta\"", "feature = \"bert\"");
        let sources =
            vec![("manifests/bert.toml".to_owned(), BERT.to_owned()), ("manifests/roberta.toml".to_owned(), roberta)];
        let msg = all_error(&sources);
        assert_mentions(
            &msg,
            &["manifests/roberta.toml: feature `bert` is given crate `autocandle-roberta` here but `autocandle-bert` in manifests/bert.toml"],
        );
    }

    #[test]
    fn sorts_by_model_type_and_groups_features() -> Result<()> {
        let sources = vec![
            ("manifests/t5.toml".to_owned(), KNOWN.to_owned()),
            ("manifests/bert.toml".to_owned(), BERT.to_owned()),
        ];
        let all = parse_all(&sources)?;
        let types: Vec<&str> = all.iter().map(|m| m.model_type.as_str()).collect();
        assert_eq!(types, ["bert", "t5"]);
        let features = features(&all);
        assert_eq!(features.len(), 1);
        assert_eq!(features["bert"], ("autocandle-bert", vec!["bert"]));
        Ok(())
    }

    #[test]
    fn checks_name_patterns() {
        assert!(is_model_type("kosmos-2.5"));
        assert!(is_model_type("gpt_neox"));
        assert!(!is_model_type("Bert"));
        assert!(!is_model_type("-bert"));
        assert!(is_class_name("xLSTMModel"));
        assert!(!is_class_name("2Model"));
        assert!(is_feature_like("autocandle-bert"));
        assert!(!is_feature_like("bert.x"));
    }
}
