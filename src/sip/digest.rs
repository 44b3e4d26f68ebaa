//! HTTP digest authentication for SIP (RFC 3261 22, RFC 2617; the
//! `algorithm` parameter as in RFC 8760). MD5 and MD5-sess with
//! `qop=auth`, or no qop at all (RFC 2069 compatibility).
//!
//! Pure: the client nonce (`cnonce`) is a parameter, so the caller owns the
//! randomness and tests are deterministic.
//!
//! Call order: a request is answered 401 or 407. Parse the challenge header
//! ([`Challenge::parse`], or [`select_challenge`] when there are several),
//! hand it to [`DigestClient::handle_challenge`] with the status it came
//! with, then [`DigestClient::authorize`] builds the header for the retried
//! request. Later requests to the same realm may call `authorize` again
//! without a new challenge: the nonce is reused and `nc` goes up.
//!
//! The client does not decide when to give up: a challenge that comes back
//! for a request that already carried credentials, without `stale=true`,
//! means the password is wrong, and the caller must stop retrying
//! (RFC 2617 3.2.1, `stale`).

use std::collections::HashMap;
use std::fmt::Write as _;

use md5::{Digest, Md5};

/// What is wrong with a challenge, or why it cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The challenge uses another scheme than Digest (RFC 3261 22.1).
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// The challenge does not follow the `auth-param` grammar (RFC 3261 25.1).
    #[error("malformed challenge: {0}")]
    Malformed(&'static str),
    /// A parameter the response needs is absent (RFC 2617 3.2.1).
    #[error("challenge has no {0} parameter")]
    MissingParameter(&'static str),
    /// An algorithm other than MD5 or MD5-sess, such as RFC 8760's SHA-256.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The server offers quality of protection, but not `auth`.
    #[error("server offers qop {0:?}, none of which is auth")]
    UnsupportedQop(String),
    /// MD5-sess needs a cnonce, which RFC 2617 3.2.2 only allows with qop.
    #[error("MD5-sess challenge without qop cannot be answered")]
    SessionAlgorithmWithoutQop,
    /// `authorize` was called for a realm that never challenged us.
    #[error("no challenge received for realm {0:?}")]
    UnknownRealm(String),
    /// None of several challenges could be answered; the last reason.
    #[error("no usable challenge: {0}")]
    NoUsableChallenge(Box<DigestError>),
}

/// Which challenge header the server used, which decides the header that
/// carries our answer (RFC 3261 22.2, 22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeOrigin {
    /// A 401 from the user agent server or registrar: `WWW-Authenticate`
    /// answered by `Authorization`.
    Server,
    /// A 407 from a proxy: `Proxy-Authenticate` answered by
    /// `Proxy-Authorization`.
    Proxy,
}

impl ChallengeOrigin {
    /// The origin of a challenge response's status, `None` for other statuses.
    pub const fn from_status(status: u16) -> Option<ChallengeOrigin> {
        match status {
            401 => Some(ChallengeOrigin::Server),
            407 => Some(ChallengeOrigin::Proxy),
            _ => None,
        }
    }

    /// The header that carries the challenge.
    pub const fn challenge_header(self) -> &'static str {
        match self {
            ChallengeOrigin::Server => "WWW-Authenticate",
            ChallengeOrigin::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header that carries our credentials.
    pub const fn credentials_header(self) -> &'static str {
        match self {
            ChallengeOrigin::Server => "Authorization",
            ChallengeOrigin::Proxy => "Proxy-Authorization",
        }
    }
}

/// The digest algorithms we can compute (RFC 2617 3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when the challenge names none.
    Md5,
    /// `MD5-sess`: HA1 also covers the nonce and cnonce.
    Md5Sess,
}

