//! Blind transfer with REFER (RFC 3515), from both sides. As the
//! transferor: what a transfer can end in, and reading the
//! `message/sipfrag` progress reports (RFC 3420) the transferee sends back
//! in NOTIFY. As the transferee (a test caller, `AgentConfig::accept_refer`):
//! reading the Refer-To of a REFER we take, and writing the NOTIFYs that
//! report on it.
//!
//! Pure: the call state machine in [`super::call`] decides, the driver
//! sends.

use rsipstack::sip::Scheme;

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

/// Why the Refer-To of a REFER cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferToError {
    /// No Refer-To header.
    Missing,
    /// More than one Refer-To value: "exactly one" (RFC 3515 2.4.1).
    Several,
    /// The value is not a URI.
    NotAUri,
    /// A URI we cannot call: not `sip:` or `sips:`.
    UnsupportedScheme,
}

impl ReferToError {
    /// The REFER's response: 400 for a malformed request (RFC 3515
    /// 2.4.2), 416 for a scheme we cannot call (RFC 3261 21.4.14).
    pub(crate) fn status(self) -> u16 {
        match self {
            ReferToError::UnsupportedScheme => 416,
            _ => 400,
        }
    }

    /// For the log line of the response.
    pub(crate) fn why(self) -> &'static str {
        match self {
            ReferToError::Missing => "REFER without Refer-To (RFC 3515 2.4.1)",
            ReferToError::Several => "REFER with more than one Refer-To (RFC 3515 2.4.1)",
            ReferToError::NotAUri => "Refer-To is not a URI",
            ReferToError::UnsupportedScheme => "Refer-To is not a SIP URI, which is all we call",
        }
    }
}

/// The URI a REFER asks us to contact, from the values of its Refer-To
/// headers (the compact form `r` included): the `addr-spec` inside the
/// angle brackets, with its own parameters and headers
/// (`;transport=tcp`, `?Replaces=...`) but without the header's
/// parameters after `>`. Without angle brackets, everything after the
/// first `;` is a header parameter (RFC 3261 20).
pub(crate) fn refer_to_target(values: &[String]) -> Result<String, ReferToError> {
    let mut entries = values.iter().flat_map(|value| split_top_level(value));
    let entry = entries.next().ok_or(ReferToError::Missing)?;
    if entries.next().is_some() {
        return Err(ReferToError::Several);
    }
    let uri = match entry.find('<') {
        Some(open) => {
            let rest = &entry[open + 1..];
            let close = rest.find('>').ok_or(ReferToError::NotAUri)?;
            &rest[..close]
        }
        None => entry.split(';').next().unwrap_or_default(),
    }
    .trim();
    // The parser takes almost anything, a missing scheme included.
    if uri.is_empty() || uri.contains(char::is_whitespace) {
        return Err(ReferToError::NotAUri);
    }
    match rsipstack::sip::Uri::try_from(uri).map(|parsed| parsed.scheme) {
        Ok(Some(Scheme::Sip | Scheme::Sips)) => Ok(uri.to_string()),
        Ok(Some(_)) => Err(ReferToError::UnsupportedScheme),
        Ok(None) | Err(_) => Err(ReferToError::NotAUri),
    }
}

