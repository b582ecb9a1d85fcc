//! The pictures of `--output`: detected objects as coloured boxes with their label and score,
//! segments as a coloured overlay (alpha blend) with a legend of the label colours, and the
//! depth map as an 8-bit grayscale picture; all the size of the input image, written as PNG.
//!
//! Rectangles come from `imageproc`; text is drawn in the public-domain 8x8 bitmap font of
//! `font8x8` (basic Latin and Latin-1; other characters show as `?`), scaled with the image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use autocandle::image::{DynamicImage, GrayImage, ImageFormat, Rgb, RgbImage};
use autocandle::pipelines::{DetectedObject, Segment};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut};
use imageproc::rect::Rect;

/// Distinct colours (matplotlib's `tab20`: the ten strong ones, then their light pairs).
const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];

/// How strongly a segment's colour covers the image.
const MASK_ALPHA: f32 = 0.5;

/// The colour of label `id`: the same label keeps its colour from image to image.
pub fn colour(id: usize) -> Rgb<u8> {
    Rgb(PALETTE[id % PALETTE.len()])
}

/// `--output` must name a `.png` file (the only format written); checked before the model
/// loads.
pub fn check_output_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("png") => Ok(()),
        Some(ext) => bail!(
            "cannot write `{}`: the output extension `.{ext}` is not supported; --output writes PNG pictures: give a \
             file name ending in .png",
            path.display()
        ),
        None => bail!(
            "cannot write `{}`: the output file has no extension; --output writes PNG pictures: give a file name \
             ending in .png",
            path.display()
        ),
    }
}

/// The file of input `n` (1-based) when one `--output` serves several inputs:
/// `out.png` -> `out-1.png`, `out-2.png`, ...
pub fn numbered_path(path: &Path, n: usize) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "png".to_owned());
    path.with_file_name(format!("{stem}-{n}.{ext}"))
}

/// Write `image` as a PNG file.
pub fn save_png(image: &DynamicImage, path: &Path) -> Result<()> {
    image.save_with_format(path, ImageFormat::Png).with_context(|| format!("cannot write `{}`", path.display()))
}

/// `image` as a PNG in a `data:` URI (how the JSON output carries masks and depth pictures).
pub fn png_data_uri(image: &DynamicImage) -> Result<String> {
    use base64::Engine;
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).context("cannot encode a PNG")?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())))
}

/// The text scale for an image: 8-pixel glyphs on small images, larger ones on large images.
fn text_scale(width: u32, height: u32) -> u32 {
    (width.min(height) / 200).clamp(1, 4)
}

/// The 8x8 glyph of `c` (rows top to bottom, bit 0 the leftmost pixel).
fn glyph(c: char) -> [u8; 8] {
    let code = c as usize;
    match code {
        0x20..=0x7e => font8x8::legacy::BASIC_LEGACY[code],
        0xa0..=0xff => font8x8::legacy::LATIN_LEGACY[code - 0xa0],
        _ => font8x8::legacy::BASIC_LEGACY['?' as usize],
    }
}

/// The width in pixels of `text` at `scale`.
fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32).saturating_mul(8 * scale)
}

/// Draw `text` with its top-left corner at `(x, y)`; what falls outside the image is clipped.
fn draw_text(image: &mut RgbImage, x: i32, y: i32, scale: u32, text: &str, colour: Rgb<u8>) {
    let s = scale as i32;
    for (i, c) in text.chars().enumerate() {
        let left = x + (i as i32) * 8 * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let rect = Rect::at(left + col * s, y + row as i32 * s).of_size(scale, scale);
                    draw_filled_rect_mut(image, rect, colour);
                }
            }
        }
    }
}

