//! `llmedge.Image` and the vision parts of requests: images in messages (OpenAI content
//! parts, parsed by core) and raw prompts with `images=`.

use llmedge::{Image, ImageOptions, Window, MEDIA_MARKER};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString, PyTuple};

use crate::args::{to_string, wrong_type, Args};
use crate::errors::{invalid, IntoPy};

const OPEN_ARGS: &[&str] = &[
    "path",
    "max_bytes",
    "max_side",
    "max_pixels",
    "window",
    "frame",
];
const BYTES_ARGS: &[&str] = &[
    "data",
    "max_bytes",
    "max_side",
    "max_pixels",
    "window",
    "frame",
];
const RGB_ARGS: &[&str] = &["width", "height", "data"];

/// A decoded image for a vision-language model: RGB8 pixels and their SHA-256.
///
/// `Image.open(path)` reads PNG, JPEG, WebP, BMP, TIFF, GIF (first frame) and DICOM files;
/// grayscale and 16-bit images become RGB, EXIF orientation is applied, and DICOM pixels are
/// windowed (the file's Window Center/Width, or `window=(center, width)`; `frame=` picks a
/// frame). Limits (`max_bytes`, `max_side`, `max_pixels`) raise `ImageError` before pixels
/// are allocated. Nothing but the pixels is kept: no EXIF, no DICOM tags.
#[pyclass(name = "Image", module = "llmedge", frozen)]
pub struct PyImage {
    pub(crate) inner: Image,
}

fn image_options(a: &Args<'_>) -> PyResult<ImageOptions> {
    let mut o = ImageOptions::default();
    if let Some(v) = a.int("max_bytes", 1, i64::MAX)? {
        o.max_bytes = v as u64;
    }
    if let Some(v) = a.u32("max_side", 1)? {
        o.max_side = v;
    }
    if let Some(v) = a.int("max_pixels", 1, i64::MAX)? {
        o.max_pixels = v as u64;
    }
    if let Some(w) = a.opt("window") {
        let (center, width): (f64, f64) = w
            .extract()
            .map_err(|_| a.wrong_type("window", "(center, width) of floats", w))?;
        o.window = Some(Window { center, width });
    }
    if let Some(f) = a.u32("frame", 0)? {
        o.frame = f;
    }
    Ok(o)
}

#[pymethods]
impl PyImage {
    /// Read an image file (DICOM recognised by its magic).
    #[staticmethod]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(path, *, max_bytes=None, max_side=None, max_pixels=None, window=None, frame=0)"
    )]
    fn open(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyImage> {
        let a = Args::parse(py, "Image.open", OPEN_ARGS, 1, args, kwargs)?;
        let path = a
            .path("path")?
            .ok_or_else(|| crate::errors::null(py, "path"))?;
        let options = image_options(&a)?;
        let inner = py.detach(|| Image::open_with(&path, &options)).py(py)?;
        Ok(PyImage { inner })
    }

    /// Decode an encoded image (or a DICOM file) held in `bytes`.
    #[staticmethod]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(data, *, max_bytes=None, max_side=None, max_pixels=None, window=None, frame=0)"
    )]
    fn from_bytes(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyImage> {
        let a = Args::parse(py, "Image.from_bytes", BYTES_ARGS, 1, args, kwargs)?;
        let data = a.required("data")?;
        let bytes: Vec<u8> = data
            .cast::<PyBytes>()
            .map(|b| b.as_bytes().to_vec())
            .map_err(|_| a.wrong_type("data", "bytes", data))?;
        let options = image_options(&a)?;
        let inner = py
            .detach(|| Image::from_bytes_with(&bytes, &options))
            .py(py)?;
        Ok(PyImage { inner })
    }

    /// Raw RGB8 pixels, row-major: `width * height * 3` bytes.
    #[staticmethod]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(width, height, data)")]
    fn from_rgb(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyImage> {
        let a = Args::parse(py, "Image.from_rgb", RGB_ARGS, 3, args, kwargs)?;
        let width = a
            .u32("width", 1)?
            .ok_or_else(|| crate::errors::null(py, "width"))?;
        let height = a
            .u32("height", 1)?
            .ok_or_else(|| crate::errors::null(py, "height"))?;
        let data = a.required("data")?;
        let bytes = data
            .cast::<PyBytes>()
            .map(|b| b.as_bytes().to_vec())
            .map_err(|_| a.wrong_type("data", "bytes", data))?;
        let inner = Image::from_rgb(width, height, bytes).py(py)?;
        Ok(PyImage { inner })
    }

    /// Width in pixels (after EXIF orientation).
    #[getter]
    fn width(&self) -> u32 {
        self.inner.width()
    }

    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.inner.height()
    }

    /// SHA-256 of the size and pixels: the embedding cache key, and what the audit log records.
    #[getter]
    fn sha256(&self) -> &str {
        self.inner.sha256()
    }

    /// The pixels, RGB8, row-major.
    fn rgb<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.rgb())
    }

    /// Same pixels (by hash).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyImage>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        u64::from_str_radix(&self.inner.sha256()[..16], 16).unwrap_or(0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Image({}x{}, sha256={}…)",
            self.inner.width(),
            self.inner.height(),
            &self.inner.sha256()[..12]
        )
    }
}

