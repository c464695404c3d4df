//! Audit log: round trip, one test per kind of tampering, rotation, crash recovery (including
//! a real SIGKILL in the middle of writes) and concurrent writers.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmedge::audit::{
    verify, AuditConfig, AuditEvent, AuditLog, AuditRecord, Finding, FindingKind, FsyncPolicy,
    ModelRef, Surface, TokenCounts, VerifyReport, HEAD_FILE,
};
use llmedge::ErrorCode;
use sha2::{Digest, Sha256};

const MODEL_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        request_id: format!("req-{i}"),
        tenant: "acme".into(),
        surface: Surface::Server,
        model: ModelRef {
            name: "qwen2.5-0.5b-instruct-q4_k_m".into(),
            sha256: MODEL_SHA.into(),
        },
        adapter_sha256: None,
        sampling: serde_json::json!({"temperature": 0.7, "top_p": 0.95, "seed": i}),
        safety: serde_json::json!({"verdict": "allow", "redactions": {"email": i % 3}}),
        prompt: format!("secret prompt number {i}"),
        output: format!("secret answer number {i}"),
        prompt_redacted: Some(format!("prompt [EMAIL] {i}")),
        output_redacted: Some(format!("answer {i}")),
        tokens: TokenCounts {
            prompt: 12,
            completion: 30 + i as u64,
        },
        latency_ms: 100 + i as u64,
        finish_reason: "stop".into(),
        serving: None,
    }
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        fsync: FsyncPolicy::Never,
        rotate_bytes: None,
        ..AuditConfig::new(dir)
    }
}

fn write_log(config: AuditConfig, n: usize) -> Vec<AuditRecord> {
    let log = AuditLog::open(config).unwrap();
    (1..=n).map(|i| log.append(&event(i)).unwrap()).collect()
}

fn segment(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("audit-{n:06}.jsonl"))
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// What a careful attacker does after editing a line: recompute its hash by the documented
/// rule (SHA-256 of the line minus its final `,"hash":"…"` member).
fn rehash(line: &str) -> String {
    let body = &line[..line.len() - 75];
    let hash = hex(&Sha256::digest(format!("{body}}}").as_bytes()));
    format!("{body},\"hash\":\"{hash}\"}}")
}

/// A whole record re-serialised and re-hashed, as a forger with the format spec would.
fn reseal(record: &AuditRecord) -> String {
    rehash(&serde_json::to_string(record).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn failures(report: &VerifyReport) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.kind.is_failure())
        .collect()
}

/// The one failure the report must contain, with its kind and place.
fn assert_single_failure(
    report: &VerifyReport,
    kind: FindingKind,
    file: &str,
    line: u64,
    seq: u64,
) {
    assert!(!report.ok, "tampering went unnoticed:\n{report}");
    let failures = failures(report);
    assert_eq!(failures.len(), 1, "expected one failure:\n{report}");
    let f = failures[0];
    assert_eq!(
        (f.kind, f.file.as_str(), f.line, f.seq),
        (kind, file, Some(line), Some(seq)),
        "wrong finding:\n{report}"
    );
}

const SEG1: &str = "audit-000001.jsonl";

/// A 10-record single-segment log, closed (so the anchor is at seq 10).
fn ten_records() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    write_log(config(tmp.path()), 10);
    let seg = segment(tmp.path(), 1);
    let lines = read_lines(&seg);
    assert_eq!(lines.len(), 10);
    (tmp, seg, lines)
}

#[test]
fn round_trip_verifies_and_reports_the_final_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let records = write_log(config(tmp.path()), 50);
    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert_eq!((report.records, report.last_seq, report.files), (50, 50, 1));
    assert_eq!(report.last_hash, records[49].hash);
    assert_eq!(report.anchor.as_ref().map(|a| a.seq), Some(50));
    assert_eq!(report.unanchored, 0);
    let text = report.to_string();
    assert!(text.starts_with("OK: 50 records in 1 file(s)"), "{text}");
    assert!(text.contains(&records[49].hash), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["last_hash"], records[49].hash.as_str());
}

#[test]
fn an_empty_log_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    drop(AuditLog::open(config(tmp.path())).unwrap());
    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert_eq!((report.records, report.last_seq), (0, 0));
    // A directory that holds no log is an error, not an empty success.
    let err = verify(tempfile::tempdir().unwrap().path()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Audit);
}

