//! Text generation: greedy and sampled decoding against Python `transformers` (numbers
//! computed once with transformers 5.23 and written here), logits processors, stopping, batching
//! with left padding, streaming, and every error of the generation API.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;

use autocandle::arch_api::KvCache;
use autocandle::logits::{
    processors_for, MinLength, MinNewTokens, MinP, NoRepeatNGram, PromptInfo, RepetitionPenalty, Temperature, TopK,
    TopP,
};
use autocandle::{
    AutoModelForCausalLM, AutoTokenizer, CausalLmOutput, DType, Device, EncodeOptions, Error, FinishReason,
    ForCausalLm, GenerateOptions, GenerationConfig, GenerationMixin, Generator, LoadOptions, LogitsProcessor,
    ModelInputs, Padding, PreTrainedModel, Prompts, StopStringCriteria, TextStreamer, TokenDecoder,
};
use autocandle_tests::{fixture, fixture_dirs, fixtures_root};
use candle_core::Tensor;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn bert() -> Box<dyn ForCausalLm> {
    AutoModelForCausalLM::from_pretrained(&fixture("bert-causal-lm").to_string_lossy()).unwrap()
}

const PROMPT: [u32; 5] = [5, 17, 42, 99, 3];
/// `BertLMHeadModel.generate([[5, 17, 42, 99, 3]], max_new_tokens=12, do_sample=False,
/// eos_token_id=None)` on tests/fixtures/bert-causal-lm.
const GREEDY: [u32; 17] = [5, 17, 42, 99, 3, 108, 5, 41, 2, 41, 5, 85, 97, 66, 97, 109, 41];
/// The same for the prompt `[7, 8]` alone.
const GREEDY_SHORT: [u32; 14] = [7, 8, 25, 121, 41, 92, 41, 97, 41, 41, 97, 41, 97, 66];

fn greedy(n: usize) -> GenerationConfig {
    GenerationConfig::new().do_sample(false).max_new_tokens(n)
}

/// A toy causal LM over 10 tokens whose preferred next token depends on the last token only:
/// `NEXT[t]` scores 5, `SECOND[t]` 4, every other token `-0.01 * id`. It checks the shapes
/// `generate` gives it and, with `cache`, grows a `KvCache` by the new tokens.
#[derive(Debug)]
struct Chain {
    cache: bool,
    max_positions: Option<usize>,
    device: Device,
}

const NEXT: [u32; 10] = [1, 2, 3, 9, 5, 6, 7, 8, 9, 1];
const SECOND: [u32; 10] = [4, 4, 4, 4, 4, 4, 4, 4, 4, 4];

impl Chain {
    fn new(cache: bool) -> Self {
        Self { cache, max_positions: None, device: Device::Cpu }
    }

    fn logits(&self, inputs: &ModelInputs, past: usize) -> autocandle::Result<Tensor> {
        let ids: Vec<Vec<u32>> = inputs.input_ids()?.to_dtype(DType::U32)?.to_vec2()?;
        let (b, s) = (ids.len(), ids[0].len());
        let positions = inputs.position_ids.as_ref().ok_or_else(|| Error::input("no position_ids"))?;
        if positions.dims() != [b, s] {
            return Err(Error::input(format!("position_ids {:?} for ids [{b}, {s}]", positions.dims())));
        }
        if let Some(mask) = &inputs.attention_mask {
            if mask.dims() != [b, past + s] {
                return Err(Error::input(format!("attention_mask {:?}, expected [{b}, {}]", mask.dims(), past + s)));
            }
        }
        let mut data = Vec::with_capacity(b * s * 10);
        for &t in ids.iter().flatten() {
            for j in 0..10u32 {
                data.push(if j == NEXT[t as usize] {
                    5.0
                } else if j == SECOND[t as usize] {
                    4.0
                } else {
                    -0.01 * j as f32
                });
            }
        }
        Ok(Tensor::from_vec(data, (b, s, 10), &self.device)?)
    }
}

impl PreTrainedModel for Chain {
    fn device(&self) -> &Device {
        &self.device
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
}

impl ForCausalLm for Chain {
    fn forward(&self, inputs: &ModelInputs) -> autocandle::Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.logits(inputs, 0)?))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> autocandle::Result<CausalLmOutput> {
        if !self.cache {
            return Err(Error::Unsupported("no cache".into()));
        }
        let logits = self.logits(inputs, cache.seq_len())?;
        let (b, s) = inputs.input_ids()?.dims2()?;
        let kv = Tensor::zeros((b, 1, s, 1), DType::F32, &self.device)?;
        cache.append(0, &kv, &kv)?;
        Ok(CausalLmOutput::new(logits))
    }

    fn supports_cache(&self) -> bool {
        self.cache
    }

    fn max_positions(&self) -> Option<usize> {
        self.max_positions
    }
}

/// Token `i` decodes to `PIECES[i]`.
struct Pieces(&'static [&'static str]);

impl TokenDecoder for Pieces {
    fn decode(&self, ids: &[u32], _skip_special_tokens: bool) -> autocandle::Result<String> {
        Ok(ids.iter().map(|&i| self.0[i as usize]).collect())
    }
}

const CHAIN_PIECES: &[&str] = &["<s>", "a", "b", "c", "X", "s", "t", "o", "p", "</s>"];

// ---------------------------------------------------------------------------------------------
// Greedy decoding

#[test]
fn greedy_matches_transformers() {
    let out = bert().generate(&PROMPT, &greedy(12)).unwrap();
    assert_eq!(out, [GREEDY.to_vec()]);
}

