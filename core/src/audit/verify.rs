//! [`verify`]: walks a log and reports every break in its chain, with where it is.
//!
//! The walk streams the log with two records of lookahead, so memory does not grow with the
//! log. Each record is checked against its own hash, then against the chain so far (`seq` one
//! more than the last accepted record, `prev` equal to its hash). How a break is classified:
//!
//! - **Modified**: the line does not hash to its `hash`; or it does (the attacker re-hashed
//!   it) but the next record's `prev` does not link to it; or it is the anchored record and
//!   differs from the anchor.
//! - **Inserted**: the records on either side of it link to each other, or it repeats a `seq`
//!   already accepted.
//! - **Deleted**: `seq` jumps forward and the missing records appear nowhere later.
//! - **Reordered**: `seq` jumps forward and the expected record comes right after, or a record
//!   reported missing turns up later (the finding is then moved to where it is).
//! - **Truncated**: the log ends before the record named by `audit.head`, or an earlier
//!   segment ends in an incomplete line.
//! - **TornTail** (a warning, not a failure): the last segment ends in an incomplete line, as
//!   a crash during a write leaves it. The records before it still verify; if the anchor names
//!   a record beyond it, that is reported as Truncated.
//! - **Malformed** (a line that is not a record), **TimestampRegressed** (`ts` earlier than
//!   the record before), **Anchor** (`audit.head` missing or unreadable).
//!
//! Several changes close together can be classified less precisely, but each one breaks a
//! check, so the log fails.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::record::check_line;
use super::{audit_error, list_segments, parse_hex32, read_head, segment_name, to_hex, HEAD_FILE};
use crate::error::Result;

/// The last durable record as recorded in `audit.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// 0 for a log without records.
    pub seq: u64,
    pub hash: String,
}

/// What is wrong at a place in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
    Truncated,
    /// A line that is not a record at all.
    Malformed,
    /// `ts` is earlier than the record before it (the writer never does that).
    TimestampRegressed,
    /// `audit.head` is missing or unreadable, so removed tail records would go unnoticed.
    Anchor,
    /// An incomplete last line, as a crash leaves it: a warning only.
    TornTail,
}

impl FindingKind {
    /// Whether this finding makes the log fail verification.
    pub fn is_failure(self) -> bool {
        self != FindingKind::TornTail
    }
}

/// One problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// File name inside the log directory (or the file given to `verify`).
    pub file: String,
    /// 1-based line number in `file`.
    pub line: Option<u64>,
    /// The record concerned: for deletions and truncations, the first missing one.
    pub seq: Option<u64>,
    /// One human sentence.
    pub detail: String,
}

/// The outcome of [`verify`]. `Display` gives the text that `llmedge audit verify` prints;
/// serialising gives its `--json` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// No failure findings (warnings allowed).
    pub ok: bool,
    pub path: PathBuf,
    /// Segments read.
    pub files: usize,
    /// Lines that parse as records, whether or not they verify.
    pub records: u64,
    /// `seq` and `hash` of the last record in the verified chain (0 and zeros if none).
    pub last_seq: u64,
    pub last_hash: String,
    /// The anchor found in `audit.head` (`None` when verifying a single file).
    pub anchor: Option<Anchor>,
    /// Records after the anchor: chained, but their removal could not be detected.
    pub unanchored: u64,
    pub findings: Vec<Finding>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let tag = if finding.kind.is_failure() {
                "FAIL"
            } else {
                "WARN"
            };
            writeln!(f, "{tag}: {finding}")?;
        }
        let failures = self.findings.iter().filter(|x| x.kind.is_failure()).count();
        if self.ok {
            write!(f, "OK: ")?;
        } else {
            write!(f, "FAIL: {failures} problem(s) in ")?;
        }
        write!(
            f,
            "{} records in {} file(s), last seq {}, last hash {}",
            self.records, self.files, self.last_seq, self.last_hash
        )?;
        match &self.anchor {
            Some(anchor) if self.unanchored > 0 => write!(
                f,
                " (anchored up to seq {}; {} newer record(s) not anchored)",
                anchor.seq, self.unanchored
            ),
            Some(_) => Ok(()),
            None => write!(f, " (no anchor checked)"),
        }
    }
}

