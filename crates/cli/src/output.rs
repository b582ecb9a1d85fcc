//! stdout: human lines as results come, or with `--json` one JSON document at the end (an
//! array with one element per input); and the helpers that format scores and vectors.

use std::io::{self, Write};

use serde_json::Value;

/// Where results go.
#[derive(Debug)]
pub struct Output {
    json: bool,
    stdout: io::Stdout,
    results: Vec<Value>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json, stdout: io::stdout(), results: Vec::new() }
    }

    /// One line of human output (nothing with `--json`).
    pub fn line(&mut self, line: impl AsRef<str>) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        let mut out = self.stdout.lock();
        out.write_all(line.as_ref().as_bytes())?;
        out.write_all(b"\n")
    }

    /// Human text without a newline, flushed at once (streamed generation).
    pub fn stream(&mut self, text: &str) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        let mut out = self.stdout.lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// The JSON result of one input.
    pub fn push(&mut self, value: Value) {
        self.results.push(value);
    }

    /// With `--json`, print the results of every input as one array.
    pub fn finish(self) -> io::Result<()> {
        let mut out = self.stdout.lock();
        if self.json {
            let text = serde_json::to_string(&Value::Array(self.results)).map_err(io::Error::other)?;
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Print one JSON document now (for `inspect` and `models`).
    pub fn document(value: &Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// A score as people read it.
pub fn score(score: f32) -> String {
    format!("{score:.4}")
}

/// `values` as `[a, b, c, ..., x, y, z]`: numpy's summary beyond `limit` values.
pub fn vector(values: &[f32], limit: usize) -> String {
    let fmt = |v: &[f32]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
    if values.len() <= limit {
        return format!("[{}]", fmt(values));
    }
    let half = (limit / 2).max(1);
    format!("[{}, ..., {}]", fmt(&values[..half]), fmt(&values[values.len() - half..]))
}

/// Rows of cells as aligned columns, each line indented by two spaces; the last column is
/// not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| if c + 1 == row.len() { cell.clone() } else { format!("{cell:<w$}", w = widths[c]) })
                .collect();
            format!("  {}", cells.join("  "))
        })
        .collect()
}

/// `text` on one line, at most `max` characters (`…` marks a cut).
pub fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_summarised_like_numpy() {
        assert_eq!(vector(&[1.0, 2.5], 6), "[1.0000, 2.5000]");
        assert_eq!(vector(&[1.0, 2.0, 3.0, 4.0, 5.0], 4), "[1.0000, 2.0000, ..., 4.0000, 5.0000]");
    }

    #[test]
    fn tables_align_all_but_the_last_column() {
        let rows = vec![vec!["a".to_owned(), "bb".to_owned(), "x".to_owned()], vec!["ccc".to_owned(), "d".to_owned()]];
        assert_eq!(table(&rows), ["  a    bb  x", "  ccc  d"]);
    }

    #[test]
    fn short_cuts_long_text() {
        assert_eq!(short("abc", 5), "abc");
        assert_eq!(short("abcdefgh", 5), "abcd…");
        assert_eq!(short("a\nb", 5), "a b");
    }
}