/// The comma-separated entries of a header value, ignoring commas inside
/// angle brackets and quoted display names; empty entries are dropped.
fn split_top_level(value: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut start, mut in_angle, mut in_quotes) = (0, false, false);
    for (at, c) in value.char_indices() {
        match c {
            '"' if !in_angle => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_angle && !in_quotes => {
                entries.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    entries.push(&value[start..]);
    entries.retain(|entry| !entry.trim().is_empty());
    entries
}

/// The `Content-Type` of a NOTIFY reporting on a REFER (RFC 3515 2.4.5).
pub(crate) const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// How long a refer subscription stays active after a provisional
/// report: the notifier chooses (RFC 3515 2.4.4); another report renews it.
const REFER_SUBSCRIPTION_EXPIRES: u32 = 60;

/// One NOTIFY reporting on a REFER we follow (RFC 3515 2.4.4, 2.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferReport {
    /// The `id` of the Event header: the CSeq number of the REFER, for the
    /// second and later REFERs of a dialog (RFC 3515 2.4.6).
    pub event_id: Option<u32>,
    /// The status of our request to the Refer-To target.
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
}

impl ReferReport {
    /// A final status ends the subscription (RFC 3515 2.4.5).
    pub(crate) fn is_final(&self) -> bool {
        self.status >= 200
    }

    /// The Event header value.
    pub(crate) fn event(&self) -> String {
        match self.event_id {
            Some(id) => format!("refer;id={id}"),
            None => "refer".to_string(),
        }
    }

    /// The Subscription-State header value.
    pub(crate) fn subscription_state(&self) -> String {
        if self.is_final() {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={REFER_SUBSCRIPTION_EXPIRES}")
        }
    }

    /// The `message/sipfrag` body: the status line alone. A line break in
    /// the reason would end the status line, so it becomes a space.
    pub(crate) fn sipfrag(&self) -> String {
        let reason = self.reason.replace(['\r', '\n'], " ");
        format!("SIP/2.0 {} {}\r\n", self.status, reason.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn values(list: &[&str]) -> Vec<String> {
        list.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn refer_to_keeps_uri_parameters_and_drops_header_parameters() {
        assert_eq!(
            refer_to_target(&values(&["<sip:carol@192.0.2.3:5070;transport=tcp>;x=1"])),
            Ok("sip:carol@192.0.2.3:5070;transport=tcp".to_string())
        );
        assert_eq!(
            refer_to_target(&values(&[
                "\"Carol, Sales\" <sip:carol@pbx?Replaces=a%40b>"
            ])),
            Ok("sip:carol@pbx?Replaces=a%40b".to_string())
        );
        // Without angle brackets a parameter belongs to the header.
        assert_eq!(
            refer_to_target(&values(&[" sip:carol@pbx;method=INVITE "])),
            Ok("sip:carol@pbx".to_string())
        );
    }

    #[test]
    fn refer_to_must_be_exactly_one_uri() {
        assert_eq!(refer_to_target(&[]), Err(ReferToError::Missing));
        assert_eq!(refer_to_target(&values(&[" "])), Err(ReferToError::Missing));
        assert_eq!(
            refer_to_target(&values(&["<sip:a@pbx>", "<sip:b@pbx>"])),
            Err(ReferToError::Several)
        );
        assert_eq!(
            refer_to_target(&values(&["<sip:a@pbx>, <sip:b@pbx>"])),
            Err(ReferToError::Several)
        );
        assert_eq!(
            refer_to_target(&values(&["<sip:a@pbx"])),
            Err(ReferToError::NotAUri)
        );
        assert_eq!(
            refer_to_target(&values(&["<>"])),
            Err(ReferToError::NotAUri)
        );
        assert_eq!(
            refer_to_target(&values(&["not a uri"])),
            Err(ReferToError::NotAUri)
        );
        assert_eq!(
            refer_to_target(&values(&["<carol@pbx>"])),
            Err(ReferToError::NotAUri)
        );
        assert_eq!(
            refer_to_target(&values(&["<tel:+15551234>"])),
            Err(ReferToError::UnsupportedScheme)
        );
        assert_eq!(ReferToError::UnsupportedScheme.status(), 416);
        assert_eq!(ReferToError::Several.status(), 400);
    }

    #[test]
    fn refer_reports_follow_rfc_3515() {
        let trying = ReferReport {
            event_id: None,
            status: 100,
            reason: "Trying".into(),
        };
        assert!(!trying.is_final());
        assert_eq!(trying.event(), "refer");
        assert_eq!(trying.subscription_state(), "active;expires=60");
        assert_eq!(trying.sipfrag(), "SIP/2.0 100 Trying\r\n");
        assert_eq!(sipfrag_status(trying.sipfrag().as_bytes()), Some(100));
        let done = ReferReport {
            event_id: Some(7),
            status: 486,
            reason: "Busy\r\nHere".into(),
        };
        assert!(done.is_final());
        assert_eq!(done.event(), "refer;id=7");
        assert_eq!(done.subscription_state(), "terminated;reason=noresource");
        assert_eq!(done.sipfrag(), "SIP/2.0 486 Busy  Here\r\n");
    }
}
