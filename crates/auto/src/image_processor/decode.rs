//! Opening image files and turning images into 8-bit RGB the way PIL and `transformers` do.

use std::path::Path;

use autocandle_core::{Error, Result};
use image::{DynamicImage, ImageBuffer, Rgb};

use super::resize::Rgb8;

/// Open an image file as PIL's `Image.open` sees it: PNG through the `image` crate, JPEG
/// through `jpeg-decoder` (whose output is closer to the libjpeg-turbo that PIL uses), CMYK
/// JPEGs converted to RGB with PIL's formula. Other formats are decoded when the `image`
/// crate was built with them. No EXIF rotation is applied, as PIL applies none.
pub fn open_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image(&bytes).map_err(|message| Error::input(format!("cannot decode image `{}`: {message}", path.display())))
}

/// Decode image bytes (see [`open_image`]).
pub(crate) fn decode_image(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg(bytes);
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| format!("{e}; autocandle reads PNG and JPEG files"))
}

/// The most bytes an image may decode to (as the `image` crate's default `Limits::max_alloc`
/// for PNG): 512 MiB, a 13000 x 13000 RGB photo. A header announcing more is refused before
/// anything is allocated.
pub(crate) const MAX_DECODED_BYTES: usize = 512 << 20;

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    use jpeg_decoder::PixelFormat;
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(MAX_DECODED_BYTES);
    decoder.read_info().map_err(|e| format!("invalid JPEG: {e}"))?;
    if let Some(info) = decoder.info() {
        let channels = match info.pixel_format {
            PixelFormat::L8 => 1,
            PixelFormat::L16 => 2,
            PixelFormat::RGB24 => 3,
            PixelFormat::CMYK32 => 4,
        };
        let size = usize::from(info.width) * usize::from(info.height) * channels;
        if size > MAX_DECODED_BYTES {
            return Err(format!(
                "the JPEG header announces {} x {} pixels ({} MiB decoded), more than the {} MiB an image may take: \
                 scale the image down first",
                info.width,
                info.height,
                size >> 20,
                MAX_DECODED_BYTES >> 20
            ));
        }
    }
    let pixels = decoder.decode().map_err(|e| format!("invalid JPEG: {e}"))?;
    let info = decoder.info().ok_or("invalid JPEG: no frame header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let truncated = || "invalid JPEG: fewer pixels than the header announces".to_owned();
    Ok(match info.pixel_format {
        PixelFormat::L8 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(truncated)?),
        PixelFormat::RGB24 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(truncated)?),
        PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels.chunks_exact(4).flat_map(cmyk_to_rgb).collect();
            DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, rgb).ok_or_else(truncated)?)
        }
        PixelFormat::L16 => return Err("16-bit JPEGs are not supported".to_owned()),
    })
}

/// PIL's `cmyk2rgb`: each channel is `(255 - k) - (c * (255 - k)) / 255`, the division rounded
/// as PIL's `MULDIV255` does.
fn cmyk_to_rgb(px: &[u8]) -> [u8; 3] {
    let nk = 255 - i32::from(px[3]);
    let channel = |c: u8| {
        let t = i32::from(c) * nk + 128;
        (nk - (((t >> 8) + t) >> 8)).clamp(0, 255) as u8
    };
    [channel(px[0]), channel(px[1]), channel(px[2])]
}

/// PIL's `alpha_composite` of a pixel over an opaque white background (the 7-bit fixed point
/// of `AlphaComposite.c`), as `transformers`' `convert_to_rgb` composites transparency.
fn over_white(value: u8, alpha: u8) -> u8 {
    if alpha == 0 {
        return 255;
    }
    let (v, a) = (u32::from(value), u32::from(alpha));
    let tmp = v * a * 128 + 255 * (255 - a) * 128 + (0x80 << 7);
    ((((tmp >> 8) + tmp) >> 8) >> 7) as u8
}

