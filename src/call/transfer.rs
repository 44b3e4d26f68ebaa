//! Handing a caller on to a destination, with failover: blind transfer by
//! REFER (RFC 3515) where the PBX allows it, else, or when it refuses, a
//! new INVITE to the destination bridged to the caller (B2BUA).
//!
//! Destinations are tried in order. A destination that is busy, does not
//! answer or cannot be reached is recorded and the next one is tried; a
//! REFER the transferee refuses outright (405, 501, 403: it does not do
//! transfers) switches the rest of the attempts to INVITE when the method
//! allows it. While an INVITE rings the caller hears ringback, never dead
//! air, and a caller who hangs up meanwhile cancels it.

use std::time::Duration;

use super::bridge::{bridge, BridgeEnd};
use super::leg::{LegError, LegEvent, MediaAddresses, MediaLeg};
use super::log::call_log;
use crate::audio::{SampleRate, Samples};
use crate::sip::agent::{CallError, CancellationToken, SipAgent, TransferFailure, TransferOutcome};

/// How the agent transfers calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMethod {
    /// REFER only: the PBX connects the caller; the agent leaves the call.
    Refer,
    /// A new INVITE only: the agent stays in the media path as a B2BUA.
    Invite,
    /// REFER, and INVITE for destinations the REFER cannot reach because
    /// the PBX refuses REFER.
    #[default]
    ReferThenInvite,
}

impl TransferMethod {
    fn refers(self) -> bool {
        matches!(
            self,
            TransferMethod::Refer | TransferMethod::ReferThenInvite
        )
    }

    fn invites(self) -> bool {
        matches!(
            self,
            TransferMethod::Invite | TransferMethod::ReferThenInvite
        )
    }
}

/// One destination tried and why it did not take the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The destination URI.
    pub target: String,
    /// `"REFER"` or `"INVITE"`.
    pub method: &'static str,
    /// What went wrong.
    pub failure: String,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    /// The caller was referred to `target`, which answered; our leg is
    /// over.
    Referred {
        /// Where the caller went.
        target: String,
        /// Destinations tried before it.
        failed: Vec<Attempt>,
    },
    /// The caller was bridged to `target` until `end`; both legs are over.
    Bridged {
        /// Who answered.
        target: String,
        /// Who hung up first.
        end: BridgeEnd,
        /// Destinations tried before it.
        failed: Vec<Attempt>,
    },
    /// No destination took the call; the caller is still on the line, for
    /// the application to take back (a message, voicemail, another route).
    Failed {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// The caller hung up (or the agent shut down) during the transfer.
    CallerGone {
        /// The attempts made.
        attempts: Vec<Attempt>,
    },
}

