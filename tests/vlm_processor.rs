//! Vision-language processors (`AutoProcessor` on LLaVA, PaliGemma, Idefics3/SmolVLM,
//! Qwen2-VL, Gemma 3 repos) against `transformers`: every folder under
//! `tests/fixtures/vlm_processors/` is a processor repo (tokenizer, processor configs, chat
//! template, `config.json`) with `reference.json` and `reference.safetensors` made by the
//! script named in its `reference.json`.
//!
//! `reference.json`: `{"cases": [{"name", "texts", "images": [[path, ...], ...], "outputs":
//! [name, ...]}], "chats": [{"messages", "add_generation_prompt", "expected"}], "atol"}`.
//! Image paths are relative to the folder; tensors are `<case name>.<output name>`; integer
//! outputs must be equal, float ones within `atol`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use autocandle::image_processor::open_image;
use autocandle::{AutoProcessor, Device, Tensor};
use candle_core::DType;
use serde_json::Value;

fn fixture_dirs() -> Result<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vlm_processors");
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    Ok(dirs)
}

fn check_case(dir: &Path, processor: &autocandle::Processor, case: &Value, tensors: &Tensors, atol: f32) -> Result<()> {
    let name = case["name"].as_str().context("a case has no `name`")?;
    let texts: Vec<&str> = case["texts"].as_array().context("`texts`")?.iter().filter_map(Value::as_str).collect();
    let mut images = Vec::new();
    for row in case["images"].as_array().context("`images`")? {
        let mut list = Vec::new();
        for path in row.as_array().context("`images` rows are lists")? {
            let path = dir.join(path.as_str().context("image paths are strings")?);
            list.push(open_image(&path).with_context(|| format!("opening {}", path.display()))?);
        }
        images.push(list);
    }
    let got = processor.process_images(&texts, &images, &Device::Cpu).with_context(|| format!("case `{name}`"))?;
    for output in case["outputs"].as_array().context("`outputs`")? {
        let output = output.as_str().context("output names are strings")?;
        let want = tensors.get(&format!("{name}.{output}"))?;
        let got = match output {
            "input_ids" => got.input_ids.as_ref(),
            "attention_mask" => got.attention_mask.as_ref(),
            "token_type_ids" => got.token_type_ids.as_ref(),
            "mm_token_type_ids" => got.mm_token_type_ids.as_ref(),
            "pixel_values" => got.pixel_values.as_ref(),
            "pixel_attention_mask" => got.pixel_attention_mask.as_ref(),
            "image_grid_thw" => got.image_grid_thw.as_ref(),
            "image_sizes" => got.image_sizes.as_ref(),
            other => bail!("case `{name}`: unknown output `{other}`"),
        }
        .with_context(|| format!("case `{name}`: the processor gave no `{output}`"))?;
        if got.dims() != want.dims() {
            bail!("case `{name}`: `{output}` has shape {:?}, transformers {:?}", got.dims(), want.dims());
        }
        let diff = (got.to_dtype(DType::F64)? - want.to_dtype(DType::F64)?)?.abs()?.flatten_all()?.max(0)?;
        let diff = diff.to_scalar::<f64>()?;
        let limit = if want.dtype().is_int() { 0.0 } else { f64::from(atol) };
        if diff > limit {
            bail!("case `{name}`: `{output}` differs from transformers by {diff} (allowed {limit})");
        }
        println!("    {name}.{output}: max diff {diff:e}");
    }
    Ok(())
}

struct Tensors(std::collections::HashMap<String, Tensor>);

impl Tensors {
    fn get(&self, name: &str) -> Result<&Tensor> {
        self.0.get(name).with_context(|| format!("reference.safetensors has no `{name}`"))
    }
}

fn check_dir(dir: &Path) -> Result<usize> {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json"))?)?;
    let atol = reference.get("atol").and_then(Value::as_f64).unwrap_or(1e-5) as f32;
    let processor = AutoProcessor::from_pretrained(&dir.to_string_lossy())?;
    let tensors = Tensors(candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)?);
    let mut checked = 0;
    for case in reference.get("cases").and_then(Value::as_array).into_iter().flatten() {
        check_case(dir, &processor, case, &tensors, atol)?;
        checked += 1;
    }
    for chat in reference.get("chats").and_then(Value::as_array).into_iter().flatten() {
        let tokenizer = processor.tokenizer().context("the processor has no tokenizer")?;
        let messages: Vec<Value> = chat["messages"].as_array().context("`messages`")?.clone();
        let add = chat.get("add_generation_prompt").and_then(Value::as_bool).unwrap_or(true);
        let got = tokenizer.apply_chat_template(&messages, add)?;
        let want = chat["expected"].as_str().context("`expected`")?;
        if got != want {
            bail!("chat template: got {got:?}, transformers {want:?}");
        }
        checked += 1;
    }
    Ok(checked)
}

#[test]
fn processors_match_transformers() {
    let dirs = fixture_dirs().expect("listing tests/fixtures/vlm_processors");
    if dirs.is_empty() {
        println!("skipped: no folder under tests/fixtures/vlm_processors yet");
        return;
    }
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match check_dir(dir) {
            Ok(n) => println!("PASS {name} ({n} cases)"),
            Err(e) => {
                println!("FAIL {name}: {e:#}");
                failures.push(name);
            }
        }
    }
    assert!(failures.is_empty(), "processors differing from transformers: {failures:?}");
}

/// `pipeline("image-text-to-text")` against `transformers` on whole tiny repos
/// (`tests/fixtures/vlm_pipelines/*`, made by `make_vlm_pipeline_fixtures.py`): a chat with an
/// image part gives transformers' reply, a raw prompt with the image placeholder its
/// continuation, greedy.
#[test]
fn pipeline_matches_transformers() {
    use autocandle::pipelines::{ImageTextToTextPipeline, TextGenerationOptions};
    use autocandle::{ChatMessage, GenerationConfig};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vlm_pipelines");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixture under {}", root.display());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for dir in dirs {
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let pipe = ImageTextToTextPipeline::new(&dir.to_string_lossy()).unwrap();
        let new = expected["max_new_tokens"].as_u64().unwrap() as usize;
        let opts = TextGenerationOptions {
            new_text_only: true,
            generation: Some(GenerationConfig::new().max_new_tokens(new).do_sample(false)),
        };
        for case in expected["cases"].as_array().unwrap() {
            let image = open_image(fixtures.join(case["image"].as_str().unwrap())).unwrap();
            let (got, want) = match case["name"].as_str().unwrap() {
                "chat" => {
                    let chat = [ChatMessage::user(serde_json::json!([
                        {"type": "image"},
                        {"type": "text", "text": case["text"]},
                    ]))];
                    (pipe.chat(&chat, &[image], &opts).unwrap(), case["reply"].as_str().unwrap())
                }
                "raw" => {
                    let prompt = case["prompt"].as_str().unwrap();
                    (pipe.call_with(&[image], prompt, &opts).unwrap(), case["continuation"].as_str().unwrap())
                }
                other => panic!("unknown case {other}"),
            };
            assert_eq!(got, want, "{}: case {}", dir.display(), case["name"]);
            println!("PASS {} {}", dir.file_name().unwrap().to_string_lossy(), case["name"]);
        }
    }
}
