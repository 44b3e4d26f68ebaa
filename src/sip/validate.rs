//! The checks a received SIP message passes before it reaches the
//! transaction and dialog layers: they decide whether it is handled,
//! answered with an error at once, or dropped (RFC 3261 8.2, 18.3; the
//! cases of RFC 4475).
//!
//! Contract: [`check`] takes the bytes of one message, as one UDP datagram
//! or as framed by a stream transport, and never panics, whatever the
//! bytes. It returns a [`Verdict`]:
//!
//! - [`Verdict::Accept`]: well formed; go on.
//! - [`Verdict::Reject`]: a request to answer at once with `status`;
//!   [`reject_response`] builds that answer from the same bytes, since a
//!   malformed request is often beyond the SIP parser.
//! - [`Verdict::Drop`]: a malformed response (discarded, RFC 4475 3.1.2),
//!   a malformed ACK (never answered), a request with no Via to answer
//!   along, or a keep-alive.
//!
//! Methods are not judged here: an unknown or unsupported method is
//! accepted and answered 405/501 by the dialog layer (RFC 3261 8.2.1).
//! The checks run in RFC 3261 8.2 order: syntax (400, 505), then the
//! Request-URI scheme (416, 8.2.2.1), extensions (420, 8.2.2.3) and
//! content (415, 8.2.3; 406 for an Accept without SDP).
//!
//! Parsing uses rsipstack's parser for the final message, with checks it
//! does not make done here first: it takes any Content-Length that does not
//! parse as 0, keeps no body without Content-Length, stops reading headers
//! at the first line that is not UTF-8, cannot represent extension methods,
//! and does not look inside header values at all.

use rsipstack::sip::{SipMessage, StatusCode};

/// Option tags (RFC 3261 8.2.2.3) the agent implements; a request that
/// requires any other is answered 420 Bad Extension.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// The methods rsipstack's parser represents; others are extension methods.
/// Method names are case-sensitive (RFC 3261 7.1).
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Methods whose body we read as a session description.
const SDP_METHODS: &[&str] = &["INVITE", "UPDATE", "PRACK"];

/// How to treat a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well formed: hand it on.
    Accept(Accepted),
    /// A request to answer with `status` and go no further.
    Reject {
        /// 400, 416, 420, 415, 406 or 505.
        status: u16,
        /// One line for the log: what is wrong, with the RFC section.
        reason: String,
    },
    /// Discard silently (after logging `reason`).
    Drop {
        /// One line for the log.
        reason: String,
    },
}

/// A message that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A request or response in rsipstack's types.
    Message(Box<SipMessage>),
    /// A well-formed request with a method rsipstack cannot represent
    /// (RFC 3261 8.2.1: the dialog layer answers it 501 or 405).
    Extension(ExtensionRequest),
}

/// A request with an extension method, in the raw form [`check`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionRequest {
    /// The method, case preserved.
    pub method: String,
    /// The Request-URI text.
    pub uri: String,
    /// Header fields in order, continuation lines joined: (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, Content-Length octets when given.
    pub body: Vec<u8>,
}

/// Judges one received message. See the module documentation.
pub fn check(bytes: &[u8]) -> Verdict {
    let Some(raw) = frame(bytes) else {
        return Verdict::Drop {
            reason: "keep-alive: no message, only line breaks (RFC 5626 3.5.1)".into(),
        };
    };
    if is_status_line(&raw.start_line) {
        return match check_response(&raw) {
            Ok(message) => Verdict::Accept(Accepted::Message(message)),
            Err(defect) => Verdict::Drop {
                reason: one_line(&format!("malformed response dropped: {defect}")),
            },
        };
    }
    match check_request(&raw) {
        Ok(accepted) => Verdict::Accept(accepted),
        Err(defect) => {
            let reason = one_line(&defect.to_string());
            if raw.start_line.split(' ').next() == Some("ACK") {
                Verdict::Drop {
                    reason: format!("{reason}; an ACK is never answered (RFC 3261 17)"),
                }
            } else if raw.count("Via") == 0 {
                Verdict::Drop {
                    reason: format!("{reason}; no Via to send a response along (RFC 3261 18.2.2)"),
                }
            } else {
                Verdict::Reject {
                    status: defect.status(),
                    reason,
                }
            }
        }
    }
}

/// Builds the response that rejects a request statelessly (RFC 3261
/// 8.2.6): Via, From, To (with `to_tag` added when it has none), Call-ID
/// and CSeq copied from `bytes`; `Unsupported` for 420 and `Accept` for 415
/// added from the request; then `extra_headers` (such as `Allow` for 405).
/// `None` when `bytes` are not a request that can be answered: no Via, a
/// response, or an ACK.
pub fn reject_response(
    bytes: &[u8],
    status: u16,
    to_tag: &str,
    extra_headers: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let raw = frame(bytes)?;
    if is_status_line(&raw.start_line)
        || raw.start_line.split(' ').next() == Some("ACK")
        || raw.count("Via") == 0
    {
        return None;
    }
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason_phrase(status));
    for field in &raw.headers {
        match field.canonical {
            Some(name @ ("Via" | "From" | "Call-ID" | "CSeq")) => {
                out.push_str(&format!("{name}: {}\r\n", field.value));
            }
            Some("To") => {
                let has_tag = parse_address(&field.value)
                    .map(|a| a.params.iter().any(|(n, _)| n.eq_ignore_ascii_case("tag")))
                    .unwrap_or(true);
                if has_tag || to_tag.is_empty() {
                    out.push_str(&format!("To: {}\r\n", field.value));
                } else {
                    out.push_str(&format!("To: {};tag={to_tag}\r\n", field.value));
                }
            }
            _ => {}
        }
    }
    if status == 420 {
        let unsupported = unsupported_extensions(&raw);
        if !unsupported.is_empty() {
            out.push_str(&format!("Unsupported: {}\r\n", unsupported.join(", ")));
        }
    }
    if status == 415 {
        // RFC 3261 21.4.13: list what we do accept.
        out.push_str("Accept: application/sdp\r\nAccept-Encoding: identity\r\n");
    }
    for (name, value) in extra_headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// The standard reason phrase of a status (RFC 3261 21), from rsipstack's