impl Algorithm {
    /// The token written in the `algorithm` parameter.
    pub const fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
        }
    }
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space; credentials and nonces are kept per realm.
    pub realm: String,
    /// Server nonce, echoed in the answer.
    pub nonce: String,
    /// Opaque server data, echoed unchanged when present.
    pub opaque: Option<String>,
    /// The hash to use.
    pub algorithm: Algorithm,
    /// Whether to answer with `qop=auth` (the server offered it). `false`
    /// when the server sent no qop: the RFC 2069 form without nc/cnonce.
    pub qop_auth: bool,
    /// The previous answer failed only because its nonce expired: retry
    /// with the new nonce, the password is right (RFC 2617 3.2.1).
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value (RFC 3261
    /// 25.1 `challenge`). Tolerates any spacing, quoted or bare values and
    /// unknown parameters.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let value = value.trim();
        let scheme_end = value
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(value.len());
        let (scheme, rest) = value.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest(scheme.to_string()));
        }
        let params = parse_params(rest)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let realm = param("realm").ok_or(DigestError::MissingParameter("realm"))?;
        let nonce = param("nonce").ok_or(DigestError::MissingParameter("nonce"))?;
        // RFC 2617 3.2.1: "If this is not present it is assumed to be MD5."
        let algorithm = match param("algorithm") {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5-sess") => Algorithm::Md5Sess,
            Some(other) => return Err(DigestError::UnsupportedAlgorithm(other)),
        };
        let qop_auth = match param("qop") {
            None => false,
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return Err(DigestError::UnsupportedQop(list));
                }
                true
            }
        };
        if algorithm == Algorithm::Md5Sess && !qop_auth {
            return Err(DigestError::SessionAlgorithmWithoutQop);
        }
        Ok(Challenge {
            realm,
            nonce,
            opaque: param("opaque"),
            algorithm,
            qop_auth,
            stale: param("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// Picks the challenge to answer among several of one response: the first
/// we can compute, since servers list their preferred algorithm first
/// (RFC 8760 2.4, RFC 7616 3.7).
pub fn select_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, DigestError> {
    let mut last = DigestError::Malformed("no challenge header");
    for value in values {
        match Challenge::parse(value) {
            Ok(challenge) => return Ok(challenge),
            Err(error) => last = error,
        }
    }
    Err(DigestError::NoUsableChallenge(Box::new(last)))
}

/// Splits `name=value` pairs separated by commas; values are tokens or
/// quoted strings with `\` escapes (RFC 3261 25.1 `auth-param`).
fn parse_params(input: &str) -> Result<Vec<(String, String)>, DigestError> {
    let bytes = input.as_bytes();
    let mut params = Vec::new();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        // Separators: commas and spaces, leniently in any number.
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(params);
        }
        let name_start = i;
        while i < bytes.len()
            && bytes[i] != b'='
            && bytes[i] != b','
            && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = &input[name_start..i];
        i = skip_space(i);
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(DigestError::Malformed("parameter without '='"));
        }
        i = skip_space(i + 1);
        let value = if bytes.get(i) == Some(&b'"') {
            let mut value = Vec::new();
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(DigestError::Malformed("unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let escaped = bytes
                            .get(i + 1)
                            .ok_or(DigestError::Malformed("unterminated quoted string"))?;
                        value.push(*escaped);
                        i += 2;
                    }
                    Some(&byte) => {
                        value.push(byte);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&value).into_owned()
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            input[start..i].to_string()
        };
        if name.is_empty() {
            return Err(DigestError::Malformed("parameter without a name"));
        }
        params.push((name.to_string(), value));
    }
}

/// A header to add to the retried request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `Authorization` or `Proxy-Authorization`.
    pub header: &'static str,
    /// The header value, starting with `Digest `.
    pub value: String,
}

/// What we remember about one realm between requests.
#[derive(Debug, Clone)]
struct RealmState {
    origin: ChallengeOrigin,
    challenge: Challenge,
    /// Requests answered with the current nonce; `nc` of the next is this
    /// plus one (RFC 2617 3.2.2: the server uses it to detect replays).
    nonce_count: u32,
}

/// Answers digest challenges with one account's credentials, keeping the
/// nonce and nonce count of each realm. Its `Debug` output leaves the
/// password out, so logging the client cannot leak it.
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    realms: HashMap<String, RealmState>,
}

