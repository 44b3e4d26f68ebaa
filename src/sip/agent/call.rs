//! One call's state and what to do next, without I/O.
//!
//! Contract: [`CallCore`] never reads the clock, never touches a socket and
//! never spawns. The driver ([`super::call_task`]) feeds it three kinds of
//! input and carries out the [`CallAction`]s it returns, in order:
//!
//! - [`CallCore::handle_command`]: what the application asked (ring,
//!   answer, reject, hang up, transfer, report on a REFER it follows). A
//!   command that does not fit the state is refused with a [`CallError`]
//!   and changes nothing.
//! - [`CallCore::handle`]: what the peer or the SIP stack did (ACK, CANCEL,
//!   BYE, re-INVITE, NOTIFY, REFER, the REFER's response, the dialog
//!   ending). Every in-dialog request handed in gets exactly one
//!   [`CallAction::Respond`].
//! - [`CallCore::handle_timeout`] once [`CallCore::poll_timeout`] is due.
//!
//! States: `Ringing → Answered → Established ⇄ Transferring → Ended`. An
//! outgoing call starts `Established` (the stack has ACKed the 2xx). A
//! ringing call the application leaves undecided for
//! `AgentConfig::answer_timeout` is answered 480 and ends.
//!
//! Beside the state, two exchanges can be open on an established call:
//!
//! - An offer of ours in the 200 to a re-INVITE that had none (RFC 3261
//!   14.2): its answer comes in the ACK. Until then a new offer is refused
//!   491 (RFC 3261 14.2, RFC 3311 5.2).
//! - A REFER we accepted as the transferee (`AgentConfig::accept_refer`):
//!   its implicit subscription (RFC 3515 2.4.4) stays active until the
//!   application reports a final status. RFC 3515 2.4.6 lets a dialog
//!   carry several REFERs, so a second one is accepted too; it supersedes
//!   the first, whose subscription we end with a 487 report, and NOTIFYs
//!   for it carry `id=` its CSeq number.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::config::AgentConfig;
use super::errors::CallError;
use super::events::{CallEvent, EndReason};
use super::transfer::{
    refer_to_target, sipfrag_status, ReferReport, TransferFailure, TransferOutcome,
};
use crate::sip::sdp::{self, Direction, SdpError};

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// An incoming INVITE the application has not answered.
    Ringing,
    /// We sent 200 OK; the ACK has not come.
    Answered,
    /// The dialog is confirmed and no transfer is under way.
    Established,
    /// A REFER is out; we wait for its final report.
    Transferring,
    /// Over; nothing more is sent.
    Ended,
}

/// Our side of the media session, read from the SDP we sent, so that a
/// re-INVITE can be answered with the same address and a higher `o=`
/// version (RFC 3264 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address our RTP is received on (`c=`).
    pub ip: IpAddr,
    /// The RTP port of our audio stream (`m=audio`).
    pub port: u16,
    /// The `o=` session id.
    pub session_id: u64,
    /// The `o=` version of the last SDP we sent.
    pub version: u64,
}

/// Why our own SDP cannot be used for the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalSdpError {
    /// It does not parse.
    #[error(transparent)]
    Parse(#[from] SdpError),
    /// It has no `o=` line with numeric session id and version (RFC 4566 5.2).
    #[error("no o= line with a numeric session id and version")]
    Origin,
    /// It has no active audio stream with a connection address.
    #[error("no audio stream with a port and a connection address")]
    NoAudio,
}

impl LocalMedia {
    /// Reads our media address and `o=` numbers from the SDP we send.
    pub fn from_sdp(text: &str) -> Result<LocalMedia, LocalSdpError> {
        let session = sdp::parse(text.as_bytes())?;
        let origin = session.origin.as_ref().ok_or(LocalSdpError::Origin)?;
        let session_id = origin
            .session_id
            .parse()
            .map_err(|_| LocalSdpError::Origin)?;
        let version = origin.version.parse().map_err(|_| LocalSdpError::Origin)?;
        let (ip, port) = session
            .media
            .iter()
            .filter(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
            .find_map(|m| session.connection_of(m).map(|ip| (ip, m.port)))
            .ok_or(LocalSdpError::NoAudio)?;
        Ok(LocalMedia {
            ip,
            port,
            session_id,
            version,
        })
    }
}

/// What the application asks of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallCommand {
    /// Send 180 Ringing.
    Ring,
    /// Send 200 OK with our SDP answer.
    Answer {
        /// The answer text.
        sdp: String,
        /// What [`LocalMedia::from_sdp`] read from it.
        local: LocalMedia,
    },
    /// Send this final failure status to the INVITE.
    Reject {
        /// 3xx-6xx.
        status: u16,
    },
    /// End the call.
    Hangup,
    /// Blind transfer to this URI (REFER, RFC 3515).
    Transfer {
        /// The Refer-To URI.
        target: String,
    },
    /// Report on the REFER we follow: NOTIFY with this sipfrag status line.
    NotifyTransfer {
        /// The status of our request to the Refer-To target.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
}

/// An in-dialog request other than BYE, re-INVITE, UPDATE, NOTIFY and
/// REFER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InDialogRequest {
    /// OPTIONS: answered 200 (RFC 3261 11.2).
    Options,
    /// INFO: answered 200; DTMF travels in RTP (RFC 4733), not here.
    Info,
    /// MESSAGE and anything else the stack hands over.
    Other,
}

/// How the SIP stack ended a dialog on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StackEnd {
    /// A timer ran out: for an answered call, the ACK never came.
    Timeout,
    /// Any other failure the stack reports.
    Failed,
}

/// What the peer or the SIP stack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallInput {
    /// The stack reports the dialog confirmed: the ACK for our 2xx to the
    /// INVITE or a re-INVITE, or the end of another in-dialog request.
    AckReceived {
        /// The CSeq number of the last ACK the stack received, if any: it
        /// tells which INVITE was acknowledged.
        cseq: Option<u32>,
        /// That ACK's body: the answer when our 2xx carried the offer.
        answer: Option<Vec<u8>>,
    },
    /// CANCEL for the INVITE; the stack has answered it 200 and the INVITE
    /// 487.
    CancelReceived,
    /// BYE; the stack has answered it 200.
    ByeReceived,
    /// A re-INVITE, with its offer if it carries one.
    ReInviteReceived {
        /// Its CSeq number, to match the ACK that may carry an answer.
        cseq: u32,
        /// The body.
        offer: Option<Vec<u8>>,
    },
    /// An UPDATE (RFC 3311), with its offer if it carries one.
    UpdateReceived {
        /// The body.
        offer: Option<Vec<u8>>,
    },
    /// A NOTIFY.
    NotifyReceived {
        /// Whether its Event is `refer` (RFC 3515 2.4.4).
        refer_event: bool,
        /// Its body, a `message/sipfrag` for refer.
        body: Vec<u8>,
    },
    /// A REFER (RFC 3515).
    ReferReceived {
        /// Its CSeq number, the `id` of NOTIFYs for a second REFER (RFC
        /// 3515 2.4.6).
        cseq: u32,
        /// The values of its Refer-To headers.
        refer_to: Vec<String>,
    },
    /// Another in-dialog request.
    RequestReceived(InDialogRequest),
    /// The final response to our REFER; `None` when none came.
    ReferAnswered {
        /// Its status.
        status: Option<u16>,
    },
    /// The stack ended the dialog.
    DialogEnded(StackEnd),
}