#[test]
fn lines_follow_the_documented_format() {
    let tmp = tempfile::tempdir().unwrap();
    let records = write_log(config(tmp.path()), 3);
    let lines = read_lines(&segment(tmp.path(), 1));
    let mut prev = "0".repeat(64);
    for (i, (line, record)) in lines.iter().zip(&records).enumerate() {
        // The line is the compact serialisation of the record, `hash` last...
        assert_eq!(line, &serde_json::to_string(record).unwrap());
        // ...and the hash is recomputable from the bytes alone.
        assert_eq!(&rehash(line), line);
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(record.prev, prev);
        prev.clone_from(&record.hash);
        // Prompt and output are stored only as hashes.
        let e = event(i + 1);
        assert!(!line.contains(&e.prompt) && !line.contains(&e.output));
        assert_eq!(
            record.prompt_sha256,
            hex(&Sha256::digest(e.prompt.as_bytes()))
        );
        assert_eq!(
            record.output_sha256,
            hex(&Sha256::digest(e.output.as_bytes()))
        );
        assert_eq!(record.prompt_redacted, None);
        assert!(
            record.ts.ends_with('Z') && record.ts.len() == 24,
            "{}",
            record.ts
        );
    }

    let opted_in = tempfile::tempdir().unwrap();
    let records = write_log(
        AuditConfig {
            store_redacted_text: true,
            ..config(opted_in.path())
        },
        1,
    );
    assert_eq!(
        records[0].prompt_redacted.as_deref(),
        Some("prompt [EMAIL] 1")
    );
    let line = &read_lines(&segment(opted_in.path(), 1))[0];
    assert!(line.contains("prompt [EMAIL] 1") && !line.contains("secret prompt"));
}

#[test]
fn bad_digests_are_rejected_and_upper_case_is_normalised() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let mut e = event(1);
    e.model.sha256 = MODEL_SHA.to_uppercase();
    e.adapter_sha256 = Some(MODEL_SHA.to_uppercase());
    let record = log.append(&e).unwrap();
    assert_eq!(record.model.sha256, MODEL_SHA);
    assert_eq!(record.adapter_sha256.as_deref(), Some(MODEL_SHA));
    e.model.sha256 = "not-a-digest".into();
    let err = log.append(&e).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("model.sha256"), "{err}");
}

#[test]
fn tamper_modified_field_is_caught_by_its_hash() {
    let (tmp, seg, mut lines) = ten_records();
    assert!(lines[4].contains("\"latency_ms\":105"));
    lines[4] = lines[4].replace("\"latency_ms\":105", "\"latency_ms\":1");
    write_lines(&seg, &lines);
    let report = verify(tmp.path()).unwrap();
    assert_single_failure(&report, FindingKind::Modified, SEG1, 5, 5);
    assert!(report
        .to_string()
        .contains("FAIL: audit-000001.jsonl line 5 (seq 5): record modified (hash mismatch)"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["findings"][0]["kind"], "modified");
}

#[test]
fn tamper_modified_and_rehashed_is_caught_by_the_next_link() {
    let (tmp, seg, mut lines) = ten_records();
    lines[4] = rehash(&lines[4].replace("\"tenant\":\"acme\"", "\"tenant\":\"evil\""));
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Modified,
        SEG1,
        5,
        5,
    );
}

#[test]
fn tamper_modified_last_record_is_caught_by_the_anchor() {
    let (tmp, seg, mut lines) = ten_records();
    lines[9] = rehash(&lines[9].replace("\"tenant\":\"acme\"", "\"tenant\":\"evil\""));
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Modified,
        SEG1,
        10,
        10,
    );
}

#[test]
fn tamper_deleted_record() {
    let (tmp, seg, mut lines) = ten_records();
    lines.remove(4);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Deleted,
        SEG1,
        5,
        5,
    );
}

#[test]
fn tamper_deleted_record_with_the_rest_renumbered_and_rehashed() {
    // Rewriting everything after the deletion keeps the links valid; the anchor still
    // names seq 10, which no longer exists.
    let (tmp, seg, mut lines) = ten_records();
    lines.remove(4);
    let mut prev = serde_json::from_str::<AuditRecord>(&lines[3]).unwrap().hash;
    for line in &mut lines[4..] {
        let mut r: AuditRecord = serde_json::from_str(line).unwrap();
        r.seq -= 1;
        r.prev = prev;
        *line = reseal(&r);
        prev = serde_json::from_str::<AuditRecord>(line).unwrap().hash;
    }
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Truncated,
        SEG1,
        10,
        10,
    );
}

