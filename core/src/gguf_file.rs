//! A bounds-checked, pure-Rust GGUF (v2/v3) reader and an atomic GGUF writer.
//!
//! llama.cpp's own loader trusts much of the header and can abort the process on a corrupt
//! file; llmedge needs to inspect models and LoRA adapters *before* handing them to llama.cpp
//! (and to write adapters), so this module re-implements the container format with every
//! number checked against the file size. Nothing here panics or allocates more than the file
//! size on any input, which makes [`GgufFile::from_bytes`] usable as a fuzz target.
//!
//! Layout (little-endian only), per <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>:
//! magic `GGUF`, `u32` version, `u64` tensor_count, `u64` kv_count, the key/value pairs
//! (`gguf string` key = `u64` length + UTF-8 bytes, `u32` value type, value), the tensor infos
//! (name, `u32` n_dims, `u64` ne\[n_dims\] innermost first, `u32` ggml type, `u64` offset
//! relative to the data section), padding to `general.alignment` (default 32), then the data.
//!
//! Only the header is read by [`GgufFile::open`]; tensor data is read on demand with
//! [`GgufFile::read_tensor`], so opening a multi-gigabyte model costs a few megabytes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// ggml type number of 32-bit floats.
pub const GGML_TYPE_F32: u32 = 0;
/// ggml type number of IEEE half floats.
pub const GGML_TYPE_F16: u32 = 1;
/// ggml type number of Q4_0 blocks.
pub const GGML_TYPE_Q4_0: u32 = 2;
/// ggml type number of Q4_1 blocks.
pub const GGML_TYPE_Q4_1: u32 = 3;
/// ggml type number of Q8_0 blocks.
pub const GGML_TYPE_Q8_0: u32 = 8;
/// ggml type number of Q4_K blocks.
pub const GGML_TYPE_Q4_K: u32 = 12;
/// ggml type number of Q6_K blocks.
pub const GGML_TYPE_Q6_K: u32 = 14;
/// ggml type number of bfloat16.
pub const GGML_TYPE_BF16: u32 = 30;

/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Alignment used when the file has no `general.alignment` key (GGUF's default).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest tensor name llama.cpp accepts (`GGML_MAX_NAME` is 64 including the NUL).
pub const MAX_TENSOR_NAME_LEN: usize = 63;
/// Deepest array-of-array nesting accepted; real files use depth 1, and a bound keeps the
/// recursive parser from exhausting the stack on hostile input.
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// Most dimensions a ggml tensor can have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

const MAGIC: &[u8; 4] = b"GGUF";
/// Smallest possible key/value pair: an 8-byte key length and a 4-byte type tag.
const MIN_KV_BYTES: u64 = 12;
/// Smallest possible tensor info, used to reject impossible counts before allocating.
const MIN_TENSOR_INFO_BYTES: u64 = 24;
/// Upper bound on capacity reserved up front from a header count; vectors still grow to the
/// real size as elements are actually parsed, so this only limits speculative allocation.
const MAX_PREALLOC: u64 = 1 << 16;

// GGUF metadata value type tags.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// `(ggml type number, name as ggml_type_name prints it, block size, bytes per block)`,
/// copied from `type_traits` in ggml.c and the `block_*` sizes in ggml-common.h
/// (QK_K = 256, K_SCALE_SIZE = 12). Numbers 4, 5 (Q4_2/Q4_3), 31-33 and 36-38 (repacked
/// layouts) were removed from ggml and are deliberately absent so files using them are
/// rejected, as llama.cpp does.
const TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "f32", 1, 4),
    (1, "f16", 1, 2),
    (2, "q4_0", 32, 18),
    (3, "q4_1", 32, 20),
    (6, "q5_0", 32, 22),
    (7, "q5_1", 32, 24),
    (8, "q8_0", 32, 34),
    (9, "q8_1", 32, 36),
    (10, "q2_K", 256, 84),
    (11, "q3_K", 256, 110),
    (12, "q4_K", 256, 144),
    (13, "q5_K", 256, 176),
    (14, "q6_K", 256, 210),
    (15, "q8_K", 256, 292),
    (16, "iq2_xxs", 256, 66),
    (17, "iq2_xs", 256, 74),
    (18, "iq3_xxs", 256, 98),
    (19, "iq1_s", 256, 50),
    (20, "iq4_nl", 32, 18),
    (21, "iq3_s", 256, 110),
    (22, "iq2_s", 256, 82),
    (23, "iq4_xs", 256, 136),
    (24, "i8", 1, 1),
    (25, "i16", 1, 2),
    (26, "i32", 1, 4),
    (27, "i64", 1, 8),
    (28, "f64", 1, 8),
    (29, "iq1_m", 256, 56),
    (30, "bf16", 1, 2),
    (34, "tq1_0", 256, 54),
    (35, "tq2_0", 256, 66),
    (39, "mxfp4", 32, 17),
    (40, "nvfp4", 64, 36),
    (41, "q1_0", 128, 18),
    (42, "q2_0", 64, 18),
];

fn type_traits(ggml_type: u32) -> Option<(&'static str, u64, u64)> {
    TYPES
        .iter()
        .find(|t| t.0 == ggml_type)
        .map(|&(_, name, block, bytes)| (name, block, bytes))
}

/// The name ggml prints for a type (`"q4_K"`, `"f16"`, ...), or `"unknown"`.
pub fn type_name(ggml_type: u32) -> &'static str {
    type_traits(ggml_type).map_or("unknown", |t| t.0)
}

/// The type number for a ggml type name; case-insensitive so `"Q4_K"`, `"q4_k"` and ggml's
/// own `"q4_K"` all work.
pub fn type_from_name(name: &str) -> Option<u32> {
    TYPES
        .iter()
        .find(|t| t.1.eq_ignore_ascii_case(name))
        .map(|t| t.0)
}

/// Bytes of a tensor of `ggml_type` with ggml dims `dims` (innermost first).
///
/// `None` when the type is unknown or removed, a dimension is zero, the row length is not a
/// whole number of blocks, or the size overflows (ggml indexes with `int64_t`, so the element
/// count must also fit in `i64`).
pub fn tensor_size(ggml_type: u32, dims: &[u64]) -> Option<u64> {
    let (_, block, bytes) = type_traits(ggml_type)?;
    let (&ne0, rest) = dims.split_first()?;
    if dims.len() > MAX_DIMS || dims.contains(&0) || ne0 % block != 0 {
        return None;
    }
    let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    if n > i64::MAX as u64 {
        return None;
    }
    let rows = rest.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    (ne0 / block).checked_mul(bytes)?.checked_mul(rows)
}

