//! What the vision commands share: `--threshold`, `--output FILE.png` (one picture per input:
//! `FILE.png` for a single input, `FILE-1.png`, `FILE-2.png`, ... for several), and the JSON of
//! pictures.

use std::cell::Cell;
use std::path::PathBuf;

use anyhow::Result;
use autocandle::image::DynamicImage;
use clap::Args;

use super::InputArgs;
use crate::draw;

/// `--output`.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Write a picture of the result to this PNG file (one input), or to FILE-1.png,
    /// FILE-2.png, ... (several inputs)
    #[arg(long, short = 'o', value_name = "FILE.png")]
    pub output: Option<PathBuf>,
    /// How many pictures were written (numbers the files of several inputs).
    #[arg(skip)]
    pub written: Cell<usize>,
}

impl OutputArgs {
    /// Refuse an output path that is not a `.png` file, before anything loads.
    pub fn check(&self) -> Result<()> {
        match &self.output {
            Some(path) => draw::check_output_path(path),
            None => Ok(()),
        }
    }

    /// Write the picture of the next input, if `--output` was given; returns where.
    pub fn write(&self, inputs: &InputArgs, picture: impl FnOnce() -> DynamicImage) -> Result<Option<PathBuf>> {
        let Some(path) = &self.output else { return Ok(None) };
        let n = self.written.get() + 1;
        self.written.set(n);
        let single = inputs.inputs.len() == 1 && inputs.inputs[0] != "-";
        let path = if single { path.clone() } else { draw::numbered_path(path, n) };
        draw::save_png(&picture(), &path)?;
        crate::ui::note(format!("wrote {}", path.display()));
        Ok(Some(path))
    }
}

/// `--threshold`: a probability above 0 and at most 1.
pub fn parse_threshold(s: &str) -> std::result::Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 1.0 => Ok(t),
        Ok(_) => Err("scores are probabilities: give a threshold above 0 and at most 1, such as 0.5".to_owned()),
        Err(_) => Err("give a number above 0 and at most 1, such as 0.5".to_owned()),
    }
}

/// The image size as people read it.
pub fn size(image: &DynamicImage) -> String {
    format!("{}x{}", image.width(), image.height())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_probabilities() {
        assert_eq!(parse_threshold("0.9"), Ok(0.9));
        assert_eq!(parse_threshold("1"), Ok(1.0));
        for bad in ["0", "-0.5", "1.5", "nan", "inf", "high"] {
            assert!(parse_threshold(bad).is_err(), "{bad}");
        }
        assert!(parse_threshold("0").unwrap_err().contains("above 0 and at most 1"));
    }
}