/// The response to the in-dialog request just handed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The status.
    pub status: u16,
    /// An SDP body, for a re-INVITE or UPDATE.
    pub sdp: Option<String>,
    /// Whether to list the methods we accept (405, RFC 3261 20.5).
    pub allow: bool,
    /// For a failure status: why, for the log.
    pub why: Option<&'static str>,
}

impl Reply {
    fn ok(sdp: Option<String>) -> Reply {
        Reply {
            status: 200,
            sdp,
            allow: false,
            why: None,
        }
    }

    fn accepted() -> Reply {
        Reply {
            status: 202,
            ..Reply::ok(None)
        }
    }

    fn refuse(status: u16, why: &'static str) -> Reply {
        Reply {
            status,
            sdp: None,
            allow: false,
            why: Some(why),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallAction {
    /// 180 Ringing to the INVITE.
    SendRinging,
    /// 200 OK to the INVITE with this SDP.
    SendAnswer {
        /// The SDP answer.
        sdp: String,
    },
    /// A final failure response to the INVITE.
    SendReject {
        /// 3xx-6xx.
        status: u16,
    },
    /// BYE.
    SendBye,
    /// REFER with `Refer-To: target`.
    SendRefer {
        /// The URI.
        target: String,
    },
    /// NOTIFY reporting on a REFER we follow; sent in order, after the
    /// ones before it.
    SendNotify(ReferReport),
    /// Answer the in-dialog request just handed in.
    Respond(Reply),
    /// Tell the application.
    Emit(CallEvent),
    /// Complete the application's pending transfer command.
    FinishTransfer(TransferOutcome),
}

const NO_DIALOG: &str = "the call has ended or not begun (RFC 3261 12.2.2)";
const UNREADABLE_SDP: &str = "the offer is not readable SDP";
const OFFER_PENDING: &str =
    "our offer in the 200 to a re-INVITE awaits its answer in the ACK (RFC 3261 14.2)";

/// The status a ringing call nobody decided on gets: RFC 3261 21.4.18,
/// as for a ringing call the application hangs up.
const UNANSWERED_STATUS: u16 = 480;

/// The call's timers, named by purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallTimer {
    /// The application has this long to answer or reject a ringing call.
    Answer,
    /// RFC 3515 sets no bound on a transfer; past this deadline it counts
    /// as failed and the call is ours again.
    TransferOutcome,
}

/// A REFER we accepted as the transferee, whose subscription is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FollowedRefer {
    /// The `id` its NOTIFYs carry: the REFER's CSeq number, for all but the
    /// first REFER of the dialog (RFC 3515 2.4.6).
    event_id: Option<u32>,
}

/// One call's state machine. See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct CallCore {
    state: CallState,
    /// Set once we have answered or offered; re-INVITEs are answered from it.
    local_media: Option<LocalMedia>,
    /// The last SDP we sent: an answer that would be the same keeps its
    /// `o=` version (RFC 3264 8).
    last_local_sdp: Option<String>,
    /// The application hung up after our 200 OK, before the ACK: RFC 3261
    /// 15 forbids BYE until the ACK arrives, so it waits.
    hangup_after_ack: bool,
    /// A REFER went out on this dialog: NOTIFYs for `refer` belong to its
    /// implicit subscription (RFC 3515 2.4.4), even after the transfer
    /// failed or timed out.
    referred: bool,
    transfer_timeout: Duration,
    /// Whether the peer may transfer us (REFER answered 202) or not (405).
    accept_refer: bool,
    /// The REFER we follow as the transferee, until its final report.
    followed_refer: Option<FollowedRefer>,
    /// REFERs accepted on this dialog: all but the first are told apart by
    /// `id` (RFC 3515 2.4.6).
    refers_accepted: u32,
    /// The CSeq number of the re-INVITE without an offer that we answered
    /// with ours: its ACK must bring the answer (RFC 3261 14.2).
    offer_awaiting_ack: Option<u32>,
    timer: Option<(CallTimer, Instant)>,
}

impl CallCore {
    /// An incoming call that has just had 100 Trying, handed to the
    /// application `now`.
    pub(crate) fn incoming(now: Instant, config: &AgentConfig) -> CallCore {
        CallCore {
            timer: Some((CallTimer::Answer, now + config.answer_timeout)),
            ..CallCore::new(CallState::Ringing, config)
        }
    }

    /// An outgoing call the callee answered with our `offer`; the stack has
    /// sent the ACK.
    pub(crate) fn outgoing(offer: String, local: LocalMedia, config: &AgentConfig) -> CallCore {
        CallCore {
            local_media: Some(local),
            last_local_sdp: Some(offer),
            ..CallCore::new(CallState::Established, config)
        }
    }

