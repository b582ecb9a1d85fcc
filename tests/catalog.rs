//! The catalog of model types: every type of the seed documentation and the newer ones are in
//! it, it is what manifests/ and docs/models.md say, `AutoConfig` parses a config of every
//! known type (generic when not compiled in), the repo-name fallback for configs without
//! `model_type`, and the errors of types that are known but not implemented.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use autocandle::catalog::{model_type_from_name, model_type_info, model_types, resolve_head};
use autocandle::{AutoConfig, AutoModelForMaskedLM, Error, LoadOptions, Task};
use autocandle_tests::{fixture, fixture_dirs, hub_cache};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The model types of manifests/seed-model-types.txt (written by `cargo xtask import-seed`).
fn seed_types() -> Vec<String> {
    read("manifests/seed-model-types.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Model types newer than the seed (transformers 4.37) that users load today.
const NEWER: &[(&str, &str, &str)] = &[
    ("qwen3", "causal-lm", "Qwen3ForCausalLM"),
    ("qwen3_moe", "causal-lm", "Qwen3MoeForCausalLM"),
    ("gemma3", "image-text-to-text", "Gemma3ForConditionalGeneration"),
    ("gemma3_text", "causal-lm", "Gemma3ForCausalLM"),
    ("modernbert", "masked-lm", "ModernBertForMaskedLM"),
    ("phi3", "causal-lm", "Phi3ForCausalLM"),
    ("phi4_multimodal", "causal-lm", "Phi4MultimodalForCausalLM"),
    ("llama4", "image-text-to-text", "Llama4ForConditionalGeneration"),
    ("mistral3", "image-text-to-text", "Mistral3ForConditionalGeneration"),
    ("qwen2_5_vl", "image-text-to-text", "Qwen2_5_VLForConditionalGeneration"),
    ("smollm3", "causal-lm", "SmolLM3ForCausalLM"),
    ("olmo2", "causal-lm", "Olmo2ForCausalLM"),
    ("deepseek_v3", "causal-lm", "DeepseekV3ForCausalLM"),
];

#[test]
fn every_seed_model_type_has_a_manifest_and_a_catalog_entry() {
    let seed = seed_types();
    assert!(seed.len() >= 200, "manifests/seed-model-types.txt lists only {} model types", seed.len());
    for t in ["albert", "bert", "xlm-roberta", "xlm-roberta-xl", "whisper", "wav2vec2", "timm_backbone", "rag"] {
        assert!(seed.iter().any(|s| s == t), "`{t}` is not in the seed list");
    }
    let missing: Vec<&String> = seed.iter().filter(|t| model_type_info(t).is_none()).collect();
    assert!(missing.is_empty(), "seed model types without a catalog entry: {missing:?}");
    for t in &seed {
        assert!(workspace().join(format!("manifests/{t}.toml")).is_file(), "no manifests/{t}.toml");
    }
}

#[test]
fn newer_model_types_are_in_the_catalog_with_their_tasks() {
    for (model_type, task, class) in NEWER {
        let info = model_type_info(model_type).unwrap_or_else(|| panic!("`{model_type}` is not in the catalog"));
        let task: Task = task.parse().unwrap();
        let tc = info.task_class(task).unwrap_or_else(|| panic!("`{model_type}` has no {task} task"));
        assert_eq!(tc.class_name, *class, "{model_type} {task}");
    }
}

#[test]
fn catalog_holds_exactly_the_manifests() {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(workspace().join("manifests")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".toml") {
            files.insert(stem.to_owned());
        }
    }
    let catalog: BTreeSet<String> = model_types().iter().map(|m| m.model_type.to_owned()).collect();
    assert_eq!(
        files, catalog,
        "manifests/ (left) and the generated catalog (right) differ: run `cargo xtask gen-mappings`"
    );
}

/// docs/models.md has one row per catalog entry, in order, naming what the catalog says (the
/// byte-exact check is `cargo xtask gen-mappings --check`, also run by `cargo test -p xtask`).
#[test]
fn docs_models_md_matches_the_catalog() {
    let md = read("docs/models.md");
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    let types = model_types();
    let stale = "docs/models.md is stale: run `cargo xtask gen-mappings`";
    assert!(md.contains(&format!("\n{} model types;", types.len())), "{stale}");
    let model_rows: Vec<&str> = rows.iter().take(types.len()).copied().collect();
    assert_eq!(model_rows.len(), types.len(), "{stale}");
    for (row, info) in model_rows.iter().zip(types) {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[0], format!("| `{}`", info.model_type), "{stale}");
        assert_eq!(cells[1], info.name.replace('|', "\\|"), "{stale}");
        for tc in info.tasks {
            assert!(cells[2].contains(&format!("`{}`: {}", tc.task, tc.class_name)), "{stale}: {row}");
        }
        let implemented: Vec<String> =
            info.tasks.iter().filter(|t| t.implemented).map(|t| format!("`{}`", t.task)).collect();
        let expected = match (implemented.len(), info.tasks.len()) {
            (0, _) => "none".to_owned(),
            (n, all) if n == all => format!("all: {}", implemented.join(", ")),
            _ => implemented.join(", "),
        };
        assert_eq!(cells[3], expected, "{stale}: {row}");
        let feature = info.feature.map_or_else(|| "— |".to_owned(), |f| format!("`{f}` |"));
        assert_eq!(cells[4], feature, "{stale}: {row}");
    }
}

