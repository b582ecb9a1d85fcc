//! Whisper generation (`autocandle::whisper`): the decoder prompt, language detection, the
//! timestamp segments and long-form windows on a toy speech model, and exact parity with
//! `transformers`' `generate` on the `tests/fixtures/whisper-generation` models.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use anyhow::Result;
use autocandle::arch_api::cache::Seq2SeqCache;
use autocandle::whisper::{whisper_generate, WhisperGenerateOptions, WhisperGenerationConfig, WhisperTranscription};
use autocandle::{
    AutoModelForSpeechSeq2Seq, AutoTokenizer, EncoderOutput, Error, ForSeq2SeqLm, ForSpeechSeq2Seq, GenerationConfig,
    ModelInputs, PreTrainedModel, Seq2SeqLmOutput,
};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

// Toy vocabulary: 0-4 text, 5 EOS, 6 <|startoftranscript|>, 7 <|en|>, 8 <|fr|>, 9 <|translate|>,
// 10 <|transcribe|>, 11 <|startofprev|>, 12 <|notimestamps|>, 13-19 timestamps <|0.00|>-<|0.12|>.
const EOS: u32 = 5;
const SOT: u32 = 6;
const EN: u32 = 7;
const FR: u32 = 8;
const TRANSLATE: u32 = 9;
const TRANSCRIBE: u32 = 10;
const PREV: u32 = 11;
const NOTS: u32 = 12;
const TS: u32 = 13;
const VOCAB: usize = 20;

/// A decoder whose next-token logits depend on the last token (and, after the start token, on
/// the sign of the encoder input: positive features say French).
#[derive(Debug)]
struct Toy;

impl PreTrainedModel for Toy {
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
}

fn next_logits(last: u32, french: bool) -> [f32; VOCAB] {
    let mut l = [0.0f32; VOCAB];
    match last {
        SOT => {
            l[EN as usize] = if french { 1.0 } else { 3.0 };
            l[FR as usize] = if french { 3.0 } else { 1.0 };
        }
        EN | FR | TRANSLATE | TRANSCRIBE | NOTS => l[1] = 4.0,
        1 | 2 => l[last as usize + 1] = 4.0,
        // After text 3: the timestamp <|0.08|>; after it EOS, after others text 1.
        3 => {
            l[EOS as usize] = 2.0;
            l[(TS + 4) as usize] = 3.0;
        }
        t if t == TS + 4 => l[EOS as usize] = 3.0,
        t if t >= TS => {
            l[EOS as usize] = 2.0;
            l[1] = 3.0;
        }
        _ => l[EOS as usize] = 4.0,
    }
    l
}

impl ForSeq2SeqLm for Toy {
    fn forward(&self, _inputs: &ModelInputs) -> autocandle::Result<Seq2SeqLmOutput> {
        Err(Error::Unsupported("toy".into()))
    }
    fn encode(&self, inputs: &ModelInputs) -> autocandle::Result<EncoderOutput> {
        let features = inputs.input_features()?;
        assert_eq!(features.dim(2)?, 12, "one window is 12 frames");
        // One position: the mean of the features.
        let mean = features.mean_keepdim(2)?.mean_keepdim(1)?;
        Ok(EncoderOutput { last_hidden_state: mean, attention_mask: None })
    }
    fn decode(&self, ids: &Tensor, encoder: &EncoderOutput, cache: &mut Seq2SeqCache) -> autocandle::Result<Tensor> {
        let rows: Vec<Vec<u32>> = ids.to_vec2()?;
        let means: Vec<f32> = encoder.last_hidden_state.flatten_all()?.to_vec1()?;
        assert_eq!(rows.len(), means.len());
        let width = rows[0].len();
        let mut logits = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for &t in row {
                logits.extend(next_logits(t, means[r] > 0.0));
            }
        }
        let marker = Tensor::zeros((rows.len(), 1, width, 1), DType::F32, &Device::Cpu)?;
        cache.self_attention.append(0, &marker, &marker)?;
        Ok(Tensor::from_vec(logits, (rows.len(), width, VOCAB), &Device::Cpu)?)
    }
    fn decoder_start_token_id(&self) -> Option<u32> {
        Some(SOT)
    }
}

impl ForSpeechSeq2Seq for Toy {}

