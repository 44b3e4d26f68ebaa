//! What the agent is told at start: where it listens, how it is reached
//! from outside, the PBX account it registers, and its inbound policy.
//!
//! URIs are kept as text here so a configuration file or the command line
//! can build this without the SIP stack's types; [`SipAgent::start`]
//! checks them and answers a typed error for one that does not parse.
//!
//! [`SipAgent::start`]: super::SipAgent::start

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The agent's configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Address to bind. UDP and TCP share the port; port 0 picks a free
    /// one (tests), see [`SipAgent::local_addr`](super::SipAgent::local_addr).
    pub listen: SocketAddr,
    /// Which transports to listen on.
    pub transports: Transports,
    /// The address peers must use to reach us when we sit behind NAT. It
    /// goes in Via, Contact and (through the application) SDP, and wins over
    /// the address the registrar reports back (RFC 3581 `received`/`rport`).
    pub public_address: Option<SocketAddr>,
    /// The PBX extension to register, if any.
    pub account: Option<Account>,
    /// Incoming calls handled at once; one more is answered 486 Busy Here.
    /// Outgoing calls do not count: they carry no speech recognition.
    pub max_calls: usize,
    /// Sources allowed to send us requests; others are answered 403.
    /// `None` allows everyone (a lab PBX on a private network).
    pub allowed_sources: Option<Vec<IpAddr>>,
    /// The `User-Agent` and `Server` value.
    pub user_agent: String,
    /// How long a REFER may take to report a final outcome before the
    /// transfer counts as failed and the call is ours again. RFC 3515 sets
    /// no bound; a transfer target that rings out takes tens of seconds.
    pub transfer_timeout: Duration,
    /// How long an outgoing call may go unanswered before we CANCEL it.
    pub no_answer_timeout: Duration,
    /// How long an incoming call may wait for the application to answer
    /// or reject it; past that it is answered 480 Temporarily Unavailable
    /// (RFC 3261 21.4.18) and ends with `EndReason::Unanswered`.
    pub answer_timeout: Duration,
    /// Whether the other side of a call may transfer us with REFER (RFC
    /// 3515): we answer 202, report `CallEvent::Referred` and the
    /// application reports progress with `CallControl::notify_transfer`.
    /// For roles that act as the transferee, a test caller or a softphone;
    /// the agent answering a PBX's calls leaves it off and refuses REFER
    /// with 405.
    pub accept_refer: bool,
    /// The user part of our Contact when no account is configured.
    pub contact_user: String,
}

impl AgentConfig {
    /// A configuration listening on `listen` over UDP and TCP, with no
    /// account, no access list and the default limits.
    pub fn new(listen: SocketAddr) -> AgentConfig {
        AgentConfig {
            listen,
            transports: Transports::default(),
            public_address: None,
            account: None,
            max_calls: 4,
            allowed_sources: None,
            user_agent: format!("switchboard/{}", env!("CARGO_PKG_VERSION")),
            transfer_timeout: Duration::from_secs(30),
            no_answer_timeout: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(30),
            accept_refer: false,
            contact_user: "switchboard".to_string(),
        }
    }
}

/// The transports to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// Listen on UDP.
    pub udp: bool,
    /// Listen on TCP (same port as UDP).
    pub tcp: bool,
}

impl Default for Transports {
    fn default() -> Transports {
        Transports {
            udp: true,
            tcp: true,
        }
    }
}

/// The extension the agent registers on the PBX (RFC 3261 10).
#[derive(Clone)]
pub struct Account {
    /// The registrar's URI, the Request-URI of REGISTER, e.g. `sip:pbx.example.com`.
    pub registrar: String,
    /// The address of record, To and From of REGISTER, e.g. `sip:200@pbx.example.com`.
    pub id: String,
    /// The digest user name.
    pub username: String,
    /// The digest password.
    pub password: String,
    /// Where every request goes first, whatever its Request-URI.
    pub outbound_proxy: Option<String>,
    /// The registration lifetime we ask for, in seconds; the registrar may
    /// grant less (RFC 3261 10.2.1.1).
    pub expires: u32,
}

impl std::fmt::Debug for Account {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("registrar", &self.registrar)
            .field("id", &self.id)
            .field("username", &self.username)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}