/// table; the class name for codes it does not know.
fn reason_phrase(status: u16) -> String {
    match StatusCode::try_from((status, "")) {
        Ok(code) if !code.text().is_empty() => code.text().to_string(),
        _ => match status / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        }
        .to_string(),
    }
}

/// Why a message fails. Each variant's text is the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Defect {
    #[error("no empty line ends the header section (RFC 3261 7)")]
    Unterminated,
    #[error("start line: {0}")]
    StartLine(&'static str),
    #[error("SIP version {0} is not supported (RFC 3261 21.5.7, RFC 4475 3.1.2.16)")]
    Version(String),
    #[error("header line {line}: {problem} (RFC 3261 7.3)")]
    HeaderLine { line: usize, problem: &'static str },
    #[error("missing mandatory headers: {0} (RFC 3261 8.1.1)")]
    Missing(String),
    #[error("single-value headers repeated: {0} (RFC 3261 7.3.1)")]
    Repeated(String),
    #[error("{header}: {problem}")]
    Value {
        header: &'static str,
        problem: &'static str,
    },
    #[error(
        "Content-Length {declared} exceeds the {available} body bytes received (RFC 3261 18.3)"
    )]
    ContentLength { declared: String, available: usize },
    #[error("CSeq method {cseq} does not match request method {method} (RFC 3261 8.1.1.5)")]
    CSeqMismatch { cseq: String, method: String },
    #[error("Via branch is the bare magic cookie z9hG4bK with no transaction id (RFC 3261 8.1.1.7, RFC 4475 3.2.1)")]
    EmptyBranch,
    #[error("message body without Content-Type (RFC 3261 7.4.1)")]
    BodyWithoutType,
    #[error("Request-URI scheme {0:?} is not supported (RFC 3261 8.2.2.1)")]
    Scheme(String),
    #[error("required extensions not supported: {0} (RFC 3261 8.2.2.3)")]
    Extension(String),
    #[error("body type {0} is not application/sdp (RFC 3261 8.2.3)")]
    MediaType(String),
    #[error("Content-Encoding {0} is not supported (RFC 3261 8.2.3)")]
    Encoding(String),
    #[error("Accept {0:?} excludes application/sdp, which the answer needs (RFC 3261 21.4.7, RFC 4475 3.3.15)")]
    NotAcceptable(String),
    #[error("SIP parser: {0}")]
    Parser(String),
}

impl Defect {
    /// The status that answers a request with this defect.
    fn status(&self) -> u16 {
        match self {
            Defect::Version(_) => 505,
            Defect::Scheme(_) => 416,
            Defect::Extension(_) => 420,
            Defect::MediaType(_) | Defect::Encoding(_) => 415,
            Defect::NotAcceptable(_) => 406,
            _ => 400,
        }
    }
}

/// One header field, continuation lines joined by a single space.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    /// The full name for the headers checked here, compact forms expanded
    /// (RFC 3261 7.3.3); `None` for the rest.
    canonical: Option<&'static str>,
    value: String,
}

/// A message split into lines, before any header value is interpreted.
#[derive(Debug)]
struct Raw<'a> {
    start_line: String,
    headers: Vec<Field>,
    /// The first line-level problem, kept so a response can still be formed.
    problem: Option<Defect>,
    /// Whether an empty line ended the header section.
    complete: bool,
    /// Everything after the empty line.
    body: &'a [u8],
}

impl Raw<'_> {
    fn all<'s>(&'s self, canonical: &'static str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |f| f.canonical == Some(canonical))
            .map(|f| f.value.as_str())
    }

    fn count(&self, canonical: &'static str) -> usize {
        self.all(canonical).count()
    }

    fn first(&self, canonical: &'static str) -> Option<&str> {
        self.all(canonical).next()
    }
}

const CANONICAL_NAMES: &[(&str, &str)] = &[
    ("via", "Via"),
    ("v", "Via"),
    ("from", "From"),
    ("f", "From"),
    ("to", "To"),
    ("t", "To"),
    ("call-id", "Call-ID"),
    ("i", "Call-ID"),
    ("cseq", "CSeq"),
    ("max-forwards", "Max-Forwards"),
    ("content-length", "Content-Length"),
    ("l", "Content-Length"),
    ("content-type", "Content-Type"),
    ("c", "Content-Type"),
    ("content-encoding", "Content-Encoding"),
    ("e", "Content-Encoding"),
    ("contact", "Contact"),
    ("m", "Contact"),
    ("date", "Date"),
    ("require", "Require"),
    ("accept", "Accept"),
];

fn canonical_name(name: &str) -> Option<&'static str> {
    CANONICAL_NAMES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map(|(_, canonical)| *canonical)
}

