//! `cargo xtask import-seed` and `cargo xtask import-transformers`: create or update
//! `manifests/<model_type>.toml` from what `transformers` documents (the Auto classes reference
//! page, see `seed.rs`) or defines (its `models/auto/*.py`, see `pysource.rs`).
//!
//! A manifest that does not exist yet is written whole. An existing one is the source of
//! truth: the importer only adds the keys and `[tasks]` entries it lacks, as new lines, and
//! never changes or removes a line, so comments, `crate`, `feature`, `implemented` and every
//! hand edit survive; where the source says something else than the file, the file wins and
//! the difference is reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::gen_mappings::MANIFESTS_DIR;
use crate::manifest;
use crate::tasks::{self, TASKS};

/// The file listing the model types of the imported seed page, relative to the workspace root.
pub const SEED_TYPES_FILE: &str = "manifests/seed-model-types.txt";

/// One model type as a source describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub model_type: String,
    pub name: String,
    pub config_class: String,
    pub tokenizer_class: Option<String>,
    pub tokenizer_fast_class: Option<String>,
    /// Position in [`TASKS`] -> the `transformers` class.
    pub tasks: BTreeMap<usize, String>,
}

impl Imported {
    /// A model type with only its config class; the name defaults to the config class
    /// without `Config` until a source gives a better one.
    pub fn new(model_type: &str, config_class: &str) -> Self {
        Self {
            model_type: model_type.to_owned(),
            name: config_class.strip_suffix("Config").filter(|n| !n.is_empty()).unwrap_or(config_class).to_owned(),
            config_class: config_class.to_owned(),
            tokenizer_class: None,
            tokenizer_fast_class: None,
            tasks: BTreeMap::new(),
        }
    }
}

/// What a source yields.
#[derive(Debug, Clone)]
pub struct Import {
    /// Where it comes from, for the comment of new manifests (`the transformers v4.37.2 ...`).
    pub source: String,
    /// Sorted by `model_type`.
    pub types: Vec<Imported>,
    /// What could not be used or needed a decision, one line each.
    pub notes: Vec<String>,
    /// Whether the source gives display names; when not, `name` is derived from the config
    /// class for new manifests and never compared with an existing one.
    pub has_names: bool,
}

/// The position in [`TASKS`] of the task an Auto model class selects: `AutoModel` is `base`,
/// `AutoModelForX` the task whose `Task` variant is `X` (ignoring case: `CausalLM`, `CTC`).
pub fn task_of_auto_class(class: &str) -> Option<usize> {
    if class == "AutoModel" {
        return tasks::position("base");
    }
    let rest = class.strip_prefix("AutoModelFor")?;
    TASKS.iter().position(|t| t.variant.eq_ignore_ascii_case(rest))
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The text of a new manifest for `t`.
pub fn render_new(t: &Imported, source: &str) -> String {
    let mut s = String::new();
    s.push_str("# One model type of `transformers`; schema in manifests/README.md.\n");
    let _ = writeln!(s, "# Imported from {source}.");
    let _ = writeln!(s, "model_type = {}", quote(&t.model_type));
    let _ = writeln!(s, "name = {}", quote(&t.name));
    let _ = writeln!(s, "config_class = {}", quote(&t.config_class));
    if let Some(c) = &t.tokenizer_class {
        let _ = writeln!(s, "tokenizer_class = {}", quote(c));
    }
    if let Some(c) = &t.tokenizer_fast_class {
        let _ = writeln!(s, "tokenizer_fast_class = {}", quote(c));
    }
    s.push_str("\n[tasks]\n");
    for (pos, class) in &t.tasks {
        let _ = writeln!(s, "{} = {}", TASKS[*pos].name, quote(class));
    }
    s
}

/// The result of merging a source's view of a model type into its existing manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The new text (equal to the old one when nothing was added).
    pub text: String,
    /// `key = value` lines added.
    pub added: Vec<String>,
    /// Where the file and the source differ (the file's value is kept).
    pub kept: Vec<String>,
}

