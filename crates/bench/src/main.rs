//! The Rust sides of the autocandle benchmark: one scenario with one implementation per
//! process (autocandle's Auto classes, or candle-transformers' models on the same weight
//! files), printing one JSON line. `cargo xtask bench` runs it next to `bench.py`, the
//! PyTorch side, and writes the table (see docs/performance.md).

use std::fmt::Display;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use autocandle::bert::{BertConfig, BertModel};
use autocandle::{
    open_image, AutoModel, AutoModelForCTC, AutoModelForCausalLM, AutoModelForImageClassification,
    AutoModelForImageTextToText, AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq, AutoProcessor, AutoTokenizer, DType,
    Device, ForCausalLm, GenerationConfig, GenerationMixin, LoadOptions, Model, ModelInputs, Seq2SeqGenerationMixin,
    Tensor, WithImages,
};
use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use candle_core::D;
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, llama, t5, vit};
use serde_json::{json, Map, Value};

const USAGE: &str = "\
usage: autocandle-bench <scenario> --impl ours|candle --model DIR [--threads N] [--warmup W] [--iters K]

scenarios:
  encoder-1x16, encoder-32x128  MiniLM-L6 forward (AutoModel / bert::BertModel), f32
  encoder-32x128-bf16           the same in bf16 (ours only), and its deviation from the f32 model's output
  deberta-32x128, deberta-32x128-bf16
                                DeBERTa-v3-base shape forward (AutoModel), f32 / bf16 (ours only)
  modernbert-32x128, modernbert-32x128-bf16
                                ModernBERT-base shape forward (AutoModel), f32 and bf16 (ours only)
  decoder                       SmolLM2-135M shape: prefill 128 tokens, then 128 greedy tokens
  decoder-bf16                  the same in bf16 (ours only), and its logits and greedy tokens against f32
  moe, moe-top2, moe-top8, moe-16x4
                                Qwen3-MoE shape (8 layers, hidden 1024, 32 experts, top-4; top-2, top-8,
                                or 16 experts): prefill 128 tokens, then 128 greedy tokens (ours only)
  seq2seq                       t5-small shape: 64 tokens in, 32 greedy tokens out
  vit                           vit-base shape image classification, batch 8
  convnext-tiny                 ConvNeXT-tiny shape image classification, batch 8 of 224 x 224 (ours only)
  dinov2-base                   DINOv2-base shape (AutoModel), batch 8 at 224 px: position embeddings
                                interpolated from the 518 px grid (ours only; PyTorch is the other side)
  whisper-base-30s              Whisper-base shape: the encoder on 30 s (3000 frames), then 32 greedy
                                tokens (ours only; PyTorch is the other side)
  wav2vec2-ctc                  wav2vec2-base shape CTC logits of 10 s of 16 kHz audio (ours only)
  load-minilm, load-smollm2     from_pretrained to the first output (warm page cache), peak RSS
  dispatch                      AutoModel against autocandle_bert::BertModel built directly (ours only)
  gguf-<type> --gguf FILE       a GGUF file of SmolLM2-135M, weights kept quantized: load to the first
                                token, peak RSS, prefill 128 tokens, 128 greedy tokens (ours only)
  gguf-accuracy-<type> --gguf FILE
                                the quantized model against the same file dequantized to f32: greedy
                                agreement over 128 tokens on 4 prompts, logit deviations, perplexity
                                of the repository's LICENSE text (ours only)
  smolvlm-256m, qwen2_5_vl-scaled
                                vision-language models (random weights, real processors): the folder's
                                bench-image.png (512 x 512) and bench-prompt.txt through AutoProcessor and
                                AutoModelForImageTextToText, from the raw inputs to the first token, then
                                32 greedy tokens (ours only; PyTorch is the other side)
  whisper-features-30s, whisper-features-8x30s --model FOLDER
                                WhisperFeatureExtractor on 30 s of 16 kHz audio, batch 1 or 8; FOLDER holds
                                a preprocessor_config.json (ours only)

Prints one JSON line. Threads: --threads sets RAYON_NUM_THREADS and CANDLE_NUM_THREADS
(default: those variables, else the number of cores); run through `cargo xtask bench`.";

/// Number of new tokens of the decoder scenario, after a 128-token prompt.
const DECODER_PROMPT: usize = 128;
const DECODER_NEW: usize = 128;
/// Source and target lengths of the encoder-decoder scenario.
const SEQ2SEQ_SOURCE: usize = 64;
const SEQ2SEQ_NEW: usize = 32;
/// The Whisper scenario: 80 mel bins, 3000 frames (30 s), 32 greedy tokens.
const WHISPER_MELS: usize = 80;
const WHISPER_FRAMES: usize = 3000;
const WHISPER_NEW: usize = 32;
/// Batch and image size of the ViT scenario.
const VIT_BATCH: usize = 8;
const VIT_SIZE: usize = 224;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    /// autocandle through its Auto classes.
    Ours,
    /// candle-transformers' model types, on the same candle build.
    Candle,
}

#[derive(Debug)]
struct Args {
    scenario: String,
    imp: Impl,
    model: PathBuf,
    warmup: usize,
    iters: usize,
    /// The GGUF file inside `model` (the `gguf-*` scenarios).
    gguf: Option<String>,
}

fn main() -> std::process::ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(out) => {
            println!("{}", Value::Object(out));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut scenario = None;
    let (mut imp, mut model, mut warmup, mut iters, mut gguf) = (None, None, 1, 3, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("`{name}` needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--impl" => {
                imp = Some(match value("--impl")?.as_str() {
                    "ours" => Impl::Ours,
                    "candle" => Impl::Candle,
                    other => bail!("unknown implementation `{other}`: use `ours` or `candle`"),
                })
            }
            "--model" => model = Some(PathBuf::from(value("--model")?)),
            "--threads" => {
                let n: usize = number(&value("--threads")?, "--threads")?;
                // Before any candle call: rayon sizes its pool from it on first use, and
                // candle's matmul reads it for every product.
                std::env::set_var("RAYON_NUM_THREADS", n.to_string());
                std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
            }
            "--warmup" => warmup = number(&value("--warmup")?, "--warmup")?,
            "--iters" => iters = number(&value("--iters")?, "--iters")?,
            "--gguf" => gguf = Some(value("--gguf")?),
            "-h" | "--help" => bail!("{USAGE}"),
            other if other.starts_with('-') => bail!("unknown option `{other}`\n\n{USAGE}"),
            other if scenario.is_none() => scenario = Some(other.to_owned()),
            other => bail!("unexpected argument `{other}`\n\n{USAGE}"),
        }
    }
    let args = Args {
        scenario: scenario.with_context(|| format!("no scenario given\n\n{USAGE}"))?,
        imp: imp.with_context(|| format!("no `--impl` given\n\n{USAGE}"))?,
        model: model.with_context(|| format!("no `--model` folder given\n\n{USAGE}"))?,
        warmup,
        iters,
        gguf,
    };
    if args.iters == 0 {
        bail!("`--iters` must be at least 1");
    }
    if let Some(file) = &args.gguf {
        if !args.model.join(file).is_file() {
            bail!("`{}` has no `{file}` (--gguf)", args.model.display());
        }
    } else if args.scenario.starts_with("whisper-features") {
        if !args.model.join("preprocessor_config.json").is_file() {
            bail!("`{}` has no preprocessor_config.json (--model)", args.model.display());
        }
    } else if !args.model.join("config.json").is_file() {
        bail!("`{}` has no config.json: give a model folder (run through `cargo xtask bench`)", args.model.display());
    }
    Ok(args)
}

