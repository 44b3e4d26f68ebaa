//! The SIP user agent: it registers on the PBX as an extension, answers
//! calls, places calls and transfers them, on top of rsipstack. The rest
//! of the crate sees only the types here; rsipstack's stay inside.
//!
//! Call order:
//!
//! 1. [`SipAgent::start`] binds UDP and TCP, starts the stack, registers
//!    the account (if any) and returns the agent with a receiver of
//!    [`AgentEvent`]s.
//! 2. Each [`AgentEvent::IncomingCall`] has had 100 Trying. The application
//!    rings ([`IncomingCall::ringing`]), answers with its SDP
//!    ([`IncomingCall::answer`], e.g. from [`crate::sip::sdp::answer`]) or
//!    rejects ([`IncomingCall::reject`], e.g. 488 when
//!    [`crate::sip::sdp::SdpError::NoCommonCodec`]). An answered call is a
//!    [`CallHandle`]: its [`CallEvent`]s, [`CallHandle::hangup`] and
//!    [`CallHandle::refer`].
//! 3. [`SipAgent::call`] places a call and returns it answered, or a typed
//!    [`CallError`].
//! 4. Cancelling the token given to `start` shuts down: new calls get 503,
//!    calls in progress are hung up, the binding is removed (Expires: 0),
//!    then the stack stops. [`SipAgent::stopped`] returns when that is done.
//!
//! Inbound policy (`policy.rs`): OPTIONS gets 200 with Allow and Accept; a
//! source outside the access list gets 403; an INVITE beyond `max_calls`
//! gets 486; a request for a dialog we do not have gets 481; REGISTER,
//! SUBSCRIBE, PUBLISH and MESSAGE get 405 with Allow; malformed requests
//! get 400-class answers and unknown methods 501 before the stack sees
//! them, over UDP and TCP alike (`screen.rs`, `udp.rs`, `tcp.rs`).
//! Every rejection leaves one line on standard error saying why.
//!
//! Layout: pure cores (`call.rs`, `registration.rs`, `policy.rs`,
//! `transfer.rs`, `auth.rs`) and the tokio drivers around them
//! (`call_task.rs`, `register_task.rs`, `outgoing.rs`, this module's
//! dispatcher).

mod auth;
mod call;
mod call_task;
mod config;
mod errors;
mod events;
mod handle;
mod log;
mod outgoing;
mod policy;
mod register_task;
mod registration;
mod screen;
mod tcp;
mod transfer;
mod udp;

pub use call::LocalSdpError;
pub use config::{Account, AgentConfig, Transports};
pub use errors::{AgentError, CallError};
pub use events::{AgentEvent, CallEvent, EndReason, RegistrationFailure};
pub use handle::{CallControl, CallDirection, CallHandle, CallInfo, IncomingCall, OutgoingCall};
pub use registration::RegistrationSchedule;
/// Shutdown signal for [`SipAgent::start`]: tokio-util's token, which
/// rsipstack re-exports (the crate has no direct tokio-util dependency).
pub use rsipstack::platform::CancellationToken;
pub use transfer::{TransferFailure, TransferOutcome};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Auth, Header, Method, Param, Scheme, StatusCode, Transport, Uri};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::udp::{UdpConnection, UdpInner};
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::{mpsc, oneshot, watch};

use call::CallCore;
use call_task::{CallTask, Role};
use log::log_line;
use policy::{classify, AgentLoad, Disposition, InboundPolicy, RequestFacts, ACCEPT, ALLOW};

/// How long shutdown waits for the unregistration and for calls to hang up.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(6);

/// Agent events waiting for the application; beyond this a new call is
/// turned away (480) rather than queued unseen.
const EVENT_QUEUE: usize = 64;