impl std::fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realms", &self.realms)
            .finish()
    }
}

impl DigestClient {
    /// A client for one account.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> DigestClient {
        DigestClient {
            username: username.into(),
            password: password.into(),
            realms: HashMap::new(),
        }
    }

    /// Records a challenge received with a 401 ([`ChallengeOrigin::Server`])
    /// or 407 ([`ChallengeOrigin::Proxy`]). A new nonce restarts the nonce
    /// count; the same nonce again keeps counting, so no `nc` is reused.
    pub fn handle_challenge(&mut self, origin: ChallengeOrigin, challenge: Challenge) {
        match self.realms.get_mut(&challenge.realm) {
            Some(state) if state.challenge.nonce == challenge.nonce => {
                state.origin = origin;
                state.challenge = challenge;
            }
            _ => {
                self.realms.insert(
                    challenge.realm.clone(),
                    RealmState {
                        origin,
                        challenge,
                        nonce_count: 0,
                    },
                );
            }
        }
    }

    /// The realms that have challenged us, to answer preemptively.
    pub fn realms(&self) -> impl Iterator<Item = &str> {
        self.realms.keys().map(String::as_str)
    }

    /// The `nc` the last [`authorize`](Self::authorize) used for a realm.
    pub fn nonce_count(&self, realm: &str) -> Option<u32> {
        self.realms.get(realm).map(|s| s.nonce_count)
    }

    /// Builds the credentials for a request to `uri` (the Request-URI, RFC
    /// 3261 22.4) with `method`, answering the realm's latest challenge.
    /// `cnonce` is fresh client randomness; it is ignored without qop.
    pub fn authorize(
        &mut self,
        realm: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Result<Credentials, DigestError> {
        let state = self
            .realms
            .get_mut(realm)
            .ok_or_else(|| DigestError::UnknownRealm(realm.to_string()))?;
        state.nonce_count = state.nonce_count.wrapping_add(1);
        let challenge = &state.challenge;
        let nc = format!("{:08x}", state.nonce_count);
        let response = response(
            &self.username,
            &self.password,
            challenge,
            method,
            uri,
            challenge.qop_auth.then_some((nc.as_str(), cnonce)),
        );
        let mut value = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(&self.username),
            quote(&challenge.realm),
            quote(&challenge.nonce),
            quote(uri),
            challenge.algorithm.token(),
        );
        if let Some(opaque) = &challenge.opaque {
            let _ = write!(value, ", opaque={}", quote(opaque));
        }
        if challenge.qop_auth {
            let _ = write!(value, ", qop=auth, nc={nc}, cnonce={}", quote(cnonce));
        }
        Ok(Credentials {
            header: state.origin.credentials_header(),
            value,
        })
    }
}

/// The `request-digest` of RFC 2617 3.2.2.1, for `qop=auth` when
/// `qop_auth` holds `(nc, cnonce)` and the RFC 2069 form otherwise.
fn response(
    username: &str,
    password: &str,
    challenge: &Challenge,
    method: &str,
    uri: &str,
    qop_auth: Option<(&str, &str)>,
) -> String {
    let mut ha1 = md5_hex(&format!("{username}:{}:{password}", challenge.realm));
    if challenge.algorithm == Algorithm::Md5Sess {
        // RFC 2617 3.2.2.2; `Challenge::parse` guarantees qop (and so a cnonce).
        let cnonce = qop_auth.map_or("", |(_, cnonce)| cnonce);
        ha1 = md5_hex(&format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop_auth {
        Some((nc, cnonce)) => md5_hex(&format!(
            "{ha1}:{}:{nc}:{cnonce}:auth:{ha2}",
            challenge.nonce
        )),
        None => md5_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce)),
    }
}

