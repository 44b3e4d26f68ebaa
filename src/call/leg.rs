//! One call leg with its audio: a SIP call ([`CallHandle`]) joined to the
//! [`MediaSession`] its SDP negotiated.
//!
//! [`MediaLeg::answer`] and [`MediaLeg::dial`] do the offer/answer work
//! (RFC 3264) and start the media; [`MediaLeg::next_event`] then merges the
//! call's signalling and media into one stream of [`LegEvent`]s, applying
//! what a re-INVITE changes (hold, resume, a new media address) to the
//! media itself so that no application has to. The SIP stack answers
//! re-INVITEs; this layer only follows them.

use std::net::{IpAddr, SocketAddr};

use tokio::sync::mpsc;

use crate::audio::Samples;
use crate::media::g711::Law;
use crate::media::session::{Clip, MediaConfig, MediaError, MediaEvent, MediaSession, MediaStats};
use crate::sip::agent::{
    CallControl, CallError, CallEvent, CallHandle, CallInfo, CancellationToken, IncomingCall,
    SipAgent, TransferOutcome,
};
use crate::sip::sdp::{self, Codec, Direction, MediaDescription, SdpError};

/// Why a leg could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    /// The peer's SDP did not parse or offers nothing we speak; an incoming
    /// call has been answered 488 (RFC 3261 13.3.1.1).
    #[error("SDP: {0}")]
    Sdp(#[from] SdpError),
    /// The SIP side failed.
    #[error("{0}")]
    Call(#[from] CallError),
    /// No media ports could be bound.
    #[error("media: {0}")]
    Media(#[from] MediaError),
}

/// Where a leg binds its RTP sockets and what it announces in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAddresses {
    /// The address to bind (may be unspecified, 0.0.0.0).
    pub bind: IpAddr,
    /// The address written in our SDP `c=` line: where the peer must send.
    pub announce: IpAddr,
}

impl MediaAddresses {
    /// Binds where the agent's SIP socket is bound and announces the
    /// agent's contact address (the configured public address, the one the
    /// registrar saw, or the bound one), so the SDP and the Contact agree:
    /// the commonest cause of one-way audio is an SDP naming an address the
    /// peer cannot reach.
    pub fn of_agent(agent: &SipAgent) -> MediaAddresses {
        let contact = agent.contact_address().ip();
        let bound = agent.local_addr().ip();
        MediaAddresses {
            bind: bound,
            announce: if contact.is_unspecified() {
                bound
            } else {
                contact
            },
        }
    }
}

/// What happened on a leg, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// The call is established (the ACK of our answer, or at once for an
    /// outgoing call).
    Established,
    /// 20 ms of the peer's audio, 8 kHz.
    Audio(Samples),
    /// A key the peer pressed.
    Dtmf(char),
    /// Everything queued with [`MediaLeg::play`] has been sent.
    PlaybackFinished,
    /// The peer put us on hold (`true`) or took us off it.
    Hold(bool),
    /// The peer's RTP comes from this address; ours goes there now.
    Latched(SocketAddr),
    /// A transfer's progress or outcome, or a REFER received, as the SIP
    /// layer reported it.
    Signalling(CallEvent),
    /// The call is over; the last event.
    Ended(CallEvent),
}

/// A call leg with media. Dropping it hangs up and stops the media.
#[derive(Debug)]
pub struct MediaLeg {
    call: CallHandle,
    media: MediaSession,
    media_events: mpsc::Receiver<MediaEvent>,
    /// Cancels the media task; a child of the token given at setup.
    media_cancel: CancellationToken,
    negotiated: MediaDescription,
    /// Set once [`LegEvent::Ended`] has been returned.
    ended: bool,
    /// The media ended on its own (it never does unless cancelled): stop
    /// polling it.
    media_closed: bool,
}

fn law_of(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::MuLaw,
        Codec::Pcma => Law::ALaw,
    }
}

/// A random-enough SDP session id (RFC 4566 5.2 suggests an NTP timestamp).
fn session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 2_208_988_800)
        .unwrap_or(1)
}

async fn start_media(
    addresses: MediaAddresses,
    negotiated: &MediaDescription,
    cancel: &CancellationToken,
) -> Result<(MediaSession, mpsc::Receiver<MediaEvent>, CancellationToken), MediaError> {
    let mut config = MediaConfig::new(
        addresses.bind,
        negotiated.remote_addr,
        law_of(negotiated.codec),
    );
    config.dtmf_payload_type = negotiated.dtmf_payload_type;
    let media_cancel = cancel.child_token();
    let (media, events) = MediaSession::start(config, media_cancel.clone()).await?;
    if !negotiated.direction.sends() {
        media.set_hold(true)?;
    }
    Ok((media, events, media_cancel))
}

