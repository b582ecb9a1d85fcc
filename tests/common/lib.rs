//! Shared helpers of the integration tests: the reference-fixture harness
//! (format: `shared/fixture-format.md`).

/// The Rust blocks of the root `README.md`, compiled as doc-tests
/// (`cargo test -p autocandle-tests --doc`) so that they keep compiling against the facade.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use autocandle::{
    GenerationConfig, GenerationMixin, LoadOptions, ModelInputs, Prompts, Seq2SeqGenerationMixin, Task, TaskModel,
    WithImages,
};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

/// `tests/fixtures`.
pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One fixture directory under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_root().join(name)
}

/// A Hugging Face Hub cache in a temp dir holding `repo_id` (`org/name`) at revision `sha`,
/// with `refs/main` pointing at it: the files of `source` (not its subdirectories) in
/// `models--org--name/snapshots/<sha>/` (or its `subfolder`), as Python's `hf_hub_download`
/// leaves them.
pub fn hub_cache(source: &Path, repo_id: &str, sha: &str, subfolder: Option<&str>) -> Result<tempfile::TempDir> {
    let cache = tempfile::tempdir()?;
    let repo = cache.path().join(format!("models--{}", repo_id.replace('/', "--")));
    let mut snapshot = repo.join("snapshots").join(sha);
    if let Some(sub) = subfolder {
        snapshot = snapshot.join(sub);
    }
    std::fs::create_dir_all(&snapshot)?;
    std::fs::create_dir_all(repo.join("refs"))?;
    std::fs::write(repo.join("refs").join("main"), sha)?;
    for entry in std::fs::read_dir(source)? {
        let path = entry?.path();
        if let (true, Some(name)) = (path.is_file(), path.file_name()) {
            std::fs::copy(&path, snapshot.join(name))?;
        }
    }
    Ok(cache)
}

