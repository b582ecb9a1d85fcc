//! Reads the Auto mappings out of `transformers`' own source, `transformers/models/auto/*.py`
//! (as installed by pip; written for 5.x), without running Python.
//!
//! It reads the literal tables (`CONFIG_MAPPING_NAMES = OrderedDict([("bert", "BertConfig"), ...])`,
//! `MODEL_FOR_MASKED_LM_MAPPING_NAMES`, `TOKENIZER_MAPPING_NAMES`, ...), the
//! `X_MAPPING = _LazyAutoMapping(CONFIG_MAPPING_NAMES, X_MAPPING_NAMES)` assignments, and the
//! `class AutoModelForX(...): _model_mapping = X_MAPPING` definitions, so that each Auto class
//! gets the table it really uses (`AutoModelForSeq2SeqLM` uses
//! `MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::import::{task_of_auto_class, Import, Imported};

/// One entry of a literal table: its key, its string values, and its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    values: Vec<String>,
    raw: String,
}

/// Everything read from the source files.
#[derive(Debug, Default)]
struct Source {
    /// Table name -> entries, in source order (an `update` appends).
    tables: BTreeMap<String, Vec<Entry>>,
    /// Table name -> the tables spliced into it (`*list(OTHER_MAPPING_NAMES.items())`).
    includes: BTreeMap<String, Vec<String>>,
    /// `X_MAPPING` -> `X_MAPPING_NAMES`.
    lazy: BTreeMap<String, String>,
    /// Auto model class -> `X_MAPPING`, in source order.
    classes: Vec<(String, String)>,
}

impl Source {
    /// The entry of `key` in `table`, or in a table spliced into it.
    fn entry(&self, table: &str, key: &str) -> Option<&Entry> {
        self.entry_within(table, key, 0)
    }

    fn entry_within(&self, table: &str, key: &str, depth: usize) -> Option<&Entry> {
        // Python keeps the last duplicate; the table's own rows follow its splices.
        if let Some(e) = self.tables.get(table).and_then(|t| t.iter().rev().find(|e| e.key == key)) {
            return Some(e);
        }
        if depth > 8 {
            return None; // a cycle; transformers has none
        }
        self.includes.get(table)?.iter().rev().find_map(|inner| self.entry_within(inner, key, depth + 1))
    }
}

