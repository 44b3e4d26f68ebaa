//! The task that drives one call: it turns rsipstack's dialog states and
//! the application's commands into [`CallCore`] inputs, and carries out the
//! actions the core returns with rsipstack's dialog.
//!
//! The task owns the dialog. It ends when the core reaches `Ended`, and
//! then removes the dialog from the dialog layer. On agent shutdown it
//! hangs the call up (BYE, or 480 to an unanswered INVITE) first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::call::{
    CallAction, CallCommand, CallCore, CallInput, CallState, InDialogRequest, Reply, StackEnd,
};
use super::errors::CallError;
use super::events::CallEvent;
use super::handle::{CallControl, Command, CommandReply};
use super::log::log_line;
use super::policy::{allow_header, ACCEPT};
use super::transfer::{ReferReport, TransferFailure, TransferOutcome, SIPFRAG};
use super::CallSlot;

/// Which side of the INVITE we are: it decides what a BYE in
/// rsipstack's terminated reasons means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// We received the INVITE.
    Callee,
    /// We sent it.
    Caller,
}

/// Everything one call's task owns.
pub(crate) struct CallTask {
    pub core: CallCore,
    pub role: Role,
    pub dialog: InviteDialog,
    pub dialog_layer: Arc<DialogLayer>,
    pub states: DialogStateReceiver,
    pub commands: mpsc::Receiver<Command>,
    pub events: mpsc::UnboundedSender<CallEvent>,
    /// Our `Allow` value: it lists REFER when we accept it.
    pub allow: &'static str,
    /// Agent shutdown: hang up.
    pub shutdown: CancellationToken,
    /// Holds the call's place in the agent's counts until the task ends.
    pub slot: Option<CallSlot>,
    /// Where the REFERs we answer say their 202 has gone out.
    pub refer_replies: super::ReferReplies,
}

impl CallTask {
    /// Starts the task that drives one answered (or answering) call and
    /// returns the application's side: the command handle and the events.
    /// Incoming and outgoing calls differ only in `core` and `role`.
    pub fn spawn(
        core: CallCore,
        role: Role,
        dialog: InviteDialog,
        shared: &super::Shared,
        states: DialogStateReceiver,
        slot: CallSlot,
    ) -> (CallControl, mpsc::UnboundedReceiver<CallEvent>) {
        let (command_tx, command_rx) = mpsc::channel(8);
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let task = CallTask {
            core,
            role,
            dialog,
            dialog_layer: shared.dialog_layer.clone(),
            states,
            commands: command_rx,
            events: event_tx,
            allow: allow_header(shared.config.accept_refer),
            shutdown: shared.shutdown.clone(),
            slot: Some(slot),
            refer_replies: shared.refer_replies.clone(),
        };
        tokio::spawn(task.run());
        (CallControl::new(command_tx), event_rx)
    }
}

/// What the running task keeps beside the [`CallTask`] it was given.
struct Running {
    task: CallTask,
    /// The REFER runs beside the loop; its final status comes back here.
    refer_tx: mpsc::UnboundedSender<Option<u16>>,
    /// The application's transfer command, answered when the core settles
    /// the transfer.
    pending_transfer: Option<oneshot::Sender<Result<TransferOutcome, CallError>>>,
    /// The task that sends our NOTIFYs about a REFER we follow, one after
    /// the other so they arrive in order; started by the first.
    notifier: Option<mpsc::UnboundedSender<Notification>>,
    /// Resolves once the 202 to the last REFER we accepted has been sent:
    /// the NOTIFY after it waits for that.
    refer_reply: Option<oneshot::Receiver<()>>,
}

/// What the task waits for, in one place so the loop stays one `select!`.
enum Wake {
    Shutdown,
    /// Boxed: a dialog state carries whole SIP messages.
    State(Option<Box<DialogState>>),
    Command(Option<Command>),
    ReferAnswered(Option<u16>),
    Timer,
}