/// Verifies a log directory (every segment and the anchor) or a single segment file (its
/// own chain only: its first record is taken as given unless it is seq 1).
///
/// `Err` only when nothing can be read; every problem in the log is a [`Finding`].
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    let path = path.as_ref();
    let meta = fs::metadata(path).map_err(|e| audit_error(path, e))?;
    let (segments, head) = if meta.is_dir() {
        let segments = list_segments(path).map_err(|e| audit_error(path, e))?;
        let head = read_head(path);
        if segments.is_empty() && matches!(head, Ok(None)) {
            return Err(audit_error(
                path,
                "no audit log here (no segments, no anchor)",
            ));
        }
        (segments, Some(head))
    } else {
        (vec![(0, path.to_path_buf())], None)
    };

    let mut walk = Walk::new(&segments, head.is_none());
    let mut findings = Vec::new();
    let anchor = match head {
        None => None,
        Some(Ok(Some(anchor))) => Some(anchor),
        Some(Ok(None)) => {
            walk.report(anchor_finding(
                "the anchor is missing: removed records at the end would go unnoticed",
            ));
            None
        }
        Some(Err(reason)) => {
            walk.report(anchor_finding(&reason));
            None
        }
    };
    walk.anchor = anchor.clone();
    walk.run()?;
    findings.append(&mut walk.findings);

    let unanchored = match &anchor {
        Some(anchor) => {
            if anchor.seq > walk.last.as_ref().map_or(0, |l| l.seq) {
                findings.push(walk.truncation(anchor.seq));
            } else if anchor.seq == 0 && anchor.hash != super::GENESIS_HASH {
                findings.push(anchor_finding(
                    "an anchor at seq 0 must hold the genesis hash",
                ));
            } else if let Some((hash, loc)) = &walk.anchored {
                if to_hex(hash) != anchor.hash {
                    findings.push(walk.finding(
                        FindingKind::Modified,
                        *loc,
                        Some(anchor.seq),
                        format!(
                            "record differs from the anchor in {HEAD_FILE}: the chain was rewritten \
                             from here or earlier"
                        ),
                    ));
                }
            }
            walk.last
                .as_ref()
                .map_or(0, |l| l.seq.saturating_sub(anchor.seq))
        }
        None => 0,
    };
    let ok = findings.iter().all(|f| !f.kind.is_failure());
    Ok(VerifyReport {
        ok,
        path: path.to_path_buf(),
        files: segments.len(),
        records: walk.records,
        last_seq: walk.last.as_ref().map_or(0, |l| l.seq),
        last_hash: walk
            .last
            .as_ref()
            .map_or_else(|| super::GENESIS_HASH.to_owned(), |l| to_hex(&l.hash)),
        anchor,
        unanchored,
        findings,
    })
}

