//! The agent's errors: one enum for starting the agent, one for what can go
//! wrong with a call.

use std::net::SocketAddr;
use std::time::Duration;

use super::call::LocalSdpError;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A configured URI does not parse (RFC 3261 19.1).
    #[error("{field}: {value:?} is not a SIP URI")]
    InvalidUri {
        /// Which setting.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// Neither UDP nor TCP is enabled.
    #[error("no transport enabled: enable UDP, TCP or both")]
    NoTransport,
    /// The listening address is taken or not ours.
    #[error("cannot listen on {transport} {addr}: {source}; choose another port or stop the program using it")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The SIP stack refused its setup.
    #[error("the SIP stack failed to {what}: {detail}")]
    Stack {
        /// The step that failed.
        what: &'static str,
        /// The stack's message.
        detail: String,
    },
}

/// What went wrong with a call or a command on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A target or From URI does not parse.
    #[error("{value:?} is not a SIP URI")]
    InvalidUri {
        /// The text.
        value: String,
    },
    /// Our own SDP cannot be used.
    #[error("our SDP is unusable: {0}")]
    InvalidLocalSdp(#[from] LocalSdpError),
    /// The callee is busy (486 Busy Here, 600 Busy Everywhere).
    #[error("busy ({status})")]
    Busy {
        /// 486 or 600.
        status: u16,
    },
    /// The callee or a proxy declined the call.
    #[error("rejected with {status}")]
    Rejected {
        /// The final status.
        status: u16,
    },
    /// A proxy or the callee refused our credentials, or we have none.
    #[error("authentication failed ({status})")]
    AuthenticationFailed {
        /// 401 or 407.
        status: u16,
    },
    /// Nobody answered within the no-answer timeout; the INVITE was
    /// cancelled.
    #[error("no answer within {after:?}")]
    NoAnswer {
        /// The timeout.
        after: Duration,
    },
    /// The INVITE got no response at all (RFC 3261 17.1.1.2 Timer B).
    #[error("no response to the INVITE")]
    NoResponse,
    /// The request could not be sent (no route, connection refused).
    #[error("unreachable: {detail}")]
    Unreachable {
        /// What the stack reported.
        detail: String,
    },
    /// The call has ended; the command came too late.
    #[error("the call has ended")]
    CallEnded,
    /// The command needs an answered call; this one is still ringing, or
    /// answered but not yet acknowledged.
    #[error("the call is not established")]
    NotEstablished,
    /// The call was already answered or rejected.
    #[error("the call was already answered or rejected")]
    AlreadyDecided,
    /// A transfer is already under way.
    #[error("a transfer is already under way")]
    TransferInProgress,
    /// The agent is shutting down or stopped.
    #[error("the SIP agent has stopped")]
    AgentStopped,
}
