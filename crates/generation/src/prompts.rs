//! `Prompts`: the token id rows that generation starts from, with their attention mask, and
//! the conversions from what users have at hand (id rows, `ModelInputs`, tensors).

use candle_core::{DType, Tensor};

use autocandle_core::ModelInputs;
use autocandle_core::{Error, Result};

/// A batch of prompts: token id rows and, optionally, their attention mask (1 = token,
/// 0 = padding).
///
/// Rows of different lengths without a mask are left-padded by `generate` (with the pad
/// token, masked out). A batch that is already padded should be padded on the left, as for
/// `transformers`' decoder-only generation, and come with its mask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    /// Token ids, one row per prompt; rows may differ in length when there is no mask.
    pub input_ids: Vec<Vec<u32>>,
    /// 1 for tokens, 0 for padding, same shape as `input_ids`; `None` attends to every token.
    pub attention_mask: Option<Vec<Vec<u32>>>,
}

impl Prompts {
    /// Rows of token ids, without a mask.
    pub fn new(input_ids: Vec<Vec<u32>>) -> Self {
        Self { input_ids, attention_mask: None }
    }

    /// One prompt.
    pub fn single(ids: &[u32]) -> Self {
        Self::new(vec![ids.to_vec()])
    }

    /// Set the attention mask of already (left-)padded rows.
    pub fn with_attention_mask(mut self, mask: Vec<Vec<u32>>) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// What `generate` accepts as prompts.
pub trait IntoPrompts {
    /// The prompts as rows of ids; implementations that convert (a tokenizer's encoding, a
    /// tensor) return their conversion errors.
    fn into_prompts(self) -> Result<Prompts>;
}

impl IntoPrompts for Prompts {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(self)
    }
}

impl IntoPrompts for &Prompts {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(self.clone())
    }
}

impl IntoPrompts for Vec<Vec<u32>> {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(self))
    }
}

impl IntoPrompts for &Vec<Vec<u32>> {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(self.clone()))
    }
}

impl IntoPrompts for &[Vec<u32>] {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(self.to_vec()))
    }
}

impl<const N: usize> IntoPrompts for &[Vec<u32>; N] {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(self.to_vec()))
    }
}

/// One prompt.
impl IntoPrompts for &[u32] {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::single(self))
    }
}

/// One prompt.
impl IntoPrompts for &Vec<u32> {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::single(self))
    }
}

/// One prompt.
impl<const N: usize> IntoPrompts for &[u32; N] {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::single(self))
    }
}

impl IntoPrompts for &[&[u32]] {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(self.iter().map(|r| r.to_vec()).collect()))
    }
}

/// `[batch, seq]` integer ids.
impl IntoPrompts for &Tensor {
    fn into_prompts(self) -> Result<Prompts> {
        Ok(Prompts::new(id_rows(self, "input_ids")?))
    }
}

/// `input_ids` and `attention_mask` of model inputs (other inputs are not used).
impl IntoPrompts for &ModelInputs {
    fn into_prompts(self) -> Result<Prompts> {
        let ids = id_rows(self.input_ids()?, "input_ids")?;
        let mask = self.attention_mask.as_ref().map(|m| id_rows(m, "attention_mask")).transpose()?;
        Ok(Prompts { input_ids: ids, attention_mask: mask })
    }
}

fn id_rows(t: &Tensor, name: &str) -> Result<Vec<Vec<u32>>> {
    if t.rank() != 2 {
        return Err(Error::input(format!("`{name}` for generation must have shape [batch, seq], got {:?}", t.dims())));
    }
    let rows: Vec<Vec<i64>> = match t.dtype() {
        DType::U32 | DType::I64 | DType::U8 => t.to_dtype(DType::I64)?.to_vec2()?,
        other => return Err(Error::input(format!("`{name}` must hold integers (u32 or i64), got {other:?}"))),
    };
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| u32::try_from(v).map_err(|_| Error::input(format!("`{name}` holds the negative value {v}"))))
                .collect()
        })
        .collect()
}

/// A validated, left-padded prompt batch.
#[derive(Debug, Clone)]
pub(crate) struct PaddedPrompts {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    /// Whether any position is masked out.
    pub has_padding: bool,
}

