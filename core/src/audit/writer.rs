//! [`AuditLog`]: the single writer of a log directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use fs4::fs_std::FileExt;

use super::record::{check_line, AuditEvent, AuditRecord};
use super::{
    audit_error, list_segments, read_head, segment_name, Anchor, GENESIS_HASH, HEAD_FILE, LOCK_FILE,
};
use crate::error::{Error, Result};

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before `append` returns: no acknowledged record is ever lost, at one fsync per record.
    Always,
    /// After every n records; up to n − 1 acknowledged records can be lost on power failure.
    EveryRecords(u64),
    /// When this much time has passed since the last fsync, checked on append and by the
    /// background thread, so records written before an idle period still reach the disk.
    Interval(Duration),
    /// Only on [`AuditLog::flush`] and drop: for tests and logs on a disk that is itself
    /// disposable. Records survive a killed process (they are in the OS cache), not a crash of
    /// the machine.
    Never,
}

/// Where and how to write an audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The log directory (created if missing).
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Start a new segment once the current one holds this many bytes; `None` = one file.
    pub rotate_bytes: Option<u64>,
    /// Store the redacted prompt and output text that callers pass; otherwise only hashes.
    pub store_redacted_text: bool,
}

impl AuditConfig {
    /// Durable by default (fsync every record, which costs little next to a generation),
    /// 64 MiB segments, hashes only.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AuditConfig {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            rotate_bytes: Some(64 << 20),
            store_redacted_text: false,
        }
    }
}

/// How often the anchor is rewritten at most, except by `flush` and drop: it costs an fsync
/// of its own, and a slightly stale anchor only leaves the newest records unanchored. The
/// background thread catches it up after a burst, so it lags the durable log by about this.
const HEAD_INTERVAL: Duration = Duration::from_millis(100);

/// An open audit log. `Send + Sync`: share it (e.g. in an `Arc`) between all request threads.
///
/// Only one `AuditLog` per directory can be open at a time, across processes: `open` takes an
/// OS advisory lock on `audit.lock` and fails if another holder has it.
pub struct AuditLog {
    shared: Arc<Shared>,
    flusher: Option<Flusher>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir())
            .finish()
    }
}

struct Shared {
    dir: PathBuf,
    policy: FsyncPolicy,
    rotate_bytes: Option<u64>,
    store_redacted_text: bool,
    writer: Mutex<Writer>,
    /// Holds the advisory lock for as long as the log is open.
    _lock: File,
}

/// The background thread: fsyncs for [`FsyncPolicy::Interval`] and brings a stale anchor up
/// to date once appends pause. Dropping `stop` ends it.
struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

struct Writer {
    /// The segment being written; `None` until the first append into a new segment.
    file: Option<File>,
    segment: u32,
    segment_bytes: u64,
    /// Last record written (0 and genesis before the first).
    last_seq: u64,
    last_hash: String,
    last_ts: DateTime<Utc>,
    /// Last record known to be on disk, and the last one written to the anchor.
    synced_seq: u64,
    synced_hash: String,
    head_seq: u64,
    head_written: Instant,
    last_sync: Instant,
    /// Set after a failed write or fsync, when the file's state is no longer known; every
    /// later append fails instead of chaining onto a record that may not exist.
    broken: Option<String>,
    line: Vec<u8>,
}