#[test]
fn tamper_inserted_forged_record() {
    // A careful forgery: right seq, right prev, valid hash, slipped in before the original.
    let (tmp, seg, mut lines) = ten_records();
    let forged = rehash(&lines[4].replace("\"request_id\":\"req-5\"", "\"request_id\":\"forged\""));
    lines.insert(4, forged);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Inserted,
        SEG1,
        5,
        5,
    );
}

#[test]
fn tamper_inserted_forged_record_after_its_original() {
    let (tmp, seg, mut lines) = ten_records();
    let forged = rehash(&lines[4].replace("\"request_id\":\"req-5\"", "\"request_id\":\"forged\""));
    lines.insert(5, forged);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Inserted,
        SEG1,
        6,
        5,
    );
}

#[test]
fn tamper_inserted_replayed_or_crude_records() {
    // A verbatim replay of record 3, then an edited copy with a stale hash.
    let (tmp, seg, mut lines) = ten_records();
    let replay = lines[2].clone();
    lines.insert(7, replay);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Inserted,
        SEG1,
        8,
        3,
    );

    let (tmp, seg, mut lines) = ten_records();
    let crude = lines[2].replace("\"tenant\":\"acme\"", "\"tenant\":\"evil\"");
    lines.insert(7, crude);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Inserted,
        SEG1,
        8,
        3,
    );
}

#[test]
fn tamper_reordered_records() {
    let (tmp, seg, mut lines) = ten_records();
    lines.swap(3, 4);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Reordered,
        SEG1,
        4,
        5,
    );

    // A record moved far down is reported where it now is.
    let (tmp, seg, mut lines) = ten_records();
    let moved = lines.remove(2);
    lines.insert(7, moved);
    write_lines(&seg, &lines);
    assert_single_failure(
        &verify(tmp.path()).unwrap(),
        FindingKind::Reordered,
        SEG1,
        8,
        3,
    );

    // Several records moved: each is reported, and no deletion is claimed.
    let (tmp, seg, mut lines) = ten_records();
    lines.swap(2, 6);
    write_lines(&seg, &lines);
    let report = verify(tmp.path()).unwrap();
    assert!(!report.ok);
    assert!(
        failures(&report)
            .iter()
            .all(|f| f.kind == FindingKind::Reordered),
        "{report}"
    );
}

#[test]
fn tamper_truncated_mid_record() {
    let (tmp, seg, lines) = ten_records();
    let keep: usize = lines[..6].iter().map(|l| l.len() + 1).sum::<usize>() + lines[6].len() / 2;
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, &bytes[..keep]).unwrap();
    let report = verify(tmp.path()).unwrap();
    assert_single_failure(&report, FindingKind::Truncated, SEG1, 7, 7);
    assert!(report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::TornTail && f.line == Some(7)));
    assert_eq!(report.last_seq, 6);
}

#[test]
fn tamper_deleted_last_records_is_caught_by_the_anchor() {
    let (tmp, seg, lines) = ten_records();
    write_lines(&seg, &lines[..7]);
    let report = verify(tmp.path()).unwrap();
    assert_single_failure(&report, FindingKind::Truncated, SEG1, 8, 8);
    // The writer refuses to continue a log whose anchor is ahead of it.
    let err = AuditLog::open(config(tmp.path())).expect_err("open must refuse");
    assert_eq!(err.code(), ErrorCode::Audit);
    assert!(err.to_string().contains(HEAD_FILE), "{err}");
}

#[test]
fn tamper_deleted_anchor() {
    let (tmp, _, _) = ten_records();
    fs::remove_file(tmp.path().join(HEAD_FILE)).unwrap();
    let report = verify(tmp.path()).unwrap();
    assert!(!report.ok);
    assert_eq!(failures(&report).len(), 1, "{report}");
    assert_eq!(failures(&report)[0].kind, FindingKind::Anchor);
    let err = AuditLog::open(config(tmp.path())).expect_err("open must refuse");
    assert_eq!(err.code(), ErrorCode::Audit);
}

