//! Images for vision-language models: decoded here (not by llama.cpp) so that formats,
//! limits and errors are llmedge's own, then handed to the projector as RGB8 pixels.
//!
//! PNG, JPEG, WebP, BMP, TIFF and GIF (first frame) are decoded with the `image` crate;
//! grayscale, alpha and 16-bit samples become RGB8 (16-bit values are scaled with rounding,
//! `v * 255 / 65535`; alpha is dropped, as llama.cpp's own loader does); EXIF orientation is
//! applied. DICOM files are recognised by their `DICM` magic and read by
//! [`crate::dicom_input`]. Limits on bytes, sides, pixels and decoder allocation stop a
//! decompression bomb before its pixels are allocated.

use std::fmt;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::hex;

/// A DICOM VOI window: the value range `center ± width/2` is spread over black..white.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

/// How images are read: limits (for every format) and DICOM choices.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageOptions {
    /// Largest encoded input accepted, in bytes (default 64 MiB).
    pub max_bytes: u64,
    /// Largest width or height in pixels (default 16384).
    pub max_side: u32,
    /// Largest width × height (default 50 million: a full-field mammogram fits).
    pub max_pixels: u64,
    /// Most memory a decoder may allocate, in bytes (default 512 MiB).
    pub max_alloc: u64,
    /// DICOM: window to apply instead of the file's Window Center/Width.
    pub window: Option<Window>,
    /// DICOM: which frame of a multi-frame file (0-based; default 0).
    pub frame: u32,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            max_bytes: 64 << 20,
            max_side: 16384,
            max_pixels: 50_000_000,
            max_alloc: 512 << 20,
            window: None,
            frame: 0,
        }
    }
}

