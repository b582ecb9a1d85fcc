//! Post-processing of vision model outputs as `transformers`' image processors do it:
//! `post_process_object_detection` (DETR, YOLOS), `post_process_semantic_segmentation`
//! (SegFormer, BEiT, DPT) and `post_process_depth_estimation` (DPT, Depth Anything).
//!
//! Everything is computed on the CPU in f32 with torch's CPU arithmetic (softmax, bilinear and
//! bicubic `interpolate` with `align_corners=False` and no antialiasing), so that the results
//! equal `transformers`' up to float rounding.

use autocandle_core::{DepthEstimatorOutput, Error, ObjectDetectionOutput, Result, SemanticSegmenterOutput};
use candle_core::{DType, Device, Tensor};

use super::config::MAX_IMAGE_SIDE;

/// The detections of one image: parallel lists, one entry per kept query, in query order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    /// The probability of the predicted class.
    pub scores: Vec<f32>,
    /// The predicted class id (an index into the model config's `id2label`).
    pub labels: Vec<usize>,
    /// `[x0, y0, x1, y1]`: top-left and bottom-right corners, in pixels of the target size
    /// (or in 0..1 of the input when no target sizes are given).
    pub boxes: Vec<[f32; 4]>,
}

/// `DetrImageProcessor.post_process_object_detection` (YOLOS' is the same): softmax over the
/// classes, the "no object" class (the last) dropped, the best class per query kept when its
/// score is above `threshold`, boxes turned from (cx, cy, w, h) to corners and scaled to each
/// `(height, width)` of `target_sizes`.
///
/// `threshold` must be in (0, 1) (`transformers` accepts anything, but 0 keeps every query and
/// 1 none); `target_sizes` must have one non-empty size per image of the batch.
pub fn post_process_object_detection(
    output: &ObjectDetectionOutput,
    threshold: f32,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Detections>> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::input(format!(
            "detection threshold {threshold} is not a probability strictly between 0 and 1; use e.g. 0.5 \
             (0 would keep every query, 1 none)"
        )));
    }
    let (batch, queries, classes) = output.logits.dims3().map_err(|_| {
        Error::input(format!(
            "object detection logits must be [batch, queries, labels + 1], got {:?}",
            output.logits.dims()
        ))
    })?;
    if classes < 2 {
        return Err(Error::input(format!(
            "object detection logits have {classes} class(es); they need at least one label and the \"no object\" class"
        )));
    }
    if output.pred_boxes.dims() != [batch, queries, 4] {
        return Err(Error::input(format!(
            "pred_boxes must be [batch, queries, 4] = [{batch}, {queries}, 4] to match the logits, got {:?}",
            output.pred_boxes.dims()
        )));
    }
    check_target_sizes(target_sizes, batch, "logits")?;
    let logits = to_cpu_f32(&output.logits)?;
    let boxes = to_cpu_f32(&output.pred_boxes)?;
    let mut results = Vec::with_capacity(batch);
    for b in 0..batch {
        let scale = target_sizes.map(|s| (s[b].0 as f32, s[b].1 as f32));
        let mut det = Detections::default();
        for q in 0..queries {
            let row = &logits[(b * queries + q) * classes..(b * queries + q + 1) * classes];
            let (score, label) = best_class(row);
            if score.is_nan() || score <= threshold {
                continue;
            }
            let bx = &boxes[(b * queries + q) * 4..(b * queries + q + 1) * 4];
            let (cx, cy, w, h) = (bx[0], bx[1], bx[2], bx[3]);
            let mut corners = [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h];
            if let Some((img_h, img_w)) = scale {
                corners = [corners[0] * img_w, corners[1] * img_h, corners[2] * img_w, corners[3] * img_h];
            }
            det.scores.push(score);
            det.labels.push(label);
            det.boxes.push(corners);
        }
        results.push(det);
    }
    Ok(results)
}

