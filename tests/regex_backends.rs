//! The pre-tokenizer regexes of widely used `tokenizer.json` files, split by the regex engine
//! this build of `tokenizers` has, against Python's (Oniguruma) splits in
//! `tests/fixtures/tokenizers/regex_backends/cases.json`.
//!
//! With the `onig` feature (the default) every pattern must split as in Python. Without it
//! (`tokenizers`' pure-Rust `fancy-regex` engine; CI runs this test that way too) the patterns
//! in [`FANCY_REGEX_DIFFERS`] fail to compile or split differently, and every other one must
//! match: the list is what the README says the pure-Rust engine cannot run.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use autocandle_tests::fixtures_root;
use serde_json::Value;
use tokenizers::normalizer::SplitDelimiterBehavior;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

/// The fixture's patterns that `fancy-regex` cannot run as Oniguruma does, with the reason.
const FANCY_REGEX_DIFFERS: &[(&str, &str)] = &[
    ("whitespace", "its `\\w` does not match `½` (category No), Oniguruma's does"),
    ("word-boundary", "`\\w` and so `\\b` differ on `½`, as above"),
    ("linebreak-R", "no `\\R`"),
    ("grapheme-X", "no `\\X`"),
    ("negated-property", "no `\\p{^...}`; `\\P{...}` is the same and works in both"),
];

type Splits = Vec<(String, (usize, usize))>;

fn run(pre_tokenizer: &dyn PreTokenizer, text: &str) -> tokenizers::Result<Splits> {
    let mut pretokenized = PreTokenizedString::from(text);
    pre_tokenizer.pre_tokenize(&mut pretokenized)?;
    Ok(pretokenized
        .get_splits(OffsetReferential::Original, OffsetType::Char)
        .into_iter()
        .map(|(piece, offsets, _)| (piece.to_owned(), offsets))
        .collect())
}

fn expected(case: &Value, i: usize) -> Splits {
    case["splits"][i]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_owned(),
                (s[1][0].as_u64().unwrap() as usize, s[1][1].as_u64().unwrap() as usize),
            )
        })
        .collect()
}

/// `None` when every text splits as in Python, else what went wrong.
fn check(case: &Value, texts: &[&str]) -> Option<String> {
    let pre_tokenizer: Box<dyn PreTokenizer> = match case["pattern"].as_str() {
        Some(pattern) => {
            match Split::new(SplitPattern::Regex(pattern.to_owned()), SplitDelimiterBehavior::Isolated, false) {
                Ok(split) => Box::new(split),
                Err(e) => return Some(format!("does not compile: {e}")),
            }
        }
        None => Box::new(ByteLevel::new(false, true, true)),
    };
    for (i, text) in texts.iter().enumerate() {
        match run(pre_tokenizer.as_ref(), text) {
            Ok(got) if got == expected(case, i) => {}
            Ok(got) => return Some(format!("splits text {i} differently: {got:?}")),
            Err(e) => return Some(format!("fails on text {i}: {e}")),
        }
    }
    None
}

#[test]
fn real_pre_tokenizer_regexes_split_as_in_python() {
    let path = fixtures_root().join("tokenizers/regex_backends/cases.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let texts: Vec<&str> = fixture["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let onig = cfg!(feature = "onig");
    let engine = if onig { "onig" } else { "fancy-regex" };
    let mut unexpected = Vec::new();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let problem = check(case, &texts);
        let known = (!onig).then(|| FANCY_REGEX_DIFFERS.iter().find(|(n, _)| *n == name)).flatten();
        match (&problem, known) {
            (None, None) => println!("{engine}: {name}: same splits as Python on {} texts", texts.len()),
            (Some(problem), Some((_, why))) => println!("{engine}: {name}: differs as known ({why}): {problem}"),
            (Some(problem), None) => unexpected.push(format!("{name} ({}): {problem}", case["used_by"])),
            (None, Some(_)) => unexpected
                .push(format!("{name}: now splits as in Python; remove it from FANCY_REGEX_DIFFERS and the README")),
        }
    }
    assert!(unexpected.is_empty(), "{engine}:\n{}", unexpected.join("\n"));
}