/// Reads every `*.py` of `dir` and imports the model types `types`.
pub fn parse_dir(dir: &Path, types: &[String]) -> Result<Import> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "py") {
            files.push(path);
        }
    }
    files.sort();
    let mut texts = Vec::new();
    for path in &files {
        texts.push(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let version = dir
        .parent()
        .and_then(Path::parent)
        .and_then(|t| std::fs::read_to_string(t.join("__init__.py")).ok())
        .and_then(|init| version_of(&init));
    let source = match version {
        Some(v) => format!("transformers {v} (`models/auto/modeling_auto.py` and friends)"),
        None => format!("the transformers source in {}", dir.display()),
    };
    import(&texts.iter().map(String::as_str).collect::<Vec<_>>(), types, source)
}

/// `5.23.0` from `__version__ = "5.23.0"`.
fn version_of(init: &str) -> Option<String> {
    init.lines().find_map(|l| {
        l.trim()
            .strip_prefix("__version__")?
            .trim()
            .strip_prefix('=')?
            .trim()
            .strip_prefix('"')?
            .split('"')
            .next()
            .map(str::to_owned)
    })
}

/// Imports `types` from the source texts `files`.
fn import(files: &[&str], types: &[String], source_name: String) -> Result<Import> {
    let mut source = Source::default();
    for text in files {
        read_file(text, &mut source);
    }
    if !source.tables.contains_key("CONFIG_MAPPING_NAMES") {
        bail!("no `CONFIG_MAPPING_NAMES` table: is this transformers' `models/auto` folder?");
    }
    let mut notes = Vec::new();
    // Auto class -> (task, names table).
    let mut task_tables: Vec<(String, usize, String)> = Vec::new();
    for (class, mapping) in &source.classes {
        let Some(table) = source.lazy.get(mapping) else {
            notes.push(format!("{class}: `{mapping}` is not a `_LazyAutoMapping(CONFIG_MAPPING_NAMES, ...)`; skipped"));
            continue;
        };
        match task_of_auto_class(class) {
            Some(task) => task_tables.push((class.clone(), task, table.clone())),
            None => {
                for t in types {
                    if source.entry(table, t).is_some() {
                        notes.push(format!("`{t}`: {class} has it, but autocandle has no `Task` for {class}"));
                    }
                }
            }
        }
    }

    let mut out = Vec::new();
    let mut derived_names = Vec::new();
    for model_type in types {
        let Some(config) = source.entry("CONFIG_MAPPING_NAMES", model_type) else {
            bail!("`{model_type}` is not in CONFIG_MAPPING_NAMES of this transformers source");
        };
        let Some(config_class) = config.values.first() else {
            bail!("`{model_type}` has no config class in CONFIG_MAPPING_NAMES");
        };
        let mut t = Imported::new(model_type, config_class);
        derived_names.push(format!("{model_type} -> {}", t.name));
        for (class, task, table) in &task_tables {
            let Some(entry) = source.entry(table, model_type) else { continue };
            let Some(first) = entry.values.first() else { continue };
            if let Some(previous) = t.tasks.get(task) {
                if previous != first {
                    notes.push(format!("`{model_type}`: two Auto classes give {class}'s task; kept {previous}"));
                }
                continue;
            }
            t.tasks.insert(*task, first.clone());
        }
        if let Some(entry) = source.entry("TOKENIZER_MAPPING_NAMES", model_type) {
            match entry.values.first().map(String::as_str) {
                None => {}
                Some("TokenizersBackend") => {
                    t.tokenizer_fast_class = Some("PreTrainedTokenizerFast".to_owned());
                    notes.push(format!(
                        "`{model_type}`: tokenizer `TokenizersBackend` (any tokenizer.json) recorded as the fast `PreTrainedTokenizerFast`"
                    ));
                }
                // Backed by `tokenizers`: transformers 4.x called this pair `X` / `XFast`.
                Some(class) if entry.raw.contains("is_tokenizers_available") => {
                    t.tokenizer_class = Some(class.to_owned());
                    t.tokenizer_fast_class = Some(format!("{class}Fast"));
                }
                Some(class) => t.tokenizer_class = Some(class.to_owned()),
            }
        }
        if t.tasks.is_empty() {
            notes.push(format!("`{model_type}`: in no AutoModel* table that autocandle has a `Task` for"));
        }
        out.push(t);
    }
    notes.push(format!(
        "this source has no display names; named after the config class (edit `name` in the manifest): {}",
        derived_names.join(", ")
    ));
    out.sort_by(|a, b| a.model_type.cmp(&b.model_type));
    Ok(Import { source: source_name, types: out, notes, has_names: false })
}

/// Reads the tables, lazy mappings and Auto classes of one file into `source`.
fn read_file(text: &str, source: &mut Source) {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        // NAME = OrderedDict(...)  /  NAME = OrderedDict[str, str | None](...)
        if let Some((name, rhs)) = assignment(trimmed) {
            if let Some(rest) = rhs.strip_prefix("OrderedDict") {
                let at = start + line.find("OrderedDict").unwrap_or(0) + "OrderedDict".len();
                let generic = if rest.starts_with('[') { group_end(text, at).map_or(0, |e| e + 1 - at) } else { 0 };
                let open = at + generic;
                if text[open..].starts_with('(') {
                    if let Some(close) = group_end(text, open) {
                        let (entries, includes) = tuples(&text[open + 1..close]);
                        source.tables.entry(name.to_owned()).or_default().extend(entries);
                        source.includes.entry(name.to_owned()).or_default().extend(includes);
                    }
                }
                continue;
            }
            if let Some(args) = rhs.strip_prefix("_LazyAutoMapping") {
                let open = start + line.find("_LazyAutoMapping").unwrap_or(0) + "_LazyAutoMapping".len();
                if args.starts_with('(') {
                    if let Some(close) = group_end(text, open) {
                        let args: Vec<&str> = text[open + 1..close].split(',').map(str::trim).collect();
                        if let [config, names, ..] = args.as_slice() {
                            if *config == "CONFIG_MAPPING_NAMES" {
                                source.lazy.insert(name.to_owned(), (*names).to_owned());
                            }
                        }
                    }
                }
                continue;
            }
        }
        // NAME.update({...}) or NAME.update([...])
        if let Some((name, _)) = trimmed.split_once(".update(") {
            if is_constant(name) {
                let open = start + line.find(".update(").unwrap_or(0) + ".update".len();
                if let Some(close) = group_end(text, open) {
                    let strings = strings(&text[open + 1..close]);
                    let entries = strings.chunks(2).filter(|p| p.len() == 2).map(|p| Entry {
                        key: p[0].clone(),
                        values: vec![p[1].clone()],
                        raw: format!("{:?}: {:?}", p[0], p[1]),
                    });
                    source.tables.entry(name.to_owned()).or_default().extend(entries);
                }
            }
            continue;
        }
        // class AutoModelForX(_BaseAutoModelClass):
        //     _model_mapping = X_MAPPING
        if let Some(rest) = trimmed.strip_prefix("class AutoModel") {
            let class = format!("AutoModel{}", rest.split(['(', ':']).next().unwrap_or(""));
            for next in lines.clone().take(4) {
                if let Some(mapping) = next.trim().strip_prefix("_model_mapping") {
                    let mapping = mapping.trim().trim_start_matches('=').trim();
                    source.classes.push((class.clone(), mapping.to_owned()));
                    break;
                }
            }
        }
    }
}

