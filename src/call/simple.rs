//! The simple answering mode of `switchboard run`, without a call flow:
//! answer, play a recording, then transfer the caller (or hang up). With
//! no recording and no transfer the agent answers and hangs up at once,
//! which is what the call-setup benchmark measures.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::bridge::hang_up;
use super::leg::{LegEvent, MediaAddresses, MediaLeg};
use super::log::call_log;
use super::recording::Recording;
use super::transfer::{transfer, TransferPlan, TransferResult};
use crate::media::session::Clip;
use crate::metrics::Metrics;
use crate::records::{CallEnd, CallStart, Store};
use crate::sip::agent::{CallEvent, CancellationToken, IncomingCall, SipAgent};

/// What the simple mode does with each call.
#[derive(Debug, Clone, Default)]
pub struct SimpleMode {
    /// Played once the caller's ACK arrives; shared by all calls.
    pub play: Option<Clip>,
    /// Where to send the caller after the recording.
    pub transfer: Option<TransferPlan>,
    /// Keep the call up after playing (until the caller hangs up) instead
    /// of hanging up. Ignored with a transfer.
    pub stay: bool,
    /// Write what each caller said to `DIR/<Call-ID>.wav`.
    pub record_dir: Option<PathBuf>,
    /// Where call counts go.
    pub metrics: Arc<Metrics>,
    /// Where call records go, if anywhere.
    pub records: Option<Arc<Store>>,
}