/// Adds to `existing` (the text of `file`) the keys and tasks of `t` that it lacks; see the
/// module documentation. `with_name`: whether `t.name` comes from the source (else it is a
/// placeholder and is left out).
pub fn merge(file: &str, existing: &str, t: &Imported, with_name: bool) -> Result<Merged> {
    let doc: toml::Table = toml::from_str(existing).map_err(|e| anyhow!("{file}: {}", e.to_string().trim_end()))?;
    let mut lines: Vec<String> = existing.lines().map(str::to_owned).collect();
    let mut added = Vec::new();
    let mut kept = Vec::new();

    let mut compare = |key: &str, have: Option<&toml::Value>, want: &str, new_lines: &mut Vec<String>| match have {
        Some(v) if v.as_str() == Some(want) => {}
        Some(v) => kept.push(format!("{key} = {v} (source: {})", quote(want))),
        None => new_lines.push(format!("{key} = {}", quote(want))),
    };

    let mut top = Vec::new();
    for (key, want) in [
        ("name", Some(&t.name).filter(|_| with_name)),
        ("config_class", Some(&t.config_class)),
        ("tokenizer_class", t.tokenizer_class.as_ref()),
        ("tokenizer_fast_class", t.tokenizer_fast_class.as_ref()),
    ] {
        if let Some(want) = want {
            compare(key, doc.get(key), want, &mut top);
        }
    }
    let have_tasks = doc.get("tasks").and_then(toml::Value::as_table);
    let mut task_lines = Vec::new();
    for (pos, class) in &t.tasks {
        let name = TASKS[*pos].name;
        compare(&format!("tasks.{name}"), have_tasks.and_then(|tt| tt.get(name)), class, &mut task_lines);
    }
    // `compare` pushed `tasks.x = ...`; the lines in the file are `x = ...`.
    let task_lines: Vec<String> =
        task_lines.into_iter().map(|l| l.strip_prefix("tasks.").map(str::to_owned).unwrap_or(l)).collect();

    if !top.is_empty() {
        // Before `crate`/`feature`/`implemented` or the first table, else at the end.
        let at = lines
            .iter()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with('[')
                    || ["crate", "feature", "profile", "implemented"]
                        .iter()
                        .any(|k| l.strip_prefix(k).is_some_and(|rest| rest.trim_start().starts_with('=')))
            })
            .unwrap_or(lines.len());
        // Keep a blank line before a table header.
        let at = if at > 0 && at < lines.len() && lines[at - 1].trim().is_empty() { at - 1 } else { at };
        added.extend(top.iter().cloned());
        lines.splice(at..at, top);
    }
    if !task_lines.is_empty() {
        added.extend(task_lines.iter().map(|l| format!("[tasks] {l}")));
        match lines.iter().position(|l| l.trim() == "[tasks]") {
            Some(header) => {
                let mut end = lines[header + 1..]
                    .iter()
                    .position(|l| l.trim_start().starts_with('['))
                    .map_or(lines.len(), |i| header + 1 + i);
                while end > header + 1 && lines[end - 1].trim().is_empty() {
                    end -= 1;
                }
                lines.splice(end..end, task_lines);
            }
            None => {
                lines.push(String::new());
                lines.push("[tasks]".to_owned());
                lines.extend(task_lines);
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if added.is_empty() {
        text = existing.to_owned();
    }
    Ok(Merged { text, added, kept })
}

/// The model types of a list file: one per line, `#` comments and blank lines ignored.
pub fn read_type_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The text of [`SEED_TYPES_FILE`] for `import`.
fn render_type_list(import: &Import) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# The model types of {}, written by `cargo xtask import-seed`.", import.source);
    s.push_str("# Each has a manifest: `cargo xtask gen-mappings` and tests/catalog.rs check it.\n");
    for t in &import.types {
        s.push_str(&t.model_type);
        s.push('\n');
    }
    s
}

/// Writes (or, with `dry_run`, only reports) the manifests of `import`; with `list`, also
/// the list of imported model types in [`SEED_TYPES_FILE`].
pub fn apply(root: &Path, import: &Import, list: bool, dry_run: bool) -> Result<()> {
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut unchanged = 0usize;
    let mut kept = Vec::new();
    for t in &import.types {
        let file = format!("{MANIFESTS_DIR}/{}.toml", t.model_type);
        let path = root.join(&file);
        let text = match std::fs::read_to_string(&path) {
            Ok(existing) => {
                let merged = merge(&file, &existing, t, import.has_names)?;
                kept.extend(merged.kept.iter().map(|k| format!("{file}: kept {k}")));
                if merged.added.is_empty() {
                    unchanged += 1;
                    continue;
                }
                updated.push(format!("{file}: added {}", merged.added.join("; ")));
                merged.text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                created.push(file.clone());
                render_new(t, &import.source)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {file}")),
        };
        if !dry_run {
            std::fs::write(&path, text).with_context(|| format!("writing {file}"))?;
        }
    }
    if list && !dry_run {
        std::fs::write(root.join(SEED_TYPES_FILE), render_type_list(import))
            .with_context(|| format!("writing {SEED_TYPES_FILE}"))?;
    }

    let verb = if dry_run { "would be " } else { "" };
    println!("{} model types read from {}", import.types.len(), import.source);
    for line in &created {
        println!("  {verb}created {line}");
    }
    for line in &updated {
        println!("  {verb}updated {line}");
    }
    for line in &kept {
        println!("  {line}");
    }
    println!(
        "{} {verb}created, {} {verb}updated, {unchanged} unchanged, {} differences kept",
        created.len(),
        updated.len(),
        kept.len()
    );
    if list {
        println!("{} {SEED_TYPES_FILE}", if dry_run { "would write" } else { "wrote" });
    }
    if !import.notes.is_empty() {
        println!("notes ({}):", import.notes.len());
        for note in &import.notes {
            println!("  - {note}");
        }
    }
    if !dry_run {
        manifest::load_dir(root, MANIFESTS_DIR).context("the manifests do not validate after the import")?;
        println!("manifests validate; run `cargo xtask gen-mappings` to regenerate the derived files");
    }
    Ok(())
}

/// `cargo xtask import-seed <page> [<newer page>] [--dry-run]`.
pub fn import_seed(root: &Path, args: &[&str]) -> Result<()> {
    let dry_run = args.contains(&"--dry-run");
    let paths: Vec<&str> = args.iter().copied().filter(|a| *a != "--dry-run").collect();
    let (page, newer) = match paths.as_slice() {
        [page] => (*page, None),
        [page, newer] => (*page, Some(*newer)),
        _ => bail!("usage: cargo xtask import-seed <auto-classes page> [<newer auto-classes page>] [--dry-run]"),
    };
    let read = |p: &str| std::fs::read_to_string(p).with_context(|| format!("reading {p}"));
    let page = read(page)?;
    let newer = newer.map(read).transpose()?;
    let import = crate::seed::parse(&page, newer.as_deref())?;
    apply(root, &import, true, dry_run)
}

/// `cargo xtask import-transformers <transformers/models/auto> <model_type>... [--dry-run]`.
pub fn import_transformers(root: &Path, args: &[&str]) -> Result<()> {
    let dry_run = args.contains(&"--dry-run");
    let rest: Vec<&str> = args.iter().copied().filter(|a| *a != "--dry-run").collect();
    let [dir, types @ ..] = rest.as_slice() else {
        bail!("usage: cargo xtask import-transformers <path to transformers/models/auto> <model_type>... [--dry-run]");
    };
    if types.is_empty() {
        bail!("name the model types to import, e.g. `qwen3_moe gemma3`");
    }
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let import = crate::pysource::parse_dir(Path::new(dir), &types)?;
    apply(root, &import, false, dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Imported {
        let mut t = Imported::new("bert", "BertConfig");
        t.name = "BERT".to_owned();
        t.tokenizer_class = Some("BertTokenizer".to_owned());
        t.tokenizer_fast_class = Some("BertTokenizerFast".to_owned());
        for (task, class) in [("masked-lm", "BertForMaskedLM"), ("base", "BertModel"), ("causal-lm", "BertLMHeadModel")]
        {
            t.tasks.insert(tasks::position(task).unwrap_or(usize::MAX), class.to_owned());
        }
        t
    }

    #[test]
    fn auto_classes_map_to_tasks() {
        let name = |c: &str| task_of_auto_class(c).map(|p| TASKS[p].name);
        assert_eq!(name("AutoModel"), Some("base"));
        assert_eq!(name("AutoModelForCausalLM"), Some("causal-lm"));
        assert_eq!(name("AutoModelForCTC"), Some("ctc"));
        assert_eq!(name("AutoModelForTDT"), Some("tdt"));
        assert_eq!(name("AutoModelForSpeechSeq2Seq"), Some("speech-seq2seq"));
        assert_eq!(name("AutoModelForVision2Seq"), Some("vision2seq"));
        assert_eq!(name("AutoModelForAudioXVector"), Some("audio-xvector"));
        assert_eq!(name("AutoModelForRNNT"), None);
        assert_eq!(name("AutoTokenizer"), None);
    }

    #[test]
    fn new_manifest_is_valid_and_ordered() -> Result<()> {
        let text = render_new(&sample(), "a test");
        let m = manifest::parse("manifests/bert.toml", &text)?;
        assert_eq!(m.name, "BERT");
        let tasks: Vec<&str> = m.tasks.iter().map(|t| t.task.name).collect();
        assert_eq!(tasks, ["base", "causal-lm", "masked-lm"]);
        assert!(text.contains("# Imported from a test.\n"));
        assert!(text.find("base =") < text.find("causal-lm ="));
        Ok(())
    }

    #[test]
    fn merge_adds_missing_lines_and_keeps_everything_else() -> Result<()> {
        let existing = "\
# One model type; a hand-written comment.
model_type = \"bert\"
name = \"Bert (hand-edited)\"
config_class = \"BertConfig\"
crate = \"autocandle-bert\"
feature = \"bert\"
profile = \"text\"
implemented = [\"base\"]

[tasks]
# the base model
base = \"MyBertModel\"
text-encoding = \"BertModel\"
";
        let merged = merge("manifests/bert.toml", existing, &sample(), true)?;
        assert_eq!(
            merged.text,
            "\
# One model type; a hand-written comment.
model_type = \"bert\"
name = \"Bert (hand-edited)\"
config_class = \"BertConfig\"
tokenizer_class = \"BertTokenizer\"
tokenizer_fast_class = \"BertTokenizerFast\"
crate = \"autocandle-bert\"
feature = \"bert\"
profile = \"text\"
implemented = [\"base\"]

[tasks]
# the base model
base = \"MyBertModel\"
text-encoding = \"BertModel\"
causal-lm = \"BertLMHeadModel\"
masked-lm = \"BertForMaskedLM\"
"
        );
        assert_eq!(
            merged.kept,
            [
                "name = \"Bert (hand-edited)\" (source: \"BERT\")",
                "tasks.base = \"MyBertModel\" (source: \"BertModel\")"
            ]
        );
        assert_eq!(merged.added.len(), 4);
        manifest::parse("manifests/bert.toml", &merged.text)?;

        // A source without display names does not compare them.
        let unnamed = merge("manifests/bert.toml", existing, &sample(), false)?;
        assert_eq!(unnamed.kept, ["tasks.base = \"MyBertModel\" (source: \"BertModel\")"]);

        // Merging again changes nothing: the importer is idempotent.
        let again = merge("manifests/bert.toml", &merged.text, &sample(), true)?;
        assert!(again.added.is_empty());
        assert_eq!(again.text, merged.text);
        Ok(())
    }

    #[test]
    fn merge_into_a_manifest_without_tasks_table_and_with_a_later_table() -> Result<()> {
        let existing = "model_type = \"bert\"\nname = \"BERT\"\nconfig_class = \"BertConfig\"\n";
        let merged = merge("manifests/bert.toml", existing, &sample(), true)?;
        assert!(merged.text.ends_with(
            "\n[tasks]\nbase = \"BertModel\"\ncausal-lm = \"BertLMHeadModel\"\nmasked-lm = \"BertForMaskedLM\"\n"
        ));
        assert!(merged.text.contains("config_class = \"BertConfig\"\ntokenizer_class = \"BertTokenizer\"\n"));

        let existing = "model_type = \"bert\"\nname = \"BERT\"\nconfig_class = \"BertConfig\"\n\n[tasks]\nbase = \"BertModel\"\n\n[extra]\nx = 1\n";
        let merged = merge("manifests/bert.toml", existing, &sample(), true)?;
        assert!(merged.text.contains("[tasks]\nbase = \"BertModel\"\ncausal-lm = \"BertLMHeadModel\"\nmasked-lm = \"BertForMaskedLM\"\n\n[extra]"), "{}", merged.text);
        assert!(merge("manifests/bert.toml", "model_type = ", &sample(), true).is_err());
        Ok(())
    }

    #[test]
    fn type_lists() {
        assert_eq!(read_type_list("# header\nbert\n\n  gpt2  # comment\n"), ["bert", "gpt2"]);
    }
}
