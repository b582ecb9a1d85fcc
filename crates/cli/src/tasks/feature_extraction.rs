//! `autocandle feature-extraction`: the last hidden state per token, or one sentence
//! embedding per input with `--pooling` / `--normalize`.

use anyhow::Result;
use autocandle::pipelines::{FeatureExtractionPipeline, Pooling, PoolingConfig};
use autocandle::LoadOptions;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{InputArgs, ModelArgs, TaskCommand};
use crate::output::{vector, Output};

/// Token features of each input (the base model's last hidden state), or pooled sentence embeddings
#[derive(Debug, Clone, Args)]
pub struct FeatureExtraction {
    #[command(flatten)]
    pub model: ModelArgs,
    /// One embedding per input instead of one vector per token: `auto` pools as the model's
    /// sentence-transformers modules.json says (mean pooling when it has none, or when the
    /// folders it names are missing); a mode given here wins over modules.json
    #[arg(long, value_enum, value_name = "MODE")]
    pub pooling: Option<PoolingArg>,
    /// L2-normalise the embeddings (pooling `auto` unless --pooling is given)
    #[arg(long)]
    pub normalize: bool,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// `--pooling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolingArg {
    Auto,
    Mean,
    Cls,
    Max,
    MeanSqrtLen,
    #[value(name = "weightedmean")]
    WeightedMean,
    LastToken,
}

impl PoolingArg {
    /// The mode, `None` for `auto`.
    fn pooling(self) -> Option<Pooling> {
        Some(match self {
            PoolingArg::Auto => return None,
            PoolingArg::Mean => Pooling::Mean,
            PoolingArg::Cls => Pooling::Cls,
            PoolingArg::Max => Pooling::Max,
            PoolingArg::MeanSqrtLen => Pooling::MeanSqrtLen,
            PoolingArg::WeightedMean => Pooling::WeightedMean,
            PoolingArg::LastToken => Pooling::LastToken,
        })
    }
}

impl FeatureExtraction {
    /// The pooling to apply, `None` for token features.
    fn pooling(&self, pipeline: &FeatureExtractionPipeline) -> Option<PoolingConfig> {
        match (self.pooling, self.normalize) {
            (None, false) => None,
            (None | Some(PoolingArg::Auto), _) => {
                let mut config = pipeline.pooling().clone();
                config.normalize |= self.normalize;
                Some(config)
            }
            (Some(mode), _) => Some(PoolingConfig::new(mode.pooling().unwrap_or(Pooling::Mean), self.normalize)),
        }
    }
}

impl TaskCommand for FeatureExtraction {
    const TASK: &'static str = "feature-extraction";
    type Pipeline = FeatureExtractionPipeline;

    fn model_args(&self) -> &ModelArgs {
        &self.model
    }

    fn input_args(&self) -> &InputArgs {
        &self.inputs
    }

    fn load(&self, model: &str, opts: &LoadOptions) -> autocandle::Result<FeatureExtractionPipeline> {
        // An explicit --pooling wins over modules.json, which is then not read at all.
        let explicit = match self.pooling {
            None | Some(PoolingArg::Auto) => None,
            Some(mode) => Some(PoolingConfig::new(mode.pooling().unwrap_or(Pooling::Mean), self.normalize)),
        };
        FeatureExtractionPipeline::with_pooling(model, opts, explicit)
    }

    fn run(&self, pipeline: &FeatureExtractionPipeline, input: &str, out: &mut Output) -> Result<Value> {
        out.line(input)?;
        if let Some(pooling) = self.pooling(pipeline) {
            let embedding = pipeline.embed_with(&[input], &pooling)?.into_iter().next().unwrap_or_default();
            out.line(format!("  shape [{}]", embedding.len()))?;
            out.line(format!("  {}", vector(&embedding, 6)))?;
            return Ok(floats(&embedding));
        }
        let features = pipeline.call(input)?;
        let hidden = features.first().map_or(0, Vec::len);
        out.line(format!("  shape [1, {}, {hidden}]", features.len()))?;
        let n = features.len();
        for (i, row) in features.iter().enumerate() {
            if n > 8 && (3..n - 3).contains(&i) {
                if i == 3 {
                    out.line("  ...")?;
                }
                continue;
            }
            out.line(format!("  {}", vector(row, 6)))?;
        }
        // transformers keeps the batch dimension: [1][tokens][hidden].
        Ok(Value::Array(vec![Value::Array(features.iter().map(|row| floats(row)).collect())]))
    }
}

fn floats(values: &[f32]) -> Value {
    Value::Array(values.iter().map(|x| Value::from(f64::from(*x))).collect())
}
