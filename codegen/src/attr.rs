//! Parsing and validation of the `#[auto(...)]` attribute into a [`Registration`].

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Path, Token};

use crate::task::{self, Rejected, TaskSpec};

/// Every key `#[auto(...)]` accepts, for error messages.
const VALID_KEYS: &str = "`config`, `model_type`, `task`, `class`, `crate`";

/// The `#[auto(...)]` attributes of a struct, read and checked.
pub(crate) struct Parsed {
    /// The path the generated code reaches `autocandle_core` by: `crate = "..."`, else
    /// `::autocandle_core`.
    pub(crate) krate: Path,
    pub(crate) registration: Registration,
}

/// What a struct registers, read from its `#[auto(...)]` attributes.
pub(crate) enum Registration {
    /// `#[auto(config, model_type = "bert")]`
    Config {
        model_type: LitStr,
        /// The `transformers` config class (`BertConfig`).
        class: LitStr,
    },
    /// `#[auto(task = "masked-lm")]`: the model type is its config type's (`LoadModel::Config`).
    Model {
        /// `model_type = "..."` when given: it must equal the config type's, which the
        /// generated code checks at compile time.
        model_type: Option<LitStr>,
        task: TaskSpec,
        /// The `task = "..."` literal, to point type errors about the task trait at it.
        task_lit: LitStr,
        /// The `transformers` class (`BertForMaskedLM`).
        class: LitStr,
    },
}

/// Errors gathered while reading the input, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Err` with every gathered error, if there is any.
    pub(crate) fn check(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    /// `value` when no error was gathered, else every error (`value`'s included).
    pub(crate) fn finish<T>(self, value: syn::Result<T>) -> syn::Result<T> {
        match (self.0, value) {
            (None, value) => value,
            (Some(all), Ok(_)) => Err(all),
            (Some(mut all), Err(e)) => {
                all.combine(e);
                Err(all)
            }
        }
    }
}

/// A key seen in `#[auto(...)]`: where it was written and its value, when that was valid.
struct Seen<T> {
    key: Path,
    value: Option<T>,
}

/// The keys as written, before the checks that involve several of them.
#[derive(Default)]
struct Keys {
    config: Option<Seen<()>>,
    model_type: Option<Seen<LitStr>>,
    task: Option<Seen<LitStr>>,
    class: Option<Seen<LitStr>>,
    krate: Option<Seen<Path>>,
    /// A key or value did not parse, so "missing key" errors could be misleading.
    syntax_error: bool,
}

/// Read the `#[auto(...)]` attributes of the struct `ident`, reporting every error at once.
pub(crate) fn parse(attrs: &[Attribute], ident: &Ident) -> syn::Result<Parsed> {
    let mut errors = Errors::default();
    let registration = read(attrs, ident, &mut errors);
    errors.check()?;
    // `read` returns `None` only after pushing an error; this keeps a broken invariant from
    // turning into a silently missing registration.
    registration.ok_or_else(|| syn::Error::new_spanned(ident, "invalid `#[auto(...)]` attribute"))
}

fn read(attrs: &[Attribute], ident: &Ident, errors: &mut Errors) -> Option<Parsed> {
    let autos: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("auto")).collect();
    let Some(first) = autos.first() else {
        errors.push(syn::Error::new_spanned(
            ident,
            format!(
                "missing `#[auto(...)]` attribute on `{ident}`: add `#[auto(config, model_type = \"...\")]` \
                 to register a config, or `#[auto(task = \"...\")]` to register a model"
            ),
        ));
        return None;
    };

    let mut keys = Keys::default();
    for attr in &autos {
        read_attribute(attr, &mut keys, errors);
    }
    validate(keys, first, ident, errors)
}