/// State shared by the agent's tasks.
pub(crate) struct Shared {
    pub endpoint: EndpointInnerRef,
    pub dialog_layer: Arc<DialogLayer>,
    pub config: AgentConfig,
    policy: InboundPolicy,
    /// Where we are bound, with port 0 and 0.0.0.0 resolved.
    local_addr: SocketAddr,
    /// The address the registrar saw us at (RFC 3581), for our Contact.
    discovered: Mutex<Option<SocketAddr>>,
    /// The account's digest credentials for rsipstack, which answers
    /// challenges to requests inside dialogs (BYE, REFER) itself. REGISTER
    /// and INVITE are answered by [`auth`] instead.
    pub credential: Option<Credential>,
    /// Incoming calls in progress, for `max_calls`.
    incoming_calls: AtomicUsize,
    /// Call tasks alive, incoming and outgoing: shutdown waits for 0.
    live_calls: watch::Sender<usize>,
    /// REFERs being answered, by Call-ID and CSeq: see [`ReferReplies`].
    pub refer_replies: ReferReplies,
    /// False once shutdown began: new INVITEs get 503.
    accepting: AtomicBool,
    events: mpsc::Sender<AgentEvent>,
    /// The application's token: calls hang up and the binding goes when
    /// it fires.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The address peers should reach us at: the configured public
    /// address, else the one the registrar saw, else where we are bound.
    fn contact_address(&self) -> SocketAddr {
        let discovered = *self
            .discovered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.config
            .public_address
            .or(discovered)
            .unwrap_or(self.local_addr)
    }

    /// Records where the registrar saw us; whether that is news.
    fn set_discovered_address(&self, addr: SocketAddr) -> bool {
        let mut discovered = self
            .discovered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = *discovered != Some(addr);
        *discovered = Some(addr);
        changed
    }

    /// Our Contact for a dialog over `transport`.
    pub(crate) fn contact_uri(&self, transport: Transport) -> Uri {
        self.contact_uri_at(self.contact_address(), transport)
    }

    pub(crate) fn contact_uri_at(&self, addr: SocketAddr, transport: Transport) -> Uri {
        let user = match &self.config.account {
            Some(account) => account.username.clone(),
            None => self.config.contact_user.clone(),
        };
        let params = match transport {
            Transport::Udp => Vec::new(),
            other => vec![Param::Transport(other)],
        };
        Uri {
            scheme: Some(Scheme::Sip),
            auth: Some(Auth {
                user,
                password: None,
            }),
            host_with_port: addr.into(),
            params,
            headers: Vec::new(),
        }
    }

    /// Hands an event to the application without waiting for it.
    fn report(&self, event: AgentEvent) {
        if let Err(error) = self.events.try_send(event) {
            // An undelivered IncomingCall rejects itself with 480 on drop.
            let what = match error.into_inner() {
                AgentEvent::IncomingCall(call) => {
                    format!("incoming call {} answered 480", call.info().call_id)
                }
                other => format!("{other:?} dropped"),
            };
            log_line(format_args!(
                "the application is not reading agent events: {what}"
            ));
        }
    }
}

/// Holds a call's place in the counts until its task ends.
pub(crate) struct CallSlot {
    shared: Arc<Shared>,
    incoming: bool,
}

