//! `cargo xtask new-arch <model_type> --like llama`: scaffolds an architecture crate and its
//! manifest, then regenerates the wiring (`gen-mappings`), so that the new model type builds
//! with its feature and loads through the Auto classes with no other file edited.
//!
//! The scaffold is a llama-like decoder on `autocandle-decoder`: a config struct with Llama's
//! fields and defaults, its `DecoderConfig` impl, one `register_heads!` call for the heads the
//! manifest lists, and unit tests. The contributor then edits the config (defaults, switches)
//! to what `transformers`' `configuration_<model_type>.py` says and adds parity fixtures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::gen_mappings::MANIFESTS_DIR;
use crate::manifest::{self, Manifest};

/// The templates `--like` accepts.
pub const LIKE: &[&str] = &["llama"];

/// The heads of the llama-like template: task name, `register_heads!` entry, and the
/// `base_model_prefix` the head loads under.
const HEADS: &[(&str, &str, &str)] = &[
    ("base", "base", "model"),
    ("causal-lm", "causal_lm", "model"),
    ("sequence-classification", "sequence_classification", "model"),
    ("token-classification", "token_classification", "model"),
    ("question-answering", "question_answering(prefix = \"transformer\")", "transformer"),
];

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
    pub heads: Vec<(String, String, String, String)>,
    /// Whether `manifests/<model_type>.toml` exists already (known but not implemented).
    pub manifest_exists: bool,
}

/// `cargo xtask new-arch <model_type> --like <template>`.
pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    let (model_type, like) = match args {
        [ty, "--like", like] | ["--like", like, ty] => (*ty, *like),
        [ty] => (*ty, "llama"),
        _ => bail!("usage: cargo xtask new-arch <model_type> [--like llama]"),
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
    if !LIKE.contains(&like) {
        bail!("`--like {like}` is not a template; the templates are: {}", LIKE.join(", "));
    }
    let manifests = manifest::load_dir(root, MANIFESTS_DIR)?;
    let plan = plan(model_type, &manifests)?;
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

/// The names of the scaffold of `model_type`, from its manifest when there is one.
pub fn plan(model_type: &str, manifests: &[Manifest]) -> Result<Plan> {
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
    for (task, entry, prefix) in HEADS {
        let class = match existing {
            Some(m) => match m.tasks.iter().find(|t| t.task.name == *task) {
                Some(t) => t.class_name.clone(),
                None => continue,
            },
            None => default_class(&camel, task),
        };
        heads.push(((*task).to_owned(), (*entry).to_owned(), class, (*prefix).to_owned()));
    }
    if heads.is_empty() {
        bail!(
            "manifests/{model_type}.toml lists none of the llama-like heads ({}): a decoder scaffold does not fit it",
            HEADS.iter().map(|h| h.0).collect::<Vec<_>>().join(", ")
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
    })
}

fn default_class(camel: &str, task: &str) -> String {
    match task {
        "base" => format!("{camel}Model"),
        "causal-lm" => format!("{camel}ForCausalLM"),
        "sequence-classification" => format!("{camel}ForSequenceClassification"),
        "token-classification" => format!("{camel}ForTokenClassification"),
        _ => format!("{camel}ForQuestionAnswering"),
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
//! Scaffolded by `cargo xtask new-arch {ty} --like llama`: the network is Llama's until
//! `config.rs` turns on the switches where {name} differs (`DecoderOptions`: q/k norms,
//! biases, sliding windows, soft-capping, ...). Weight names read as the `transformers` state
//! dict (`model.layers.N.self_attn.q_proj.weight`, `lm_head.weight`).

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
    )
}

fn config_rs(p: &Plan) -> String {
    format!(
        r#"//! `{config}`, field for field as `transformers`' `configuration_{ty}.{config}`.

use autocandle_core::{{Activation, AutoRegister, LabelConfig, Result}};
use autocandle_decoder::{{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds}};
use serde::{{Deserialize, Serialize}};

/// The config of a {name} model (`{config}`). A field absent from `config.json` takes its
/// value from [`Default`], which must equal `{config}()` in `transformers`.
///
/// Scaffolded from `LlamaConfig`: the fields and defaults are Llama's until edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "{ty}")]
#[serde(default)]
pub struct {config} {{
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    pub rms_norm_eps: f64,
    pub use_cache: bool,
    pub pad_token_id: Option<i64>,
    pub bos_token_id: Option<i64>,
    pub eos_token_id: Option<TokenIds>,
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: Option<f64>,
    /// Bias on `gate_proj`, `up_proj` and `down_proj`.
    pub mlp_bias: bool,
    /// `None` is `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}}

impl Default for {config} {{
    /// `{config}()` in `transformers`.
    fn default() -> Self {{
        Self {{
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: None,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: Some(0.0),
            mlp_bias: false,
            head_dim: None,
            labels: LabelConfig::default(),
        }}
    }}
}}

impl DecoderConfig for {config} {{
    fn decoder_spec(&self) -> Result<DecoderSpec> {{
        let common = CommonConfig {{
            model_type: "{ty}",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            hidden_act: self.hidden_act,
            rope: &self.rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }};
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        spec.options.qkv_bias = self.attention_bias;
        spec.options.o_bias = self.attention_bias;
        spec.options.mlp_bias = self.mlp_bias;
        Ok(spec)
    }}
}}
"#,
        name = p.name,
        ty = p.model_type,
        config = p.config_class,
    )
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

    fn known() -> Result<Vec<Manifest>> {
        parse_all(&[
            (
                "manifests/olmo.toml".to_owned(),
                "model_type = \"olmo\"\nname = \"OLMo\"\nconfig_class = \"OlmoConfig\"\n\n[tasks]\n\
                 base = \"OlmoModel\"\ncausal-lm = \"OlmoForCausalLM\"\n"
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
    fn plan_for_a_new_model_type() -> Result<()> {
        let p = plan("toy_llama", &known()?)?;
        assert_eq!(
            (p.crate_name.as_str(), p.dir.as_str(), p.feature.as_str()),
            ("autocandle-toy-llama", "crates/toy-llama", "toy-llama")
        );
        assert_eq!(p.config_class, "ToyLlamaConfig");
        assert_eq!(p.heads.len(), 5);
        assert_eq!(p.heads[1].2, "ToyLlamaForCausalLM");
        assert!(!p.manifest_exists);
        let text = new_manifest(&p);
        let m = manifest::parse("manifests/toy_llama.toml", &text)?;
        assert_eq!(m.implemented().count(), 5);
        assert_eq!(m.profile.as_deref(), Some("text"));
        Ok(())
    }

    #[test]
    fn plan_for_a_known_model_type_follows_its_manifest() -> Result<()> {
        let all = known()?;
        let p = plan("olmo", &all)?;
        assert_eq!(p.config_class, "OlmoConfig");
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
        assert!(msg(plan("bert", &all)).contains("implemented already, by `autocandle-bert`"));
        assert!(msg(plan("Bad Name", &all)).contains("is not a model type"));
        assert!(msg(plan("all", &all)).contains("autocandle uses for itself"));
        let root = std::env::temp_dir();
        assert!(scaffold(&root, "x", "bert").map(|_| ()).unwrap_err().to_string().contains("templates are: llama"));
        Ok(())
    }

    #[test]
    fn camel_case_names() {
        assert_eq!(camel_case("toy_llama-2"), "ToyLlama2");
        assert_eq!(camel_case("olmo"), "Olmo");
    }
}
