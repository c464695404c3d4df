//! `llmedge audit verify`: check a tamper-evident audit log and say where it was changed.

use std::path::PathBuf;
use std::process::exit;

use clap::Subcommand;
use llmedge::audit::verify;
use llmedge::{Error, ErrorCode};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify every record's hash, the chain across segments, sequence numbers, time order
    /// and the head anchor. Exit status 0 when intact, 42 when any record was modified,
    /// deleted, inserted, reordered or truncated (each finding gives file, line and seq).
    Verify {
        /// The log directory (or one segment file).
        path: PathBuf,
    },
}

pub fn run(cmd: &AuditCommand, json: bool) -> Result<(), Error> {
    match cmd {
        AuditCommand::Verify { path } => {
            let report = verify(path)?;
            if json {
                let text =
                    serde_json::to_string(&report).map_err(|e| Error::Internal(e.to_string()))?;
                println!("{text}");
            } else {
                println!("{report}");
            }
            if !report.ok {
                exit(ErrorCode::Audit.as_i32());
            }
            Ok(())
        }
    }
}