impl CallSlot {
    fn new(shared: &Arc<Shared>, incoming: bool) -> CallSlot {
        if incoming {
            shared.incoming_calls.fetch_add(1, Ordering::SeqCst);
        }
        shared.live_calls.send_modify(|n| *n += 1);
        CallSlot {
            shared: shared.clone(),
            incoming,
        }
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if self.incoming {
            self.shared.incoming_calls.fetch_sub(1, Ordering::SeqCst);
        }
        self.shared
            .live_calls
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

pub(crate) fn parse_uri(text: &str) -> Option<Uri> {
    Uri::try_from(text).ok()
}

/// The transport a URI asks for (`;transport=`), UDP by default (RFC
/// 3261 19.1.1).
pub(crate) fn uri_transport(uri: &Uri) -> Transport {
    uri.params
        .iter()
        .find_map(|p| match p {
            Param::Transport(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(Transport::Udp)
}

/// The running agent.
pub struct SipAgent {
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for SipAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipAgent")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

/// The account with its URIs parsed.
struct CheckedAccount {
    binding: register_task::Binding,
    outbound_proxy: Option<SipAddr>,
    credential: Credential,
}

fn check_account(account: &Account) -> Result<CheckedAccount, AgentError> {
    let uri = |field: &'static str, value: &str| {
        parse_uri(value).ok_or_else(|| AgentError::InvalidUri {
            field,
            value: value.to_string(),
        })
    };
    let registrar = uri("account.registrar", &account.registrar)?;
    let aor = uri("account.id", &account.id)?;
    let outbound_proxy = match &account.outbound_proxy {
        Some(text) => {
            let proxy = uri("account.outbound_proxy", text)?;
            Some(
                SipAddr::try_from(&proxy).map_err(|_| AgentError::InvalidUri {
                    field: "account.outbound_proxy",
                    value: text.clone(),
                })?,
            )
        }
        None => None,
    };
    Ok(CheckedAccount {
        binding: register_task::Binding {
            registrar,
            aor,
            expires: account.expires,
        },
        outbound_proxy,
        credential: Credential {
            username: account.username.clone(),
            password: account.password.clone(),
            realm: None,
            auth_username: None,
        },
    })
}

fn stack_error(what: &'static str) -> impl FnOnce(rsipstack::Error) -> AgentError {
    move |error| AgentError::Stack {
        what,
        detail: error.to_string(),
    }
}

impl SipAgent {
    /// Starts the agent. See the module documentation for what happens
    /// when `cancel` fires.
    pub async fn start(
        config: AgentConfig,
        cancel: CancellationToken,
    ) -> Result<(SipAgent, mpsc::Receiver<AgentEvent>), AgentError> {
        if !config.transports.udp && !config.transports.tcp {
            return Err(AgentError::NoTransport);
        }
        let account = config.account.as_ref().map(check_account).transpose()?;

        // The stack has its own token: it must outlive `cancel` long enough
        // to send the BYEs and the unREGISTER.
        let stack_token = CancellationToken::new();
        let mut transport_layer = TransportLayer::new(stack_token.clone());
        transport_layer.outbound = account.as_ref().and_then(|a| a.outbound_proxy.clone());

        let mut port = config.listen.port();
        let mut udp_socket = None;
        if config.transports.udp {
            let bind_error = |source| AgentError::Bind {
                transport: "UDP",
                addr: config.listen,
                source,
            };
            let socket = std::net::UdpSocket::bind(config.listen).map_err(bind_error)?;
            socket.set_nonblocking(true).map_err(bind_error)?;
            let socket = tokio::net::UdpSocket::from_std(socket).map_err(bind_error)?;
            port = socket.local_addr().map_err(bind_error)?.port();
            udp_socket = Some(socket);
        }
        let bound = SocketAddr::new(config.listen.ip(), port);
        let mut tcp_listener = None;
        if config.transports.tcp {
            // Our own listener (tcp.rs), so every message is screened.
            let bind_error = |source| AgentError::Bind {
                transport: "TCP",
                addr: bound,
                source,
            };
            let listener = std::net::TcpListener::bind(bound).map_err(bind_error)?;
            port = listener.local_addr().map_err(bind_error)?.port();
            tcp_listener = Some(listener);
        }
        let bound = SocketAddr::new(config.listen.ip(), port);
        let local_addr = SipConnection::resolve_bind_address(bound);

        if let Some(socket) = udp_socket {
            let inner = UdpInner {
                conn: Arc::new(udp::ValidatingSocket::new(socket)),
                addr: SipAddr {
                    r#type: Some(Transport::Udp),
                    addr: local_addr.into(),
                },
            };
            let udp = UdpConnection::attach(
                inner,
                config.public_address,
                Some(stack_token.child_token()),
            )
            .await;
            transport_layer.add_transport(udp.into());
        }
        if let Some(listener) = tcp_listener {
            let addr = SipAddr {
                r#type: Some(Transport::Tcp),
                addr: config.public_address.unwrap_or(local_addr).into(),
            };
            tcp::attach(listener, addr, &transport_layer, stack_token.child_token())
                .await
                .map_err(|source| AgentError::Bind {
                    transport: "TCP",
                    addr: bound,
                    source,
                })?;
        }

        let endpoint = EndpointBuilder::new()
            .with_user_agent(&config.user_agent)
            .with_cancel_token(stack_token.clone())
            .with_transport_layer(transport_layer)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(stack_error("hand over incoming requests"))?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (live_calls, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            endpoint: endpoint.inner.clone(),
            dialog_layer,
            policy: InboundPolicy {
                allowed_sources: config.allowed_sources.clone(),
                max_calls: config.max_calls,
            },
            local_addr,
            discovered: Mutex::new(None),
            credential: account.as_ref().map(|a| a.credential.clone()),
            incoming_calls: AtomicUsize::new(0),
            live_calls,
            refer_replies: ReferReplies::default(),
            accepting: AtomicBool::new(true),
            events: events_tx,
            shutdown: cancel.clone(),
            config,
        });

        tokio::spawn(async move { endpoint.serve().await });
        tokio::spawn(dispatch(shared.clone(), incoming, stack_token.clone()));
        let registration = account.map(|account| {
            tokio::spawn(register_task::run(
                shared.clone(),
                account.binding,
                cancel.clone(),
            ))
        });

        let (stopped_tx, stopped) = watch::channel(false);
        let supervisor = shared.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            supervisor.accepting.store(false, Ordering::SeqCst);
            if let Some(registration) = registration {
                if tokio::time::timeout(SHUTDOWN_BOUND, registration)
                    .await
                    .is_err()
                {
                    log_line(format_args!("shutdown: the unREGISTER did not finish"));
                }
            }
            let mut live = supervisor.live_calls.subscribe();
            if tokio::time::timeout(SHUTDOWN_BOUND, live.wait_for(|n| *n == 0))
                .await
                .is_err()
            {
                log_line(format_args!(
                    "shutdown: calls still hanging up; stopping anyway"
                ));
            }
            stack_token.cancel();
            let _ = stopped_tx.send(true);
        });

        Ok((SipAgent { shared, stopped }, events_rx))
    }

    /// Where the agent listens (port 0 in the configuration resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address peers reach us at: the configured public address, else
    /// the one the registrar reported, else [`Self::local_addr`]. The
    /// application puts its IP in SDP.
    pub fn contact_address(&self) -> SocketAddr {
        self.shared.contact_address()
    }

    /// Calls `target` (a SIP URI) from `from` (our URI for From) with
    /// `sdp_offer` (e.g. [`crate::sip::sdp::offer`]). Returns once the
    /// callee answers; the callee's SDP answer is in
    /// [`OutgoingCall::remote_sdp`]. Cancel safe: dropping the future
    /// cancels the INVITE.
    pub async fn call(
        &self,
        target: &str,
        sdp_offer: &str,
        from: &str,
    ) -> Result<OutgoingCall, CallError> {
        let slot = CallSlot::new(&self.shared, false);
        outgoing::place_call(&self.shared, target, sdp_offer, from, slot).await
    }

    /// Returns once shutdown has finished: calls hung up, binding removed,
    /// stack stopped.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|done| *done).await;
    }
}

/// Hands each request the stack receives to its dialog, a new call, or
/// an answer, until the stack stops.
async fn dispatch(shared: Arc<Shared>, mut incoming: TransactionReceiver, stop: CancellationToken) {
    loop {
        let transaction = tokio::select! {
            _ = stop.cancelled() => break,
            transaction = incoming.recv() => transaction,
        };
        match transaction {
            Some(transaction) => dispatch_request(&shared, transaction),
            None => break,
        }
    }
}

fn source_ip(transaction: &Transaction) -> Option<IpAddr> {
    let remote = transaction.connection.as_ref()?.get_remote_addr()?;
    remote.get_socketaddr().ok().map(|addr| addr.ip())
}

/// The final responses to REFERs, as the stack sends them. The call
/// answers a REFER through rsipstack's transaction handle, which only
/// queues the response for the task handling the transaction; our NOTIFYs
/// go out from another task, and on a loaded machine the first one
/// overtook the 202 (a strict transferor, SIPp, took that as a protocol
/// error). So the task handling a REFER registers it here; the call takes
/// the registration with the REFER and its first NOTIFY waits until the
/// handling task has finished, that is, the 202 has been sent.
#[derive(Clone, Default)]
pub(crate) struct ReferReplies(Arc<Mutex<HashMap<ReferKey, oneshot::Receiver<()>>>>);

/// A REFER's Call-ID and CSeq number.
type ReferKey = (String, u32);

/// Held by the task handling one REFER; dropping it says the final
/// response is out.
pub(crate) struct ReplySent {
    _sent: oneshot::Sender<()>,
    key: ReferKey,
    replies: ReferReplies,
}

impl ReferReplies {
    fn key(request: &rsipstack::sip::Request) -> Option<ReferKey> {
        let call_id = request.call_id_header().ok()?.value().to_string();
        let cseq = request.cseq_header().ok()?.seq().ok()?;
        Some((call_id, cseq))
    }

