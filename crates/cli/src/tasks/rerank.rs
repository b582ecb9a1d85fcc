//! `autocandle rerank` (documents ranked against a query) and `autocandle cross-encode` (raw
//! scores of text pairs): sentence-transformers' `CrossEncoder.rank` and `predict`.

use anyhow::{Context, Result};
use autocandle::{CrossEncoder, PredictOptions, Predictions, RankOptions, ScoreActivation};
use clap::Args;
use serde_json::{json, Value};

use super::{
    check_offline_cache, json_score, loading_spinner, offline_note, parse_top_k, InputArgs, Inputs, ModelArgs, TopK,
};
use crate::output::{score, short, table, vector, Output};
use crate::ui;

/// How the cross-encoder is loaded and run, shared by `rerank` and `cross-encode`.
#[derive(Debug, Clone, Args)]
pub struct CrossEncoderArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Pairs per forward pass
    #[arg(long, default_value = "32", value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub batch_size: u64,
    /// The activation on the logits [default: the model's, as sentence-transformers picks it]:
    /// sigmoid, identity (or none), tanh, relu, gelu, silu, softmax
    #[arg(long, value_parser = parse_activation, value_name = "NAME")]
    pub activation: Option<ScoreActivation>,
    /// Truncate each pair to N tokens [default: the model's max_length]
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// A prompt prepended to the first text of each pair (the query)
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// One of the model's prompts by name (config_sentence_transformers.json's `prompts`)
    #[arg(long, value_name = "NAME", conflicts_with = "prompt")]
    pub prompt_name: Option<String>,
}

fn parse_activation(s: &str) -> std::result::Result<ScoreActivation, String> {
    s.parse::<ScoreActivation>().map_err(|e| {
        let message = e.to_string();
        message.strip_prefix("invalid input: ").map_or(message.clone(), str::to_owned)
    })
}

impl CrossEncoderArgs {
    /// Load the cross-encoder named by `--model` (there is no default reranker).
    fn load(&self, command: &str) -> Result<CrossEncoder> {
        if self.model.model.is_none() {
            anyhow::bail!(
                "give the reranker: `autocandle {command} --model ID|PATH` (a cross-encoder, such as \
                 cross-encoder/ms-marco-MiniLM-L6-v2)"
            );
        }
        let (model, revision) = self.model.resolve(command)?;
        check_offline_cache(&model)?;
        let opts = self.model.load_options(&revision)?;
        let mut encoder = {
            let _spinner = loading_spinner(&model, &revision, &format!("loading {model} as a cross-encoder"));
            CrossEncoder::from_pretrained_with(&model, &opts)
                .with_context(|| format!("cannot load `{model}` as a cross-encoder{}", offline_note(&model)))?
        };
        if let Some(n) = self.max_length {
            encoder.set_max_length(Some(n));
        }
        Ok(encoder)
    }

    fn predict_options(&self) -> PredictOptions {
        let mut opts = PredictOptions::new().batch_size(usize::try_from(self.batch_size).unwrap_or(usize::MAX));
        if let Some(a) = self.activation {
            opts = opts.activation(a);
        }
        if let Some(p) = &self.prompt {
            opts = opts.prompt(p.clone());
        }
        if let Some(p) = &self.prompt_name {
            opts = opts.prompt_name(p.clone());
        }
        opts
    }
}