/// Handles one incoming call to its end.
pub async fn handle_call(
    agent: Arc<SipAgent>,
    incoming: IncomingCall,
    mode: Arc<SimpleMode>,
    cancel: CancellationToken,
) {
    let info = incoming.info().clone();
    let id = info.call_id.clone();
    call_log(
        &id,
        format_args!("incoming from {} to {}", info.caller, info.callee),
    );
    let metrics = mode.metrics.clone();
    metrics.active_calls.fetch_add(1, Ordering::Relaxed);
    let row = match &mode.records {
        Some(store) => {
            let store = store.clone();
            let start = CallStart {
                call_id: info.call_id.clone(),
                caller: info.caller.clone(),
                callee: info.callee.clone(),
                started_at: now_rfc3339(),
            };
            match tokio::task::spawn_blocking(move || store.start_call(&start)).await {
                Ok(Ok(row)) => Some(row),
                Ok(Err(error)) => {
                    call_log(&id, format_args!("call record not written: {error}"));
                    None
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    let (outcome, detail) = handle_answered(&agent, incoming, &mode, &cancel, &id).await;
    metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
    metrics.calls_by_outcome.increment(outcome.label());
    if let Outcome::Transferred(destination) = &outcome {
        metrics.calls_by_destination.increment(destination);
    }
    if let (Some(store), Some(row)) = (mode.records.clone(), row) {
        let end = CallEnd {
            ended_at: now_rfc3339(),
            outcome: outcome.label().to_string(),
            destination: match &outcome {
                Outcome::Transferred(destination) => Some(destination.clone()),
                _ => None,
            },
            transfer_result: matches!(outcome, Outcome::Transferred(_) | Outcome::TransferFailed)
                .then_some(detail),
        };
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.end_call(row, &end)).await
        {
            call_log(&id, format_args!("call record not written: {error}"));
        }
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How a call ended, for the metrics.
pub(crate) enum Outcome {
    NotAnswered,
    Transferred(String),
    TransferFailed,
    CallerHungUp,
    AgentHungUp,
}

impl Outcome {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::NotAnswered => "not_answered",
            Outcome::Transferred(_) => "transferred",
            Outcome::TransferFailed => "transfer_failed",
            Outcome::CallerHungUp => "caller_hung_up",
            Outcome::AgentHungUp => "agent_hung_up",
        }
    }
}

async fn handle_answered(
    agent: &Arc<SipAgent>,
    incoming: IncomingCall,
    mode: &SimpleMode,
    cancel: &CancellationToken,
    id: &str,
) -> (Outcome, String) {
    let id = id.to_string();
    let addresses = MediaAddresses::of_agent(agent);
    let immediate = mode.play.is_none() && mode.transfer.is_none() && !mode.stay;
    if !immediate {
        let _ = incoming.ringing().await;
    }
    let mut leg = match MediaLeg::answer(incoming, addresses, cancel).await {
        Ok(leg) => leg,
        Err(error) => {
            call_log(&id, format_args!("not answered: {error}"));
            return (Outcome::NotAnswered, error.to_string());
        }
    };
    let negotiated = *leg.negotiated();
    call_log(
        &id,
        format_args!(
            "answered: {}, RTP {} -> {}{}",
            negotiated.codec.encoding_name(),
            leg.local_media_addr(),
            negotiated.remote_addr,
            if negotiated.dtmf_payload_type.is_some() {
                ", DTMF by RFC 4733"
            } else {
                ", no telephone-events"
            }
        ),
    );
    let mut recording = Recording::start(mode.record_dir.as_deref());
    let mut established = false;
    let (end, outcome) = loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => {
                hang_up(&mut leg).await;
                break ("the agent is shutting down".to_string(), Outcome::AgentHungUp);
            }
            event = leg.next_event() => event,
        };
        let Some(event) = event else {
            break ("call closed".to_string(), Outcome::CallerHungUp);
        };
        match event {
            LegEvent::Established if !established => {
                established = true;
                call_log(&id, format_args!("established"));
                if immediate {
                    let _ = leg.hangup().await;
                } else if let Some(play) = &mode.play {
                    call_log(
                        &id,
                        format_args!("playing {:.1} s", play.duration().as_secs_f32()),
                    );
                    let _ = leg.play_clip(play);
                } else if !mode.stay {
                    if let Some(reason) =
                        after_playing(agent, &mut leg, mode, addresses, cancel).await
                    {
                        break reason;
                    }
                }
            }
            LegEvent::Established => {}
            LegEvent::Audio(samples) => {
                if let Some(recording) = recording.as_mut() {
                    recording.push(&samples);
                }
            }
            LegEvent::Dtmf(digit) => call_log(&id, format_args!("DTMF {digit}")),
            LegEvent::PlaybackFinished => {
                call_log(&id, format_args!("playback finished"));
                if mode.stay && mode.transfer.is_none() {
                    continue;
                }
                if let Some(reason) = after_playing(agent, &mut leg, mode, addresses, cancel).await
                {
                    break reason;
                }
            }
            LegEvent::Hold(on) => call_log(
                &id,
                format_args!("{}", if on { "put on hold" } else { "taken off hold" }),
            ),
            LegEvent::Latched(addr) => call_log(&id, format_args!("RTP latched to {addr}")),
            LegEvent::Signalling(event) => call_log(&id, format_args!("{event:?}")),
            LegEvent::Ended(event) => {
                let outcome = match event {
                    CallEvent::RemoteHangup | CallEvent::Cancelled => Outcome::CallerHungUp,
                    _ => Outcome::AgentHungUp,
                };
                break (ended(&event), outcome);
            }
        }
    };
    if let Ok(stats) = leg.media_stats().await {
        call_log(
            &id,
            format_args!(
                "media: {} packets sent, {} received, {} lost, {} foreign",
                stats.packets_sent, stats.packets_received, stats.jitter_buffer.lost, stats.foreign
            ),
        );
    }
    call_log(&id, format_args!("ended: {end}"));
    if let Some(recording) = recording {
        recording.finish(&id).await;
    }
    (outcome, end)
}

/// After the recording: transfer, or hang up. Returns how the call ended
/// when it did.
async fn after_playing(
    agent: &SipAgent,
    leg: &mut MediaLeg,
    mode: &SimpleMode,
    addresses: MediaAddresses,
    cancel: &CancellationToken,
) -> Option<(String, Outcome)> {
    let Some(plan) = &mode.transfer else {
        hang_up(leg).await;
        return Some(("we hung up after playing".to_string(), Outcome::AgentHungUp));
    };
    match transfer(agent, leg, plan, addresses, cancel).await {
        TransferResult::Referred { target, .. } => Some((
            format!("transferred to {target} by REFER"),
            Outcome::Transferred(target),
        )),
        TransferResult::Bridged { target, end, .. } => Some((
            format!("bridged to {target} until {end:?}"),
            Outcome::Transferred(target),
        )),
        TransferResult::CallerGone { .. } => Some((
            "the caller hung up during the transfer".into(),
            Outcome::CallerHungUp,
        )),
        TransferResult::Failed { attempts } => {
            // Nobody took the call: say so by hanging up rather than
            // leaving the caller in silence. (A flow would route again.)
            hang_up(leg).await;
            Some((
                format!(
                    "transfer failed ({} attempts: {}); hung up",
                    attempts.len(),
                    attempts
                        .iter()
                        .map(|a| format!("{} {}: {}", a.method, a.target, a.failure))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                Outcome::TransferFailed,
            ))
        }
    }
}

fn ended(event: &CallEvent) -> String {
    match event {
        CallEvent::RemoteHangup => "the caller hung up".into(),
        CallEvent::Cancelled => "the caller cancelled".into(),
        CallEvent::Ended(reason) => format!("{reason:?}"),
        other => format!("{other:?}"),
    }
}
