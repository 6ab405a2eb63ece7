//! Checking and re-encoding an uploaded picture.
//!
//! The bytes decide what a file is, never its name or declared type: JPEG, PNG or WebP by
//! their magic numbers, nothing else. Before anything is decoded the header's dimensions
//! are held to a pixel limit (a small file may claim a gigapixel), and the decoder runs
//! with a memory limit too. A file that carries anything past the image's end, or markup a
//! browser would run, is refused as a polyglot. What is kept is decoded and encoded again:
//! no metadata (EXIF, GPS), no trailing bytes, nothing the upload brought but its pixels.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The longest side of the kept picture; larger ones are scaled down.
const MAX_SIDE: u32 = 2_048;

/// The side of the square version `avatarUrl` points at.
pub const THUMB_SIDE: u32 = 256;

/// Most memory the decoder may allocate (a 40-megapixel RGBA picture is 160 MB).
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// What markup a browser would run looks like at the start of an element.
const MARKUP: [&[u8]; 7] = [
    b"<script",
    b"<html",
    b"<svg",
    b"<?php",
    b"<!doctype",
    b"<iframe",
    b"<body",
];

const POLYGLOT: &str = "holds more than an image (a polyglot file); upload the picture alone";

/// The kinds of pictures kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JPEG (re-encoded at quality 85).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (re-encoded lossless).
    WebP,
}

impl Kind {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::WebP => "webp",
        }
    }

    /// The kind a stored file's extension names.
    pub fn of_extension(extension: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::WebP]
            .into_iter()
            .find(|k| k.extension() == extension)
    }

    /// The `Content-Type` it is served with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::WebP => ImageFormat::WebP,
        }
    }
}

/// A picture fit to keep: the re-encoded whole and its square version.
#[derive(Debug)]
pub struct Picture {
    /// Its kind.
    pub kind: Kind,
    /// The picture, at most [`MAX_SIDE`] on its longer side.
    pub full: Vec<u8>,
    /// The centre square, [`THUMB_SIDE`] on each side.
    pub thumb: Vec<u8>,
}

/// Checks `bytes` and re-encodes them; why not, in words for the user. CPU-bound: run it
/// on a blocking thread.
pub fn process(bytes: &[u8], max_pixels: u64) -> Result<Picture, String> {
    let kind = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Kind::Jpeg,
        Ok(ImageFormat::Png) => Kind::Png,
        Ok(ImageFormat::WebP) => Kind::WebP,
        _ => return Err("is not a JPEG, PNG or WebP image".into()),
    };
    match end_of(kind, bytes) {
        End::Truncated => return Err("is damaged or truncated".into()),
        End::Trailing => return Err(POLYGLOT.into()),
        End::Clean if carries_markup(bytes) => return Err(POLYGLOT.into()),
        End::Clean => {}
    }
    let reader = |bytes: &[u8]| {
        let mut reader = ImageReader::with_format(Cursor::new(bytes.to_vec()), kind.format());
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        reader
    };
    let (width, height) = reader(bytes)
        .into_dimensions()
        .map_err(|_| "is damaged or truncated".to_owned())?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(format!(
            "is {width}×{height} pixels; at most {max_pixels} pixels are accepted"
        ));
    }
    let decoded = reader(bytes)
        .decode()
        .map_err(|_| "is damaged or truncated".to_owned())?;
    let full = if decoded.width() > MAX_SIDE || decoded.height() > MAX_SIDE {
        decoded.resize(MAX_SIDE, MAX_SIDE, FilterType::Lanczos3)
    } else {
        decoded
    };
    let thumb = full.resize_to_fill(THUMB_SIDE, THUMB_SIDE, FilterType::Lanczos3);
    Ok(Picture {
        kind,
        full: encode(&full, kind)?,
        thumb: encode(&thumb, kind)?,
    })
}

fn encode(picture: &DynamicImage, kind: Kind) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    let failed = |_| "could not be encoded again".to_owned();
    match kind {
        Kind::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(picture.to_rgb8());
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85))
                .map_err(failed)?;
        }
        Kind::Png => picture
            .write_to(&mut out, ImageFormat::Png)
            .map_err(failed)?,
        Kind::WebP => {
            let rgba = DynamicImage::ImageRgba8(picture.to_rgba8());
            rgba.write_to(&mut out, ImageFormat::WebP).map_err(failed)?;
        }
    }
    Ok(out.into_inner())
}

/// Whether markup a browser would run appears anywhere in the bytes.
fn carries_markup(bytes: &[u8]) -> bool {
    bytes.windows(9).any(|window| {
        MARKUP
            .iter()
            .any(|tag| window.len() >= tag.len() && window[..tag.len()].eq_ignore_ascii_case(tag))
    })
}

/// How the file ends, measured against where its format says the image ends: after PNG's
/// `IEND` chunk, JPEG's last end-of-image marker, or the length a WebP's RIFF header gives.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Exactly there.
    Clean,
    /// Before it: the file was cut short.
    Truncated,
    /// After it: something rides along.
    Trailing,
}

fn end_of(kind: Kind, bytes: &[u8]) -> End {
    let after = |marker: &[u8]| {
        bytes
            .windows(marker.len())
            .rposition(|w| w == marker)
            .map(|at| at + marker.len())
    };
    let expected = match kind {
        Kind::Png => after(&[b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]),
        Kind::Jpeg => after(&[0xFF, 0xD9]),
        Kind::WebP => bytes
            .get(4..8)
            .and_then(|size| <[u8; 4]>::try_from(size).ok())
            .and_then(|size| usize::try_from(u32::from_le_bytes(size)).ok())
            .map(|size| size.saturating_add(8)),
    };
    match expected {
        Some(end) if end == bytes.len() => End::Clean,
        Some(end) if end < bytes.len() => End::Trailing,
        _ => End::Truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let picture = DynamicImage::new_rgb8(width, height);
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_picture_is_kept_as_itself_and_a_square() {
        let picture = process(&png(300, 200), 1_000_000).unwrap();
        assert_eq!(picture.kind, Kind::Png);
        let thumb = image::load_from_memory(&picture.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (THUMB_SIDE, THUMB_SIDE));
        let full = image::load_from_memory(&picture.full).unwrap();
        assert_eq!((full.width(), full.height()), (300, 200));
    }

    #[test]
    fn what_is_not_only_a_picture_is_refused() {
        assert!(process(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 1_000).is_err());
        let mut appended = png(4, 4);
        appended.extend_from_slice(b"PK\x03\x04 a zip archive");
        assert!(process(&appended, 1_000).unwrap_err().contains("polyglot"));
        let whole = png(4, 4);
        assert!(
            process(&whole[..whole.len() - 20], 1_000)
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            process(&png(100, 100), 1_000)
                .unwrap_err()
                .contains("pixels")
        );
    }
}
