//! One line per rejected or dropped message, saying why.
//!
//! The crate has no logging dependency of its own (`tracing` is only
//! rsipstack's, and it does not re-export it), so the agent writes these
//! lines to standard error. Every line starts with `sip:` so an operator can
//! filter them.

use std::fmt;

/// Writes one log line to standard error.
pub(crate) fn log_line(line: fmt::Arguments<'_>) {
    eprintln!("sip: {line}");
}
