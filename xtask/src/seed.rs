//! Parses `transformers`' Auto classes reference page (the v4.x `model_doc/auto` page, in any
//! translation that keeps its Markdown structure) into one [`Imported`] per model type.
//!
//! The page has one section per Auto class (`### `class transformers.AutoModelForMaskedLM``),
//! and in each section the lists the docstrings generate from the Auto mappings:
//!
//! - `from_pretrained`: one row per model type:
//!   `+   `bert` — [BertForMaskedLM](/docs/...) (BERT 模型)`;
//!   for `AutoTokenizer`: `[BertTokenizer](...) 或 [BertTokenizerFast](...)`;
//! - `from_config`: one row per config class:
//!   `+   [BertConfig](/docs/...) 配置类: [BertForMaskedLM](/docs/...) (BERT 模型)`.
//!
//! `AutoConfig`'s list gives every model type with its config class; `AutoTokenizer`'s the
//! tokenizer pair; every PyTorch `AutoModel*` list one task. TensorFlow and Flax lists only
//! contribute display names. The rows are matched by their shape, not by their (translated)
//! wording; whatever cannot be used is reported in [`Import::notes`].

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::import::{task_of_auto_class, Import, Imported};
use crate::manifest::{is_class_name, is_model_type};

/// A row of a list in the page.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Row {
    /// `` `model_type` — [Class](...) ... (Name) ``: a `from_pretrained` list entry.
    ByType { model_type: String, classes: Vec<String>, name: Option<String> },
    /// `[ConfigClass](...) 配置类: [Class](...) (Name)`: a `from_config` list entry.
    ByConfig { config_class: String, class: String },
}

/// One `class transformers.X` section and its rows.
#[derive(Debug)]
struct Section {
    class: String,
    rows: Vec<Row>,
}

/// CJK phrases of the Chinese page's display names, for the few model types that the page
/// names only in Chinese (every other name appears in Latin script in some list).
const TRANSLATIONS: &[(&str, &str)] = &[
    ("音频频谱变换器", "Audio Spectrogram Transformer"),
    ("编码器解码器", "Encoder decoder"),
    ("机器翻译", "Machine-Translation"),
    ("语音", "Speech"),
    ("视觉", "Vision"),
    ("生成", "Generation"),
    ("日语", "Japanese"),
    ("混合", "Hybrid"),
];