impl MediaLeg {
    /// Answers an incoming call: negotiates its offer, binds media, sends
    /// 200 with our answer. An offer with nothing we speak is answered 488;
    /// a call that cannot get media ports, 503.
    pub async fn answer(
        incoming: IncomingCall,
        addresses: MediaAddresses,
        cancel: &CancellationToken,
    ) -> Result<MediaLeg, LegError> {
        let offer = match sdp::parse(incoming.remote_sdp().as_bytes()) {
            Ok(offer) => offer,
            Err(error) => {
                let _ = incoming.reject(488).await;
                return Err(error.into());
            }
        };
        let id = session_id();
        // Negotiate first (the port is not known yet), then answer with
        // the bound port.
        let negotiated = match sdp::answer(&offer, addresses.announce, 9, id, id) {
            Ok(answer) => answer.media,
            Err(error) => {
                let _ = incoming.reject(488).await;
                return Err(error.into());
            }
        };
        let (media, media_events, media_cancel) =
            match start_media(addresses, &negotiated, cancel).await {
                Ok(started) => started,
                Err(error) => {
                    let _ = incoming.reject(503).await;
                    return Err(error.into());
                }
            };
        let answer = sdp::answer(
            &offer,
            addresses.announce,
            media.local_addr().port(),
            id,
            id,
        )?;
        let call = match incoming.answer(&answer.sdp).await {
            Ok(call) => call,
            Err(error) => {
                media_cancel.cancel();
                return Err(error.into());
            }
        };
        Ok(MediaLeg {
            call,
            media,
            media_events,
            media_cancel,
            negotiated,
            ended: false,
            media_closed: false,
        })
    }