#[test]
fn greedy_equals_argmax_by_hand() {
    let model = bert();
    let mut ids = PROMPT.to_vec();
    for _ in 0..6 {
        let input = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap();
        let logits = model.forward(&ModelInputs::new(input)).unwrap().logits;
        let last: Vec<f32> = logits.get(0).unwrap().get(ids.len() - 1).unwrap().to_vec1().unwrap();
        let best = last.iter().enumerate().fold(0, |b, (i, v)| if *v > last[b] { i } else { b });
        ids.push(best as u32);
    }
    assert_eq!(bert().generate(&PROMPT, &greedy(6)).unwrap(), [ids]);
}

#[test]
fn default_length_is_twenty_new_tokens_within_max_positions() {
    let model = Chain::new(true);
    let out = model.generate(&[0u32, 1], &GenerationConfig::new()).unwrap();
    assert_eq!(out[0].len(), 22);
    let short = Chain { max_positions: Some(8), ..Chain::new(true) };
    assert_eq!(short.generate(&[0u32, 1], &GenerationConfig::new()).unwrap()[0].len(), 8);
    // `max_length` counts the prompt.
    assert_eq!(model.generate(&[0u32, 1], &GenerationConfig::new().max_length(5)).unwrap()[0].len(), 5);
}

#[test]
fn cache_and_recompute_agree() {
    let config = greedy(9);
    let cached = Chain::new(true).generate(&[vec![0u32, 3], vec![5]], &config).unwrap();
    let recomputed = Chain::new(false).generate(&[vec![0u32, 3], vec![5]], &config).unwrap();
    let no_cache = Chain::new(true).generate(&[vec![0u32, 3], vec![5]], &config.clone().use_cache(false)).unwrap();
    assert_eq!(cached, recomputed);
    assert_eq!(cached, no_cache);
    assert_eq!(cached[0], [0, 3, 9, 1, 2, 3, 9, 1, 2, 3, 9]);
}

#[test]
fn beam_search_with_and_without_cache_agree() {
    // Ragged prompts (left-padded), two EOS tokens, two sequences per prompt.
    let config = greedy(6).num_beams(3).num_return_sequences(2).eos_token_ids([9, 6]).length_penalty(0.5);
    let prompts = vec![vec![0u32, 3], vec![5]];
    let cached = Chain::new(true).generate_output(&prompts, &config, None).unwrap();
    let recomputed = Chain::new(false).generate_output(&prompts, &config, None).unwrap();
    let no_cache = Chain::new(true).generate_output(&prompts, &config.clone().use_cache(false), None).unwrap();
    assert_eq!(cached, recomputed);
    assert_eq!(cached, no_cache);
    assert_eq!((cached.sequences.len(), cached.prompt_len), (4, 2));
    let scores = cached.sequences_scores.clone().unwrap();
    assert!(scores[0] >= scores[1] && scores[2] >= scores[3], "best first: {scores:?}");
    // After 3 the chain prefers the EOS 9: the best hypothesis ends there.
    assert_eq!(cached.generated(0), [9]);
    assert_eq!(cached.finish_reasons[0], FinishReason::Eos);
    // The second prompt's rows keep its left padding (the first EOS fills, pad being unset).
    assert_eq!(cached.sequences[2][0], 9);
    // One beam is greedy decoding.
    let one = Chain::new(true).generate(&prompts, &greedy(6).num_beams(1)).unwrap();
    assert_eq!(one, Chain::new(true).generate(&prompts, &greedy(6)).unwrap());
}

#[test]
fn sampling_returns_several_sequences_per_prompt() {
    let config = GenerationConfig::new().do_sample(true).seed(3).max_new_tokens(4).num_return_sequences(3);
    let out = Chain::new(true).generate_output(&[vec![0u32, 3], vec![5]], &config, None).unwrap();
    assert_eq!(out.sequences.len(), 6);
    assert!(out.sequences[..3].iter().all(|s| s[..2] == [0, 3]), "{:?}", out.sequences);
    assert!(out.sequences[3..].iter().all(|s| s[1] == 5), "{:?}", out.sequences);
    assert!(out.sequences_scores.is_none());
}

// ---------------------------------------------------------------------------------------------
// Batches with left padding

#[test]
fn left_padded_batch_equals_rows_alone() {
    let model = bert();
    let config = greedy(12);
    // Ragged rows are left-padded by `generate`.
    let batch = model.generate(&[PROMPT.to_vec(), vec![7, 8]], &config).unwrap();
    assert_eq!(batch[0], GREEDY);
    assert_eq!(batch[1][3..], GREEDY_SHORT);
    assert_eq!(model.generate(&[7u32, 8], &config).unwrap()[0], GREEDY_SHORT);
    // An explicitly padded batch with its mask, as transformers got it.
    let prompts = Prompts::new(vec![PROMPT.to_vec(), vec![0, 0, 0, 7, 8]])
        .with_attention_mask(vec![vec![1; 5], vec![0, 0, 0, 1, 1]]);
    let out = model.generate(&prompts, &config).unwrap();
    assert_eq!(out[1], [[0, 0, 0].as_slice(), &GREEDY_SHORT].concat());
}

/// transformers 5.23's `generate` on the left-padded batch `[[3, 9, 4, 12, 7, 5], [6, 11],
/// [8, 4, 10]]` (`max_new_tokens=8`) for fixtures whose rotary scaling depends on the sequence
/// length, where rows of a padded batch differ from rows alone in transformers too.
const LENGTH_DEPENDENT_ROPE_BATCHES: [(&str, [[u32; 14]; 3]); 2] = [
    (
        "llama-causal-lm-rope-dynamic",
        [
            [3, 9, 4, 12, 7, 5, 30, 45, 79, 0, 90, 35, 0, 35],
            [0, 0, 0, 0, 6, 11, 13, 37, 13, 13, 61, 24, 36, 11],
            [0, 0, 0, 8, 4, 10, 17, 45, 45, 79, 0, 76, 17, 79],
        ],
    ),
    (
        "llama-causal-lm-rope-longrope",
        [
            [3, 9, 4, 12, 7, 5, 95, 37, 73, 42, 58, 4, 92, 92],
            [0, 0, 0, 0, 6, 11, 61, 90, 31, 90, 31, 90, 20, 18],
            [0, 0, 0, 8, 4, 10, 16, 4, 4, 16, 4, 4, 4, 4],
        ],
    ),
];

