//! The token-classification pipeline (`transformers.TokenClassificationPipeline`, alias
//! `ner`): per-token labels, or entities grouped by an aggregation strategy, with character
//! offsets into the input.

use autocandle_core::{Error, ForTokenClassification, LoadOptions, Result};
use candle_core::{DType, IndexOp};

use super::{argmax, label_of, softmax, TextParts};
use crate::AutoModelForTokenClassification;

/// How tokens become entities (`aggregation_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregationStrategy {
    /// One entity per token, no grouping (the default).
    #[default]
    None,
    /// Adjacent tokens with the same tag (B-/I- rules) are grouped; scores averaged.
    Simple,
    /// Words take the label of their first token, then grouped.
    First,
    /// Words take the label of their averaged token scores, then grouped.
    Average,
    /// Words take the label of their most confident token, then grouped.
    Max,
}

impl std::str::FromStr for AggregationStrategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "simple" => Self::Simple,
            "first" => Self::First,
            "average" => Self::Average,
            "max" => Self::Max,
            other => {
                return Err(Error::input(format!(
                    "unknown aggregation strategy `{other}`: use none, simple, first, average or max"
                )))
            }
        })
    }
}

/// Options of [`TokenClassificationPipeline::call_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClassificationOptions {
    /// How tokens are grouped into words and entities (default none: one entity per token).
    pub aggregation_strategy: AggregationStrategy,
    /// Labels left out of the result (default `["O"]`).
    pub ignore_labels: Vec<String>,
}

impl Default for TokenClassificationOptions {
    fn default() -> Self {
        Self { aggregation_strategy: AggregationStrategy::None, ignore_labels: vec!["O".to_owned()] }
    }
}

/// One entity. With [`AggregationStrategy::None`] it is one token (`transformers`' keys
/// `entity` and `index`); otherwise a group (`entity_group`, the tag without `B-`/`I-`) and
/// `index` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The label (`entity`) or the group's tag (`entity_group`).
    pub entity: String,
    /// The softmax probability of the label; for a group, the mean over its words or tokens.
    pub score: f32,
    /// The token position in the encoded input (strategy none only).
    pub index: Option<usize>,
    /// The token, or the text of the grouped tokens.
    pub word: String,
    /// Character offset of the start in the input.
    pub start: usize,
    /// Character offset of the end in the input, exclusive.
    pub end: usize,
}