impl AuditLog {
    /// The process-wide log for `config.dir`: opened on first use, then shared, since a
    /// directory can be held by one `AuditLog` at a time. The first caller's config wins.
    pub fn open_shared(config: AuditConfig) -> Result<Arc<AuditLog>> {
        static OPEN: Mutex<Vec<(PathBuf, Weak<AuditLog>)>> = Mutex::new(Vec::new());
        std::fs::create_dir_all(&config.dir).map_err(|e| Error::io(&config.dir, e))?;
        let key = config
            .dir
            .canonicalize()
            .map_err(|e| Error::io(&config.dir, e))?;
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, log)| log.strong_count() > 0);
        if let Some(log) = open
            .iter()
            .find(|(dir, _)| *dir == key)
            .and_then(|(_, l)| l.upgrade())
        {
            return Ok(log);
        }
        let log = Arc::new(AuditLog::open(config)?);
        open.push((key, Arc::downgrade(&log)));
        Ok(log)
    }

    /// Opens (or creates) the log in `config.dir`, recovering from a crash in the middle of a
    /// write: a torn final line is moved to `audit-recovered-<time>.partial` and the chain
    /// continues from the last complete record.
    ///
    /// Fails with [`Error::Audit`] if another process holds the log, if the anchor is missing
    /// or ahead of the log (records were removed), or if the last record fails its hash.
    pub fn open(config: AuditConfig) -> Result<AuditLog> {
        match config.fsync {
            FsyncPolicy::EveryRecords(0) => {
                return Err(Error::InvalidArgument(
                    "FsyncPolicy::EveryRecords needs at least 1 record".into(),
                ))
            }
            FsyncPolicy::Interval(d) if d.is_zero() => {
                return Err(Error::InvalidArgument(
                    "FsyncPolicy::Interval needs a non-zero interval".into(),
                ))
            }
            _ => {}
        }
        if config.rotate_bytes == Some(0) {
            return Err(Error::InvalidArgument("rotate_bytes must not be 0".into()));
        }
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| audit_error(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| audit_error(&lock_path, e))?;
        match FileExt::try_lock_exclusive(&lock) {
            Ok(true) => {}
            Ok(false) => {
                return Err(audit_error(
                    &lock_path,
                    "locked: another process (or another AuditLog) is writing this log",
                ))
            }
            Err(e) => return Err(audit_error(&lock_path, e)),
        }
        let writer = recover(&dir)?;
        let shared = Arc::new(Shared {
            dir,
            policy: config.fsync,
            rotate_bytes: config.rotate_bytes,
            store_redacted_text: config.store_redacted_text,
            writer: Mutex::new(writer),
            _lock: lock,
        });
        let flusher = Some(Flusher::spawn(&shared)?);
        Ok(AuditLog { shared, flusher })
    }

    /// Appends one record and returns it as written (with its `seq`, `ts`, `prev` and `hash`).
    /// The record is on disk when this returns if the policy is [`FsyncPolicy::Always`].
    pub fn append(&self, event: &AuditEvent) -> Result<AuditRecord> {
        // Hashing the texts and copying the event happen outside the lock.
        let mut record = AuditRecord::from_event(event, self.shared.store_redacted_text)?;
        let mut writer = self.shared.lock()?;
        writer.append(&self.shared, &mut record)?;
        Ok(record)
    }

    /// Forces every appended record to disk and updates the anchor.
    pub fn flush(&self) -> Result<()> {
        let mut writer = self.shared.lock()?;
        writer.sync(&self.shared.dir, true)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            drop(flusher.stop);
            if flusher.thread.join().is_err() {
                tracing::error!("audit log flusher thread panicked");
            }
        }
        if let Err(e) = self.flush() {
            tracing::error!("audit log: final flush failed: {e}");
        }
    }
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, Writer>> {
        self.writer.lock().map_err(|_| {
            audit_error(
                &self.dir,
                "a thread panicked while writing; reopen the log to recover",
            )
        })
    }
}

impl Flusher {
    fn spawn(shared: &Arc<Shared>) -> Result<Flusher> {
        let interval = match shared.policy {
            FsyncPolicy::Interval(d) => Some(d),
            _ => None,
        };
        let tick = interval.map_or(HEAD_INTERVAL, |d| d.min(HEAD_INTERVAL));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("llmedge-audit".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    let result = shared.lock().and_then(|mut w| {
                        if w.broken.is_some() {
                            Ok(())
                        } else if interval.is_some_and(|d| {
                            w.synced_seq < w.last_seq && w.last_sync.elapsed() >= d
                        }) {
                            w.sync(&shared.dir, false)
                        } else {
                            w.anchor(&shared.dir, false)
                        }
                    });
                    if let Err(e) = result {
                        tracing::error!("audit log: background sync failed: {e}");
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("spawning the audit fsync thread: {e}")))?;
        Ok(Flusher { stop, thread })
    }
}

