//! The application's side of a call: an [`IncomingCall`] to decide on, a
//! [`CallHandle`] once it is answered (or an outgoing call was), and a
//! cloneable [`CallControl`] to command it from another task.
//!
//! Each call runs in its own task ([`super::call_task`]); these types talk
//! to it over channels. Commands wait for the task to carry them out, and
//! fail with [`CallError::CallEnded`] once the call is over.

use tokio::sync::{mpsc, oneshot};

use super::call::{CallCommand, LocalMedia};
use super::errors::CallError;
use super::events::CallEvent;
use super::transfer::TransferOutcome;

/// Who placed a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// The caller called us.
    Incoming,
    /// We called out.
    Outgoing,
}

/// What identifies a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The Call-ID header.
    pub call_id: String,
    /// The From URI.
    pub caller: String,
    /// The To URI.
    pub callee: String,
    /// Who placed it.
    pub direction: CallDirection,
}

/// A command for the call task, with where its result goes.
#[derive(Debug)]
pub(crate) struct Command {
    pub call: CallCommand,
    pub reply: CommandReply,
}

/// Where a command's result goes.
#[derive(Debug)]
pub(crate) enum CommandReply {
    /// Nobody waits (a dropped [`IncomingCall`] rejecting itself).
    None,
    /// Done or refused.
    Done(oneshot::Sender<Result<(), CallError>>),
    /// A transfer's outcome, sent when it is known.
    Transfer(oneshot::Sender<Result<TransferOutcome, CallError>>),
}

/// Sends commands to a call. Cheap to clone; the call hangs up when the
/// last [`CallHandle`] and `CallControl` (and the [`IncomingCall`]) are
/// dropped.
#[derive(Debug, Clone)]
pub struct CallControl {
    commands: mpsc::Sender<Command>,
}

impl CallControl {
    pub(crate) fn new(commands: mpsc::Sender<Command>) -> CallControl {
        CallControl { commands }
    }

    async fn run(&self, call: CallCommand) -> Result<(), CallError> {
        let (reply, result) = oneshot::channel();
        let command = Command {
            call,
            reply: CommandReply::Done(reply),
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| CallError::CallEnded)?;
        result.await.map_err(|_| CallError::CallEnded)?
    }

    /// Ends the call with BYE. Before the caller has acknowledged our
    /// answer the BYE waits for the ACK (RFC 3261 15); this returns at once
    /// and the call's events end with [`CallEvent::Ended`].
    pub async fn hangup(&self) -> Result<(), CallError> {
        self.run(CallCommand::Hangup).await
    }

    /// Reports how the call to a [`CallEvent::Referred`] target goes, as
    /// the transferee (RFC 3515 2.4.4, 2.4.5): a NOTIFY with `Event:
    /// refer` and the body `SIP/2.0 {status} {reason}` (`message/sipfrag`).
    /// A 1xx keeps the subscription active (`expires=60`; report again
    /// within that), a final status (2xx-6xx) ends it, so it comes last.
    /// Returns once the NOTIFY is queued; NOTIFYs go out in order, and one
    /// the transferor does not answer 2xx is logged. Fails with
    /// [`CallError::NotEstablished`] when no REFER is being followed (none
    /// came, or its final status was reported), and
    /// [`CallError::CallEnded`] once the call is over.
    pub async fn notify_transfer(&self, status: u16, reason: &str) -> Result<(), CallError> {
        debug_assert!((100..700).contains(&status), "a SIP status is 100-699");
        self.run(CallCommand::NotifyTransfer {
            status,
            reason: reason.to_string(),
        })
        .await
    }

    /// Blind transfer (RFC 3515): sends REFER with `Refer-To: target`,
    /// follows the transferee's NOTIFY reports, and on a 2xx report hangs
    /// up our leg. Returns when the outcome is known, at the latest after
    /// the configured transfer timeout. On
    /// [`TransferOutcome::Failed`] the call is still ours (unless it
    /// ended), for the application to take back.
    pub async fn refer(&self, target: &str) -> Result<TransferOutcome, CallError> {
        rsipstack::sip::Uri::try_from(target).map_err(|_| CallError::InvalidUri {
            value: target.to_string(),
        })?;
        let (reply, result) = oneshot::channel();
        let command = Command {
            call: CallCommand::Transfer {
                target: target.to_string(),
            },
            reply: CommandReply::Transfer(reply),
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| CallError::CallEnded)?;
        result.await.map_err(|_| CallError::CallEnded)?
    }
}