impl ImageOptions {
    /// Check a width × height against the limits, before any pixel is allocated.
    pub(crate) fn check_dimensions(&self, name: &str, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(image_error(
                name,
                format!("has no pixels ({width}x{height})"),
            ));
        }
        let pixels = u64::from(width) * u64::from(height);
        if width > self.max_side || height > self.max_side || pixels > self.max_pixels {
            return Err(image_error(
                name,
                format!(
                    "is {width}x{height} pixels, over the limit ({} per side, {} in total)",
                    self.max_side, self.max_pixels
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_bytes(&self, name: &str, len: u64) -> Result<()> {
        if len > self.max_bytes {
            return Err(image_error(
                name,
                format!("is {len} bytes, over the limit of {} bytes", self.max_bytes),
            ));
        }
        Ok(())
    }
}

/// A decoded image: RGB8 pixels and their content hash. Cheap to clone (shared pixels).
///
/// Only pixels are kept: nothing else from the file (EXIF, DICOM tags such as the patient's
/// name) is stored, so nothing else can reach a prompt, a log or the audit record.
#[derive(Clone)]
pub struct Image {
    inner: Arc<ImageInner>,
}

struct ImageInner {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    sha256: String,
}

impl Image {
    /// Read an image file (any supported format, DICOM included) with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Image> {
        Self::open_with(path, &ImageOptions::default())
    }

    /// Read an image file with `options`; a DICOM file (`DICM` magic) uses its DICOM fields.
    pub fn open_with(path: impl AsRef<Path>, options: &ImageOptions) -> Result<Image> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(image_error(&name, "is a directory".into()));
        }
        options.check_bytes(&name, meta.len())?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode(&name, &bytes, options)
    }

    /// Decode an encoded image (or a DICOM file) held in memory, with default options.
    pub fn from_bytes(bytes: &[u8]) -> Result<Image> {
        Self::from_bytes_with(bytes, &ImageOptions::default())
    }

    /// Decode an encoded image (or a DICOM file) held in memory.
    pub fn from_bytes_with(bytes: &[u8], options: &ImageOptions) -> Result<Image> {
        options.check_bytes("bytes", bytes.len() as u64)?;
        Self::decode("bytes", bytes, options)
    }

    /// Wrap raw RGB8 pixels (row-major, `width * height * 3` bytes).
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Image> {
        let expected = u64::from(width) * u64::from(height) * 3;
        if width == 0 || height == 0 || rgb.len() as u64 != expected {
            return Err(Error::InvalidArgument(format!(
                "RGB pixels: {width}x{height} needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        ImageOptions::default().check_dimensions("pixels", width, height)?;
        Ok(Self::from_parts(width, height, rgb))
    }

    pub(crate) fn from_parts(width: u32, height: u32, rgb: Vec<u8>) -> Image {
        let mut hasher = Sha256::new();
        hasher.update(width.to_le_bytes());
        hasher.update(height.to_le_bytes());
        hasher.update(&rgb);
        let sha256 = hex(&hasher.finalize());
        Image {
            inner: Arc::new(ImageInner {
                width,
                height,
                rgb,
                sha256,
            }),
        }
    }

    fn decode(name: &str, bytes: &[u8], options: &ImageOptions) -> Result<Image> {
        if crate::dicom_input::is_dicom(bytes) {
            return crate::dicom_input::decode(name, bytes, options);
        }
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| image_error(name, e.to_string()))?;
        match reader.format() {
            Some(
                ImageFormat::Png
                | ImageFormat::Jpeg
                | ImageFormat::WebP
                | ImageFormat::Bmp
                | ImageFormat::Tiff
                | ImageFormat::Gif,
            ) => {}
            Some(other) => {
                return Err(image_error(
                    name,
                    format!(
                    "{other:?} images are not supported (PNG, JPEG, WebP, BMP, TIFF, GIF, DICOM)"
                ),
                ))
            }
            None => return Err(image_error(
                name,
                "is not an image in a supported format (PNG, JPEG, WebP, BMP, TIFF, GIF, DICOM)"
                    .into(),
            )),
        }
        // The header's size first, so a bomb is refused with its size before any decoding.
        // (Only headers are read here: no pixel buffer is allocated without limits.)
        let mut probe =
            ImageReader::with_format(Cursor::new(bytes), reader.format().expect("checked"));
        probe.no_limits();
        let (width, height) = probe
            .into_dimensions()
            .map_err(|e| decode_error(name, options, e))?;
        options.check_dimensions(name, width, height)?;
        let mut reader = reader;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(options.max_side);
        limits.max_image_height = Some(options.max_side);
        limits.max_alloc = Some(options.max_alloc);
        reader.limits(limits);
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| decode_error(name, options, e))?;
        let orientation = decoder
            .orientation()
            .map_err(|e| decode_error(name, options, e))?;
        let mut img =
            DynamicImage::from_decoder(decoder).map_err(|e| decode_error(name, options, e))?;
        img.apply_orientation(orientation);
        let rgb = img.to_rgb8();
        let (width, height) = rgb.dimensions();
        Ok(Self::from_parts(width, height, rgb.into_raw()))
    }

    pub fn width(&self) -> u32 {
        self.inner.width
    }

    pub fn height(&self) -> u32 {
        self.inner.height
    }

    /// The pixels, RGB8, row-major.
    pub fn rgb(&self) -> &[u8] {
        &self.inner.rgb
    }

    /// SHA-256 (hex) of the size and pixels: the key of the embedding cache and of the audit
    /// record. Two files with the same pixels have the same hash.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        self.inner.sha256 == other.inner.sha256
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("width", &self.inner.width)
            .field("height", &self.inner.height)
            .field("sha256", &self.inner.sha256)
            .finish()
    }
}

/// What a record (the audit log, a serialised message) says about an image: its size and
/// hash, never its pixels.
impl serde::Serialize for Image {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Image", 3)?;
        st.serialize_field("sha256", &self.inner.sha256)?;
        st.serialize_field("width", &self.inner.width)?;
        st.serialize_field("height", &self.inner.height)?;
        st.end()
    }
}

pub(crate) fn image_error(name: &str, reason: String) -> Error {
    Error::Image {
        name: name.to_owned(),
        reason,
    }
}

fn decode_error(name: &str, options: &ImageOptions, e: image::ImageError) -> Error {
    let reason = match e {
        image::ImageError::Limits(l) => format!(
            "exceeds the decoding limits ({l}; at most {} pixels per side, {} bytes of memory)",
            options.max_side, options.max_alloc
        ),
        image::ImageError::Unsupported(u) => format!("unsupported: {u}"),
        other => format!("cannot be decoded: {other}"),
    };
    image_error(name, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn sixteen_bit_gray_scales_with_rounding() {
        let gray = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(
            4,
            1,
            vec![0u16, 128, 65535, 32896],
        )
        .unwrap();
        let img = Image::from_bytes(&png(&DynamicImage::ImageLuma16(gray))).unwrap();
        // round(v * 255 / 65535): 0, 0 (0.498), 255, 128
        assert_eq!(img.rgb(), &[0, 0, 0, 0, 0, 0, 255, 255, 255, 128, 128, 128]);
    }

    #[test]
    fn limits_and_bad_input_are_typed() {
        let e = Image::from_bytes(b"not an image at all").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Image);
        let big = DynamicImage::new_luma8(300, 2);
        let options = ImageOptions {
            max_side: 256,
            ..ImageOptions::default()
        };
        let e = Image::from_bytes_with(&png(&big), &options).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Image);
        assert!(e.to_string().contains("300x2"), "{e}");
        let options = ImageOptions {
            max_bytes: 10,
            ..ImageOptions::default()
        };
        let e = Image::from_bytes_with(&png(&big), &options).unwrap_err();
        assert!(e.to_string().contains("over the limit of 10 bytes"), "{e}");
        let e = Image::from_rgb(2, 2, vec![0; 11]).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
    }

    #[test]
    fn hash_covers_size_and_pixels() {
        let a = Image::from_rgb(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let b = Image::from_rgb(1, 2, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_ne!(a.sha256(), b.sha256());
        assert_eq!(a, Image::from_rgb(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap());
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["width"], 2);
        assert_eq!(json.as_object().unwrap().len(), 3);
    }
}