fn anchor_finding(reason: &str) -> Finding {
    Finding {
        kind: FindingKind::Anchor,
        file: HEAD_FILE.to_owned(),
        line: None,
        seq: None,
        detail: reason.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    file: usize,
    line: u64,
}

#[derive(Clone)]
struct Rec {
    seq: u64,
    prev: [u8; 32],
    hash: [u8; 32],
    intact: bool,
    ts_ms: i64,
}

enum Body {
    Record(Rec),
    Malformed(String),
    /// An incomplete last line of a file, with its length.
    Torn(usize),
}

struct Item {
    loc: Loc,
    body: Body,
}

/// The last record accepted into the chain.
struct Last {
    loc: Loc,
    seq: u64,
    hash: [u8; 32],
    ts_ms: i64,
    /// Already reported, so a follow-on break is not reported twice.
    flagged: bool,
}

/// A run of seqs reported missing; turned into a reorder if one of them shows up later.
struct Gap {
    first: u64,
    last: u64,
    finding: usize,
    /// How many of its records turned up later.
    found: u64,
}

struct Walk<'a> {
    segments: &'a [(u32, PathBuf)],
    names: Vec<String>,
    single_file: bool,
    anchor: Option<Anchor>,
    reader: Option<(usize, BufReader<File>, u64)>,
    next_file: usize,
    window: VecDeque<Item>,
    last: Option<Last>,
    /// Hash and place of the record at the anchor's seq.
    anchored: Option<([u8; 32], Loc)>,
    /// Records skipped as out of place, so the gap they leave is not reported again.
    misplaced: BTreeSet<u64>,
    gaps: Vec<Gap>,
    /// The line after the last one of the last segment.
    end: Loc,
    /// An incomplete last line of the last segment.
    torn_at: Option<Loc>,
    records: u64,
    findings: Vec<Finding>,
}

impl<'a> Walk<'a> {
    fn new(segments: &'a [(u32, PathBuf)], single_file: bool) -> Self {
        let names = segments
            .iter()
            .map(|(_, p)| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Walk {
            segments,
            names,
            single_file,
            anchor: None,
            reader: None,
            next_file: 0,
            window: VecDeque::new(),
            last: None,
            anchored: None,
            misplaced: BTreeSet::new(),
            gaps: Vec::new(),
            end: Loc { file: 0, line: 1 },
            torn_at: None,
            records: 0,
            findings: Vec::new(),
        }
    }

    fn finding(&self, kind: FindingKind, loc: Loc, seq: Option<u64>, detail: String) -> Finding {
        Finding {
            kind,
            file: self
                .names
                .get(loc.file)
                .cloned()
                .unwrap_or_else(|| segment_name(1)),
            line: Some(loc.line),
            seq,
            detail,
        }
    }

    fn report(&mut self, finding: Finding) -> usize {
        self.findings.push(finding);
        self.findings.len() - 1
    }

    fn at(&self, loc: Loc) -> String {
        format!("{} line {}", self.names[loc.file], loc.line)
    }

    fn truncation(&self, anchored_seq: u64) -> Finding {
        let first = self.last.as_ref().map_or(0, |l| l.seq) + 1;
        self.finding(
            FindingKind::Truncated,
            self.torn_at.unwrap_or(self.end),
            Some(first),
            format!(
                "the log ends here but {HEAD_FILE} anchors seq {anchored_seq}: records \
                 {first}..={anchored_seq} were removed"
            ),
        )
    }

    /// Reads the next line of the log, across segment boundaries.
    fn read(&mut self) -> Result<Option<Item>> {
        loop {
            if self.reader.is_none() {
                let Some((_, path)) = self.segments.get(self.next_file) else {
                    return Ok(None);
                };
                let file = File::open(path).map_err(|e| audit_error(path, e))?;
                self.reader = Some((self.next_file, BufReader::with_capacity(1 << 20, file), 0));
                self.next_file += 1;
            }
            let Some((file, reader, line_no)) = self.reader.as_mut() else {
                return Ok(None);
            };
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| audit_error(&self.segments[*file].1, e))?;
            if n == 0 {
                self.end = Loc {
                    file: *file,
                    line: *line_no + 1,
                };
                self.reader = None;
                continue;
            }
            *line_no += 1;
            let loc = Loc {
                file: *file,
                line: *line_no,
            };
            if line.pop() != Some(b'\n') {
                return Ok(Some(Item {
                    loc,
                    body: Body::Torn(n),
                }));
            }
            let body = match check_line(&line) {
                Ok(c) => match DateTime::parse_from_rfc3339(&c.record.ts) {
                    Ok(ts) => {
                        self.records += 1;
                        Body::Record(Rec {
                            seq: c.record.seq,
                            prev: c.prev,
                            hash: c.hash,
                            intact: c.intact,
                            ts_ms: ts.timestamp_millis(),
                        })
                    }
                    Err(e) => Body::Malformed(format!("bad ts: {e}")),
                },
                Err(reason) => Body::Malformed(reason),
            };
            return Ok(Some(Item { loc, body }));
        }
    }