impl Writer {
    fn append(&mut self, shared: &Shared, record: &mut AuditRecord) -> Result<()> {
        let dir = &shared.dir;
        if let Some(reason) = &self.broken {
            return Err(audit_error(dir, reason));
        }
        if shared
            .rotate_bytes
            .is_some_and(|limit| self.segment_bytes >= limit)
        {
            self.sync(dir, false)?;
            self.file = None;
            self.segment += 1;
            self.segment_bytes = 0;
        }
        let path = dir.join(segment_name(self.segment));
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| audit_error(&path, e))?;
                // Make the new name durable before the anchor can point past the old segment.
                sync_dir(dir).map_err(|e| audit_error(dir, e))?;
                file
            }
        };
        let file = self.file.insert(file);

        // A clock stepping back must not make `ts` decrease along the log.
        let now = Utc::now();
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let ts = now.max(self.last_ts);
        record.seq = self.last_seq + 1;
        record.prev.clone_from(&self.last_hash);
        record.ts = ts.to_rfc3339_opts(SecondsFormat::Millis, true);
        record.seal(&mut self.line)?;

        if let Err(e) = file.write_all(&self.line) {
            // Cut any partial line so the next record does not land after it.
            if let Err(cut) = file.set_len(self.segment_bytes) {
                self.broken = Some(format!(
                    "a write failed ({e}) and its partial line could not be removed ({cut})"
                ));
            }
            return Err(audit_error(&path, e));
        }
        self.segment_bytes += self.line.len() as u64;
        self.last_seq = record.seq;
        self.last_hash.clone_from(&record.hash);
        self.last_ts = ts;

        let due = match shared.policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::EveryRecords(n) => self.last_seq - self.synced_seq >= n,
            FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync(dir, false)?;
        }
        Ok(())
    }

    /// Fsyncs the segment, then rewrites the anchor if `force` or it is due. The anchor is
    /// written only after the records it names are on disk, so it is never ahead of the log.
    fn sync(&mut self, dir: &Path, force: bool) -> Result<()> {
        if let Some(reason) = &self.broken {
            return Err(audit_error(dir, reason));
        }
        if let Some(file) = &self.file {
            if self.synced_seq < self.last_seq {
                if let Err(e) = file.sync_data() {
                    // After a failed fsync the OS may have dropped the dirty pages: what is on
                    // disk is unknown, so stop rather than chain onto it.
                    self.broken = Some(format!("fsync failed: {e}"));
                    return Err(audit_error(&dir.join(segment_name(self.segment)), e));
                }
            }
        }
        self.synced_seq = self.last_seq;
        self.synced_hash.clone_from(&self.last_hash);
        self.last_sync = Instant::now();
        match self.anchor(dir, force) {
            // The records are durable: a stale anchor is retried later, not an append failure.
            Err(e) if !force => {
                tracing::warn!("audit log: could not update the anchor: {e}");
                Ok(())
            }
            result => result,
        }
    }

    /// Moves the anchor to the last synced record if `force` or it is due.
    fn anchor(&mut self, dir: &Path, force: bool) -> Result<()> {
        if self.head_seq != self.synced_seq
            && (force || self.head_written.elapsed() >= HEAD_INTERVAL)
        {
            write_head(dir, self.synced_seq, &self.synced_hash)?;
            self.head_seq = self.synced_seq;
            self.head_written = Instant::now();
        }
        Ok(())
    }
}