/// Every fixture directory (a subdirectory with `reference.json`) under `tests/fixtures`, and
/// under `$AUTOCANDLE_FIXTURES` when set, sorted by name within each root.
pub fn fixture_dirs() -> Result<Vec<PathBuf>> {
    let mut roots = vec![fixtures_root()];
    if let Some(extra) = std::env::var_os("AUTOCANDLE_FIXTURES") {
        roots.push(PathBuf::from(extra));
    }
    let mut all = Vec::new();
    for root in roots {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
            .with_context(|| format!("reading {}", root.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("reference.json").is_file())
            .collect();
        dirs.sort();
        all.extend(dirs);
    }
    Ok(all)
}

/// The verdict on one fixture.
#[derive(Debug)]
pub enum Outcome {
    Pass { max_abs_diff: f32 },
    Fail { output: String, max_abs_diff: f32, detail: String },
    Unsupported { model_type: String, task: String, reason: String },
}

impl Outcome {
    /// The harness line: `PASS <dir> <diff>`, `FAIL <dir> <output> <diff>` (for `generate`,
    /// `FAIL <dir> generate <number of mismatching positions>`) or
    /// `UNSUPPORTED <dir> <model_type> <task>`.
    pub fn line(&self, name: &str) -> String {
        match self {
            Outcome::Pass { max_abs_diff } => format!("PASS {name} {max_abs_diff:e}"),
            Outcome::Fail { output, max_abs_diff, .. } if output == GENERATE => {
                format!("FAIL {name} {output} {}", *max_abs_diff as u64)
            }
            Outcome::Fail { output, max_abs_diff, .. } => format!("FAIL {name} {output} {max_abs_diff:e}"),
            Outcome::Unsupported { model_type, task, .. } => format!("UNSUPPORTED {name} {model_type} {task}"),
        }
    }
}

/// The output name of the greedy generation check in `Outcome::Fail`; its `max_abs_diff` is then
/// the number of mismatching positions.
pub const GENERATE: &str = "generate";

/// Elementwise comparison of `got` with `want`: the largest |got - want| and whether every
/// element is within `atol + rtol * |want|`. Positions where `mask` (broadcast from the
/// leading dims) is zero are ignored.
pub fn compare(got: &Tensor, want: &Tensor, mask: Option<&Tensor>, atol: f64, rtol: f64) -> Result<(f32, bool)> {
    if got.dims() != want.dims() {
        bail!("shape {:?}, expected {:?}", got.dims(), want.dims());
    }
    let got = got.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let want = want.to_dtype(DType::F32)?;
    let diff = (&got - &want)?.abs()?;
    let excess = (&diff - ((want.abs()? * rtol)? + atol)?)?;
    let (diff, excess) = match mask {
        Some(mask) => {
            let mask = mask.to_dtype(DType::F32)?;
            let mut shape = mask.dims().to_vec();
            if !got.dims().starts_with(&shape) {
                bail!("mask shape {:?} does not lead output shape {:?}", mask.dims(), got.dims());
            }
            shape.resize(got.rank(), 1);
            let mask = mask.reshape(shape)?.broadcast_as(got.dims())?;
            // Masked positions count as zero difference and a large negative excess.
            let excess = ((&excess * &mask)? + ((1.0 - &mask)? * -1.0)?)?;
            ((&diff * &mask)?, excess)
        }
        None => (diff, excess),
    };
    let max_diff = diff.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let worst_excess = excess.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok((max_diff, worst_excess <= 0.0 && max_diff.is_finite()))
}

/// Load and run one fixture directory through the Auto class of its task.
pub fn run_fixture(dir: &Path) -> Result<Outcome> {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
    let field = |k: &str| reference.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (model_type, task_name) = (field("model_type"), field("task"));
    let unsupported =
        |reason: String| Outcome::Unsupported { model_type: model_type.clone(), task: task_name.clone(), reason };
    if reference.get("format").and_then(Value::as_u64) != Some(1) {
        bail!("reference.json has no `format: 1`");
    }
    let Ok(task) = task_name.parse::<Task>() else {
        return Ok(unsupported(format!("unknown task `{task_name}`")));
    };
    if reference.get("generate").is_some()
        && !matches!(
            task,
            Task::CausalLm
                | Task::Seq2SeqLm
                | Task::SpeechSeq2Seq
                | Task::ImageTextToText
                | Task::MultimodalLm
                | Task::Vision2Seq
        )
    {
        return Ok(unsupported(format!("`generate` for the task `{task_name}` is not implemented")));
    }
    // A GGUF fixture (`gguf_file`): everything comes from the file, dequantized to f32 as
    // transformers loads it.
    let opts = match reference.get("gguf_file").and_then(Value::as_str) {
        Some(file) => LoadOptions::new().gguf_file(file).dtype(DType::F32),
        None => LoadOptions::default(),
    };
    run_fixture_with(dir, &reference, task, &opts)
}

/// [`run_fixture`] with the load options given (a GGUF fixture in quantized mode, ...).
pub fn run_fixture_with(dir: &Path, reference: &Value, task: Task, opts: &LoadOptions) -> Result<Outcome> {
    let field = |k: &str| reference.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (model_type, task_name) = (field("model_type"), field("task"));
    let unsupported =
        |reason: String| Outcome::Unsupported { model_type: model_type.clone(), task: task_name.clone(), reason };
    let model = match TaskModel::from_pretrained_with(task, &dir.to_string_lossy(), opts) {
        Ok(m) => m.value,
        Err(
            e @ (autocandle::Error::UnknownModelType { .. }
            | autocandle::Error::NotCompiledIn { .. }
            | autocandle::Error::NoHeadForTask { .. }
            | autocandle::Error::Unsupported(_)),
        ) => return Ok(unsupported(e.to_string())),
        Err(e) => return Err(e).context("loading the model"),
    };
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)?;
    let get = |name: &str| tensors.get(name).with_context(|| format!("reference.safetensors has no `{name}`"));
    let mut inputs = ModelInputs::default();
    for name in reference.get("inputs").and_then(Value::as_array).context("reference.json has no `inputs`")? {
        let name = name.as_str().context("input names are strings")?;
        inputs.set(name, get(name)?.clone())?;
    }
    let output = model.forward(&inputs)?;
    let atol = reference.get("atol").and_then(Value::as_f64).unwrap_or(1e-4);
    let rtol = reference.get("rtol").and_then(Value::as_f64).unwrap_or(1e-4);
    let mut worst = 0f32;
    let outputs = reference.get("outputs").and_then(Value::as_object).context("reference.json has no `outputs`")?;
    for (name, spec) in outputs {
        let Some(got) = output.get(name) else {
            return Ok(Outcome::Fail {
                output: name.clone(),
                max_abs_diff: f32::INFINITY,
                detail: format!("the model output has no `{name}`"),
            });
        };
        let mask = match spec.get("mask").and_then(Value::as_str) {
            Some(m) => Some(get(m)?),
            None => None,
        };
        match compare(got, get(name)?, mask, atol, rtol) {
            Ok((diff, true)) => worst = worst.max(diff),
            Ok((diff, false)) => {
                return Ok(Outcome::Fail {
                    output: name.clone(),
                    max_abs_diff: diff,
                    detail: format!("outside atol {atol} + rtol {rtol}"),
                })
            }
            Err(e) => {
                return Ok(Outcome::Fail { output: name.clone(), max_abs_diff: f32::INFINITY, detail: e.to_string() })
            }
        }
    }
    // `generate`: greedy; `x-beam` (autocandle's extension of the format): beam search;
    // `x-beams` (the same extension): a list of beam searches, each with its settings.
    let beams = reference.get("x-beams").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let specs = [("generate", GENERATE), ("x-beam", BEAM)]
        .into_iter()
        .filter_map(|(key, what)| reference.get(key).map(|spec| (spec, what)))
        .chain(beams.iter().map(|spec| (spec, BEAM)));
    for (spec, what) in specs {
        if let Some(fail) = check_generate(&model, spec, &tensors, what)? {
            return Ok(fail);
        }
    }
    Ok(Outcome::Pass { max_abs_diff: worst })
}