/// A new call, answered 100 Trying, waiting for the application to ring,
/// answer or reject it. Dropping it undecided rejects the call with 480
/// Temporarily Unavailable.
#[derive(Debug)]
pub struct IncomingCall {
    info: CallInfo,
    remote_sdp: String,
    control: CallControl,
    /// Taken by [`Self::answer`]; events before that (a CANCEL) come here.
    events: Option<mpsc::UnboundedReceiver<CallEvent>>,
    /// Answered or rejected: nothing to do on drop.
    decided: bool,
}

impl IncomingCall {
    pub(crate) fn new(
        info: CallInfo,
        remote_sdp: String,
        control: CallControl,
        events: mpsc::UnboundedReceiver<CallEvent>,
    ) -> IncomingCall {
        IncomingCall {
            info,
            remote_sdp,
            control,
            events: Some(events),
            decided: false,
        }
    }

    /// Call-ID, caller and callee.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// The caller's SDP offer, empty when the INVITE carried none.
    pub fn remote_sdp(&self) -> &str {
        &self.remote_sdp
    }

    /// Sends 180 Ringing.
    pub async fn ringing(&self) -> Result<(), CallError> {
        self.control.run(CallCommand::Ring).await
    }

    /// Answers 200 OK with our SDP answer. The call is
    /// [`CallEvent::Established`] when the caller's ACK arrives. An answer
    /// we cannot use ourselves (no `o=` numbers, no audio address) is a bug
    /// on our side: the call is rejected 500 and the error returned.
    pub async fn answer(mut self, sdp_answer: &str) -> Result<CallHandle, CallError> {
        self.decided = true;
        let local = match LocalMedia::from_sdp(sdp_answer) {
            Ok(local) => local,
            Err(error) => {
                let _ = self.control.run(CallCommand::Reject { status: 500 }).await;
                return Err(error.into());
            }
        };
        self.control
            .run(CallCommand::Answer {
                sdp: sdp_answer.to_string(),
                local,
            })
            .await?;
        let events = self.events.take().ok_or(CallError::AlreadyDecided)?;
        Ok(CallHandle {
            info: self.info.clone(),
            control: self.control.clone(),
            events,
        })
    }

    /// Rejects the call with a final status, e.g. 486 Busy Here or 488 Not
    /// Acceptable Here for an offer without a common codec (RFC 3261
    /// 13.3.1.1).
    pub async fn reject(mut self, status: u16) -> Result<(), CallError> {
        debug_assert!((300..700).contains(&status), "reject needs 3xx-6xx");
        self.decided = true;
        self.control.run(CallCommand::Reject { status }).await
    }

    /// The next event before a decision: [`CallEvent::Cancelled`] when the
    /// caller gives up.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.as_mut()?.recv().await
    }
}

impl Drop for IncomingCall {
    fn drop(&mut self) {
        if !self.decided {
            let command = Command {
                call: CallCommand::Reject { status: 480 },
                reply: CommandReply::None,
            };
            // A full or closed channel means the call task is busy ending
            // the call or gone; either way it ends.
            let _ = self.control.commands.try_send(command);
        }
    }
}

/// An answered call.
#[derive(Debug)]
pub struct CallHandle {
    info: CallInfo,
    control: CallControl,
    events: mpsc::UnboundedReceiver<CallEvent>,
}

impl CallHandle {
    pub(crate) fn new(
        info: CallInfo,
        control: CallControl,
        events: mpsc::UnboundedReceiver<CallEvent>,
    ) -> CallHandle {
        CallHandle {
            info,
            control,
            events,
        }
    }

    /// Call-ID, caller and callee.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// A control to command the call from another task.
    pub fn control(&self) -> CallControl {
        self.control.clone()
    }

    /// The call's events; see [`CallEvent`] for how the stream ends.
    pub fn events(&mut self) -> &mut mpsc::UnboundedReceiver<CallEvent> {
        &mut self.events
    }

    /// The next event; `None` once the call has ended and every event was
    /// read.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// See [`CallControl::hangup`].
    pub async fn hangup(&self) -> Result<(), CallError> {
        self.control.hangup().await
    }

    /// See [`CallControl::refer`].
    pub async fn refer(&self, target: &str) -> Result<TransferOutcome, CallError> {
        self.control.refer(target).await
    }

    /// See [`CallControl::notify_transfer`].
    pub async fn notify_transfer(&self, status: u16, reason: &str) -> Result<(), CallError> {
        self.control.notify_transfer(status, reason).await
    }
}

/// An outgoing call the callee answered.
#[derive(Debug)]
pub struct OutgoingCall {
    /// The call.
    pub handle: CallHandle,
    /// The callee's SDP answer from the 2xx.
    pub remote_sdp: String,
}