/// One GGUF metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(GgufArray),
}

/// A GGUF array: every element has type `elem_type` (arrays of arrays are allowed, each inner
/// array carrying its own element type).
#[derive(Debug, Clone, PartialEq)]
pub struct GgufArray {
    pub elem_type: u32,
    pub values: Vec<GgufValue>,
}

impl GgufValue {
    /// The GGUF type tag of this value (what is written before it in the file).
    pub fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => T_U8,
            GgufValue::I8(_) => T_I8,
            GgufValue::U16(_) => T_U16,
            GgufValue::I16(_) => T_I16,
            GgufValue::U32(_) => T_U32,
            GgufValue::I32(_) => T_I32,
            GgufValue::F32(_) => T_F32,
            GgufValue::Bool(_) => T_BOOL,
            GgufValue::String(_) => T_STRING,
            GgufValue::U64(_) => T_U64,
            GgufValue::I64(_) => T_I64,
            GgufValue::F64(_) => T_F64,
            GgufValue::Array(_) => T_ARRAY,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer that is not negative: converters disagree on whether counts are written as
    /// u32, i32 or u64, so readers should not care.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// An F32, or an F64 narrowed to f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            GgufValue::F32(v) => Some(v),
            GgufValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml `ne`, innermost (contiguous) dimension first: a PyTorch `[out, in]` matrix is
    /// `[in, out]` here.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Byte offset relative to the start of the data section.
    pub offset: u64,
    /// Bytes of data, computed from the type and dims (validated against the file size).
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (product of dims; validated not to overflow on parse).
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// The ggml name of the tensor's type.
    pub fn type_name(&self) -> &'static str {
        type_name(self.ggml_type)
    }
}

/// What `llmedge verify` reports about a GGUF file that passed validation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GgufSummary {
    pub path: PathBuf,
    pub version: u32,
    pub file_size: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.type` (`model`, `adapter`, ...), when present.
    pub kind: Option<String>,
    pub metadata_keys: usize,
    pub tensors: usize,
    /// Bytes of tensor data.
    pub tensor_bytes: u64,
    pub alignment: u64,
    pub data_offset: u64,
    /// Tensor count per ggml type name, sorted by name.
    pub tensor_types: Vec<(String, usize)>,
}

impl GgufFile {
    /// A summary of the validated header.
    pub fn summary(&self) -> GgufSummary {
        let mut types = std::collections::BTreeMap::new();
        for t in &self.tensors {
            *types.entry(t.type_name().to_owned()).or_insert(0usize) += 1;
        }
        GgufSummary {
            path: self.path.clone(),
            version: self.version,
            file_size: self.file_size,
            architecture: self.architecture().map(str::to_owned),
            name: self.get_str("general.name").map(str::to_owned),
            kind: self.get_str("general.type").map(str::to_owned),
            metadata_keys: self.metadata.len(),
            tensors: self.tensors.len(),
            tensor_bytes: self.tensors.iter().map(|t| t.size).sum(),
            alignment: self.alignment,
            data_offset: self.data_offset,
            tensor_types: types.into_iter().collect(),
        }
    }
}

/// A parsed, validated GGUF header.
#[derive(Debug, Clone)]
pub struct GgufFile {
    pub version: u32,
    /// Key/value pairs in file order (keys are unique).
    pub metadata: Vec<(String, GgufValue)>,
    /// Tensor infos in file order (names unique, data ranges in bounds and disjoint).
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    pub file_size: u64,
    path: PathBuf,
}

impl GgufFile {
    /// Opens and validates the header of the GGUF file at `path`, reading only the header.
    ///
    /// A missing or unreadable file is [`Error::Io`]; anything malformed is
    /// [`Error::InvalidModel`] with a reason naming the offending key or tensor.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut parser = Parser {
            reader: BufReader::new(file),
            pos: 0,
            len: file_size,
        };
        parse_header(&mut parser, path.to_path_buf()).map_err(|e| e.into_error(path))
    }

    /// Parses an in-memory GGUF image; `path_for_messages` only names it in errors (and is
    /// where [`GgufFile::read_tensor`] would look; use [`GgufFile::tensor_bytes`] instead).
    pub fn from_bytes(path_for_messages: &Path, bytes: &[u8]) -> Result<GgufFile> {
        let mut parser = Parser {
            reader: bytes,
            pos: 0,
            len: bytes.len() as u64,
        };
        parse_header(&mut parser, path_for_messages.to_path_buf())
            .map_err(|e| e.into_error(path_for_messages))
    }

    /// The file this header came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of metadata key `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(GgufValue::as_str)
    }

    /// A non-negative integer metadata value, whatever its integer width.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(GgufValue::as_u64)
    }

    /// A floating-point metadata value.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(GgufValue::as_f32)
    }

    /// `general.architecture`: the prefix of the model's hyperparameter keys (`llama`, ...).
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Reads the `t.size` bytes of tensor `t` from the file on disk.
    ///
    /// The range is re-checked against the file's current size, so a file truncated after
    /// [`GgufFile::open`] gives [`Error::InvalidModel`] instead of a short read.
    pub fn read_tensor(&self, t: &TensorInfo) -> Result<Vec<u8>> {
        let invalid = |reason: String| Error::InvalidModel {
            path: self.path.clone(),
            reason,
        };
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        let start = self.data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(invalid(format!("tensor '{}' range overflows", t.name)));
        };
        if end > len {
            return Err(invalid(format!(
                "tensor '{}' data [{start}, {end}) is past the end of the file ({len} bytes)",
                t.name
            )));
        }
        let size = usize::try_from(t.size)
            .map_err(|_| invalid(format!("tensor '{}' is too large for memory", t.name)))?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut buf = vec![0u8; size];
        file.read_exact(&mut buf)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(buf)
    }

    /// The bytes of tensor `t` inside `bytes`, the image this header was parsed from with
    /// [`GgufFile::from_bytes`].
    pub fn tensor_bytes<'a>(&self, bytes: &'a [u8], t: &TensorInfo) -> Result<&'a [u8]> {
        let start = self.data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        start
            .zip(end)
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?))
            .and_then(|range| bytes.get(range))
            .ok_or_else(|| Error::InvalidModel {
                path: self.path.clone(),
                reason: format!("tensor '{}' data is out of bounds", t.name),
            })
    }
}