/// `(NAME, rhs)` of `NAME = rhs` where NAME is an upper-case constant.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, rhs) = line.split_once('=')?;
    let name = name.trim();
    let name = name.split(':').next().unwrap_or(name).trim(); // NAME: type = ...
    (is_constant(name) && !rhs.starts_with('=')).then(|| (name, rhs.trim()))
}

fn is_constant(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The byte index of the bracket closing the one at `open`, skipping strings and comments.
fn group_end(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => i = string_end(bytes, i)?,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string literal that opens at `open`.
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b if b == quote => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The string literals of `text`, in order (comments skipped).
fn strings(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let Some(end) = string_end(bytes, i) else { break };
                out.push(text[i + 1..end].to_owned());
                i = end;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The `("key", value...)` tuples directly inside the list of an `OrderedDict([...])` body,
/// and the tables spliced into that list (`*list(OTHER_MAPPING_NAMES.items())`).
fn tuples(body: &str) -> (Vec<Entry>, Vec<String>) {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut includes = Vec::new();
    let mut stack: Vec<u8> = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => match string_end(bytes, i) {
                Some(end) => i = end,
                None => break,
            },
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'*' if stack.as_slice() == [b'['] => {
                let rest = body[i..].trim_start_matches('*').trim_start();
                let rest = rest.strip_prefix("list(").unwrap_or(rest).trim_start();
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if is_constant(&name) {
                    includes.push(name);
                }
            }
            b @ (b'(' | b'[' | b'{') => {
                if b == b'(' && stack.as_slice() == [b'['] {
                    start = Some(i);
                }
                stack.push(b);
            }
            b')' | b']' | b'}' => {
                stack.pop();
                if let (Some(s), [b'[']) = (start, stack.as_slice()) {
                    let raw = &body[s..=i];
                    let mut values = strings(raw);
                    if !values.is_empty() {
                        let key = values.remove(0);
                        out.push(Entry { key, values, raw: raw.to_owned() });
                    }
                    start = None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (out, includes)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tasks::{position, TASKS};

    const AUTO_MAPPINGS: &str = r#"
from collections import OrderedDict

CONFIG_MAPPING_NAMES = OrderedDict(
    [
        ("bert", "BertConfig"),  # a comment with "quotes"
        ("qwen3_moe", "Qwen3MoeConfig"),
        ("olmo2", "Olmo2Config"),
    ]
)
"#;

    const CONFIGURATION_AUTO: &str = r#"
CONFIG_MAPPING_NAMES.update(
    {
        "mlcd": "MLCDVisionConfig",
    }
)
CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
"#;

    const MODELING_AUTO: &str = r#"
MODEL_MAPPING_NAMES = OrderedDict(
    [
        # Base model mapping
        ("bert", "BertModel"),
        ("funnel", ("FunnelModel", "FunnelBaseModel")),
        ("qwen3_moe", "Qwen3MoeModel"),
    ]
)

MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES = OrderedDict(
    [
        (
            "qwen3_moe",
            "Qwen3MoeForSeq2Seq",
        ),
    ]
)

MODEL_FOR_RNNT_MAPPING_NAMES = OrderedDict([("qwen3_moe", "Qwen3MoeForRNNT")])

MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES = OrderedDict(
    [
        *list(MODEL_MAPPING_NAMES.items()),
        ("olmo2", "Olmo2ForMultimodalLM"),
    ]
)
MODEL_FOR_MULTIMODAL_LM_MAPPING = _LazyAutoMapping(CONFIG_MAPPING_NAMES, MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES)

MODEL_MAPPING = _LazyAutoMapping(CONFIG_MAPPING_NAMES, MODEL_MAPPING_NAMES)
MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING = _LazyAutoMapping(
    CONFIG_MAPPING_NAMES, MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
)
MODEL_FOR_RNNT_MAPPING = _LazyAutoMapping(CONFIG_MAPPING_NAMES, MODEL_FOR_RNNT_MAPPING_NAMES)


class AutoModel(_BaseAutoModelClass):
    _model_mapping = MODEL_MAPPING


class AutoModelForSeq2SeqLM(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING


class AutoModelForRNNT(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_RNNT_MAPPING


class AutoModelForMultimodalLM(_BaseAutoModelClass):
    _model_mapping = MODEL_FOR_MULTIMODAL_LM_MAPPING
"#;

    const TOKENIZATION_AUTO: &str = r#"
TOKENIZER_MAPPING_NAMES = OrderedDict[str, str | None](
    [
        ("bert", "BertTokenizer" if is_tokenizers_available() else None),
        ("olmo2", "TokenizersBackend" if is_tokenizers_available() else None),
        ("qwen3_moe", "Qwen2Tokenizer" if is_tokenizers_available() else None),
        ("byt5", "ByT5Tokenizer"),
    ]
)
"#;

    fn files() -> Vec<&'static str> {
        vec![AUTO_MAPPINGS, CONFIGURATION_AUTO, MODELING_AUTO, TOKENIZATION_AUTO]
    }

    fn types(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn reads_tables_lazy_mappings_and_classes() {
        let mut source = Source::default();
        for f in files() {
            read_file(f, &mut source);
        }
        let keys: Vec<&str> = source.tables["CONFIG_MAPPING_NAMES"].iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["bert", "qwen3_moe", "olmo2", "mlcd"]);
        assert_eq!(
            source.entry("MODEL_MAPPING_NAMES", "funnel").map(|e| e.values.clone()),
            Some(types(&["FunnelModel", "FunnelBaseModel"]))
        );
        assert_eq!(
            source.lazy["MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING"],
            "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"
        );
        assert_eq!(
            source.classes,
            [
                ("AutoModel".to_owned(), "MODEL_MAPPING".to_owned()),
                ("AutoModelForSeq2SeqLM".to_owned(), "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING".to_owned()),
                ("AutoModelForRNNT".to_owned(), "MODEL_FOR_RNNT_MAPPING".to_owned()),
                ("AutoModelForMultimodalLM".to_owned(), "MODEL_FOR_MULTIMODAL_LM_MAPPING".to_owned()),
            ]
        );
        assert_eq!(source.includes["MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES"], ["MODEL_MAPPING_NAMES"]);
    }

    #[test]
    fn imports_types_with_tasks_and_tokenizers() -> Result<()> {
        let got = import(&files(), &types(&["qwen3_moe", "olmo2", "mlcd"]), "test".to_owned())?;
        let q = &got.types[2];
        assert_eq!(
            (q.model_type.as_str(), q.config_class.as_str(), q.name.as_str()),
            ("qwen3_moe", "Qwen3MoeConfig", "Qwen3Moe")
        );
        let tasks: Vec<(&str, &str)> = q.tasks.iter().map(|(t, c)| (TASKS[*t].name, c.as_str())).collect();
        assert_eq!(
            tasks,
            [("base", "Qwen3MoeModel"), ("seq2seq-lm", "Qwen3MoeForSeq2Seq"), ("multimodal-lm", "Qwen3MoeModel")]
        );
        assert_eq!(
            (q.tokenizer_class.as_deref(), q.tokenizer_fast_class.as_deref()),
            (Some("Qwen2Tokenizer"), Some("Qwen2TokenizerFast"))
        );
        let olmo2 = &got.types[1];
        assert_eq!(
            (olmo2.tokenizer_class.as_deref(), olmo2.tokenizer_fast_class.as_deref()),
            (None, Some("PreTrainedTokenizerFast"))
        );
        assert_eq!(got.types[0].config_class, "MLCDVisionConfig");
        let notes = got.notes.join("\n");
        assert!(notes.contains("`qwen3_moe`: AutoModelForRNNT has it, but autocandle has no `Task`"), "{notes}");
        assert_eq!(got.types[1].tasks.values().collect::<Vec<_>>(), ["Olmo2ForMultimodalLM"]);
        assert!(position("seq2seq-lm").is_some());
        assert!(import(&files(), &types(&["nope"]), "test".to_owned()).is_err());
        Ok(())
    }

    #[test]
    fn versions_and_scanning_helpers() {
        assert_eq!(version_of("x = 1\n__version__ = \"5.23.0\"\n").as_deref(), Some("5.23.0"));
        assert_eq!(strings(r#"("a", 'b' if x else None)  # "c""#), ["a", "b"]);
        assert_eq!(group_end("f(a, (b), \")\")", 1), Some(13));
        assert_eq!(assignment("NAME: dict = OrderedDict("), Some(("NAME", "OrderedDict(")));
        assert_eq!(assignment("name = 1"), None);
    }
}
