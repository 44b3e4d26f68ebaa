//! Answering digest challenges (RFC 3261 22) with [`crate::sip::digest`].
//!
//! rsipstack 0.7.14 answers challenges itself, but writes `qop="auth"`
//! quoted in the credentials, where RFC 2617 3.2.2 has a bare token;
//! Kamailio then checks the response as if there were no qop and refuses
//! the right password. So the agent answers REGISTER and INVITE challenges
//! here, and rsipstack never sees the account's credentials for them.
//!
//! Call order per request: [`Authenticator::begin`], send it with
//! [`Authenticator::preemptive`] credentials (a realm that challenged an
//! earlier request is answered with its nonce again and `nc` one higher,
//! RFC 2617 3.2.2), and on 401/407 call [`Authenticator::handle_challenge`]
//! for the header to retry with.

use rsipstack::sip::prelude::HasHeaders;
use rsipstack::sip::{Header, Response};

use crate::sip::digest::{self, ChallengeOrigin, Credentials, DigestClient, DigestError};

/// Challenges answered for one request before giving up: a stale nonce
/// and a second realm may each need one more round.
const MAX_ROUNDS: usize = 3;

/// Why a challenge is not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthRefused {
    /// The same nonce challenged our answer again without `stale=true`:
    /// the password is wrong (RFC 2617 3.2.1).
    #[error("our credentials were refused")]
    CredentialsRefused,
    /// Too many rounds for one request.
    #[error("challenged {MAX_ROUNDS} times for one request")]
    TooManyRounds,
    /// The challenge cannot be answered.
    #[error("unusable challenge: {0}")]
    Unusable(#[from] DigestError),
}

/// One account's digest state across requests.
#[derive(Debug, Clone)]
pub(crate) struct Authenticator {
    client: DigestClient,
    /// Nonces answered for the current request.
    answered: Vec<String>,
}

impl Authenticator {
    pub(crate) fn new(username: &str, password: &str) -> Authenticator {
        Authenticator {
            client: DigestClient::new(username, password),
            answered: Vec::new(),
        }
    }

    /// A new request begins: no challenge of it answered yet.
    pub(crate) fn begin(&mut self) {
        self.answered.clear();
    }

    /// Credentials for every realm that challenged before, reusing its
    /// nonce with the next `nc`.
    pub(crate) fn preemptive(&mut self, method: &str, uri: &str) -> Vec<Header> {
        let realms: Vec<String> = self.client.realms().map(str::to_string).collect();
        realms
            .iter()
            .filter_map(|realm| {
                let cnonce = rsipstack::transaction::random_text(16);
                self.client.authorize(realm, method, uri, &cnonce).ok()
            })
            .map(header)
            .collect()
    }

    /// A 401 or 407 to our request: the header to send it again with.
    pub(crate) fn handle_challenge(
        &mut self,
        response: &Response,
        method: &str,
        uri: &str,
    ) -> Result<Header, AuthRefused> {
        let status = response.status_code.code();
        let Some(origin) = ChallengeOrigin::from_status(status) else {
            debug_assert!(false, "not a challenge: {status}");
            return Err(AuthRefused::CredentialsRefused);
        };
        let values: Vec<String> = response
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(origin.challenge_header()))
            .map(|h| h.value().to_string())
            .collect();
        let challenge = digest::select_challenge(values.iter().map(String::as_str))?;
        if self.answered.len() >= MAX_ROUNDS {
            return Err(AuthRefused::TooManyRounds);
        }
        if !challenge.stale && self.answered.contains(&challenge.nonce) {
            return Err(AuthRefused::CredentialsRefused);
        }
        self.answered.push(challenge.nonce.clone());
        let realm = challenge.realm.clone();
        self.client.handle_challenge(origin, challenge);
        let cnonce = rsipstack::transaction::random_text(16);
        Ok(header(self.client.authorize(&realm, method, uri, &cnonce)?))
    }
}

fn header(credentials: Credentials) -> Header {
    if credentials.header == ChallengeOrigin::Proxy.credentials_header() {
        Header::ProxyAuthorization(credentials.value.into())
    } else {
        Header::Authorization(credentials.value.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(status: u16, header: &str, nonce: &str, stale: bool) -> Response {
        let reason = if status == 401 {
            "Unauthorized"
        } else {
            "Proxy Authentication Required"
        };
        let stale = if stale { ", stale=true" } else { "" };
        format!(
            "SIP/2.0 {status} {reason}\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n\
             From: <sip:200@pbx>;tag=a\r\n\
             To: <sip:200@pbx>;tag=b\r\n\
             Call-ID: c\r\n\
             CSeq: 1 REGISTER\r\n\
             {header}: Digest realm=\"pbx\", nonce=\"{nonce}\", qop=\"auth\"{stale}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_str()
        .try_into()
        .expect("a valid response")
    }

    fn value(header: &Header) -> String {
        header.value().to_string()
    }

    #[test]
    fn answers_a_401_with_an_unquoted_qop_and_reuses_the_nonce_after() {
        let mut auth = Authenticator::new("200", "secret");
        auth.begin();
        assert!(auth.preemptive("REGISTER", "sip:pbx").is_empty());
        let answer = auth
            .handle_challenge(
                &challenge(401, "WWW-Authenticate", "n1", false),
                "REGISTER",
                "sip:pbx",
            )
            .expect("answered");
        assert!(matches!(answer, Header::Authorization(_)));
        let text = value(&answer);
        assert!(text.contains("qop=auth, nc=00000001"), "{text}");
        // The next request carries credentials at once, nc one higher.
        auth.begin();
        let next = auth.preemptive("REGISTER", "sip:pbx");
        assert_eq!(next.len(), 1);
        assert!(value(&next[0]).contains("nonce=\"n1\""));
        assert!(value(&next[0]).contains("nc=00000002"));
    }

    #[test]
    fn a_407_is_answered_with_proxy_authorization() {
        let mut auth = Authenticator::new("200", "secret");
        auth.begin();
        let answer = auth
            .handle_challenge(
                &challenge(407, "Proxy-Authenticate", "n1", false),
                "INVITE",
                "sip:300@pbx",
            )
            .expect("answered");
        assert!(matches!(answer, Header::ProxyAuthorization(_)));
    }

    #[test]
    fn the_same_nonce_twice_means_a_wrong_password_unless_stale() {
        let mut auth = Authenticator::new("200", "wrong");
        auth.begin();
        let first = challenge(401, "WWW-Authenticate", "n1", false);
        assert!(auth.handle_challenge(&first, "REGISTER", "sip:pbx").is_ok());
        assert_eq!(
            auth.handle_challenge(&first, "REGISTER", "sip:pbx"),
            Err(AuthRefused::CredentialsRefused)
        );
        // A stale nonce is answered again, up to the round limit.
        auth.begin();
        let stale = challenge(401, "WWW-Authenticate", "n2", true);
        for _ in 0..MAX_ROUNDS {
            assert!(auth.handle_challenge(&stale, "REGISTER", "sip:pbx").is_ok());
        }
        assert_eq!(
            auth.handle_challenge(&stale, "REGISTER", "sip:pbx"),
            Err(AuthRefused::TooManyRounds)
        );
    }
}