fn rotating(dir: &Path) -> AuditConfig {
    AuditConfig {
        rotate_bytes: Some(4096),
        ..config(dir)
    }
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let records = write_log(rotating(tmp.path()), 40);
    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert!(report.files >= 3, "{report}");
    assert_eq!(report.last_hash, records[39].hash);
    for n in 1..report.files as u32 {
        let last = read_lines(&segment(tmp.path(), n)).pop().unwrap();
        let first = &read_lines(&segment(tmp.path(), n + 1))[0];
        let last: AuditRecord = serde_json::from_str(&last).unwrap();
        let first: AuditRecord = serde_json::from_str(first).unwrap();
        assert_eq!((first.seq, &first.prev), (last.seq + 1, &last.hash));
    }
    // Reopening continues the same chain.
    let log = AuditLog::open(rotating(tmp.path())).unwrap();
    let next = log.append(&event(41)).unwrap();
    assert_eq!(
        (next.seq, next.prev.as_str()),
        (41, records[39].hash.as_str())
    );
    drop(log);
    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert_eq!(report.last_seq, 41);
    // A single segment verifies on its own.
    let report = verify(segment(tmp.path(), 2)).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
}

#[test]
fn tamper_deleted_middle_segment() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(rotating(tmp.path()), 40);
    let seg2 = segment(tmp.path(), 2);
    let first_missing: AuditRecord = serde_json::from_str(&read_lines(&seg2)[0]).unwrap();
    fs::remove_file(&seg2).unwrap();
    let report = verify(tmp.path()).unwrap();
    assert_single_failure(
        &report,
        FindingKind::Deleted,
        "audit-000003.jsonl",
        1,
        first_missing.seq,
    );
    assert!(
        failures(&report)[0].detail.contains("audit-000002.jsonl"),
        "{report}"
    );
}

#[test]
fn torn_final_line_is_a_warning_and_is_recovered_on_open() {
    let (tmp, seg, lines) = ten_records();
    // Half a record, as a crash in the middle of a write leaves it.
    let torn = &lines[3][..lines[3].len() / 2];
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(torn.as_bytes());
    fs::write(&seg, &bytes).unwrap();

    let report = verify(tmp.path()).unwrap();
    assert!(report.ok, "{report}");
    assert_eq!(report.findings.len(), 1, "{report}");
    assert_eq!(
        (report.findings[0].kind, report.findings[0].line),
        (FindingKind::TornTail, Some(11))
    );
    assert_eq!(report.last_seq, 10);
    assert!(
        report
            .to_string()
            .starts_with("WARN: audit-000001.jsonl line 11"),
        "{report}"
    );

    let log = AuditLog::open(config(tmp.path())).unwrap();
    let partials: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "partial"))
        .collect();
    assert_eq!(partials.len(), 1);
    assert_eq!(fs::read(&partials[0]).unwrap(), torn.as_bytes());
    for i in 11..=15 {
        assert_eq!(log.append(&event(i)).unwrap().seq, i as u64);
    }
    drop(log);
    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert_eq!(report.last_seq, 15);
}

#[test]
fn a_complete_but_corrupt_last_line_is_never_cut() {
    let (tmp, seg, mut lines) = ten_records();
    lines[9] = lines[9].replace("\"tenant\":\"acme\"", "\"tenant\":\"evil\"");
    write_lines(&seg, &lines);
    let err = AuditLog::open(config(tmp.path())).expect_err("open must refuse");
    assert_eq!(err.code(), ErrorCode::Audit);
    assert_eq!(read_lines(&seg), lines);
}

#[test]
fn a_second_writer_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let err = AuditLog::open(config(tmp.path())).expect_err("second open must fail");
    assert_eq!(err.code(), ErrorCode::Audit);
    assert!(err.to_string().contains("audit.lock"), "{err}");
    drop(log);
    AuditLog::open(config(tmp.path())).unwrap();
}

