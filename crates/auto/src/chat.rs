//! Chat templates: `apply_chat_template` renders a tokenizer's Jinja `chat_template` with
//! minijinja the way `transformers` renders it with jinja2 (`utils/chat_template_utils.py`):
//! `trim_blocks` and `lstrip_blocks` on, loop controls, Python string methods (minijinja's
//! `pycompat`), and `transformers`' globals `raise_exception`, `strftime_now` and its `tojson`
//! filter (Python's `json.dumps`, no HTML escaping).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, Result};
use minijinja::value::{Kwargs, Rest, Value as JValue, ValueKind, ValueOrKwargs};
use minijinja::{Environment, ErrorKind};
use serde_json::{Map, Value};

/// One chat message: a role, its content, and any other fields a template may read
/// (`tool_calls`, `reasoning_content`, `name`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, or any role the template knows.
    pub role: String,
    /// A string, or a list of content blocks (`{"type": "text", "text": ...}`).
    pub content: Value,
    /// Further fields, in order.
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message with `role` and `content` (a string, or any JSON such as content blocks).
    pub fn new(role: impl Into<String>, content: impl Into<Value>) -> Self {
        Self { role: role.into(), content: content.into(), extra: Map::new() }
    }

    /// A `system` message.
    pub fn system(content: impl Into<Value>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<Value>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<Value>) -> Self {
        Self::new("assistant", content)
    }

    /// A `tool` message: the result of a tool call.
    pub fn tool(content: impl Into<Value>) -> Self {
        Self::new("tool", content)
    }

    /// Add a field, e.g. `.with("tool_calls", json!([...]))` or `.with("reasoning_content", "...")`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// What [`crate::PreTrainedTokenizer::apply_chat_template`] accepts as a message.
pub trait ToChatMessage {
    /// The message as the JSON object the template sees.
    fn to_chat_message(&self) -> Value;
}

impl ToChatMessage for ChatMessage {
    fn to_chat_message(&self) -> Value {
        let mut map = Map::new();
        map.insert("role".to_owned(), Value::String(self.role.clone()));
        map.insert("content".to_owned(), self.content.clone());
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }
}

/// `(role, content)`.
impl ToChatMessage for (&str, &str) {
    fn to_chat_message(&self) -> Value {
        serde_json::json!({"role": self.0, "content": self.1})
    }
}

/// `(role, content)`.
impl ToChatMessage for (String, String) {
    fn to_chat_message(&self) -> Value {
        serde_json::json!({"role": self.0, "content": self.1})
    }
}

/// A JSON object, as Python's message dicts.
impl ToChatMessage for Value {
    fn to_chat_message(&self) -> Value {
        self.clone()
    }
}

impl<T: ToChatMessage + ?Sized> ToChatMessage for &T {
    fn to_chat_message(&self) -> Value {
        (**self).to_chat_message()
    }
}

/// The arguments of `apply_chat_template` beyond the messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatTemplateOptions {
    /// End with the header of an assistant turn, for the model to answer.
    pub add_generation_prompt: bool,
    /// Leave the final message open (no end-of-turn token) for the model to continue it.
    pub continue_final_message: bool,
    /// Tool JSON schemas (`tools=`).
    pub tools: Option<Vec<Value>>,
    /// Documents for retrieval-augmented generation (`documents=`).
    pub documents: Option<Vec<Value>>,
    /// The name of one of the tokenizer's templates, or a whole template (`chat_template=`).
    pub chat_template: Option<String>,
    /// Extra template variables (`**kwargs`: `enable_thinking`, `date_string`, ...); they
    /// override the special tokens of the same name.
    pub kwargs: Map<String, Value>,
}

impl ChatTemplateOptions {
    /// The defaults: no generation prompt, no tools or documents, the tokenizer's default
    /// template.
    pub fn new() -> Self {
        Self::default()
    }

    /// End the prompt with the tokens that start an assistant reply (`add_generation_prompt=`).
    pub fn add_generation_prompt(mut self, yes: bool) -> Self {
        self.add_generation_prompt = yes;
        self
    }

    /// Leave the last message open so that generation continues it (`continue_final_message=`).
    pub fn continue_final_message(mut self, yes: bool) -> Self {
        self.continue_final_message = yes;
        self
    }