/// Why parsing stopped: a format problem, or an I/O failure reading the file.
enum ParseError {
    Invalid(String),
    Io(std::io::Error),
}

impl ParseError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            ParseError::Invalid(reason) => Error::InvalidModel {
                path: path.to_path_buf(),
                reason,
            },
            ParseError::Io(e) => Error::io(path, e),
        }
    }
}

type PResult<T> = std::result::Result<T, ParseError>;

fn invalid<T>(reason: String) -> PResult<T> {
    Err(ParseError::Invalid(reason))
}

/// A forward-only reader that knows how many bytes are left, so every length read from the
/// header can be checked before anything is allocated or read.
struct Parser<R: Read> {
    reader: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Parser<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &dyn Fn() -> String) -> PResult<[u8; N]> {
        if self.remaining() < N as u64 {
            return invalid(format!("file truncated while reading {}", what()));
        }
        let mut buf = [0u8; N];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }

    fn read_into(&mut self, buf: &mut [u8], what: &dyn Fn() -> String) -> PResult<()> {
        match self.reader.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            // The file shrank under us: still a truncated file, not an I/O fault.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                invalid(format!("file truncated while reading {}", what()))
            }
            Err(e) => Err(ParseError::Io(e)),
        }
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> PResult<u32> {
        self.bytes(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> PResult<u64> {
        self.bytes(what).map(u64::from_le_bytes)
    }

    /// A gguf string: u64 length (checked against the bytes left) + UTF-8 bytes.
    fn string(&mut self, what: &dyn Fn() -> String) -> PResult<String> {
        let n = self.u64(what)?;
        if n > self.remaining() {
            return invalid(format!(
                "{} has length {n} but only {} bytes remain",
                what(),
                self.remaining()
            ));
        }
        let Ok(n) = usize::try_from(n) else {
            return invalid(format!("{} is too long", what()));
        };
        let mut buf = vec![0u8; n];
        self.read_into(&mut buf, what)?;
        String::from_utf8(buf).or_else(|_| invalid(format!("{} is not valid UTF-8", what())))
    }

    /// A value of type `tag`; `depth` counts enclosing arrays.
    fn value(&mut self, tag: u32, depth: u32, what: &dyn Fn() -> String) -> PResult<GgufValue> {
        Ok(match tag {
            T_U8 => GgufValue::U8(u8::from_le_bytes(self.bytes(what)?)),
            T_I8 => GgufValue::I8(i8::from_le_bytes(self.bytes(what)?)),
            T_U16 => GgufValue::U16(u16::from_le_bytes(self.bytes(what)?)),
            T_I16 => GgufValue::I16(i16::from_le_bytes(self.bytes(what)?)),
            T_U32 => GgufValue::U32(u32::from_le_bytes(self.bytes(what)?)),
            T_I32 => GgufValue::I32(i32::from_le_bytes(self.bytes(what)?)),
            T_F32 => GgufValue::F32(f32::from_le_bytes(self.bytes(what)?)),
            T_U64 => GgufValue::U64(u64::from_le_bytes(self.bytes(what)?)),
            T_I64 => GgufValue::I64(i64::from_le_bytes(self.bytes(what)?)),
            T_F64 => GgufValue::F64(f64::from_le_bytes(self.bytes(what)?)),
            T_BOOL => match self.bytes::<1>(what)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return invalid(format!("{} is a bool with value {b} (not 0 or 1)", what())),
            },
            T_STRING => GgufValue::String(self.string(what)?),
            T_ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return invalid(format!(
                        "{} nests arrays deeper than {MAX_ARRAY_DEPTH} levels",
                        what()
                    ));
                }
                let elem_type = self.u32(what)?;
                let count = self.u64(what)?;
                let Some(min) = min_value_bytes(elem_type) else {
                    return invalid(format!(
                        "{} is an array of unknown value type {elem_type}",
                        what()
                    ));
                };
                // Every element takes at least `min` bytes, so a count that cannot fit in the
                // rest of the file is rejected before any allocation.
                if count > self.remaining() / min {
                    return invalid(format!(
                        "{} is an array of {count} elements but only {} bytes remain",
                        what(),
                        self.remaining()
                    ));
                }
                let cap = count.min(MAX_PREALLOC) as usize;
                let mut values = Vec::with_capacity(cap);
                for _ in 0..count {
                    values.push(self.value(elem_type, depth + 1, what)?);
                }
                GgufValue::Array(GgufArray { elem_type, values })
            }
            other => return invalid(format!("{} has unknown value type {other}", what())),
        })
    }
}

/// Smallest encoding of one value of type `tag` (None for unknown tags).
fn min_value_bytes(tag: u32) -> Option<u64> {
    Some(match tag {
        T_U8 | T_I8 | T_BOOL => 1,
        T_U16 | T_I16 => 2,
        T_U32 | T_I32 | T_F32 => 4,
        T_U64 | T_I64 | T_F64 | T_STRING => 8,
        T_ARRAY => 12,
        _ => return None,
    })
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    let rem = x % alignment;
    if rem == 0 {
        Some(x)
    } else {
        x.checked_add(alignment - rem)
    }
}