/// Splits `bytes` into start line, header fields and body. `None` when
/// there is nothing but line breaks. Leading line breaks are skipped
/// (RFC 3261 7.5); bare LF line ends are tolerated; text that is not UTF-8
/// is replaced, never a reason to stop reading.
fn frame(bytes: &[u8]) -> Option<Raw<'_>> {
    let mut at = 0;
    while at < bytes.len() && (bytes[at] == b'\r' || bytes[at] == b'\n') {
        at += 1;
    }
    if at == bytes.len() {
        return None;
    }
    // Each line without its line break, and where the next one starts.
    let next_line = |from: usize| -> Option<(&[u8], usize)> {
        let rest = bytes.get(from..)?;
        let lf = rest.iter().position(|&b| b == b'\n')?;
        let line = &rest[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some((line, from + lf + 1))
    };
    let (start_line, mut at) = match next_line(at) {
        Some(found) => found,
        None => (&bytes[at..], bytes.len()),
    };
    let mut raw = Raw {
        start_line: String::from_utf8_lossy(start_line).into_owned(),
        headers: Vec::new(),
        problem: None,
        complete: false,
        body: &[],
    };
    let mut number = 1;
    while let Some((line, next)) = next_line(at) {
        at = next;
        number += 1;
        if line.is_empty() {
            raw.complete = true;
            raw.body = bytes.get(at..).unwrap_or(&[]);
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            // RFC 3261 7.3.1: folding; the break and indent are one SP.
            match raw.headers.last_mut() {
                Some(field) => {
                    let continued = text.trim();
                    if !continued.is_empty() {
                        field.value.push(' ');
                        field.value.push_str(continued);
                    }
                }
                None => {
                    raw.problem.get_or_insert(Defect::HeaderLine {
                        line: number,
                        problem: "continuation line before any header",
                    });
                }
            }
            continue;
        }
        let Some((name, value)) = text.split_once(':') else {
            raw.problem.get_or_insert(Defect::HeaderLine {
                line: number,
                problem: "no ':' after the header name",
            });
            continue;
        };
        // HCOLON = *( SP / HTAB ) ":" SWS
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            raw.problem.get_or_insert(Defect::HeaderLine {
                line: number,
                problem: "header name is not a token",
            });
            continue;
        }
        raw.headers.push(Field {
            name: name.to_string(),
            canonical: canonical_name(name),
            value: value.trim_matches([' ', '\t']).to_string(),
        });
    }
    Some(raw)
}

fn is_status_line(line: &str) -> bool {
    line.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
}

/// RFC 3261 25.1 `token`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Characters of a parameter value: token, host (IPv6 brackets, colons).
fn is_value_char(b: u8) -> bool {
    is_token_char(b) || b"[]:".contains(&b)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number, `None` when it has more digits than `u64` holds.
fn decimal(s: &str) -> Option<u64> {
    if !is_digits(s) {
        return None;
    }
    s.parse().ok()
}

fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

fn check_request(raw: &Raw) -> Result<Accepted, Defect> {
    let (method, uri) = parse_request_line(&raw.start_line)?;
    if let Some(problem) = &raw.problem {
        return Err(problem.clone());
    }
    if !raw.complete {
        return Err(Defect::Unterminated);
    }
    let content_length = check_headers(raw, Kind::Request)?;
    let cseq = raw.first("CSeq").unwrap_or("");
    let cseq_method = cseq.split_whitespace().nth(1).unwrap_or("");
    if cseq_method != method {
        return Err(Defect::CSeqMismatch {
            cseq: cseq_method.to_string(),
            method: method.to_string(),
        });
    }
    if top_branch(raw).as_deref() == Some("z9hG4bK") {
        return Err(Defect::EmptyBranch);
    }
    let body = match content_length {
        Some(length) => raw.body.get(..length).unwrap_or(raw.body),
        None => raw.body,
    };
    if !body.is_empty() && raw.count("Content-Type") == 0 {
        return Err(Defect::BodyWithoutType);
    }

    // Semantics, in RFC 3261 8.2 order; the method itself is the dialog
    // layer's to judge.
    let scheme = uri.split(':').next().unwrap_or("");
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return Err(Defect::Scheme(scheme.to_string()));
    }
    if method != "CANCEL" && method != "ACK" {
        let unsupported = unsupported_extensions(raw);
        if !unsupported.is_empty() {
            return Err(Defect::Extension(unsupported.join(", ")));
        }
    }
    if SDP_METHODS.contains(&method) {
        check_sdp_content(raw, body)?;
    }
    if method == "INVITE" && !accepts_sdp(raw) {
        let accept: Vec<&str> = raw.all("Accept").collect();
        return Err(Defect::NotAcceptable(accept.join(", ")));
    }

    if KNOWN_METHODS.contains(&method) {
        let mut message = reparse(raw)?;
        if let SipMessage::Request(request) = &mut message {
            request.body = body.to_vec();
        }
        Ok(Accepted::Message(Box::new(message)))
    } else {
        Ok(Accepted::Extension(ExtensionRequest {
            method: method.to_string(),
            uri: uri.to_string(),
            headers: raw
                .headers
                .iter()
                .map(|f| (f.name.clone(), f.value.clone()))
                .collect(),
            body: body.to_vec(),
        }))
    }
}

fn check_response(raw: &Raw) -> Result<Box<SipMessage>, Defect> {
    let parts: Vec<&str> = raw.start_line.splitn(3, ' ').collect();
    let version = parts.first().copied().unwrap_or("");
    let code = parts.get(1).copied().unwrap_or("");
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Defect::Version(version.to_string()));
    }
    // RFC 3261 7.2: Status-Code = 3DIGIT, the first digit the class 1-6.
    if code.len() != 3 || !is_digits(code) || !(b'1'..=b'6').contains(&code.as_bytes()[0]) {
        return Err(Defect::StartLine("status code is not three digits 100-699"));
    }
    if let Some(problem) = &raw.problem {
        return Err(problem.clone());
    }
    if !raw.complete {
        return Err(Defect::Unterminated);
    }
    let content_length = check_headers(raw, Kind::Response)?;
    let body = match content_length {
        Some(length) => raw.body.get(..length).unwrap_or(raw.body),
        None => raw.body,
    };
    let mut message = reparse(raw)?;
    if let SipMessage::Response(response) = &mut message {
        response.body = body.to_vec();
    }
    Ok(Box::new(message))
}

