//! [`Size2`]: an `image_size` or `patch_size` of a vision config, one number for a square or
//! `[height, width]`, as `transformers` configs accept either.

use serde::{Deserialize, Serialize};

/// An `image_size` or `patch_size`: one number for a square, or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    /// One number: a square of that side, in pixels.
    Square(usize),
    /// `[height, width]` in pixels.
    HeightWidth([usize; 2]),
}

impl Size2 {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Self::Square(s) => (s, s),
            Self::HeightWidth([h, w]) => (h, w),
        }
    }
}