fn parse_header<R: Read>(p: &mut Parser<R>, path: PathBuf) -> PResult<GgufFile> {
    let magic: [u8; 4] = p.bytes(&|| "the magic".into())?;
    if &magic != MAGIC {
        return invalid(format!("bad magic {magic:02x?} (expected \"GGUF\")"));
    }
    let version = p.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return invalid(format!("unsupported GGUF version {version} (need 2 or 3)"));
    }
    let tensor_count = p.u64(&|| "the tensor count".into())?;
    let kv_count = p.u64(&|| "the metadata count".into())?;
    let needed = kv_count
        .checked_mul(MIN_KV_BYTES)
        .zip(tensor_count.checked_mul(MIN_TENSOR_INFO_BYTES))
        .and_then(|(a, b)| a.checked_add(b));
    if needed.is_none_or(|n| n > p.remaining()) {
        return invalid(format!(
            "{kv_count} metadata entries and {tensor_count} tensors cannot fit in {} bytes",
            p.len
        ));
    }

    let mut metadata = Vec::with_capacity(kv_count.min(MAX_PREALLOC) as usize);
    let mut keys = HashSet::new();
    for i in 0..kv_count {
        let key = p.string(&|| format!("metadata key #{i}"))?;
        let what = || format!("metadata key '{key}'");
        let tag = p.u32(&what)?;
        let value = p.value(tag, 0, &what)?;
        if !keys.insert(key.clone()) {
            return invalid(format!("duplicate metadata key '{key}'"));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some((_, GgufValue::U32(a))) if a.is_power_of_two() => u64::from(*a),
        Some((_, GgufValue::U32(a))) => {
            return invalid(format!("{ALIGNMENT_KEY} = {a} is not a power of two"))
        }
        Some((_, v)) => {
            return invalid(format!(
                "{ALIGNMENT_KEY} has value type {} (must be u32)",
                v.type_id()
            ))
        }
    };

    check_unique_tokens(&metadata)?;
    check_spm_byte_tokens(&metadata)?;
    check_layer_and_expert_counts(&metadata)?;

    let mut tensors = Vec::with_capacity(tensor_count.min(MAX_PREALLOC) as usize);
    let mut names = HashSet::new();
    for i in 0..tensor_count {
        let name = p.string(&|| format!("the name of tensor #{i}"))?;
        let what = || format!("tensor '{name}'");
        if name.len() > MAX_TENSOR_NAME_LEN {
            return invalid(format!(
                "tensor name '{name}' is longer than {MAX_TENSOR_NAME_LEN} bytes"
            ));
        }
        let n_dims = p.u32(&what)?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return invalid(format!(
                "tensor '{name}' has {n_dims} dimensions (must be 1..={MAX_DIMS})"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(p.u64(&what)?);
        }
        let ggml_type = p.u32(&what)?;
        let offset = p.u64(&what)?;
        if dims.contains(&0) {
            return invalid(format!("tensor '{name}' has a zero dimension {dims:?}"));
        }
        let Some((tname, block, _)) = type_traits(ggml_type) else {
            return invalid(format!(
                "tensor '{name}' has unknown or removed ggml type {ggml_type}"
            ));
        };
        if dims[0] % block != 0 {
            return invalid(format!(
                "tensor '{name}': ne[0] = {} is not a multiple of the {tname} block size {block}",
                dims[0]
            ));
        }
        let Some(size) = tensor_size(ggml_type, &dims) else {
            return invalid(format!("tensor '{name}' dims {dims:?} overflow"));
        };
        if offset % alignment != 0 {
            return invalid(format!(
                "tensor '{name}' offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        if !names.insert(name.clone()) {
            return invalid(format!("duplicate tensor name '{name}'"));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            size,
        });
    }

    let Some(data_offset) = align_up(p.pos, alignment) else {
        return invalid("data offset overflows".into());
    };
    for t in &tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.size));
        if end.is_none_or(|e| e > p.len) {
            return invalid(format!(
                "tensor '{}' data (offset {}, {} bytes) runs past the end of the file ({} bytes)",
                t.name, t.offset, t.size, p.len
            ));
        }
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.offset);
    for w in by_offset.windows(2) {
        // In bounds (checked above), so offset + size cannot overflow.
        if w[0].offset + w[0].size > w[1].offset {
            return invalid(format!(
                "tensors '{}' and '{}' overlap",
                w[0].name, w[1].name
            ));
        }
    }

    Ok(GgufFile {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        file_size: p.len,
        path,
    })
}

/// llama.cpp's vocab loader ends with `GGML_ASSERT(id_to_token.size() == token_to_id.size())`
/// (llama-vocab.cpp), so a `tokenizer.ggml.tokens` array with the same piece twice aborts the
/// process while loading (found by the `model_load` fuzz target). Refused here instead.
fn check_unique_tokens(metadata: &[(String, GgufValue)]) -> PResult<()> {
    let Some((_, GgufValue::Array(tokens))) =
        metadata.iter().find(|(k, _)| k == "tokenizer.ggml.tokens")
    else {
        return Ok(());
    };
    let mut seen = HashSet::with_capacity(tokens.values.len().min(MAX_PREALLOC as usize));
    for (i, piece) in tokens
        .values
        .iter()
        .filter_map(GgufValue::as_str)
        .enumerate()
    {
        if !seen.insert(piece) {
            return invalid(format!(
                "tokenizer.ggml.tokens has the piece {piece:?} twice (again at index {i}): \
                 llama.cpp's vocab loader would abort"
            ));
        }
    }
    Ok(())
}

/// llama.cpp's SentencePiece tokenizer (`tokenizer.ggml.model = "llama"`) spells any text its
/// vocab cannot cover with byte tokens, and `llama_vocab::byte_to_token` (llama-vocab.cpp) looks
/// the byte up with `std::unordered_map::at`, first as `<0xXX>`, then as the one-byte piece. A
/// vocab with neither for some byte makes `llama_tokenize` throw `std::out_of_range` through
/// Rust, which aborts the process on the first prompt containing that byte (found by the
/// `model_load` fuzz target). Such a vocab is refused before llama.cpp sees it.
fn check_spm_byte_tokens(metadata: &[(String, GgufValue)]) -> PResult<()> {
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if get("tokenizer.ggml.model").and_then(GgufValue::as_str) != Some("llama") {
        return Ok(());
    }
    // No vocab, or not an array of strings: llama.cpp refuses the file with a clean error.
    let Some(GgufValue::Array(tokens)) = get("tokenizer.ggml.tokens") else {
        return Ok(());
    };
    let pieces: HashSet<&str> = tokens.values.iter().filter_map(GgufValue::as_str).collect();
    for b in 0..=255u8 {
        let hex = format!("<0x{b:02X}>");
        // The one-byte C string of byte 0 is the empty string; bytes >= 0x80 alone are not
        // UTF-8, so only their `<0xXX>` form can exist in a valid file.
        let single = match b {
            0 => Some(String::new()),
            1..=0x7f => Some(char::from(b).to_string()),
            _ => None,
        };
        if !pieces.contains(hex.as_str()) && !single.is_some_and(|s| pieces.contains(s.as_str())) {
            return invalid(format!(
                "the SentencePiece vocab (tokenizer.ggml.tokens) has no token for byte 0x{b:02X} \
                 (neither {hex} nor the byte itself): llama.cpp's tokenizer would abort on text \
                 containing it"
            ));
        }
    }
    Ok(())
}