/// Tokio's clock as the core's `Instant`, so paused-clock tests stay
/// consistent.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl CallTask {
    /// Runs the call to its end.
    pub(crate) async fn run(self) {
        let (refer_tx, mut refer_rx) = mpsc::unbounded_channel::<Option<u16>>();
        let mut call = Running {
            task: self,
            refer_tx,
            pending_transfer: None,
            notifier: None,
            refer_reply: None,
        };
        let mut commands_open = true;
        let mut shutdown_seen = false;
        while call.task.core.state() != CallState::Ended {
            let deadline = call.task.core.poll_timeout();
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let task = &mut call.task;
            let wake = tokio::select! {
                _ = task.shutdown.cancelled(), if !shutdown_seen => Wake::Shutdown,
                state = task.states.recv() => Wake::State(state.map(Box::new)),
                command = task.commands.recv(), if commands_open => Wake::Command(command),
                Some(status) = refer_rx.recv() => Wake::ReferAnswered(status),
                () = timer => Wake::Timer,
            };
            match wake {
                Wake::Shutdown => {
                    shutdown_seen = true;
                    call.hang_up().await;
                }
                Wake::State(Some(state)) => call.on_dialog_state(*state).await,
                Wake::State(None) => {
                    // The dialog is gone from under us.
                    let input = CallInput::DialogEnded(StackEnd::Failed);
                    let actions = call.task.core.handle(now(), input);
                    call.perform(actions, None).await;
                }
                Wake::Command(Some(command)) => call.on_command(command).await,
                Wake::Command(None) => {
                    // Every handle was dropped: nobody else will end the call.
                    commands_open = false;
                    call.hang_up().await;
                }
                Wake::ReferAnswered(status) => {
                    let input = CallInput::ReferAnswered { status };
                    let actions = call.task.core.handle(now(), input);
                    call.perform(actions, None).await;
                }
                Wake::Timer => {
                    let actions = call.task.core.handle_timeout(now());
                    call.perform(actions, None).await;
                }
            }
        }
        if let Some(waiting) = call.pending_transfer.take() {
            debug_assert!(false, "the core settles a transfer before the call ends");
            let _ = waiting.send(Ok(TransferOutcome::Failed(TransferFailure::CallEnded)));
        }
        let task = call.task;
        task.dialog_layer.remove_dialog(&task.dialog.id());
        drop(task.slot);
    }
}

impl Running {
    async fn hang_up(&mut self) {
        if let Ok(actions) = self.task.core.handle_command(now(), CallCommand::Hangup) {
            self.perform(actions, None).await;
        }
    }

    async fn on_command(&mut self, command: Command) {
        let actions = match self.task.core.handle_command(now(), command.call) {
            Ok(actions) => actions,
            Err(refused) => {
                match command.reply {
                    CommandReply::None => {}
                    CommandReply::Done(reply) => {
                        let _ = reply.send(Err(refused));
                    }
                    CommandReply::Transfer(reply) => {
                        let _ = reply.send(Err(refused));
                    }
                }
                return;
            }
        };
        match command.reply {
            CommandReply::Transfer(reply) => {
                // Answered by `FinishTransfer` when the outcome is known.
                self.pending_transfer = Some(reply);
                self.perform(actions, None).await;
            }
            CommandReply::Done(reply) => {
                let result = self.apply(actions, None).await;
                let _ = reply.send(result);
            }
            CommandReply::None => self.perform(actions, None).await,
        }
    }

    async fn on_dialog_state(&mut self, state: DialogState) {
        let (input, handle) = match state {
            DialogState::Calling(_)
            | DialogState::Trying(_)
            | DialogState::Early(_, _)
            | DialogState::WaitAck(_, _) => return,
            // Also sent after each in-dialog request: the CSeq of the last
            // ACK tells the core whether this one is news.
            DialogState::Confirmed(_, _) => {
                let ack = self.task.dialog.last_remote_ack();
                let input = CallInput::AckReceived {
                    cseq: ack.as_ref().and_then(cseq),
                    answer: ack.as_ref().and_then(body),
                };
                (input, None)
            }
            DialogState::Updated(_, request, handle) => {
                let offer = body(&request);
                let input = if request.method == Method::Invite {
                    CallInput::ReInviteReceived {
                        cseq: cseq(&request).unwrap_or_default(),
                        offer,
                    }
                } else {
                    CallInput::UpdateReceived { offer }
                };
                (input, Some(handle))
            }
            DialogState::Notify(_, request, handle) => (
                CallInput::NotifyReceived {
                    refer_event: is_refer_event(&request),
                    body: request.body,
                },
                Some(handle),
            ),
            DialogState::Refer(_, request, handle) => {
                self.refer_reply = self.task.refer_replies.take(&request);
                let input = CallInput::ReferReceived {
                    cseq: cseq(&request).unwrap_or_default(),
                    refer_to: refer_to_values(&request),
                };
                (input, Some(handle))
            }
            DialogState::Info(_, _, handle) => (
                CallInput::RequestReceived(InDialogRequest::Info),
                Some(handle),
            ),
            DialogState::Options(_, _, handle) => (
                CallInput::RequestReceived(InDialogRequest::Options),
                Some(handle),
            ),
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => (
                CallInput::RequestReceived(InDialogRequest::Other),
                Some(handle),
            ),
            DialogState::Terminated(_, reason) => match self.terminated_input(reason) {
                Some(input) => (input, None),
                None => return,
            },
        };
        let actions = self.task.core.handle(now(), input);
        self.perform(actions, handle.as_ref()).await;
    }

