//! Audit log throughput: records/s under batched and per-record fsync, from 1 and 8 threads,
//! then the speed of `verify` over the largest log. Prints one JSON object.
//!
//! `cargo run --release --example audit_bench [DIR]`: DIR (default: the system temp dir) must
//! be on the disk to measure; on tmpfs an fsync costs nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmedge::audit::{
    verify, AuditConfig, AuditEvent, AuditLog, FsyncPolicy, ModelRef, Surface, TokenCounts,
};
use serde_json::json;

/// Batched runs write this many records; `Always` runs fewer, as each costs a disk flush.
const RECORDS: usize = 100_000;
const ALWAYS_RECORDS: usize = 5_000;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        request_id: format!("req-{i:08}"),
        tenant: format!("tenant-{}", i % 17),
        surface: Surface::Server,
        model: ModelRef {
            name: "qwen2.5-0.5b-instruct-q4_k_m".into(),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        },
        adapter_sha256: None,
        sampling: json!({"max_tokens": 256, "temperature": 0.7, "top_k": 40, "top_p": 0.95,
                         "min_p": 0.05, "repeat_penalty": 1.1, "seed": i}),
        safety: json!({"input": {"verdict": "allow", "redactions": {"email": 1, "phone": 0}},
                       "output": {"verdict": "allow", "redactions": {}}}),
        prompt: "Summarise the following support ticket. ".repeat(50),
        output: "The customer reports that the export fails. ".repeat(25),
        prompt_redacted: None,
        output_redacted: None,
        tokens: TokenCounts {
            prompt: 480,
            completion: 256,
        },
        latency_ms: 1234,
        finish_reason: "stop".into(),
        serving: None,
    }
}

fn run(base: &Path, policy: FsyncPolicy, threads: usize, records: usize) -> serde_json::Value {
    let dir = tempfile::Builder::new()
        .prefix("audit-bench")
        .tempdir_in(base)
        .expect("bench dir");
    let log = Arc::new(
        AuditLog::open(AuditConfig {
            fsync: policy,
            ..AuditConfig::new(dir.path())
        })
        .expect("open"),
    );
    let per_thread = records / threads;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    log.append(&event(t * per_thread + i)).expect("append");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    log.flush().expect("flush");
    let seconds = start.elapsed().as_secs_f64();
    drop(log);
    let written = per_thread * threads;
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    let start = Instant::now();
    let report = verify(dir.path()).expect("verify");
    let verify_seconds = start.elapsed().as_secs_f64();
    assert!(report.ok && report.last_seq == written as u64, "{report}");
    json!({
        "policy": format!("{policy:?}"),
        "threads": threads,
        "records": written,
        "seconds": round(seconds),
        "records_per_sec": (written as f64 / seconds).round(),
        "bytes_per_record": bytes / written as u64,
        "verify_records_per_sec": (written as f64 / verify_seconds).round(),
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let mut results = Vec::new();
    for threads in [1, 8] {
        for (policy, records) in [
            (FsyncPolicy::EveryRecords(1000), RECORDS),
            (FsyncPolicy::Interval(Duration::from_millis(50)), RECORDS),
            (FsyncPolicy::Always, ALWAYS_RECORDS),
        ] {
            results.push(run(&base, policy, threads, records));
        }
    }
    let out = json!({
        "bench": "audit_log",
        "dir": base,
        "target_records_per_sec": 10_000,
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