/// `LLAMA_MAX_LAYERS` and `LLAMA_MAX_EXPERTS` of the linked llama.cpp (llama-hparams.h).
const LLAMA_MAX_LAYERS: u64 = 512;
const LLAMA_MAX_EXPERTS: u64 = 1024;

/// The layer and expert counts that llama.cpp's `load_hparams` (llama-model.cpp) checks with
/// `GGML_ASSERT`, which aborts the process instead of failing the load (a block count of
/// 50331904 was found by the `model_load` fuzz target). Same rules, refused here first. Keys of
/// another type than llama.cpp reads are left to llama.cpp, which refuses them cleanly.
fn check_layer_and_expert_counts(metadata: &[(String, GgufValue)]) -> PResult<()> {
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let Some(arch) = get("general.architecture").and_then(GgufValue::as_str) else {
        return Ok(());
    };
    let count = |name: &str| get(&format!("{arch}.{name}")).and_then(GgufValue::as_u64);
    // Adapters and projectors have no block count of their own.
    let Some(n_layer) = count("block_count") else {
        return Ok(());
    };
    let fail = |what: String| invalid(format!("{what}: llama.cpp would abort loading it"));
    if !(1..=LLAMA_MAX_LAYERS).contains(&n_layer) {
        return fail(format!(
            "{arch}.block_count is {n_layer}, outside 1..={LLAMA_MAX_LAYERS}"
        ));
    }
    for name in [
        "nextn_predict_layers",
        "posnet.block_count",
        "convnext.block_count",
    ] {
        if let Some(n) = count(name).filter(|&n| n > n_layer) {
            return fail(format!(
                "{arch}.{name} is {n}, more than the {n_layer} blocks"
            ));
        }
    }
    let mut n_expert = count("expert_count").unwrap_or(0);
    // The most experts any layer routes to: a number, or one per layer.
    let mut used = match get(&format!("{arch}.expert_used_count")) {
        Some(GgufValue::Array(a)) => a.values.iter().filter_map(GgufValue::as_u64).max(),
        Some(v) => v.as_u64(),
        None => None,
    }
    .unwrap_or(0);
    if matches!(arch, "hunyuan_vl" | "hunyuan-dense") && n_expert <= 1 {
        (n_expert, used) = (0, 0);
    }
    let groups = count("expert_group_count").unwrap_or(0);
    let group_used = count("expert_group_used_count").unwrap_or(0);
    let consistent = n_expert <= LLAMA_MAX_EXPERTS
        && used <= n_expert
        && if n_expert > 0 {
            used > 0
                && groups < n_expert
                && (groups <= 1
                    || (n_expert % groups == 0 && group_used > 0 && group_used < groups))
        } else {
            groups == 0
        };
    if !consistent {
        return fail(format!(
            "inconsistent expert counts (expert_count {n_expert}, expert_used_count {used}, \
             expert_group_count {groups}, expert_group_used_count {group_used})"
        ));
    }
    Ok(())
}

/// A tensor to write: its name, ggml dims (innermost first) and ggml type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes metadata + tensors to `path` atomically (temp file in the same dir, fsync, rename),
/// so readers (and llama.cpp) never see a half-written adapter or model.
///
/// `data(i)` returns the bytes of tensor `i`; its length must equal [`tensor_size`] or the
/// write fails with [`Error::InvalidArgument`]. Tensors are streamed one at a time, so the
/// caller never has to hold all the data. Alignment is `general.alignment` from `metadata`
/// when present (must be a power-of-two u32), else 32. Writes GGUF version 3. Everything
/// the reader would reject (duplicate keys or names, bad dims, unknown types, arrays with
/// mixed element types or too deep) is refused before the file is created.
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, GgufValue)],
    tensors: &[TensorSpec],
    mut data: impl FnMut(usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let (alignment, sizes) = validate_for_write(metadata, tensors)?;

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = write_body(&tmp, metadata, tensors, &sizes, alignment, &mut data)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        // Best effort: the temp file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not all platforms can open a directory, so best effort.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Checks everything up front; returns the alignment and each tensor's size.
fn validate_for_write(
    metadata: &[(String, GgufValue)],
    tensors: &[TensorSpec],
) -> Result<(u64, Vec<u64>)> {
    let mut keys = HashSet::new();
    for (key, value) in metadata {
        if !keys.insert(key.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "duplicate metadata key '{key}'"
            )));
        }
        check_value(key, value, 0)?;
    }
    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some((_, GgufValue::U32(a))) if a.is_power_of_two() => u64::from(*a),
        Some(_) => {
            return Err(Error::InvalidArgument(format!(
                "{ALIGNMENT_KEY} must be a power-of-two u32"
            )))
        }
    };
    let mut names = HashSet::new();
    let mut sizes = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.len() > MAX_TENSOR_NAME_LEN {
            return Err(Error::InvalidArgument(format!(
                "tensor name '{}' is longer than {MAX_TENSOR_NAME_LEN} bytes",
                t.name
            )));
        }
        if !names.insert(t.name.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "duplicate tensor name '{}'",
                t.name
            )));
        }
        let size = tensor_size(t.ggml_type, &t.dims).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "tensor '{}': type {} with dims {:?} is not a valid ggml tensor",
                t.name, t.ggml_type, t.dims
            ))
        })?;
        sizes.push(size);
    }
    Ok((alignment, sizes))
}