/// Rank documents by relevance to a query with a cross-encoder (a reranker), best first
///
/// Each DOCUMENT argument is one document; without any (or with `-`), one document per line of
/// stdin. Prints rank, document index, score and text; --json prints sentence-transformers'
/// `rank(..., return_documents=True)`: `[{"corpus_id", "score", "text"}]`.
#[derive(Debug, Clone, Args)]
pub struct Rerank {
    #[command(flatten)]
    pub encoder: CrossEncoderArgs,
    /// The query the documents are scored against
    #[arg(long, short = 'Q', value_name = "TEXT")]
    pub query: String,
    /// How many documents to print, best first: a number or `all`
    #[arg(long, default_value = "all", value_parser = parse_top_k, value_name = "N|all")]
    pub top_k: TopK,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl Rerank {
    pub fn run(&self, json: bool) -> Result<()> {
        let encoder = self.encoder.load("rerank")?;
        let documents = Inputs::new(&self.inputs.inputs).collect::<Result<Vec<String>>>()?;
        if documents.is_empty() {
            ui::note("no documents: give DOCUMENT arguments, or lines on stdin (`autocandle rerank --help`)");
        }
        let refs: Vec<&str> = documents.iter().map(String::as_str).collect();
        let opts =
            RankOptions::new().top_k(self.top_k.get()).return_documents(true).predict(self.encoder.predict_options());
        let ranked = encoder.rank(&self.query, &refs, &opts).context("cannot rank the documents")?;
        let mut out = Output::new(json);
        let mut rows = vec![vec!["rank".to_owned(), "doc".to_owned(), "score".to_owned(), "text".to_owned()]];
        for (i, r) in ranked.iter().enumerate() {
            rows.push(vec![(i + 1).to_string(), r.corpus_id.to_string(), score(r.score), short(refs[r.corpus_id], 80)]);
            out.push(json!({"corpus_id": r.corpus_id, "score": json_score(r.score), "text": r.text}));
        }
        if !ranked.is_empty() {
            out.line(format!("query: {}", short(&self.query, 80)))?;
            for line in table(&rows) {
                out.line(line)?;
            }
        }
        out.finish()?;
        Ok(())
    }
}

/// Score text pairs with a cross-encoder: one score per pair (a vector for several labels)
///
/// Each PAIR is the two texts separated by a tab (or by --separator); without any PAIR (or with
/// `-`), one pair per line of stdin. --json prints sentence-transformers' `predict`: one
/// number per pair for a one-label model, one list per pair otherwise.
#[derive(Debug, Clone, Args)]
pub struct CrossEncode {
    #[command(flatten)]
    pub encoder: CrossEncoderArgs,
    /// Softmax over the labels (models with several labels)
    #[arg(long)]
    pub apply_softmax: bool,
    /// What separates the two texts of a pair
    #[arg(long, default_value = "\t", value_name = "TEXT")]
    pub separator: String,
    #[command(flatten)]
    pub inputs: InputArgs,
}

impl CrossEncode {
    pub fn run(&self, json: bool) -> Result<()> {
        if self.separator.is_empty() {
            anyhow::bail!("--separator must not be empty");
        }
        let encoder = self.encoder.load("cross-encode")?;
        let lines = Inputs::new(&self.inputs.inputs).collect::<Result<Vec<String>>>()?;
        let mut pairs = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let (a, b) = line.split_once(self.separator.as_str()).with_context(|| {
                format!(
                    "pair {} (`{}`) has no separator {:?}: give the two texts separated by it",
                    i + 1,
                    short(line, 60),
                    self.separator
                )
            })?;
            pairs.push((a, b));
        }
        if pairs.is_empty() {
            ui::note("no pairs: give PAIR arguments, or lines on stdin (`autocandle cross-encode --help`)");
        }
        let opts = self.encoder.predict_options().apply_softmax(self.apply_softmax);
        let predictions = encoder.predict(&pairs, &opts).context("cannot score the pairs")?;
        let labels: Vec<String> = label_names(&encoder);
        let mut out = Output::new(json);
        match predictions {
            Predictions::Scores(scores) => {
                for ((a, b), s) in pairs.iter().zip(scores) {
                    out.line(format!("{}  {} | {}", score(s), short(a, 40), short(b, 60)))?;
                    out.push(json_score(s));
                }
            }
            Predictions::Labels(rows) => {
                for ((a, b), row) in pairs.iter().zip(rows) {
                    out.line(format!("{} | {}", short(a, 40), short(b, 60)))?;
                    let cells: Vec<Vec<String>> =
                        labels.iter().zip(&row).map(|(l, s)| vec![l.clone(), score(*s)]).collect();
                    if cells.len() == row.len() {
                        for line in table(&cells) {
                            out.line(line)?;
                        }
                    } else {
                        out.line(format!("  {}", vector(&row, 8)))?;
                    }
                    out.push(Value::Array(row.iter().map(|s| json_score(*s)).collect()));
                }
            }
        }
        out.finish()?;
        Ok(())
    }
}

/// The config's label names by id (`id2label`), `LABEL_i` when it has none.
fn label_names(encoder: &CrossEncoder) -> Vec<String> {
    let mut names: Vec<(usize, String)> = encoder
        .config()
        .get("id2label")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str().unwrap_or_default().to_owned()))).collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.len() == encoder.num_labels() {
        names.into_iter().map(|(_, n)| n).collect()
    } else {
        (0..encoder.num_labels()).map(|i| format!("LABEL_{i}")).collect()
    }
}