fn number(text: &str, name: &str) -> Result<usize> {
    text.parse().with_context(|| format!("`{name}` takes a whole number, got `{text}`"))
}

fn run(args: &Args) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    out.insert("scenario".into(), json!(args.scenario));
    out.insert("impl".into(), json!(if args.imp == Impl::Ours { "ours" } else { "candle" }));
    out.insert("threads".into(), json!(candle_core::utils::get_num_threads()));
    out.insert("candle".into(), json!(CANDLE_VERSION));
    // Whether candle's own CPU kernels found AVX2 / F16C (detected at run time).
    out.insert("candle_avx2".into(), json!(candle_core::utils::with_avx()));
    out.insert("candle_f16c".into(), json!(candle_core::utils::with_f16c()));
    let dir = args.model.as_path();
    match (args.scenario.as_str(), args.imp) {
        (s, imp) if s.starts_with("encoder-") => {
            let (shape, dtype) = scenario_dtype(s.trim_start_matches("encoder-"));
            let (batch, seq) = batch_seq(shape)?;
            encoder(dir, imp, dtype, batch, seq, args, &mut out)?;
        }
        (s, Impl::Ours) if s.starts_with("deberta-") => {
            let (shape, dtype) = scenario_dtype(s.trim_start_matches("deberta-"));
            let (batch, seq) = batch_seq(shape)?;
            encoder(dir, Impl::Ours, dtype, batch, seq, args, &mut out)?;
        }
        (s, Impl::Ours) if s.starts_with("modernbert-") => {
            let (shape, dtype) = scenario_dtype(s.trim_start_matches("modernbert-"));
            let (batch, seq) = batch_seq(shape)?;
            encoder(dir, Impl::Ours, dtype, batch, seq, args, &mut out)?;
        }
        (s, Impl::Candle) if s.starts_with("modernbert-") => {
            bail!("the ModernBERT scenarios compare autocandle with PyTorch: run them with `--impl ours`")
        }
        ("decoder", imp) => decoder(dir, imp, DType::F32, args, &mut out)?,
        ("decoder-bf16", imp) => decoder(dir, imp, DType::BF16, args, &mut out)?,
        (s, Impl::Ours) if s.starts_with("moe") => decoder(dir, Impl::Ours, DType::F32, args, &mut out)?,
        ("seq2seq", imp) => seq2seq(dir, imp, args, &mut out)?,
        ("vit", imp) => vit_forward(dir, imp, args, &mut out)?,
        ("convnext-tiny", Impl::Ours) => vit_forward(dir, Impl::Ours, args, &mut out)?,
        ("convnext-tiny", Impl::Candle) => {
            bail!("the ConvNeXT scenario compares autocandle with PyTorch: run it with `--impl ours`")
        }
        ("dinov2-base", Impl::Ours) => dinov2_forward(dir, args, &mut out)?,
        ("dinov2-base", Impl::Candle) => {
            bail!("the DINOv2 scenario compares autocandle with PyTorch: run it with `--impl ours`")
        }
        ("whisper-base-30s", Impl::Ours) => whisper(dir, args, &mut out)?,
        ("whisper-base-30s", Impl::Candle) => {
            bail!("the Whisper scenario compares autocandle with PyTorch: run it with `--impl ours`")
        }
        ("wav2vec2-ctc", Impl::Ours) => wav2vec2_ctc(dir, args, &mut out)?,
        ("wav2vec2-ctc", Impl::Candle) => {
            bail!("candle-transformers has no wav2vec2: run `wav2vec2-ctc` with `--impl ours`")
        }
        ("load-minilm", imp) => load_minilm(dir, imp, &mut out)?,
        ("load-smollm2", imp) => load_smollm2(dir, imp, &mut out)?,
        ("dispatch", Impl::Ours) => dispatch(dir, args, &mut out)?,
        ("smolvlm-256m" | "qwen2_5_vl-scaled", Impl::Ours) => vlm(dir, args, &mut out)?,
        ("smolvlm-256m" | "qwen2_5_vl-scaled", Impl::Candle) => {
            bail!("the vision-language scenarios compare autocandle with PyTorch: run them with `--impl ours`")
        }
        (s, Impl::Ours) if s.starts_with("whisper-features") => whisper_features(dir, s, args, &mut out)?,
        (s, Impl::Candle) if s.starts_with("whisper-features") => {
            bail!("the feature-extractor scenarios compare autocandle with transformers: run them with `--impl ours`")
        }
        (s, Impl::Ours) if s.starts_with("gguf-accuracy") => gguf_accuracy(dir, args, &mut out)?,
        (s, Impl::Ours) if s.starts_with("gguf-") => gguf_decoder(dir, args, &mut out)?,
        (s, Impl::Candle) if s.starts_with("gguf-") => {
            bail!("the GGUF scenarios compare autocandle with llama.cpp and PyTorch: run them with `--impl ours`")
        }
        ("dispatch", Impl::Candle) => bail!("`dispatch` compares autocandle with itself: run it with `--impl ours`"),
        (other, _) => bail!("unknown scenario `{other}`\n\n{USAGE}"),
    }
    out.insert("peak_rss_mib".into(), json!(mib(status_kib("VmHWM"))));
    Ok(out)
}

/// The candle version both Rust sides are built on (pinned in crates/bench/Cargo.toml).
const CANDLE_VERSION: &str = "0.11.1";

/// A scenario name's dtype: `-bf16` at its end, else f32; and the name without it.
fn scenario_dtype(name: &str) -> (&str, DType) {
    match name.strip_suffix("-bf16") {
        Some(rest) => (rest, DType::BF16),
        None => (name, DType::F32),
    }
}

/// The options every autocandle load of the benchmark uses: the CPU, in `dtype`.
fn load_options(dtype: DType) -> LoadOptions {
    LoadOptions::new().dtype(dtype)
}

/// candle-transformers is left out of the bf16 scenarios: its CPU bf16 matmul widens both
/// operands to f32 on every call, which measures a conversion rather than a bf16 path.
fn f32_only(imp: Impl, dtype: DType) -> Result<()> {
    if imp == Impl::Candle && dtype != DType::F32 {
        bail!("the {} scenarios run autocandle and PyTorch only: run them with `--impl ours`", dtype.as_str());
    }
    Ok(())
}