/// A token before aggregation (`gather_pre_entities`).
#[derive(Debug, Clone)]
struct PreEntity {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// A labelled token or word before grouping.
#[derive(Debug, Clone)]
struct Labelled {
    entity: String,
    score: f32,
    index: usize,
    word: String,
    start: usize,
    end: usize,
}

/// Label the tokens of a text with a token classifier.
#[derive(Debug)]
pub struct TokenClassificationPipeline {
    parts: TextParts,
    model: Box<dyn ForTokenClassification>,
    labels: Vec<String>,
    subword_prefix: bool,
}

impl TokenClassificationPipeline {
    /// Load the model (`AutoModelForTokenClassification`) and tokenizer at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`TokenClassificationPipeline::new`] with loading options. Inputs are truncated to the
    /// tokenizer's `model_max_length`, as in `transformers`.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("token-classification", model, || {
            let parts = TextParts::load(model, opts, true)?;
            let labels = super::config_labels(&parts.config);
            let subword_prefix = parts.has_subword_prefix();
            let model = AutoModelForTokenClassification::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, labels, subword_prefix })
        })
    }

    /// One entity per token of `text`, tokens labelled `O` left out.
    pub fn call(&self, text: &str) -> Result<Vec<Entity>> {
        self.call_with(text, &TokenClassificationOptions::default())
    }

    /// The entities of `text` under `opts`.
    pub fn call_with(&self, text: &str, opts: &TokenClassificationOptions) -> Result<Vec<Entity>> {
        let encoding = self.parts.encode(text, None)?;
        let logits = self.model.forward(&self.parts.inputs(&encoding)?)?.logits.to_dtype(DType::F32)?.i(0)?;
        let logits = logits.to_vec2::<f32>()?;
        let pre = self.gather_pre_entities(text, &encoding, &logits)?;
        let strategy = opts.aggregation_strategy;
        let labelled = match strategy {
            AggregationStrategy::None | AggregationStrategy::Simple => pre
                .into_iter()
                .map(|p| {
                    let (id, score) = argmax(&p.scores);
                    Labelled {
                        entity: label_of(&self.labels, id),
                        score,
                        index: p.index,
                        word: p.word,
                        start: p.start,
                        end: p.end,
                    }
                })
                .collect(),
            _ => self.aggregate_words(pre, strategy)?,
        };
        let entities = if strategy == AggregationStrategy::None {
            labelled
                .into_iter()
                .map(|l| Entity {
                    entity: l.entity,
                    score: l.score,
                    index: Some(l.index),
                    word: l.word,
                    start: l.start,
                    end: l.end,
                })
                .collect()
        } else {
            self.group_entities(labelled)?
        };
        Ok(entities.into_iter().filter(|e| !opts.ignore_labels.contains(&e.entity)).collect())
    }

    fn gather_pre_entities(
        &self,
        sentence: &str,
        encoding: &tokenizers::Encoding,
        logits: &[Vec<f32>],
    ) -> Result<Vec<PreEntity>> {
        let chars: Vec<char> = sentence.chars().collect();
        let unk_id = self.parts.tokenizer.special_token_id("unk_token");
        let special = encoding.get_special_tokens_mask();
        let mut pre = Vec::new();
        for (idx, row) in logits.iter().enumerate() {
            if special.get(idx).copied().unwrap_or(0) != 0 {
                continue;
            }
            let id = encoding.get_ids()[idx];
            let mut word = encoding.get_tokens()[idx].clone();
            let (start, end) = encoding.get_offsets()[idx];
            let word_ref: String =
                chars.get(start..end.min(chars.len())).map(|c| c.iter().collect()).unwrap_or_default();
            let mut is_subword = if self.subword_prefix {
                word.chars().count() != word_ref.chars().count()
            } else {
                // `transformers`' fallback heuristic: no space right before the token.
                start > 0 && !chars.get(start - 1..(start + 1).min(chars.len())).is_some_and(|w| w.contains(&' '))
            };
            if Some(id) == unk_id {
                word = word_ref;
                is_subword = false;
            }
            pre.push(PreEntity { word, scores: softmax(row), start, end, index: idx, is_subword });
        }
        Ok(pre)
    }

    /// `aggregate_words`: tokens of one word (a token and its subword continuations) become
    /// one labelled word under `strategy`.
    fn aggregate_words(&self, pre: Vec<PreEntity>, strategy: AggregationStrategy) -> Result<Vec<Labelled>> {
        let mut words = Vec::new();
        let mut group: Vec<PreEntity> = Vec::new();
        for entity in pre {
            if !group.is_empty() && !entity.is_subword {
                words.push(self.aggregate_word(std::mem::take(&mut group), strategy)?);
            }
            group.push(entity);
        }
        if !group.is_empty() {
            words.push(self.aggregate_word(group, strategy)?);
        }
        Ok(words)
    }

    fn aggregate_word(&self, tokens: Vec<PreEntity>, strategy: AggregationStrategy) -> Result<Labelled> {
        let word = self.parts.tokens_to_string(tokens.iter().map(|t| t.word.clone()).collect())?;
        let (id, score) = match strategy {
            AggregationStrategy::First => argmax(&tokens[0].scores),
            AggregationStrategy::Max => {
                // The first token with the highest top score (Python's `max` keeps the first).
                let best =
                    tokens.iter().fold(
                        &tokens[0],
                        |best, t| if argmax(&t.scores).1 > argmax(&best.scores).1 { t } else { best },
                    );
                argmax(&best.scores)
            }
            AggregationStrategy::Average => {
                let n = tokens[0].scores.len();
                let average: Vec<f32> =
                    (0..n).map(|j| tokens.iter().map(|t| t.scores[j]).sum::<f32>() / tokens.len() as f32).collect();
                argmax(&average)
            }
            AggregationStrategy::None | AggregationStrategy::Simple => {
                return Err(Error::input("none and simple strategies are invalid for word aggregation"))
            }
        };
        let (first, last) = (&tokens[0], &tokens[tokens.len() - 1]);
        Ok(Labelled {
            entity: label_of(&self.labels, id),
            score,
            index: first.index,
            word,
            start: first.start,
            end: last.end,
        })
    }

    /// `group_entities`: adjacent entities with the same tag are grouped unless the next one
    /// begins a new entity (`B-`).
    fn group_entities(&self, entities: Vec<Labelled>) -> Result<Vec<Entity>> {
        let mut groups = Vec::new();
        let mut current: Vec<Labelled> = Vec::new();
        for entity in entities {
            if let Some(last) = current.last() {
                let (bi, tag) = tag_of(&entity.entity);
                let (_, last_tag) = tag_of(&last.entity);
                if !(tag == last_tag && bi != "B") {
                    groups.push(self.group_sub_entities(std::mem::take(&mut current))?);
                }
            }
            current.push(entity);
        }
        if !current.is_empty() {
            groups.push(self.group_sub_entities(current)?);
        }
        Ok(groups)
    }

    fn group_sub_entities(&self, entities: Vec<Labelled>) -> Result<Entity> {
        let tag = entities[0].entity.split_once('-').map_or(entities[0].entity.as_str(), |(_, t)| t).to_owned();
        let score = entities.iter().map(|e| e.score).sum::<f32>() / entities.len() as f32;
        let word = self.parts.tokens_to_string(entities.iter().map(|e| e.word.clone()).collect())?;
        let (first, last) = (&entities[0], &entities[entities.len() - 1]);
        Ok(Entity { entity: tag, score, index: None, word, start: first.start, end: last.end })
    }
}

/// `get_tag`: (`"B"`/`"I"`, tag) of a label; labels without a prefix count as `I`.
fn tag_of(label: &str) -> (&str, &str) {
    if let Some(tag) = label.strip_prefix("B-") {
        ("B", tag)
    } else if let Some(tag) = label.strip_prefix("I-") {
        ("I", tag)
    } else {
        ("I", label)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_strategies() {
        assert_eq!(tag_of("B-PER"), ("B", "PER"));
        assert_eq!(tag_of("I-LOC"), ("I", "LOC"));
        assert_eq!(tag_of("LABEL_3"), ("I", "LABEL_3"));
        assert_eq!("Average".parse::<AggregationStrategy>().unwrap(), AggregationStrategy::Average);
        let err = "mean".parse::<AggregationStrategy>().unwrap_err().to_string();
        assert!(err.contains("unknown aggregation strategy `mean`"), "{err}");
    }
}