    /// Calls `target` from `from` with our offer (PCMU, PCMA,
    /// telephone-event); returns once answered. The media is bound before
    /// the INVITE leaves, so early RTP from the callee is not lost.
    pub async fn dial(
        agent: &SipAgent,
        target: &str,
        from: &str,
        addresses: MediaAddresses,
        cancel: &CancellationToken,
    ) -> Result<MediaLeg, LegError> {
        let provisional = MediaDescription {
            remote_addr: SocketAddr::new(addresses.bind, 0),
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(sdp::TELEPHONE_EVENT_PAYLOAD_TYPE),
            direction: Direction::SendRecv,
            ptime: sdp::PTIME_MS,
        };
        // The codec is fixed by the answer; until then the session sends
        // nothing (remote port 0).
        let (media, _provisional_events, media_cancel) = start_media(
            addresses,
            &MediaDescription {
                remote_addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0),
                ..provisional
            },
            cancel,
        )
        .await?;
        let id = session_id();
        let offer = sdp::offer(
            addresses.announce,
            media.local_addr().port(),
            id,
            id,
            Direction::SendRecv,
        );
        let answered = match agent.call(target, &offer, from).await {
            Ok(answered) => answered,
            Err(error) => {
                media_cancel.cancel();
                return Err(error.into());
            }
        };
        let negotiated = match sdp::parse(answered.remote_sdp.as_bytes())
            .and_then(|answer| sdp::accept_answer(&answer))
        {
            Ok(negotiated) => negotiated,
            Err(error) => {
                // RFC 3264 7: an unusable answer leaves nothing to talk
                // over; end the call.
                let _ = answered.handle.hangup().await;
                media_cancel.cancel();
                return Err(error.into());
            }
        };
        // Restart the media with the negotiated codec and address on the
        // port the offer named: the provisional session is closed first,
        // so the port is free again.
        let local_port = media.local_addr().port();
        media_cancel.cancel();
        let _ = media.close().await;
        let mut config = MediaConfig::new(
            addresses.bind,
            negotiated.remote_addr,
            law_of(negotiated.codec),
        );
        config.dtmf_payload_type = negotiated.dtmf_payload_type;
        config.port_range = local_port..=local_port.saturating_add(1);
        let media_cancel = cancel.child_token();
        let (media, media_events) = match MediaSession::start(config, media_cancel.clone()).await {
            Ok(started) => started,
            Err(error) => {
                let _ = answered.handle.hangup().await;
                return Err(error.into());
            }
        };
        if !negotiated.direction.sends() {
            media.set_hold(true)?;
        }
        Ok(MediaLeg {
            call: answered.handle,
            media,
            media_events,
            media_cancel,
            negotiated,
            ended: false,
            media_closed: false,
        })
    }

    /// Call-ID, caller and callee.
    pub fn info(&self) -> &CallInfo {
        self.call.info()
    }

    /// A cloneable handle to hang up or transfer from another task.
    pub fn control(&self) -> CallControl {
        self.call.control()
    }

    /// What the offer/answer settled on.
    pub fn negotiated(&self) -> &MediaDescription {
        &self.negotiated
    }

    /// Where our RTP socket is bound.
    pub fn local_media_addr(&self) -> SocketAddr {
        self.media.local_addr()
    }

    /// Queues 8 kHz audio to send, paced in real time.
    pub fn play(&self, samples: Samples) -> Result<(), MediaError> {
        self.media.play(samples)
    }

    /// Queues a shared clip (a greeting, a prompt) without copying it.
    pub fn play_clip(&self, clip: &Clip) -> Result<(), MediaError> {
        self.media.play_clip(clip)
    }

    /// Barge-in: drops queued audio.
    pub async fn stop_playback(&self) -> Result<std::time::Duration, MediaError> {
        self.media.stop_playback().await
    }

    /// Sends RFC 4733 digits.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        self.media.send_dtmf(digits)
    }

    /// The media counters now.
    pub async fn media_stats(&self) -> Result<MediaStats, MediaError> {
        self.media.stats().await
    }

    /// Hangs up with BYE.
    pub async fn hangup(&self) -> Result<(), CallError> {
        self.call.hangup().await
    }

    /// Blind transfer with REFER (see [`CallControl::refer`]).
    pub async fn refer(&self, target: &str) -> Result<TransferOutcome, CallError> {
        self.call.refer(target).await
    }

    /// The next event; `None` after [`LegEvent::Ended`]. Cancel safe.
    pub async fn next_event(&mut self) -> Option<LegEvent> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                event = self.call.next_event() => {
                    let Some(event) = event else {
                        return Some(self.end(CallEvent::Ended(crate::sip::agent::EndReason::Failed)));
                    };
                    match event {
                        CallEvent::Established => return Some(LegEvent::Established),
                        CallEvent::ReInvite { sdp } => {
                            if let Some(event) = self.follow_reinvite(&sdp) {
                                return Some(event);
                            }
                        }
                        CallEvent::RemoteHangup
                        | CallEvent::Cancelled
                        | CallEvent::Ended(_) => return Some(self.end(event)),
                        other => return Some(LegEvent::Signalling(other)),
                    }
                }
                event = self.media_events.recv(), if !self.media_closed => {
                    match event {
                        Some(MediaEvent::Audio(samples)) => return Some(LegEvent::Audio(samples)),
                        Some(MediaEvent::Dtmf(digit)) => return Some(LegEvent::Dtmf(digit)),
                        Some(MediaEvent::PlaybackFinished) => return Some(LegEvent::PlaybackFinished),
                        Some(MediaEvent::Latched(addr)) => return Some(LegEvent::Latched(addr)),
                        None => self.media_closed = true,
                    }
                }
            }
        }
    }

    /// The media keeps running until the leg is dropped, so its final
    /// counters can still be read.
    fn end(&mut self, event: CallEvent) -> LegEvent {
        self.ended = true;
        LegEvent::Ended(event)
    }

    /// Applies a re-INVITE the SIP layer has answered: a new address, hold
    /// or resume (RFC 3264 8). Returns the hold change, if any.
    fn follow_reinvite(&mut self, sdp_text: &str) -> Option<LegEvent> {
        let offer = sdp::parse(sdp_text.as_bytes()).ok()?;
        let id = session_id();
        let changed = sdp::answer(&offer, IpAddr::from([0, 0, 0, 0]), 9, id, id)
            .ok()?
            .media;
        let was_on_hold = !self.negotiated.direction.sends();
        if changed.remote_addr != self.negotiated.remote_addr
            && !changed.remote_addr.ip().is_unspecified()
        {
            let _ = self.media.set_remote(changed.remote_addr);
        }
        let on_hold = !changed.direction.sends() || changed.remote_addr.ip().is_unspecified();
        let _ = self.media.set_hold(on_hold);
        self.negotiated = MediaDescription {
            // RFC 3264 8.4: the old-style hold (c=0.0.0.0) keeps the last
            // real address for the resume.
            remote_addr: if changed.remote_addr.ip().is_unspecified() {
                self.negotiated.remote_addr
            } else {
                changed.remote_addr
            },
            ..changed
        };
        (on_hold != was_on_hold).then_some(LegEvent::Hold(on_hold))
    }
}

impl Drop for MediaLeg {
    fn drop(&mut self) {
        self.media_cancel.cancel();
    }
}