    /// JSON schemas of the tools the model may call (`tools=`).
    pub fn tools(mut self, tools: Vec<Value>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Documents for retrieval-augmented generation (`documents=`).
    pub fn documents(mut self, documents: Vec<Value>) -> Self {
        self.documents = Some(documents);
        self
    }

    /// A template name (`"tool_use"`) or a whole template.
    pub fn chat_template(mut self, name_or_template: impl Into<String>) -> Self {
        self.chat_template = Some(name_or_template.into());
        self
    }

    /// A template variable (`kwarg("enable_thinking", false)`).
    pub fn kwarg(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.kwargs.insert(key.into(), value.into());
        self
    }
}

/// Read `chat_template.jinja` (and, for local folders, `additional_chat_templates/*.jinja`) into
/// `settings["chat_template"]`: as `transformers` 5 saves templates, these files take
/// priority over a `chat_template` entry of `tokenizer_config.json`.
pub(crate) fn load_template_files(source: &ModelSource, opts: &LoadOptions, settings: &mut Value) -> Result<()> {
    let mut templates = Map::new();
    if let Some(path) = source.optional_file("chat_template.jinja")? {
        tracing::debug!(file = %path.display(), "chat template file");
        templates.insert("default".to_owned(), Value::String(read_text(&path)?));
    }
    if let Some(dir) = source.local_dir() {
        let dir = match &opts.subfolder {
            Some(sub) => dir.join(sub),
            None => dir.to_path_buf(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir.join("additional_chat_templates"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jinja"))
            .collect();
        files.sort();
        for path in files {
            let (Some(name), Some(file)) =
                (path.file_stem().and_then(|s| s.to_str()), path.file_name().and_then(|s| s.to_str()))
            else {
                continue;
            };
            // Through the source, which keeps links from leading outside the folder.
            let Some(path) = source.optional_file(&format!("additional_chat_templates/{file}"))? else { continue };
            tracing::debug!(name, file = %path.display(), "additional chat template file");
            templates.insert(name.to_owned(), Value::String(read_text(&path)?));
        }
    }
    if templates.is_empty() {
        return Ok(());
    }
    let value = match (templates.len(), templates.get("default")) {
        (1, Some(default)) => default.clone(),
        _ => Value::Object(templates),
    };
    if let Value::Object(map) = settings {
        map.insert("chat_template".to_owned(), value);
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Pick the template to render (`get_chat_template`): `requested` names one of several
/// templates or is a template itself; with several templates, `tool_use` serves requests
/// with tools and `default` the others.
pub(crate) fn select_template(
    stored: Option<&Value>,
    requested: Option<&str>,
    has_tools: bool,
    tokenizer: &str,
) -> Result<String> {
    let named: Option<Map<String, Value>> = match stored {
        Some(Value::Object(map)) => Some(map.clone()),
        // tokenizer_config.json's list form: [{"name": ..., "template": ...}, ...]
        Some(Value::Array(list)) => Some(
            list.iter()
                .filter_map(|t| Some((t.get("name")?.as_str()?.to_owned(), t.get("template")?.clone())))
                .collect(),
        ),
        _ => None,
    };
    let as_string = |v: &Value| v.as_str().map(str::to_owned);
    if let Some(named) = named {
        let pick = match requested {
            Some(r) => named.get(r).and_then(as_string).or_else(|| Some(r.to_owned())),
            None if has_tools && named.contains_key("tool_use") => named.get("tool_use").and_then(as_string),
            None => match named.get("default") {
                Some(t) => as_string(t),
                None => {
                    let names: Vec<&str> = named.keys().map(String::as_str).collect();
                    return Err(Error::input(format!(
                        "the tokenizer `{tokenizer}` has several chat templates and no `default`: choose one with \
                         `ChatTemplateOptions::chat_template`; available: {}",
                        names.join(", ")
                    )));
                }
            },
        };
        return pick.ok_or_else(|| Error::Tokenizer(format!("a chat template of `{tokenizer}` is not a string")));
    }
    if let Some(r) = requested {
        return Ok(r.to_owned());
    }
    match stored {
        Some(Value::String(t)) => Ok(t.clone()),
        Some(_) => {
            Err(Error::Tokenizer(format!("the `chat_template` of `{tokenizer}` is neither a string nor a list")))
        }
        None => Err(Error::input(format!(
            "the tokenizer `{tokenizer}` has no chat template (no `chat_template` in tokenizer_config.json and no \
             chat_template.jinja): give one with `ChatTemplateOptions::chat_template`"
        ))),
    }
}

/// Names a message's reasoning goes under; the first is the one templates read.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// The tag `transformers` appends to the message it continues, to find where it ends.
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

/// Turn messages into the objects the template sees: keys with null values dropped, and
/// reasoning under both `reasoning_content` and `thinking` (`_alias_reasoning_fields`).
fn prepare_messages<M: ToChatMessage>(messages: &[M]) -> Result<Vec<Map<String, Value>>> {
    messages
        .iter()
        .map(|m| {
            let Value::Object(map) = m.to_chat_message() else {
                return Err(Error::input("chat messages must be JSON objects with `role` and `content`"));
            };
            let map: Map<String, Value> = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
            let Some(reasoning) = REASONING_FIELDS.iter().find_map(|k| map.get(*k)).cloned() else {
                return Ok(map);
            };
            let mut aliased = Map::new();
            aliased.insert("thinking".to_owned(), reasoning.clone());
            aliased.extend(map);
            aliased.insert("reasoning_content".to_owned(), reasoning);
            Ok(aliased)
        })
        .collect()
}

/// Render `template` for `messages` (`render_jinja_template`), with the named special tokens
/// `special_tokens` as variables.
pub(crate) fn render<M: ToChatMessage>(
    template: &str,
    messages: &[M],
    options: &ChatTemplateOptions,
    special_tokens: &[(&str, String)],
) -> Result<String> {
    if messages.is_empty() {
        return Err(Error::input("cannot apply a chat template to an empty conversation: give at least one message"));
    }
    if options.continue_final_message && options.add_generation_prompt {
        return Err(Error::input(
            "`continue_final_message` and `add_generation_prompt` do not go together: continue the final message, \
             or add the header of a new assistant message",
        ));
    }
    let mut chat = prepare_messages(messages)?;
    let mut continued = None;
    if options.continue_final_message {
        if !template.contains("content") {
            return Err(Error::input(
                "`continue_final_message` continues `content`, which this chat template does not read",
            ));
        }
        let last = chat.last_mut().ok_or_else(|| Error::input("the conversation is empty"))?;
        continued = Some(tag_final_message(last)?);
    }

    let raised: Arc<Mutex<Option<String>>> = Arc::default();
    let env = environment(raised.clone());
    let compiled =
        env.template_from_str(template).map_err(|e| Error::Tokenizer(format!("invalid chat template: {e:#}")))?;
    let mut context: Vec<(String, JValue)> = vec![
        (
            "messages".to_owned(),
            JValue::from(chat.into_iter().map(|m| to_jinja(&Value::Object(m))).collect::<Vec<_>>()),
        ),
        ("tools".to_owned(), options.tools.as_ref().map_or(JValue::from(()), |t| to_jinja(&Value::from(t.clone())))),
        (
            "documents".to_owned(),
            options.documents.as_ref().map_or(JValue::from(()), |d| to_jinja(&Value::from(d.clone()))),
        ),
        ("add_generation_prompt".to_owned(), JValue::from(options.add_generation_prompt)),
    ];
    for (k, v) in special_tokens {
        if !options.kwargs.contains_key(*k) {
            context.push(((*k).to_owned(), JValue::from(v.as_str())));
        }
    }
    for (k, v) in &options.kwargs {
        context.push((k.clone(), to_jinja(v)));
    }
    let mut out = BoundedOutput { bytes: Vec::new(), full: false };
    let rendered = compiled.render_captured_to(JValue::from_pairs(context), &mut out).map_err(|e| {
        match raised.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(message) => Error::input(format!("the chat template refused the conversation: {message}")),
            None if out.full => Error::input(format!(
                "the chat template's output passed {MAX_CHAT_TEMPLATE_OUTPUT} bytes: the template or the \
                 conversation is too large"
            )),
            None => Error::input(format!("cannot render the chat template: {e:#}")),
        }
    });
    drop(rendered?);
    let rendered = String::from_utf8(out.bytes)
        .map_err(|e| Error::input(format!("the chat template's output is not UTF-8: {e}")))?;
    match continued {
        Some(final_message) => cut_at_tag(rendered, &final_message),
        None => Ok(rendered),
    }
}

/// Append the continue tag to the final message's content (its last text block for block
/// content) and return the text to continue.
fn tag_final_message(last: &mut Map<String, Value>) -> Result<String> {
    match last.get_mut("content") {
        Some(Value::String(s)) => {
            let text = s.clone();
            s.push_str(CONTINUE_TAG);
            Ok(text)
        }
        Some(Value::Array(blocks)) => {
            for block in blocks.iter_mut().rev() {
                if let Some(Value::String(s)) = block.get_mut("text") {
                    let text = s.clone();
                    s.push_str(CONTINUE_TAG);
                    return Ok(text);
                }
            }
            Err(Error::input("`continue_final_message` is set but the final message has no text to continue"))
        }
        _ => Err(Error::input("`continue_final_message` is set but the final message has no `content` to continue")),
    }
}

/// Cut the rendered chat where the continued message ends.
fn cut_at_tag(rendered: String, final_message: &str) -> Result<String> {
    let tag = CONTINUE_TAG.trim();
    if !rendered.contains(final_message.trim()) || !rendered.contains(tag) {
        return Err(Error::input(
            "`continue_final_message` is set but the final message does not appear in the rendered chat: the chat \
             template changes it",
        ));
    }
    let at = rendered.rfind(tag).unwrap_or(rendered.len());
    if rendered[at..].starts_with(CONTINUE_TAG) {
        Ok(rendered[..at].to_owned())
    } else {
        Ok(rendered[..at].trim_end().to_owned())
    }
}

/// The most bytes a chat template may write: far above any real prompt, far below what a
/// template looping over a large string could fill memory with.
const MAX_CHAT_TEMPLATE_OUTPUT: usize = 64 << 20;

/// The most instructions a chat template may run (minijinja's fuel): real templates take
/// thousands per message; a template whose loops never end in practice stops with an error.
const CHAT_TEMPLATE_FUEL: u64 = 20_000_000;

/// The template's output, refused past [`MAX_CHAT_TEMPLATE_OUTPUT`] bytes.
struct BoundedOutput {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_CHAT_TEMPLATE_OUTPUT {
            self.full = true;
            return Err(std::io::Error::other("chat template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The jinja environment `transformers` compiles chat templates in.
fn environment(raised: Arc<Mutex<Option<String>>>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(CHAT_TEMPLATE_FUEL));
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax.trim_blocks(true).lstrip_blocks(true);
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", move |message: String| -> std::result::Result<String, minijinja::Error> {
        *raised.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
    });
    env.add_function("strftime_now", |format: String| strftime(&format, now_utc()));
    env
}

/// serde JSON to a template value, keeping the order of object keys.
fn to_jinja(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::from(()),
        Value::Bool(b) => JValue::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                JValue::from(i)
            } else if let Some(u) = n.as_u64() {
                JValue::from(u)
            } else {
                JValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => JValue::from(s.as_str()),
        Value::Array(items) => JValue::from(items.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(map) => JValue::from_pairs(map.iter().map(|(k, v)| (JValue::from(k.as_str()), to_jinja(v)))),
    }
}

/// `transformers`' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, arguments by position or by name.
fn tojson(value: &JValue, args: Rest<ValueOrKwargs>) -> std::result::Result<String, minijinja::Error> {
    let mut positional = Vec::new();
    let mut kwargs = None;
    for a in args.into_values() {
        if a.is_kwargs() {
            kwargs = Some(Kwargs::try_from(a)?);
        } else {
            positional.push(a);
        }
    }
    let names = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if positional.len() > names.len() {
        return Err(minijinja::Error::new(ErrorKind::TooManyArguments, "tojson takes at most 4 arguments"));
    }
    let mut given: Vec<Option<JValue>> = names.iter().map(|_| None).collect();
    for (slot, v) in given.iter_mut().zip(positional) {
        *slot = Some(v);
    }
    if let Some(kwargs) = &kwargs {
        for (slot, name) in given.iter_mut().zip(names) {
            if kwargs.has(name) {
                *slot = Some(kwargs.get::<JValue>(name)?);
            }
        }
        kwargs.assert_all_used()?;
    }
    let flag = |v: &Option<JValue>| v.as_ref().is_some_and(JValue::is_true);
    let indent = match &given[1] {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match (v.as_i64(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(usize::try_from(n).unwrap_or(0))),
            (None, Some(s)) => Some(s.to_owned()),
            _ => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: `indent` must be an int")),
        },
    };
    let (item_sep, key_sep) = match &given[2] {
        Some(v) if !v.is_none() => {
            let parts: Vec<JValue> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                _ => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: `separators` must be an (item_separator, key_separator) pair",
                    ))
                }
            }
        }
        _ => (if indent.is_some() { "," } else { ", " }.to_owned(), ": ".to_owned()),
    };
    let style = JsonStyle { ensure_ascii: flag(&given[0]), indent, item_sep, key_sep, sort_keys: flag(&given[3]) };
    let mut out = String::new();
    write_json(value, &style, 0, &mut out)?;
    Ok(out)
}

/// How Python's `json.dumps` lays out its output.
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

fn not_serializable(kind: impl std::fmt::Display) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: a {kind} value is not JSON serializable"))
}

fn write_json(
    v: &JValue,
    style: &JsonStyle,
    level: usize,
    out: &mut String,
) -> std::result::Result<(), minijinja::Error> {
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                let f = f64::try_from(v.clone()).map_err(|_| not_serializable("number"))?;
                out.push_str(&python_float(f));
            }
        }
        ValueKind::String => write_json_string(v.as_str().unwrap_or_default(), style.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<JValue> = v.try_iter()?.collect();
            write_container(out, style, level, ('[', ']'), &items, |item, out| {
                write_json(item, style, level + 1, out)
            })?;
        }
        ValueKind::Map => {
            let mut entries: Vec<(String, JValue)> = Vec::new();
            for key in v.try_iter()? {
                let value = v.get_item(&key)?;
                let key = match key.kind() {
                    ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
                    ValueKind::None => "null".to_owned(),
                    ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).to_owned(),
                    ValueKind::Number => key.to_string(),
                    other => return Err(not_serializable(format!("map key of kind {other}"))),
                };
                entries.push((key, value));
            }
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, style, level, ('{', '}'), &entries, |(k, item), out| {
                write_json_string(k, style.ensure_ascii, out);
                out.push_str(&style.key_sep);
                write_json(item, style, level + 1, out)
            })?;
        }
        other => return Err(not_serializable(other)),
    }
    Ok(())
}

