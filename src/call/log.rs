//! One readable line per call event, on standard error:
//! `12:00:01.234 call 3a9f...@10.0.0.5: answered PCMU, RTP 10.0.0.9:40000`.
//!
//! The Call-ID is the key an operator greps for and the one the PBX logs
//! too. The time is UTC, to the millisecond.
//!
//! With [`open_json_log`] (`run --event-log FILE`) each event is also
//! appended to a file as one JSON object per line, for log shippers:
//! `{"time":"2026-11-27T12:00:01.234Z","call":"3a9f...","event":"answered ..."}`.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

static JSON_LOG: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Appends every later call event to `path` as JSON lines (created if
/// need be). Once per process.
pub fn open_json_log(path: &Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    JSON_LOG
        .set(Mutex::new(file))
        .map_err(|_| std::io::Error::other("the event log is already open"))
}

/// Writes one line about the call `call_id`.
pub fn call_log(call_id: &str, line: fmt::Arguments<'_>) {
    let now = chrono::Utc::now();
    eprintln!("{} call {call_id}: {line}", now.format("%H:%M:%S%.3f"));
    if let Some(file) = JSON_LOG.get() {
        let event = serde_json::json!({
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "call": call_id,
            "event": line.to_string(),
        });
        if let Ok(mut file) = file.lock() {
            // One write per line, so that lines of concurrent calls never
            // interleave; a full disk loses log lines, not calls.
            let _ = file.write_all(format!("{event}\n").as_bytes());
        }
    }
}
