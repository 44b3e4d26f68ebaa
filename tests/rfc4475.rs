//! The RFC 4475 torture messages through `sip::validate::check`.
//!
//! Reads the corpus directory at run time (`../shared/rfc4475` beside the
//! crate), checks every file against its class in `MANIFEST.tsv` and
//! against the verdict of the table below, and prints a table of file,
//! class and verdict. A file in the directory but not in the table, or the
//! other way round, fails the test.

use std::fs;
use std::path::PathBuf;

use rsipstack::sip::SipMessage;
use switchboard::sip::sdp;
use switchboard::sip::validate::{check, reject_response, Accepted, Verdict};

/// What the agent, a user agent server, should do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parsed and handed on.
    Accept,
    /// Answered with this status.
    Reject(u16),
    /// Discarded.
    Drop,
}

use Expect::{Accept, Drop, Reject};

/// RFC 4475 section, file, expected verdict, and why.
const EXPECTED: &[(&str, &str, Expect, &str)] = &[
    // 3.1.1 Valid messages: parse and process normally.
    ("3.1.1.1", "wsinv", Accept, "short tortuous INVITE: LWS, folding, compact forms"),
    ("3.1.1.2", "intmeth", Accept, "unknown method, wide range of valid characters; 501 comes from the dialog layer"),
    ("3.1.1.3", "esc01", Accept, "valid % escaping"),
    ("3.1.1.4", "escnull", Accept, "escaped NULs in URIs"),
    ("3.1.1.5", "esc02", Accept, "RE%47IST%45R is an extension method, not REGISTER"),
    ("3.1.1.6", "lwsdisp", Accept, "no LWS between display name and <"),
    ("3.1.1.7", "longreq", Accept, "long values in header fields"),
    ("3.1.1.8", "dblreq", Accept, "octets after Content-Length in a datagram are ignored"),
    ("3.1.1.9", "semiuri", Accept, "semicolon-separated parameters in the user part"),
    ("3.1.1.10", "transports", Accept, "varied and unknown transports in lower Vias"),
    ("3.1.1.11", "mpart01", Accept, "multipart MIME body (MESSAGE: 405 from the dialog layer)"),
    ("3.1.1.12", "unreason", Accept, "UTF-8 reason phrase"),
    ("3.1.1.13", "noreason", Accept, "empty reason phrase"),
    // 3.1.2 Invalid messages: a request is answered 400 (or dropped), a
    // response is discarded.
    ("3.1.2.1", "badinv01", Reject(400), "extraneous separators in Via and Contact"),
    ("3.1.2.2", "clerr", Reject(400), "Content-Length larger than the message"),
    ("3.1.2.3", "ncl", Reject(400), "negative Content-Length"),
    ("3.1.2.4", "scalar02", Reject(400), "CSeq above 2**31 (and Max-Forwards 300)"),
    ("3.1.2.5", "scalarlg", Drop, "response: CSeq overflows 32 bits"),
    ("3.1.2.6", "quotbal", Reject(400), "unterminated quoted display name"),
    ("3.1.2.7", "ltgtruri", Reject(400), "<> around the Request-URI"),
    ("3.1.2.8", "lwsruri", Reject(400), "LWS inside the Request-URI"),
    ("3.1.2.9", "lwsstart", Reject(400), "several SP between Request-Line elements"),
    ("3.1.2.10", "trws", Reject(400), "SP after the SIP-Version"),
    ("3.1.2.11", "escruri", Reject(400), "escaped headers in a SIP Request-URI"),
    ("3.1.2.12", "baddate", Reject(400), "Date not in GMT (the RFC also allows ignoring Date)"),
    ("3.1.2.13", "regbadct", Reject(400), "Contact URI with ? not enclosed in <>"),
    ("3.1.2.14", "badaspec", Reject(400), "spaces inside <addr-spec>"),
    ("3.1.2.15", "baddn", Reject(400), "unquoted display name with a comma; also no empty line after the headers"),
    ("3.1.2.16", "badvers", Reject(505), "SIP/7.0: Version Not Supported"),
    ("3.1.2.17", "mismatch01", Reject(400), "CSeq method differs from the Request-Line"),
    ("3.1.2.18", "mismatch02", Reject(400), "unknown method and CSeq mismatch; 400 is the RFC's alternative to 501, methods are judged later"),
    ("3.1.2.19", "bigcode", Drop, "response: status code 4294967301"),
    // 3.2 Transaction layer semantics.
    ("3.2.1", "badbranch", Reject(400), "branch is the bare magic cookie: 400 rather than RFC 2543 matching"),
    // 3.3 Application layer semantics, for a user agent server.
    ("3.3.1", "insuf", Reject(400), "missing To, From, Call-ID (and Max-Forwards)"),
    ("3.3.2", "unkscm", Reject(416), "unknown Request-URI scheme"),
    ("3.3.3", "novelsc", Reject(416), "soap.beep Request-URI: a scheme we do not support"),
    ("3.3.4", "unksm2", Accept, "unknown schemes in To/From/Contact are legal; the RFC's 400 is a registrar's, we are not one (405 from the dialog layer)"),
    ("3.3.5", "bext01", Reject(420), "Require of unknown extensions (Proxy-Require is for proxies)"),
    ("3.3.6", "invut", Reject(415), "INVITE body of an unknown type"),
    ("3.3.7", "regaut01", Accept, "unknown Authorization scheme: well formed; REGISTER gets 405 from the dialog layer"),
    ("3.3.8", "multi01", Reject(400), "several To, From, Call-ID, CSeq, Max-Forwards"),
    ("3.3.9", "mcl01", Reject(400), "two Content-Length values"),
    ("3.3.10", "bcast", Accept, "200 OK with a broadcast lower Via: well formed"),
    ("3.3.11", "zeromf", Accept, "Max-Forwards 0: a proxy answers 483, an endpoint processes it"),
    ("3.3.12", "cparam01", Accept, "Contact header parameter"),
    ("3.3.13", "cparam02", Accept, "Contact URI parameter"),
    ("3.3.14", "regescrt", Accept, "escaped header inside a bracketed Contact URI"),
    ("3.3.15", "sdp01", Reject(406), "INVITE whose Accept excludes application/sdp"),
    // 3.4 Backward compatibility.
    ("3.4.1", "inv2543", Accept, "RFC 2543 INVITE: no branch, no Max-Forwards, no Content-Length"),
];