fn write_container<T>(
    out: &mut String,
    style: &JsonStyle,
    level: usize,
    (open, close): (char, char),
    items: &[T],
    mut write_item: impl FnMut(&T, &mut String) -> std::result::Result<(), minijinja::Error>,
) -> std::result::Result<(), minijinja::Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_sep);
        }
        if let Some(indent) = &style.indent {
            out.push('\n');
            out.push_str(&indent.repeat(level + 1));
        }
        write_item(item, out)?;
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(level));
    }
    out.push(close);
    Ok(())
}

/// A JSON string as Python's `json.dumps` writes it.
fn write_json_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it: shortest round-trip digits, exponent notation below
/// 1e-4 and from 1e16 (`1e-05`, `1.5e+16`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let point = exp as usize + 1;
            let int_part: String = digits.chars().chain(std::iter::repeat('0')).take(point.max(digits.len())).collect();
            let (int_part, frac) = int_part.split_at(point);
            format!("{int_part}.{}", if frac.is_empty() { "0" } else { frac })
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

/// Seconds since the Unix epoch, now.
fn now_utc() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `datetime.now().strftime(format)` for the common directives, in UTC (Python uses local
/// time); unknown directives are kept as written.
fn strftime(format: &str, unix_seconds: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('-') if chars.clone().next() == Some('d') => {
                chars.next();
                out.push_str(&day.to_string());
            }
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hour + 11) % 12 + 1)),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('B') => out.push_str(month_name),
            Some('b') | Some('h') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float(f), want, "{f}");
        }
    }

    #[test]
    fn strftime_directives() {
        // 2024-07-26 13:05:09 UTC, a Friday.
        let t = days_from_civil(2024, 7, 26) * 86_400 + 13 * 3600 + 5 * 60 + 9;
        assert_eq!(strftime("%d %b %Y", t), "26 Jul 2024");
        assert_eq!(strftime("%A %B %-d, %H:%M:%S %p %j %%", t), "Friday July 26, 13:05:09 PM 208 %");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