fn read_attribute(attr: &Attribute, keys: &mut Keys, errors: &mut Errors) {
    // `#[auto()]` holds no key; `parse_nested_meta` would ask for an identifier instead.
    if let Meta::List(list) = &attr.meta {
        if list.tokens.is_empty() {
            return;
        }
    }
    if let Err(e) = attr.parse_nested_meta(|meta| read_key(&meta, keys, errors)) {
        keys.syntax_error = true;
        errors.push(e);
    }
}

/// Read one `key` or `key = value` of `#[auto(...)]`; `Err` only when the syntax is broken.
fn read_key(meta: &ParseNestedMeta<'_>, keys: &mut Keys, errors: &mut Errors) -> syn::Result<()> {
    let key = meta.path.to_token_stream().to_string().replace(' ', "");
    match key.as_str() {
        "config" => {
            if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                skip_value(meta)?;
                errors.push(
                    meta.error("`config` is a flag and takes no value: write `#[auto(config, model_type = \"...\")]`"),
                );
            }
            record(&mut keys.config, &meta.path, Some(()), errors);
        }
        "model_type" | "task" | "class" => {
            let value = string_value(meta, &key, errors)?;
            let slot = match key.as_str() {
                "model_type" => &mut keys.model_type,
                "task" => &mut keys.task,
                _ => &mut keys.class,
            };
            record(slot, &meta.path, value, errors);
        }
        "crate" => {
            let value = string_value(meta, &key, errors)?.and_then(|lit| match lit.parse::<Path>() {
                Ok(path) => Some(path),
                Err(_) => {
                    errors.push(syn::Error::new_spanned(
                        &lit,
                        format!(
                            "invalid `crate` path `{}`: give the path autocandle's core crate is reachable by, \
                             for example `crate = \"autocandle::arch_api\"`",
                            lit.value()
                        ),
                    ));
                    None
                }
            });
            record(&mut keys.krate, &meta.path, value, errors);
        }
        _ => {
            skip_value(meta)?;
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format!("unknown key `{key}` in `#[auto(...)]`; valid keys: {VALID_KEYS}"),
            ));
        }
    }
    Ok(())
}

/// Store a key's value, or report it as a duplicate of an earlier one.
fn record<T>(slot: &mut Option<Seen<T>>, key: &Path, value: Option<T>, errors: &mut Errors) {
    match slot {
        Some(first) => {
            let name = first.key.to_token_stream().to_string();
            errors.push(syn::Error::new_spanned(
                key,
                format!("duplicate key `{name}` in `#[auto(...)]`: each key may be given once"),
            ));
        }
        None => *slot = Some(Seen { key: key.clone(), value }),
    }
}

/// Parse `= "..."`; a value that is not a string literal is reported and read as `None`.
fn string_value(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        skip_value(meta)?;
        errors.push(meta.error(format!("expected a value: write `{key} = \"...\"`")));
        return Ok(None);
    }
    let mut value = meta.value()?.parse::<Expr>()?;
    // A `$name:literal` fragment of a `macro_rules!` arrives wrapped in an invisible group.
    while let Expr::Group(group) = value {
        value = *group.expr;
    }
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(Some(s)),
        other => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{key}` takes a string literal: write `{key} = \"...\"`"),
            ));
            Ok(None)
        }
    }
}