#[test]
fn interval_policy_syncs_after_an_idle_period() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig {
        fsync: FsyncPolicy::Interval(Duration::from_millis(20)),
        ..config(tmp.path())
    })
    .unwrap();
    for i in 1..=3 {
        log.append(&event(i)).unwrap();
    }
    let head = tmp.path().join(HEAD_FILE);
    let deadline = Instant::now() + Duration::from_secs(5);
    // The background thread fsyncs and then moves the anchor, with no further appends.
    while !fs::read_to_string(&head).unwrap().contains("\"seq\":3,") {
        assert!(Instant::now() < deadline, "anchor never advanced");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn concurrent_writers_never_interleave() {
    fn shareable<T: Send + Sync>() {}
    shareable::<AuditLog>();
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(
        AuditLog::open(AuditConfig {
            fsync: FsyncPolicy::EveryRecords(64),
            rotate_bytes: Some(256 << 10),
            ..config(tmp.path())
        })
        .unwrap(),
    );
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| log.append(&event(t * 1000 + i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    drop(log);
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8000).collect::<Vec<_>>());

    let report = verify(tmp.path()).unwrap();
    assert!(report.ok && report.findings.is_empty(), "{report}");
    assert_eq!(report.last_seq, 8000);
    let mut expected = 1;
    for n in 1..=report.files as u32 {
        for line in read_lines(&segment(tmp.path(), n)) {
            let r: AuditRecord = serde_json::from_str(&line).expect("every line is one record");
            assert_eq!(r.seq, expected);
            expected += 1;
        }
    }
    assert_eq!(expected, 8001);
}

const CHILD_ENV: &str = "LLMEDGE_AUDIT_CHILD";

/// Runs in the child process: append large records (so one write spans many pages and a kill
/// can land inside it) until killed, or for at most a minute if the parent is gone.
fn child_writer(dir: &Path) {
    let log = AuditLog::open(AuditConfig {
        fsync: FsyncPolicy::Always,
        rotate_bytes: Some(2 << 20),
        store_redacted_text: true,
        ..AuditConfig::new(dir)
    })
    .unwrap();
    let started = Instant::now();
    for i in 0.. {
        let mut e = event(i);
        e.output_redacted = Some("x".repeat(1000 + (i * 7919) % 2_000_000));
        log.append(&e).unwrap();
        if started.elapsed() > Duration::from_secs(60) {
            return;
        }
    }
}

/// Whether the newest segment ends inside a line, i.e. a write is under way.
fn mid_write(dir: &Path) -> bool {
    let newest = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max();
    let mut last = [b'\n'];
    if let Some(mut file) = newest.and_then(|p| fs::File::open(p).ok()) {
        // An empty or vanished file reads as "no write under way".
        let _ = file
            .seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last));
    }
    last[0] != b'\n'
}

fn log_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn kill_during_write_leaves_a_log_that_verifies_and_continues() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_writer(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut torn_tails = 0;
    for round in 0..5u64 {
        let before = log_bytes(dir);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_during_write_leaves_a_log_that_verifies_and_continues",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it write a varying amount, then kill it: on even rounds wherever it is, on odd
        // rounds (for up to 2 s) as soon as a write is seen under way.
        let target = before + (1 << 20) + round * 313_579;
        let deadline = Instant::now() + Duration::from_secs(60);
        while log_bytes(dir) < target {
            assert!(Instant::now() < deadline, "child wrote nothing");
            assert!(child.try_wait().unwrap().is_none(), "child exited early");
            std::thread::sleep(Duration::from_millis(1));
        }
        let aim_until = Instant::now() + Duration::from_secs(2);
        while round % 2 == 1 && Instant::now() < aim_until && !mid_write(dir) {}
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let report = verify(dir).unwrap();
        assert!(report.ok, "round {round}:\n{report}");
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.kind == FindingKind::TornTail),
            "round {round}:\n{report}"
        );
        torn_tails += usize::from(!report.findings.is_empty());
        let killed_at = report.last_seq;
        assert!(killed_at > 0);

        let log = AuditLog::open(AuditConfig::new(dir)).unwrap();
        for i in 0..3 {
            let r = log.append(&event(i)).unwrap();
            assert_eq!(r.seq, killed_at + 1 + i as u64);
        }
        drop(log);
        let report = verify(dir).unwrap();
        assert!(
            report.ok && report.findings.is_empty(),
            "round {round}:\n{report}"
        );
        assert_eq!(report.last_seq, killed_at + 3);
    }
    eprintln!("torn tails recovered: {torn_tails} of 5 kills");
}
