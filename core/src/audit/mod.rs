//! Tamper-evident audit log: one JSON line per request, chained by SHA-256.
//!
//! # On disk
//!
//! A log is a directory holding:
//!
//! - `audit-000001.jsonl`, `audit-000002.jsonl`, …: segments, one [`AuditRecord`] per line.
//!   A new segment starts once the current one reaches [`AuditConfig::rotate_bytes`]; `seq`
//!   and the chain carry on across segments.
//! - `audit.head`: the anchor, `{"seq":N,"hash":"…"}`: the last record known to be durable.
//!   It is replaced atomically (temporary file, fsync, rename) only after the records it names
//!   were fsynced: at most every 100 ms while appends go on, by a background thread once they
//!   pause, and always on [`AuditLog::flush`] and drop. It may lag behind the log but is never
//!   ahead of it; [`AuditLog::open`] refuses a log that ends before its anchor.
//! - `audit.lock`: held with an OS advisory lock by the one process that writes the log.
//! - `audit-recovered-<time>.partial`: bytes of a record torn by a crash, cut off the log when
//!   it was next opened (kept for inspection, never read back).
//!
//! # The chain
//!
//! Each record carries `seq` (1, 2, … across all segments), `prev` (the `hash` of the record
//! before it; 64 zeros for the first) and `hash`. The hash is computed so that an external
//! auditor can recompute it from the bytes alone, without re-serialising JSON:
//!
//! > `hash` = lowercase hex SHA-256 of the record's line without its newline, with the final
//! > `,"hash":"<64 hex>"` removed — that is, of `line[..len - 75] + "}"`.
//!
//! The writer produces each line with `serde_json`'s compact form of [`AuditRecord`] (fields
//! in declaration order, no whitespace, `hash` last), so the line is that JSON object with
//! `hash` appended as its final member. Because the hash covers `prev`, changing, removing,
//! adding or moving any record breaks a link that [`verify`] checks.
//!
//! # What the anchor protects, and what it cannot
//!
//! Links alone cannot show that records were cut off the end of the log: a shorter chain is
//! still a valid chain. `audit.head` records the last durable record, so removing records (or
//! whole segments) up to that point is detected. Records written after the last anchor update
//! are chained but not anchored (see [`VerifyReport::unanchored`]). Someone able to rewrite the
//! whole directory, anchor included, can forge a consistent history: to rule that out, copy
//! the final hash that `verify` prints (or `audit.head`) somewhere they cannot write, such as a
//! ticket, a WORM store or another machine, and compare later.
//!
//! # Crashes
//!
//! Every record is written with one `write` of a whole line under a mutex, so threads never
//! interleave. A process killed in the middle of a write can leave only a prefix of its last
//! line (a line without its newline). [`verify`] reports that as a [`FindingKind::TornTail`]
//! warning, not a failure, and the records before it verify. [`AuditLog::open`] saves those
//! bytes to a `.partial` file, cuts them off and continues the chain from the last complete
//! record. A complete last line that fails its hash is never cut: that is tampering or disk
//! corruption, not a crash, and `open` refuses the log.
//!
//! Prompts and outputs are stored only as SHA-256 of their text; redacted text is stored only
//! when [`AuditConfig::store_redacted_text`] is set and the caller supplies it.

mod record;
mod verify;
mod writer;

pub use record::{AuditEvent, AuditRecord, ModelRef, Surface, TokenCounts, FORMAT_VERSION};
pub use verify::{verify, Anchor, Finding, FindingKind, VerifyReport};
pub use writer::{AuditConfig, AuditLog, FsyncPolicy};

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The anchor file inside a log directory.
pub const HEAD_FILE: &str = "audit.head";

const LOCK_FILE: &str = "audit.lock";

fn audit_error(path: &Path, reason: impl Display) -> Error {
    Error::Audit {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// File name of segment `n`.
fn segment_name(n: u32) -> String {
    format!("audit-{n:06}.jsonl")
}

/// The number of a segment file name, so that stray files in the directory are ignored.
fn segment_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments of a log directory, in order.
fn list_segments(dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
            segments.push((n, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Reads `audit.head`: `Ok(None)` when it does not exist, `Err(reason)` when it is unreadable.
fn read_head(dir: &Path) -> Result<Option<Anchor>, String> {
    match fs::read(dir.join(HEAD_FILE)) {
        Ok(bytes) => {
            let anchor: Anchor =
                serde_json::from_slice(&bytes).map_err(|e| format!("unreadable anchor: {e}"))?;
            if parse_hex32(&anchor.hash).is_none() {
                return Err("anchor hash is not 64 hex digits".into());
            }
            Ok(Some(anchor))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Parses 64 lowercase hex digits, the only spelling the log uses.
fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_strays_are_ignored() {
        assert_eq!(segment_name(7), "audit-000007.jsonl");
        assert_eq!(segment_number(&segment_name(7)), Some(7));
        assert_eq!(segment_number(&segment_name(1_234_567)), Some(1_234_567));
        assert_eq!(segment_number("audit-recovered-20250101.partial"), None);
        assert_eq!(segment_number("audit-12.jsonl"), None);
        assert_eq!(segment_number("audit-00000x.jsonl"), None);
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let hex = to_hex(&bytes);
        assert_eq!(parse_hex32(&hex).unwrap().to_vec(), bytes);
        assert!(parse_hex32(&hex.to_uppercase()).is_none());
        assert!(parse_hex32(GENESIS_HASH).is_some());
    }
}