/// Rejects values the reader would reject: mixed-type arrays and too-deep nesting.
fn check_value(key: &str, value: &GgufValue, depth: u32) -> Result<()> {
    if let GgufValue::Array(a) = value {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(Error::InvalidArgument(format!(
                "metadata '{key}' nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
            )));
        }
        if min_value_bytes(a.elem_type).is_none() {
            return Err(Error::InvalidArgument(format!(
                "metadata '{key}' has unknown array element type {}",
                a.elem_type
            )));
        }
        for v in &a.values {
            if v.type_id() != a.elem_type {
                return Err(Error::InvalidArgument(format!(
                    "metadata '{key}' mixes value types in an array of type {}",
                    a.elem_type
                )));
            }
            check_value(key, v, depth + 1)?;
        }
    }
    Ok(())
}

fn write_body(
    tmp: &Path,
    metadata: &[(String, GgufValue)],
    tensors: &[TensorSpec],
    sizes: &[u64],
    alignment: u64,
    data: &mut impl FnMut(usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| Error::io(tmp, e))?;
    let mut w = CountingWriter {
        inner: BufWriter::new(file),
        pos: 0,
    };
    let io = |e: std::io::Error| Error::io(tmp, e);

    w.put(MAGIC).map_err(io)?;
    w.put(&3u32.to_le_bytes()).map_err(io)?;
    w.put(&(tensors.len() as u64).to_le_bytes()).map_err(io)?;
    w.put(&(metadata.len() as u64).to_le_bytes()).map_err(io)?;
    for (key, value) in metadata {
        put_string(&mut w, key).map_err(io)?;
        w.put(&value.type_id().to_le_bytes()).map_err(io)?;
        put_value(&mut w, value).map_err(io)?;
    }
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(tensors.len());
    for (t, &size) in tensors.iter().zip(sizes) {
        put_string(&mut w, &t.name).map_err(io)?;
        w.put(&(t.dims.len() as u32).to_le_bytes()).map_err(io)?;
        for d in &t.dims {
            w.put(&d.to_le_bytes()).map_err(io)?;
        }
        w.put(&t.ggml_type.to_le_bytes()).map_err(io)?;
        w.put(&offset.to_le_bytes()).map_err(io)?;
        offsets.push(offset);
        offset = offset
            .checked_add(size)
            .and_then(|o| align_up(o, alignment))
            .ok_or_else(|| Error::InvalidArgument("total tensor data overflows".into()))?;
    }
    w.pad(alignment).map_err(io)?;
    for (i, (t, &size)) in tensors.iter().zip(sizes).enumerate() {
        let bytes = data(i)?;
        if bytes.len() as u64 != size {
            return Err(Error::InvalidArgument(format!(
                "tensor '{}' got {} bytes of data, expected {size}",
                t.name,
                bytes.len()
            )));
        }
        w.put(&bytes).map_err(io)?;
        // Pad after every tensor (like ggml and gguf-py), so the next one starts aligned.
        w.pad(alignment).map_err(io)?;
    }
    let file = w.inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

struct CountingWriter<W: Write> {
    inner: W,
    pos: u64,
}

impl<W: Write> CountingWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, alignment: u64) -> std::io::Result<()> {
        let n = (alignment - self.pos % alignment) % alignment;
        self.put(&vec![0u8; n as usize])
    }
}

fn put_string<W: Write>(w: &mut CountingWriter<W>, s: &str) -> std::io::Result<()> {
    w.put(&(s.len() as u64).to_le_bytes())?;
    w.put(s.as_bytes())
}