    fn run(&mut self) -> Result<()> {
        loop {
            while self.window.len() < 3 {
                match self.read()? {
                    Some(item) => self.window.push_back(item),
                    None => break,
                }
            }
            let Some(item) = self.window.pop_front() else {
                self.drop_found_gaps();
                return Ok(());
            };
            match item.body {
                Body::Record(rec) => self.record(item.loc, rec),
                Body::Malformed(reason) => {
                    let f = self.finding(
                        FindingKind::Malformed,
                        item.loc,
                        None,
                        format!("not a valid audit record: {reason}"),
                    );
                    self.report(f);
                }
                Body::Torn(bytes) => {
                    let last_file = item.loc.file + 1 == self.segments.len();
                    let f = if last_file {
                        self.torn_at = Some(item.loc);
                        self.finding(
                            FindingKind::TornTail,
                            item.loc,
                            None,
                            format!(
                                "incomplete final line ({bytes} bytes), as a crash during a write \
                                 leaves it; the records before it verify"
                            ),
                        )
                    } else {
                        self.finding(
                            FindingKind::Truncated,
                            item.loc,
                            self.last.as_ref().map(|l| l.seq + 1),
                            format!(
                                "segment ends in an incomplete line ({bytes} bytes) but later \
                                 segments follow: it was cut"
                            ),
                        )
                    };
                    self.report(f);
                }
            }
        }
    }

    fn next_records(&self) -> impl Iterator<Item = &Rec> {
        self.window
            .iter()
            .take(2)
            .filter_map(|item| match &item.body {
                Body::Record(rec) => Some(rec),
                _ => None,
            })
    }

