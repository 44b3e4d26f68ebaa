//! Blind transfer with REFER (RFC 3515): what a transfer can end in, and
//! reading the `message/sipfrag` progress reports (RFC 3420) the transferee
//! sends back in NOTIFY.
//!
//! Pure: the call state machine in [`super::call`] decides, the driver
//! sends.

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The transferee reported a 2xx from the target; we sent BYE and the
    /// call is no longer ours.
    Succeeded,
    /// The transfer did not happen; unless the reason is
    /// [`TransferFailure::CallEnded`], the call is still ours.
    Failed(TransferFailure),
}

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferFailure {
    /// The transferee answered the REFER with a final status other than
    /// 2xx, e.g. 403 or 501 (RFC 3515 2.4.2).
    #[error("the transferee refused the REFER with {status}")]
    Refused {
        /// The REFER's final status.
        status: u16,
    },
    /// The REFER got no response at all (RFC 3261 17.1.2.2 Timer F).
    #[error("the REFER got no response")]
    NoResponse,
    /// The transferee's call to the target failed with this status, as
    /// reported in a NOTIFY (RFC 3515 2.4.5).
    #[error("the transfer target answered {status}")]
    TargetFailed {
        /// The status line of the sipfrag.
        status: u16,
    },
    /// No final report came within the transfer timeout.
    #[error("no final transfer report within the timeout")]
    TimedOut,
    /// The call ended (either side hung up) before a final report.
    #[error("the call ended before the transfer completed")]
    CallEnded,
}

/// Reads the status code of a `message/sipfrag` body: its first line must
/// be a SIP status line, `SIP/2.0 200 OK` (RFC 3515 2.4.5). `None` for
/// anything else.
pub(crate) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let first = text.lines().find(|line| !line.trim().is_empty())?;
    let mut words = first.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let status: u16 = words.next()?.parse().ok()?;
    (100..700).contains(&status).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::sipfrag_status;

    #[test]
    fn reads_the_status_line_of_a_sipfrag() {
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(
            sipfrag_status(b"\r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
            Some(486)
        );
    }

    #[test]
    fn refuses_what_is_not_a_status_line() {
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(b"INVITE sip:a@b SIP/2.0"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }
}
