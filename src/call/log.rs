//! One readable line per call event, on standard error:
//! `12:00:01.234 call 3a9f...@10.0.0.5: answered PCMU, RTP 10.0.0.9:40000`.
//!
//! The Call-ID is the key an operator greps for and the one the PBX logs
//! too. The time is UTC, to the millisecond.

use std::fmt;

/// Writes one line about the call `call_id`.
pub fn call_log(call_id: &str, line: fmt::Arguments<'_>) {
    let now = chrono::Utc::now().format("%H:%M:%S%.3f");
    eprintln!("{now} call {call_id}: {line}");
}