/// Parses the Auto classes page `page` (001) and, when given, the page listing the newer
/// Auto classes `newer` (002: class names only, no tables), which is checked against the
/// `Task` table.
pub fn parse(page: &str, newer: Option<&str>) -> Result<Import> {
    let sections = sections(page);
    let mut notes = Vec::new();

    let Some(config) = sections.iter().find(|s| s.class == "AutoConfig") else {
        bail!("no `class transformers.AutoConfig` section: is this transformers' Auto classes page?");
    };
    // model type -> (config class, display-name votes in order of appearance)
    let mut types: BTreeMap<String, Imported> = BTreeMap::new();
    let mut by_config: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &config.rows {
        let Row::ByType { model_type, classes, .. } = row else { continue };
        let Some(config_class) = classes.first() else {
            notes.push(format!("AutoConfig: `{model_type}` has no config class; skipped"));
            continue;
        };
        by_config.entry(config_class.clone()).or_default().push(model_type.clone());
        types.insert(model_type.clone(), Imported::new(model_type, config_class));
    }
    if types.is_empty() {
        bail!("the AutoConfig section lists no model types");
    }

    // Display names: every list that names a model type votes.
    let mut votes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for section in &sections {
        for row in &section.rows {
            if let Row::ByType { model_type, name: Some(name), .. } = row {
                if types.contains_key(model_type) {
                    votes.entry(model_type).or_default().push(name);
                }
            }
        }
    }
    for (model_type, entry) in &mut types {
        let candidates = votes.get(model_type.as_str()).map(Vec::as_slice).unwrap_or_default();
        match choose_name(candidates) {
            Some((name, translated)) => {
                if translated {
                    let mut seen: Vec<&str> = candidates.to_vec();
                    seen.sort_unstable();
                    seen.dedup();
                    notes.push(format!(
                        "`{model_type}`: the page names it only in Chinese ({}); translated to `{name}`",
                        seen.join(", ")
                    ));
                }
                entry.name = name;
            }
            None => notes.push(format!("`{model_type}`: no display name in the page; using `{}`", entry.name)),
        }
    }

    if let Some(tokenizer) = sections.iter().find(|s| s.class == "AutoTokenizer") {
        let mut unknown = Vec::new();
        for row in &tokenizer.rows {
            let Row::ByType { model_type, classes, .. } = row else { continue };
            let Some(entry) = types.get_mut(model_type) else {
                unknown.push(model_type.as_str());
                continue;
            };
            let (slow, fast) = tokenizer_pair(classes);
            entry.tokenizer_class = slow;
            entry.tokenizer_fast_class = fast;
        }
        if !unknown.is_empty() {
            notes.push(format!(
                "AutoTokenizer: {} keys are tokenizer-only names, not model types (no config class), so they get no manifest: {}",
                unknown.len(),
                unknown.join(", ")
            ));
        }
    } else {
        notes.push("no AutoTokenizer section: no tokenizer classes imported".to_owned());
    }

    let mut tabled = BTreeSet::new();
    for section in &sections {
        if !section.class.starts_with("AutoModel") {
            continue;
        }
        let Some(task) = task_of_auto_class(&section.class) else {
            notes.push(format!("{}: no autocandle `Task` for this Auto class; its list is skipped", section.class));
            continue;
        };
        if section.rows.is_empty() {
            notes.push(format!("{}: the page has no list for it (transformers v4.37 documents none)", section.class));
            continue;
        }
        tabled.insert(section.class.clone());
        let mut listed = BTreeSet::new();
        for row in &section.rows {
            let Row::ByType { model_type, classes, .. } = row else { continue };
            let Some(class) = classes.first() else {
                notes.push(format!("{}: `{model_type}` has no class; skipped", section.class));
                continue;
            };
            let Some(entry) = types.get_mut(model_type) else {
                notes.push(format!("{}: `{model_type}` is not an AutoConfig model type; skipped", section.class));
                continue;
            };
            if classes.len() > 1 {
                notes.push(format!(
                    "{}: `{model_type}` lists {}; the first is the one the Auto class instantiates",
                    section.class,
                    classes.join(" / ")
                ));
            }
            entry.tasks.insert(task, class.clone());
            listed.insert(model_type.clone());
        }
        // The `from_config` list is keyed by config class: it can only add a model type whose
        // config class is its own (several types share `GPT2Config` or `LlamaConfig`).
        for row in &section.rows {
            let Row::ByConfig { config_class, class } = row else { continue };
            match by_config.get(config_class).map(Vec::as_slice) {
                Some([model_type]) if !listed.contains(model_type) => {
                    if let Some(entry) = types.get_mut(model_type) {
                        entry.tasks.insert(task, class.clone());
                        notes.push(format!(
                            "{}: `{model_type}` only in the from_config list ({config_class} -> {class})",
                            section.class
                        ));
                    }
                }
                Some([model_type]) => {
                    let pretrained = types.get(model_type).and_then(|e| e.tasks.get(&task));
                    if pretrained.is_some_and(|c| c != class) {
                        notes.push(format!(
                            "{}: `{model_type}` is {} in the from_pretrained list but {class} in the from_config list; kept the first",
                            section.class,
                            pretrained.map_or("", String::as_str)
                        ));
                    }
                }
                Some(_) => {}
                None => notes.push(format!(
                    "{}: from_config list names `{config_class}`, which is no AutoConfig config class; skipped",
                    section.class
                )),
            }
        }
    }

    if let Some(newer) = newer {
        for class in autodoc_classes(newer) {
            if !class.starts_with("AutoModel") {
                continue;
            }
            if task_of_auto_class(&class).is_none() {
                notes.push(format!("newer page: {class} has no autocandle `Task`"));
            } else if !tabled.contains(&class) {
                notes.push(format!(
                    "newer page: {class} has no model type list in the v4 page (the newer page lists classes only), so no seed type gets this task"
                ));
            }
        }
    }

    let empty: Vec<&str> = types.values().filter(|e| e.tasks.is_empty()).map(|e| e.model_type.as_str()).collect();
    if !empty.is_empty() {
        notes.push(format!(
            "{} model types are in no PyTorch AutoModel* list (config-only or backbone-only types); their manifests have an empty [tasks]: {}",
            empty.len(),
            empty.join(", ")
        ));
    }

    Ok(Import { source: source_name(page), types: types.into_values().collect(), notes, has_names: true })
}