/// Replaces `audit.head` atomically: a reader or a crash sees the old anchor or the new one.
fn write_head(dir: &Path, seq: u64, hash: &str) -> Result<()> {
    let tmp = dir.join("audit.head.tmp");
    let anchor = Anchor {
        seq,
        hash: hash.to_owned(),
    };
    let mut bytes = serde_json::to_vec(&anchor)
        .map_err(|e| Error::Internal(format!("serialising the audit anchor: {e}")))?;
    bytes.push(b'\n');
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_data()
    };
    write().map_err(|e| audit_error(&tmp, e))?;
    let head = dir.join(HEAD_FILE);
    fs::rename(&tmp, &head).map_err(|e| audit_error(&head, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync on Windows, where NTFS journals the rename.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The writer state for an existing or new log directory; see [`AuditLog::open`].
fn recover(dir: &Path) -> Result<Writer> {
    let segments = list_segments(dir).map_err(|e| audit_error(dir, e))?;
    let head_path = dir.join(HEAD_FILE);
    let head = read_head(dir).map_err(|reason| audit_error(&head_path, reason))?;
    let now = Instant::now();
    let mut writer = Writer {
        file: None,
        segment: 1,
        segment_bytes: 0,
        last_seq: 0,
        last_hash: GENESIS_HASH.to_owned(),
        last_ts: DateTime::<Utc>::MIN_UTC,
        synced_seq: 0,
        synced_hash: GENESIS_HASH.to_owned(),
        head_seq: 0,
        head_written: now,
        last_sync: now,
        broken: None,
        line: Vec::with_capacity(1024),
    };
    let Some(head) = head else {
        if let Some((_, first)) = segments.first() {
            return Err(audit_error(
                &head_path,
                format!(
                    "the anchor is missing but {} exists: it was deleted; run `llmedge audit verify`",
                    first.display()
                ),
            ));
        }
        write_head(dir, 0, GENESIS_HASH)?;
        return Ok(writer);
    };

    if let Some((number, path)) = segments.last() {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| audit_error(path, e))?;
        let tail = read_tail(&mut file).map_err(|e| audit_error(path, e))?;
        if !tail.torn.is_empty() {
            save_torn(dir, path, &tail.torn)?;
            file.set_len(tail.complete_end)
                .map_err(|e| audit_error(path, e))?;
        }
        // What survived in the OS cache of a killed process is made durable before the anchor
        // can name it.
        file.sync_data().map_err(|e| audit_error(path, e))?;
        writer.segment = *number;
        writer.segment_bytes = tail.complete_end;
        writer.file = Some(file);
    }
    // The last record may sit in an earlier segment if a crash came right after a rotation.
    for (_, path) in segments.iter().rev() {
        let mut file = File::open(path).map_err(|e| audit_error(path, e))?;
        let tail = read_tail(&mut file).map_err(|e| audit_error(path, e))?;
        if !tail.torn.is_empty() {
            return Err(audit_error(
                path,
                "an earlier segment ends in an incomplete line; run `llmedge audit verify`",
            ));
        }
        let Some(line) = tail.last_line else { continue };
        let checked = check_line(&line).ok().filter(|c| c.intact).ok_or_else(|| {
            audit_error(
                path,
                "the last record fails its hash (tampering or disk corruption, not a crash); \
                     run `llmedge audit verify`",
            )
        })?;
        let record = checked.record;
        writer.last_seq = record.seq;
        writer.last_hash = record.hash;
        writer.last_ts = DateTime::parse_from_rfc3339(&record.ts)
            .map_err(|e| audit_error(path, format!("last record has a bad ts: {e}")))?
            .with_timezone(&Utc);
        break;
    }
    if head.seq > writer.last_seq || (head.seq == writer.last_seq && head.hash != writer.last_hash)
    {
        return Err(audit_error(
            &head_path,
            format!(
                "the anchor names record {} but the log ends at record {}: records were removed \
                 or rewritten; run `llmedge audit verify`",
                head.seq, writer.last_seq
            ),
        ));
    }
    writer.synced_seq = writer.last_seq;
    writer.synced_hash.clone_from(&writer.last_hash);
    if head.seq != writer.last_seq {
        write_head(dir, writer.last_seq, &writer.last_hash)?;
    }
    writer.head_seq = writer.last_seq;
    Ok(writer)
}

/// Keeps the bytes of a torn record: recovery must not silently lose data.
fn save_torn(dir: &Path, segment: &Path, torn: &[u8]) -> Result<()> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut attempt = 0u32;
    let (path, mut file) = loop {
        let name = match attempt {
            0 => format!("audit-recovered-{stamp}.partial"),
            n => format!("audit-recovered-{stamp}-{n}.partial"),
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => break (path, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(audit_error(&path, e)),
        }
    };
    file.write_all(torn)
        .and_then(|()| file.sync_data())
        .map_err(|e| audit_error(&path, e))?;
    tracing::warn!(
        segment = %segment.display(),
        saved = %path.display(),
        bytes = torn.len(),
        "audit log: removed an incomplete final record left by a crash"
    );
    Ok(())
}

struct Tail {
    /// Length of the file up to and including its last newline.
    complete_end: u64,
    /// The last complete line, without its newline.
    last_line: Option<Vec<u8>>,
    /// Bytes after the last newline: a record torn by a crash.
    torn: Vec<u8>,
}

/// Reads backwards from the end only as far as the last complete line, so opening a large
/// segment costs one record, not the whole file.
fn read_tail(file: &mut File) -> io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut buf = Vec::new();
    let mut chunk = 64 * 1024u64;
    loop {
        let from = start.saturating_sub(chunk);
        let mut part = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut part)?;
        part.extend_from_slice(&buf);
        buf = part;
        start = from;
        if start == 0 || buf.iter().filter(|&&b| b == b'\n').nth(1).is_some() {
            break;
        }
        chunk *= 2;
    }
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return Ok(Tail {
            complete_end: 0,
            last_line: None,
            torn: buf,
        });
    };
    let line_start = buf[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    Ok(Tail {
        complete_end: start + end as u64 + 1,
        last_line: Some(buf[line_start..end].to_vec()),
        torn: buf[end + 1..].to_vec(),
    })
}