fn batch_seq(text: &str) -> Result<(usize, usize)> {
    let (b, s) = text.split_once('x').with_context(|| format!("expected BATCHxSEQ such as 32x128, got `{text}`"))?;
    Ok((number(b, "batch")?, number(s, "sequence length")?))
}

// ---------------------------------------------------------------------------------------
// Inputs and measurements, the same as bench.py's.

/// Token ids every side of the benchmark uses: away from special tokens, below every vocab.
fn ids(batch: usize, seq: usize) -> Result<Tensor> {
    let v: Vec<u32> =
        (0..batch).flat_map(|b| (0..seq).map(move |t| 1000 + ((b * 1009 + t * 7919) % 20000) as u32)).collect();
    Ok(Tensor::from_vec(v, (batch, seq), &Device::Cpu)?)
}

/// Pixel values in [-1, 1), as a ViT processor would give them.
fn pixels(batch: usize, size: usize) -> Result<Tensor> {
    let n = batch * 3 * size * size;
    let v: Vec<f32> = (0..n).map(|i| ((i * 7) % 251) as f32 / 125.0 - 1.0).collect();
    Ok(Tensor::from_vec(v, (batch, 3, size, size), &Device::Cpu)?)
}

/// Log-mel features `[1, mel, frames]` in [-1, 1), the Whisper scenario's input (the same as
/// bench.py's `mel_features`).
fn mel_features(mel: usize, frames: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..mel * frames).map(|i| ((i * 7) % 251) as f32 / 125.0 - 1.0).collect();
    Ok(Tensor::from_vec(v, (1, mel, frames), &Device::Cpu)?)
}

/// A `kB` field of /proc/self/status (VmHWM: peak RSS, VmRSS, RssAnon, RssFile); 0 where
/// there is no such file (not Linux).
fn status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Run `f` `warmup` times untimed, then `iters` times timed; the times in ms.
fn timed(warmup: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    (0..iters)
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(ms_since(start))
        })
        .collect()
}

fn record_times(out: &mut Map<String, Value>, times: &[f64]) {
    out.insert("ms".into(), json!(median(times)));
    out.insert("times_ms".into(), json!(times));
}

/// Mean absolute value, to check that the sides computed the same thing.
fn checksum(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.abs()?.mean_all()?.to_scalar::<f64>()?)
}

fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("`{}` has no .safetensors file", dir.display());
    }
    Ok(files)
}

fn weights_mib(dir: &Path) -> Result<f64> {
    let mut bytes = 0;
    for f in safetensors_files(dir)? {
        bytes += std::fs::metadata(&f).with_context(|| format!("cannot read `{}`", f.display()))?.len();
    }
    Ok((bytes as f64 / 1048576.0 * 10.0).round() / 10.0)
}

/// candle's memory-mapped `VarBuilder` over the folder's safetensors files, f32 on the CPU,
/// as candle-transformers' examples load their models.
#[allow(unsafe_code)]
fn mmap_var_builder(dir: &Path) -> Result<VarBuilder<'static>> {
    let files = safetensors_files(dir)?;
    // SAFETY: the benchmark's weight files are not changed while it runs, which is what
    // memory-mapping them requires.
    Ok(unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, &Device::Cpu)? })
}

fn read_config(dir: &Path) -> Result<Value> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not valid JSON", path.display()))
}

fn field<'a>(config: &'a Value, key: &str) -> Result<&'a Value> {
    config.get(key).filter(|v| !v.is_null()).with_context(|| format!("config.json has no `{key}`"))
}

fn usize_field(config: &Value, key: &str) -> Result<usize> {
    let v = field(config, key)?;
    v.as_u64().map(|n| n as usize).with_context(|| format!("config.json: `{key}` = {v} is not a whole number"))
}

fn f64_field(config: &Value, key: &str) -> Result<f64> {
    let v = field(config, key)?;
    v.as_f64().with_context(|| format!("config.json: `{key}` = {v} is not a number"))
}