/// The output name of a failed beam search check.
const BEAM: &str = "generate-beam";

/// Decoding from `spec.prompt` for `spec.max_new_tokens` must give exactly `spec.expected` (for
/// causal LMs the prompt included, for seq2seq the decoder output from its start token):
/// greedy, or beam search with the `num_beams`, `length_penalty`, `early_stopping` and
/// `no_repeat_ngram_size` of `spec`. `None` when it does.
///
/// The entries of `x-beams` (tests/fixtures/make_beam_fixtures.py) may add, for causal LMs:
/// `attention_mask` (a tensor name: the prompt rows are left-padded where it is 0),
/// `num_return_sequences`, `eos_token_id` (a list; without it there is no EOS stop),
/// `pad_token_id`, `repetition_penalty`, `min_new_tokens`, and `scores` (a tensor name:
/// `transformers`' `sequences_scores`, compared within the fixture's atol and rtol).
fn check_generate(
    model: &TaskModel,
    spec: &Value,
    tensors: &HashMap<String, Tensor>,
    what: &str,
) -> Result<Option<Outcome>> {
    let name = |key: &str| spec.get(key).and_then(Value::as_str).with_context(|| format!("`{what}` has no `{key}`"));
    let get = |key: &str| -> Result<Vec<Vec<u32>>> {
        let tensor_name = name(key)?;
        let t = tensors.get(tensor_name).with_context(|| format!("reference.safetensors has no `{tensor_name}`"))?;
        let rows: Vec<Vec<i64>> = t.to_dtype(DType::I64)?.to_vec2()?;
        Ok(rows.into_iter().map(|r| r.into_iter().map(|v| v as u32).collect()).collect())
    };
    let max_new_tokens =
        spec.get("max_new_tokens").and_then(Value::as_u64).context("`generate` has no `max_new_tokens`")? as usize;
    let expected = get("expected")?;
    // A speech model's prompt is its float encoder input (`input_features`).
    let prompt = if matches!(model, TaskModel::SpeechSeq2Seq(_)) { Vec::new() } else { get("prompt")? };
    let mut mask = spec.get("attention_mask").map(|_| get("attention_mask")).transpose()?;
    // `extra_inputs`: forward arguments passed to `generate` beside the prompt (the images of
    // a vision-language model); an `attention_mask` there is the prompt's.
    let mut extra = ModelInputs::default();
    for (arg, tensor_name) in spec.get("extra_inputs").and_then(Value::as_object).into_iter().flatten() {
        let tensor_name = tensor_name.as_str().context("`extra_inputs` maps names to tensor names")?;
        let t = tensors.get(tensor_name).with_context(|| format!("reference.safetensors has no `{tensor_name}`"))?;
        if arg == "attention_mask" {
            let rows: Vec<Vec<i64>> = t.to_dtype(DType::I64)?.to_vec2()?;
            mask = Some(rows.into_iter().map(|r| r.into_iter().map(|v| v as u32).collect()).collect());
        } else {
            extra.set(arg, t.clone())?;
        }
    }
    let mut config = GenerationConfig::new().do_sample(false).max_new_tokens(max_new_tokens);
    let uint = |key: &str| spec.get(key).and_then(Value::as_u64).map(|v| v as usize);
    if let Some(n) = uint("num_return_sequences") {
        config = config.num_return_sequences(n);
    }
    if let Some(n) = uint("min_new_tokens") {
        config = config.min_new_tokens(n);
    }
    if let Some(p) = uint("pad_token_id") {
        config = config.pad_token_id(p as u32);
    }
    if let Some(p) = spec.get("repetition_penalty").and_then(Value::as_f64) {
        config = config.repetition_penalty(p);
    }
    if let Some(eos) = spec.get("eos_token_id").and_then(Value::as_array) {
        config = config.eos_token_ids(eos.iter().filter_map(Value::as_u64).map(|e| e as u32));
    }
    if let Some(n) = spec.get("num_beams").and_then(Value::as_u64) {
        config = config.num_beams(n as usize);
    }
    if let Some(p) = spec.get("length_penalty").and_then(Value::as_f64) {
        config = config.length_penalty(p);
    }
    if let Some(e) = spec.get("early_stopping") {
        config = config.early_stopping(serde_json::from_value(e.clone()).context("`early_stopping`")?);
    }
    if let Some(n) = spec.get("no_repeat_ngram_size").and_then(Value::as_u64).filter(|n| *n > 0) {
        config = config.no_repeat_ngram_size(n as usize);
    }
    let prompts = match mask {
        Some(mask) => Prompts::new(prompt.clone()).with_attention_mask(mask),
        None => Prompts::new(prompt.clone()),
    };
    let result = match model {
        TaskModel::CausalLm(m) => m.generate_output(prompts, &config, None),
        TaskModel::ImageTextToText(m) => WithImages::new(m.as_ref(), extra).generate_output(prompts, &config, None),
        TaskModel::MultimodalLm(m) => WithImages::new(m.as_ref(), extra).generate_output(prompts, &config, None),
        TaskModel::Vision2Seq(m) => WithImages::new(m.as_ref(), extra).generate_output(prompts, &config, None),
        TaskModel::Seq2SeqLm(m) => {
            let rows = prompt.len();
            let width = prompt.first().map_or(0, Vec::len);
            let ids =
                Tensor::from_vec(prompt.iter().flatten().copied().collect::<Vec<u32>>(), (rows, width), m.device())?;
            m.generate_output(&ModelInputs::new(ids), &config, None)
        }
        TaskModel::SpeechSeq2Seq(m) => {
            let tensor_name = name("prompt")?;
            let features =
                tensors.get(tensor_name).with_context(|| format!("reference.safetensors has no `{tensor_name}`"))?;
            m.generate_output(&ModelInputs::from_input_features(features.to_device(m.device())?), &config, None)
        }
        _ => bail!("`{what}` in a fixture whose task does not generate"),
    };
    let got = match result {
        Ok(got) => got,
        Err(e) => {
            return Ok(Some(Outcome::Fail {
                output: what.to_owned(),
                max_abs_diff: expected.iter().map(Vec::len).sum::<usize>() as f32,
                detail: format!("generate failed: {e}"),
            }))
        }
    };
    let scores = got.sequences_scores.clone();
    let got = got.sequences;
    let mismatches: usize = expected
        .iter()
        .zip(&got)
        .map(|(want, got)| {
            let common = want.iter().zip(got).filter(|(a, b)| a != b).count();
            common + want.len().abs_diff(got.len())
        })
        .sum::<usize>()
        + expected.len().abs_diff(got.len());
    if mismatches == 0 {
        let Some(name) = spec.get("scores").and_then(Value::as_str) else { return Ok(None) };
        let want = tensors.get(name).with_context(|| format!("reference.safetensors has no `{name}`"))?;
        let Some(scores) = scores else {
            return Ok(Some(Outcome::Fail {
                output: what.to_owned(),
                max_abs_diff: f32::INFINITY,
                detail: "generate returned no `sequences_scores`".to_owned(),
            }));
        };
        let got = Tensor::new(scores, &Device::Cpu)?;
        return Ok(match compare(&got, want, None, 1e-4, 1e-4) {
            Ok((_, true)) => None,
            Ok((diff, false)) => Some(Outcome::Fail {
                output: format!("{what} sequences_scores"),
                max_abs_diff: diff,
                detail: format!("sequences_scores {got} differ from {want}"),
            }),
            Err(e) => Some(Outcome::Fail {
                output: format!("{what} sequences_scores"),
                max_abs_diff: f32::INFINITY,
                detail: e.to_string(),
            }),
        });
    }
    Ok(Some(Outcome::Fail {
        output: what.to_owned(),
        max_abs_diff: mismatches as f32,
        detail: format!("{what} differs: expected {expected:?}, got {got:?}"),
    }))
}
