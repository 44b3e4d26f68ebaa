//! What a transport does with one received message before rsipstack sees
//! it, whatever the transport: the verdict of [`validate::check`] turned
//! into an action, and the one log line that says why a message goes no
//! further.
//!
//! No network I/O here (only the log line): `udp.rs` and `tcp.rs` send the
//! answers and hand the rest on to the stack.
//!
//! - A well-formed message is delivered.
//! - A malformed request gets its precise answer (400, 416, 420, 415, 406,
//!   505), an unknown method 501 with `Allow` (RFC 3261 8.2.1); rsipstack
//!   drops what its parser refuses without a word and cannot represent
//!   extension methods at all.
//! - A malformed response is dropped (RFC 3261 18.1.2), as is a malformed
//!   ACK (never answered) or a request with no Via to answer along.
//!
//! What is delivered is the message as `validate` parsed it (folding
//! joined, the body cut at Content-Length), made fit for rsipstack, which
//! cannot match a request to a transaction without a From tag it can read
//! ([`for_the_stack`]). A request it still could not match is answered 400
//! here rather than dropped by the stack without a word.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use rsipstack::sip::{
    Contact, ContentLength, From, HasHeaders, Header, HeadersExt, SipMessage, To, Transport, Via,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};

use super::log::log_line;
use super::policy::ALLOW;
use crate::sip::validate::{self, Accepted, Verdict};

/// What to do with one received message.
pub(crate) enum Screened {
    /// Well formed: hand it to the stack.
    Deliver(Box<SipMessage>),
    /// Goes no further: send these bytes (a stateless response) back to
    /// the sender.
    Answer(Vec<u8>),
    /// Goes no further and nothing is sent.
    Discard,
}

/// Judges `bytes`, one message received from `from` over `transport`,
/// and logs one line for anything that is not delivered.
pub(crate) fn screen(bytes: &[u8], from: SocketAddr, transport: Transport) -> Screened {
    match validate::check(bytes) {
        Verdict::Accept(Accepted::Message(mut message)) => {
            for_the_stack(&mut message);
            if let SipMessage::Request(request) = message.as_ref() {
                // The stack drops, unseen, a request it cannot key.
                if let Err(error) = TransactionKey::from_request(request, TransactionRole::Server) {
                    return refuse(
                        bytes,
                        Refusal {
                            status: 400,
                            reason: &format!(
                                "the SIP stack cannot match it to a transaction: {error}"
                            ),
                            allow: false,
                        },
                        "request",
                        from,
                        transport,
                    );
                }
            }
            Screened::Deliver(message)
        }
        Verdict::Accept(Accepted::Extension(request)) => refuse(
            bytes,
            Refusal {
                status: 501,
                reason: "unknown method (RFC 3261 8.2.1)",
                allow: true,
            },
            &request.method,
            from,
            transport,
        ),
        Verdict::Reject { status, reason } => refuse(
            bytes,
            Refusal {
                status,
                reason: &reason,
                allow: false,
            },
            "request",
            from,
            transport,
        ),
        Verdict::Drop { reason } => {
            log_line(format_args!(
                "message from {from} over {transport} dropped: {reason}"
            ));
            Screened::Discard
        }
    }
}

/// A request turned away before the stack: the status and why.
pub(crate) struct Refusal<'a> {
    pub status: u16,
    /// One line for the log, with the RFC section.
    pub reason: &'a str,
    /// Whether the answer lists the methods we allow (501, 405).
    pub allow: bool,
}

/// Builds the stateless answer (RFC 3261 8.2.6) that refuses `bytes`
/// (called `what` in the log line), and logs it; [`Screened::Discard`]
/// when the bytes cannot be answered (a response, an ACK, no Via).
pub(crate) fn refuse(
    bytes: &[u8],
    refusal: Refusal<'_>,
    what: &str,
    from: SocketAddr,
    transport: Transport,
) -> Screened {
    let Refusal {
        status,
        reason,
        allow,
    } = refusal;
    let extra: &[(&str, &str)] = if allow { &[("Allow", ALLOW)] } else { &[] };
    let tag = rsipstack::transaction::random_text(10);
    match validate::reject_response(bytes, status, &tag, extra) {
        Some(response) => {
            log_line(format_args!(
                "{what} from {from} over {transport} answered {status}: {reason}"
            ));
            Screened::Answer(response)
        }
        None => {
            log_line(format_args!(
                "{what} from {from} over {transport} dropped, no {status} can be sent: {reason}"
            ));
            Screened::Discard
        }
    }
}

