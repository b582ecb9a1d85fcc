//! Audio input and feature extraction: every folder under `tests/fixtures/feature-extractors/`
//! (made by `make_audio_fixtures.py` with `transformers`' numpy extractors) run through
//! `AutoFeatureExtractor` on the clips of `tests/fixtures/audio/`; decoding and resampling
//! against `transformers`' ffmpeg path; the CTC tokenizer against `Wav2Vec2CTCTokenizer`; the
//! speech processors; and the errors on bad input.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use autocandle::audio::{
    decode_audio, decode_audio_with, load_audio, resample, AudioLoadOptions, WhisperFeatureExtractor,
    WhisperFeatureExtractorConfig,
};
use autocandle::{
    AudioFeatureOptions, AudioPadding, AutoFeatureExtractor, AutoProcessor, CtcDecodeOptions, FeatureExtractor,
    Wav2Vec2CtcTokenizer,
};
use autocandle_tests::fixtures_root;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

fn audio(name: &str) -> PathBuf {
    fixtures_root().join("audio").join(name)
}

fn extractors_root() -> PathBuf {
    fixtures_root().join("feature-extractors")
}

fn options(call: &Value) -> AudioFeatureOptions {
    let mut o = AudioFeatureOptions::default().sampling_rate(16_000);
    if let Some(p) = call.get("padding").and_then(Value::as_str) {
        o.padding = match p {
            "longest" => AudioPadding::Longest,
            "max_length" => AudioPadding::MaxLength,
            _ => AudioPadding::DoNotPad,
        };
    }
    o.max_length = call.get("max_length").and_then(Value::as_u64).map(|n| n as usize);
    o.truncation = call.get("truncation").and_then(Value::as_bool);
    o.return_attention_mask = call.get("return_attention_mask").and_then(Value::as_bool);
    o.do_normalize = call.get("do_normalize").and_then(Value::as_bool);
    o.pad_to_multiple_of = call.get("pad_to_multiple_of").and_then(Value::as_u64).map(|n| n as usize);
    o
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    ensure!(a.dims() == b.dims(), "shape {:?}, Python {:?}", a.dims(), b.dims());
    Ok((a.to_dtype(DType::F32)? - b.to_dtype(DType::F32)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// Runs one fixture; returns the largest difference of the features.
fn run_fixture(dir: &Path) -> Result<f32> {
    let info: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json"))?)?;
    let extractor = AutoFeatureExtractor::from_pretrained(&dir.display().to_string())?;
    ensure!(extractor.class() == info["python_class"].as_str().context("python_class")?, "class");
    let mut clips = Vec::new();
    for c in info["clips"].as_array().context("clips")? {
        let mut samples = load_audio(audio(c[0].as_str().context("clip name")?), 16_000)?;
        if let Some(n) = c[1].as_u64() {
            samples.truncate(n as usize);
        }
        clips.push(samples);
    }
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    let got = extractor.extract(&refs, &options(&info["call"]))?;
    let mut want = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu)?;
    let name = extractor.model_input_name();
    let features = match name {
        "input_features" => got.input_features.clone().context("no input_features")?,
        _ => got.input_values.clone().context("no input_values")?,
    };
    let expected = want.remove(name).context("expected features")?;
    let diff = if let Some(tail) = want.remove("input_features_tail") {
        // Cropped 30 s window: the head, then every later frame equals the stored last frame.
        let frames = want.remove("frames").context("frames")?.to_vec1::<i64>()?[0] as usize;
        ensure!(features.dim(2)? == frames, "{} frames, Python {frames}", features.dim(2)?);
        let head = expected.dim(2)?;
        let d1 = max_abs_diff(&features.narrow(2, 0, head)?, &expected)?;
        let rest = features.narrow(2, head, frames - head)?;
        let d2 = max_abs_diff(&rest, &tail.broadcast_as(rest.shape())?.contiguous()?)?;
        d1.max(d2)
    } else {
        max_abs_diff(&features, &expected)?
    };
    match (want.remove("attention_mask"), &got.attention_mask) {
        (Some(w), Some(g)) => ensure!(max_abs_diff(g, &w)? == 0.0, "attention_mask differs"),
        (None, None) => {}
        (w, g) => anyhow::bail!("attention_mask: Python {}, autocandle {}", w.is_some(), g.is_some()),
    }
    Ok(diff)
}

#[test]
fn feature_extractor_fixtures_match_transformers() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(extractors_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("fixture.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "{dirs:?}");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy();
        match run_fixture(dir) {
            Ok(d) if d <= 1e-5 => println!("PASS {name} {d:.2e}"),
            Ok(d) => failures.push(format!("FAIL {name}: max abs diff {d:.2e}")),
            Err(e) => failures.push(format!("FAIL {name}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn stats(a: &[f32], b: &[f32]) -> (f32, f64) {
    let n = a.len().min(b.len());
    let max = (0..n).map(|i| (a[i] - b[i]).abs()).fold(0.0, f32::max);
    let mean = |x: &[f32]| x[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (da, db) = (f64::from(a[i]) - ma, f64::from(b[i]) - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    (max, sab / (saa * sbb).sqrt())
}

#[test]
fn decoding_and_resampling_match_ffmpeg() {
    let reference = candle_core::safetensors::load(audio("ffmpeg.safetensors"), &Device::Cpu).unwrap();
    let want = |n: &str| reference[n].to_vec1::<f32>().unwrap();
    // 16 kHz WAV: bit-exact.
    let got = load_audio(audio("speech_16k.wav"), 16_000).unwrap();
    let w = want("speech_16k.wav");
    assert_eq!(&got[..w.len()], &w[..]);
    for name in ["speech_22050.wav", "speech_44k_stereo.wav"] {
        let got = load_audio(audio(name), 16_000).unwrap();
        let w = want(name);
        let (max, corr) = stats(&got, &w);
        println!("{name}: {} samples (ffmpeg {}), max abs diff {max:.2e}, correlation {corr:.9}", got.len(), w.len());
        assert!(got.len().abs_diff(w.len()) <= 1, "{name}: {} vs {}", got.len(), w.len());
        assert!(corr > 0.99999 && max < 1e-3, "{name}: max {max} corr {corr}");
    }
    // Lossless and lossy versions of the 16 kHz clip.
    let wav = decode_audio(audio("speech_16k.wav")).unwrap();
    assert_eq!(wav.channels.len(), 1);
    assert_eq!(decode_audio(audio("speech_16k.flac")).unwrap(), wav);
    for name in ["speech_16k.mp3", "speech_16k.ogg"] {
        let got = decode_audio(audio(name)).unwrap();
        assert_eq!(got.sampling_rate, 16_000);
        let (max, corr) = stats(&got.channels[0], &wav.channels[0]);
        println!("{name}: {} samples (wav {}), max abs diff {max:.4}, correlation {corr:.4}", got.len(), wav.len());
        assert_eq!(got.len(), wav.len(), "{name}: encoder delay and padding are trimmed, as ffmpeg does");
        assert!(corr > 0.99, "{name}: correlation {corr}");
    }
    let stereo = decode_audio(audio("speech_44k_stereo.wav")).unwrap();
    assert_eq!((stereo.channels.len(), stereo.sampling_rate), (2, 44_100));
    let (l, r) = (stereo.channels[0][1000], stereo.channels[1][1000]);
    assert_eq!(stereo.to_mono()[1000], (l + r) * 0.5);
    assert_eq!(stereo.to_mono_ffmpeg()[1000], (l + r) * std::f32::consts::FRAC_1_SQRT_2);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A PCM WAV header for `data_len` bytes of `channels` x 16-bit samples.
fn wav_header(rate: u32, channels: u16, data_len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    h.extend_from_slice(&(channels * 2).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn bad_audio_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |p: &Path| decode_audio(p).unwrap_err().to_string();
    // Not audio.
    let e = err(&write(dir.path(), "notes.wav", b"this is a text file, not audio at all"));
    assert!(e.contains("not an audio file"), "{e}");
    // Empty file and a header with no samples.
    assert!(err(&write(dir.path(), "empty.wav", b"")).contains("not an audio file"));
    let e = err(&write(dir.path(), "nodata.wav", &wav_header(16_000, 1, 0)));
    assert!(e.contains("no audio samples"), "{e}");
    // Truncated: half of the file's data is missing.
    let full = std::fs::read(audio("speech_16k.wav")).unwrap();
    let e = err(&write(dir.path(), "cut.wav", &full[..full.len() / 2]));
    assert!(e.contains("truncated"), "{e}");
    // A header that claims 10 hours (of 16 kHz mono): refused before decoding.
    let ten_hours = 10 * 3600 * 16_000 * 2;
    let mut claim = wav_header(16_000, 1, ten_hours);
    claim.extend_from_slice(&[0u8; 4096]);
    let e = err(&write(dir.path(), "ten_hours.wav", &claim));
    assert!(e.contains("over the limit") && e.contains("split the file"), "{e}");
    // The limit is adjustable, and applies to what is actually decoded too.
    let small = AudioLoadOptions { max_samples: 1000, ..Default::default() };
    let e = decode_audio_with(audio("speech_16k.wav"), &small).unwrap_err().to_string();
    assert!(e.contains("1000 samples"), "{e}");
    // Too many channels.
    let mut many = wav_header(16_000, 20, 40 * 100);
    many.extend_from_slice(&[0u8; 40 * 100]);
    let e = err(&write(dir.path(), "many.wav", &many));
    assert!(e.contains("channels"), "{e}");
    // Absurd and zero sampling rates.
    let mut fast = wav_header(4_000_000, 1, 200);
    fast.extend_from_slice(&[0u8; 200]);
    let e = err(&write(dir.path(), "fast.wav", &fast));
    assert!(e.contains("4000000 Hz"), "{e}");
    assert!(load_audio(audio("speech_16k.wav"), 0).unwrap_err().to_string().contains("0 Hz"));
    assert!(resample(&[0.0; 8], 0, 16_000).is_err());
    assert!(resample(&[0.0; 8], 16_000, u32::MAX).is_err());
    // Missing file.
    assert!(decode_audio(dir.path().join("missing.wav")).is_err());
}

#[test]
fn bad_samples_and_options_give_clear_errors() {
    let fe = AutoFeatureExtractor::from_pretrained(&extractors_root().join("whisper-default").display().to_string())
        .unwrap();
    let opts = AudioFeatureOptions::default();
    let e = fe.extract(&[&[0.1, f32::NAN, 0.2]], &opts).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains("sample 1"), "{e}");
    assert!(fe.extract(&[&[0.0; 4], &[]], &opts).unwrap_err().to_string().contains("clip 1"));
    assert!(fe.extract(&[], &opts).unwrap_err().to_string().contains("empty"));
    let e = fe.extract(&[&[0.0; 4]], &opts.clone().sampling_rate(8_000)).unwrap_err().to_string();
    assert!(e.contains("16000 Hz") && e.contains("resample"), "{e}");
    let long = vec![0.0f32; 500_000];
    let e = fe.extract(&[&long], &AudioFeatureOptions::default().truncation(false)).unwrap_err().to_string();
    assert!(e.contains("longer than `max_length`"), "{e}");
    let w2v =
        AutoFeatureExtractor::from_pretrained(&extractors_root().join("wav2vec2-norm1-mask0").display().to_string())
            .unwrap();
    let e = w2v
        .extract(&[&[0.0; 4], &[0.0; 3]], &AudioFeatureOptions::default().padding(AudioPadding::DoNotPad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("different lengths"), "{e}");
    // Unknown classes name the known ones.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "preprocessor_config.json", br#"{"feature_extractor_type": "SpeechT5FeatureExtractor"}"#);
    let e = AutoFeatureExtractor::from_pretrained(&dir.path().display().to_string()).unwrap_err().to_string();
    assert!(e.contains("SpeechT5FeatureExtractor") && e.contains("WhisperFeatureExtractor"), "{e}");
    // No class, and a model type: chosen from it.
    write(dir.path(), "preprocessor_config.json", br#"{"sampling_rate": 16000, "do_normalize": false}"#);
    write(dir.path(), "config.json", br#"{"model_type": "hubert"}"#);
    let fe = AutoFeatureExtractor::from_pretrained(&dir.path().display().to_string()).unwrap();
    assert!(matches!(fe, FeatureExtractor::Wav2Vec2(_)));
    write(dir.path(), "config.json", br#"{"model_type": "bert"}"#);
    let e = AutoFeatureExtractor::from_pretrained(&dir.path().display().to_string()).unwrap_err().to_string();
    assert!(e.contains("`bert`"), "{e}");
    // Bad config values.
    let e = WhisperFeatureExtractor::new(WhisperFeatureExtractorConfig { hop_length: 0, ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("hop_length"), "{e}");
}

#[test]
fn ctc_tokenizer_matches_transformers() {
    let dir = extractors_root().join("ctc-tokenizer");
    let tok = Wav2Vec2CtcTokenizer::from_pretrained(&dir.display().to_string()).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ids = |v: &Value| -> Vec<u32> { serde_json::from_value(v.clone()).unwrap() };
    let offsets = |v: &Value, key: &str| -> Vec<(String, usize, usize)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let n = |k: &str| o[k].as_u64().unwrap() as usize;
                (o[key].as_str().unwrap().to_owned(), n("start_offset"), n("end_offset"))
            })
            .collect()
    };
    for case in &cases {
        match case["kind"].as_str().unwrap() {
            "encode" => assert_eq!(tok.encode(case["text"].as_str().unwrap()), ids(&case["ids"]), "{case}"),
            "decode" => {
                let input = ids(&case["ids"]);
                let skip = case["skip_special_tokens"].as_bool().unwrap();
                assert_eq!(tok.decode(&input, skip), case["text"].as_str().unwrap(), "{case}");
                let opts = CtcDecodeOptions {
                    skip_special_tokens: skip,
                    clean_up_tokenization_spaces: Some(false),
                    ..Default::default()
                };
                assert_eq!(tok.decode_with(&input, &opts).text, case["text_no_cleanup"].as_str().unwrap());
                let out =
                    tok.decode_with(&input, &CtcDecodeOptions { skip_special_tokens: skip, ..Default::default() });
                assert_eq!(out.text, case["offsets_text"].as_str().unwrap());
                let chars: Vec<_> =
                    out.char_offsets.iter().map(|c| (c.char.clone(), c.start_offset, c.end_offset)).collect();
                assert_eq!(chars, offsets(&case["char_offsets"], "char"), "{case}");
                let words: Vec<_> =
                    out.word_offsets.iter().map(|w| (w.word.clone(), w.start_offset, w.end_offset)).collect();
                assert_eq!(words, offsets(&case["word_offsets"], "word"), "{case}");
                if !skip {
                    assert_eq!(tok.decode_with_offsets(&input), out);
                }
            }
            _ => {
                let seqs: Vec<Vec<u32>> = serde_json::from_value(case["ids"].clone()).unwrap();
                let texts: Vec<String> = serde_json::from_value(case["texts"].clone()).unwrap();
                assert_eq!(tok.batch_decode(&seqs, false), texts);
            }
        }
    }
}

#[test]
fn speech_processors() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path| {
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    };
    copy(&extractors_root().join("ctc-tokenizer"));
    copy(&extractors_root().join("wav2vec2-norm1-mask1"));
    std::fs::remove_file(dir.path().join("expected.safetensors")).unwrap();
    let path = dir.path().display().to_string();
    let processor = AutoProcessor::from_pretrained(&path).unwrap();
    assert!(processor.ctc_tokenizer().is_some() && processor.tokenizer().is_none());
    let fe = processor.feature_extractor().unwrap();
    assert_eq!((fe.class(), fe.sampling_rate()), ("Wav2Vec2FeatureExtractor", 16_000));
    let samples = load_audio(audio("sweep_16k.wav"), 16_000).unwrap();
    let features = processor.process_audio(&[&samples], &AudioFeatureOptions::default()).unwrap();
    assert_eq!(features.to_model_inputs().input_values.unwrap().dims(), &[1, 16_000]);
    assert_eq!(processor.batch_decode(&[vec![0u32, 5, 5, 0, 6]], false).unwrap(), vec!["et".to_owned()]);
    // A named class needs both parts.
    std::fs::remove_file(dir.path().join("vocab.json")).unwrap();
    let mut cfg: HashMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("preprocessor_config.json")).unwrap()).unwrap();
    cfg.insert("processor_class".into(), "Wav2Vec2Processor".into());
    std::fs::write(dir.path().join("preprocessor_config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let e = AutoProcessor::from_pretrained(&path).unwrap_err().to_string();
    assert!(e.contains("vocab.json"), "{e}");
}

#[test]
fn whisper_processor_pairs_the_extractor_with_the_fast_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    // Any fast tokenizer stands in for Whisper's here.
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        let from = fixtures_root().join("bert-masked-lm").join(file);
        if from.is_file() {
            std::fs::copy(&from, dir.path().join(file)).unwrap();
        }
    }
    let config = extractors_root().join("whisper-default").join("preprocessor_config.json");
    let mut cfg: HashMap<String, Value> = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    cfg.insert("processor_class".into(), "WhisperProcessor".into());
    std::fs::write(dir.path().join("preprocessor_config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let processor = AutoProcessor::from_pretrained(&dir.path().display().to_string()).unwrap();
    assert_eq!(processor.class(), Some("WhisperProcessor"));
    assert!(processor.tokenizer().is_some() && processor.ctc_tokenizer().is_none());
    let fe = processor.feature_extractor().unwrap();
    assert!(matches!(fe, FeatureExtractor::Whisper(_)));
    let samples = load_audio(audio("silence_16k.wav"), 16_000).unwrap();
    let features = processor.process_audio(&[&samples], &AudioFeatureOptions::default()).unwrap();
    assert_eq!(features.input_features.unwrap().dims(), &[1, 80, 3000]);
    assert_eq!(processor.batch_decode(&[Vec::<u32>::new()], true).unwrap().len(), 1);
}