/// The image as 8-bit RGB.
///
/// With `convert` (`do_convert_rgb`) as `transformers`' `convert_to_rgb` does through PIL:
/// gray is repeated, transparency is composited on white. Without it the image must already
/// have three channels, as Python fails on others. 16-bit images are read as PIL opens them:
/// RGB(A) and gray-alpha keep the high byte, plain 16-bit gray is clipped to 255.
pub(crate) fn to_rgb8(image: &DynamicImage, convert: bool) -> std::result::Result<Rgb8, String> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if width == 0 || height == 0 {
        return Err(format!("the image is empty (width {width}, height {height})"));
    }
    let channels = image.color().channel_count();
    if !convert && channels != 3 {
        return Err(format!(
            "it has {channels} channel(s) ({:?}) and the config has `do_convert_rgb` off; the processor needs \
             RGB images: convert the image to RGB first, or set `do_convert_rgb` to true",
            image.color()
        ));
    }
    let data: Vec<u8> = match image {
        DynamicImage::ImageRgb8(buf) => buf.as_raw().clone(),
        DynamicImage::ImageLuma8(buf) => buf.as_raw().iter().flat_map(|&v| [v; 3]).collect(),
        DynamicImage::ImageLumaA8(buf) => {
            buf.as_raw().chunks_exact(2).flat_map(|p| [over_white(p[0], p[1]); 3]).collect()
        }
        DynamicImage::ImageRgba8(buf) => buf
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [over_white(p[0], p[3]), over_white(p[1], p[3]), over_white(p[2], p[3])])
            .collect(),
        DynamicImage::ImageRgb16(buf) => buf.as_raw().iter().map(|&v| (v >> 8) as u8).collect(),
        DynamicImage::ImageLuma16(buf) => buf.as_raw().iter().flat_map(|&v| [v.min(255) as u8; 3]).collect(),
        DynamicImage::ImageLumaA16(buf) => {
            buf.as_raw().chunks_exact(2).flat_map(|p| [over_white((p[0] >> 8) as u8, (p[1] >> 8) as u8); 3]).collect()
        }
        DynamicImage::ImageRgba16(buf) => buf
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| {
                let a = (p[3] >> 8) as u8;
                [over_white((p[0] >> 8) as u8, a), over_white((p[1] >> 8) as u8, a), over_white((p[2] >> 8) as u8, a)]
            })
            .collect(),
        // Float images (no PIL counterpart): the `image` crate's conversion.
        other if other.color().has_alpha() => other
            .to_rgba8()
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [over_white(p[0], p[3]), over_white(p[1], p[3]), over_white(p[2], p[3])])
            .collect(),
        other => other.to_rgb8().into_raw(),
    };
    Ok(Rgb8 { height, width, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgba};

    #[test]
    fn a_jpeg_announcing_a_huge_image_is_refused_without_allocating_it() {
        // SOI, a baseline frame header of 65535 x 65535 x 3 (12 GiB decoded), then nothing.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03];
        for id in 1..=3u8 {
            jpeg.extend_from_slice(&[id, 0x11, 0x00]);
        }
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let err = decode_image(&jpeg).unwrap_err();
        assert!(err.contains("invalid JPEG") || err.contains("more than the 512 MiB"), "{err}");
    }

    #[test]
    fn composite_on_white() {
        assert_eq!(over_white(10, 255), 10);
        assert_eq!(over_white(10, 0), 255);
        assert_eq!(over_white(0, 128), 127);
        assert_eq!(over_white(200, 100), 233);
    }

    #[test]
    fn cmyk_like_pil() {
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 0, 128, 0]), [0, 255, 127]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255]), [0, 0, 0]);
    }

    #[test]
    fn sixteen_bit_like_pil() -> std::result::Result<(), String> {
        let gray = ImageBuffer::<Luma<u16>, _>::from_raw(3, 1, vec![100, 256, 40000]).ok_or("buffer")?;
        let rgb = to_rgb8(&DynamicImage::ImageLuma16(gray), true)?;
        assert_eq!(rgb.data, [100, 100, 100, 255, 255, 255, 255, 255, 255]);
        // PIL opens 16-bit gray+alpha PNGs as RGBA with the high bytes: (40000, 32768) -> 205.
        let la = ImageBuffer::<LumaA<u16>, _>::from_raw(1, 1, vec![40000, 32768]).ok_or("buffer")?;
        assert_eq!(to_rgb8(&DynamicImage::ImageLumaA16(la), true)?.data, [205; 3]);
        let rgba = ImageBuffer::<Rgba<u16>, _>::from_raw(1, 1, vec![300, 300, 300, 40000]).ok_or("buffer")?;
        assert_eq!(to_rgb8(&DynamicImage::ImageRgba16(rgba), true)?.data, [100; 3]);
        Ok(())
    }

    #[test]
    fn channel_count_without_conversion() {
        let gray = DynamicImage::ImageLuma8(ImageBuffer::from_raw(2, 2, vec![1, 2, 3, 4]).unwrap_or_default());
        let err = to_rgb8(&gray, false).map(|_| ()).unwrap_err();
        assert!(err.contains("do_convert_rgb"), "{err}");
        assert_eq!(to_rgb8(&gray, true).map(|i| i.data.len()), Ok(12));
    }

    #[test]
    fn corrupt_bytes() {
        assert!(decode_image(b"not an image").is_err());
        assert!(decode_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]).is_err());
    }
}