/// Makes a well-formed message fit for rsipstack's parser and transaction
/// matching, without changing what it means:
///
/// - SWS around `;` and `=` in the parameters of From, To, Via and Contact
///   (`;  tag = 98asjd8`, RFC 3261 25.1 SEMI and EQUAL, RFC 4475 3.1.1.1)
///   is removed: rsip does not read parameters so written, and a From tag
///   it cannot read makes the request unmatchable, a To tag it cannot read
///   makes a request in a dialog look like a new one.
/// - A request without a From tag (RFC 2543, RFC 4475 3.4.1) gets one made
///   from its Call-ID and From, the same for every request of that call, so
///   the stack can match it; RFC 3261 12.1.1 has a UAS treat the missing tag
///   as null, and an RFC 2543 peer ignores parameters it did not send when
///   it compares From fields.
/// - A datagram's body without Content-Length (it runs to the end of the
///   datagram, RFC 3261 18.3) gets its Content-Length, which rsip needs to
///   keep the body.
fn for_the_stack(message: &mut SipMessage) {
    let (is_request, body_len) = match message {
        SipMessage::Request(request) => (true, request.body.len()),
        SipMessage::Response(response) => (false, response.body.len()),
    };
    let call_id = message
        .call_id_header()
        .map(|h| h.value().to_string())
        .unwrap_or_default();
    let headers = message.headers_mut();
    let mut has_content_length = false;
    for header in headers.iter_mut() {
        match header {
            Header::From(from) => {
                let mut value = tighten_params(from.value());
                if is_request && !has_param(&value, "tag") {
                    let mut hasher = std::hash::DefaultHasher::new();
                    (&call_id, &value).hash(&mut hasher);
                    value = format!("{value};tag=null-{:016x}", hasher.finish());
                }
                *from = From::new(value);
            }
            Header::To(to) => *to = To::new(tighten_params(to.value())),
            Header::Via(via) => *via = Via::new(tighten_params(via.value())),
            Header::Contact(contact) => *contact = Contact::new(tighten_params(contact.value())),
            Header::ContentLength(_) => has_content_length = true,
            _ => {}
        }
    }
    if !has_content_length && body_len > 0 {
        let len = u32::try_from(body_len).unwrap_or(u32::MAX);
        headers.push(Header::ContentLength(ContentLength::from(len)));
    }
}

/// `value` without whitespace next to `;` or `=` outside quoted strings
/// and `<...>`.
fn tighten_params(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut quoted = false;
    let mut escaped = false;
    let mut bracketed = false;
    let mut pending_space = String::new();
    for c in value.chars() {
        if quoted {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if bracketed {
            out.push(c);
            bracketed = c != '>';
            continue;
        }
        if c == ' ' || c == '\t' {
            pending_space.push(c);
            continue;
        }
        let joins = matches!(c, ';' | '=') || out.ends_with([';', '=']);
        if !joins {
            out.push_str(&pending_space);
        }
        pending_space.clear();
        out.push(c);
        match c {
            '"' => quoted = true,
            '<' => bracketed = true,
            _ => {}
        }
    }
    out.push_str(&pending_space);
    out.trim_end().to_string()
}

/// Whether a header value has the parameter `name` after its URI.
fn has_param(value: &str, name: &str) -> bool {
    let params = value.rsplit_once('>').map_or(value, |(_, after)| after);
    params
        .split(';')
        .skip(if value.contains('>') { 0 } else { 1 })
        .any(|param| {
            param
                .split('=')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_around_semi_and_equal_goes_outside_quotes_and_brackets() {
        assert_eq!(
            tighten_params(r#""J Rosenberg \\\"" <sip:a@b;x = 1> ; tag = 98asjd8"#),
            r#""J Rosenberg \\\"" <sip:a@b;x = 1>;tag=98asjd8"#
        );
        assert_eq!(
            tighten_params("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
            "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
        );
        assert_eq!(
            tighten_params("\"a ; b\" <sip:x> ;q = 0.5 "),
            "\"a ; b\" <sip:x>;q=0.5"
        );
        assert_eq!(
            tighten_params("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"),
            "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"
        );
    }

    #[test]
    fn a_from_tag_is_found_only_after_the_uri() {
        assert!(has_param("<sip:a@b>;tag=1", "tag"));
        assert!(has_param("sip:a@b;tag=1", "tag"));
        assert!(!has_param("<sip:a@b;tag=1>", "tag"));
        assert!(!has_param("sip:a@b", "tag"));
        assert!(!has_param(
            "<sip:+1303@ift.client.example.net;user=phone>",
            "tag"
        ));
    }

    fn delivered(text: &[u8]) -> Box<SipMessage> {
        match screen(text, "127.0.0.1:5060".parse().unwrap(), Transport::Udp) {
            Screened::Deliver(message) => message,
            Screened::Answer(answer) => panic!("answered {}", String::from_utf8_lossy(&answer)),
            Screened::Discard => panic!("discarded"),
        }
    }

    #[test]
    fn a_request_without_from_tag_or_content_length_is_made_fit_for_the_stack() {
        let invite = b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP gw.example.com\r\n\
            From: <sip:a@example.net;user=phone>\r\nTo: sip:b@example.com\r\n\
            Call-ID: c1@gw\r\nCSeq: 1 INVITE\r\nContact: <sip:a@gw.example.com>\r\n\
            Content-Type: application/sdp\r\n\r\nv=0\r\n";
        let first = delivered(invite);
        let second = delivered(invite);
        let tag = |m: &SipMessage| m.from_header().unwrap().tag().unwrap();
        assert!(tag(&first).is_some());
        assert_eq!(tag(&first), tag(&second));
        // What the stack reads back keeps the body the datagram carried.
        let SipMessage::Request(reread) = SipMessage::try_from(first.to_bytes()).unwrap() else {
            panic!("a request");
        };
        assert_eq!(reread.body, b"v=0\r\n");
    }
}