/// `Method SP Request-URI SP SIP-Version` (RFC 3261 7.1, 25.1): returns
/// the method and the Request-URI.
fn parse_request_line(line: &str) -> Result<(&str, &str), Defect> {
    if line.starts_with([' ', '\t']) || line.ends_with([' ', '\t']) {
        return Err(Defect::StartLine(
            "whitespace before or after the Request-Line (RFC 3261 7.1, RFC 4475 3.1.2.10)",
        ));
    }
    if line.contains("  ") || line.contains('\t') {
        return Err(Defect::StartLine(
            "Request-Line elements must be separated by single spaces (RFC 3261 7.1, RFC 4475 3.1.2.9)",
        ));
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(Defect::StartLine(if parts.len() > 3 {
            "whitespace inside the Request-URI (RFC 3261 25.1, RFC 4475 3.1.2.8)"
        } else {
            "Request-Line is not Method SP Request-URI SP SIP-Version (RFC 3261 7.1)"
        }));
    };
    check_version(version)?;
    if !is_token(method) {
        return Err(Defect::StartLine("method is not a token (RFC 3261 25.1)"));
    }
    check_request_uri(uri)?;
    Ok((method, uri))
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` (RFC 3261 7.1); well
/// formed but not 2.0 is answered 505 (RFC 3261 21.5.7, RFC 4475 3.1.2.16).
fn check_version(version: &str) -> Result<(), Defect> {
    let numbers = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| version.get(4..))
        .and_then(|n| n.split_once('.'))
        .filter(|(major, minor)| is_digits(major) && is_digits(minor));
    match numbers {
        None => Err(Defect::StartLine("malformed SIP-Version (RFC 3261 7.1)")),
        Some((major, minor))
            if major.trim_start_matches('0') == "2" && minor.trim_start_matches('0').is_empty() =>
        {
            Ok(())
        }
        Some(_) => Err(Defect::Version(version.to_string())),
    }
}

fn check_request_uri(uri: &str) -> Result<(), Defect> {
    if uri.starts_with('<') || uri.ends_with('>') {
        return Err(Defect::StartLine(
            "Request-URI enclosed in <> (RFC 3261 25.1, RFC 4475 3.1.2.7)",
        ));
    }
    if !uri.bytes().all(|b| (0x21..=0x7e).contains(&b)) || uri.contains(['<', '>', '"']) {
        return Err(Defect::StartLine(
            "Request-URI has characters a URI cannot hold (RFC 3261 25.1)",
        ));
    }
    let scheme = uri_scheme(uri).ok_or(Defect::StartLine(
        "Request-URI has no scheme (RFC 3261 25.1)",
    ))?;
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // userinfo cannot hold an unescaped '@', so the first one ends it.
        let rest = uri.get(scheme.len() + 1..).unwrap_or("");
        let hostport = rest.split_once('@').map_or(rest, |(_, host)| host);
        if hostport.is_empty() || hostport.starts_with([';', '?', ':']) {
            return Err(Defect::StartLine(
                "Request-URI has no host (RFC 3261 19.1.1)",
            ));
        }
        if hostport.contains('?') {
            return Err(Defect::StartLine(
                "Request-URI carries headers, not allowed there (RFC 3261 19.1.1, RFC 4475 3.1.2.11)",
            ));
        }
    }
    Ok(())
}

/// `scheme ":"` at the start of a URI (RFC 3986 3.1), and something after.
fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_is_alpha = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let valid = first_is_alpha && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (valid && !rest.is_empty()).then_some(scheme)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

/// Presence, multiplicity and syntax of the headers the layers below rely
/// on. Returns the Content-Length, when given.
fn check_headers(raw: &Raw, kind: Kind) -> Result<Option<usize>, Defect> {
    let missing: Vec<&str> = ["Via", "From", "To", "Call-ID", "CSeq"]
        .into_iter()
        .filter(|&name| raw.count(name) == 0)
        .collect();
    if !missing.is_empty() {
        return Err(Defect::Missing(missing.join(", ")));
    }
    // Max-Forwards may be absent: RFC 2543 peers omit it (RFC 4475 3.4.1).
    let repeated: Vec<&str> = [
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
    ]
    .into_iter()
    .filter(|&name| raw.count(name) > 1)
    .collect();
    if !repeated.is_empty() {
        return Err(Defect::Repeated(repeated.join(", ")));
    }
    for via in raw.all("Via") {
        check_via(via).map_err(|problem| Defect::Value {
            header: "Via",
            problem,
        })?;
    }
    for name in ["From", "To"] {
        let value = raw.first(name).unwrap_or("");
        parse_address(value).map_err(|problem| Defect::Value {
            header: name,
            problem,
        })?;
    }
    for contact in raw.all("Contact") {
        check_contact(contact).map_err(|problem| Defect::Value {
            header: "Contact",
            problem,
        })?;
    }
    let call_id = raw.first("Call-ID").unwrap_or("");
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        // Lenient beyond this: real Call-IDs carry '=' and other non-word
        // characters (RFC 3261 25.1 `callid`).
        return Err(Defect::Value {
            header: "Call-ID",
            problem: "empty or contains whitespace (RFC 3261 20.8)",
        });
    }
    check_cseq(raw.first("CSeq").unwrap_or(""))?;
    if let Some(max_forwards) = raw.first("Max-Forwards") {
        if decimal(max_forwards).is_none_or(|n| n > 255) {
            return Err(Defect::Value {
                header: "Max-Forwards",
                problem: "not an integer 0-255 (RFC 3261 20.22, RFC 4475 3.1.2.4)",
            });
        }
    }
    // A bad Date in a response is not worth losing the response for.
    for date in raw.all("Date").filter(|_| kind == Kind::Request) {
        if !is_rfc1123_date(date) {
            return Err(Defect::Value {
                header: "Date",
                problem: "not an RFC 1123 date in GMT (RFC 3261 20.17, RFC 4475 3.1.2.12)",
            });
        }
    }
    let Some(declared) = raw.first("Content-Length") else {
        // RFC 3261 18.3: over UDP the body runs to the end of the datagram.
        return Ok(None);
    };
    if !is_digits(declared) {
        return Err(Defect::Value {
            header: "Content-Length",
            problem: "not a non-negative integer (RFC 3261 20.14, RFC 4475 3.1.2.3)",
        });
    }
    match declared.parse::<usize>() {
        Ok(length) if length <= raw.body.len() => Ok(Some(length)),
        _ => Err(Defect::ContentLength {
            declared: declared.to_string(),
            available: raw.body.len(),
        }),
    }
}

/// `CSeq = 1*DIGIT LWS Method`, the number below 2**31 (RFC 3261 8.1.1.5).
fn check_cseq(value: &str) -> Result<(), Defect> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [number, method] = parts.as_slice() else {
        return Err(Defect::Value {
            header: "CSeq",
            problem: "not a sequence number and a method (RFC 3261 20.16)",
        });
    };
    if decimal(number).is_none_or(|n| n >= 1 << 31) {
        return Err(Defect::Value {
            header: "CSeq",
            problem:
                "sequence number is not an integer below 2**31 (RFC 3261 8.1.1.5, RFC 4475 3.1.2.4)",
        });
    }
    if !is_token(method) {
        return Err(Defect::Value {
            header: "CSeq",
            problem: "method is not a token (RFC 3261 20.16)",
        });
    }
    Ok(())
}

/// `rfc1123-date = wkday "," SP date1 SP time SP "GMT"` (RFC 2616 3.3.1).
fn is_rfc1123_date(value: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split(' ').collect();
    let [day_name, day, month, year, time, "GMT"] = parts.as_slice() else {
        return false;
    };
    let time_ok = time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    DAYS.contains(day_name)
        && day.len() == 2
        && is_digits(day)
        && MONTHS.contains(month)
        && year.len() == 4
        && is_digits(year)
        && time_ok
}

/// The branch of the top Via, when it has one.
fn top_branch(raw: &Raw) -> Option<String> {
    let top = split_list(raw.first("Via")?).into_iter().next()?;
    let params = top.split_once(';')?.1;
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("branch")
            .then(|| value.trim().to_string())
    })
}

/// The option tags of Require that we do not implement.
fn unsupported_extensions(raw: &Raw) -> Vec<String> {
    raw.all("Require")
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .filter(|tag| {
            !SUPPORTED_EXTENSIONS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(tag))
        })
        .map(str::to_string)
        .collect()
}

/// RFC 3261 8.2.3: a body we cannot read is answered 415.
fn check_sdp_content(raw: &Raw, body: &[u8]) -> Result<(), Defect> {
    if let Some(coding) = raw
        .all("Content-Encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
    {
        return Err(Defect::Encoding(coding.to_string()));
    }
    if body.is_empty() {
        return Ok(());
    }
    let content_type = raw.first("Content-Type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/sdp") {
        Ok(())
    } else {
        Err(Defect::MediaType(media_type.to_string()))
    }
}

/// Whether the Accept headers let the answer carry SDP; no Accept means
/// application/sdp (RFC 3261 20.1).
fn accepts_sdp(raw: &Raw) -> bool {
    if raw.count("Accept") == 0 {
        return true;
    }
    raw.all("Accept")
        .flat_map(|value| value.split(','))
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .any(|range| {
            ["application/sdp", "application/*", "*/*"]
                .iter()
                .any(|ok| range.eq_ignore_ascii_case(ok))
        })
}

/// Parses the message again with rsipstack from the checked lines, so its
/// own line handling (UTF-8, folding, framing) cannot lose anything.
fn reparse(raw: &Raw) -> Result<SipMessage, Defect> {
    let mut text = String::with_capacity(256);
    text.push_str(&raw.start_line);
    text.push_str("\r\n");
    for field in &raw.headers {
        text.push_str(&field.name);
        text.push_str(": ");
        text.push_str(&field.value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    SipMessage::try_from(text.as_str()).map_err(|e| Defect::Parser(e.to_string()))
}

/// A cursor over header text. Slices only at ASCII positions, through
/// `str::get`, so no input can make it panic.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// Skips linear white space (folding is already a single SP).
    fn skip_space(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    /// Takes bytes while `keep` holds; `keep` must reject non-ASCII bytes
    /// or accept all of them, so the cut falls on a character boundary.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or("")
    }

    /// A quoted-string starting at the cursor (RFC 3261 25.1), with
    /// quoted-pairs; returns whether it was terminated.
    fn quoted_string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.at += 1;
                    return true;
                }
                Some(b'\\') => {
                    if self.at + 1 >= self.text.len() {
                        return false;
                    }
                    self.at += 2;
                }
                Some(_) => self.at += 1,
            }
        }
    }

    /// `*( SEMI generic-param )` to the end (RFC 3261 25.1).
    fn params(&mut self, into: &mut Vec<(&'a str, Option<&'a str>)>) -> Result<(), &'static str> {
        self.skip_space();
        while !self.done() {
            if !self.eat(b';') {
                return Err("unexpected text where ';' parameters should follow");
            }
            self.skip_space();
            let name = self.take_while(is_token_char);
            if name.is_empty() {
                return Err("empty parameter (RFC 3261 25.1, RFC 4475 3.1.2.1)");
            }
            self.skip_space();
            let mut value = None;
            if self.eat(b'=') {
                self.skip_space();
                let start = self.at;
                let text = if self.peek() == Some(b'"') {
                    if !self.quoted_string() {
                        return Err("unterminated quoted parameter value");
                    }
                    self.text.get(start..self.at).unwrap_or("")
                } else {
                    self.take_while(is_value_char)
                };
                if text.is_empty() {
                    return Err("parameter with '=' but no value (RFC 3261 25.1)");
                }
                value = Some(text);
            }
            into.push((name, value));
            self.skip_space();
        }
        Ok(())
    }
}

/// Splits a header value at commas outside quoted strings and `<...>`.
fn split_list(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut angle, mut i) = (0, false, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' if !angle => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                parts.push(value.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(value.get(start..).unwrap_or(""));
    parts
}

/// `via-parm *(COMMA via-parm)`, each `sent-protocol LWS sent-by
/// *( SEMI via-params )` (RFC 3261 20.42, 25.1).
fn check_via(value: &str) -> Result<(), &'static str> {
    for parm in split_list(value) {
        let mut c = Cursor::new(parm.trim());
        if c.done() {
            return Err("empty value between commas (RFC 4475 3.1.2.1)");
        }
        let protocol = c.take_while(is_token_char);
        c.skip_space();
        let slash1 = c.eat(b'/');
        c.skip_space();
        let version = c.take_while(is_token_char);
        c.skip_space();
        let slash2 = c.eat(b'/');
        c.skip_space();
        let transport = c.take_while(is_token_char);
        if !(slash1 && slash2) || transport.is_empty() {
            return Err("sent-protocol is not SIP/2.0/transport (RFC 3261 20.42)");
        }
        if !protocol.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err("sent-protocol is not SIP/2.0 (RFC 3261 20.42)");
        }
        if !c.skip_space() {
            return Err("no space between transport and sent-by (RFC 3261 25.1)");
        }
        let host = if c.peek() == Some(b'[') {
            c.take_while(|b| b != b']');
            if !c.eat(b']') {
                return Err("unterminated IPv6 reference in sent-by");
            }
            "["
        } else {
            c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        };
        if host.is_empty() {
            return Err("sent-by has no host (RFC 3261 20.42)");
        }
        c.skip_space();
        if c.eat(b':') {
            c.skip_space();
            let port = c.take_while(|b| b.is_ascii_digit());
            if decimal(port).is_none_or(|p| p > 65535) {
                return Err("sent-by port is not 0-65535");
            }
        }
        c.params(&mut Vec::new())?;
    }
    Ok(())
}