/// `transformers v4.37.2 Auto classes reference` from the page's links, for file comments.
fn source_name(page: &str) -> String {
    let version = page
        .split("/docs/transformers/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .filter(|v| v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit() || c == '.') && v.len() > 1);
    match version {
        Some(v) => format!("the transformers {v} Auto classes reference"),
        None => "the transformers Auto classes reference".to_owned(),
    }
}

/// The `AutoX` of every `autodoc AutoX` line (the newer page), in order.
fn autodoc_classes(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|l| l.trim().strip_prefix("autodoc "))
        .map(|c| c.trim().to_owned())
        .filter(|c| is_class_name(c))
        .collect()
}

/// Splits the page into `class transformers.X` sections and parses their list rows.
fn sections(page: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in page.lines() {
        if let Some(class) = section_class(line) {
            out.push(Section { class, rows: Vec::new() });
            continue;
        }
        if let (Some(section), Some(row)) = (out.last_mut(), parse_row(line)) {
            section.rows.push(row);
        }
    }
    out
}

/// `X` of a `### `class transformers.X`` heading.
fn section_class(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix('#')?.trim_start_matches('#').trim();
    let class = rest.strip_prefix("`class transformers.")?.strip_suffix('`')?;
    is_class_name(class).then(|| class.to_owned())
}

/// A list row of either shape, or `None` for any other line (parameters, prose).
fn parse_row(line: &str) -> Option<Row> {
    let rest = line.trim_start().strip_prefix('+')?.trim_start();
    if let Some(after) = rest.strip_prefix('`') {
        // `model_type` — [Class](...)
        let (key, after) = after.split_once('`')?;
        if !is_model_type(key) {
            return None;
        }
        let after = after.trim_start();
        let dashless = after.trim_start_matches(['—', '–', '-']);
        if dashless.len() == after.len() {
            return None; // no dash right after the key: a parameter such as `cache_dir` (`str`) — ...
        }
        let after = dashless.trim_start();
        if !after.starts_with(['[', '`', '(', '（']) {
            return None;
        }
        let (body, name) = split_name(after);
        let classes = class_tokens(body).into_iter().map(|(c, _)| c).collect();
        return Some(Row::ByType { model_type: key.to_owned(), classes, name });
    }
    // [ConfigClass](...) 配置类: [Class](...)
    let tokens = class_tokens(rest);
    let (config_class, end) = tokens.first()?;
    let between = rest[*end..].trim_start();
    let between = ["配置类", "configuration class"].iter().find_map(|p| between.strip_prefix(p))?;
    let between = between.trim_start().strip_prefix([':', '：'])?;
    let (class, _) = class_tokens(between).into_iter().next()?;
    Some(Row::ByConfig { config_class: config_class.clone(), class })
}