/// Black or white, whichever reads better on `background`.
fn text_colour(background: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = background.0.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 150.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

/// `text` on a filled label of `background`, its top-left corner at `(x, y)`.
fn draw_label(image: &mut RgbImage, x: i32, y: i32, scale: u32, text: &str, background: Rgb<u8>) {
    let pad = scale as i32;
    let rect = Rect::at(x, y).of_size(text_width(text, scale) + 2 * scale, 8 * scale + 2 * scale);
    draw_filled_rect_mut(image, rect, background);
    draw_text(image, x + pad, y + pad, scale, text, text_colour(background));
}

/// The input image with a box around each detected object, in its label's colour, and its
/// label and score written above the box (inside it when the box touches the top).
pub fn draw_detections(image: &DynamicImage, objects: &[DetectedObject]) -> RgbImage {
    let mut canvas = image.to_rgb8();
    let (width, height) = canvas.dimensions();
    let scale = text_scale(width, height);
    let thickness = (width.min(height) / 200).clamp(1, 4) as i32;
    for object in objects {
        let b = object.bounding_box;
        let c = colour(object.label_id);
        let (x0, y0) = (clamp_i32(b.xmin), clamp_i32(b.ymin));
        let (x1, y1) = (clamp_i32(b.xmax).max(x0), clamp_i32(b.ymax).max(y0));
        for t in 0..thickness {
            let (w, h) = ((x1 - x0 - 2 * t + 1).max(1), (y1 - y0 - 2 * t + 1).max(1));
            draw_hollow_rect_mut(&mut canvas, Rect::at(x0 + t, y0 + t).of_size(w as u32, h as u32), c);
        }
        let text = format!("{} {:.2}", object.label, object.score);
        let label_height = (10 * scale) as i32;
        let y = if y0 >= label_height { y0 - label_height } else { y0.max(0) };
        draw_label(&mut canvas, x0.max(0), y, scale, &text, c);
    }
    canvas
}

/// The input image with each segment's pixels blended with its colour, and a legend of the
/// colours in the top-left corner. The colour of a segment is that of its label id.
pub fn draw_segments(image: &DynamicImage, segments: &[Segment]) -> RgbImage {
    let mut canvas = image.to_rgb8();
    for segment in segments {
        let c = colour(segment.label_id).0.map(f32::from);
        if segment.mask.dimensions() != canvas.dimensions() {
            continue;
        }
        for (pixel, mask) in canvas.pixels_mut().zip(segment.mask.pixels()) {
            if mask.0[0] > 127 {
                for (v, m) in pixel.0.iter_mut().zip(c) {
                    *v = (f32::from(*v) * (1.0 - MASK_ALPHA) + m * MASK_ALPHA).round() as u8;
                }
            }
        }
    }
    draw_legend(&mut canvas, segments);
    canvas
}

/// A swatch and the label of each segment, one per line, on a dark panel at the top left.
fn draw_legend(canvas: &mut RgbImage, segments: &[Segment]) {
    if segments.is_empty() {
        return;
    }
    let (width, height) = canvas.dimensions();
    let scale = text_scale(width, height);
    let line = 10 * scale;
    let longest = segments.iter().map(|s| text_width(&s.label, scale)).max().unwrap_or(0);
    let panel_w = 3 * scale + 8 * scale + 2 * scale + longest + 2 * scale;
    let panel_h = line * segments.len() as u32 + 2 * scale;
    // The panel darkens what is under it, so the legend reads on any image.
    for y in 0..panel_h.min(height) {
        for x in 0..panel_w.min(width) {
            let p = canvas.get_pixel_mut(x, y);
            p.0 = p.0.map(|v| (f32::from(v) * 0.35).round() as u8);
        }
    }
    for (i, segment) in segments.iter().enumerate() {
        let y = (scale + line * i as u32) as i32;
        let x = (2 * scale) as i32;
        draw_filled_rect_mut(canvas, Rect::at(x, y).of_size(8 * scale, 8 * scale), colour(segment.label_id));
        draw_text(canvas, x + (10 * scale) as i32, y, scale, &segment.label, Rgb([255, 255, 255]));
    }
}

/// The depth picture: `transformers`' 8-bit `depth` image (near and far as the model's scale
/// says: bright is a large value).
pub fn depth_picture(depth: &GrayImage) -> DynamicImage {
    DynamicImage::ImageLuma8(depth.clone())
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle::pipelines::BoundingBox;

    fn grey(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb([100, 100, 100])))
    }

    #[test]
    fn only_png_outputs_are_accepted() {
        assert!(check_output_path(Path::new("out.png")).is_ok());
        assert!(check_output_path(Path::new("dir/OUT.PNG")).is_ok());
        let e = check_output_path(Path::new("out.jpg")).unwrap_err().to_string();
        assert!(e.contains("`.jpg` is not supported") && e.contains(".png"), "{e}");
        let e = check_output_path(Path::new("out")).unwrap_err().to_string();
        assert!(e.contains("no extension"), "{e}");
        assert_eq!(numbered_path(Path::new("a/out.png"), 2), PathBuf::from("a/out-2.png"));
    }

    #[test]
    fn boxes_are_drawn_in_the_label_colour_with_the_label_text() {
        let image = grey(60, 40);
        let object = DetectedObject {
            score: 0.9,
            label: "cat".to_owned(),
            label_id: 3,
            bounding_box: BoundingBox { xmin: 10, ymin: 15, xmax: 50, ymax: 35 },
        };
        let drawn = draw_detections(&image, &[object]);
        assert_eq!(drawn.dimensions(), (60, 40));
        // The box's edges are the label's colour; the inside is untouched.
        assert_eq!(*drawn.get_pixel(30, 35), colour(3));
        assert_eq!(*drawn.get_pixel(50, 25), colour(3));
        assert_eq!(*drawn.get_pixel(10, 25), colour(3));
        assert_eq!(*drawn.get_pixel(30, 25), Rgb([100, 100, 100]));
        // The label sits above the box (rows 5..15): its background and some text pixels.
        let label: Vec<Rgb<u8>> =
            (5..15).flat_map(|y| (10..40).map(move |x| (x, y))).map(|(x, y)| *drawn.get_pixel(x, y)).collect();
        assert!(label.contains(&colour(3)));
        assert!(label.contains(&text_colour(colour(3))));
        // Boxes outside the image or of zero size do not panic.
        let odd = DetectedObject {
            score: 0.6,
            label: "é?ж".to_owned(),
            label_id: 0,
            bounding_box: BoundingBox { xmin: -20, ymin: 0, xmax: -20, ymax: 500 },
        };
        assert_eq!(draw_detections(&image, &[odd]).dimensions(), (60, 40));
    }

    #[test]
    fn segments_are_blended_with_their_colour_and_listed_in_a_legend() {
        let image = grey(100, 50);
        let mut mask = GrayImage::new(100, 50);
        for y in 40..50 {
            for x in 50..100 {
                mask.put_pixel(x, y, autocandle::image::Luma([255]));
            }
        }
        let segment = Segment { score: None, label: "road".to_owned(), label_id: 1, mask };
        let drawn = draw_segments(&image, &[segment]);
        assert_eq!(drawn.dimensions(), (100, 50));
        let [r, g, b] = colour(1).0;
        let blend = |v: u8| (100.0 * 0.5 + f32::from(v) * 0.5).round() as u8;
        assert_eq!(*drawn.get_pixel(80, 45), Rgb([blend(r), blend(g), blend(b)]));
        assert_eq!(*drawn.get_pixel(80, 20), Rgb([100, 100, 100]));
        // The legend's swatch (top left) has the segment's colour.
        assert_eq!(*drawn.get_pixel(4, 4), colour(1));
    }

    #[test]
    fn pictures_round_trip_through_png() {
        let dir = std::env::temp_dir().join(format!("autocandle-draw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("depth.png");
        let depth = GrayImage::from_fn(7, 5, |x, y| autocandle::image::Luma([(x * 30 + y) as u8]));
        save_png(&depth_picture(&depth), &path).unwrap();
        let back = autocandle::open_image(&path).unwrap();
        assert_eq!((back.width(), back.height()), (7, 5));
        assert_eq!(back.to_luma8(), depth);
        let uri = png_data_uri(&depth_picture(&depth)).unwrap();
        assert!(uri.starts_with("data:image/png;base64,iVBORw0KGgo"), "{uri}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