/// A parsed `name-addr / addr-spec` with its parameters.
struct Address<'a> {
    params: Vec<(&'a str, Option<&'a str>)>,
}

/// `( name-addr / addr-spec ) *( SEMI param )` of From, To and each
/// Contact (RFC 3261 20.10, 20.20, 20.39, 25.1).
fn parse_address(value: &str) -> Result<Address<'_>, &'static str> {
    let mut c = Cursor::new(value);
    c.skip_space();
    let bracketed = if c.peek() == Some(b'"') {
        if !c.quoted_string() {
            return Err("unterminated quoted display name (RFC 4475 3.1.2.6)");
        }
        c.skip_space();
        if !c.eat(b'<') {
            return Err("quoted display name not followed by <URI>");
        }
        true
    } else {
        let start = c.at;
        c.take_while(|b| is_token_char(b) || b == b' ' || b == b'\t');
        if c.eat(b'<') {
            true
        } else {
            // A '<' before any parameter means a display name was meant.
            let rest = value.get(start..).unwrap_or("");
            if rest.split(';').next().unwrap_or("").contains('<') {
                return Err(
                    "display name has characters outside token and is not quoted (RFC 3261 25.1, RFC 4475 3.1.2.15)",
                );
            }
            c.at = start;
            false
        }
    };
    if bracketed {
        let uri = c.take_while(|b| b != b'>');
        if !c.eat(b'>') {
            return Err("unterminated <URI>");
        }
        if uri.contains([' ', '\t']) {
            return Err("whitespace inside <URI> (RFC 3261 25.1 addr-spec, RFC 4475 3.1.2.14)");
        }
        if uri.contains('<') || uri_scheme(uri).is_none() {
            return Err("<URI> is not scheme:rest (RFC 3261 25.1)");
        }
    } else {
        let uri = c.take_while(|b| b != b';' && b != b' ' && b != b'\t');
        if uri_scheme(uri).is_none() {
            return Err("not a URI or name-addr (RFC 3261 25.1)");
        }
        if uri.contains(['?', ',']) {
            return Err(
                "a URI with '?' or ',' must be enclosed in <> (RFC 3261 20.10, RFC 4475 3.1.2.13)",
            );
        }
    }
    let mut params = Vec::new();
    c.params(&mut params)?;
    Ok(Address { params })
}