/// Splits the trailing display name `(BERT 模型)` / `（BERT模型）` / `(BERT model)` off a row.
fn split_name(text: &str) -> (&str, Option<String>) {
    let trimmed = text.trim_end();
    let Some(close) = trimmed.chars().last().filter(|c| matches!(c, ')' | '）')) else {
        return (text, None);
    };
    // Walk back to the matching opening parenthesis.
    let mut depth = 0usize;
    let mut open = None;
    for (i, c) in trimmed.char_indices().rev() {
        match c {
            ')' | '）' => depth += 1,
            '(' | '（' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(open) = open else { return (text, None) };
    // A link target `(/docs/...)` right after `]` is not a name.
    if trimmed[..open].ends_with(']') {
        return (text, None);
    }
    let open_len = trimmed[open..].chars().next().map_or(1, char::len_utf8);
    let inner = trimmed[open + open_len..trimmed.len() - close.len_utf8()].trim();
    let inner = inner.strip_suffix("模型").or_else(|| inner.strip_suffix(" model")).unwrap_or(inner).trim();
    if inner.is_empty() {
        return (&trimmed[..open], None);
    }
    (&trimmed[..open], Some(inner.to_owned()))
}

/// The class names of `[Class](link)` and `` `Class` `` tokens in `text`, each with the byte
/// offset just past it.
fn class_tokens(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        if c == '[' {
            if let Some((name, after)) = rest[1..].split_once(']') {
                if is_class_name(name) && after.starts_with('(') {
                    if let Some(close) = after.find(')') {
                        let end = i + 1 + name.len() + 1 + close + 1;
                        out.push((name.to_owned(), end));
                        i = end;
                        continue;
                    }
                }
            }
        } else if c == '`' {
            if let Some((name, _)) = rest[1..].split_once('`') {
                if is_class_name(name) {
                    let end = i + name.len() + 2;
                    out.push((name.to_owned(), end));
                    i = end;
                    continue;
                }
            }
        }
        i += c.len_utf8();
    }
    out
}

/// The (slow, fast) pair of an `AutoTokenizer` row: `[A] 或 [AFast]`, `[AFast]` alone (no slow
/// tokenizer), `[A]` alone (no fast one), or nothing.
fn tokenizer_pair(classes: &[String]) -> (Option<String>, Option<String>) {
    match classes {
        [] => (None, None),
        [one] if one.ends_with("Fast") => (None, Some(one.clone())),
        [one] => (Some(one.clone()), None),
        [slow, fast, ..] => (Some(slow.clone()), Some(fast.clone())),
    }
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| matches!(c, '\u{3000}'..='\u{303f}' | '\u{4e00}'..='\u{9fff}' | '\u{ff00}'..='\u{ffef}'))
}