fn write_config(dir: &Path, value: &Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// A config.json of `model_type` with fields of every JSON kind.
fn sample_config(model_type: &str) -> Value {
    json!({
        "model_type": model_type,
        "architectures": ["SomeModelForSomething"],
        "hidden_size": 16,
        "layer_norm_eps": 1e-12,
        "tie_word_embeddings": false,
        "id2label": {"0": "NEG", "1": "POS"},
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0},
        "text_config": {"model_type": "x", "layers": [1, 2, 3], "nested": {"deep": null}},
        "transformers_version": "5.23.0"
    })
}

#[test]
fn autoconfig_parses_every_known_model_type() {
    let tmp = tempfile::tempdir().unwrap();
    let mut generic = 0;
    let registry = autocandle::registry::Registry::global().unwrap();
    for info in model_types() {
        if registry.config(info.model_type).is_some() {
            continue; // typed: `typed_configs_keep_every_field_too` parses real configs
        }
        let value = sample_config(info.model_type);
        let path = write_config(&tmp.path().join(info.model_type), &value);
        let config = AutoConfig::from_pretrained(&path.to_string_lossy())
            .unwrap_or_else(|e| panic!("`{}`: {e}", info.model_type));
        assert!(config.is_generic(), "{}", info.model_type);
        assert_eq!(config.model_type(), info.model_type);
        assert_eq!(config.to_json(), value, "`{}` does not serialise back every field", info.model_type);
        assert_eq!(config.architectures(), ["SomeModelForSomething"]);
        let from_json = AutoConfig::from_json(value.clone()).unwrap();
        assert_eq!(from_json.to_json(), value);
        generic += 1;
    }
    assert!(generic > 150, "only {generic} generic configs");
}

#[test]
fn typed_configs_keep_every_field_too() {
    let mut typed = 0;
    for dir in fixture_dirs().unwrap() {
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let config = AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap();
        assert_eq!(config.to_json(), value, "{}", dir.display());
        if !config.is_generic() {
            typed += 1;
        }
    }
    assert!(typed > 0, "no fixture config parsed into a typed config");
}