    fn record(&mut self, loc: Loc, rec: Rec) {
        let (expected_seq, expected_prev) = match &self.last {
            Some(last) => (last.seq + 1, last.hash),
            // A lone segment may start anywhere: take its first record as given.
            None if self.single_file && rec.seq != 1 => (rec.seq, rec.prev),
            None => (1, [0; 32]),
        };
        let fits = |r: &Rec| r.seq == expected_seq && r.prev == expected_prev;
        let next = match self.window.front().map(|i| &i.body) {
            Some(Body::Record(next)) => Some(next.clone()),
            _ => None,
        };
        let at_end = self.next_records().next().is_none();
        let linked = self.next_records().any(|n| n.prev == rec.hash)
            || (at_end
                && self
                    .anchor
                    .as_ref()
                    .is_some_and(|a| a.seq == rec.seq && parse_hex32(&a.hash) == Some(rec.hash)));

        // A record reported missing turns up here: it was moved, not deleted.
        if rec.seq < expected_seq {
            if let Some(g) = self
                .gaps
                .iter()
                .position(|g| (g.first..=g.last).contains(&rec.seq))
            {
                self.gaps[g].found += 1;
                let gap = &self.gaps[g];
                let belongs = &self.findings[gap.finding];
                let detail = format!(
                    "record out of order: it belongs before {} line {}",
                    belongs.file,
                    belongs.line.unwrap_or(0)
                );
                let moved = self.finding(FindingKind::Reordered, loc, Some(rec.seq), detail);
                if gap.first == gap.last {
                    let index = gap.finding;
                    self.findings[index] = moved;
                } else {
                    self.report(moved);
                }
                return;
            }
        }
        // Its neighbours link to each other: this record was slipped in between.
        if !linked && next.as_ref().is_some_and(fits) && (!rec.intact || rec.seq <= expected_seq) {
            let f = self.finding(
                FindingKind::Inserted,
                loc,
                Some(rec.seq),
                "record inserted: the records before and after it link to each other".into(),
            );
            self.report(f);
            return;
        }
        let mut flagged = false;
        if !rec.intact {
            let f = self.finding(
                FindingKind::Modified,
                loc,
                Some(rec.seq),
                "record modified (hash mismatch)".into(),
            );
            self.report(f);
            flagged = true;
        }

        if rec.seq == expected_seq {
            if rec.prev != expected_prev {
                match &self.last {
                    Some(last) if !last.flagged => {
                        let f = self.finding(
                            FindingKind::Modified,
                            last.loc,
                            Some(last.seq),
                            format!(
                                "record modified and re-hashed: the next record ({}) does not \
                                 link to it",
                                self.at(loc)
                            ),
                        );
                        self.report(f);
                    }
                    Some(_) => {}
                    None => {
                        let f = self.finding(
                            FindingKind::Modified,
                            loc,
                            Some(rec.seq),
                            "the first record does not link to the genesis hash".into(),
                        );
                        self.report(f);
                        flagged = true;
                    }
                }
            }
        } else if rec.seq > expected_seq {
            if next.as_ref().is_some_and(fits) {
                let f = self.finding(
                    FindingKind::Reordered,
                    loc,
                    Some(rec.seq),
                    format!("record out of order: seq {expected_seq} was expected here"),
                );
                self.report(f);
                self.misplaced.insert(rec.seq);
                return;
            }
            let missing: Vec<u64> = (expected_seq..rec.seq)
                .filter(|s| !self.misplaced.remove(s))
                .collect();
            if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
                let mut detail = if first == last {
                    format!("record seq {first} is missing before this line: deleted")
                } else {
                    format!(
                        "{} records (seq {first}..={last}) are missing before this line: deleted",
                        missing.len()
                    )
                };
                if let Some(lost) = self.missing_segment(loc) {
                    detail.push_str(&format!(" ({lost} is missing)"));
                }
                let finding =
                    self.report(self.finding(FindingKind::Deleted, loc, Some(first), detail));
                self.gaps.push(Gap {
                    first,
                    last,
                    finding,
                    found: 0,
                });
            }
        } else {
            let f = self.finding(
                FindingKind::Inserted,
                loc,
                Some(rec.seq),
                format!(
                    "record repeats seq {}, already in the log: inserted",
                    rec.seq
                ),
            );
            self.report(f);
            return;
        }

        if !flagged {
            if let Some(last) = &self.last {
                if rec.ts_ms < last.ts_ms {
                    let f = self.finding(
                        FindingKind::TimestampRegressed,
                        loc,
                        Some(rec.seq),
                        format!(
                            "ts is earlier than that of the record at {}",
                            self.at(last.loc)
                        ),
                    );
                    self.report(f);
                    flagged = true;
                }
            }
        }
        if self.anchor.as_ref().is_some_and(|a| a.seq == rec.seq) {
            self.anchored = Some((rec.hash, loc));
        }
        self.last = Some(Last {
            loc,
            seq: rec.seq,
            hash: rec.hash,
            ts_ms: rec.ts_ms,
            flagged,
        });
    }

    /// A multi-record gap whose records all turned up elsewhere was a reordering, reported
    /// record by record: its deletion finding is withdrawn.
    fn drop_found_gaps(&mut self) {
        let withdrawn: BTreeSet<usize> = self
            .gaps
            .iter()
            .filter(|g| g.first != g.last && g.found == g.last - g.first + 1)
            .map(|g| g.finding)
            .collect();
        let mut index = 0;
        self.findings.retain(|_| {
            index += 1;
            !withdrawn.contains(&(index - 1))
        });
    }

    /// The segment between the last record's and this one's, if its number was skipped.
    fn missing_segment(&self, loc: Loc) -> Option<String> {
        let last = self.last.as_ref()?;
        if loc.line != 1 || self.single_file {
            return None;
        }
        let before = self.segments[last.loc.file].0;
        let here = self.segments[loc.file].0;
        (here > before + 1).then(|| segment_name(before + 1))
    }
}
