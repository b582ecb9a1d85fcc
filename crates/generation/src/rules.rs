//! [`StepRules`]: what decides the next token and the end of a row, whatever the decoding
//! (greedy, sampling, beam search; causal or encoder-decoder).

use autocandle_core::{Error, Result};

use super::config::GenerationConfig;
use super::generator::GenerateOptions;
use super::logits::{forced_for, penalties_for, warpers_for, LogitsProcessor, PromptInfo};
use super::stopping::{StopStringCriteria, StoppingCriteria};

/// The logits processors, the stopping criteria, the EOS tokens and the length limit of one
/// generation.
pub(crate) struct StepRules<'p> {
    pub processors: Vec<Box<dyn LogitsProcessor + 'p>>,
    pub criteria: Vec<Box<dyn StoppingCriteria + 'p>>,
    pub eos: Vec<u32>,
    /// The longest a row may grow, prompt (and its padding) included.
    pub max_length: usize,
}

impl<'p> StepRules<'p> {
    /// The rules of `config` for a prompt batch described by `info`, in `transformers`' order
    /// (penalties and length constraints, forced tokens, the caller's processors, then the
    /// sampling warpers; stop strings, then the caller's criteria).
    pub fn new(
        config: &GenerationConfig,
        info: &PromptInfo,
        max_length: usize,
        options: GenerateOptions<'p>,
    ) -> Result<Self> {
        let mut processors: Vec<Box<dyn LogitsProcessor + 'p>> = Vec::new();
        processors.extend(penalties_for(config, info)?.into_iter().map(|p| p as Box<dyn LogitsProcessor + 'p>));
        processors.extend(forced_for(config, max_length).into_iter().map(|p| p as Box<dyn LogitsProcessor + 'p>));
        processors.extend(options.logits_processors);
        processors.extend(warpers_for(config)?.into_iter().map(|p| p as Box<dyn LogitsProcessor + 'p>));
        let stop_strings = config.stop_strings.clone().unwrap_or_default();
        let mut criteria: Vec<Box<dyn StoppingCriteria + 'p>> = Vec::new();
        match (stop_strings.is_empty(), options.decoder) {
            (true, _) => {}
            (false, Some(decoder)) => criteria.push(Box::new(StopStringCriteria::new(decoder, stop_strings))),
            (false, None) => {
                return Err(Error::input(
                    "`stop_strings` need a tokenizer to decode the generated tokens: generate through the \
                     tokenizer-aware methods (`generate_with_tokenizer`) or give `GenerateOptions::decoder`",
                ))
            }
        }
        criteria.extend(options.stopping_criteria);
        Ok(Self { processors, criteria, eos: info.eos_token_ids.clone(), max_length })
    }

    /// Whether a stopping criterion (stop strings, custom) matches `row` given its tokens
    /// (without left padding).
    pub fn criteria_match(&mut self, row: usize, ids: &[u32]) -> Result<bool> {
        for c in &mut self.criteria {
            if c.is_done(row, ids)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