    /// What rsipstack's reason for ending the dialog means for the call;
    /// `None` for the ends we caused ourselves.
    fn terminated_input(&self, reason: TerminatedReason) -> Option<CallInput> {
        match (self.task.role, reason) {
            (Role::Callee, TerminatedReason::UacCancel) => Some(CallInput::CancelReceived),
            (Role::Callee, TerminatedReason::UacBye) | (Role::Caller, TerminatedReason::UasBye) => {
                Some(CallInput::ByeReceived)
            }
            (Role::Callee, TerminatedReason::UasBye | TerminatedReason::UasDecline)
            | (Role::Caller, TerminatedReason::UacBye | TerminatedReason::UacCancel) => None,
            (_, TerminatedReason::Timeout) => Some(CallInput::DialogEnded(StackEnd::Timeout)),
            (_, other) => {
                log_line(format_args!(
                    "call {} ended by the stack: {other:?}",
                    self.task.dialog.id()
                ));
                Some(CallInput::DialogEnded(StackEnd::Failed))
            }
        }
    }

    /// [`Self::apply`] for actions no command waits on: their failures are
    /// logged where they happen.
    async fn perform(&mut self, actions: Vec<CallAction>, request: Option<&TransactionHandle>) {
        let _logged = self.apply(actions, request).await;
    }

    /// Carries out the core's actions in order. The result is the first
    /// failure to send, for the command that caused them.
    async fn apply(
        &mut self,
        actions: Vec<CallAction>,
        request: Option<&TransactionHandle>,
    ) -> Result<(), CallError> {
        let dialog = &self.task.dialog;
        let mut result = Ok(());
        for action in actions {
            match action {
                CallAction::SendRinging => {
                    if let Err(error) = dialog.ringing(None, None) {
                        log_line(format_args!("180 for {} not sent: {error}", dialog.id()));
                        result = result.and(Err(CallError::CallEnded));
                    }
                }
                CallAction::SendAnswer { sdp } => {
                    let headers = vec![Header::ContentType("application/sdp".into())];
                    if let Err(error) = dialog.accept(Some(headers), Some(sdp.into_bytes())) {
                        log_line(format_args!("200 for {} not sent: {error}", dialog.id()));
                        result = result.and(Err(CallError::CallEnded));
                    }
                }
                CallAction::SendReject { status } => {
                    if let Err(error) = dialog.reject(Some(StatusCode::from(status)), None) {
                        log_line(format_args!(
                            "{status} for {} not sent: {error}",
                            dialog.id()
                        ));
                    }
                }
                CallAction::SendBye => {
                    // RFC 3261 15.1.1: the call is over once the BYE is
                    // sent, whatever its response.
                    if let Err(error) = dialog.bye().await {
                        log_line(format_args!("BYE for {} failed: {error}", dialog.id()));
                    }
                }
                CallAction::SendRefer { target } => {
                    // The REFER's transaction can take 32 s; NOTIFYs must be
                    // answered meanwhile, so it runs beside the loop.
                    let dialog = dialog.clone();
                    let refer_tx = self.refer_tx.clone();
                    tokio::spawn(async move {
                        let refer_to = rsipstack::sip::ReferTo::new(format!("<{target}>"));
                        let status = match dialog.refer(refer_to, None, None).await {
                            Ok(Some(response)) => Some(response.status_code.code()),
                            Ok(None) => None,
                            Err(error) => {
                                log_line(format_args!("REFER for {} failed: {error}", dialog.id()));
                                None
                            }
                        };
                        let _ = refer_tx.send(status);
                    });
                }
                CallAction::SendNotify(report) => {
                    let notifier = self
                        .notifier
                        .get_or_insert_with(|| spawn_notifier(dialog.clone()));
                    // Fails only if the notifier is gone; it lives as long
                    // as this sender.
                    let _ = notifier.send((report, self.refer_reply.take()));
                }
                CallAction::Respond(reply) => match request {
                    Some(handle) => respond(dialog, handle, reply, self.task.allow).await,
                    None => debug_assert!(false, "a reply without a request: {reply:?}"),
                },
                CallAction::Emit(event) => {
                    // The application may have stopped listening; the call
                    // goes on regardless.
                    let _ = self.task.events.send(event);
                }
                CallAction::FinishTransfer(outcome) => {
                    if let Some(waiting) = self.pending_transfer.take() {
                        let _ = waiting.send(Ok(outcome));
                    }
                }
            }
        }
        result
    }
}

