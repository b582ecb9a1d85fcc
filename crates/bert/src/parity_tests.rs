//! Parity with `transformers`: every `tests/fixtures/bert-*` fixture, loaded through the
//! registry, must reproduce the reference outputs within the fixture's tolerance.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use autocandle_core::hub::ModelSource;
use autocandle_core::load::build_from_checkpoint;
use autocandle_core::registry::Registry;
use autocandle_core::weights::{find_weight_files, Checkpoint};
use autocandle_core::{
    ForCausalLm, ForMaskedLm, ForMultipleChoice, ForNextSentencePrediction, ForPreTraining, ForQuestionAnswering,
    ForSequenceClassification, ForTokenClassification, LoadOptions, Model, ModelInputs, ModelOutput, PretrainedConfig,
    Task,
};

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("bert-"))
                && p.join("reference.json").is_file()
        })
        .collect();
    dirs.sort();
    dirs
}

/// Run the fixture in `dir`; return the largest deviation over its outputs, or why it failed.
fn check(dir: &Path) -> Result<f32, String> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let task: Task = meta["task"].as_str().unwrap().parse().unwrap();
    let (atol, rtol) = (meta["atol"].as_f64().unwrap_or(1e-4), meta["rtol"].as_f64().unwrap_or(1e-4));
    let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let mut inputs = ModelInputs::default();
    for name in meta["inputs"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        inputs.set(name, reference[name].clone()).unwrap();
    }

    let config = PretrainedConfig::from_file(&dir.join("config.json")).map_err(|e| e.to_string())?;
    let reg = Registry::global().unwrap().model("bert", task).ok_or(format!("no bert head for {task}"))?;
    let source = ModelSource::resolve(&dir.to_string_lossy(), &LoadOptions::default()).unwrap();
    let checkpoint = std::sync::Arc::new(Checkpoint::open(find_weight_files(&source).unwrap()).unwrap());
    let cpu = &Device::Cpu;
    macro_rules! run {
        ($trait:ident) => {{
            let model = build_from_checkpoint::<dyn $trait>(&config, reg, checkpoint, DType::F32, cpu)
                .map_err(|e| e.to_string())?;
            let out = model.forward(&inputs).map_err(|e| e.to_string())?;
            out.fields().into_iter().map(|(n, t)| (n, t.clone())).collect::<Vec<(&str, Tensor)>>()
        }};
    }
    let outputs = match task {
        Task::Base => run!(Model),
        Task::PreTraining => run!(ForPreTraining),
        Task::CausalLm => run!(ForCausalLm),
        Task::MaskedLm => run!(ForMaskedLm),
        Task::NextSentencePrediction => run!(ForNextSentencePrediction),
        Task::SequenceClassification => run!(ForSequenceClassification),
        Task::MultipleChoice => run!(ForMultipleChoice),
        Task::TokenClassification => run!(ForTokenClassification),
        Task::QuestionAnswering => run!(ForQuestionAnswering),
        other => return Err(format!("task {other} is not a BERT task")),
    };

    let mut worst = 0f32;
    for (name, spec) in meta["outputs"].as_object().unwrap() {
        let want = &reference[name.as_str()];
        let got = outputs.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or(format!("output `{name}` missing"))?;
        if got.dims() != want.dims() {
            return Err(format!("`{name}`: shape {:?}, want {:?}", got.dims(), want.dims()));
        }
        let diff = (got - want).unwrap().abs().unwrap();
        // Excess over the tolerance; zero where it passes.
        let allowed = (want.abs().unwrap() * rtol).unwrap().affine(1.0, atol).unwrap();
        let (mut diff, mut excess) = (diff.clone(), (diff - allowed).unwrap().relu().unwrap());
        if let Some(mask_name) = spec.get("mask").and_then(|m| m.as_str()) {
            let mask = reference[mask_name].to_dtype(DType::F32).unwrap();
            let mut mask = mask;
            while mask.rank() < diff.rank() {
                mask = mask.unsqueeze(mask.rank()).unwrap();
            }
            diff = diff.broadcast_mul(&mask).unwrap();
            excess = excess.broadcast_mul(&mask).unwrap();
        }
        let max = |t: &Tensor| t.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let (d, e) = (max(&diff), max(&excess));
        eprintln!("{}: `{name}` max abs diff {d:.3e}", dir.display());
        if e > 0.0 || d.is_nan() {
            return Err(format!("`{name}` off by {d:.3e} (beyond tolerance by {e:.3e})"));
        }
        worst = worst.max(d);
    }
    Ok(worst)
}

#[test]
fn bert_fixtures_match_transformers() {
    let dirs = fixture_dirs();
    if dirs.is_empty() {
        eprintln!("skipped: no tests/fixtures/bert-* fixture found");
        return;
    }
    let failures: Vec<String> =
        dirs.iter().filter_map(|d| check(d).err().map(|e| format!("{}: {e}", d.display()))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The checkpoint keys that loading the fixture's head leaves unread.
fn unused_weights(dir: &Path) -> Vec<String> {
    use crate::*;
    use autocandle_core::weights::checkpoint_var_builder;
    use autocandle_core::LoadModel;

    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let task: Task = meta["task"].as_str().unwrap().parse().unwrap();
    let config: BertConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let source = ModelSource::resolve(&dir.to_string_lossy(), &LoadOptions::default()).unwrap();
    let checkpoint = std::sync::Arc::new(Checkpoint::open(find_weight_files(&source).unwrap()).unwrap());
    let (vb, tracker) = checkpoint_var_builder(checkpoint.clone(), "bert", DType::F32, &Device::Cpu);
    match task {
        Task::Base => drop(BertModel::load(vb, &config).unwrap()),
        Task::PreTraining => drop(BertForPreTraining::load(vb, &config).unwrap()),
        Task::CausalLm => drop(BertLMHeadModel::load(vb, &config).unwrap()),
        Task::MaskedLm => drop(BertForMaskedLM::load(vb, &config).unwrap()),
        Task::NextSentencePrediction => drop(BertForNextSentencePrediction::load(vb, &config).unwrap()),
        Task::SequenceClassification => drop(BertForSequenceClassification::load(vb, &config).unwrap()),
        Task::MultipleChoice => drop(BertForMultipleChoice::load(vb, &config).unwrap()),
        Task::TokenClassification => drop(BertForTokenClassification::load(vb, &config).unwrap()),
        Task::QuestionAnswering => drop(BertForQuestionAnswering::load(vb, &config).unwrap()),
        other => panic!("task {other} is not a BERT task"),
    }
    let used = tracker.used();
    checkpoint.names().iter().filter(|n| !used.contains(*n)).cloned().collect()
}

#[test]
fn bert_fixtures_use_every_weight() {
    let dirs = fixture_dirs();
    if dirs.is_empty() {
        eprintln!("skipped: no tests/fixtures/bert-* fixture found");
        return;
    }
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            let unused = unused_weights(d);
            (!unused.is_empty()).then(|| format!("{}: unused {unused:?}", d.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