/// torch's CPU softmax of one row (max subtracted, `exp`, times the inverse of the sum), then the
/// largest probability among all classes but the last and its index (the first on ties).
fn best_class(row: &[f32]) -> (f32, usize) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
    let inv_sum = 1.0 / exps.iter().sum::<f32>();
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, e) in exps[..exps.len() - 1].iter().enumerate() {
        let p = e * inv_sum;
        if p > best.0 || (p.is_nan() && !best.0.is_nan()) {
            best = (p, i);
        }
    }
    best
}

/// `post_process_semantic_segmentation` of SegFormer, BEiT and DPT: the logits resized
/// bilinearly (`align_corners=False`) to each `(height, width)` of `target_sizes`, then the
/// arg-max class per pixel; without target sizes the arg-max at the logits' size. One `[h, w]`
/// `u32` label map per image.
pub fn post_process_semantic_segmentation(
    output: &SemanticSegmenterOutput,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Tensor>> {
    let (batch, labels, height, width) = output.logits.dims4().map_err(|_| {
        Error::input(format!(
            "segmentation logits must be [batch, labels, height, width], got {:?}",
            output.logits.dims()
        ))
    })?;
    if labels == 0 || height == 0 || width == 0 {
        return Err(Error::input(format!(
            "segmentation logits {:?} are empty: the label map needs at least one label and one pixel",
            output.logits.dims()
        )));
    }
    check_target_sizes(target_sizes, batch, "logits")?;
    let logits = to_cpu_f32(&output.logits)?;
    let plane = height * width;
    let mut maps = Vec::with_capacity(batch);
    for b in 0..batch {
        let image = &logits[b * labels * plane..(b + 1) * labels * plane];
        let (out_h, out_w) = target_sizes.map_or((height, width), |s| s[b]);
        let resized: Vec<Vec<f32>> = image
            .chunks_exact(plane)
            .map(|channel| {
                if (out_h, out_w) == (height, width) {
                    channel.to_vec()
                } else {
                    bilinear(channel, height, width, out_h, out_w)
                }
            })
            .collect();
        let map: Vec<u32> = (0..out_h * out_w)
            .map(|i| {
                let mut best = (resized[0][i], 0u32);
                for (label, channel) in resized.iter().enumerate().skip(1) {
                    if channel[i] > best.0 || (channel[i].is_nan() && !best.0.is_nan()) {
                        best = (channel[i], label as u32);
                    }
                }
                best.1
            })
            .collect();
        maps.push(Tensor::from_vec(map, (out_h, out_w), &Device::Cpu)?);
    }
    Ok(maps)
}

/// `post_process_depth_estimation` of DPT and Depth Anything: `predicted_depth` resized
/// bicubically (torch's `interpolate(mode="bicubic", align_corners=False)`, Keys' cubic with
/// a = -0.75, borders clamped) to each `(height, width)` of `target_sizes`; without target
/// sizes the depth as predicted. One `[h, w]` `f32` depth map per image.
pub fn post_process_depth_estimation(
    output: &DepthEstimatorOutput,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Tensor>> {
    let (batch, height, width) = output.predicted_depth.dims3().map_err(|_| {
        Error::input(format!("predicted_depth must be [batch, height, width], got {:?}", output.predicted_depth.dims()))
    })?;
    if height == 0 || width == 0 {
        return Err(Error::input(format!(
            "predicted_depth {:?} is empty: the depth map needs at least one pixel",
            output.predicted_depth.dims()
        )));
    }
    check_target_sizes(target_sizes, batch, "predicted depth")?;
    let depth = to_cpu_f32(&output.predicted_depth)?;
    let plane = height * width;
    let mut maps = Vec::with_capacity(batch);
    for (b, image) in depth.chunks_exact(plane).enumerate() {
        let (out_h, out_w) = target_sizes.map_or((height, width), |s| s[b]);
        let data = if target_sizes.is_some() { bicubic(image, height, width, out_h, out_w) } else { image.to_vec() };
        maps.push(Tensor::from_vec(data, (out_h, out_w), &Device::Cpu)?);
    }
    Ok(maps)
}

fn to_cpu_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// One `(height, width)` per image, none empty, none beyond [`MAX_IMAGE_SIDE`].
fn check_target_sizes(target_sizes: Option<&[(usize, usize)]>, batch: usize, what: &str) -> Result<()> {
    let Some(sizes) = target_sizes else { return Ok(()) };
    if sizes.len() != batch {
        return Err(Error::input(format!(
            "{} target sizes for a batch of {batch}: give one (height, width) per image of the {what}",
            sizes.len()
        )));
    }
    for (i, &(h, w)) in sizes.iter().enumerate() {
        if h == 0 || w == 0 {
            return Err(Error::input(format!(
                "target size {i} is {h}x{w}: a target size must be the (height, width) of an image, both positive"
            )));
        }
        if h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
            return Err(Error::input(format!(
                "target size {i} is {h}x{w}, more than autocandle's limit of {MAX_IMAGE_SIDE} pixels per side"
            )));
        }
    }
    Ok(())
}

/// torch's `area_pixel_compute_source_index` with `align_corners=False`, in f32.
fn source_index(scale: f32, dst: usize, cubic: bool) -> f32 {
    let src = scale * (dst as f32 + 0.5) - 0.5;
    if !cubic && src < 0.0 {
        0.0
    } else {
        src
    }
}

/// torch's CPU `upsample_bilinear2d` (`align_corners=False`, no antialiasing) of one plane.
fn bilinear(src: &[f32], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let axis = |input: usize, output: usize| -> Vec<(usize, usize, f32, f32)> {
        let scale = input as f32 / output as f32;
        (0..output)
            .map(|i| {
                let real = source_index(scale, i, false);
                let i0 = (real as usize).min(input - 1);
                let l1 = (real - i0 as f32).clamp(0.0, 1.0);
                let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
                (i0, i1, 1.0 - l1, l1)
            })
            .collect()
    };
    let (ys, xs) = (axis(in_h, out_h), axis(in_w, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, hy0, hy1) in &ys {
        let (r0, r1) = (&src[y0 * in_w..(y0 + 1) * in_w], &src[y1 * in_w..(y1 + 1) * in_w]);
        for &(x0, x1, wx0, wx1) in &xs {
            let t0 = r0[x0] * wx0 + r0[x1] * wx1;
            let t1 = r1[x0] * wx0 + r1[x1] * wx1;
            out.push(t0 * hy0 + t1 * hy1);
        }
    }
    out
}

/// Keys' cubic convolution weights with torch's a = -0.75 for a fractional offset `t`.
fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// torch's CPU `upsample_bicubic2d` (`align_corners=False`, no antialiasing) of one plane:
/// four taps per axis, indices clamped to the border.
fn bicubic(src: &[f32], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let axis = |input: usize, output: usize| -> Vec<([usize; 4], [f32; 4])> {
        let scale = input as f32 / output as f32;
        (0..output)
            .map(|i| {
                let real = source_index(scale, i, true);
                let floor = real.floor();
                let index = (floor as i64).min(input as i64 - 1);
                let t = (real - index as f32).clamp(0.0, 1.0);
                let taps = [0, 1, 2, 3].map(|j| (index - 1 + j).clamp(0, input as i64 - 1) as usize);
                (taps, cubic_weights(t))
            })
            .collect()
    };
    let (ys, xs) = (axis(in_h, out_h), axis(in_w, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for (ty, wy) in &ys {
        for (tx, wx) in &xs {
            let row = |y: usize| {
                let r = &src[y * in_w..(y + 1) * in_w];
                r[tx[0]] * wx[0] + r[tx[1]] * wx[1] + r[tx[2]] * wx[2] + r[tx[3]] * wx[3]
            };
            out.push(row(ty[0]) * wy[0] + row(ty[1]) * wy[1] + row(ty[2]) * wy[2] + row(ty[3]) * wy[3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_identity_and_constant() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(bilinear(&src, 3, 4, 3, 4), src);
        let flat = vec![2.5f32; 6];
        assert!(bilinear(&flat, 2, 3, 7, 5).iter().all(|&v| (v - 2.5).abs() < 1e-6));
        assert!(bicubic(&flat, 2, 3, 7, 5).iter().all(|&v| (v - 2.5).abs() < 1e-5));
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        for t in [0.0f32, 0.25, 0.5, 0.9] {
            let s: f32 = cubic_weights(t).iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }
}
