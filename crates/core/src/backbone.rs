//! Backbone helpers shared by the vision crates' public backbones (ResNet, ConvNeXT, ...).

use crate::{Error, Result};

/// `out_features` / `out_indices` aligned with `stage_names` as transformers'
/// `BackboneConfigMixin.set_output_features_output_indices` does, with its checks.
pub fn out_stage_indices(
    model_type: &str,
    stage_names: &[String],
    out_features: Option<&[String]>,
    out_indices: Option<&[i64]>,
) -> Result<Vec<usize>> {
    let invalid = |message: String| Err(Error::config(model_type, message));
    let n = stage_names.len() as i64;
    let from_indices = match out_indices {
        Some(indices) => {
            let mut out = Vec::with_capacity(indices.len());
            for &i in indices {
                let p = if i < 0 { i + n } else { i };
                if !(0..n).contains(&p) {
                    return invalid(format!("`out_indices` holds {i}, which is no stage of {stage_names:?}"));
                }
                out.push(p as usize);
            }
            Some(out)
        }
        None => None,
    };
    let from_features = match out_features {
        Some(features) => {
            let mut out = Vec::with_capacity(features.len());
            for f in features {
                match stage_names.iter().position(|s| s == f) {
                    Some(p) => out.push(p),
                    None => return invalid(format!("`out_features` holds `{f}`, which is none of {stage_names:?}")),
                }
            }
            Some(out)
        }
        None => None,
    };
    let indices = match (from_features, from_indices) {
        (None, None) => vec![stage_names.len() - 1],
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) => {
            if a != b {
                return invalid(format!(
                    "`out_features` and `out_indices` name different stages ({a:?} and {b:?}): give one of them"
                ));
            }
            a
        }
    };
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        return invalid(format!(
            "the backbone outputs {indices:?} must be distinct and in the order of the stages {stage_names:?}"
        ));
    }
    Ok(indices)
}