/// A report for the notifier, with what resolves once the 202 to its
/// REFER has gone out (the first report after a REFER only).
type Notification = (ReferReport, Option<oneshot::Receiver<()>>);

/// The longest a NOTIFY waits for the 202 to its REFER to go out.
const REFER_REPLY_WAIT: Duration = Duration::from_secs(2);

/// Sends the NOTIFYs handed to it on `dialog`, each after the previous
/// one's transaction ended, until the call drops the sender. A NOTIFY the
/// transferor does not take is logged: the application's report was still
/// made, and the transferor has its own bound on the transfer.
fn spawn_notifier(dialog: InviteDialog) -> mpsc::UnboundedSender<Notification> {
    let (notifier, mut reports) = mpsc::unbounded_channel::<Notification>();
    tokio::spawn(async move {
        while let Some((report, reply_sent)) = reports.recv().await {
            // After the 202 to its REFER (see `ReferReplies`); the stack
            // gives up on a transaction after 64*T1 anyway.
            if let Some(sent) = reply_sent {
                let _ = tokio::time::timeout(REFER_REPLY_WAIT, sent).await;
            }
            let headers = vec![
                Header::Event(report.event().into()),
                Header::SubscriptionState(report.subscription_state().into()),
                Header::ContentType(SIPFRAG.into()),
            ];
            let body = report.sipfrag().into_bytes();
            let problem = match dialog.notify(Some(headers), Some(body)).await {
                Ok(Some(response)) if response.status_code.code() < 300 => continue,
                Ok(Some(response)) => format!("answered {}", response.status_code.code()),
                Ok(None) => "not sent or not answered".to_string(),
                Err(error) => error.to_string(),
            };
            log_line(format_args!(
                "NOTIFY {} for {}: {problem}",
                report.status,
                dialog.id()
            ));
        }
    });
    notifier
}

/// Answers the in-dialog request behind `handle`.
async fn respond(
    dialog: &InviteDialog,
    handle: &TransactionHandle,
    reply: Reply,
    allow: &'static str,
) {
    let mut headers = Vec::new();
    if reply.allow {
        headers.push(Header::Allow(allow.into()));
        headers.push(Header::Accept(ACCEPT.into()));
    }
    if reply.sdp.is_some() {
        headers.push(Header::ContentType("application/sdp".into()));
    }
    if let Some(why) = reply.why {
        log_line(format_args!(
            "in-dialog request on {} answered {}: {why}",
            dialog.id(),
            reply.status
        ));
    }
    let body = reply.sdp.map(String::into_bytes);
    let status = StatusCode::from(reply.status);
    if handle.respond(status, Some(headers), body).await.is_err() {
        log_line(format_args!(
            "response {} on {} not sent: the transaction is gone",
            reply.status,
            dialog.id()
        ));
    }
}

fn body(request: &Request) -> Option<Vec<u8>> {
    (!request.body.is_empty()).then(|| request.body.clone())
}

fn cseq(request: &Request) -> Option<u32> {
    request.cseq_header().ok()?.seq().ok()
}

/// The values of every Refer-To header (`r` in compact form, which the
/// parser files under the same name).
fn refer_to_values(request: &Request) -> Vec<String> {
    request
        .headers
        .iter()
        .filter_map(|header| match header {
            Header::ReferTo(value) => Some(value.value().to_string()),
            _ => None,
        })
        .collect()
}

/// Whether a NOTIFY reports on a REFER: `Event: refer`, perhaps with an
/// `id` parameter (RFC 3515 2.4.4); `o` is its compact form.
fn is_refer_event(request: &Request) -> bool {
    let value = request
        .header_value("Event")
        .or_else(|| request.header_value("o"));
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|package| package.trim().eq_ignore_ascii_case("refer"))
    })
}