fn toy_config() -> WhisperGenerationConfig {
    let mut c = WhisperGenerationConfig {
        generation: GenerationConfig::new()
            .eos_token_id(EOS)
            .pad_token_id(EOS)
            .decoder_start_token_id(SOT)
            .max_length(10),
        is_multilingual: Some(true),
        no_timestamps_token_id: Some(NOTS),
        prev_sot_token_id: Some(PREV),
        max_source_positions: 6,
        max_target_positions: 32,
        vocab_size: Some(VOCAB),
        ..Default::default()
    };
    c.lang_to_id.insert("<|en|>".into(), EN);
    c.lang_to_id.insert("<|fr|>".into(), FR);
    c.task_to_id.insert("translate".into(), TRANSLATE);
    c.task_to_id.insert("transcribe".into(), TRANSCRIBE);
    c
}

/// Features `[rows, 2, frames]`, each row all `value`.
fn features(values: &[f32], frames: usize) -> ModelInputs {
    let data: Vec<f32> = values.iter().flat_map(|v| std::iter::repeat_n(*v, 2 * frames)).collect();
    ModelInputs::from_input_features(Tensor::from_vec(data, (values.len(), 2, frames), &Device::Cpu).unwrap())
}

fn opts() -> WhisperGenerateOptions {
    WhisperGenerateOptions::default()
}

#[test]
fn decoder_prompt_and_language_names() -> Result<()> {
    let config = toy_config();
    let inputs = features(&[-1.0], 12);
    for language in ["fr", "French", "<|fr|>"] {
        let o = WhisperGenerateOptions { language: Some(language.into()), ..opts() };
        let out = whisper_generate(&Toy, &config, &inputs, &o)?;
        assert_eq!(out[0].init_tokens, [SOT, FR, TRANSCRIBE, NOTS], "{language}");
        assert_eq!(out[0].language, Some(FR));
        // Without timestamps asked, timestamps are not suppressed: 1 2 3 <|0.08|>, one
        // segment up to that timestamp.
        assert_eq!(out[0].tokens, [1, 2, 3, TS + 4]);
        assert_eq!(out[0].segments.len(), 1);
        assert_eq!((out[0].segments[0].start, out[0].segments[0].end), (0.0, 4.0 * 0.02));
    }
    let o = WhisperGenerateOptions { language: Some("en".into()), task: Some("translate".into()), ..opts() };
    assert_eq!(whisper_generate(&Toy, &config, &inputs, &o)?[0].init_tokens, [SOT, EN, TRANSLATE, NOTS]);
    // Errors: an unknown language, a language the model lacks, an unknown task.
    for (language, task, needle) in [
        (Some("klingon"), None, "unsupported language"),
        (Some("de"), None, "not in this model's `lang_to_id`"),
        (None, Some("summarize"), "unsupported task"),
    ] {
        let o = WhisperGenerateOptions { language: language.map(Into::into), task: task.map(Into::into), ..opts() };
        let err = whisper_generate(&Toy, &config, &inputs, &o).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    // An English-only model takes no language.
    let english_only = WhisperGenerationConfig { is_multilingual: Some(false), ..toy_config() };
    let o = WhisperGenerateOptions { language: Some("en".into()), ..opts() };
    assert!(whisper_generate(&Toy, &english_only, &inputs, &o).is_err());
    Ok(())
}

#[test]
fn language_detection_per_row_and_batch_equals_single() -> Result<()> {
    let config = toy_config();
    let batch = whisper_generate(&Toy, &config, &features(&[1.0, -1.0], 12), &opts())?;
    assert_eq!(batch[0].init_tokens, [SOT, FR, NOTS]);
    assert_eq!(batch[1].init_tokens, [SOT, EN, NOTS]);
    let single = whisper_generate(&Toy, &config, &features(&[-1.0], 12), &opts())?;
    assert_eq!(single[0], batch[1]);
    Ok(())
}

#[test]
fn timestamps_and_long_form_windows() -> Result<()> {
    let config = toy_config();
    let o = WhisperGenerateOptions { language: Some("en".into()), return_timestamps: Some(true), ..opts() };
    // Short-form: first a timestamp (<|0.00|>), then 1 2 3 <|0.08|> and EOS (allowed after a
    // lone timestamp): one segment up to 0.08.
    let out = whisper_generate(&Toy, &config, &features(&[-1.0], 12), &o)?;
    assert_eq!(out[0].init_tokens, [SOT, EN, TRANSCRIBE]);
    assert_eq!(out[0].tokens, [TS, 1, 2, 3, TS + 4]);
    assert_eq!(out[0].segments.len(), 1);
    assert!((out[0].segments[0].end - 0.08).abs() < 1e-12);
    // Long-form, 30 frames: each window ends with a single timestamp, so the next starts a
    // whole window later: windows at 0, 12, 24 frames (0.0 s, 0.12 s, 0.24 s).
    let out = whisper_generate(&Toy, &config, &features(&[-1.0], 30), &opts())?;
    let starts: Vec<f64> = out[0].segments.iter().map(|s| s.start).collect();
    assert_eq!(starts.len(), 3);
    assert!((starts[1] - 0.12).abs() < 1e-12 && (starts[2] - 0.24).abs() < 1e-12, "{starts:?}");
    assert_eq!(out[0].tokens.len(), 15);
    // Long-form needs timestamps.
    let no_ts = WhisperGenerateOptions { return_timestamps: Some(false), ..opts() };
    assert!(whisper_generate(&Toy, &config, &features(&[-1.0], 30), &no_ts).is_err());
    // A batch of long audio needs the attention mask.
    assert!(whisper_generate(&Toy, &config, &features(&[-1.0, 1.0], 30), &opts()).is_err());
    Ok(())
}

#[test]
fn prompt_ids_precede_the_decoder_prompt() -> Result<()> {
    let config = toy_config();
    let o = WhisperGenerateOptions { language: Some("en".into()), prompt_ids: Some(vec![PREV, 4, 4]), ..opts() };
    let out = whisper_generate(&Toy, &config, &features(&[-1.0], 12), &o)?;
    // The prompt is not part of the output; the decoder continues from <|notimestamps|>.
    assert_eq!(out[0].tokens, [1, 2, 3, TS + 4]);
    Ok(())
}

// ---- Parity with transformers on the fixtures --------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/whisper-generation").join(name)
}

