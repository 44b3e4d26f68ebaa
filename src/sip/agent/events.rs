//! What the agent and each call report to the application.

use super::handle::IncomingCall;
use super::transfer::TransferFailure;

/// Something the agent reports.
#[derive(Debug)]
pub enum AgentEvent {
    /// A new call. It has had 100 Trying; the application rings, answers
    /// or rejects it.
    IncomingCall(IncomingCall),
    /// The registrar accepted our binding (again) for `expires` seconds.
    Registered {
        /// The lifetime the registrar granted (RFC 3261 10.2.4).
        expires: u32,
    },
    /// A REGISTER failed; the agent retries with backoff.
    RegistrationFailed {
        /// Why.
        reason: RegistrationFailure,
    },
    /// At shutdown, the registrar removed our binding (Expires: 0).
    Unregistered,
}

/// Why a REGISTER failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationFailure {
    /// Our credentials were refused: a second challenge after we answered
    /// the first (RFC 3261 22.2), or the account has no password.
    #[error("the registrar refused our credentials ({status})")]
    AuthenticationFailed {
        /// 401 or 407.
        status: u16,
    },
    /// The registrar answered with a failure status.
    #[error("the registrar answered {status}")]
    Rejected {
        /// The final status.
        status: u16,
    },
    /// The registrar granted a lifetime of 0: no binding.
    #[error("the registrar granted no lifetime")]
    NoLifetime,
    /// No response, or the request could not be sent.
    #[error("the registrar could not be reached: {detail}")]
    Unreachable {
        /// What the stack reported.
        detail: String,
    },
}

/// Something that happened to one call. The last event of every call is
/// one of [`CallEvent::RemoteHangup`], [`CallEvent::Cancelled`] or
/// [`CallEvent::Ended`]; the stream closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The caller acknowledged our answer (ACK, RFC 3261 13.3.1.4): media
    /// may flow both ways.
    Established,
    /// The other side hung up (BYE).
    RemoteHangup,
    /// The caller gave up before we answered (CANCEL, RFC 3261 9.2); the
    /// INVITE was answered 487.
    Cancelled,
    /// The other side changed the session (hold, resume, new media
    /// address) with this offer; the agent has answered it 200 with our
    /// media (RFC 3264 8). For a re-INVITE without an offer the agent
    /// offered our media in the 200 and this is the answer the ACK brought
    /// (RFC 3261 14.2); an ACK without a usable answer leaves the session
    /// as it was and reports nothing.
    ReInvite {
        /// The new offer, or the answer from the ACK.
        sdp: String,
    },
    /// The other side asks us to call `target` (REFER, RFC 3515); only
    /// with `AgentConfig::accept_refer`. The REFER was answered 202; report
    /// how the call to the target goes with
    /// [`CallControl::notify_transfer`](super::CallControl::notify_transfer),
    /// a final status last. A later REFER on the same call supersedes this
    /// one: the agent reports 487 on this one and a new `Referred` follows.
    Referred {
        /// The Refer-To URI, with its own parameters (`;transport=tcp`)
        /// but without the angle brackets and the header's parameters.
        target: String,
    },
    /// A transfer is under way: the transferee reported this provisional
    /// status from the target (RFC 3515 2.4.5).
    TransferProgress {
        /// 1xx.
        status: u16,
    },
    /// The transfer target answered; the agent has hung up its leg.
    TransferSucceeded,
    /// The transfer failed; the call is ours again unless it ended.
    TransferFailed(TransferFailure),
    /// The call ended for a reason other than the two above.
    Ended(EndReason),
}

/// Why a call ended, when neither a remote BYE nor a CANCEL ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up.
    LocalHangup,
    /// We rejected the call before answering.
    Rejected,
    /// A transfer succeeded and we left the call.
    Transferred,
    /// Our 2xx was never acknowledged (RFC 3261 13.3.1.4: 64*T1).
    AckTimeout,
    /// The application neither answered nor rejected the call within
    /// `AgentConfig::answer_timeout`; it was answered 480.
    Unanswered,
    /// The SIP stack ended the dialog (transport failure, timeout).
    Failed,
}