impl PaddedPrompts {
    /// Check the batch and pad ragged rows on the left with `pad_id`. Without a mask, a batch
    /// of equal rows gets its mask from `pad_id` as `transformers` infers it
    /// (`_prepare_attention_mask_for_generation`): only when `pad_id` occurs and is no EOS.
    pub fn new(prompts: Prompts, pad_id: Option<u32>, eos: &[u32]) -> Result<Self> {
        let Prompts { mut input_ids, attention_mask } = prompts;
        if input_ids.is_empty() {
            return Err(Error::input("the prompt batch is empty: give at least one row of token ids"));
        }
        let width = input_ids.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 {
            return Err(Error::input("the prompt has no tokens: generation needs at least one token to start from"));
        }
        let mask = match attention_mask {
            Some(mask) => {
                if mask.len() != input_ids.len() || mask.iter().zip(&input_ids).any(|(m, r)| m.len() != r.len()) {
                    return Err(Error::input(format!(
                        "`attention_mask` must have the shape of `input_ids` ({} rows of {width})",
                        input_ids.len()
                    )));
                }
                if mask.iter().flatten().any(|&m| m > 1) {
                    return Err(Error::input("`attention_mask` must hold only 0 and 1"));
                }
                if input_ids.iter().any(|r| r.len() != width) {
                    return Err(Error::input("rows of `input_ids` with an `attention_mask` must have equal lengths"));
                }
                mask
            }
            None if input_ids.iter().any(|r| r.len() != width) => {
                let fill = pad_id.unwrap_or(0);
                let mut mask = Vec::with_capacity(input_ids.len());
                for row in &mut input_ids {
                    let pad = width - row.len();
                    mask.push([vec![0; pad], vec![1; row.len()]].concat());
                    row.splice(0..0, std::iter::repeat_n(fill, pad));
                }
                mask
            }
            None => {
                let infer = pad_id.filter(|p| !eos.contains(p) && input_ids.iter().flatten().any(|t| t == p));
                match infer {
                    Some(p) => input_ids.iter().map(|r| r.iter().map(|&t| u32::from(t != p)).collect()).collect(),
                    None => vec![vec![1; width]; input_ids.len()],
                }
            }
        };
        if let Some(row) = mask.iter().position(|m| !m.contains(&1)) {
            return Err(Error::input(format!(
                "prompt row {row} has no tokens (its attention mask is all zeros): generation needs at least one"
            )));
        }
        if input_ids.len() > 1 && mask.iter().any(|m| m.last() == Some(&0)) {
            tracing::warn!(
                "right-padding was detected in a decoder-only generation batch; for correct results pad on the left"
            );
        }
        let has_padding = mask.iter().flatten().any(|&m| m == 0);
        Ok(Self { input_ids, attention_mask: mask, has_padding })
    }

    /// The left padding of each row: the index of its first attended position.
    pub fn padding(&self) -> Vec<usize> {
        self.attention_mask.iter().map(|m| m.iter().position(|&v| v != 0).unwrap_or(m.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_rows_are_left_padded() {
        let p = PaddedPrompts::new(Prompts::new(vec![vec![5, 6, 7], vec![8]]), Some(0), &[]).unwrap();
        assert_eq!(p.input_ids, [vec![5, 6, 7], vec![0, 0, 8]]);
        assert_eq!(p.attention_mask, [vec![1, 1, 1], vec![0, 0, 1]]);
        assert_eq!(p.padding(), [0, 2]);
        assert!(p.has_padding);
    }

    #[test]
    fn mask_inferred_from_pad_tokens() {
        let p = PaddedPrompts::new(Prompts::new(vec![vec![0, 4, 5]]), Some(0), &[]).unwrap();
        assert_eq!(p.attention_mask, [vec![0, 1, 1]]);
        // Not when the pad token is an EOS token.
        let p = PaddedPrompts::new(Prompts::new(vec![vec![0, 4, 5]]), Some(0), &[0]).unwrap();
        assert_eq!(p.attention_mask, [vec![1, 1, 1]]);
    }

    #[test]
    fn empty_prompts_are_errors() {
        assert!(PaddedPrompts::new(Prompts::new(vec![]), None, &[]).is_err());
        assert!(PaddedPrompts::new(Prompts::new(vec![vec![]]), None, &[]).is_err());
        let masked = Prompts::new(vec![vec![1, 2]]).with_attention_mask(vec![vec![0, 0]]);
        assert!(PaddedPrompts::new(masked, None, &[]).is_err());
    }
}