fn tensor3(v: &Value) -> Tensor {
    let rows: Vec<Vec<Vec<f32>>> = serde_json::from_value(v.clone()).unwrap();
    let (b, m, f) = (rows.len(), rows[0].len(), rows[0][0].len());
    let flat: Vec<f32> = rows.into_iter().flatten().flatten().collect();
    Tensor::from_vec(flat, (b, m, f), &Device::Cpu).unwrap()
}

fn case_options(args: &Value) -> WhisperGenerateOptions {
    let mut o = WhisperGenerateOptions {
        language: args.get("language").and_then(Value::as_str).map(Into::into),
        task: args.get("task").and_then(Value::as_str).map(Into::into),
        return_timestamps: args.get("return_timestamps").and_then(Value::as_bool),
        condition_on_prev_tokens: args.get("condition_on_prev_tokens").and_then(Value::as_bool),
        prompt_ids: args.get("prompt_ids").map(|p| serde_json::from_value(p.clone()).unwrap()),
        ..WhisperGenerateOptions::default()
    };
    if let Some(n) = args.get("num_beams").and_then(Value::as_u64) {
        o.generation = GenerationConfig::new().num_beams(n as usize);
    }
    o
}

fn check_fixture(name: &str) -> Result<()> {
    let dir = fixture(name);
    let folder = dir.to_str().unwrap();
    let model = match AutoModelForSpeechSeq2Seq::from_pretrained(folder) {
        Ok(m) => m,
        Err(
            e @ (Error::NotCompiledIn { .. }
            | Error::NoHeadForTask { .. }
            | Error::ConfigNotRegistered { .. }
            | Error::UnknownModelType { .. }),
        ) => {
            eprintln!("SKIP whisper-generation/{name}: the whisper model is not available in this build ({e})");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let config = WhisperGenerationConfig::from_pretrained(folder)?;
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json"))?)?;
    let mut failures = Vec::new();
    for case in cases["cases"].as_array().unwrap() {
        let case_name = case["name"].as_str().unwrap();
        let mut inputs = ModelInputs::from_input_features(tensor3(&case["input_features"]));
        if let Some(mask) = case.get("attention_mask") {
            let rows: Vec<Vec<u32>> = serde_json::from_value(mask.clone())?;
            let (b, f) = (rows.len(), rows[0].len());
            inputs.attention_mask =
                Some(Tensor::from_vec(rows.into_iter().flatten().collect::<Vec<_>>(), (b, f), &Device::Cpu)?);
        }
        let out: Vec<WhisperTranscription> = whisper_generate(&*model, &config, &inputs, &case_options(&case["args"]))?;
        let want_seq: Vec<Vec<u32>> = serde_json::from_value(case["sequences"].clone())?;
        let want_init: Vec<Vec<u32>> = serde_json::from_value(case["init_tokens"].clone())?;
        let got_seq: Vec<Vec<u32>> = out.iter().map(|t| t.tokens.clone()).collect();
        let got_init: Vec<Vec<u32>> = out.iter().map(|t| t.init_tokens.clone()).collect();
        let mut ok = got_seq == want_seq;
        // The fixture's init tokens are the first window's decoder input (prompt_ids included).
        let prompt_len = case["args"].get("prompt_ids").and_then(Value::as_array).map_or(0, Vec::len);
        ok &= want_init.iter().zip(&got_init).all(|(w, g)| w.get(prompt_len..) == Some(g.as_slice()));
        for (row, t) in out.iter().enumerate() {
            let want = case["segments"][row].as_array().unwrap();
            ok &= want.len() == t.segments.len();
            for (w, g) in want.iter().zip(&t.segments) {
                let tokens: Vec<u32> = serde_json::from_value(w["tokens"].clone())?;
                ok &= tokens == g.tokens;
                ok &= (w["start"].as_f64().unwrap() - g.start).abs() < 1e-9;
                ok &= (w["end"].as_f64().unwrap() - g.end).abs() < 1e-9;
            }
        }
        println!("{} whisper-generation/{name} {case_name}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            failures.push(format!(
                "{case_name}: got {got_seq:?} (init {got_init:?}) segments {:?}, want {want_seq:?} (init {want_init:?}) \
                 segments {}",
                out.iter().map(|t| &t.segments).collect::<Vec<_>>(),
                case["segments"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn parity_plain() -> Result<()> {
    check_fixture("plain")
}

#[test]
fn parity_timestamps() -> Result<()> {
    check_fixture("timestamps")
}

#[test]
fn config_and_text() -> Result<()> {
    let folder = fixture("plain");
    let folder = folder.to_str().unwrap();
    let config = WhisperGenerationConfig::from_pretrained(folder)?;
    assert_eq!(config.no_timestamps_token_id, Some(311));
    assert_eq!(config.timestamp_begin(), Some(312));
    assert_eq!(config.max_source_positions, 30);
    assert_eq!(config.language_token_id("German")?, 304);
    assert_eq!(config.language_token_id("<|ES|>")?, 305);
    assert_eq!(config.task_token_id("translate")?, 306);
    assert_eq!(config.language_code(303).as_deref(), Some("fr"));
    let tok = AutoTokenizer::from_pretrained(folder)?;
    let ids = tok.encode(" the quick fox")?.input_ids[0].clone();
    let mut with_specials = vec![301, 302, 307, 312];
    with_specials.extend(&ids);
    with_specials.extend([320, 300]);
    assert_eq!(autocandle::whisper::decode_text(&tok, &config, &with_specials)?, " the quick fox");
    Ok(())
}

#[test]
fn sampling_beams_and_returned_sequences() -> Result<()> {
    let config = toy_config();
    let inputs = features(&[-1.0], 12);
    // `temperature` > 0 samples (seeded); the toy's distributions are peaked enough that the
    // result is a valid transcription ending before `max_length`.
    let o = WhisperGenerateOptions {
        language: Some("en".into()),
        temperature: Some(0.5),
        generation: GenerationConfig::new().seed(7),
        ..opts()
    };
    let out = whisper_generate(&Toy, &config, &inputs, &o)?;
    assert_eq!(out.len(), 1);
    assert!(!out[0].tokens.is_empty() && !out[0].tokens.contains(&EOS));
    // Beam search, two sequences per input: each input row is repeated, as transformers does.
    let o = WhisperGenerateOptions {
        language: Some("en".into()),
        generation: GenerationConfig::new().num_beams(2).num_return_sequences(2),
        ..opts()
    };
    let out = whisper_generate(&Toy, &config, &inputs, &o)?;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].tokens, [1, 2, 3, TS + 4]);
    assert_eq!(out[0], out[1]);
    Ok(())
}
