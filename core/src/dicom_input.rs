//! DICOM files as images: pixel data read with the dicom-rs crates, one frame, windowed.
//!
//! Monochrome pixels get the Modality LUT (Rescale Slope/Intercept) from dicom-pixeldata,
//! then the linear VOI window of DICOM PS3.3 C.11.2.1.2.1 with the caller's window, else the
//! file's first Window Center/Width, else the frame's min..max; MONOCHROME1 is inverted after
//! windowing (its low values are white). RGB pixel data is used as is.
//!
//! Only pixels leave this module. No tag value (PatientName, PatientID, dates, descriptions)
//! is copied into the image, a message, an error or a log line, so none can reach a prompt
//! or the audit record.

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::{Error, Result};
use crate::image_input::{Image, ImageOptions, Window};

/// True for a DICOM Part 10 file: 128 bytes of preamble, then `DICM`.
pub(crate) fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() >= 132 && &bytes[128..132] == b"DICM"
}

fn dicom_error(name: &str, reason: impl Into<String>) -> Error {
    Error::Dicom {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Decode one frame of a DICOM file into an RGB8 image.
pub(crate) fn decode(name: &str, bytes: &[u8], options: &ImageOptions) -> Result<Image> {
    if let Some(w) = options.window {
        if !(w.width >= 1.0 && w.width.is_finite() && w.center.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "DICOM window width must be at least 1 (center {}, width {})",
                w.center, w.width
            )));
        }
    }
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| dicom_error(name, format!("not a readable DICOM file: {e}")))?;

    let ts_uid = obj.meta().transfer_syntax();
    match TransferSyntaxRegistry.get(ts_uid) {
        None => {
            return Err(dicom_error(
                name,
                format!("unknown transfer syntax {ts_uid}"),
            ))
        }
        Some(ts) if !ts.can_decode_all() => {
            return Err(dicom_error(
                name,
                format!(
                    "unsupported transfer syntax {} ({ts_uid}); this build decodes uncompressed, \
                     deflated, RLE lossless and JPEG baseline/extended/lossless pixel data",
                    ts.name()
                ),
            ))
        }
        Some(_) => {}
    }

    let int = |tag| -> Option<u32> { obj.get(tag).and_then(|e| e.to_int::<u32>().ok()) };
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(dicom_error(name, "has no pixel data"));
    }
    let rows = int(tags::ROWS).unwrap_or(0);
    let cols = int(tags::COLUMNS).unwrap_or(0);
    options
        .check_dimensions(name, cols, rows)
        .map_err(|e| dicom_error(name, strip_image_prefix(e)))?;
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    if options.frame >= frames {
        return Err(dicom_error(
            name,
            format!(
                "frame {} is out of range: the file has {frames} frame{}",
                options.frame,
                if frames == 1 { "" } else { "s" }
            ),
        ));
    }

    let pixels = obj
        .decode_pixel_data_frame(options.frame)
        .map_err(|e| dicom_error(name, format!("pixel data cannot be decoded: {e}")))?;
    let (width, height) = (pixels.columns(), pixels.rows());
    let n = width as usize * height as usize;
    let rgb = match pixels.photometric_interpretation() {
        pi @ (PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2) => {
            if pixels.samples_per_pixel() != 1 {
                return Err(dicom_error(
                    name,
                    "monochrome pixel data with several samples",
                ));
            }
            // Modality LUT only (dicom-pixeldata's default for vectors); the window is ours.
            let values: Vec<f64> = pixels
                .to_vec_frame(0)
                .map_err(|e| dicom_error(name, format!("pixel data cannot be read: {e}")))?;
            if values.len() != n {
                return Err(dicom_error(
                    name,
                    "pixel data is shorter than Rows x Columns",
                ));
            }
            let window = options.window.or_else(|| {
                pixels
                    .window()
                    .ok()
                    .flatten()
                    .and_then(|w| w.first().copied())
                    .filter(|w| w.width >= 1.0)
                    .map(|w| Window {
                        center: w.center,
                        width: w.width,
                    })
            });
            let mut gray = match window {
                Some(w) => values.iter().map(|&v| window_linear(v, w)).collect(),
                None => min_max(&values),
            };
            if *pi == PhotometricInterpretation::Monochrome1 {
                gray.iter_mut().for_each(|g| *g = 255 - *g);
            }
            gray.iter().flat_map(|&g| [g, g, g]).collect()
        }
        PhotometricInterpretation::Rgb => {
            let rgb: Vec<u8> = pixels
                .to_vec_frame(0)
                .map_err(|e| dicom_error(name, format!("RGB pixel data cannot be read: {e}")))?;
            if rgb.len() != n * 3 {
                return Err(dicom_error(
                    name,
                    "RGB pixel data is shorter than Rows x Columns",
                ));
            }
            rgb
        }
        other => {
            return Err(dicom_error(
                name,
                format!(
                    "photometric interpretation {other} is not supported (MONOCHROME1, \
                     MONOCHROME2, RGB)"
                ),
            ))
        }
    };
    Ok(Image::from_parts(width, height, rgb))
}

/// DICOM PS3.3 C.11.2.1.2.1, the linear VOI function, onto 0..=255.
fn window_linear(x: f64, w: Window) -> u8 {
    let (c, width) = (w.center - 0.5, w.width - 1.0);
    let y = if x <= c - width / 2.0 {
        0.0
    } else if x > c + width / 2.0 {
        255.0
    } else {
        ((x - c) / width + 0.5) * 255.0
    };
    y.round().clamp(0.0, 255.0) as u8
}

/// No window anywhere: spread the frame's own range over 0..=255.
fn min_max(values: &[f64]) -> Vec<u8> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        return vec![0; values.len()];
    }
    values
        .iter()
        .map(|&v| ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

fn strip_image_prefix(e: Error) -> String {
    match e {
        Error::Image { reason, .. } => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_follows_the_standard() {
        let w = Window {
            center: 40.0,
            width: 400.0,
        };
        assert_eq!(window_linear(-200.0, w), 0);
        assert_eq!(window_linear(500.0, w), 255);
        // x = c - 0.5 maps to the middle of the range
        assert_eq!(window_linear(39.5, w), 128);
        assert_eq!(min_max(&[5.0, 5.0]), vec![0, 0]);
        assert_eq!(min_max(&[0.0, 10.0, 5.0]), vec![0, 255, 128]);
    }

    #[test]
    fn non_dicom_bytes_are_not_dicom() {
        assert!(!is_dicom(b"DICM"));
        let mut b = vec![0u8; 132];
        b[128..].copy_from_slice(b"DICM");
        assert!(is_dicom(&b));
        let e = decode("x", &b, &ImageOptions::default()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Dicom);
    }
}