fn md5_hex(input: &str) -> String {
    let digest = Md5::digest(input.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// A quoted-string with `"` and `\` escaped (RFC 3261 25.1).
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The challenge of RFC 2617 3.5.
    const RFC2617_CHALLENGE: &str = "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
        value
            .trim_start_matches("Digest ")
            .split(", ")
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    }

    #[test]
    fn rfc2617_example_gives_the_published_response() {
        let challenge = Challenge::parse(RFC2617_CHALLENGE).unwrap();
        assert_eq!(
            challenge,
            Challenge {
                realm: "testrealm@host.com".into(),
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
                opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
                algorithm: Algorithm::Md5,
                qop_auth: true,
                stale: false,
            }
        );
        let mut client = DigestClient::new("Mufasa", "Circle Of Life");
        client.handle_challenge(ChallengeOrigin::Server, challenge);
        let credentials = client
            .authorize("testrealm@host.com", "GET", "/dir/index.html", "0a4f113b")
            .unwrap();
        assert_eq!(credentials.header, "Authorization");
        assert_eq!(
            credentials.value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001, \
             cnonce=\"0a4f113b\""
        );
    }

    #[test]
    fn no_qop_challenge_uses_rfc2069_form() {
        // Asterisk chan_sip style: no qop, no opaque, bare algorithm.
        let challenge =
            Challenge::parse("Digest algorithm=MD5, realm=\"asterisk\", nonce=\"3d7a9b2c\"")
                .unwrap();
        assert!(!challenge.qop_auth);
        let mut client = DigestClient::new("6001", "s3cret");
        client.handle_challenge(ChallengeOrigin::Proxy, challenge);
        let credentials = client
            .authorize("asterisk", "REGISTER", "sip:pbx.example.com", "ignored")
            .unwrap();
        assert_eq!(credentials.header, "Proxy-Authorization");
        // MD5(MD5("6001:asterisk:s3cret"):3d7a9b2c:MD5("REGISTER:sip:pbx.example.com")),
        // computed independently with Python's hashlib.
        assert_eq!(
            credentials.value,
            "Digest username=\"6001\", realm=\"asterisk\", nonce=\"3d7a9b2c\", \
             uri=\"sip:pbx.example.com\", response=\"d83368106d190746088fef7a500df0e8\", \
             algorithm=MD5"
        );
        assert!(!credentials.value.contains("cnonce"));
        assert!(!credentials.value.contains("nc="));
    }

    #[test]
    fn nonce_count_increments_per_request_with_the_same_nonce() {
        let mut client = DigestClient::new("Mufasa", "Circle Of Life");
        client.handle_challenge(
            ChallengeOrigin::Server,
            Challenge::parse(RFC2617_CHALLENGE).unwrap(),
        );
        let realm = "testrealm@host.com";
        let first = client.authorize(realm, "INVITE", "sip:a@b", "c1").unwrap();
        let second = client.authorize(realm, "INVITE", "sip:a@b", "c1").unwrap();
        assert_eq!(param(&first.value, "nc"), Some("00000001"));
        assert_eq!(param(&second.value, "nc"), Some("00000002"));
        assert_ne!(
            param(&first.value, "response"),
            param(&second.value, "response")
        );
        // The same nonce challenged again keeps counting: nc is never reused.
        client.handle_challenge(
            ChallengeOrigin::Server,
            Challenge::parse(RFC2617_CHALLENGE).unwrap(),
        );
        let third = client.authorize(realm, "INVITE", "sip:a@b", "c1").unwrap();
        assert_eq!(param(&third.value, "nc"), Some("00000003"));
        assert_eq!(client.nonce_count(realm), Some(3));
    }

    #[test]
    fn nonce_count_is_hexadecimal() {
        let mut client = DigestClient::new("u", "p");
        client.handle_challenge(
            ChallengeOrigin::Server,
            Challenge::parse("Digest realm=r, nonce=n, qop=auth").unwrap(),
        );
        let mut last = String::new();
        for _ in 0..26 {
            last = client.authorize("r", "BYE", "sip:x", "c").unwrap().value;
        }
        assert_eq!(param(&last, "nc"), Some("0000001a"));
    }

    #[test]
    fn stale_nonce_restarts_the_count_with_the_new_nonce() {
        let mut client = DigestClient::new("Mufasa", "Circle Of Life");
        let realm = "testrealm@host.com";
        client.handle_challenge(
            ChallengeOrigin::Server,
            Challenge::parse(RFC2617_CHALLENGE).unwrap(),
        );
        client
            .authorize(realm, "REGISTER", "sip:host.com", "c1")
            .unwrap();
        client
            .authorize(realm, "REGISTER", "sip:host.com", "c2")
            .unwrap();
        let stale = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"fresh-nonce-2\", qop=auth, stale=TRUE",
        )
        .unwrap();
        assert!(stale.stale);
        client.handle_challenge(ChallengeOrigin::Server, stale);
        let retry = client
            .authorize(realm, "REGISTER", "sip:host.com", "c3")
            .unwrap();
        assert_eq!(param(&retry.value, "nc"), Some("00000001"));
        assert_eq!(param(&retry.value, "nonce"), Some("\"fresh-nonce-2\""));
        // The new challenge carried no opaque, so none is echoed.
        assert_eq!(param(&retry.value, "opaque"), None);
    }

    #[test]
    fn realms_are_kept_apart_and_answered_in_their_own_header() {
        let mut client = DigestClient::new("u", "p");
        client.handle_challenge(
            ChallengeOrigin::Proxy,
            Challenge::parse("Digest realm=\"proxy\", nonce=\"a\", qop=auth").unwrap(),
        );
        client.handle_challenge(
            ChallengeOrigin::Server,
            Challenge::parse("Digest realm=\"pbx\", nonce=\"b\", qop=auth").unwrap(),
        );
        client.authorize("proxy", "INVITE", "sip:x", "c").unwrap();
        let proxy = client.authorize("proxy", "INVITE", "sip:x", "c").unwrap();
        let server = client.authorize("pbx", "INVITE", "sip:x", "c").unwrap();
        assert_eq!(proxy.header, "Proxy-Authorization");
        assert_eq!(param(&proxy.value, "nc"), Some("00000002"));
        assert_eq!(server.header, "Authorization");
        assert_eq!(param(&server.value, "nc"), Some("00000001"));
        assert_eq!(
            client.authorize("elsewhere", "INVITE", "sip:x", "c"),
            Err(DigestError::UnknownRealm("elsewhere".into()))
        );
        let mut realms: Vec<&str> = client.realms().collect();
        realms.sort_unstable();
        assert_eq!(realms, ["pbx", "proxy"]);
    }

    #[test]
    fn md5_sess_matches_rfc2617_definition() {
        let challenge =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=md5-sess, qop=\"auth\"")
                .unwrap();
        assert_eq!(challenge.algorithm, Algorithm::Md5Sess);
        let mut client = DigestClient::new("u", "p");
        client.handle_challenge(ChallengeOrigin::Server, challenge);
        let credentials = client.authorize("r", "INVITE", "sip:x", "cn").unwrap();
        // HA1 = MD5(MD5(u:r:p):n:cn), response = MD5(HA1:n:00000001:cn:auth:MD5(INVITE:sip:x)),
        // computed independently with Python's hashlib.
        assert_eq!(
            param(&credentials.value, "response"),
            Some("\"c5e2bb6714f4fad9ef892539b98b083d\"")
        );
        assert_eq!(param(&credentials.value, "algorithm"), Some("MD5-sess"));
    }

    #[test]
    fn parser_tolerates_spacing_quoting_and_unknown_parameters() {
        let challenge = Challenge::parse(
            "digest   realm = \"a \\\"quoted\\\" realm\" ,, nonce=abc123 ,domain=\"sip:x sip:y\",\
             x-vendor=\"whatever, with comma\", qop = auth-int , auth , stale=false",
        );
        // "qop = auth-int , auth" is a bare value followed by a bare "auth"
        // token without '=': not valid auth-param syntax.
        assert_eq!(
            challenge,
            Err(DigestError::Malformed("parameter without '='"))
        );
        let challenge = Challenge::parse(
            "digest   realm = \"a \\\"quoted\\\" realm\" ,, nonce=abc123 ,domain=\"sip:x sip:y\",\
             x-vendor=\"whatever, with comma\", qop = \"auth-int , auth\" , stale=false",
        )
        .unwrap();
        assert_eq!(challenge.realm, "a \"quoted\" realm");
        assert_eq!(challenge.nonce, "abc123");
        assert!(challenge.qop_auth);
        assert!(!challenge.stale);
        assert_eq!(challenge.opaque, None);
        let mut client = DigestClient::new("us\"er", "p");
        client.handle_challenge(ChallengeOrigin::Server, challenge);
        let value = client
            .authorize("a \"quoted\" realm", "INVITE", "sip:x", "c")
            .unwrap()
            .value;
        assert!(value.starts_with("Digest username=\"us\\\"er\", realm=\"a \\\"quoted\\\" realm\""));
    }

    #[test]
    fn unusable_challenges_are_typed_errors() {
        let cases = [
            ("Basic realm=\"x\"", DigestError::NotDigest("Basic".into())),
            ("", DigestError::NotDigest(String::new())),
            ("Digest nonce=\"n\"", DigestError::MissingParameter("realm")),
            ("Digest realm=\"r\"", DigestError::MissingParameter("nonce")),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                DigestError::UnsupportedAlgorithm("SHA-256".into()),
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                DigestError::UnsupportedQop("auth-int".into()),
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess",
                DigestError::SessionAlgorithmWithoutQop,
            ),
            (
                "Digest realm=\"r, nonce=\"n\"",
                DigestError::Malformed("parameter without '='"),
            ),
            (
                "Digest realm=\"r",
                DigestError::Malformed("unterminated quoted string"),
            ),
            (
                "Digest realm",
                DigestError::Malformed("parameter without '='"),
            ),
            (
                "Digest =x",
                DigestError::Malformed("parameter without a name"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(Challenge::parse(value), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn select_challenge_takes_the_first_we_can_answer() {
        let values = [
            "Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"n2\", algorithm=MD5, qop=\"auth\"",
        ];
        assert_eq!(select_challenge(values).unwrap().nonce, "n2");
        assert_eq!(
            select_challenge(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"]),
            Err(DigestError::NoUsableChallenge(Box::new(
                DigestError::UnsupportedAlgorithm("SHA-256".into())
            )))
        );
        assert!(matches!(
            select_challenge([]),
            Err(DigestError::NoUsableChallenge(_))
        ));
    }

    #[test]
    fn debug_output_does_not_show_the_password() {
        let client = DigestClient::new("6001", "hunter2-secret");
        let shown = format!("{client:?}");
        assert!(shown.contains("6001"));
        assert!(!shown.contains("hunter2-secret"));
    }

    #[test]
    fn origin_follows_the_status() {
        assert_eq!(
            ChallengeOrigin::from_status(401),
            Some(ChallengeOrigin::Server)
        );
        assert_eq!(
            ChallengeOrigin::from_status(407),
            Some(ChallengeOrigin::Proxy)
        );
        assert_eq!(ChallengeOrigin::from_status(403), None);
        assert_eq!(
            ChallengeOrigin::Proxy.challenge_header(),
            "Proxy-Authenticate"
        );
        assert_eq!(
            ChallengeOrigin::Server.challenge_header(),
            "WWW-Authenticate"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let alphabet = b"Digest realm=\"\\, nonce qop auth";
        for len in 0..400 {
            let mut text = Vec::new();
            for _ in 0..len % 60 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let byte = if state % 5 == 0 {
                    (state >> 16) as u8
                } else {
                    alphabet[(state >> 16) as usize % alphabet.len()]
                };
                text.push(byte);
            }
            let _ = Challenge::parse(&String::from_utf8_lossy(&text));
        }
        for end in 0..=RFC2617_CHALLENGE.len() {
            let _ = Challenge::parse(&RFC2617_CHALLENGE[..end]);
        }
    }
}