/// `Contact = "*" / contact-param *(COMMA contact-param)` (RFC 3261 20.10).
fn check_contact(value: &str) -> Result<(), &'static str> {
    if value.trim() == "*" {
        return Ok(());
    }
    for part in split_list(value) {
        if part.trim().is_empty() {
            return Err("empty value between commas");
        }
        parse_address(part)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::{HeadersExt, Method};

    const OPTIONS: &str = "OPTIONS sip:agent@192.0.2.50 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:agent@192.0.2.50>\r\n\
        From: \"PBX\" <sip:pbx@192.0.2.1>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pbx.example.com\r\n\
        CSeq: 63104 OPTIONS\r\n\
        Accept: application/sdp\r\n\
        Content-Length: 0\r\n\
        \r\n";

    const INVITE: &str = "INVITE sip:agent@192.0.2.50:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKPj5f2c\r\n\
        From: \"Alice\" <sip:1001@192.0.2.1>;tag=a1b2\r\n\
        To: <sip:agent@192.0.2.50>\r\n\
        Contact: <sip:1001@192.0.2.1:5060>\r\n\
        Call-ID: 7f3a-1001\r\n\
        CSeq: 1 INVITE\r\n\
        Max-Forwards: 70\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 31\r\n\
        \r\n\
        v=0\r\n\
        o=- 1 1 IN IP4 192.0.2.1\r\n";

    fn status(verdict: &Verdict) -> Option<u16> {
        match verdict {
            Verdict::Reject { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn with(base: &str, from: &str, to: &str) -> Vec<u8> {
        assert!(base.contains(from), "{from:?} not in the base message");
        base.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn well_formed_options_is_accepted_as_rsip_request() {
        let Verdict::Accept(Accepted::Message(message)) = check(OPTIONS.as_bytes()) else {
            panic!("rejected: {:?}", check(OPTIONS.as_bytes()));
        };
        let SipMessage::Request(request) = *message else {
            panic!("not a request");
        };
        assert_eq!(request.method, Method::Options);
        assert_eq!(
            request.call_id_header().unwrap().value(),
            "a84b4c76e66710@pbx.example.com"
        );
    }

    #[test]
    fn invite_body_is_cut_at_content_length() {
        let mut bytes = INVITE.as_bytes().to_vec();
        bytes.extend_from_slice(b"trailing junk in the datagram");
        let Verdict::Accept(Accepted::Message(message)) = check(&bytes) else {
            panic!("rejected");
        };
        let SipMessage::Request(request) = *message else {
            panic!("not a request");
        };
        assert_eq!(request.body, b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
    }

    #[test]
    fn body_without_content_length_runs_to_the_end_of_the_datagram() {
        let bytes = with(INVITE, "Content-Length: 31\r\n", "");
        let Verdict::Accept(Accepted::Message(message)) = check(&bytes) else {
            panic!("rejected");
        };
        let SipMessage::Request(request) = *message else {
            panic!("not a request");
        };
        assert_eq!(request.body.len(), 31);
    }

    #[test]
    fn lf_only_line_ends_and_leading_crlf_are_tolerated() {
        let bytes = format!("\r\n\r\n{}", OPTIONS.replace("\r\n", "\n"));
        assert!(matches!(check(bytes.as_bytes()), Verdict::Accept(_)));
    }

    #[test]
    fn keep_alive_is_dropped() {
        for bytes in [&b"\r\n\r\n"[..], b"\r\n", b""] {
            assert!(matches!(check(bytes), Verdict::Drop { .. }));
        }
    }

    #[test]
    fn extension_method_is_accepted_raw() {
        let bytes = OPTIONS.replace("OPTIONS", "FROBNICATE");
        let Verdict::Accept(Accepted::Extension(request)) = check(bytes.as_bytes()) else {
            panic!("not accepted as extension");
        };
        assert_eq!(request.method, "FROBNICATE");
        assert_eq!(request.uri, "sip:agent@192.0.2.50");
        assert!(request
            .headers
            .iter()
            .any(|(n, v)| n == "CSeq" && v == "63104 FROBNICATE"));
        // Methods are case-sensitive: "invite" is not INVITE (RFC 3261 7.1).
        let lower = OPTIONS.replace("OPTIONS", "options");
        assert!(matches!(
            check(lower.as_bytes()),
            Verdict::Accept(Accepted::Extension(_))
        ));
    }

    #[test]
    fn request_line_defects_are_400_or_505() {
        let cases: [(&str, &str, u16); 9] = [
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS  sip:agent@192.0.2.50 SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0 ",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS <sip:agent@192.0.2.50> SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip:agent@192.0.2.50; lr SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip:agent@192.0.2.50?Route=x SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip:agent@192.0.2.50 SIP/3.0",
                505,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip:agent@192.0.2.50 HTTP/1.1",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPTIONS sip: SIP/2.0",
                400,
            ),
            (
                "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
                "OPT(ONS sip:agent@192.0.2.50 SIP/2.0",
                400,
            ),
        ];
        for (from, to, expected) in cases {
            let verdict = check(&with(OPTIONS, from, to));
            assert_eq!(status(&verdict), Some(expected), "{to:?}: {verdict:?}");
        }
    }

    #[test]
    fn user_part_may_hold_question_marks_and_semicolons() {
        let bytes = with(
            OPTIONS,
            "OPTIONS sip:agent@192.0.2.50 SIP/2.0",
            "OPTIONS sip:we?ird;user=x@192.0.2.50 SIP/2.0",
        );
        assert!(matches!(check(&bytes), Verdict::Accept(_)));
    }

    #[test]
    fn header_defects_are_400() {
        let cases: [(&str, &str); 14] = [
            ("CSeq: 63104 OPTIONS", "CSeq: 63104 INVITE"),
            ("CSeq: 63104 OPTIONS", "CSeq: 2147483648 OPTIONS"),
            ("CSeq: 63104 OPTIONS", "CSeq: -1 OPTIONS"),
            ("CSeq: 63104 OPTIONS", "CSeq: 63104"),
            ("Max-Forwards: 70", "Max-Forwards: 256"),
            ("Max-Forwards: 70", "Max-Forwards: -1"),
            ("Content-Length: 0", "Content-Length: 10"),
            ("Content-Length: 0", "Content-Length: 0\r\nl: 0"),
            ("Call-ID: a84b4c76e66710@pbx.example.com\r\n", ""),
            ("To: <sip:agent@192.0.2.50>", "To: < sip:agent@192.0.2.50>"),
            (
                "From: \"PBX\" <sip:pbx@192.0.2.1>",
                "From: \"PBX <sip:pbx@192.0.2.1>",
            ),
            (
                "From: \"PBX\" <sip:pbx@192.0.2.1>",
                "From: P,BX <sip:pbx@192.0.2.1>",
            ),
            ("branch=z9hG4bK776asdhds", "branch=z9hG4bK"),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060",
                "Via: SIP/2.0/UDP 192.0.2.1:99999",
            ),
        ];
        for (from, to) in cases {
            let verdict = check(&with(OPTIONS, from, to));
            assert_eq!(status(&verdict), Some(400), "{to:?}: {verdict:?}");
        }
    }

    #[test]
    fn max_forwards_may_be_absent_but_zero_is_fine_for_an_endpoint() {
        let absent = with(OPTIONS, "Max-Forwards: 70\r\n", "");
        assert!(matches!(check(&absent), Verdict::Accept(_)));
        let zero = with(OPTIONS, "Max-Forwards: 70", "Max-Forwards: 0");
        assert!(matches!(check(&zero), Verdict::Accept(_)));
    }

    #[test]
    fn semantic_rejections_follow_rfc3261_8_2() {
        let unknown_scheme = with(
            OPTIONS,
            "OPTIONS sip:agent@192.0.2.50",
            "OPTIONS tel:+15551234567",
        );
        assert_eq!(status(&check(&unknown_scheme)), Some(416));
        let require = with(OPTIONS, "Accept:", "Require: 100rel\r\nAccept:");
        assert_eq!(status(&check(&require)), Some(420));
        let wrong_body = with(INVITE, "application/sdp", "application/isup");
        assert_eq!(status(&check(&wrong_body)), Some(415));
        let gzip = with(
            INVITE,
            "Content-Type:",
            "Content-Encoding: gzip\r\nContent-Type:",
        );
        assert_eq!(status(&check(&gzip)), Some(415));
        let accept = with(
            INVITE,
            "Content-Type:",
            "Accept: text/plain\r\nContent-Type:",
        );
        assert_eq!(status(&check(&accept)), Some(406));
        let accept_any = with(
            INVITE,
            "Content-Type:",
            "Accept: text/plain, */*\r\nContent-Type:",
        );
        assert!(matches!(check(&accept_any), Verdict::Accept(_)));
        // CANCEL ignores Require (RFC 3261 8.2.2.3).
        let cancel = with(
            &OPTIONS.replace("OPTIONS", "CANCEL"),
            "Accept:",
            "Require: 100rel\r\nAccept:",
        );
        assert!(matches!(check(&cancel), Verdict::Accept(_)));
    }

    #[test]
    fn requests_that_cannot_be_answered_are_dropped() {
        let no_via = with(
            OPTIONS,
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n",
            "",
        );
        assert!(matches!(check(&no_via), Verdict::Drop { .. }));
        let ack = with(
            &OPTIONS.replace("OPTIONS", "ACK"),
            "Max-Forwards: 70",
            "Max-Forwards: 900",
        );
        assert!(matches!(check(&ack), Verdict::Drop { .. }));
    }

    #[test]
    fn malformed_responses_are_dropped() {
        let ok = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK1\r\n\
            From: <sip:agent@192.0.2.50>;tag=1\r\n\
            To: <sip:1001@192.0.2.1>;tag=2\r\n\
            Call-ID: c1\r\n\
            CSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        assert!(matches!(
            check(ok.as_bytes()),
            Verdict::Accept(Accepted::Message(_))
        ));
        for (from, to) in [
            ("200 OK", "2000 OK"),
            ("200 OK", "099 Odd"),
            ("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"),
            ("Call-ID: c1\r\n", ""),
            ("Content-Length: 0", "Content-Length: 5"),
            ("SIP/2.0 200", "SIP/3.0 200"),
        ] {
            let verdict = check(&with(ok, from, to));
            assert!(
                matches!(verdict, Verdict::Drop { .. }),
                "{to:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn reasons_are_single_lines() {
        let verdict =
            check(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nBroken\x01line\r\n\r\n");
        let Verdict::Reject { reason, .. } = verdict else {
            panic!("{verdict:?}");
        };
        assert!(!reason.contains(['\r', '\n']));
        assert!(reason.contains("header line 3"), "{reason}");
    }

    #[test]
    fn reject_response_echoes_the_transaction_headers() {
        let bytes = with(OPTIONS, "Accept:", "Require: foo, bar\r\nAccept:");
        assert_eq!(status(&check(&bytes)), Some(420));
        let response = reject_response(&bytes, 420, "s8x1", &[]).unwrap();
        let text = String::from_utf8(response.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 420 Bad Extension\r\n"), "{text}");
        assert!(text.contains("To: <sip:agent@192.0.2.50>;tag=s8x1\r\n"));
        assert!(text.contains("Unsupported: foo, bar\r\n"));
        assert!(text.contains("CSeq: 63104 OPTIONS\r\n"));
        // And our own response passes our own checks.
        let Verdict::Accept(Accepted::Message(message)) = check(&response) else {
            panic!("{text}");
        };
        let SipMessage::Response(parsed) = *message else {
            panic!("not a response");
        };
        assert_eq!(parsed.status_code.code(), 420);
        assert_eq!(
            parsed.via_header().unwrap().value(),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport"
        );

        let text = String::from_utf8(
            reject_response(
                INVITE.replace("application/sdp", "text/plain").as_bytes(),
                415,
                "t",
                &[("Server", "switchboard")],
            )
            .unwrap(),
        )
        .unwrap();
        assert!(text.contains("Accept: application/sdp\r\n"));
        assert!(text.contains("Server: switchboard\r\n"));
        // A To that already has a tag keeps it.
        let tagged = with(
            OPTIONS,
            "To: <sip:agent@192.0.2.50>",
            "To: <sip:agent@192.0.2.50>;tag=old",
        );
        let text = String::from_utf8(reject_response(&tagged, 400, "new", &[]).unwrap()).unwrap();
        assert!(text.contains("To: <sip:agent@192.0.2.50>;tag=old\r\n"));
        assert!(!text.contains("new"));
        assert_eq!(
            reject_response(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "t", &[]),
            None
        );
    }

    #[test]
    fn truncated_and_random_bytes_never_panic() {
        for message in [OPTIONS, INVITE] {
            for end in 0..=message.len() {
                let bytes = &message.as_bytes()[..end];
                let _ = check(bytes);
                let _ = reject_response(bytes, 400, "t", &[]);
            }
        }
        let mut state: u64 = 0x0123_4567_89AB_CDEF;
        let alphabet = b"INVITE sip:@;<>\",=/:\r\n\t SIP/2.0 Via: To: From: CSeq: 1 l: 0 z9hG4bK\\";
        for round in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(round % 400) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let byte = if state % 7 == 0 {
                    (state >> 24) as u8
                } else {
                    alphabet[(state >> 24) as usize % alphabet.len()]
                };
                bytes.push(byte);
            }
            let _ = check(&bytes);
            let _ = reject_response(&bytes, 420, "t", &[]);
        }
    }
}