/// `images=` of a raw-prompt request: a list of `Image`s (or paths, opened with defaults).
pub fn images_arg(a: &Args<'_>) -> PyResult<Option<Vec<Image>>> {
    if !a.declares("images") {
        return Ok(None);
    }
    let Some(v) = a.opt("images") else {
        return Ok(None);
    };
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(a.wrong_type("images", "list[Image]", v));
    }
    let mut out = Vec::new();
    for item in v.try_iter()? {
        out.push(image_of(a.py(), a.func(), &item?)?);
    }
    Ok(Some(out))
}

/// An `Image`, or a path opened with the default options.
fn image_of(py: Python<'_>, func: &str, v: &Bound<'_, PyAny>) -> PyResult<Image> {
    if let Ok(img) = v.cast::<PyImage>() {
        return Ok(img.get().inner.clone());
    }
    if let Ok(path) = v.extract::<std::path::PathBuf>() {
        return py.detach(|| Image::open(&path)).py(py);
    }
    Err(wrong_type(py, func, "images", "Image or path", v))
}

/// A message's content: a string, or a list of parts (`str`, `{"type": "text", ...}`,
/// `{"type": "image_url", "image_url": {"url": ...}}` parsed by core, an `Image`, or
/// `{"type": "image", "image": Image}`). Returns the text with one marker per image.
pub fn content(py: Python<'_>, func: &str, c: &Bound<'_, PyAny>) -> PyResult<(String, Vec<Image>)> {
    if c.is_none() {
        return Ok((String::new(), Vec::new()));
    }
    if c.is_instance_of::<PyString>() {
        return Ok((to_string(py, func, "content", c)?, Vec::new()));
    }
    if !(c.is_instance_of::<PyList>() || c.is_instance_of::<PyTuple>()) {
        return Err(wrong_type(
            py,
            func,
            "content",
            "str or list of content parts",
            c,
        ));
    }
    let mut text = String::new();
    let mut images = Vec::new();
    for part in c.try_iter()? {
        let part = part?;
        if part.is_instance_of::<PyString>() {
            text.push_str(&to_string(py, func, "content", &part)?);
            continue;
        }
        if let Ok(img) = part.cast::<PyImage>() {
            images.push(img.get().inner.clone());
            text.push_str(MEDIA_MARKER);
            continue;
        }
        let map = part
            .cast::<PyMapping>()
            .map_err(|_| wrong_type(py, func, "content part", "dict, str or Image", &part))?;
        if map.contains("image")? {
            if let Ok(img) = map.get_item("image")?.cast::<PyImage>() {
                images.push(img.get().inner.clone());
                text.push_str(MEDIA_MARKER);
                continue;
            }
        }
        // Everything else is JSON-shaped: core's one parser of OpenAI content parts.
        let value = crate::json::from_py(py, func, "content part", &part)?;
        let (t, mut i) = py
            .detach(|| {
                llmedge::vision::parse_content(
                    &serde_json::Value::Array(vec![value]),
                    &ImageOptions::default(),
                )
            })
            .py(py)?;
        text.push_str(&t);
        images.append(&mut i);
    }
    if text.is_empty() && images.is_empty() {
        return Err(invalid(py, format!("{func}(): content is an empty list")));
    }
    Ok((text, images))
}