    /// Registers `request` if it is a REFER.
    fn expect(&self, request: &rsipstack::sip::Request) -> Option<ReplySent> {
        if request.method != Method::Refer {
            return None;
        }
        let key = Self::key(request)?;
        let (sent, taken) = oneshot::channel();
        self.0.lock().ok()?.insert(key.clone(), taken);
        Some(ReplySent {
            _sent: sent,
            key,
            replies: self.clone(),
        })
    }

    /// What resolves when the final response to this REFER has been sent
    /// (`None`: not registered, nothing to wait for).
    pub fn take(&self, request: &rsipstack::sip::Request) -> Option<oneshot::Receiver<()>> {
        let key = Self::key(request)?;
        self.0.lock().ok()?.remove(&key)
    }
}

impl Drop for ReplySent {
    fn drop(&mut self) {
        // Not taken by a call (refused before it got there): forget it.
        if let Ok(mut replies) = self.replies.0.lock() {
            replies.remove(&self.key);
        }
    }
}

/// How long an in-dialog request waits for a dialog the stack is still
/// registering, and in how many steps.
const DIALOG_RACE_STEP: Duration = Duration::from_millis(20);
const DIALOG_RACE_STEPS: u32 = 5;

/// Hands a request on. A request with a To tag whose dialog is not known
/// yet is given [`DIALOG_RACE_STEPS`] short chances before it is answered
/// 481: rsipstack registers the dialog of an outgoing call under its
/// confirmed id only after the ACK has gone out, and a peer that sends
/// REFER, re-INVITE or BYE the moment it sees the ACK (on loopback, within
/// microseconds) would otherwise hit the gap.
fn dispatch_request(shared: &Arc<Shared>, transaction: Transaction) {
    let waiting_for_dialog = transaction.original.method != Method::Ack
        && transaction
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some()
        && shared.dialog_layer.match_dialog(&transaction).is_none();
    if !waiting_for_dialog {
        handle_request(shared, transaction);
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        for _ in 0..DIALOG_RACE_STEPS {
            tokio::time::sleep(DIALOG_RACE_STEP).await;
            if shared.dialog_layer.match_dialog(&transaction).is_some() {
                break;
            }
        }
        handle_request(&shared, transaction);
    });
}