/// Ringback while a B-leg rings: 440 + 480 Hz, 2 s on, 4 s off (ITU-T
/// E.180 lists it for North America; any ringback tells the caller that
/// something is happening).
pub fn ringback() -> Samples {
    let rate = SampleRate::TELEPHONE;
    let on = rate.hz() as usize * 2;
    let mut data: Vec<f32> = (0..on)
        .map(|n| {
            let t = n as f32 / rate.hz() as f32;
            0.1 * ((2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + (2.0 * std::f32::consts::PI * 480.0 * t).sin())
        })
        .collect();
    data.resize(on * 3, 0.0);
    Samples::new(rate, data)
}

/// What the transfer needs besides the caller's leg.
#[derive(Debug, Clone)]
pub struct TransferPlan {
    /// Destination URIs, in order of preference.
    pub destinations: Vec<String>,
    /// REFER, INVITE or both.
    pub method: TransferMethod,
    /// Our URI for the From of an INVITE.
    pub from: String,
    /// How long an INVITE may ring before the next destination.
    pub no_answer: Duration,
}

/// Transfers `caller` to the first destination of `plan` that takes it.
pub async fn transfer(
    agent: &SipAgent,
    caller: &mut MediaLeg,
    plan: &TransferPlan,
    addresses: MediaAddresses,
    cancel: &CancellationToken,
) -> TransferResult {
    let call_id = caller.info().call_id.clone();
    let mut attempts = Vec::new();
    let mut refer_refused = !plan.method.refers();
    for target in &plan.destinations {
        if !refer_refused {
            call_log(&call_id, format_args!("transfer: REFER to {target}"));
            match refer(caller, target, cancel).await {
                ReferEnd::Succeeded => {
                    call_log(&call_id, format_args!("transferred to {target} (REFER)"));
                    return TransferResult::Referred {
                        target: target.clone(),
                        failed: attempts,
                    };
                }
                ReferEnd::CallerGone => return TransferResult::CallerGone { attempts },
                ReferEnd::Failed(failure, refused) => {
                    call_log(
                        &call_id,
                        format_args!("transfer: REFER to {target} failed: {failure}"),
                    );
                    attempts.push(Attempt {
                        target: target.clone(),
                        method: "REFER",
                        failure,
                    });
                    if !refused {
                        continue;
                    }
                    refer_refused = true;
                }
            }
        }
        if !plan.method.invites() {
            continue;
        }
        call_log(&call_id, format_args!("transfer: INVITE to {target}"));
        match dial_with_ringback(agent, caller, target, plan, addresses, cancel).await {
            Dialled::Answered(mut callee) => {
                call_log(
                    &call_id,
                    format_args!(
                        "transfer: {target} answered; bridging with {}",
                        callee.info().call_id
                    ),
                );
                let end = bridge(caller, &mut callee, cancel).await;
                return TransferResult::Bridged {
                    target: target.clone(),
                    end,
                    failed: attempts,
                };
            }
            Dialled::CallerGone => return TransferResult::CallerGone { attempts },
            Dialled::Failed(error) => {
                call_log(
                    &call_id,
                    format_args!("transfer: INVITE to {target} failed: {error}"),
                );
                attempts.push(Attempt {
                    target: target.clone(),
                    method: "INVITE",
                    failure: error.to_string(),
                });
            }
        }
    }
    TransferResult::Failed { attempts }
}

enum ReferEnd {
    Succeeded,
    /// Why, and whether the transferee refused REFER itself.
    Failed(String, bool),
    CallerGone,
}

/// Sends REFER and follows it while still reading the caller's events (a
/// hang-up during the transfer must be seen).
async fn refer(caller: &mut MediaLeg, target: &str, cancel: &CancellationToken) -> ReferEnd {
    let control = caller.control();
    let outcome = control.refer(target);
    tokio::pin!(outcome);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return ReferEnd::CallerGone,
            outcome = &mut outcome => return match outcome {
                Ok(TransferOutcome::Succeeded) => ReferEnd::Succeeded,
                Ok(TransferOutcome::Failed(TransferFailure::CallEnded)) | Err(CallError::CallEnded) => {
                    ReferEnd::CallerGone
                }
                Ok(TransferOutcome::Failed(failure)) => {
                    let refused = matches!(failure, TransferFailure::Refused { .. });
                    ReferEnd::Failed(failure.to_string(), refused)
                }
                Err(error) => ReferEnd::Failed(error.to_string(), false),
            },
            event = caller.next_event() => {
                if matches!(event, None | Some(LegEvent::Ended(_))) {
                    return ReferEnd::CallerGone;
                }
            }
        }
    }
}

enum Dialled {
    Answered(MediaLeg),
    Failed(LegError),
    CallerGone,
}

/// Calls `target`, playing ringback to the caller until it answers, fails
/// or the caller hangs up (which cancels the INVITE by dropping it).
async fn dial_with_ringback(
    agent: &SipAgent,
    caller: &mut MediaLeg,
    target: &str,
    plan: &TransferPlan,
    addresses: MediaAddresses,
    cancel: &CancellationToken,
) -> Dialled {
    let tone = ringback();
    let _ = caller.play(tone.clone());
    let dial = tokio::time::timeout(
        plan.no_answer,
        MediaLeg::dial(agent, target, &plan.from, addresses, cancel),
    );
    tokio::pin!(dial);
    let result = loop {
        tokio::select! {
            _ = cancel.cancelled() => break Dialled::CallerGone,
            dialled = &mut dial => break match dialled {
                Ok(Ok(callee)) => Dialled::Answered(callee),
                Ok(Err(error)) => Dialled::Failed(error),
                Err(_) => Dialled::Failed(LegError::Call(CallError::NoAnswer { after: plan.no_answer })),
            },
            event = caller.next_event() => match event {
                None | Some(LegEvent::Ended(_)) => break Dialled::CallerGone,
                Some(LegEvent::PlaybackFinished) => {
                    let _ = caller.play(tone.clone());
                }
                Some(_) => {}
            },
        }
    };
    let _ = caller.stop_playback().await;
    result
}