#[test]
fn batches_of_the_decoder_fixtures_equal_rows_alone() {
    // Every causal LM fixture with a `generate` entry, cached and not.
    let mut checked = 0;
    for dir in fixture_dirs().unwrap() {
        let reference = std::fs::read_to_string(dir.join("reference.json")).unwrap();
        if !reference.contains("\"generate\"") || !reference.contains("\"causal-lm\"") {
            continue;
        }
        let Ok(model) = AutoModelForCausalLM::from_pretrained(&dir.to_string_lossy()) else {
            println!("skipping {}: its architecture is not compiled in or not implemented yet", dir.display());
            continue;
        };
        let rows = vec![vec![3u32, 9, 4, 12, 7, 5], vec![6, 11], vec![8, 4, 10]];
        let config = greedy(8).pad_token_id(0);
        let batch = model.generate(&rows, &config).unwrap();
        let config_json = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let length_dependent = config_json.contains("\"dynamic\"") || config_json.contains("\"longrope\"");
        if length_dependent {
            let name = dir.file_name().unwrap().to_string_lossy();
            match LENGTH_DEPENDENT_ROPE_BATCHES.iter().find(|(n, _)| *n == name) {
                Some((_, want)) => assert_eq!(batch, want, "{name}: the padded batch"),
                None => println!("{name}: rope scaling depends on the length; no recorded batch, rows not compared"),
            }
        }
        for (row, prompt) in rows.iter().enumerate() {
            let alone = model.generate(prompt, &config).unwrap().remove(0);
            let pad = 6 - prompt.len();
            if !length_dependent {
                assert_eq!(batch[row][pad..], alone, "{}: row {row}", dir.display());
            }
            let uncached = model.generate(prompt, &config.clone().use_cache(false)).unwrap().remove(0);
            assert_eq!(uncached, alone, "{}: without the cache", dir.display());
        }
        checked += 1;
    }
    println!("checked {checked} decoder fixtures");
}

#[test]
fn eos_finishes_rows_and_pads_them() {
    let model = bert();
    let prompts = Prompts::new(vec![PROMPT.to_vec(), vec![0, 0, 0, 7, 8]])
        .with_attention_mask(vec![vec![1; 5], vec![0, 0, 0, 1, 1]]);
    // transformers, pad_token_id=0: [[.., 108, 5, 41, 2], [0, 0, 0, 7, 8, 25, 121, 0, 0]]
    let config = greedy(12).eos_token_ids([2, 121]).pad_token_id(0);
    let out = model.generate_output(&prompts, &config, None).unwrap();
    assert_eq!(out.sequences[0], [5, 17, 42, 99, 3, 108, 5, 41, 2]);
    assert_eq!(out.sequences[1], [0, 0, 0, 7, 8, 25, 121, 0, 0]);
    assert_eq!(out.finish_reasons, [FinishReason::Eos, FinishReason::Eos]);
    assert_eq!((out.generated(0), out.generated(1)), (&[108, 5, 41, 2][..], &[25, 121][..]));
    // Without a pad token, finished rows are filled with the first EOS token.
    let out = model.generate(&prompts, &greedy(12).eos_token_ids([2, 121])).unwrap();
    assert_eq!(out[1], [0, 0, 0, 7, 8, 25, 121, 2, 2]);
}

#[test]
fn multiple_eos_tokens() {
    let model = bert();
    // transformers: eos_token_id=[41, 2] stops at 41.
    let out = model.generate_output(&PROMPT, &greedy(12).eos_token_ids([41, 2]), None).unwrap();
    assert_eq!(out.sequences[0], [5, 17, 42, 99, 3, 108, 5, 41]);
    assert_eq!(out.finish_reasons, [FinishReason::Eos]);
    let out = model.generate_output(&PROMPT, &greedy(12).eos_token_id(2), None).unwrap();
    assert_eq!(out.generated(0), [108, 5, 41, 2]);
    let out = model.generate_output(&PROMPT, &greedy(3).eos_token_id(2), None).unwrap();
    assert_eq!(out.finish_reasons, [FinishReason::Length]);
}

#[test]
fn min_new_tokens_suppresses_eos() {
    let model = bert();
    // transformers: eos [41, 2], min_new_tokens=4 -> [.., 108, 5, 108, 15, 41]
    let out = model.generate(&PROMPT, &greedy(12).eos_token_ids([41, 2]).min_new_tokens(4)).unwrap();
    assert_eq!(out[0], [5, 17, 42, 99, 3, 108, 5, 108, 15, 41]);
    // min_length counts the prompt.
    let out = model.generate(&PROMPT, &greedy(12).eos_token_ids([41, 2]).min_length(9)).unwrap();
    assert_eq!(out[0], [5, 17, 42, 99, 3, 108, 5, 108, 15, 41]);
}