fn context<T, E: Display>(r: std::result::Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------
// candle-transformers' configs, from the same config.json.

fn candle_bert_config(dir: &Path) -> Result<bert::Config> {
    serde_json::from_value(read_config(dir)?).context("config.json does not read as candle-transformers' bert::Config")
}

/// candle-transformers' llama config from the numbers of config.json (its own reader does
/// not know `transformers` 5's `rope_parameters` and would fall back to theta 10000).
fn candle_llama_config(dir: &Path) -> Result<llama::Config> {
    let c = read_config(dir)?;
    let rope_theta = match c.get("rope_parameters").and_then(|p| p.get("rope_theta")) {
        Some(v) => v.as_f64().context("config.json: `rope_parameters.rope_theta` is not a number")?,
        None => f64_field(&c, "rope_theta")?,
    };
    if let Some(kind) = c.pointer("/rope_parameters/rope_type").and_then(Value::as_str).filter(|t| *t != "default") {
        bail!("rope type `{kind}`: the benchmark's candle-transformers side only sets up default rotary embeddings");
    }
    let heads = usize_field(&c, "num_attention_heads")?;
    Ok(llama::Config {
        hidden_size: usize_field(&c, "hidden_size")?,
        intermediate_size: usize_field(&c, "intermediate_size")?,
        vocab_size: usize_field(&c, "vocab_size")?,
        num_hidden_layers: usize_field(&c, "num_hidden_layers")?,
        num_attention_heads: heads,
        num_key_value_heads: usize_field(&c, "num_key_value_heads").unwrap_or(heads),
        use_flash_attn: false,
        rms_norm_eps: f64_field(&c, "rms_norm_eps")?,
        rope_theta: rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: usize_field(&c, "max_position_embeddings")?,
        tie_word_embeddings: c.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn candle_t5_config(dir: &Path) -> Result<t5::Config> {
    serde_json::from_value(read_config(dir)?).context("config.json does not read as candle-transformers' t5::Config")
}

fn candle_vit_config(dir: &Path) -> Result<(vit::Config, usize)> {
    let c = read_config(dir)?;
    let act = field(&c, "hidden_act")?;
    if act.as_str() != Some("gelu") {
        bail!("hidden_act {act}: the benchmark's ViT models use `gelu`");
    }
    let labels = c.get("id2label").and_then(Value::as_object).map_or(2, Map::len);
    let config = vit::Config {
        hidden_size: usize_field(&c, "hidden_size")?,
        num_hidden_layers: usize_field(&c, "num_hidden_layers")?,
        num_attention_heads: usize_field(&c, "num_attention_heads")?,
        intermediate_size: usize_field(&c, "intermediate_size")?,
        hidden_act: candle_nn::Activation::Gelu,
        layer_norm_eps: f64_field(&c, "layer_norm_eps")?,
        image_size: usize_field(&c, "image_size")?,
        patch_size: usize_field(&c, "patch_size")?,
        num_channels: usize_field(&c, "num_channels")?,
        qkv_bias: c.get("qkv_bias").and_then(Value::as_bool).unwrap_or(true),
    };
    Ok((config, labels))
}

fn path_str(dir: &Path) -> Result<&str> {
    dir.to_str().with_context(|| format!("the model folder `{}` is not valid UTF-8", dir.display()))
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// How far `approx` (bf16, say) is from `reference` (f32), computed in f64: `max_abs_dev` and
/// `mean_abs_dev` (of |approx - reference| over every element) and `max_abs_f32` (the largest
/// |reference|, for scale).
fn record_deviation(approx: &Tensor, reference: &Tensor, out: &mut Map<String, Value>) -> Result<()> {
    if approx.dims() != reference.dims() {
        bail!("the outputs to compare differ in shape: {:?} against {:?}", approx.dims(), reference.dims());
    }
    let reference = reference.to_dtype(DType::F64)?;
    let diff = (approx.to_dtype(DType::F64)? - &reference)?.abs()?;
    out.insert("max_abs_dev".into(), json!(diff.max_all()?.to_scalar::<f64>()?));
    out.insert("mean_abs_dev".into(), json!(diff.mean_all()?.to_scalar::<f64>()?));
    out.insert("max_abs_f32".into(), json!(reference.abs()?.max_all()?.to_scalar::<f64>()?));
    Ok(())
}

/// (a) Encoder forward: `last_hidden_state` of MiniLM on `batch` x `seq` ids, all attended,
/// in `dtype`. Not in f32, the f32 model's output on the same ids is compared with it, after
/// the timed part (`record_deviation`).
fn encoder(
    dir: &Path,
    imp: Impl,
    dtype: DType,
    batch: usize,
    seq: usize,
    args: &Args,
    out: &mut Map<String, Value>,
) -> Result<()> {
    f32_only(imp, dtype)?;
    out.insert("dtype".into(), json!(dtype.as_str()));
    let x = ids(batch, seq)?;
    let mask = x.ones_like()?;
    let mut last = None;
    let times = match imp {
        Impl::Ours => {
            let load = |dtype| {
                context(
                    AutoModel::from_pretrained_with(path_str(dir)?, &load_options(dtype)),
                    "AutoModel::from_pretrained",
                )
                .map(|l| l.value)
            };
            let model = load(dtype)?;
            let inputs = ModelInputs::new(x).with_attention_mask(mask);
            let times = timed(args.warmup, args.iters, || {
                last = Some(context(model.forward(&inputs), "forward")?.last_hidden_state);
                Ok(())
            })?;
            if dtype != DType::F32 {
                drop(model);
                let h = last.as_ref().context("no forward ran")?;
                let reference = context(load(DType::F32)?.forward(&inputs), "forward")?.last_hidden_state;
                record_deviation(h, &reference, out)?;
            }
            times
        }
        Impl::Candle => {
            let model = bert::BertModel::load(mmap_var_builder(dir)?, &candle_bert_config(dir)?)?;
            let token_type_ids = x.zeros_like()?;
            timed(args.warmup, args.iters, || {
                last = Some(model.forward(&x, &token_type_ids, Some(&mask))?);
                Ok(())
            })?
        }
    };
    record_times(out, &times);
    if let Some(h) = last {
        out.insert("checksum".into(), json!(checksum(&h)?));
    }
    Ok(())
}

fn argmax_last(logits: &Tensor) -> Result<u32> {
    // `[1, vocab]` or `[1, seq, vocab]`: the last position of the one row.
    let logits = match logits.rank() {
        3 => logits.get(0)?.get(logits.dim(1)? - 1)?,
        2 => logits.get(0)?,
        r => bail!("unexpected logits of rank {r}"),
    };
    Ok(logits.argmax(D::Minus1)?.to_scalar::<u32>()?)
}

/// New greedy tokens of the vision-language scenarios, after the image and the prompt.
const VLM_NEW: usize = 32;

/// The vision-language scenarios (`smolvlm-256m`, `qwen2_5_vl-scaled`): the folder's
/// `bench-image.png` (512 x 512, decoded once, outside the timing) and `bench-prompt.txt` (one
/// image placeholder, in the model's chat format) through `AutoProcessor` (`process_images`),
/// then `VLM_NEW` greedy tokens through `WithImages` and `generate_stream`. `first_token_ms`
/// runs from the raw inputs to the first new token (processor, vision encoder, prefill), as
/// bench.py times it; `processor_ms` is the processor alone, `decode_tok_s` the rate of the
/// other new tokens.
fn vlm(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let path = path_str(dir)?;
    let opts = load_options(DType::F32);
    let processor = context(AutoProcessor::from_pretrained_with(path, &opts), "AutoProcessor::from_pretrained")?;
    let model = context(AutoModelForImageTextToText::from_pretrained_with(path, &opts), "from_pretrained")?.value;
    let images = vec![vec![context(open_image(dir.join("bench-image.png")), "the benchmark image")?]];
    let prompt_file = dir.join("bench-prompt.txt");
    let prompt = std::fs::read_to_string(&prompt_file)
        .with_context(|| format!("cannot read `{}` (made by crates/bench/prepare.py)", prompt_file.display()))?;
    let texts = [prompt.as_str()];
    let device = Device::Cpu;
    let process = || context(processor.process_images(&texts, &images, &device), "process_images");
    // The model's generation config (its EOS), greedy; EOS may not end it early.
    let config = context(GenerationConfig::from_pretrained(path), "generation config")?
        .max_new_tokens(VLM_NEW)
        .min_new_tokens(VLM_NEW)
        .do_sample(false);
    let (mut first_token, mut decode, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    let (mut prompt_len, mut image_tokens, mut pixel_shape) = (0, 0, Vec::new());
    for i in 0..args.warmup + args.iters {
        let start = Instant::now();
        let inputs = process()?;
        let ids = inputs.input_ids()?.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        prompt_len = ids.first().map_or(0, Vec::len);
        let image_token = model.image_token_id();
        image_tokens = ids.iter().flatten().filter(|&&t| Some(t) == image_token).count();
        pixel_shape = inputs.pixel_values.as_ref().map(|p| p.dims().to_vec()).unwrap_or_default();
        let with_images = WithImages::new(model.as_ref(), inputs);
        let mut first = None;
        let output = context(
            with_images.generate_stream(ids, &config, None, |_| {
                first.get_or_insert_with(Instant::now);
                ControlFlow::Continue(())
            }),
            "generate",
        )?;
        let end = Instant::now();
        let first = first.context("generate made no step")?;
        let generated = output.generated(0);
        if generated.len() != VLM_NEW {
            bail!("generate made {} tokens instead of {VLM_NEW}", generated.len());
        }
        if i >= args.warmup {
            first_token.push((first - start).as_secs_f64() * 1000.0);
            decode.push((VLM_NEW - 1) as f64 / (end - first).as_secs_f64());
        }
        tokens = generated.to_vec();
    }
    let processor_times = timed(1, args.iters, || process().map(drop))?;
    out.insert("processor_ms".into(), json!(median(&processor_times)));
    out.insert("first_token_ms".into(), json!(median(&first_token)));
    out.insert("first_token_times_ms".into(), json!(first_token));
    out.insert("decode_tok_s".into(), json!(median(&decode)));
    out.insert("prompt_tokens".into(), json!(prompt_len));
    out.insert("image_tokens".into(), json!(image_tokens));
    out.insert("pixel_values_shape".into(), json!(pixel_shape));
    out.insert("tokens".into(), json!(tokens));
    Ok(())
}

/// One greedy generation of `DECODER_NEW` tokens after `prompt` with autocandle's
/// `generate`: the new tokens, the start, the arrival of the first new token and the end.
fn generate_greedy(
    model: &dyn ForCausalLm,
    config: &GenerationConfig,
    prompt: &[u32],
) -> Result<(Vec<u32>, Instant, Instant, Instant)> {
    let start = Instant::now();
    let mut first = None;
    let output = context(
        model.generate_stream(vec![prompt.to_vec()], config, None, |_| {
            first.get_or_insert_with(Instant::now);
            ControlFlow::Continue(())
        }),
        "generate",
    )?;
    let end = Instant::now();
    let generated = output.generated(0);
    if generated.len() != DECODER_NEW {
        bail!("generate made {} tokens instead of {DECODER_NEW}", generated.len());
    }
    Ok((generated.to_vec(), start, first.context("generate made no step")?, end))
}

/// `generate_greedy` `warmup` times untimed, then `iters` times: the prefill times (ms), the
/// decode rates (tokens/s) and the last run's tokens.
fn timed_greedy(
    model: &dyn ForCausalLm,
    config: &GenerationConfig,
    prompt: &[u32],
    args: &Args,
) -> Result<(Vec<f64>, Vec<f64>, Vec<u32>)> {
    let (mut prefill, mut decode, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.warmup + args.iters {
        let (generated, start, first, end) = generate_greedy(model, config, prompt)?;
        if i >= args.warmup {
            prefill.push((first - start).as_secs_f64() * 1000.0);
            decode.push((DECODER_NEW - 1) as f64 / (end - first).as_secs_f64());
        }
        tokens = generated;
    }
    Ok((prefill, decode, tokens))
}

/// (b) Decoder: a 128-token prompt, then 128 greedy tokens, batch 1, in `dtype`; the time to
/// the first new token (prefill) and the rate of the other 127. Not in f32, after the timed
/// part, the f32 model's logits of the prompt (every position) are compared with the
/// model's (`record_deviation`), and its 128 greedy tokens with the model's: `greedy_agree`
/// (equal at the same place) and `first_divergence` (the first place they differ, null if none).
fn decoder(dir: &Path, imp: Impl, dtype: DType, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    f32_only(imp, dtype)?;
    out.insert("dtype".into(), json!(dtype.as_str()));
    let prompt = ids(1, DECODER_PROMPT)?;
    let (mut prefill, mut decode, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    match imp {
        Impl::Ours => {
            let load = |dtype| {
                context(
                    AutoModelForCausalLM::from_pretrained_with(path_str(dir)?, &load_options(dtype)),
                    "from_pretrained",
                )
                .map(|l| l.value)
            };
            let model = load(dtype)?;
            // The model's generation config (its EOS), greedy; EOS may not end it early.
            let config = context(GenerationConfig::from_pretrained(path_str(dir)?), "generation config")?
                .max_new_tokens(DECODER_NEW)
                .min_new_tokens(DECODER_NEW)
                .do_sample(false);
            let prompt_ids: Vec<u32> = prompt.flatten_all()?.to_vec1()?;
            (prefill, decode, tokens) = timed_greedy(&*model, &config, &prompt_ids, args)?;
            if dtype != DType::F32 {
                let inputs = ModelInputs::new(prompt.clone());
                let logits = context(model.forward(&inputs), "forward")?.logits;
                drop(model);
                let reference = load(DType::F32)?;
                record_deviation(&logits, &context(reference.forward(&inputs), "forward")?.logits, out)?;
                let (f32_tokens, ..) = generate_greedy(&*reference, &config, &prompt_ids)?;
                let agree = tokens.iter().zip(&f32_tokens).filter(|(a, b)| a == b).count();
                let diverge = tokens.iter().zip(&f32_tokens).position(|(a, b)| a != b);
                out.insert("greedy_agree".into(), json!(agree));
                out.insert("greedy_total".into(), json!(tokens.len()));
                out.insert("first_divergence".into(), json!(diverge));
                out.insert("f32_tokens".into(), json!(&f32_tokens[..f32_tokens.len().min(16)]));
            }
        }
        Impl::Candle => {
            let config = candle_llama_config(dir)?;
            let model = llama::Llama::load(mmap_var_builder(dir)?, &config)?;
            for i in 0..args.warmup + args.iters {
                let start = Instant::now();
                let mut cache = llama::Cache::new(true, DType::F32, &config, &Device::Cpu)?;
                let mut next = argmax_last(&model.forward(&prompt, 0, &mut cache)?)?;
                let first = Instant::now();
                let mut generated = vec![next];
                for pos in DECODER_PROMPT..DECODER_PROMPT + DECODER_NEW - 1 {
                    let x = Tensor::new(&[[next]], &Device::Cpu)?;
                    next = argmax_last(&model.forward(&x, pos, &mut cache)?)?;
                    generated.push(next);
                }
                let end = Instant::now();
                if i >= args.warmup {
                    prefill.push((first - start).as_secs_f64() * 1000.0);
                    decode.push((DECODER_NEW - 1) as f64 / (end - first).as_secs_f64());
                }
                tokens = generated;
            }
        }
    }
    out.insert("prefill_ms".into(), json!(median(&prefill)));
    out.insert("decode_tok_s".into(), json!(median(&decode)));
    out.insert("tokens".into(), json!(&tokens[..tokens.len().min(16)]));
    Ok(())
}

/// (c) Encoder-decoder: 64 source tokens, 32 greedy target tokens, batch 1.
fn seq2seq(dir: &Path, imp: Impl, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let source = ids(1, SEQ2SEQ_SOURCE)?;
    let mut tokens = Vec::new();
    let times = match imp {
        Impl::Ours => {
            let model = context(AutoModelForSeq2SeqLM::from_pretrained(path_str(dir)?), "from_pretrained")?;
            let config = context(GenerationConfig::from_pretrained(path_str(dir)?), "generation config")?
                .max_new_tokens(SEQ2SEQ_NEW)
                .min_new_tokens(SEQ2SEQ_NEW)
                .do_sample(false)
                .num_beams(1);
            let inputs = ModelInputs::new(source.clone()).with_attention_mask(source.ones_like()?);
            timed(args.warmup, args.iters, || {
                let rows = context(Seq2SeqGenerationMixin::generate(&*model, &inputs, &config), "generate")?;
                let row = rows.into_iter().next().context("generate returned no row")?;
                if row.len() != 1 + SEQ2SEQ_NEW {
                    bail!("generate made {} tokens instead of {SEQ2SEQ_NEW}", row.len().saturating_sub(1));
                }
                tokens = row[1..].to_vec();
                Ok(())
            })?
        }
        Impl::Candle => {
            let config = candle_t5_config(dir)?;
            let start_token = config.decoder_start_token_id.unwrap_or(config.pad_token_id) as u32;
            let mut model = t5::T5ForConditionalGeneration::load(mmap_var_builder(dir)?, &config)?;
            timed(args.warmup, args.iters, || {
                model.clear_kv_cache();
                let encoded = model.encode(&source)?;
                let mut next = start_token;
                let mut generated = Vec::with_capacity(SEQ2SEQ_NEW);
                for _ in 0..SEQ2SEQ_NEW {
                    let x = Tensor::new(&[[next]], &Device::Cpu)?;
                    next = argmax_last(&model.decode(&x, &encoded)?)?;
                    generated.push(next);
                }
                tokens = generated;
                Ok(())
            })?
        }
    };
    record_times(out, &times);
    out.insert("tokens".into(), json!(&tokens[..tokens.len().min(16)]));
    Ok(())
}

/// (m) Whisper-base shape transcribing 30 s: the encoder on 3000 frames, then 32 greedy tokens
/// from the decoder start token (no EOS stop); the encoder alone is timed too.
fn whisper(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let features = mel_features(WHISPER_MELS, WHISPER_FRAMES)?;
    let model = context(AutoModelForSpeechSeq2Seq::from_pretrained(path_str(dir)?), "from_pretrained")?;
    let config = GenerationConfig::new().max_new_tokens(WHISPER_NEW).do_sample(false).num_beams(1);
    let inputs = ModelInputs::from_input_features(features);
    let mut tokens = Vec::new();
    let times = timed(args.warmup, args.iters, || {
        let rows = context(Seq2SeqGenerationMixin::generate(&*model, &inputs, &config), "generate")?;
        let row = rows.into_iter().next().context("generate returned no row")?;
        if row.len() != 1 + WHISPER_NEW {
            bail!("generate made {} tokens instead of {WHISPER_NEW}", row.len().saturating_sub(1));
        }
        tokens = row[1..].to_vec();
        Ok(())
    })?;
    let encoder = timed(0, args.iters, || {
        context(model.encode(&inputs), "encode")?;
        Ok(())
    })?;
    record_times(out, &times);
    out.insert("encoder_ms".into(), json!(median(&encoder)));
    out.insert("tokens".into(), json!(&tokens[..tokens.len().min(16)]));
    Ok(())
}

/// (d) ViT image classification, batch 8 of 224 x 224; (q) ConvNeXT-tiny the same way (ours only).
fn vit_forward(dir: &Path, imp: Impl, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let x = pixels(VIT_BATCH, VIT_SIZE)?;
    let mut last = None;
    let times = match imp {
        Impl::Ours => {
            let model = context(AutoModelForImageClassification::from_pretrained(path_str(dir)?), "from_pretrained")?;
            let inputs = ModelInputs::from_pixel_values(x);
            timed(args.warmup, args.iters, || {
                last = Some(context(model.forward(&inputs), "forward")?.logits);
                Ok(())
            })?
        }
        Impl::Candle => {
            let (config, labels) = candle_vit_config(dir)?;
            let model = vit::Model::new(&config, labels, mmap_var_builder(dir)?)?;
            timed(args.warmup, args.iters, || {
                last = Some(model.forward(&x)?);
                Ok(())
            })?
        }
    };
    record_times(out, &times);
    if let Some(logits) = last {
        out.insert("checksum".into(), json!(checksum(&logits)?));
    }
    Ok(())
}

/// (p) DINOv2-base shape (random weights, `image_size` 518), `AutoModel` forward on a batch of
/// 8 images of 224 x 224: the position embeddings are interpolated from 37 x 37 to 16 x 16.
fn dinov2_forward(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let model = context(AutoModel::from_pretrained(path_str(dir)?), "from_pretrained")?;
    let inputs = ModelInputs::from_pixel_values(pixels(VIT_BATCH, VIT_SIZE)?);
    let mut last = None;
    let times = timed(args.warmup, args.iters, || {
        last = Some(context(model.forward(&inputs), "forward")?.last_hidden_state);
        Ok(())
    })?;
    record_times(out, &times);
    if let Some(hidden) = last {
        out.insert("checksum".into(), json!(checksum(&hidden)?));
    }
    Ok(())
}

/// Samples of the wav2vec2 scenario: 10 s at 16 kHz.
const WAV2VEC2_SAMPLES: usize = 160_000;

/// Raw audio in [-1, 1), as a wav2vec2 feature extractor would give it; the same on every side.
fn audio(samples: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..samples).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect();
    Ok(Tensor::from_vec(v, (1, samples), &Device::Cpu)?)
}

/// wav2vec2-base shape (random weights) with its CTC head on 10 s of audio.
fn wav2vec2_ctc(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let model = context(AutoModelForCTC::from_pretrained(path_str(dir)?), "from_pretrained")?;
    let inputs = ModelInputs::from_input_values(audio(WAV2VEC2_SAMPLES)?);
    let mut last = None;
    let times = timed(args.warmup, args.iters, || {
        last = Some(context(model.forward(&inputs), "forward")?.logits);
        Ok(())
    })?;
    record_times(out, &times);
    if let Some(logits) = last {
        out.insert("checksum".into(), json!(checksum(&logits)?));
    }
    Ok(())
}

/// 30 s of 16 kHz audio, the same on every side: two tones and a slow chirp.
fn whisper_signal() -> Vec<f32> {
    (0..480_000)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let tau = std::f64::consts::TAU;
            (0.5 * (tau * 440.0 * t).sin()
                + 0.25 * (tau * 1234.5 * t).sin()
                + 0.1 * (tau * (200.0 * t + 50.0 * t * t)).sin()) as f32
        })
        .collect()
}

/// (o) WhisperFeatureExtractor on 30 s clips (batch 1, or 8 for `whisper-features-8x30s`).
fn whisper_features(dir: &Path, scenario: &str, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let batch = if scenario.ends_with("8x30s") { 8 } else { 1 };
    let extractor = context(autocandle::AutoFeatureExtractor::from_pretrained(path_str(dir)?), "from_pretrained")?;
    let signal = whisper_signal();
    let clips: Vec<&[f32]> = (0..batch).map(|_| signal.as_slice()).collect();
    let opts = autocandle::AudioFeatureOptions::default().sampling_rate(16_000);
    let mut last = None;
    let times = timed(args.warmup, args.iters, || {
        last = context(extractor.extract(&clips, &opts), "extract")?.input_features;
        Ok(())
    })?;
    record_times(out, &times);
    out.insert("batch".into(), json!(batch));
    if let Some(features) = last {
        out.insert("checksum".into(), json!(checksum(&features)?));
    }
    Ok(())
}

/// Memory after a load: peak (VmHWM) and its anonymous / file-backed parts now.
fn record_load_memory(out: &mut Map<String, Value>) {
    out.insert("peak_rss_load_mib".into(), json!(mib(status_kib("VmHWM"))));
    out.insert("rss_anon_mib".into(), json!(mib(status_kib("RssAnon"))));
    out.insert("rss_file_mib".into(), json!(mib(status_kib("RssFile"))));
}

/// (e, g) MiniLM: from_pretrained, then a 1 x 16 forward; the first thing the process does.
fn load_minilm(dir: &Path, imp: Impl, out: &mut Map<String, Value>) -> Result<()> {
    let x = ids(1, 16)?;
    out.insert("rss_before_mib".into(), json!(mib(status_kib("VmRSS"))));
    let start = Instant::now();
    let (load_ms, h) = match imp {
        Impl::Ours => {
            let model = context(AutoModel::from_pretrained(path_str(dir)?), "AutoModel::from_pretrained")?;
            let load_ms = ms_since(start);
            record_load_memory(out);
            (load_ms, context(model.forward(&ModelInputs::new(x)), "forward")?.last_hidden_state)
        }
        Impl::Candle => {
            let model = bert::BertModel::load(mmap_var_builder(dir)?, &candle_bert_config(dir)?)?;
            let load_ms = ms_since(start);
            record_load_memory(out);
            (load_ms, model.forward(&x, &x.zeros_like()?, None)?)
        }
    };
    h.flatten_all()?.get(0)?.to_scalar::<f32>()?;
    out.insert("first_output_ms".into(), json!(ms_since(start)));
    out.insert("peak_rss_first_output_mib".into(), json!(mib(status_kib("VmHWM"))));
    out.insert("load_ms".into(), json!(load_ms));
    out.insert("weights_mib".into(), json!(weights_mib(dir)?));
    Ok(())
}

/// (e, g) SmolLM2 shape: from_pretrained, then the logits of a 1 x 16 prompt.
fn load_smollm2(dir: &Path, imp: Impl, out: &mut Map<String, Value>) -> Result<()> {
    let x = ids(1, 16)?;
    out.insert("rss_before_mib".into(), json!(mib(status_kib("VmRSS"))));
    let start = Instant::now();
    let (load_ms, logits) = match imp {
        Impl::Ours => {
            let model = context(AutoModelForCausalLM::from_pretrained(path_str(dir)?), "from_pretrained")?;
            let load_ms = ms_since(start);
            record_load_memory(out);
            (load_ms, context(model.forward(&ModelInputs::new(x)), "forward")?.logits)
        }
        Impl::Candle => {
            let config = candle_llama_config(dir)?;
            let model = llama::Llama::load(mmap_var_builder(dir)?, &config)?;
            let load_ms = ms_since(start);
            record_load_memory(out);
            let mut cache = llama::Cache::new(true, DType::F32, &config, &Device::Cpu)?;
            (load_ms, model.forward(&x, 0, &mut cache)?)
        }
    };
    argmax_last(&logits)?;
    out.insert("first_output_ms".into(), json!(ms_since(start)));
    out.insert("peak_rss_first_output_mib".into(), json!(mib(status_kib("VmHWM"))));
    out.insert("load_ms".into(), json!(load_ms));
    out.insert("weights_mib".into(), json!(weights_mib(dir)?));
    Ok(())
}

/// (f) The Auto dispatch: `AutoModel::from_pretrained` + forward against
/// `autocandle_bert::BertModel` built directly from its config and a `VarBuilder` over the
/// same weight reader (`autocandle_core::weights::Checkpoint`), alternated in one process after one warm-up load of each; forward on 1 x 16
/// ids, where a fixed overhead weighs the most.
fn dispatch(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let path = path_str(dir)?;
    let load_auto = || context(AutoModel::from_pretrained(path), "AutoModel::from_pretrained");
    let load_direct = || -> Result<BertModel> {
        let config: BertConfig =
            serde_json::from_value(read_config(dir)?).context("config.json does not read as BertConfig")?;
        // The weight reader the Auto classes use, so that only the dispatch differs.
        let checkpoint = context(Checkpoint::open(safetensors_files(dir)?), "Checkpoint::open")?;
        let (vb, _) = checkpoint_var_builder(Arc::new(checkpoint), "bert", DType::F32, &Device::Cpu);
        let pooler = vb.contains_tensor("pooler.dense.weight");
        context(BertModel::new(vb, &config, pooler), "BertModel::new")
    };
    // One untimed load of each first: the registry, the page cache.
    drop((load_auto()?, load_direct()?));
    // Alternated, and which goes first alternates too, so that neither always finds the
    // caches the other left.
    let (mut auto_ms, mut direct_ms, mut auto, mut direct) = (Vec::new(), Vec::new(), None, None);
    for i in 0..args.iters.max(3) {
        for first in [i % 2 == 0, i % 2 == 1] {
            // Free the previous model outside the timed part.
            if first {
                drop(auto.take());
            } else {
                drop(direct.take());
            }
            let start = Instant::now();
            if first {
                auto = Some(load_auto()?);
                auto_ms.push(ms_since(start));
            } else {
                direct = Some(load_direct()?);
                direct_ms.push(ms_since(start));
            }
        }
    }
    let (auto, direct) = (auto.context("no load ran")?, direct.context("no load ran")?);
    let inputs = ModelInputs::new(ids(1, 16)?).with_attention_mask(ids(1, 16)?.ones_like()?);
    let (mut fwd_auto, mut fwd_direct) = (Vec::new(), Vec::new());
    // Many short forwards, so that a fixed overhead shows above the noise.
    let rounds = 20 * args.iters.max(3);
    for i in 0..args.warmup + rounds {
        for first in [i % 2 == 0, i % 2 == 1] {
            let start = Instant::now();
            if first {
                context(auto.forward(&inputs), "forward")?;
            } else {
                context(Model::forward(&direct, &inputs), "forward")?;
            }
            let ms = ms_since(start);
            match (i >= args.warmup, first) {
                (false, _) => {}
                (true, true) => fwd_auto.push(ms),
                (true, false) => fwd_direct.push(ms),
            }
        }
    }
    out.insert("load_auto_ms".into(), json!(median(&auto_ms)));
    out.insert("load_direct_ms".into(), json!(median(&direct_ms)));
    out.insert("forward_auto_ms".into(), json!(median(&fwd_auto)));
    out.insert("forward_direct_ms".into(), json!(median(&fwd_direct)));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// GGUF.

/// The prompts of the GGUF accuracy scenario, each rendered with the model's chat template.
const ACCURACY_PROMPTS: [&str; 4] = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain in two sentences how a bicycle works.",
    "List three uses of a paperclip.",
];

/// Tokens per window of the perplexity text.
const PERPLEXITY_WINDOW: usize = 512;

fn gguf_options(args: &Args) -> Result<LoadOptions> {
    let file = args.gguf.as_deref().context("the gguf scenarios need `--gguf FILE`")?;
    Ok(LoadOptions::new().gguf_file(file))
}

/// A GGUF file with its weights kept quantized: from_pretrained to the first token of a
/// 128-token prompt (and the peak RSS then), then 128 greedy tokens as in `decoder`.
fn gguf_decoder(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let opts = gguf_options(args)?;
    let path = path_str(dir)?;
    let prompt = ids(1, DECODER_PROMPT)?;
    out.insert("rss_before_mib".into(), json!(mib(status_kib("VmRSS"))));
    let start = Instant::now();
    let model = context(AutoModelForCausalLM::from_pretrained_with(path, &opts), "from_pretrained")?.value;
    out.insert("load_ms".into(), json!(ms_since(start)));
    // The last position's logits only, as generation (and llama.cpp) compute them.
    let first = ModelInputs::new(prompt.clone()).with_logits_to_keep(1);
    out.insert("load_peak_rss_mib".into(), json!(mib(status_kib("VmHWM"))));
    argmax_last(&context(model.forward(&first), "forward")?.logits)?;
    out.insert("first_token_ms".into(), json!(ms_since(start)));
    out.insert("peak_rss_first_token_mib".into(), json!(mib(status_kib("VmHWM"))));
    let config = context(GenerationConfig::from_pretrained_with(path, &opts), "generation config")?
        .max_new_tokens(DECODER_NEW)
        .min_new_tokens(DECODER_NEW)
        .do_sample(false);
    let prompt_ids: Vec<u32> = prompt.flatten_all()?.to_vec1()?;
    let (prefill, decode, tokens) = timed_greedy(&*model, &config, &prompt_ids, args)?;
    out.insert("prefill_ms".into(), json!(median(&prefill)));
    out.insert("decode_tok_s".into(), json!(median(&decode)));
    out.insert("tokens".into(), json!(&tokens[..tokens.len().min(16)]));
    let file = dir.join(args.gguf.as_deref().unwrap_or_default());
    out.insert("file_mib".into(), json!(mib(std::fs::metadata(&file)?.len() / 1024)));
    Ok(())
}

/// The mean negative log-likelihood of each next token of `ids` under `logits` `[1, seq, vocab]`.
fn nll_sum(logits: &Tensor, ids: &[u32]) -> Result<(f64, usize)> {
    let logits = logits.get(0)?.to_dtype(DType::F64)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let rows: Vec<Vec<f64>> = log_probs.to_vec2()?;
    let mut sum = 0.0;
    for (t, next) in ids.iter().skip(1).enumerate() {
        sum -= rows[t][*next as usize];
    }
    Ok((sum, ids.len().saturating_sub(1)))
}

/// The quantized model against the same file dequantized to f32 (`dtype(F32)`, what
/// transformers loads): greedy agreement, logit deviations on the perplexity text, and the
/// perplexity of both.
fn gguf_accuracy(dir: &Path, args: &Args, out: &mut Map<String, Value>) -> Result<()> {
    let mut opts = gguf_options(args)?;
    // `gguf-accuracy-as-q4_k`: the file re-quantized to that type (`LoadOptions::quantize`).
    if let Some(kind) = args.scenario.strip_prefix("gguf-accuracy-as-") {
        let kind: autocandle::QuantType = context(kind.parse(), "quantization type")?;
        opts = opts.quantize(kind);
        out.insert("quantize".into(), json!(kind.name()));
    }
    let path = path_str(dir)?;
    let tokenizer = context(AutoTokenizer::from_pretrained_with(path, &opts), "tokenizer")?;
    let quantized = context(AutoModelForCausalLM::from_pretrained_with(path, &opts), "from_pretrained")?.value;
    let mut dense_opts = opts.clone().dtype(DType::F32);
    dense_opts.quantize = None;
    let dense = context(AutoModelForCausalLM::from_pretrained_with(path, &dense_opts), "from_pretrained")?.value;
    // Perplexity and logit deviations over the repository's LICENSE, in windows.
    let text = include_str!("../../../LICENSE");
    let encoded = context(tokenizer.encode(text), "encode")?;
    let all: Vec<u32> = encoded.input_ids.into_iter().next().unwrap_or_default();
    let (mut nll_q, mut nll_d, mut count) = (0.0, 0.0, 0usize);
    let (mut max_dev, mut dev_sum, mut dev_n, mut max_abs) = (0f64, 0f64, 0usize, 0f64);
    for window in all.chunks(PERPLEXITY_WINDOW).filter(|w| w.len() > 1) {
        let x = Tensor::new(window, &Device::Cpu)?.unsqueeze(0)?;
        let lq = context(quantized.forward(&ModelInputs::new(x.clone())), "forward")?.logits;
        let ld = context(dense.forward(&ModelInputs::new(x)), "forward")?.logits;
        let (q, n) = nll_sum(&lq, window)?;
        let (d, _) = nll_sum(&ld, window)?;
        nll_q += q;
        nll_d += d;
        count += n;
        let diff = (lq.to_dtype(DType::F64)? - ld.to_dtype(DType::F64)?)?.abs()?.flatten_all()?;
        max_dev = max_dev.max(diff.max(0)?.to_scalar::<f64>()?);
        dev_sum += diff.sum_all()?.to_scalar::<f64>()?;
        dev_n += diff.elem_count();
        max_abs = max_abs.max(ld.to_dtype(DType::F64)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?);
    }
    out.insert("perplexity_tokens".into(), json!(count));
    out.insert("perplexity_quantized".into(), json!((nll_q / count.max(1) as f64).exp()));
    out.insert("perplexity_f32".into(), json!((nll_d / count.max(1) as f64).exp()));
    out.insert("max_abs_dev".into(), json!(max_dev));
    out.insert("mean_abs_dev".into(), json!(dev_sum / dev_n.max(1) as f64));
    out.insert("max_abs_f32".into(), json!(max_abs));
    // Greedy agreement over 128 new tokens (EOS does not stop them) on each prompt.
    let config = context(GenerationConfig::from_pretrained_with(path, &opts), "generation config")?
        .max_new_tokens(DECODER_NEW)
        .min_new_tokens(DECODER_NEW)
        .do_sample(false);
    let (mut agree, mut total, mut prefixes) = (0usize, 0usize, Vec::new());
    for prompt in ACCURACY_PROMPTS {
        let messages = [("user", prompt)];
        let encoded = context(
            tokenizer.encode_chat(&messages, &autocandle::ChatTemplateOptions::new().add_generation_prompt(true)),
            "chat template",
        )?;
        let ids: Vec<u32> = encoded.input_ids.into_iter().next().unwrap_or_default();
        let (q, ..) = generate_greedy(&*quantized, &config, &ids)?;
        let (d, ..) = generate_greedy(&*dense, &config, &ids)?;
        agree += q.iter().zip(&d).filter(|(a, b)| a == b).count();
        total += d.len();
        prefixes.push(q.iter().zip(&d).take_while(|(a, b)| a == b).count());
    }
    out.insert("greedy_agree".into(), json!(agree));
    out.insert("greedy_total".into(), json!(total));
    out.insert("greedy_common_prefix".into(), json!(prefixes));
    Ok(())
}