fn handle_request(shared: &Arc<Shared>, mut transaction: Transaction) {
    let dialog = shared.dialog_layer.match_dialog(&transaction);
    let request = &transaction.original;
    let source = source_ip(&transaction);
    let facts = RequestFacts {
        method: request.method,
        source,
        to_tag: request
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some(),
        dialog_found: dialog.is_some(),
    };
    let load = AgentLoad {
        active_calls: shared.incoming_calls.load(Ordering::SeqCst),
        accepting_calls: shared.accepting.load(Ordering::SeqCst),
    };
    let from = source.map_or_else(|| "unknown source".to_string(), |ip| ip.to_string());
    match classify(&facts, &shared.policy, load) {
        Disposition::Dialog => {
            if let Some(mut dialog) = dialog {
                let replies = shared.refer_replies.clone();
                tokio::spawn(async move {
                    // Dropped once the stack has sent the final response.
                    let _sent = replies.expect(&transaction.original);
                    if let Err(error) = dialog.handle(&mut transaction).await {
                        log_line(format_args!(
                            "{} in dialog {} failed: {error}",
                            transaction.original.method,
                            dialog.id()
                        ));
                    }
                });
            }
        }
        Disposition::NewCall => start_incoming_call(shared, transaction),
        Disposition::Options => {
            tokio::spawn(async move {
                let headers = vec![Header::Allow(ALLOW.into()), Header::Accept(ACCEPT.into())];
                let _ = transaction.reply_with(StatusCode::OK, headers, None).await;
            });
        }
        Disposition::Ignore { reason } => {
            log_line(format_args!(
                "{} from {from} ignored: {reason}",
                facts.method
            ));
        }
        Disposition::Reject {
            status,
            allow,
            reason,
        } => {
            log_line(format_args!(
                "{} from {from} answered {status}: {reason}",
                facts.method
            ));
            tokio::spawn(async move {
                let mut headers = Vec::new();
                if allow {
                    headers.push(Header::Allow(ALLOW.into()));
                }
                let _ = transaction
                    .reply_with(StatusCode::from(status), headers, None)
                    .await;
            });
        }
    }
}