#[test]
fn penalties_match_transformers() {
    let model = bert();
    // transformers: repetition_penalty=1.5, no_repeat_ngram_size=2
    let out = model.generate(&PROMPT, &greedy(12).repetition_penalty(1.5).no_repeat_ngram_size(2)).unwrap();
    assert_eq!(out[0], [5, 17, 42, 99, 3, 108, 15, 41, 2, 16, 97, 121, 97, 66, 109, 121, 41]);
    // The left padding of a row is not penalised.
    let prompts = Prompts::new(vec![PROMPT.to_vec(), vec![0, 0, 0, 7, 8]])
        .with_attention_mask(vec![vec![1; 5], vec![0, 0, 0, 1, 1]]);
    let out = model.generate(&prompts, &greedy(12).repetition_penalty(1.5)).unwrap();
    assert_eq!(out[1], [0, 0, 0, 7, 8, 25, 121, 41, 92, 51, 16, 2, 108, 15, 85, 109, 97]);
}

// ---------------------------------------------------------------------------------------------
// Logits processors against transformers' (`generation/logits_process.py`) on one vector

const SCORES: [f32; 8] = [1.5, -0.5, 3.0, 0.25, -2.0, 2.0, 0.0, 1.0];
const IDS: [u32; 5] = [2, 4, 2, 7, 4];
const NEG: f32 = f32::NEG_INFINITY;