fn put_value<W: Write>(w: &mut CountingWriter<W>, v: &GgufValue) -> std::io::Result<()> {
    match v {
        GgufValue::U8(x) => w.put(&x.to_le_bytes()),
        GgufValue::I8(x) => w.put(&x.to_le_bytes()),
        GgufValue::U16(x) => w.put(&x.to_le_bytes()),
        GgufValue::I16(x) => w.put(&x.to_le_bytes()),
        GgufValue::U32(x) => w.put(&x.to_le_bytes()),
        GgufValue::I32(x) => w.put(&x.to_le_bytes()),
        GgufValue::F32(x) => w.put(&x.to_le_bytes()),
        GgufValue::Bool(x) => w.put(&[u8::from(*x)]),
        GgufValue::String(s) => put_string(w, s),
        GgufValue::U64(x) => w.put(&x.to_le_bytes()),
        GgufValue::I64(x) => w.put(&x.to_le_bytes()),
        GgufValue::F64(x) => w.put(&x.to_le_bytes()),
        GgufValue::Array(a) => {
            w.put(&a.elem_type.to_le_bytes())?;
            w.put(&(a.values.len() as u64).to_le_bytes())?;
            a.values.iter().try_for_each(|x| put_value(w, x))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> (String, GgufValue) {
        (k.to_string(), GgufValue::String(v.to_string()))
    }

    fn spec(name: &str, dims: &[u64], ggml_type: u32) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type,
        }
    }

    /// Bytes of tensor `i` in the sample: a recognisable pattern.
    fn pattern(i: usize, len: u64) -> Vec<u8> {
        (0..len)
            .map(|j| (j as u8).wrapping_mul(7) ^ i as u8)
            .collect()
    }

    fn sample(dir: &Path) -> (PathBuf, Vec<TensorSpec>) {
        let path = dir.join("sample.gguf");
        let meta = vec![
            s("general.architecture", "llama"),
            ("llama.block_count".into(), GgufValue::U32(2)),
            ("x.f".into(), GgufValue::F32(1.5)),
            ("x.b".into(), GgufValue::Bool(true)),
            ("x.i".into(), GgufValue::I64(-3)),
            (
                "x.nested".into(),
                GgufValue::Array(GgufArray {
                    elem_type: T_ARRAY,
                    values: vec![GgufValue::Array(GgufArray {
                        elem_type: T_STRING,
                        values: vec![GgufValue::String("a".into())],
                    })],
                }),
            ),
        ];
        let tensors = vec![
            spec("a", &[8, 3], GGML_TYPE_F32),
            spec("b", &[5], GGML_TYPE_F16),
            spec("c", &[32, 2], GGML_TYPE_Q8_0),
        ];
        let sizes: Vec<u64> = tensors
            .iter()
            .map(|t| tensor_size(t.ggml_type, &t.dims).unwrap())
            .collect();
        write_gguf(&path, &meta, &tensors, |i| Ok(pattern(i, sizes[i]))).unwrap();
        (path, tensors)
    }

    fn sample_bytes() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = sample(dir.path());
        std::fs::read(path).unwrap()
    }

    fn reason(bytes: &[u8]) -> String {
        match GgufFile::from_bytes(Path::new("mem.gguf"), bytes) {
            Err(Error::InvalidModel { reason, .. }) => reason,
            other => panic!("expected InvalidModel, got {other:?}"),
        }
    }

    /// A minimal header writer for malformed cases the real writer refuses to produce.
    struct Raw(Vec<u8>);
    impl Raw {
        fn new(tensors: u64, kvs: u64) -> Raw {
            let mut r = Raw(b"GGUF".to_vec());
            r.u32(3).u64(tensors).u64(kvs);
            r
        }
        fn u32(&mut self, v: u32) -> &mut Raw {
            self.0.extend(v.to_le_bytes());
            self
        }
        fn u64(&mut self, v: u64) -> &mut Raw {
            self.0.extend(v.to_le_bytes());
            self
        }
        fn str(&mut self, v: &[u8]) -> &mut Raw {
            self.u64(v.len() as u64);
            self.0.extend(v);
            self
        }
        fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, off: u64) -> &mut Raw {
            self.str(name.as_bytes()).u32(dims.len() as u32);
            for d in dims {
                self.u64(*d);
            }
            self.u32(ty).u64(off)
        }
        fn data(&mut self, n: usize) -> Vec<u8> {
            while !self.0.len().is_multiple_of(32) {
                self.0.push(0);
            }
            self.0.extend(vec![0u8; n]);
            self.0.clone()
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (path, specs) = sample(dir.path());
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.architecture(), Some("llama"));
        assert_eq!(f.get_u64("llama.block_count"), Some(2));
        assert_eq!(f.get_f32("x.f"), Some(1.5));
        assert_eq!(f.get("x.b"), Some(&GgufValue::Bool(true)));
        assert_eq!(f.get_u64("x.i"), None);
        assert_eq!(f.alignment, 32);
        assert_eq!(f.data_offset % 32, 0);
        assert_eq!(f.tensors.len(), 3);
        for (i, s) in specs.iter().enumerate() {
            let t = f.tensor(&s.name).unwrap();
            assert_eq!(t.dims, s.dims);
            assert_eq!(t.ggml_type, s.ggml_type);
            assert_eq!(f.read_tensor(t).unwrap(), pattern(i, t.size));
        }
        let c = f.tensor("c").unwrap();
        assert_eq!((c.size, c.n_elements(), c.type_name()), (68, 64, "q8_0"));
        // Nothing but the target is left in the directory (the temp file was renamed).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writer_rejects_wrong_data_length_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let err = write_gguf(&path, &[], &[spec("a", &[4], GGML_TYPE_F32)], |_| {
            Ok(vec![0; 3])
        });
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let err = write_gguf(&path, &[], &[spec("a", &[5], GGML_TYPE_Q8_0)], |_| {
            Ok(vec![])
        });
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn custom_alignment_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let meta = vec![(ALIGNMENT_KEY.to_string(), GgufValue::U32(64))];
        let specs = [
            spec("a", &[3], GGML_TYPE_F32),
            spec("b", &[3], GGML_TYPE_F32),
        ];
        write_gguf(&path, &meta, &specs, |i| Ok(pattern(i, 12))).unwrap();
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.alignment, 64);
        assert_eq!(f.tensor("b").unwrap().offset, 64);
        assert_eq!(
            f.read_tensor(f.tensor("b").unwrap()).unwrap(),
            pattern(1, 12)
        );
    }

    #[test]
    fn types_table() {
        assert_eq!(type_name(12), "q4_K");
        assert_eq!(type_from_name("q4_k"), Some(12));
        assert_eq!(type_from_name("Q8_0"), Some(8));
        assert_eq!(type_from_name("bf16"), Some(GGML_TYPE_BF16));
        assert_eq!(type_name(4), "unknown");
        assert_eq!(tensor_size(4, &[32]), None);
        assert_eq!(tensor_size(5, &[32]), None);
        assert_eq!(tensor_size(GGML_TYPE_Q4_K, &[256, 2]), Some(288));
        assert_eq!(tensor_size(GGML_TYPE_Q4_K, &[128]), None);
        assert_eq!(tensor_size(GGML_TYPE_F32, &[u64::MAX, 2]), None);
        assert_eq!(tensor_size(GGML_TYPE_F32, &[]), None);
        assert_eq!(tensor_size(GGML_TYPE_F32, &[1, 1, 1, 1, 1]), None);
    }

    #[test]
    fn missing_file_is_io() {
        let err = GgufFile::open(Path::new("/nonexistent/x.gguf")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    #[test]
    fn truncated_everywhere() {
        let bytes = sample_bytes();
        let f = GgufFile::from_bytes(Path::new("mem.gguf"), &bytes).unwrap();
        // The trailing padding after the last tensor is optional; anything shorter is not.
        let end = f.data_offset + f.tensors.iter().map(|t| t.offset + t.size).max().unwrap();
        for n in 0..end as usize {
            reason(&bytes[..n]);
        }
        assert!(reason(&bytes[..end as usize - 1]).contains("past the end"));
        assert!(GgufFile::from_bytes(Path::new("mem.gguf"), &bytes[..end as usize]).is_ok());
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = sample_bytes();
        bytes[0] = b'X';
        assert!(reason(&bytes).contains("magic"));
        let mut bytes = sample_bytes();
        bytes[4] = 1;
        assert!(reason(&bytes).contains("version 1"));
    }

    #[test]
    fn huge_counts_rejected_before_allocating() {
        let r = reason(&Raw::new(u64::MAX, 1).data(0));
        assert!(r.contains("cannot fit"), "{r}");
        let r = reason(&Raw::new(0, u64::MAX / 2).data(64));
        assert!(r.contains("cannot fit"), "{r}");
        // A u8 array claiming more elements than bytes remain.
        let mut raw = Raw::new(0, 1);
        raw.str(b"k").u32(T_ARRAY).u32(T_U8).u64(1 << 40);
        assert!(reason(&raw.data(0)).contains("array of 1099511627776"));
        // A string longer than the file.
        let mut raw = Raw::new(0, 1);
        raw.str(b"k").u32(T_STRING).u64(u64::MAX);
        assert!(reason(&raw.data(0)).contains("metadata key 'k' has length"));
    }

    #[test]
    fn overflowing_dims() {
        let mut raw = Raw::new(1, 0);
        raw.tensor("t", &[1 << 32, 1 << 32, 1 << 32], GGML_TYPE_F32, 0);
        assert!(reason(&raw.data(64)).contains("overflow"));
        let mut raw = Raw::new(1, 0);
        raw.tensor("t", &[4, 0], GGML_TYPE_F32, 0);
        assert!(reason(&raw.data(64)).contains("zero dimension"));
        let mut raw = Raw::new(1, 0);
        raw.tensor("t", &[1, 1, 1, 1, 1], GGML_TYPE_F32, 0);
        assert!(reason(&raw.data(64)).contains("5 dimensions"));
        let mut raw = Raw::new(1, 0);
        raw.tensor("t", &[16], GGML_TYPE_Q8_0, 0);
        assert!(reason(&raw.data(64)).contains("block size"));
    }

    #[test]
    fn bad_utf8_key_is_named() {
        let mut raw = Raw::new(0, 2);
        raw.str(b"good").u32(T_U8);
        raw.0.push(1);
        raw.str(b"\xff\xfe").u32(T_U8);
        raw.0.push(1);
        assert!(reason(&raw.data(0)).contains("metadata key #1 is not valid UTF-8"));
        let mut raw = Raw::new(0, 1);
        raw.str(b"k").u32(T_STRING).str(b"\xc3");
        assert!(reason(&raw.data(0)).contains("metadata key 'k' is not valid UTF-8"));
    }

    #[test]
    fn overlapping_and_misaligned_tensors() {
        let mut raw = Raw::new(2, 0);
        raw.tensor("a", &[16], GGML_TYPE_F32, 0);
        raw.tensor("b", &[16], GGML_TYPE_F32, 32);
        assert!(reason(&raw.data(128)).contains("'a' and 'b' overlap"));
        let mut raw = Raw::new(1, 0);
        raw.tensor("a", &[4], GGML_TYPE_F32, 4);
        assert!(reason(&raw.data(64)).contains("not a multiple of the alignment"));
    }

    #[test]
    fn duplicates() {
        let mut raw = Raw::new(2, 0);
        raw.tensor("a", &[8], GGML_TYPE_F32, 0);
        raw.tensor("a", &[8], GGML_TYPE_F32, 32);
        assert!(reason(&raw.data(64)).contains("duplicate tensor name 'a'"));
        let mut raw = Raw::new(0, 2);
        raw.str(b"k").u32(T_U32).u32(1);
        raw.str(b"k").u32(T_U32).u32(2);
        assert!(reason(&raw.data(0)).contains("duplicate metadata key 'k'"));
    }

    #[test]
    fn bad_alignment() {
        for (tag, v) in [(T_U32, 0u32), (T_U32, 48)] {
            let mut raw = Raw::new(0, 1);
            raw.str(ALIGNMENT_KEY.as_bytes()).u32(tag).u32(v);
            assert!(reason(&raw.data(0)).contains("power of two"));
        }
        let mut raw = Raw::new(0, 1);
        raw.str(ALIGNMENT_KEY.as_bytes()).u32(T_U64).u64(32);
        assert!(reason(&raw.data(0)).contains("must be u32"));
    }

    #[test]
    fn deep_arrays_and_unknown_types() {
        let mut raw = Raw::new(0, 1);
        raw.str(b"deep").u32(T_ARRAY);
        for _ in 0..MAX_ARRAY_DEPTH {
            raw.u32(T_ARRAY).u64(1);
        }
        raw.u32(T_U8).u64(0);
        assert!(reason(&raw.data(0)).contains("deeper than"));
        let mut raw = Raw::new(0, 1);
        raw.str(b"k").u32(13).u32(0);
        assert!(reason(&raw.data(0)).contains("unknown value type 13"));
        let mut raw = Raw::new(0, 1);
        raw.str(b"k").u32(T_BOOL);
        raw.0.push(2);
        assert!(reason(&raw.data(0)).contains("not 0 or 1"));
        for ty in [4, 5, 31, 43, 1000] {
            let mut raw = Raw::new(1, 0);
            raw.tensor("t", &[32], ty, 0);
            assert!(reason(&raw.data(4096)).contains("unknown or removed ggml type"));
        }
    }

    #[test]
    fn writer_refuses_what_reader_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let mixed = GgufValue::Array(GgufArray {
            elem_type: T_U8,
            values: vec![GgufValue::U8(1), GgufValue::U16(2)],
        });
        for meta in [
            vec![("k".to_string(), mixed)],
            vec![s("k", "a"), s("k", "b")],
            vec![(ALIGNMENT_KEY.to_string(), GgufValue::U32(3))],
        ] {
            let r = write_gguf(&path, &meta, &[], |_| Ok(vec![]));
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
        }
        let long = "x".repeat(64);
        let r = write_gguf(&path, &[], &[spec(&long, &[1], 0)], |_| Ok(vec![0; 4]));
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }

    /// Mutates random bytes of a valid file 2000 times: parsing must never panic, and any
    /// image that still parses must yield in-bounds tensor data.
    #[test]
    fn random_mutations_never_panic() {
        let base = sample_bytes();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut bytes = base.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = match next() % 4 {
                    0 => 0xff,
                    1 => 0,
                    _ => next() as u8,
                };
            }
            if next() % 8 == 0 {
                bytes.truncate((next() % bytes.len() as u64) as usize);
            }
            if let Ok(f) = GgufFile::from_bytes(Path::new("fuzz.gguf"), &bytes) {
                for t in &f.tensors {
                    assert_eq!(f.tensor_bytes(&bytes, t).unwrap().len() as u64, t.size);
                }
            }
        }
    }

    #[test]
    fn opens_real_smollm2() {
        // Fetched by `make models` (llmedge fetch) before the tests run.
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            path.exists(),
            "{} is missing: run `make models`",
            path.display()
        );
        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.tensors.len(), 272);
        assert_eq!(f.architecture(), Some("llama"));
        let q = f.tensor("blk.0.attn_q.weight").unwrap();
        assert_eq!(q.dims, vec![576, 576]);
        assert_eq!(f.read_tensor(q).unwrap().len() as u64, q.size);
    }
}