/// Creates the dialog for a new INVITE, lets rsipstack answer 100 Trying
/// and wait for ACK or CANCEL, starts the call task, and hands the call to
/// the application.
fn start_incoming_call(shared: &Arc<Shared>, mut transaction: Transaction) {
    let transport = transaction
        .connection
        .as_ref()
        .map_or(Transport::Udp, |c| c.transport());
    let (state_tx, state_rx) = shared.dialog_layer.new_dialog_state_channel();
    let created = shared.dialog_layer.get_or_create_server_invite(
        &transaction,
        state_tx,
        shared.credential.clone(),
        Some(shared.contact_uri(transport)),
    );
    let dialog = match created {
        Ok(dialog) => dialog,
        Err(error) => {
            // e.g. no Contact (RFC 3261 8.1.1.8).
            log_line(format_args!(
                "INVITE answered 400: no dialog can be made: {error}"
            ));
            tokio::spawn(async move {
                let _ = transaction.reply(StatusCode::BadRequest).await;
            });
            return;
        }
    };
    let request = &transaction.original;
    let info = CallInfo {
        call_id: request
            .call_id_header()
            .map(|h| h.value().to_string())
            .unwrap_or_default(),
        caller: request
            .from_header()
            .and_then(|h| h.typed())
            .map(|from| from.uri.to_string())
            .unwrap_or_default(),
        callee: request
            .to_header()
            .and_then(|h| h.typed())
            .map(|to| to.uri.to_string())
            .unwrap_or_default(),
        direction: CallDirection::Incoming,
    };
    let remote_sdp = String::from_utf8_lossy(&request.body).into_owned();
    let slot = CallSlot::new(shared, true);

    let mut server = dialog.clone();
    tokio::spawn(async move {
        if let Err(error) = server.handle(&mut transaction).await {
            log_line(format_args!("INVITE {} failed: {error}", server.id()));
        }
    });

    let (control, event_rx) = CallTask::spawn(
        CallCore::incoming(call_task::now(), &shared.config),
        Role::Callee,
        dialog,
        shared,
        state_rx,
        slot,
    );
    let call = IncomingCall::new(info, remote_sdp, control, event_rx);
    shared.report(AgentEvent::IncomingCall(call));
}