/// The display name among `candidates`: the most frequent one without CJK characters (the
/// first on ties); else the first translated through [`TRANSLATIONS`]. The flag says whether
/// it was translated.
fn choose_name(candidates: &[&str]) -> Option<(String, bool)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &c in candidates.iter().filter(|c| !has_cjk(c)) {
        match counts.iter_mut().find(|(n, _)| *n == c) {
            Some((_, k)) => *k += 1,
            None => counts.push((c, 1)),
        }
    }
    // max_by_key keeps the last maximum; iterate reversed so that the first one wins ties.
    if let Some((name, _)) = counts.iter().rev().max_by_key(|(_, k)| *k) {
        return Some(((*name).to_owned(), false));
    }
    let first = candidates.first()?;
    let mut name = (*first).to_owned();
    for (zh, en) in TRANSLATIONS {
        name = name.replace(zh, &format!(" {en} "));
    }
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    Some((name, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tasks::{position, TASKS};

    const PAGE: &str = "\
# 自动类

> 原始文本：[https://huggingface.co/docs/transformers/v4.37.2/en/model_doc/auto](https://huggingface.co/docs/transformers/v4.37.2/en/model_doc/auto)

### `class transformers.AutoConfig`

+   `pretrained_model_name_or_path` (`str` 或 `os.PathLike`) — 可以是：
    +   一个字符串，`bert-base-uncased`。
+   `kwargs`（附加关键字参数，*可选*）— kwargs中任何键的值

+   `bert` — [BertConfig](/docs/transformers/v4.37.2/en/model_doc/bert#transformers.BertConfig)（BERT模型）
+   `bert-generation` — [BertGenerationConfig](/docs/x#transformers.BertGenerationConfig)（Bert生成模型）
+   `encoder-decoder` — [EncoderDecoderConfig](/docs/x)(编码器解码器模型)
+   `gpt2` — [GPT2Config](/docs/x) (OpenAI GPT-2 模型)
+   `gpt-sw3` — [GPT2Config](/docs/x) (GPT-Sw3 模型)
+   `timm_backbone` — `TimmBackboneConfig` (TimmBackbone 模型)

### `class transformers.AutoTokenizer`

+   `bert` — [BertTokenizer](/docs/x) 或 [BertTokenizerFast](/docs/x) (BERT 模型)
+   `bert-generation` — [BertGenerationTokenizer](/docs/x) (Bert Generation 模型)
+   `bertweet` — [BertweetTokenizer](/docs/x) (BERTweet 模型)
+   `gpt2` — [GPT2TokenizerFast](/docs/x) (OpenAI GPT-2 模型)
+   `timm_backbone` — (TimmBackbone 模型)

### AutoModel

### `class transformers.AutoModel`

+   `config`（[PretrainedConfig](/docs/x)） — 选择要实例化的模型类基于配置类：
    +   [BertConfig](/docs/x) 配置类: [BertModel](/docs/x) (BERT 模型)
    +   [GPT2Config](/docs/x) 配置类: [GPT2Model](/docs/x) (OpenAI GPT-2 模型)
    +   [EncoderDecoderConfig](/docs/x) 配置类：`EncoderDecoderModel`（编码器解码器模型）

+   `bert` — [BertModel](/docs/x) (BERT 模型)
+   `gpt2` — [GPT2Model](/docs/x) (OpenAI GPT-2 模型)
+   `gpt-sw3` — [GPT2Model](/docs/x) (GPT-Sw3 模型)

### `class transformers.TFAutoModel`

+   `bert` — [TFBertModel](/docs/x) (BERT 模型)
+   `bert-generation` — [TFBertGenerationModel](/docs/x) (Bert Generation 模型)

### AutoModelForAudioFrameClassification

### `class transformers.AutoModelForMaskedLM`

+   `bert` — [BertForMaskedLM](/docs/x) (BERT 模型)
+   `bertweet` — [BertForMaskedLM](/docs/x) (BERTweet 模型)

### `class transformers.AutoModelForTextEncoding`

### `class transformers.AutoModelForRNNT`

+   `bert` — [BertForRNNT](/docs/x) (BERT 模型)
";

    fn task(name: &str) -> usize {
        position(name).unwrap_or(usize::MAX)
    }

    fn find<'a>(import: &'a Import, model_type: &str) -> &'a Imported {
        match import.types.iter().find(|t| t.model_type == model_type) {
            Some(t) => t,
            None => panic!("`{model_type}` not imported: {:?}", import.types),
        }
    }

    #[test]
    fn reads_types_config_classes_names_and_tokenizers() -> Result<()> {
        let import = parse(PAGE, None)?;
        let types: Vec<&str> = import.types.iter().map(|t| t.model_type.as_str()).collect();
        assert_eq!(types, ["bert", "bert-generation", "encoder-decoder", "gpt-sw3", "gpt2", "timm_backbone"]);
        assert_eq!(import.source, "the transformers v4.37.2 Auto classes reference");
        let bert = find(&import, "bert");
        assert_eq!((bert.name.as_str(), bert.config_class.as_str()), ("BERT", "BertConfig"));
        assert_eq!(bert.tokenizer_class.as_deref(), Some("BertTokenizer"));
        assert_eq!(bert.tokenizer_fast_class.as_deref(), Some("BertTokenizerFast"));
        let gpt2 = find(&import, "gpt2");
        assert_eq!(
            (gpt2.tokenizer_class.as_deref(), gpt2.tokenizer_fast_class.as_deref()),
            (None, Some("GPT2TokenizerFast"))
        );
        let generation = find(&import, "bert-generation");
        assert_eq!(generation.tokenizer_class.as_deref(), Some("BertGenerationTokenizer"));
        assert_eq!(generation.tokenizer_fast_class, None);
        // Chinese in AutoConfig's list, Latin in the tokenizer and TF lists: the Latin one wins.
        assert_eq!(generation.name, "Bert Generation");
        // Only ever named in Chinese: translated, and said so.
        assert_eq!(find(&import, "encoder-decoder").name, "Encoder decoder");
        assert!(import.notes.iter().any(|n| n.contains("`encoder-decoder`") && n.contains("translated")));
        // A config class without a link.
        assert_eq!(find(&import, "timm_backbone").config_class, "TimmBackboneConfig");
        assert_eq!(find(&import, "timm_backbone").tokenizer_class, None);
        Ok(())
    }

    #[test]
    fn reads_pytorch_tasks_only() -> Result<()> {
        let import = parse(PAGE, None)?;
        let bert = find(&import, "bert");
        let got: Vec<(&str, &str)> = bert.tasks.iter().map(|(t, c)| (TASKS[*t].name, c.as_str())).collect();
        assert_eq!(got, [("base", "BertModel"), ("masked-lm", "BertForMaskedLM")]);
        // Shared config classes are resolved by the from_pretrained list, not the from_config one.
        assert_eq!(find(&import, "gpt-sw3").tasks.get(&task("base")).map(String::as_str), Some("GPT2Model"));
        // A type only in the from_config list (by its own config class) is taken from there.
        assert_eq!(
            find(&import, "encoder-decoder").tasks.get(&task("base")).map(String::as_str),
            Some("EncoderDecoderModel")
        );
        // TF lists give no task.
        assert!(!find(&import, "bert-generation").tasks.contains_key(&task("base")));
        assert!(find(&import, "timm_backbone").tasks.is_empty());
        let notes = import.notes.join("\n");
        assert!(notes.contains("AutoModelForRNNT: no autocandle `Task`"), "{notes}");
        assert!(notes.contains("AutoModelForTextEncoding: the page has no list"), "{notes}");
        assert!(notes.contains("`bertweet` is not an AutoConfig model type"), "{notes}");
        assert!(notes.contains("tokenizer-only names") && notes.contains("bertweet"), "{notes}");
        assert!(notes.contains("empty [tasks]: bert-generation, timm_backbone"), "{notes}");
        Ok(())
    }

    #[test]
    fn newer_page_classes_are_checked_against_tasks() -> Result<()> {
        let newer = "AutoModelForMaskedLM\n\nautodoc AutoModelForMaskedLM\n\nautodoc AutoModelForTDT\n\nautodoc AutoModelForFoo\n\nautodoc AutoTokenizer\n";
        let notes = parse(PAGE, Some(newer))?.notes.join("\n");
        assert!(notes.contains("newer page: AutoModelForTDT has no model type list"), "{notes}");
        assert!(notes.contains("newer page: AutoModelForFoo has no autocandle `Task`"), "{notes}");
        assert!(!notes.contains("AutoModelForMaskedLM has"), "{notes}");
        Ok(())
    }

    #[test]
    fn rows_of_each_shape() {
        assert_eq!(
            parse_row("+   `xlm-roberta` — [XLMRobertaModel](/docs/x#a) (XLM-RoBERTa 模型)"),
            Some(Row::ByType {
                model_type: "xlm-roberta".to_owned(),
                classes: vec!["XLMRobertaModel".to_owned()],
                name: Some("XLM-RoBERTa".to_owned())
            })
        );
        assert_eq!(
            parse_row("    +   [Wav2Vec2Config](/docs/x) 配置类: `Wav2Vec2ForMaskedLM` (Wav2Vec2 模型)"),
            Some(Row::ByConfig { config_class: "Wav2Vec2Config".to_owned(), class: "Wav2Vec2ForMaskedLM".to_owned() })
        );
        assert_eq!(parse_row("+   `cache_dir` (`str` 或 `os.PathLike`, *optional*) — 下载的"), None);
        assert_eq!(parse_row("+   `model_type`（`str`）— 模型类型，如“bert”或“gpt”。"), None);
        assert_eq!(parse_row("+   `config` — 要注册的配置。"), None);
        assert_eq!(parse_row("    +   一个字符串，预训练模型的*模型id*。"), None);
    }

    #[test]
    fn names() {
        assert_eq!(split_name("[A](/x) (Nyströmformer 模型)").1.as_deref(), Some("Nyströmformer"));
        assert_eq!(split_name("[A](/x)（ViT混合模型）").1.as_deref(), Some("ViT混合"));
        assert_eq!(split_name("[A](/x)").1, None);
        assert_eq!(choose_name(&["ViT混合", "ViT Hybrid", "ViT Hybrid"]), Some(("ViT Hybrid".to_owned(), false)));
        assert_eq!(choose_name(&["FairSeq 机器翻译"]), Some(("FairSeq Machine-Translation".to_owned(), true)));
        assert_eq!(choose_name(&["语音编码器解码器"]), Some(("Speech Encoder decoder".to_owned(), true)));
        assert_eq!(choose_name(&["A", "B", "B", "A"]), Some(("A".to_owned(), false)));
        assert_eq!(choose_name(&[]), None);
    }
}