fn corpus_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let beside = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/rfc4475"));
    let candidates = [
        beside,
        manifest
            .parent()
            .map(|parent| parent.join("../shared/rfc4475"))
            .unwrap_or_default(),
    ];
    candidates
        .iter()
        .find(|dir| dir.join("MANIFEST.tsv").is_file())
        .cloned()
        .unwrap_or_else(|| panic!("RFC 4475 corpus not found; looked in {candidates:?}"))
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accept(Accepted::Message(message)) if message.is_request() => {
            "Accept (request)".into()
        }
        Verdict::Accept(Accepted::Message(_)) => "Accept (response)".into(),
        Verdict::Accept(Accepted::Extension(request)) => {
            format!("Accept (extension {})", request.method)
        }
        Verdict::Reject { status, .. } => format!("Reject {status}"),
        Verdict::Drop { .. } => "Drop".into(),
    }
}

fn reason(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Accept(_) => "",
        Verdict::Reject { reason, .. } | Verdict::Drop { reason } => reason,
    }
}

#[test]
fn rfc4475_corpus() {
    let dir = corpus_dir();
    let manifest = fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let classes: Vec<(String, String)> = manifest
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (file, class) = line
                .split_once('\t')
                .expect("MANIFEST line is file<TAB>class");
            (file.trim().to_string(), class.trim().to_string())
        })
        .collect();

    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("read corpus directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".dat"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 49, "the corpus has 49 messages");
    assert_eq!(
        files.len(),
        EXPECTED.len(),
        "every file has a row in EXPECTED"
    );

    let mut failures = Vec::new();
    println!(
        "{:<10} {:<16} {:<9} {:<34} reason",
        "file", "class", "section", "verdict"
    );
    for file in &files {
        let stem = file.trim_end_matches(".dat");
        let class = classes
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, class)| class.as_str())
            .unwrap_or_else(|| panic!("{file} is not in MANIFEST.tsv"));
        let &(section, _, expected, why) = EXPECTED
            .iter()
            .find(|(_, name, _, _)| *name == stem)
            .unwrap_or_else(|| panic!("{file} has no row in EXPECTED"));
        let bytes = fs::read(dir.join(file)).expect("read message");
        let verdict = check(&bytes);
        println!(
            "{:<10} {:<16} {:<9} {:<34} {}",
            stem,
            class,
            section,
            describe(&verdict),
            reason(&verdict)
        );

        let is_response = bytes.starts_with(b"SIP/");
        // The class rule of the corpus README.
        let class_ok = match (class, &verdict) {
            ("3.1.1-valid", Verdict::Accept(_)) => true,
            ("3.1.2-invalid", Verdict::Drop { .. }) => true,
            ("3.1.2-invalid", Verdict::Reject { status, .. }) => {
                !is_response && (400..600).contains(status)
            }
            ("3.2-3.4-semantic", _) => true,
            _ => false,
        };
        if !class_ok {
            failures.push(format!(
                "{file} ({class}): {verdict:?} breaks the class rule"
            ));
        }
        let actual = match &verdict {
            Verdict::Accept(_) => Accept,
            Verdict::Reject { status, .. } => Reject(*status),
            Verdict::Drop { .. } => Drop,
        };
        if actual != expected {
            failures.push(format!(
                "{file} (RFC 4475 {section}, {why}): expected {expected:?}, got {verdict:?}"
            ));
        }
        if let Verdict::Reject { status, reason } = &verdict {
            if reason.is_empty() || reason.contains(['\r', '\n']) {
                failures.push(format!("{file}: reason is not one log line: {reason:?}"));
            }
            match reject_response(&bytes, *status, "rfc4475", &[]) {
                Some(response) if response.starts_with(format!("SIP/2.0 {status} ").as_bytes()) => {
                }
                other => failures.push(format!(
                    "{file}: no {status} response could be built: {other:?}"
                )),
            }
        }
        if let Verdict::Drop { reason } = &verdict {
            if reason.is_empty() || reason.contains(['\r', '\n']) {
                failures.push(format!("{file}: reason is not one log line: {reason:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every prefix of every message: a truncated datagram or a half-read
/// stream must give a verdict, never a panic. Requests cut inside the
/// headers are rejected or dropped, never accepted.
#[test]
fn every_truncation_of_the_corpus_gives_a_verdict() {
    let dir = corpus_dir();
    let mut checked = 0usize;
    for entry in fs::read_dir(&dir).expect("read corpus directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let bytes = fs::read(&path).expect("read message");
        let header_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        for end in 0..bytes.len() {
            let verdict = check(&bytes[..end]);
            let _ = reject_response(&bytes[..end], 400, "t", &[]);
            if end < header_end {
                assert!(
                    !matches!(verdict, Verdict::Accept(_)),
                    "{} cut at {end} inside its headers was accepted",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20_000, "only {checked} prefixes checked");
}

/// The accepted INVITEs of the corpus carry RFC 4475's SDP (PCMU and LPC
/// audio, LPC video): each one gets an answer with PCMU and the video
/// rejected, through the same path a real call takes.
#[test]
fn accepted_corpus_invites_get_an_sdp_answer() {
    let dir = corpus_dir();
    let mut answered = Vec::new();
    for (_, stem, expected, _) in EXPECTED {
        if *expected != Accept {
            continue;
        }
        let bytes = fs::read(dir.join(format!("{stem}.dat"))).expect("read message");
        let Verdict::Accept(Accepted::Message(message)) = check(&bytes) else {
            continue;
        };
        let SipMessage::Request(request) = *message else {
            continue;
        };
        if request.method != rsipstack::sip::Method::Invite {
            continue;
        }
        let offer =
            sdp::parse(&request.body).unwrap_or_else(|e| panic!("{stem}: SDP does not parse: {e}"));
        let answer = sdp::answer(&offer, "192.0.2.200".parse().unwrap(), 40000, 1, 1)
            .unwrap_or_else(|e| panic!("{stem}: no answer: {e}"));
        assert_eq!(answer.media.codec, sdp::Codec::Pcmu, "{stem}");
        assert_eq!(answer.media.remote_addr.port(), 49217, "{stem}");
        if offer.media.len() == 2 {
            assert!(
                answer.sdp.contains("m=video 0 RTP/AVP 31\r\n"),
                "{stem}: {}",
                answer.sdp
            );
        }
        answered.push(*stem);
    }
    answered.sort_unstable();
    assert_eq!(answered, ["esc01", "inv2543", "longreq", "wsinv"]);
}