/// Consume `= expr` or `(...)` after a key that is being rejected.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// The checks that involve several keys, and the value checks.
fn validate(keys: Keys, attr: &Attribute, ident: &Ident, errors: &mut Errors) -> Option<Parsed> {
    let mut ok = true;
    let mut fail = |e: syn::Error| {
        ok = false;
        errors.push(e);
    };

    // `model_type` is required on a config; a model takes its config type's.
    let model_type = match keys.model_type {
        Some(Seen { value: Some(lit), .. }) => {
            if let Err(e) = check_model_type(&lit) {
                fail(e);
            }
            Some(lit)
        }
        Some(Seen { value: None, .. }) => None,
        None if keys.syntax_error || keys.config.is_none() => None,
        None => {
            fail(syn::Error::new_spanned(
                attr,
                "missing `model_type` in `#[auto(...)]`: add `model_type = \"...\"`, the `model_type` \
                 of the architecture's `config.json` (for example `model_type = \"bert\"`)",
            ));
            None
        }
    };

    if let Some(Seen { value: Some(lit), .. }) = &keys.class {
        if let Err(e) = check_class(lit) {
            fail(e);
        }
    }

    let task = match (&keys.config, &keys.task) {
        (Some(_), Some(task)) => {
            fail(syn::Error::new_spanned(
                &task.key,
                "`task` cannot be combined with `config`: a config is registered for its model type \
                 as a whole; put `task = \"...\"` on the model struct and remove it here",
            ));
            None
        }
        (Some(_), None) => None,
        (None, Some(Seen { value: Some(lit), .. })) => match task::lookup(&lit.value()) {
            Ok(spec) => Some((spec, lit.clone())),
            Err(rejected) => {
                fail(task_error(lit, rejected));
                None
            }
        },
        (None, Some(Seen { value: None, .. })) => None,
        (None, None) if keys.syntax_error => None,
        (None, None) => {
            fail(syn::Error::new_spanned(
                attr,
                "missing `task` in `#[auto(...)]`: add `task = \"...\"` (for example `task = \"masked-lm\"`) \
                 to register a model, or `config` to register a config",
            ));
            None
        }
    };

    if !ok {
        return None;
    }
    // The class name defaults to the struct's name.
    let class = match keys.class {
        Some(Seen { value: Some(lit), .. }) => lit,
        _ => LitStr::new(&ident.to_string(), ident.span()),
    };
    let registration = match (keys.config, task, model_type) {
        (Some(_), _, Some(model_type)) => Registration::Config { model_type, class },
        (None, Some((spec, task_lit)), model_type) => Registration::Model { model_type, task: spec, task_lit, class },
        // A config without a valid model type, or a model without a valid task, pushed an
        // error above.
        _ => return None,
    };
    let krate = match keys.krate {
        Some(Seen { value: Some(path), .. }) => path,
        // An invalid `crate` value pushed an error above.
        Some(Seen { value: None, .. }) => return None,
        None => syn::parse_quote!(::autocandle_core),
    };
    Some(Parsed { krate, registration })
}

fn task_error(lit: &LitStr, rejected: Rejected) -> syn::Error {
    let name = lit.value();
    let supported = task::supported_list();
    let message = match rejected {
        Rejected::NoTrait => format!(
            "task `{name}` has no model trait in autocandle yet; tasks a model can be registered for: {supported}"
        ),
        Rejected::Unknown(suggestion) => {
            let hint = suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            format!("unknown task `{name}`{hint}; supported tasks: {supported}")
        }
    };
    syn::Error::new_spanned(lit, message)
}

/// `model_type` is a non-empty string of `[a-z0-9_-]`, as `config.json` spells it.
fn check_model_type(lit: &LitStr) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new_spanned(
            lit,
            "`model_type` must not be empty: use the `model_type` of the architecture's `config.json`",
        ));
    }
    if let Some(bad) = value.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')) {
        let hint = {
            let lower = value.to_ascii_lowercase();
            if lower.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')) {
                format!(" (did you mean `{lower}`?)")
            } else {
                String::new()
            }
        };
        return Err(syn::Error::new_spanned(
            lit,
            format!(
                "invalid character `{}` in `model_type` `{value}`{hint}: use only lowercase ASCII letters, \
                 digits, `_` and `-`, as `config.json` spells it",
                bad.escape_default()
            ),
        ));
    }
    Ok(())
}

/// `class` is a `transformers` class name: a non-empty identifier.
fn check_class(lit: &LitStr) -> syn::Result<()> {
    let value = lit.value();
    let valid = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            lit,
            format!("invalid `class` `{value}`: give the `transformers` class name, for example `class = \"BertForMaskedLM\"`"),
        ))
    }
}
