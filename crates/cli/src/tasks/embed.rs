//! `autocandle embed` (sentence embeddings of a sentence-transformers model, one vector per
//! input, as text, `--json` or a NumPy `.npy` file) and `autocandle sentence-similarity` (the
//! model's similarity of a source sentence with others).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use autocandle::{SentenceEncodeOptions, SentenceTransformer, SimilarityFunction};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{check_offline_cache, loading_spinner, offline_note, InputArgs, Inputs, ModelArgs};
use crate::output::{score, short, Output};
use crate::ui;

/// How to encode: the options `embed` and `sentence-similarity` share.
#[derive(Debug, Clone, Args)]
pub struct EncodeArgs {
    /// Use the model's prompt of this name (its config_sentence_transformers.json `prompts`,
    /// e.g. `query`)
    #[arg(long, value_name = "NAME")]
    pub prompt_name: Option<String>,
    /// Prepend this prompt to every input (wins over --prompt-name and the model's default)
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Keep the first N dimensions (Matryoshka; instead of the model's truncate_dim)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub truncate_dim: Option<u64>,
    /// L2-normalise the embeddings (after truncation)
    #[arg(long)]
    pub normalize: bool,
    /// Inputs per forward pass
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
}

impl EncodeArgs {
    fn options(&self) -> SentenceEncodeOptions {
        let mut opts = SentenceEncodeOptions::new()
            .batch_size(usize::try_from(self.batch_size).unwrap_or(usize::MAX))
            .normalize_embeddings(self.normalize)
            .truncate_dim(self.truncate_dim.map(|n| usize::try_from(n).unwrap_or(usize::MAX)));
        if let Some(name) = &self.prompt_name {
            opts = opts.prompt_name(name.clone());
        }
        if let Some(prompt) = &self.prompt {
            opts = opts.prompt(prompt.clone());
        }
        opts
    }
}

/// Sentence embeddings of each input with a sentence-transformers model (modules.json:
/// pooling, Dense, Normalize; prompts; truncate_dim), one vector per line
#[derive(Debug, Clone, Args)]
pub struct Embed {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Write the embeddings to this NumPy file (float32, [inputs, dimensions]) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE.npy")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// The similarity of a source sentence with each other sentence, with the model's
/// similarity function (sentence-transformers' `similarity`)
#[derive(Debug, Clone, Args)]
pub struct SentenceSimilarity {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Compare with this function instead of the model's similarity_fn_name: cosine, dot,
    /// euclidean, manhattan
    #[arg(long, value_name = "FN", value_parser = parse_similarity)]
    pub similarity: Option<SimilarityFunction>,
    /// The sentence the others are compared with
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The sentences to compare; without any (or with `-`), one per line from stdin
    #[arg(value_name = "SENTENCE")]
    pub sentences: Vec<String>,
}

fn parse_similarity(s: &str) -> std::result::Result<SimilarityFunction, String> {
    s.parse().map_err(|_| "use cosine, dot, euclidean or manhattan".to_owned())
}

/// Load the model named by `args` (a model is required: there is no pipeline default).
fn load(args: &ModelArgs, task: &str) -> Result<SentenceTransformer> {
    let Some(model) = args.model.clone() else {
        anyhow::bail!(
            "`{task}` needs --model: a sentence-transformers model, e.g. sentence-transformers/all-MiniLM-L6-v2"
        );
    };
    let (model, revision) = ModelArgs { model: Some(model), ..args.clone() }.resolve(task)?;
    check_offline_cache(&model)?;
    let opts = args.load_options(&revision)?;
    let _spinner = loading_spinner(&model, &revision, &format!("loading {model} for {task}"));
    SentenceTransformer::from_pretrained_with(&model, &opts)
        .with_context(|| format!("cannot load the sentence-transformers model `{model}`{}", offline_note(&model)))
}

/// Encode with a progress bar of the batches when stderr is a terminal (and there is more
/// than one batch).
fn encode(model: &SentenceTransformer, texts: &[String], args: &EncodeArgs) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let opts = args.options();
    let batches = texts.len().div_ceil(opts.batch_size.max(1));
    let bar = if ui::interactive() && batches > 1 {
        let bar = ProgressBar::new(batches as u64);
        if let Ok(style) = ProgressStyle::with_template("Batches {bar:30} {pos}/{len} {elapsed}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let out = model.encode_with_progress(&texts, &opts, &mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    Ok(out?)
}

fn floats(values: &[f32]) -> Value {
    Value::Array(values.iter().map(|x| Value::from(f64::from(*x))).collect())
}

impl Embed {
    pub fn run(&self, json: bool) -> Result<()> {
        let model = load(&self.model, "embed")?;
        let texts = Inputs::new(&self.inputs.inputs).collect::<Result<Vec<String>>>()?;
        if texts.is_empty() {
            ui::note("no input: give INPUT arguments, or lines on stdin (`autocandle embed --help`)");
        }
        let embeddings = encode(&model, &texts, &self.encode)?;
        if let Some(path) = &self.output {
            let dim = embeddings.first().map_or_else(|| model.embedding_dimension().unwrap_or(0), Vec::len);
            write_npy(path, &embeddings, dim)?;
            ui::note(format!("wrote {} x {dim} float32 embeddings to {}", embeddings.len(), path.display()));
            return Ok(());
        }
        let mut out = Output::new(json);
        for e in &embeddings {
            out.line(e.iter().map(f32::to_string).collect::<Vec<_>>().join(" "))?;
            out.push(floats(e));
        }
        out.finish()?;
        Ok(())
    }
}

impl SentenceSimilarity {
    pub fn run(&self, json: bool) -> Result<()> {
        let mut model = load(&self.model, "sentence-similarity")?;
        if let Some(f) = self.similarity {
            model.set_similarity_fn_name(f);
        }
        let others = Inputs::new(&self.sentences).collect::<Result<Vec<String>>>()?;
        if others.is_empty() {
            ui::note("no sentence to compare: give SENTENCE arguments after SOURCE, or lines on stdin");
        }
        let mut texts = Vec::with_capacity(others.len() + 1);
        texts.push(self.source.clone());
        texts.extend(others.iter().cloned());
        let embeddings = encode(&model, &texts, &self.encode)?;
        let (source, rest) = embeddings.split_at(1);
        let scores = model.similarity(source, rest)?.into_iter().next().unwrap_or_default();
        let mut out = Output::new(json);
        out.line(format!("similarity ({}) with `{}`:", model.similarity_fn_name(), short(&self.source, 60)))?;
        for (s, text) in scores.iter().zip(&others) {
            out.line(format!("  {}  {}", score(*s), short(text, 80)))?;
            // With --json: the list of scores, as the Hub's sentence-similarity task returns it.
            out.push(Value::from(f64::from(*s)));
        }
        out.finish()?;
        Ok(())
    }
}

/// Write `rows` as a NumPy `.npy` file (format 1.0): little-endian float32, C order,
/// shape `(rows, dim)`.
pub fn write_npy(path: &Path, rows: &[Vec<f32>], dim: usize) -> Result<()> {
    let bytes = npy_bytes(rows, dim)?;
    let mut file = std::fs::File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(&bytes).and_then(|()| file.flush()).with_context(|| format!("cannot write `{}`", path.display()))
}

fn npy_bytes(rows: &[Vec<f32>], dim: usize) -> Result<Vec<u8>> {
    if let Some(bad) = rows.iter().find(|r| r.len() != dim) {
        anyhow::bail!("embeddings of different lengths ({dim} and {}) cannot form one array", bad.len());
    }
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", rows.len());
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 bytes, ending in a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).context("the .npy header is too long")?;
    let mut bytes = Vec::with_capacity(10 + header.len() + rows.len() * dim * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in rows.iter().flatten() {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let bytes = npy_bytes(&[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]], 3).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "{header}");
        assert!(header.ends_with('\n'));
        let data = &bytes[10 + header_len..];
        assert_eq!(data.len(), 24);
        assert_eq!(f32::from_le_bytes([data[20], data[21], data[22], data[23]]), 6.0);
        assert!(npy_bytes(&[vec![1.0], vec![1.0, 2.0]], 1).is_err());
    }
}