    fn new(state: CallState, config: &AgentConfig) -> CallCore {
        CallCore {
            state,
            local_media: None,
            last_local_sdp: None,
            hangup_after_ack: false,
            referred: false,
            transfer_timeout: config.transfer_timeout,
            accept_refer: config.accept_refer,
            followed_refer: None,
            refers_accepted: 0,
            offer_awaiting_ack: None,
            timer: None,
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> CallState {
        self.state
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(_, at)| at)
    }

    /// An application command; refused without effect when it does not fit
    /// the state.
    pub(crate) fn handle_command(
        &mut self,
        now: Instant,
        command: CallCommand,
    ) -> Result<Vec<CallAction>, CallError> {
        use CallState::*;
        match (self.state, command) {
            (Ended, _) => Err(CallError::CallEnded),
            (_, CallCommand::NotifyTransfer { status, reason }) => {
                self.report_refer(status, reason)
            }
            (Ringing, CallCommand::Ring) => Ok(vec![CallAction::SendRinging]),
            (Ringing, CallCommand::Answer { sdp, local }) => {
                self.state = Answered;
                self.timer = None;
                self.local_media = Some(local);
                self.last_local_sdp = Some(sdp.clone());
                Ok(vec![CallAction::SendAnswer { sdp }])
            }
            (Ringing, CallCommand::Reject { status }) => {
                self.state = Ended;
                self.timer = None;
                Ok(vec![
                    CallAction::SendReject { status },
                    CallAction::Emit(CallEvent::Ended(EndReason::Rejected)),
                ])
            }
            (_, CallCommand::Ring | CallCommand::Answer { .. } | CallCommand::Reject { .. }) => {
                Err(CallError::AlreadyDecided)
            }
            (Ringing, CallCommand::Hangup) => {
                // Nobody will answer: RFC 3261 21.4.18.
                self.state = Ended;
                self.timer = None;
                Ok(vec![
                    CallAction::SendReject {
                        status: UNANSWERED_STATUS,
                    },
                    CallAction::Emit(CallEvent::Ended(EndReason::LocalHangup)),
                ])
            }
            (Answered, CallCommand::Hangup) => {
                // RFC 3261 15: the callee must not send BYE before the ACK.
                self.hangup_after_ack = true;
                Ok(Vec::new())
            }
            (Established, CallCommand::Hangup) => Ok(self.hang_up()),
            (Transferring, CallCommand::Hangup) => {
                let mut actions = self.fail_transfer(TransferFailure::CallEnded);
                actions.extend(self.hang_up());
                Ok(actions)
            }
            (Ringing | Answered, CallCommand::Transfer { .. }) => Err(CallError::NotEstablished),
            (Transferring, CallCommand::Transfer { .. }) => Err(CallError::TransferInProgress),
            (Established, CallCommand::Transfer { target }) => {
                self.state = Transferring;
                self.referred = true;
                self.timer = Some((CallTimer::TransferOutcome, now + self.transfer_timeout));
                Ok(vec![CallAction::SendRefer { target }])
            }
        }
    }

    /// Something the peer or the stack did.
    pub(crate) fn handle(&mut self, _now: Instant, input: CallInput) -> Vec<CallAction> {
        use CallState::*;
        match input {
            CallInput::AckReceived { cseq, answer } => {
                if self.state != Answered {
                    return self.handle_answer_in_ack(cseq, answer);
                }
                self.state = Established;
                let mut actions = vec![CallAction::Emit(CallEvent::Established)];
                if self.hangup_after_ack {
                    actions.extend(self.hang_up());
                }
                actions
            }
            CallInput::CancelReceived => {
                // RFC 3261 9.2: after a final response a CANCEL changes nothing.
                if self.state != Ringing {
                    return Vec::new();
                }
                self.state = Ended;
                self.timer = None;
                vec![CallAction::Emit(CallEvent::Cancelled)]
            }
            CallInput::ByeReceived => {
                let mut actions = match self.state {
                    Ended => return Vec::new(),
                    Transferring => self.fail_transfer(TransferFailure::CallEnded),
                    _ => Vec::new(),
                };
                self.state = Ended;
                actions.push(CallAction::Emit(CallEvent::RemoteHangup));
                actions
            }
            CallInput::ReInviteReceived { cseq, offer } => match self.state {
                Established | Transferring => self.answer_offer(offer, Some(cseq)),
                // RFC 3261 14.2: our INVITE transaction has not completed.
                Answered => vec![CallAction::Respond(Reply::refuse(
                    491,
                    "re-INVITE before the ACK of our 2xx",
                ))],
                Ringing | Ended => vec![CallAction::Respond(Reply::refuse(481, NO_DIALOG))],
            },
            CallInput::UpdateReceived { offer } => match self.state {
                Answered | Established | Transferring => self.answer_offer(offer, None),
                Ringing | Ended => vec![CallAction::Respond(Reply::refuse(481, NO_DIALOG))],
            },
            CallInput::NotifyReceived { refer_event, body } => {
                self.handle_notify(refer_event, &body)
            }
            CallInput::ReferReceived { cseq, refer_to } => self.handle_refer(cseq, &refer_to),
            CallInput::RequestReceived(request) => {
                let reply = match (self.state, request) {
                    (Ended, _) => Reply::refuse(481, NO_DIALOG),
                    (_, InDialogRequest::Options | InDialogRequest::Info) => Reply::ok(None),
                    (_, InDialogRequest::Other) => Reply {
                        allow: true,
                        ..Reply::refuse(405, "method not accepted in a call")
                    },
                };
                vec![CallAction::Respond(reply)]
            }
            CallInput::ReferAnswered { status } => {
                if self.state != Transferring {
                    return Vec::new();
                }
                match status {
                    // 202 Accepted: the outcome comes in NOTIFY.
                    Some(200..=299) => Vec::new(),
                    Some(status) if status >= 300 => {
                        self.fail_transfer(TransferFailure::Refused { status })
                    }
                    Some(_) => Vec::new(),
                    None => self.fail_transfer(TransferFailure::NoResponse),
                }
            }
            CallInput::DialogEnded(end) => {
                let reason = match (self.state, end) {
                    (Ended, _) => return Vec::new(),
                    (Answered, StackEnd::Timeout) => EndReason::AckTimeout,
                    _ => EndReason::Failed,
                };
                let mut actions = if self.state == Transferring {
                    self.fail_transfer(TransferFailure::CallEnded)
                } else {
                    Vec::new()
                };
                self.state = Ended;
                actions.push(CallAction::Emit(CallEvent::Ended(reason)));
                actions
            }
        }
    }

    /// The timer that [`Self::poll_timeout`] announced is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<CallAction> {
        let Some((timer, at)) = self.timer else {
            return Vec::new();
        };
        if now < at {
            return Vec::new();
        }
        self.timer = None;
        match timer {
            CallTimer::Answer => {
                if self.state != CallState::Ringing {
                    return Vec::new();
                }
                self.state = CallState::Ended;
                vec![
                    CallAction::SendReject {
                        status: UNANSWERED_STATUS,
                    },
                    CallAction::Emit(CallEvent::Ended(EndReason::Unanswered)),
                ]
            }
            CallTimer::TransferOutcome => {
                if self.state == CallState::Transferring {
                    self.fail_transfer(TransferFailure::TimedOut)
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// BYE and the end of the call; for `Established` (and `Transferring`
    /// once the transfer is settled).
    fn hang_up(&mut self) -> Vec<CallAction> {
        self.state = CallState::Ended;
        self.timer = None;
        vec![
            CallAction::SendBye,
            CallAction::Emit(CallEvent::Ended(EndReason::LocalHangup)),
        ]
    }

    /// The transfer failed: the call is `Established` again.
    fn fail_transfer(&mut self, failure: TransferFailure) -> Vec<CallAction> {
        debug_assert_eq!(self.state, CallState::Transferring);
        self.state = CallState::Established;
        self.timer = None;
        vec![
            CallAction::FinishTransfer(TransferOutcome::Failed(failure.clone())),
            CallAction::Emit(CallEvent::TransferFailed(failure)),
        ]
    }

    fn handle_notify(&mut self, refer_event: bool, body: &[u8]) -> Vec<CallAction> {
        if !refer_event {
            // RFC 6665 8.2.1: we subscribe to nothing but refer.
            return vec![CallAction::Respond(Reply::refuse(
                489,
                "NOTIFY for an event other than refer",
            ))];
        }
        if !self.referred {
            // RFC 6665 4.1.3: no such subscription.
            return vec![CallAction::Respond(Reply::refuse(
                481,
                "NOTIFY for refer but we sent no REFER",
            ))];
        }
        let Some(status) = sipfrag_status(body) else {
            return vec![CallAction::Respond(Reply::refuse(
                400,
                "NOTIFY body is not a sipfrag status line (RFC 3515 2.4.5)",
            ))];
        };
        let mut actions = vec![CallAction::Respond(Reply::ok(None))];
        // Reports that come after the transfer was settled (timed out,
        // refused) are acknowledged and ignored.
        if self.state != CallState::Transferring {
            return actions;
        }
        match status {
            100..=199 => actions.push(CallAction::Emit(CallEvent::TransferProgress { status })),
            200..=299 => {
                self.state = CallState::Ended;
                self.timer = None;
                actions.extend([
                    CallAction::FinishTransfer(TransferOutcome::Succeeded),
                    CallAction::Emit(CallEvent::TransferSucceeded),
                    CallAction::SendBye,
                    CallAction::Emit(CallEvent::Ended(EndReason::Transferred)),
                ]);
            }
            _ => actions.extend(self.fail_transfer(TransferFailure::TargetFailed { status })),
        }
        actions
    }

    /// Answers a re-INVITE (its CSeq number in `reinvite`) or UPDATE
    /// (RFC 3264 8, RFC 3311 5.2) from our media: the same address,
    /// direction mirrored, `o=` version one higher when the answer changed.
    fn answer_offer(&mut self, offer: Option<Vec<u8>>, reinvite: Option<u32>) -> Vec<CallAction> {
        let Some(local) = self.local_media else {
            debug_assert!(false, "an answered call always has local media");
            return vec![CallAction::Respond(Reply::refuse(500, "no local media"))];
        };
        if self.offer_awaiting_ack.is_some() && (offer.is_some() || reinvite.is_some()) {
            // RFC 3261 14.2, RFC 3311 5.2: one offer at a time.
            return vec![CallAction::Respond(Reply::refuse(491, OFFER_PENDING))];
        }
        let Some(offer) = offer else {
            let Some(cseq) = reinvite else {
                // An UPDATE without a body refreshes the session only.
                return vec![CallAction::Respond(Reply::ok(None))];
            };
            // RFC 3261 14.2: an INVITE without an offer gets one in the
            // 2xx, and the answer comes in the ACK. We offer every codec we
            // have, sendrecv; its `o=` version goes up only if that is not
            // the SDP we last sent (RFC 3264 8).
            self.offer_awaiting_ack = Some(cseq);
            let sdp = self.next_local_sdp(local, |version| {
                sdp::offer(
                    local.ip,
                    local.port,
                    local.session_id,
                    version,
                    Direction::SendRecv,
                )
            });
            return vec![CallAction::Respond(Reply::ok(Some(sdp)))];
        };
        let parsed = match sdp::parse(&offer) {
            Ok(parsed) => parsed,
            Err(_) => return vec![CallAction::Respond(Reply::refuse(400, UNREADABLE_SDP))],
        };
        // Deterministic: the same offer and version give the same text.
        let first = sdp::answer(
            &parsed,
            local.ip,
            local.port,
            local.session_id,
            local.version,
        );
        match first {
            Ok(_) => {}
            // RFC 3261 13.3.1.1 / 14.2: the session stays as it was.
            Err(SdpError::NoCommonCodec) => {
                return vec![CallAction::Respond(Reply::refuse(
                    488,
                    "the new offer has no codec in common with us",
                ))]
            }
            Err(_) => return vec![CallAction::Respond(Reply::refuse(400, UNREADABLE_SDP))],
        }
        let sdp = self.next_local_sdp(local, |version| {
            sdp::answer(&parsed, local.ip, local.port, local.session_id, version)
                .map(|answer| answer.sdp)
                .unwrap_or_default()
        });
        vec![
            CallAction::Respond(Reply::ok(Some(sdp))),
            CallAction::Emit(CallEvent::ReInvite {
                sdp: String::from_utf8_lossy(&offer).into_owned(),
            }),
        ]
    }

    /// The last ACK the stack reported, once the call is past `Answered`:
    /// if it acknowledges the re-INVITE we answered with an offer, its body
    /// is the answer. An ACK cannot be refused: without a usable answer
    /// nothing is reported and the media stays as it was.
    fn handle_answer_in_ack(
        &mut self,
        cseq: Option<u32>,
        answer: Option<Vec<u8>>,
    ) -> Vec<CallAction> {
        let (Some(awaited), Some(acked)) = (self.offer_awaiting_ack, cseq) else {
            return Vec::new();
        };
        // The stack reports the last ACK again after other requests: an
        // older one is not news.
        if acked < awaited {
            return Vec::new();
        }
        self.offer_awaiting_ack = None;
        // A newer one means ours was lost, and the answer with it.
        let Some(answer) = answer.filter(|_| acked == awaited) else {
            return Vec::new();
        };
        let usable = sdp::parse(&answer)
            .ok()
            .is_some_and(|session| sdp::accept_answer(&session).is_ok());
        if !usable {
            return Vec::new();
        }
        vec![CallAction::Emit(CallEvent::ReInvite {
            sdp: String::from_utf8_lossy(&answer).into_owned(),
        })]
    }

    /// A REFER to us. Refused 405 unless we accept transfers; accepted
    /// 202 on a dialog with a usable Refer-To, which becomes the REFER we
    /// report on (RFC 3515 2.4.2, 2.4.6).
    fn handle_refer(&mut self, cseq: u32, refer_to: &[String]) -> Vec<CallAction> {
        use CallState::*;
        let refuse = |reply| vec![CallAction::Respond(reply)];
        match (self.state, self.accept_refer) {
            (Ended, _) => return refuse(Reply::refuse(481, NO_DIALOG)),
            (_, false) => {
                return refuse(Reply {
                    allow: true,
                    ..Reply::refuse(405, "callers cannot transfer the agent")
                })
            }
            (Ringing, true) => return refuse(Reply::refuse(481, NO_DIALOG)),
            (Answered | Established | Transferring, true) => {}
        }
        let target = match refer_to_target(refer_to) {
            Ok(target) => target,
            Err(error) => return refuse(Reply::refuse(error.status(), error.why())),
        };
        let mut actions = vec![CallAction::Respond(Reply::accepted())];
        if let Some(superseded) = self.followed_refer.take() {
            actions.push(CallAction::SendNotify(ReferReport {
                event_id: superseded.event_id,
                status: 487,
                reason: "Request Terminated".to_string(),
            }));
        }
        let event_id = (self.refers_accepted > 0).then_some(cseq);
        self.refers_accepted += 1;
        self.followed_refer = Some(FollowedRefer { event_id });
        actions.push(CallAction::Emit(CallEvent::Referred { target }));
        actions
    }

    /// The application's report on the REFER it follows; a final status
    /// ends the subscription.
    fn report_refer(&mut self, status: u16, reason: String) -> Result<Vec<CallAction>, CallError> {
        let refer = self.followed_refer.ok_or(CallError::NotEstablished)?;
        let report = ReferReport {
            event_id: refer.event_id,
            status,
            reason,
        };
        if report.is_final() {
            self.followed_refer = None;
        }
        Ok(vec![CallAction::SendNotify(report)])
    }

    /// Our next SDP: with the current `o=` version when it equals the last
    /// one we sent, else with the version one higher (RFC 3264 8).
    fn next_local_sdp(&mut self, local: LocalMedia, build: impl Fn(u64) -> String) -> String {
        let same = build(local.version);
        if self.last_local_sdp.as_deref() == Some(same.as_str()) {
            return same;
        }
        let version = local.version + 1;
        let changed = build(version);
        if let Some(media) = self.local_media.as_mut() {
            media.version = version;
        }
        self.last_local_sdp = Some(changed.clone());
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);
    const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

    fn config() -> AgentConfig {
        let mut config = AgentConfig::new("192.0.2.1:5060".parse().unwrap());
        config.transfer_timeout = TIMEOUT;
        config.answer_timeout = ANSWER_TIMEOUT;
        config
    }

    /// A config for the transferee role.
    fn accepting_refer() -> AgentConfig {
        AgentConfig {
            accept_refer: true,
            ..config()
        }
    }

    /// The ACK of the initial INVITE, without a body.
    fn initial_ack() -> CallInput {
        CallInput::AckReceived {
            cseq: Some(1),
            answer: None,
        }
    }

    const OFFER: &str = "v=0\r\n\
        o=caller 1 1 IN IP4 192.0.2.10\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.10\r\n\
        t=0 0\r\n\
        m=audio 30000 RTP/AVP 0 101\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n";

    fn hold_offer() -> String {
        OFFER.replace("o=caller 1 1", "o=caller 1 2") + "a=sendonly\r\n"
    }

    fn our_answer() -> (String, LocalMedia) {
        let offer = sdp::parse(OFFER.as_bytes()).expect("offer parses");
        let answer = sdp::answer(&offer, "192.0.2.1".parse().unwrap(), 40000, 7, 1)
            .expect("offer answerable");
        let local = LocalMedia::from_sdp(&answer.sdp).expect("our answer is usable");
        (answer.sdp, local)
    }

    /// An incoming call, answered and acknowledged.
    fn established(now: Instant) -> CallCore {
        established_with(now, &config())
    }

    fn established_with(now: Instant, config: &AgentConfig) -> CallCore {
        let mut call = CallCore::incoming(now, config);
        let (sdp, local) = our_answer();
        call.handle_command(now, CallCommand::Answer { sdp, local })
            .expect("ringing call answers");
        call.handle(now, initial_ack());
        assert_eq!(call.state(), CallState::Established);
        call
    }

    fn refer(cseq: u32, refer_to: &[&str]) -> CallInput {
        CallInput::ReferReceived {
            cseq,
            refer_to: refer_to.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn report(status: u16, reason: &str) -> CallCommand {
        CallCommand::NotifyTransfer {
            status,
            reason: reason.to_string(),
        }
    }

    fn notify(status_line: &str) -> CallInput {
        CallInput::NotifyReceived {
            refer_event: true,
            body: status_line.as_bytes().to_vec(),
        }
    }

    fn emitted(actions: &[CallAction]) -> Vec<CallEvent> {
        actions
            .iter()
            .filter_map(|a| match a {
                CallAction::Emit(event) => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn reply_status(actions: &[CallAction]) -> Option<u16> {
        actions.iter().find_map(|a| match a {
            CallAction::Respond(reply) => Some(reply.status),
            _ => None,
        })
    }

    #[test]
    fn local_media_is_read_from_our_sdp() {
        let (_, local) = our_answer();
        assert_eq!(
            local,
            LocalMedia {
                ip: "192.0.2.1".parse().unwrap(),
                port: 40000,
                session_id: 7,
                version: 1,
            }
        );
        assert!(matches!(
            LocalMedia::from_sdp("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"),
            Err(LocalSdpError::NoAudio)
        ));
        assert!(matches!(
            LocalMedia::from_sdp("hello"),
            Err(LocalSdpError::Parse(_))
        ));
    }

    #[test]
    fn incoming_call_rings_answers_establishes_and_ends_on_bye() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        assert_eq!(
            call.handle_command(now, CallCommand::Ring),
            Ok(vec![CallAction::SendRinging])
        );
        let (sdp, local) = our_answer();
        assert_eq!(
            call.handle_command(
                now,
                CallCommand::Answer {
                    sdp: sdp.clone(),
                    local
                }
            ),
            Ok(vec![CallAction::SendAnswer { sdp }])
        );
        assert_eq!(call.state(), CallState::Answered);
        assert_eq!(
            call.handle(now, initial_ack()),
            vec![CallAction::Emit(CallEvent::Established)]
        );
        // A retransmitted ACK changes nothing.
        assert!(call.handle(now, initial_ack()).is_empty());
        assert_eq!(
            call.handle(now, CallInput::ByeReceived),
            vec![CallAction::Emit(CallEvent::RemoteHangup)]
        );
        assert_eq!(call.state(), CallState::Ended);
        assert_eq!(
            call.handle_command(now, CallCommand::Hangup),
            Err(CallError::CallEnded)
        );
    }

    #[test]
    fn cancel_before_answer_ends_the_call_and_refuses_a_late_answer() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        call.handle_command(now, CallCommand::Ring).unwrap();
        assert_eq!(
            call.handle(now, CallInput::CancelReceived),
            vec![CallAction::Emit(CallEvent::Cancelled)]
        );
        let (sdp, local) = our_answer();
        assert_eq!(
            call.handle_command(now, CallCommand::Answer { sdp, local }),
            Err(CallError::CallEnded)
        );
    }

    #[test]
    fn cancel_after_answer_changes_nothing() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        let (sdp, local) = our_answer();
        call.handle_command(now, CallCommand::Answer { sdp, local })
            .unwrap();
        assert!(call.handle(now, CallInput::CancelReceived).is_empty());
        assert_eq!(call.state(), CallState::Answered);
    }

    #[test]
    fn reject_sends_the_status_once() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        assert_eq!(
            call.handle_command(now, CallCommand::Reject { status: 488 }),
            Ok(vec![
                CallAction::SendReject { status: 488 },
                CallAction::Emit(CallEvent::Ended(EndReason::Rejected)),
            ])
        );
        assert_eq!(
            call.handle_command(now, CallCommand::Reject { status: 486 }),
            Err(CallError::CallEnded)
        );
    }

    #[test]
    fn hangup_before_the_ack_waits_for_it() {
        // RFC 3261 15: no BYE before the ACK of our 2xx.
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        let (sdp, local) = our_answer();
        call.handle_command(now, CallCommand::Answer { sdp, local })
            .unwrap();
        assert_eq!(call.handle_command(now, CallCommand::Hangup), Ok(vec![]));
        assert_eq!(
            call.handle(now, initial_ack()),
            vec![
                CallAction::Emit(CallEvent::Established),
                CallAction::SendBye,
                CallAction::Emit(CallEvent::Ended(EndReason::LocalHangup)),
            ]
        );
    }

    #[test]
    fn a_missing_ack_ends_the_call() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        let (sdp, local) = our_answer();
        call.handle_command(now, CallCommand::Answer { sdp, local })
            .unwrap();
        assert_eq!(
            call.handle(now, CallInput::DialogEnded(StackEnd::Timeout)),
            vec![CallAction::Emit(CallEvent::Ended(EndReason::AckTimeout))]
        );
    }

    #[test]
    fn transfer_succeeds_on_a_2xx_sipfrag_and_leaves_the_call() {
        let start = Instant::now();
        let mut call = established(start);
        assert_eq!(
            call.handle_command(
                start,
                CallCommand::Transfer {
                    target: "sip:sales@pbx".into()
                }
            ),
            Ok(vec![CallAction::SendRefer {
                target: "sip:sales@pbx".into()
            }])
        );
        assert_eq!(call.poll_timeout(), Some(start + TIMEOUT));
        assert!(call
            .handle(start, CallInput::ReferAnswered { status: Some(202) })
            .is_empty());
        let progress = call.handle(start, notify("SIP/2.0 100 Trying"));
        assert_eq!(
            progress,
            vec![
                CallAction::Respond(Reply::ok(None)),
                CallAction::Emit(CallEvent::TransferProgress { status: 100 }),
            ]
        );
        let done = call.handle(start + Duration::from_secs(3), notify("SIP/2.0 200 OK"));
        assert_eq!(
            done,
            vec![
                CallAction::Respond(Reply::ok(None)),
                CallAction::FinishTransfer(TransferOutcome::Succeeded),
                CallAction::Emit(CallEvent::TransferSucceeded),
                CallAction::SendBye,
                CallAction::Emit(CallEvent::Ended(EndReason::Transferred)),
            ]
        );
        assert_eq!(call.state(), CallState::Ended);
        assert_eq!(call.poll_timeout(), None);
    }

    #[test]
    fn a_failed_target_gives_the_call_back() {
        let now = Instant::now();
        let mut call = established(now);
        call.handle_command(
            now,
            CallCommand::Transfer {
                target: "sip:sales@pbx".into(),
            },
        )
        .unwrap();
        let actions = call.handle(now, notify("SIP/2.0 486 Busy Here"));
        let failure = TransferFailure::TargetFailed { status: 486 };
        assert_eq!(
            actions,
            vec![
                CallAction::Respond(Reply::ok(None)),
                CallAction::FinishTransfer(TransferOutcome::Failed(failure.clone())),
                CallAction::Emit(CallEvent::TransferFailed(failure)),
            ]
        );
        assert_eq!(call.state(), CallState::Established);
        // The call can be transferred again.
        assert!(call
            .handle_command(
                now,
                CallCommand::Transfer {
                    target: "sip:support@pbx".into()
                }
            )
            .is_ok());
    }

    #[test]
    fn a_refused_or_unanswered_refer_gives_the_call_back() {
        let now = Instant::now();
        let mut call = established(now);
        let transfer = CallCommand::Transfer {
            target: "sip:sales@pbx".into(),
        };
        call.handle_command(now, transfer.clone()).unwrap();
        let refused = call.handle(now, CallInput::ReferAnswered { status: Some(603) });
        assert_eq!(
            emitted(&refused),
            vec![CallEvent::TransferFailed(TransferFailure::Refused {
                status: 603
            })]
        );
        call.handle_command(now, transfer).unwrap();
        let lost = call.handle(now, CallInput::ReferAnswered { status: None });
        assert_eq!(
            emitted(&lost),
            vec![CallEvent::TransferFailed(TransferFailure::NoResponse)]
        );
        assert_eq!(call.state(), CallState::Established);
    }

    #[test]
    fn a_transfer_without_a_final_report_times_out_in_virtual_time() {
        let start = Instant::now();
        let mut call = established(start);
        call.handle_command(
            start,
            CallCommand::Transfer {
                target: "sip:sales@pbx".into(),
            },
        )
        .unwrap();
        let deadline = call.poll_timeout().expect("the transfer is timed");
        assert!(call
            .handle_timeout(deadline - Duration::from_millis(1))
            .is_empty());
        assert_eq!(
            call.handle_timeout(deadline),
            vec![
                CallAction::FinishTransfer(TransferOutcome::Failed(TransferFailure::TimedOut)),
                CallAction::Emit(CallEvent::TransferFailed(TransferFailure::TimedOut)),
            ]
        );
        assert_eq!(call.poll_timeout(), None);
        // A late success report is acknowledged and ignored.
        assert_eq!(
            call.handle(deadline, notify("SIP/2.0 200 OK")),
            vec![CallAction::Respond(Reply::ok(None))]
        );
        assert_eq!(call.state(), CallState::Established);
    }

    #[test]
    fn commands_that_do_not_fit_the_state_are_refused() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &config());
        let transfer = CallCommand::Transfer {
            target: "sip:sales@pbx".into(),
        };
        assert_eq!(
            call.handle_command(now, transfer.clone()),
            Err(CallError::NotEstablished)
        );
        let mut call = established(now);
        call.handle_command(now, transfer.clone()).unwrap();
        assert_eq!(
            call.handle_command(now, transfer),
            Err(CallError::TransferInProgress)
        );
        assert_eq!(
            call.handle_command(now, CallCommand::Ring),
            Err(CallError::AlreadyDecided)
        );
    }

    #[test]
    fn hangup_or_bye_during_a_transfer_settles_it() {
        let now = Instant::now();
        let transfer = CallCommand::Transfer {
            target: "sip:sales@pbx".into(),
        };
        let mut call = established(now);
        call.handle_command(now, transfer.clone()).unwrap();
        let actions = call.handle(now, CallInput::ByeReceived);
        assert_eq!(
            actions[0],
            CallAction::FinishTransfer(TransferOutcome::Failed(TransferFailure::CallEnded))
        );
        assert_eq!(emitted(&actions).last(), Some(&CallEvent::RemoteHangup));

        let mut call = established(now);
        call.handle_command(now, transfer).unwrap();
        let actions = call.handle_command(now, CallCommand::Hangup).unwrap();
        assert!(actions.contains(&CallAction::SendBye));
        assert_eq!(
            emitted(&actions).last(),
            Some(&CallEvent::Ended(EndReason::LocalHangup))
        );
    }

    #[test]
    fn notify_outside_a_refer_subscription_is_refused() {
        let now = Instant::now();
        let mut call = established(now);
        assert_eq!(
            reply_status(&call.handle(now, notify("SIP/2.0 200 OK"))),
            Some(481)
        );
        let other_event = CallInput::NotifyReceived {
            refer_event: false,
            body: Vec::new(),
        };
        assert_eq!(reply_status(&call.handle(now, other_event)), Some(489));
        call.handle_command(
            now,
            CallCommand::Transfer {
                target: "sip:sales@pbx".into(),
            },
        )
        .unwrap();
        assert_eq!(reply_status(&call.handle(now, notify("hello"))), Some(400));
    }

    #[test]
    fn hold_reinvite_is_answered_recvonly_with_a_new_version() {
        let now = Instant::now();
        let mut call = established(now);
        let actions = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 2,
                offer: Some(hold_offer().into_bytes()),
            },
        );
        let CallAction::Respond(reply) = &actions[0] else {
            panic!("first action answers the re-INVITE: {actions:?}");
        };
        assert_eq!(reply.status, 200);
        let answer = reply.sdp.as_deref().expect("the 200 carries SDP");
        assert!(
            answer.contains("o=switchboard 7 2 IN IP4 192.0.2.1"),
            "{answer}"
        );
        assert!(answer.contains("a=recvonly"), "{answer}");
        assert!(answer.contains("m=audio 40000 "), "{answer}");
        assert_eq!(
            actions[1],
            CallAction::Emit(CallEvent::ReInvite { sdp: hold_offer() })
        );
        // The same offer again: the same answer, the same version.
        let again = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 2,
                offer: Some(hold_offer().into_bytes()),
            },
        );
        let CallAction::Respond(second) = &again[0] else {
            panic!("answered: {again:?}");
        };
        assert_eq!(second.sdp.as_deref(), Some(answer));
    }

    #[test]
    fn reinvite_without_common_codec_or_offer() {
        let now = Instant::now();
        let mut call = established(now);
        let g729 = OFFER.replace("RTP/AVP 0 101", "RTP/AVP 18");
        let refused = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 2,
                offer: Some(g729.into_bytes()),
            },
        );
        assert_eq!(reply_status(&refused), Some(488));
        assert_eq!(refused.len(), 1, "no event for a refused offer");
        // An offerless re-INVITE gets our offer in the 200.
        let offered = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 3,
                offer: None,
            },
        );
        let CallAction::Respond(reply) = &offered[0] else {
            panic!("answered: {offered:?}");
        };
        assert_eq!(reply.status, 200);
        assert!(reply
            .sdp
            .as_deref()
            .is_some_and(|sdp| sdp.contains("a=sendrecv")));
        // An UPDATE without a body is a refresh.
        assert_eq!(
            call.handle(now, CallInput::UpdateReceived { offer: None }),
            vec![CallAction::Respond(Reply::ok(None))]
        );
    }

    #[test]
    fn other_in_dialog_requests() {
        let now = Instant::now();
        let mut call = established(now);
        assert_eq!(
            call.handle(now, CallInput::RequestReceived(InDialogRequest::Options)),
            vec![CallAction::Respond(Reply::ok(None))]
        );
        assert_eq!(
            call.handle(now, refer(2, &["<sip:carol@pbx>"])),
            vec![CallAction::Respond(Reply {
                allow: true,
                ..Reply::refuse(405, "callers cannot transfer the agent")
            })]
        );
    }

    #[test]
    fn an_outgoing_call_starts_established() {
        let now = Instant::now();
        let (sdp, local) = our_answer();
        let mut call = CallCore::outgoing(sdp, local, &config());
        assert_eq!(call.state(), CallState::Established);
        assert_eq!(
            call.handle_command(now, CallCommand::Hangup),
            Ok(vec![
                CallAction::SendBye,
                CallAction::Emit(CallEvent::Ended(EndReason::LocalHangup)),
            ])
        );
    }

    #[test]
    fn an_undecided_call_is_answered_480_in_virtual_time() {
        let start = Instant::now();
        let mut call = CallCore::incoming(start, &config());
        call.handle_command(start, CallCommand::Ring).unwrap();
        let deadline = call.poll_timeout().expect("a ringing call is timed");
        assert_eq!(deadline, start + ANSWER_TIMEOUT);
        assert!(call
            .handle_timeout(deadline - Duration::from_millis(1))
            .is_empty());
        assert_eq!(call.state(), CallState::Ringing);
        assert_eq!(
            call.handle_timeout(deadline),
            vec![
                CallAction::SendReject { status: 480 },
                CallAction::Emit(CallEvent::Ended(EndReason::Unanswered)),
            ]
        );
        assert_eq!(call.state(), CallState::Ended);
        assert_eq!(call.poll_timeout(), None);
        let (sdp, local) = our_answer();
        assert_eq!(
            call.handle_command(deadline, CallCommand::Answer { sdp, local }),
            Err(CallError::CallEnded)
        );
    }

    #[test]
    fn a_decision_or_cancel_stops_the_answer_timer() {
        let start = Instant::now();
        let (sdp, local) = our_answer();
        let decisions = [
            CallCommand::Answer { sdp, local },
            CallCommand::Reject { status: 486 },
            CallCommand::Hangup,
        ];
        for decision in decisions {
            let mut call = CallCore::incoming(start, &config());
            call.handle_command(start, decision).unwrap();
            assert_eq!(call.poll_timeout(), None);
            let late = start + ANSWER_TIMEOUT;
            assert!(call.handle_timeout(late).is_empty());
        }
        let mut call = CallCore::incoming(start, &config());
        call.handle(start, CallInput::CancelReceived);
        assert_eq!(call.poll_timeout(), None);
    }

    #[test]
    fn an_accepted_refer_is_reported_and_followed_by_notifies() {
        let now = Instant::now();
        let mut call = established_with(now, &accepting_refer());
        assert_eq!(
            call.handle(
                now,
                refer(2, &["\"Carol\" <sip:carol@pbx:5070;transport=tcp>;x=y"])
            ),
            vec![
                CallAction::Respond(Reply::accepted()),
                CallAction::Emit(CallEvent::Referred {
                    target: "sip:carol@pbx:5070;transport=tcp".into()
                }),
            ]
        );
        let trying = ReferReport {
            event_id: None,
            status: 100,
            reason: "Trying".into(),
        };
        assert_eq!(
            call.handle_command(now, report(100, "Trying")),
            Ok(vec![CallAction::SendNotify(trying)])
        );
        let ok = call.handle_command(now, report(200, "OK")).unwrap();
        let [CallAction::SendNotify(final_report)] = ok.as_slice() else {
            panic!("one NOTIFY: {ok:?}");
        };
        assert_eq!(
            final_report.subscription_state(),
            "terminated;reason=noresource"
        );
        assert_eq!(final_report.sipfrag(), "SIP/2.0 200 OK\r\n");
        // The subscription is over: nothing left to report on.
        assert_eq!(
            call.handle_command(now, report(180, "Ringing")),
            Err(CallError::NotEstablished)
        );
        // Following a REFER does not change the call itself.
        assert_eq!(call.state(), CallState::Established);
        assert_eq!(
            call.handle(now, CallInput::ByeReceived),
            vec![CallAction::Emit(CallEvent::RemoteHangup)]
        );
        assert_eq!(
            call.handle_command(now, report(200, "OK")),
            Err(CallError::CallEnded)
        );
    }

    #[test]
    fn a_second_refer_supersedes_the_first_and_its_notifies_carry_an_id() {
        // RFC 3515 2.4.6.
        let now = Instant::now();
        let mut call = established_with(now, &accepting_refer());
        call.handle(now, refer(2, &["<sip:carol@pbx>"]));
        call.handle_command(now, report(100, "Trying")).unwrap();
        assert_eq!(
            call.handle(now, refer(3, &["<sip:dave@pbx>"])),
            vec![
                CallAction::Respond(Reply::accepted()),
                CallAction::SendNotify(ReferReport {
                    event_id: None,
                    status: 487,
                    reason: "Request Terminated".into(),
                }),
                CallAction::Emit(CallEvent::Referred {
                    target: "sip:dave@pbx".into()
                }),
            ]
        );
        let actions = call.handle_command(now, report(183, "Progress")).unwrap();
        let [CallAction::SendNotify(progress)] = actions.as_slice() else {
            panic!("one NOTIFY: {actions:?}");
        };
        assert_eq!(progress.event(), "refer;id=3");
        assert_eq!(progress.subscription_state(), "active;expires=60");
    }

    #[test]
    fn a_refer_without_a_usable_refer_to_gets_400() {
        let now = Instant::now();
        let mut call = established_with(now, &accepting_refer());
        for refer_to in [
            &[][..],
            &["<sip:a@pbx>", "<sip:b@pbx>"][..],
            &["<nonsense"][..],
        ] {
            let actions = call.handle(now, refer(2, refer_to));
            assert_eq!(reply_status(&actions), Some(400), "{refer_to:?}");
            assert_eq!(actions.len(), 1, "no event: {actions:?}");
        }
        assert_eq!(
            call.handle_command(now, report(100, "Trying")),
            Err(CallError::NotEstablished)
        );
    }

    #[test]
    fn a_refer_outside_an_answered_call_gets_481() {
        let now = Instant::now();
        let mut call = CallCore::incoming(now, &accepting_refer());
        assert_eq!(
            reply_status(&call.handle(now, refer(1, &["<sip:carol@pbx>"]))),
            Some(481)
        );
        call.handle_command(now, CallCommand::Hangup).unwrap();
        assert_eq!(
            reply_status(&call.handle(now, refer(2, &["<sip:carol@pbx>"]))),
            Some(481)
        );
    }

    #[test]
    fn an_offerless_reinvite_gets_our_offer_and_the_ack_brings_the_answer() {
        let now = Instant::now();
        let mut call = established(now);
        let actions = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 2,
                offer: None,
            },
        );
        let [CallAction::Respond(reply)] = actions.as_slice() else {
            panic!("the re-INVITE is answered, nothing else yet: {actions:?}");
        };
        assert_eq!(reply.status, 200);
        let offer = reply.sdp.clone().expect("the 200 carries our offer");
        // Every codec we have, sendrecv, at the same address; the SDP is not
        // the answer we sent before, so the version goes up (RFC 3264 8).
        assert!(
            offer.contains("o=switchboard 7 2 IN IP4 192.0.2.1"),
            "{offer}"
        );
        assert!(offer.contains("m=audio 40000 RTP/AVP 0 8 101"), "{offer}");
        assert!(offer.contains("a=sendrecv"), "{offer}");
        // Until the ACK brings the answer, another offer must wait (491).
        let glare = CallInput::UpdateReceived {
            offer: Some(hold_offer().into_bytes()),
        };
        assert_eq!(reply_status(&call.handle(now, glare)), Some(491));
        // The stack reports the dialog confirmed after other requests too:
        // an earlier ACK is not the answer.
        assert!(call.handle(now, initial_ack()).is_empty());
        let answer = OFFER.replace("o=caller 1 1", "o=caller 1 2");
        assert_eq!(
            call.handle(
                now,
                CallInput::AckReceived {
                    cseq: Some(2),
                    answer: Some(answer.clone().into_bytes()),
                }
            ),
            vec![CallAction::Emit(CallEvent::ReInvite { sdp: answer })]
        );
        // The same offerless re-INVITE again: the same SDP, the same version.
        let again = call.handle(
            now,
            CallInput::ReInviteReceived {
                cseq: 3,
                offer: None,
            },
        );
        let CallAction::Respond(second) = &again[0] else {
            panic!("answered: {again:?}");
        };
        assert_eq!(second.sdp.as_deref(), Some(offer.as_str()));
    }

    #[test]
    fn an_ack_without_a_usable_answer_leaves_the_session() {
        let now = Instant::now();
        for answer in [None, Some(b"not sdp".to_vec())] {
            let mut call = established(now);
            call.handle(
                now,
                CallInput::ReInviteReceived {
                    cseq: 2,
                    offer: None,
                },
            );
            let ack = CallInput::AckReceived {
                cseq: Some(2),
                answer,
            };
            assert!(call.handle(now, ack).is_empty());
            assert_eq!(call.state(), CallState::Established);
            // The exchange is over: a new offer is answered.
            let hold = CallInput::ReInviteReceived {
                cseq: 3,
                offer: Some(hold_offer().into_bytes()),
            };
            assert_eq!(reply_status(&call.handle(now, hold)), Some(200));
        }
    }
}