fn run(mut p: impl LogitsProcessor, ids: &[u32]) -> Vec<f32> {
    let mut scores = SCORES.to_vec();
    p.process(0, ids, &mut scores).unwrap();
    scores
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        let ok = if w.is_infinite() { g == w } else { (g - w).abs() <= 1e-6 * w.abs().max(1.0) };
        assert!(ok, "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn repetition_penalty_values() {
    let want = [1.5, -0.5, 2.307_692_3, 0.25, -2.6, 2.0, 0.0, 0.769_230_8];
    assert_close(&run(RepetitionPenalty::new(1.3).unwrap(), &IDS), &want, "penalty 1.3");
    // prompt_ignore_length=3: only [7, 4] count.
    let want = [1.5, -0.5, 3.0, 0.25, -2.6, 2.0, 0.0, 0.769_230_8];
    assert_close(&run(RepetitionPenalty::new(1.3).unwrap().ignoring_prefix(vec![3]), &IDS), &want, "ignore 3");
}

#[test]
fn no_repeat_ngram_values() {
    let ids = [1, 2, 3, 1, 2, 5, 1, 2];
    let want = [1.5, -0.5, 3.0, NEG, -2.0, NEG, 0.0, 1.0];
    assert_close(&run(NoRepeatNGram::new(2).unwrap(), &ids), &want, "ngram 2");
    assert_close(&run(NoRepeatNGram::new(3).unwrap(), &ids), &want, "ngram 3");
}

#[test]
fn min_length_values() {
    assert_close(&run(MinLength::new(6, vec![2, 5]), &IDS), &[1.5, -0.5, NEG, 0.25, -2.0, NEG, 0.0, 1.0], "active");
    assert_close(&run(MinLength::new(5, vec![2, 5]), &IDS), &SCORES, "done");
    let want = [1.5, -0.5, NEG, 0.25, -2.0, 2.0, 0.0, 1.0];
    assert_close(&run(MinNewTokens::new(3, 3, vec![2]), &IDS), &want, "min new active");
    assert_close(&run(MinNewTokens::new(2, 3, vec![2]), &IDS), &SCORES, "min new done");
}

#[test]
fn warper_values() {
    let want = [2.142_857, -0.714_285_7, 4.285_714, 0.357_142_87, -2.857_143, 2.857_143, 0.0, 1.428_571_5];
    assert_close(&run(Temperature::new(0.7).unwrap(), &IDS), &want, "temperature");
    assert_close(&run(TopK::new(3, 1).unwrap(), &IDS), &[1.5, NEG, 3.0, NEG, NEG, 2.0, NEG, NEG], "top_k 3");
    assert_close(&run(TopP::new(0.95, 1).unwrap(), &IDS), &[1.5, NEG, 3.0, 0.25, NEG, 2.0, NEG, 1.0], "top_p");
    assert_close(&run(MinP::new(0.1, 1).unwrap(), &IDS), &[1.5, NEG, 3.0, NEG, NEG, 2.0, NEG, 1.0], "min_p");
}

#[test]
fn processor_pipeline_in_transformers_order() {
    // temperature 0.7 -> top_k 5 -> top_p 0.9 -> min_p 0.05, as transformers applies them.
    let config = GenerationConfig::new().do_sample(true).temperature(0.7).top_k(5).top_p(0.9).min_p(0.05);
    let info = PromptInfo { prompt_len: 5, padding: vec![0], eos_token_ids: vec![], min_length: 0 };
    let mut scores = SCORES.to_vec();
    for p in processors_for(&config, &info).unwrap().iter_mut() {
        p.process(0, &IDS, &mut scores).unwrap();
    }
    assert_close(&scores, &[2.142_857, NEG, 4.285_714, NEG, NEG, 2.857_143, NEG, NEG], "pipeline");
    // Greedy decoding builds no warper.
    assert!(processors_for(&GenerationConfig::new().temperature(0.7), &info).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Sampling

#[test]
fn seeded_sampling_is_reproducible() {
    let model = bert();
    let config = GenerationConfig::new().do_sample(true).max_new_tokens(16).top_k(0).seed(7);
    let a = model.generate(&PROMPT, &config).unwrap();
    let b = model.generate(&PROMPT, &config).unwrap();
    assert_eq!(a, b);
    let c = model.generate(&PROMPT, &config.clone().seed(8)).unwrap();
    assert_ne!(a, c, "another seed draws other tokens");
    // Row 0 of a batch draws what it draws alone.
    let batch = model.generate(&[PROMPT.to_vec(), vec![7, 8, 9, 10, 11]], &config).unwrap();
    assert_eq!(batch[0], a[0]);
}

#[test]
fn top_k_one_sampling_is_greedy() {
    let model = bert();
    let config = GenerationConfig::new().do_sample(true).top_k(1).max_new_tokens(12).seed(3);
    assert_eq!(model.generate(&PROMPT, &config).unwrap(), [GREEDY.to_vec()]);
    let config = config.temperature(0.3).top_p(0.5);
    assert_eq!(model.generate(&PROMPT, &config).unwrap(), [GREEDY.to_vec()]);
}

// ---------------------------------------------------------------------------------------------
// Stop strings

#[test]
fn stop_strings_end_rows() {
    let model = Chain::new(true);
    let decoder = Pieces(CHAIN_PIECES);
    // 0 -> 1 -> 2 -> 3 -> 9 -> 1: "<s>abc</s>abc..."; stop at "bc" and at "c</" (ends inside `</s>`).
    for (stop, want) in [("bc", vec![0, 1, 2, 3]), ("c</", vec![0, 1, 2, 3, 9]), ("zzz", vec![0, 1, 2, 3, 9, 1, 2])] {
        let config = greedy(6).stop_strings([stop]);
        let options = GenerateOptions::new().decoder(&decoder);
        let out =
            Generator::with_options(&model, &[0u32], &config, options).unwrap().run(|_| ControlFlow::Continue(()));
        let out = out.unwrap();
        assert_eq!(out.sequences[0], want, "{stop}");
        let reason = if stop == "zzz" { FinishReason::Length } else { FinishReason::Stop };
        assert_eq!(out.finish_reasons, [reason], "{stop}");
    }
    // A stop string that was complete before the newest token does not stop again.
    let criteria = StopStringCriteria::new(Pieces(CHAIN_PIECES), vec!["ab".to_owned()]);
    assert!(criteria.matching(&[0, 1, 2]).unwrap().is_some());
    assert!(criteria.matching(&[0, 1, 2, 3]).unwrap().is_none());
}

#[test]
fn stop_strings_through_the_tokenizer() {
    let model = bert();
    let tok = AutoTokenizer::from_pretrained(&fixtures_root().join("tokenizers/bert-fast").to_string_lossy()).unwrap();
    // The greedy continuation decodes to "... p. are time dog time1 p".
    let out = model.generate_with_tokenizer(&PROMPT, &greedy(12).stop_strings(["dog"]), &tok).unwrap();
    assert_eq!(out[0], GREEDY[..14]);
    let out = model.generate_with_tokenizer(&PROMPT, &greedy(12).stop_strings(["are ti"]), &tok).unwrap();
    assert_eq!(out[0], GREEDY[..13]);
    let full = model.generate_text(&tok, &["hello world"], &greedy(12)).unwrap().remove(0);
    assert_eq!(full, "本 p good p p time dog time dog time time");
    let stopped = model.generate_text(&tok, &["hello world"], &greedy(12).stop_strings(["dog"])).unwrap().remove(0);
    assert_eq!(stopped, "本 p good p p time dog");
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[test]
fn streaming_yields_the_generated_tokens() {
    let model = bert();
    let config = greedy(12);
    let mut streamed = Vec::new();
    let out = model
        .generate_stream(&PROMPT, &config, None, |step| {
            assert!(step.active[0]);
            streamed.push(step.tokens[0]);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(streamed, GREEDY[5..]);
    assert_eq!(out.sequences, [GREEDY.to_vec()]);
    // The iterator gives the same steps.
    let steps: Vec<u32> = model.generator(&PROMPT, &config, None).unwrap().map(|s| s.unwrap().tokens[0]).collect();
    assert_eq!(steps, GREEDY[5..]);
    // Break stops generation.
    let out = model
        .generate_stream(&PROMPT, &config, None, |s| {
            if s.step == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(out.sequences[0], GREEDY[..8]);
    assert_eq!(out.finish_reasons, [FinishReason::Cancelled]);
}

#[test]
fn text_streaming_matches_the_full_text() {
    let model = bert();
    let tok = AutoTokenizer::from_pretrained(&fixtures_root().join("tokenizers/bert-fast").to_string_lossy()).unwrap();
    let config = greedy(12);
    let full = model.generate_text(&tok, &["hello world"], &config).unwrap().remove(0);
    let mut pieces = Vec::new();
    let text = model
        .stream_text(&tok, "hello world", &config, |p| {
            pieces.push(p.to_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(text, full);
    assert_eq!(pieces.concat(), full);
    assert!(pieces.len() > 1, "{pieces:?}");
    // Every piece but the last ends at a word boundary or with a CJK character.
    let cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    assert!(pieces[..pieces.len() - 1].iter().all(|p| p.ends_with(' ') || p.ends_with(cjk)), "{pieces:?}");
    let iterated: Vec<String> = model.text_stream(&tok, "hello world", &config).unwrap().map(Result::unwrap).collect();
    assert_eq!(iterated, pieces);
}

/// Tokens are single bytes of UTF-8 text; partial characters decode to U+FFFD.
struct Bytes;

impl TokenDecoder for Bytes {
    fn decode(&self, ids: &[u32], _skip: bool) -> autocandle::Result<String> {
        Ok(String::from_utf8_lossy(&ids.iter().map(|&i| i as u8).collect::<Vec<u8>>()).into_owned())
    }
}

fn bytes(s: &str) -> Vec<u32> {
    s.bytes().map(u32::from).collect()
}

#[test]
fn text_streamer_never_splits_characters() {
    let text = "héllo wörld 日本語 🙂 done\nnext line ok";
    let mut streamer = TextStreamer::new(&Bytes);
    let mut pieces = Vec::new();
    for b in text.bytes() {
        pieces.push(streamer.put(&[u32::from(b)]).unwrap());
    }
    pieces.push(streamer.end().unwrap());
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    // Words are released at the following space, CJK characters at once, lines at the newline.
    assert!(pieces.contains(&"héllo ".to_owned()), "{pieces:?}");
    assert!(pieces.contains(&"日".to_owned()), "{pieces:?}");
    assert!(pieces.contains(&"done\n".to_owned()), "{pieces:?}");
    // skip_prompt ignores the first put.
    let mut streamer = TextStreamer::new(&Bytes).skip_prompt(true);
    assert_eq!(streamer.put(&bytes("prompt ")).unwrap(), "");
    assert_eq!(streamer.put(&bytes("new ")).unwrap(), "new ");
}

// ---------------------------------------------------------------------------------------------
// GenerationConfig files

#[test]
fn generation_config_from_pretrained() {
    let c = GenerationConfig::from_pretrained(&fixture("bert-causal-lm").to_string_lossy()).unwrap();
    assert_eq!((c.pad_token_id, c.use_cache, c.eos_token_id.clone()), (Some(0), Some(true), None));
    // Without generation_config.json, the generation fields of config.json.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "llama", "eos_token_id": [2, 7], "bos_token_id": 1, "pad_token_id": null,
            "hidden_size": 8, "text_config": {"pad_token_id": 3, "eos_token_id": 9}}"#,
    )
    .unwrap();
    let c = GenerationConfig::from_pretrained(&dir.path().to_string_lossy()).unwrap();
    assert_eq!((c.eos_token_id, c.bos_token_id, c.pad_token_id), (Some(vec![2, 7]), Some(1), Some(3)));
    // Merging a user config with the model's.
    let merged = GenerationConfig::new().max_new_tokens(4).fill_from(&GenerationConfig::new().eos_token_id(2));
    assert_eq!((merged.max_new_tokens, merged.eos_token_id), (Some(4), Some(vec![2])));
}

#[test]
fn generation_config_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |json: &str| std::fs::write(dir.path().join("generation_config.json"), json).unwrap();
    let load = || GenerationConfig::from_pretrained(&dir.path().to_string_lossy());
    write(r#"{"top_k": -1}"#);
    let err = load().unwrap_err().to_string();
    assert!(err.contains("top_k"), "{err}");
    write(r#"{"max_new_tokens": 0}"#);
    assert!(load().unwrap_err().to_string().contains("max_new_tokens"));
    write("{not json");
    assert!(matches!(load().unwrap_err(), Error::MalformedJson { .. }));
    let empty = tempfile::tempdir().unwrap();
    let err = GenerationConfig::from_pretrained(&empty.path().to_string_lossy()).unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Errors

fn generate_err(model: &dyn ForCausalLm, prompts: Prompts, config: &GenerationConfig) -> Error {
    model.generate(&prompts, config).unwrap_err()
}

#[test]
fn invalid_prompts_are_errors() {
    let model = Chain::new(true);
    let config = greedy(4);
    let err = generate_err(&model, Prompts::new(vec![vec![]]), &config);
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("no tokens"), "{err}");
    assert!(matches!(generate_err(&model, Prompts::new(vec![]), &config), Error::InvalidInput(_)));
    let masked = Prompts::new(vec![vec![1, 2], vec![3, 4]]).with_attention_mask(vec![vec![1, 1], vec![0, 0]]);
    assert!(generate_err(&model, masked, &config).to_string().contains("row 1"));
    let bad_shape = Prompts::new(vec![vec![1, 2]]).with_attention_mask(vec![vec![1]]);
    assert!(matches!(generate_err(&model, bad_shape, &config), Error::InvalidInput(_)));
    let err = generate_err(&model, Prompts::single(&[1, 2, 3]), &GenerationConfig::new().max_length(3));
    assert!(err.to_string().contains("max_length"), "{err}");
}

#[test]
fn sequences_longer_than_the_model_are_errors() {
    let model = Chain { max_positions: Some(8), ..Chain::new(true) };
    let err = generate_err(&model, Prompts::single(&[1; 9]), &greedy(2));
    assert!(matches!(err, Error::SequenceTooLong { len: 9, max: 8 }), "{err}");
    // Growing past the limit fails at the step that would exceed it.
    let mut steps = 0;
    let err = Generator::new(&model, &[1u32; 6], &greedy(5))
        .unwrap()
        .run(|_| {
            steps += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::SequenceTooLong { len: 9, max: 8 }), "{err}");
    assert_eq!(steps, 3);
}

#[test]
fn invalid_configs_are_errors() {
    let model = Chain::new(true);
    let prompt = || Prompts::single(&[1, 2]);
    let invalid = |config: GenerationConfig, needle: &str| {
        let err = generate_err(&model, prompt(), &config);
        assert!(matches!(err, Error::InvalidConfig { .. }), "{needle}: {err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    };
    let sample = || GenerationConfig::new().do_sample(true).max_new_tokens(3);
    invalid(sample().temperature(0.0), "do_sample");
    invalid(sample().temperature(-1.0), "temperature");
    invalid(sample().top_p(0.0), "top_p");
    invalid(sample().top_p(1.5), "top_p");
    invalid(sample().min_p(2.0), "min_p");
    invalid(greedy(3).repetition_penalty(0.0), "repetition_penalty");
    invalid(GenerationConfig::new().max_new_tokens(0), "max_new_tokens");
    invalid(greedy(3).stop_strings([""]), "stop_strings");
    // Greedy decoding ignores sampling-only values, as transformers (it only warns).
    assert!(model.generate(prompt(), &greedy(3).temperature(0.0).top_p(5.0)).is_ok());
    // Beam search settings.
    invalid(greedy(3).num_beams(0), "num_beams");
    invalid(greedy(3).num_beams(2).num_return_sequences(3), "num_return_sequences");
    invalid(greedy(3).num_return_sequences(2), "num_return_sequences");
    invalid(greedy(3).num_beams(2).length_penalty(f64::NAN), "length_penalty");
    let err = generate_err(&model, prompt(), &greedy(3).num_beams(2).do_sample(true));
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("do_sample"), "{err}");
    // Beam search ranks its beams at the end: it does not stream.
    let err = Generator::new(&model, &[1u32, 2], &greedy(3).num_beams(2)).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("`generate`"), "{err}");
    let err = generate_err(&model, prompt(), &greedy(3).stop_strings(["x"]));
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("tokenizer"), "{err}");
}

#[test]
fn model_errors_reach_the_caller() {
    // BERT's position embeddings end at 64; it reports positions beyond them itself.
    let err = bert().generate(&[1u32; 60], &greedy(10)).unwrap_err();
    assert!(err.to_string().contains("position"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The parity harness

#[test]
fn harness_reports_generate_mismatches() {
    let source = fixture("llama-causal-lm");
    if AutoModelForCausalLM::from_pretrained(&source.to_string_lossy()).is_err() {
        println!("skipping: the llama architecture is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let outcome = autocandle_tests::run_fixture(dir.path()).unwrap();
    assert!(matches!(outcome, autocandle_tests::Outcome::Pass { .. }), "{outcome:?}");
    // Change two expected tokens: the harness must name `generate` and count 2 positions.
    let path = dir.path().join("reference.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let expected = tensors["gen.output_ids"].clone();
    let mut ids: Vec<Vec<i64>> = expected.to_vec2().unwrap();
    let last = ids[0].len() - 1;
    ids[0][last] += 1;
    ids[0][last - 1] += 1;
    let changed = Tensor::new(ids, &Device::Cpu).unwrap();
    tensors.insert("gen.output_ids".to_owned(), changed);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let outcome = autocandle_tests::run_fixture(dir.path()).unwrap();
    assert_eq!(outcome.line("x"), "FAIL x generate 2", "{outcome:?}");
}

#[test]
fn right_padded_tokenizer_batches_are_moved_left() {
    let model = bert();
    let tok = AutoTokenizer::from_pretrained(&fixtures_root().join("tokenizers/bert-fast").to_string_lossy()).unwrap();
    let batch = tok.encode_batch(&["hello world", "hello"], &EncodeOptions::new().padding(Padding::Longest)).unwrap();
    assert_eq!(batch.attention_mask[1].last(), Some(&0), "the fixture tokenizer pads on the right");
    let config = greedy(6);
    let out = model.generate(&batch, &config).unwrap();
    for (row, text) in ["hello world", "hello"].iter().enumerate() {
        let alone = model.generate(&tok.encode(text).unwrap(), &config).unwrap().remove(0);
        assert_eq!(out[row][out[row].len() - alone.len()..], alone, "row {row}");
    }
    assert_eq!(out[1][0], 0, "row 1 is padded on the left");
}

#[test]
fn loaded_configs_are_checked_when_generating() {
    // transformers loads sampling values it cannot use and fails in `generate`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("generation_config.json"), r#"{"do_sample": true, "temperature": 0.0}"#).unwrap();
    let config = GenerationConfig::from_pretrained(&dir.path().to_string_lossy()).unwrap();
    let err = Chain::new(true).generate(&[1u32], &config.clone().max_new_tokens(2)).unwrap_err();
    assert!(err.to_string().contains("temperature"), "{err}");
    assert!(Chain::new(true).generate(&[1u32], &config.do_sample(false).max_new_tokens(2)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Chat generation end to end: tests/fixtures/qwen3-chat (tests/fixtures/make_chat_fixture.py) is
// a tiny Qwen3 with a real BPE tokenizer and the Qwen3 chat template; Python's results are in its
// expected.json.

const CHAT_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn chat_expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("qwen3-chat").join("expected.json")).unwrap()).unwrap()
}

fn ids_of(value: &serde_json::Value) -> Vec<u32> {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn chat_generation_from_a_hub_id_matches_python_token_for_token() {
    // The README's example, with the Hub id served from a pre-filled cache, offline.
    let cache = autocandle_tests::hub_cache(&fixture("qwen3-chat"), "Qwen/Qwen3-0.6B", CHAT_SHA, None).unwrap();
    let opts = LoadOptions::new().cache_dir(cache.path()).local_files_only(true);
    let id = "Qwen/Qwen3-0.6B";
    let tok = AutoTokenizer::from_pretrained_with(id, &opts).unwrap();
    let model = AutoModelForCausalLM::from_pretrained_with(id, &opts).unwrap().value;
    let prompt = tok.apply_chat_template(&[("user", "Hi!")], true).unwrap();
    let config = GenerationConfig::from_pretrained_with(id, &opts).unwrap().max_new_tokens(24);
    let out = model.generate(&tok.encode(&prompt).unwrap(), &config).unwrap();

    let want = &chat_expected()["single"];
    assert_eq!(prompt, want["prompt_text"].as_str().unwrap());
    assert_eq!(tok.encode(&prompt).unwrap().input_ids[0], ids_of(&want["prompt_ids"]));
    assert_eq!(out[0], ids_of(&want["output_ids"]));
    let prompt_len = want["prompt_ids"].as_array().unwrap().len();
    assert_eq!(tok.decode(&out[0][prompt_len..], true).unwrap(), want["generated_text"].as_str().unwrap());
}

#[test]
fn batched_chat_generation_matches_python() {
    let dir = fixture("qwen3-chat");
    let dir = dir.to_string_lossy();
    let tok = AutoTokenizer::from_pretrained(&dir).unwrap();
    let model = AutoModelForCausalLM::from_pretrained(&dir).unwrap();
    let config = GenerationConfig::from_pretrained(&dir).unwrap();
    let want = &chat_expected()["batch"];

    let conversations: Vec<Vec<serde_json::Value>> = serde_json::from_value(want["messages"].clone()).unwrap();
    let texts: Vec<String> = conversations.iter().map(|c| tok.apply_chat_template(c, true).unwrap()).collect();
    let expected_texts: Vec<String> = serde_json::from_value(want["prompt_texts"].clone()).unwrap();
    assert_eq!(texts, expected_texts);

    // Python's left-padded batch, as is: the same rows come back.
    let ids: Vec<Vec<u32>> = serde_json::from_value(want["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = serde_json::from_value(want["attention_mask"].clone()).unwrap();
    let out = model.generate(Prompts::new(ids).with_attention_mask(mask), &config).unwrap();
    let expected: Vec<Vec<u32>> = serde_json::from_value(want["output_ids"].clone()).unwrap();
    assert_eq!(out, expected);

    // From the texts, with the tokenizer padding (on the right here, moved to the left).
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let generated = model.generate_text(&tok, &refs, &config).unwrap();
    let expected_generated: Vec<String> = serde_json::from_value(want["generated_texts"].clone()).unwrap();
    assert_eq!(generated, expected_generated);
}

#[test]
fn streamed_chat_text_equals_the_whole_text() {
    let dir = fixture("qwen3-chat");
    let dir = dir.to_string_lossy();
    let tok = AutoTokenizer::from_pretrained(&dir).unwrap();
    let model = AutoModelForCausalLM::from_pretrained(&dir).unwrap();
    let config = GenerationConfig::from_pretrained(&dir).unwrap();
    let want = &chat_expected()["single"];
    let prompt = tok.apply_chat_template(&[("user", "Hi!")], true).unwrap();
    let mut pieces = Vec::new();
    let whole = model
        .stream_text(&tok, &prompt, &config, |piece| {
            pieces.push(piece.to_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(whole, want["generated_text"].as_str().unwrap());
    assert_eq!(pieces.concat(), whole);
    assert!(pieces.len() > 1, "the text came in one piece: {pieces:?}");
}

// ---------------------------------------------------------------------------------------------
// Sequence-to-sequence generation beyond the fixtures' greedy and beam checks

fn t5() -> Box<dyn autocandle::ForSeq2SeqLm> {
    autocandle::AutoModelForSeq2SeqLM::from_pretrained(&fixture("t5-seq2seq-lm").to_string_lossy()).unwrap()
}

fn t5_prompt() -> ModelInputs {
    let ids = Tensor::new(&[[7u32, 12, 30, 4, 9], [15, 3, 22, 8, 0]], &candle_core::Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 1, 0]], &candle_core::Device::Cpu).unwrap();
    ModelInputs::new(ids).with_attention_mask(mask)
}

#[test]
fn seq2seq_sampling_is_seeded_and_top_k_one_is_greedy() {
    use autocandle::Seq2SeqGenerationMixin;
    let model = t5();
    let greedy = GenerationConfig::new().max_new_tokens(8).no_eos_token();
    let want = model.generate(&t5_prompt(), &greedy).unwrap();
    let top1 = greedy.clone().do_sample(true).top_k(1).seed(3);
    assert_eq!(model.generate(&t5_prompt(), &top1).unwrap(), want);
    let sample = greedy.clone().do_sample(true).temperature(1.5).seed(11);
    let a = model.generate(&t5_prompt(), &sample).unwrap();
    assert_eq!(a, model.generate(&t5_prompt(), &sample).unwrap());
    assert!(a.iter().all(|row| row.len() == 9 && row[0] == 0));
    // A padded batch row equals that row alone.
    let alone = ModelInputs::new(Tensor::new(&[[15u32, 3, 22, 8]], &candle_core::Device::Cpu).unwrap());
    assert_eq!(model.generate(&alone, &greedy).unwrap()[0], want[1]);
    // Beam search returns the requested number of sequences per input, best first.
    let beams = greedy.clone().num_beams(3).num_return_sequences(2);
    let out = model.generate_output(&t5_prompt(), &beams, None).unwrap();
    assert_eq!(out.sequences.len(), 4);
}

#[test]
fn forced_bos_and_eos_match_transformers() {
    use autocandle::Seq2SeqGenerationMixin;
    // `model.generate(prompt, do_sample=False, num_beams=n, max_new_tokens=6, forced_bos_token_id=5,
    // forced_eos_token_id=7, eos_token_id=7)` on tests/fixtures/bart-seq2seq-lm, transformers 5.23.
    let model =
        autocandle::AutoModelForSeq2SeqLM::from_pretrained(&fixture("bart-seq2seq-lm").to_string_lossy()).unwrap();
    let prompt = ModelInputs::new(Tensor::new(&[[60u32, 63, 93, 9, 32, 60]], &candle_core::Device::Cpu).unwrap());
    let config = GenerationConfig::new()
        .do_sample(false)
        .max_new_tokens(6)
        .forced_bos_token_id(5)
        .forced_eos_token_ids([7])
        .eos_token_id(7);
    assert_eq!(model.generate(&prompt, &config).unwrap(), [[2, 5, 18, 11, 18, 18, 7]]);
    assert_eq!(model.generate(&prompt, &config.clone().num_beams(3)).unwrap(), [[2, 5, 18, 6, 6, 6, 7]]);
}