#[test]
fn config_without_model_type_takes_the_longest_type_in_the_folder_name() {
    let tmp = tempfile::tempdir().unwrap();
    let value = json!({"hidden_size": 16, "num_hidden_layers": 2});

    let dir = tmp.path().join("my-xlm-roberta-model");
    let path = write_config(&dir, &value);
    let config = AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap();
    assert_eq!(config.model_type(), "xlm-roberta");
    assert!(!config.is_generic(), "xlm-roberta is compiled in: the typed config is parsed");
    assert_eq!(config.get("model_type"), Some(&json!("xlm-roberta")));
    assert_eq!(config.get("hidden_size"), Some(&json!(16)));
    // The JSON file itself: its folder's name counts.
    assert_eq!(AutoConfig::from_pretrained(&path.to_string_lossy()).unwrap().model_type(), "xlm-roberta");

    let dir = tmp.path().join("my-roberta-model");
    write_config(&dir, &value);
    assert_eq!(AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap().model_type(), "roberta");

    // The folders around the model do not count, only its own name.
    let dir = tmp.path().join("xlm-roberta-runs").join("zzzz");
    write_config(&dir, &value);
    let err = AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::MissingModelType { .. }), "{err}");
    assert!(err.to_string().contains("add one"), "{err}");

    assert_eq!(model_type_from_name("my-xlm-roberta-model"), Some("xlm-roberta"));
    assert_eq!(model_type_from_name("zzzz"), None);
}

#[test]
fn config_without_model_type_compiled_in_gets_its_typed_config() {
    let tmp = tempfile::tempdir().unwrap();
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("bert-base").join("config.json")).unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("model_type");
    let dir = tmp.path().join("tiny-bert-base");
    write_config(&dir, &value);
    let config = AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap();
    assert_eq!(config.model_type(), "bert");
    assert!(!config.is_generic(), "bert is compiled in: the typed config is parsed");
}

#[test]
fn hub_repo_id_is_matched_too() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("files");
    write_config(&source, &json!({"hidden_size": 16}));
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let cache = hub_cache(&source, "FacebookAI/xlm-roberta-base", sha, None).unwrap();
    let opts = LoadOptions::new().cache_dir(cache.path()).local_files_only(true);
    let config = AutoConfig::from_pretrained_with("FacebookAI/xlm-roberta-base", &opts).unwrap().value;
    assert_eq!(config.model_type(), "xlm-roberta");
}

#[test]
fn known_but_unimplemented_model_type_says_so_and_points_at_the_docs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("bert-masked-lm").join("config.json")).unwrap()).unwrap();
    value["model_type"] = json!("funnel");
    let dir = tmp.path().join("model");
    write_config(&dir, &value);
    // The config reads (generic) ...
    let config = AutoConfig::from_pretrained(&dir.to_string_lossy()).unwrap();
    assert!(config.is_generic());
    // ... the model says what is missing.
    let err = AutoModelForMaskedLM::from_pretrained(&dir.to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("model type `funnel` (Funnel Transformer) is known but autocandle does not implement it yet")
            && msg.contains("FunnelForMaskedLM")
            && msg.contains("docs/models.md"),
        "{msg}"
    );

    // A known type that no Auto model class loads.
    let msg = resolve_head("rag", Task::Base).unwrap_err().to_string();
    assert!(msg.contains("`rag` (RAG) is known") && msg.contains("no Auto model class for it either"), "{msg}");
    // A task transformers does not have for the type.
    let msg = resolve_head("funnel", Task::ImageClassification).unwrap_err().to_string();
    assert!(msg.contains("has no image-classification head for it either") && msg.contains("masked-lm"), "{msg}");
}

#[test]
fn unknown_model_type_suggests_the_closest_known_ones() {
    let msg = resolve_head("xlm-roberta-xxl", Task::Base).unwrap_err().to_string();
    assert!(msg.contains("unknown model type `xlm-roberta-xxl`") && msg.contains("`xlm-roberta-xl`"), "{msg}");
    let msg = resolve_head("qwen3moe", Task::CausalLm).unwrap_err().to_string();
    assert!(msg.contains("did you mean") && msg.contains("`qwen3_moe`"), "{msg}");
}
