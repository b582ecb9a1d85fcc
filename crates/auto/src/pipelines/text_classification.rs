//! The text-classification pipeline (`transformers.TextClassificationPipeline`, alias
//! `sentiment-analysis`): labels from the config's `id2label` with softmax or sigmoid scores.

use autocandle_core::{Error, ForSequenceClassification, LoadOptions, Result};
use candle_core::{DType, IndexOp};
use serde_json::Value;

use super::{label_of, softmax, sorted_desc, TextParts};
use crate::AutoModelForSequenceClassification;

/// The function applied to the logits (`function_to_apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassificationFunction {
    /// Each logit on its own: `1 / (1 + exp(-x))` (multi-label, or one label).
    Sigmoid,
    /// Over the labels of a row: the scores sum to 1.
    Softmax,
    /// The raw logits.
    None,
}

impl ClassificationFunction {
    /// `transformers`' default for a config: none for `regression`, sigmoid for
    /// `multi_label_classification` or a single label, else softmax.
    pub fn default_for(problem_type: Option<&str>, num_labels: usize) -> Self {
        match problem_type {
            Some("regression") => Self::None,
            Some("multi_label_classification") => Self::Sigmoid,
            _ if num_labels == 1 => Self::Sigmoid,
            _ => Self::Softmax,
        }
    }

    pub(crate) fn apply(self, logits: &[f32]) -> Vec<f32> {
        match self {
            Self::Sigmoid => logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect(),
            Self::Softmax => softmax(logits),
            Self::None => logits.to_vec(),
        }
    }
}

/// Options of [`TextClassificationPipeline::call_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct TextClassificationOptions {
    /// How many labels, best first (default 1); `None` for all of them.
    pub top_k: Option<usize>,
    /// Override the function the config implies ([`ClassificationFunction::default_for`]).
    pub function_to_apply: Option<ClassificationFunction>,
}

impl Default for TextClassificationOptions {
    fn default() -> Self {
        Self { top_k: Some(1), function_to_apply: None }
    }
}

/// A label and its score (`{"label", "score"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// The label's name (`id2label`), or `LABEL_{i}` when the config has none.
    pub label: String,
    /// The logit after [`ClassificationFunction`].
    pub score: f32,
}

/// Classify a text (or a text pair) with a sequence classifier.
#[derive(Debug)]
pub struct TextClassificationPipeline {
    parts: TextParts,
    model: Box<dyn ForSequenceClassification>,
    labels: Vec<String>,
    default_function: ClassificationFunction,
}

impl TextClassificationPipeline {
    /// Load the model (`AutoModelForSequenceClassification`) and tokenizer at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`TextClassificationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("text-classification", model, || {
            let parts = TextParts::load(model, opts, false)?;
            let labels = super::config_labels(&parts.config);
            let problem_type = parts.config.raw().get("problem_type").and_then(Value::as_str);
            let default_function = ClassificationFunction::default_for(problem_type, labels.len());
            let model = AutoModelForSequenceClassification::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, labels, default_function })
        })
    }

    /// The labels by id (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The best label of `text` (a one-element list, as `transformers` returns).
    pub fn call(&self, text: &str) -> Result<Vec<Label>> {
        self.call_with(text, None, &TextClassificationOptions::default())
    }

    /// The `top_k` best labels of `text`, or of the pair (`{"text", "text_pair"}`), best first.
    pub fn call_with(&self, text: &str, pair: Option<&str>, opts: &TextClassificationOptions) -> Result<Vec<Label>> {
        let encoding = self.parts.encode(text, pair)?;
        let logits = self.model.forward(&self.parts.inputs(&encoding)?)?.logits.to_dtype(DType::F32)?.i(0)?;
        let logits = logits.to_vec1::<f32>()?;
        if logits.is_empty() {
            return Err(Error::input("text-classification: the model returned no logits"));
        }
        let scores = opts.function_to_apply.unwrap_or(self.default_function).apply(&logits);
        let top_k = opts.top_k.unwrap_or(scores.len());
        Ok(sorted_desc(&scores)
            .into_iter()
            .take(top_k)
            .map(|i| Label { label: label_of(&self.labels, i), score: scores[i] })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_function_follows_problem_type_then_num_labels() {
        use ClassificationFunction::{None as Raw, Sigmoid, Softmax};
        assert_eq!(ClassificationFunction::default_for(Some("regression"), 1), Raw);
        assert_eq!(ClassificationFunction::default_for(Some("multi_label_classification"), 3), Sigmoid);
        assert_eq!(ClassificationFunction::default_for(Some("single_label_classification"), 1), Sigmoid);
        assert_eq!(ClassificationFunction::default_for(None, 1), Sigmoid);
        assert_eq!(ClassificationFunction::default_for(None, 3), Softmax);
        assert_eq!(Sigmoid.apply(&[0.0]), vec![0.5]);
        assert_eq!(Raw.apply(&[1.5, -2.0]), vec![1.5, -2.0]);
    }
}
