//! One live call with a flow, from the INVITE to the transfer or hang-up.
//!
//! A thin tokio driver around pure cores: every caller frame goes to the
//! barge-in detector and the endpointer; their events, the leg's events
//! (DTMF, playback finished, hang-up), finished recognitions and
//! syntheses, and two timers (the endpointer's, the acknowledgement) are
//! turned into calls on the flow's [`Interpreter`], whose actions are
//! carried out here: sentences synthesised (or taken from the phrase
//! cache) and queued one at a time, a listen armed once its prompt has
//! played, a transfer tried target by target.
//!
//! Latency: the endpointer hands over the turn's audio once the caller has
//! been silent for its trailing pad ([`EndpointerEvent::Partial`] with
//! `complete`); recognition and intent detection start then, while the
//! endpointer waits out the rest of the silence, and the result is used
//! when the turn ends with the same audio. What the words read as goes
//! back to the endpointer ([`Endpointer::handle_reading`]): a finished,
//! understood request ends the turn after a shorter silence, words that
//! stop mid-phrase make it wait longer. Only where the flow cannot route
//! on the small speech model's words does the larger one decode the turn
//! again ([`crate::intent::second_opinion_wanted`]). Replies written in the flow are
//! already synthesised, so the first reply audio follows the decision at
//! once.
//!
//! Turn ids: everything queued for the caller belongs to the interpreter's
//! current turn; a barge-in or a key drops what is queued, and a
//! recognition finished for an older turn is detected again for the
//! current question instead of answering one the agent no longer asks.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{AgentMode, ACKNOWLEDGEMENTS};
use crate::call::agent::playout::Playout;
use crate::call::bridge::hang_up;
use crate::call::leg::{LegEvent, MediaAddresses, MediaLeg};
use crate::call::log::call_log;
use crate::call::recording::Recording;
use crate::call::simple::{now_rfc3339, Outcome};
use crate::call::transfer::{transfer, TransferPlan, TransferResult};
use crate::call::turn::{reading, BargeIn, BargeInEvent, Endpointer, EndpointerEvent, TurnReading};
use crate::flow::interpreter::{Action, Event, Listen, Say, Transfer, TurnId};
use crate::flow::model::Step;
use crate::flow::simulator::{describe_target, Simulator};
use crate::flow::Utterance;
use crate::intent::{second_hearing_better, second_opinion_wanted, IntentError, IntentResult};
use crate::media::session::Clip;
use crate::metrics::Stage;
use crate::records::{CallEnd, CallRow, CallStart, TurnRecord};
use crate::sip::agent::{CallEvent, CancellationToken, IncomingCall, SipAgent};
use crate::speech::stt::{Escalation, SttError, TranscribeOptions, Transcript};
use crate::speech::text::sentences;
use crate::speech::tts::TtsError;

/// Handles one incoming call to its end.
pub async fn handle_call(
    agent: Arc<SipAgent>,
    incoming: IncomingCall,
    mode: Arc<AgentMode>,
    cancel: CancellationToken,
) {
    let info = incoming.info().clone();
    let id = info.call_id.clone();
    call_log(
        &id,
        format_args!("incoming from {} to {}", info.caller, info.callee),
    );
    let Some(flow) = mode.flows().select(&info.callee) else {
        let _ = incoming.reject(503).await;
        return;
    };
    mode.metrics.active_calls.fetch_add(1, Ordering::Relaxed);
    let row = start_record(&mode, &info.call_id, &info.caller, &info.callee).await;
    let _ = incoming.ringing().await;
    let addresses = MediaAddresses::of_agent(&agent);
    let (outcome, detail) = match MediaLeg::answer(incoming, addresses, &cancel).await {
        Err(error) => {
            call_log(&id, format_args!("not answered: {error}"));
            (Outcome::NotAnswered, error.to_string())
        }
        Ok(leg) => {
            let negotiated = *leg.negotiated();
            call_log(
                &id,
                format_args!(
                    "answered: {}, RTP {} -> {}; flow {}",
                    negotiated.codec.encoding_name(),
                    leg.local_media_addr(),
                    negotiated.remote_addr,
                    flow.flow().name
                ),
            );
            let caller = flow.identify(&info.caller);
            let mut call = Conversation::new(
                agent,
                leg,
                addresses,
                mode.clone(),
                flow,
                id.clone(),
                row,
                cancel,
            );
            let ended = call.run(caller).await;
            if let Ok(stats) = call.leg.media_stats().await {
                let buffer = stats.jitter_buffer;
                let deepened = match (buffer.stretched, buffer.shrunk) {
                    (0, 0) => String::new(),
                    (stretched, shrunk) => format!(
                        "; jitter buffer deepened by {} ms, {} ms given back in silence",
                        stretched * 20,
                        shrunk * 20
                    ),
                };
                call_log(
                    &id,
                    format_args!(
                        "media: {} packets sent, {} received, {} lost, {} late{deepened}",
                        stats.packets_sent, stats.packets_received, buffer.lost, buffer.late
                    ),
                );
            }
            call.flush_turn_record().await;
            if let Some(recording) = call.recording.take() {
                recording.finish(&id).await;
            }
            ended
        }
    };
    call_log(&id, format_args!("ended: {detail}"));
    mode.metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
    mode.metrics.calls_by_outcome.increment(outcome.label());
    if let Outcome::Transferred(destination) = &outcome {
        mode.metrics.calls_by_destination.increment(destination);
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

async fn start_record(
    mode: &AgentMode,
    call_id: &str,
    caller: &str,
    callee: &str,
) -> Option<CallRow> {
    let store = mode.records.clone()?;
    let start = CallStart {
        call_id: call_id.to_string(),
        caller: caller.to_string(),
        callee: callee.to_string(),
        started_at: now_rfc3339(),
    };
    match tokio::task::spawn_blocking(move || store.start_call(&start)).await {
        Ok(Ok(row)) => Some(row),
        Ok(Err(error)) => {
            call_log(call_id, format_args!("call record not written: {error}"));
            None
        }
        Err(_) => None,
    }
}

/// A sentence's audio and the time synthesis took (zero from the cache).
type Synthesized = Result<(Clip, Duration), TtsError>;

/// A sentence being synthesised.
type Synthesis = (Sentence, JoinHandle<Synthesized>);

/// A sentence waiting to be said.
#[derive(Debug, Clone)]
struct Sentence {
    turn: TurnId,
    text: String,
    interruptible: bool,
}

/// What recognition and intent detection made of a turn's audio.
struct Heard {
    transcript: Result<Transcript, SttError>,
    /// The turn of the listen the intent was detected for.
    listen_turn: Option<TurnId>,
    intent: Result<Option<IntentResult>, IntentError>,
    intent_time: Duration,
}

/// Recognition of one stretch of audio, running or done.
struct Job {
    /// Samples of the turn audio it covers: a turn that ends with the same
    /// audio takes its result.
    audio_len: usize,
    handle: JoinHandle<Heard>,
    result: Option<Heard>,
}

impl Drop for Job {
    /// A job replaced by newer audio, or left when the call ends, stops:
    /// its recognition is abandoned in the pool (see `SttPool::transcribe`).
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The caller's turn being answered: for latency and the call record.
#[derive(Debug, Clone)]
struct Answering {
    speech_ended_at: Instant,
    audio_len: usize,
    /// Acknowledgements played while the reply is being worked out.
    acknowledged: usize,
    /// When the next one is due.
    acknowledge_at: Instant,
}

/// A record of the last turn, written once its reply has started.
struct PendingTurn {
    record: TurnRecord,
    speech_ended_at: Instant,
}

/// How the call ends, when it has.
type Ending = (Outcome, String);

struct Conversation {
    agent: Arc<SipAgent>,
    leg: MediaLeg,
    addresses: MediaAddresses,
    mode: Arc<AgentMode>,
    flow: Arc<Simulator>,
    id: String,
    row: Option<CallRow>,
    cancel: CancellationToken,
    interpreter: crate::flow::Interpreter,
    endpointer: Endpointer,
    barge_in: BargeIn,
    playout: Playout,
    speaking: bool,
    queue: VecDeque<Sentence>,
    synthesis: Option<Synthesis>,
    /// The listen, transfer or hang-up that follows what is being said.
    after: Option<Action>,
    /// The question the caller is answering (the interpreter's listen).
    listening: Option<Listen>,
    /// What the agent said last: the recogniser's prompt.
    last_said: String,
    job: Option<Job>,
    answering: Option<Answering>,
    pending_turn: Option<PendingTurn>,
    turns: u32,
    /// Speech recognition failed: keys only from now on.
    keys_only: bool,
    /// What the caller said, with `--record-dir`.
    recording: Option<Recording>,
}

impl Conversation {
    #[allow(clippy::too_many_arguments)]
    fn new(
        agent: Arc<SipAgent>,
        leg: MediaLeg,
        addresses: MediaAddresses,
        mode: Arc<AgentMode>,
        flow: Arc<Simulator>,
        id: String,
        row: Option<CallRow>,
        cancel: CancellationToken,
    ) -> Conversation {
        let mut endpointer_config = mode.endpointer.clone();
        endpointer_config.no_input_timeout =
            crate::flow::InterpreterConfig::default().no_input_timeout;
        Conversation {
            interpreter: flow.interpreter(),
            endpointer: Endpointer::new(endpointer_config),
            barge_in: BargeIn::new(mode.barge_in.clone()),
            playout: Playout::new(),
            speaking: false,
            queue: VecDeque::new(),
            synthesis: None,
            after: None,
            listening: None,
            last_said: String::new(),
            job: None,
            answering: None,
            pending_turn: None,
            turns: 0,
            keys_only: false,
            recording: Recording::start(mode.record_dir.as_deref()),
            agent,
            leg,
            addresses,
            mode,
            flow,
            id,
            row,
            cancel,
        }
    }

    fn log(&self, line: std::fmt::Arguments<'_>) {
        call_log(&self.id, line);
    }

    async fn run(&mut self, caller: crate::flow::CallerAttributes) -> Ending {
        let mut established = false;
        let mut caller = Some(caller);
        loop {
            let timer = self.next_deadline();
            let event = tokio::select! {
                _ = self.cancel.cancelled() => {
                    hang_up(&mut self.leg).await;
                    return (Outcome::AgentHungUp, "the agent is shutting down".into());
                }
                event = self.leg.next_event() => Wake::Leg(event),
                heard = job_done(&mut self.job) => Wake::Heard(heard),
                spoken = synthesis_done(&mut self.synthesis) => Wake::Spoken(spoken),
                _ = sleep_until(timer) => Wake::Timer,
            };
            let ending = match event {
                Wake::Leg(None) => return (Outcome::CallerHungUp, "call closed".into()),
                Wake::Leg(Some(LegEvent::Established)) if !established => {
                    established = true;
                    self.log(format_args!("established"));
                    let Some(caller) = caller.take() else {
                        continue;
                    };
                    self.log(format_args!(
                        "caller {}{}{}",
                        caller.number,
                        caller
                            .tier
                            .as_deref()
                            .map(|t| format!(", tier {t}"))
                            .unwrap_or_default(),
                        caller
                            .language
                            .as_deref()
                            .map(|l| format!(", language {l}"))
                            .unwrap_or_default()
                    ));
                    let actions = {
                        let destinations = lock(&self.mode.destinations);
                        self.interpreter.handle_call_started(
                            self.mode.clock.now(),
                            caller,
                            &destinations,
                        )
                    };
                    self.log_events();
                    self.apply(actions).await
                }
                Wake::Leg(Some(event)) => self.on_leg_event(event).await,
                Wake::Heard(heard) => match self.on_heard(heard).await {
                    // A reading of the words may have ended the turn.
                    None => self.on_endpointer().await,
                    ending => ending,
                },
                Wake::Spoken(spoken) => self.on_spoken(spoken).await,
                Wake::Timer => self.on_timer().await,
            };
            if let Some(ending) = ending {
                return ending;
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let ack = self.answering.as_ref().map(|a| a.acknowledge_at);
        match (self.endpointer.poll_timeout(), ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn on_leg_event(&mut self, event: LegEvent) -> Option<Ending> {
        match event {
            LegEvent::Audio(frame) => {
                if let Some(recording) = self.recording.as_mut() {
                    recording.push(&frame);
                }
                let now = Instant::now();
                let playing = self.playout.playing(now);
                self.barge_in
                    .handle_playback(now, playing, self.playout.level_dbfs(now));
                self.barge_in.handle_audio(now, &frame);
                self.endpointer.handle_audio(now, &frame);
                while let Some(BargeInEvent::BargeIn { onset_at }) = self.barge_in.poll_event() {
                    if self.speaking && self.playout.interruptible(now) {
                        self.barge(now, onset_at).await;
                    }
                }
                self.on_endpointer().await
            }
            LegEvent::Dtmf(key) => self.on_key(key).await,
            LegEvent::PlaybackFinished => {
                if self.queue.is_empty() && self.synthesis.is_none() {
                    self.finished_speaking().await
                } else {
                    None
                }
            }
            LegEvent::Hold(on) => {
                self.log(format_args!(
                    "{}",
                    if on { "put on hold" } else { "taken off hold" }
                ));
                None
            }
            LegEvent::Latched(addr) => {
                self.log(format_args!("RTP latched to {addr}"));
                None
            }
            LegEvent::Established => None,
            LegEvent::Signalling(event) => {
                self.log(format_args!("{event:?}"));
                None
            }
            LegEvent::Ended(event) => {
                self.interpreter
                    .handle_caller_hung_up(self.mode.clock.now());
                Some(match event {
                    CallEvent::RemoteHangup | CallEvent::Cancelled => {
                        (Outcome::CallerHungUp, "the caller hung up".into())
                    }
                    other => (Outcome::AgentHungUp, format!("{other:?}")),
                })
            }
        }
    }

    /// The caller talks over an interruptible prompt: stop it, and make
    /// what they say the answer to the question being asked.
    async fn barge(&mut self, now: Instant, onset_at: Instant) {
        let _ = self.leg.stop_playback().await;
        self.log(format_args!(
            "barge-in: the caller spoke {} ms ago; prompt stopped",
            now.saturating_duration_since(onset_at).as_millis()
        ));
        self.stop_speaking(now);
        self.endpointer.handle_barge_in(now, onset_at);
    }

    fn stop_speaking(&mut self, now: Instant) {
        self.queue.clear();
        self.synthesis = None;
        self.playout.clear();
        if self.speaking {
            self.speaking = false;
            self.endpointer.handle_playback(now, false);
        }
        // A listen that was waiting for the prompt to end is now open.
        if let Some(Action::Listen(listen)) = self.after.take() {
            self.listening = Some(listen);
        }
    }

    async fn on_endpointer(&mut self) -> Option<Ending> {
        while let Some(event) = self.endpointer.poll_event() {
            match event {
                EndpointerEvent::SpeechStarted { .. } => {}
                EndpointerEvent::SpeechResumed => {
                    // The recognition of the pause's partial is moot: stop
                    // it, so that it takes no core from other calls.
                    if self.answering.is_none() {
                        self.job = None;
                    }
                }
                EndpointerEvent::Partial {
                    audio, complete, ..
                } => {
                    if complete && !self.keys_only {
                        self.start_job(audio);
                    }
                }
                EndpointerEvent::TurnEnded(turn) => {
                    if self.keys_only {
                        continue;
                    }
                    self.flush_turn_record().await;
                    self.log(format_args!(
                        "caller finished speaking ({:.1} s of speech)",
                        turn.speech_duration.as_secs_f32()
                    ));
                    // The job on the partial that stands for the turn (the
                    // turn up to the early pad, when the rest was quiet)
                    // answers it; else the turn's own audio is recognised.
                    let reused = turn
                        .standing_partial
                        .filter(|&len| self.job.as_ref().is_some_and(|j| j.audio_len == len));
                    let audio_len = reused.unwrap_or(turn.audio.data.len());
                    if let Some(recording) = self.recording.as_mut() {
                        // The audio recognised: a standing partial is the
                        // start of the turn's.
                        let heard = &turn.audio.data[..audio_len.min(turn.audio.data.len())];
                        let heard = crate::audio::Samples::new(turn.audio.rate, heard.to_vec());
                        recording.turn(&self.id, heard);
                    }
                    if reused.is_none() {
                        self.start_job(turn.audio);
                    }
                    self.answering = Some(Answering {
                        speech_ended_at: turn.speech_ended_at,
                        audio_len,
                        acknowledged: 0,
                        acknowledge_at: turn.speech_ended_at + self.mode.acknowledge_after,
                    });
                    if let Some(done) = self.job.as_mut().and_then(|j| j.result.take()) {
                        if let Some(ending) = self.on_heard(done).await {
                            return Some(ending);
                        }
                    }
                }
                EndpointerEvent::NoInput { .. } => {
                    if self.answering.is_some() || self.speaking {
                        continue;
                    }
                    self.log(format_args!("no input"));
                    let turn = self.interpreter.turn();
                    let actions = {
                        let destinations = lock(&self.mode.destinations);
                        self.interpreter
                            .handle_no_input(self.mode.clock.now(), turn, &destinations)
                    };
                    self.log_events();
                    if let Some(ending) = self.apply(actions).await {
                        return Some(ending);
                    }
                }
            }
        }
        None
    }

    /// Starts recognising `audio` (and detecting the intent of what it
    /// says for the question being asked); a job already running for
    /// other audio is abandoned.
    fn start_job(&mut self, audio: crate::audio::Samples) {
        let audio_len = audio.data.len();
        if self.job.as_ref().is_some_and(|j| j.audio_len == audio_len) {
            return;
        }
        let mode = self.mode.clone();
        let flow = self.flow.clone();
        let listen = self.listening.clone().or_else(|| match &self.after {
            Some(Action::Listen(listen)) => Some(listen.clone()),
            _ => None,
        });
        let options = TranscribeOptions {
            prompt: (!self.last_said.is_empty()).then(|| self.last_said.clone()),
            escalation: Escalation::Defer,
            ..Default::default()
        };
        let handle = tokio::spawn(async move {
            let second_options = TranscribeOptions {
                escalation: Escalation::Only,
                ..options.clone()
            };
            let mut transcript = mode.stt.transcribe(audio.clone(), options).await;
            let (mut intent, mut intent_time) = match (&transcript, &listen) {
                (Ok(t), Some(listen)) => detect(&mode, &flow, listen, &t.text).await,
                _ => (Ok(None), Duration::ZERO),
            };
            // The larger model only where the flow cannot route on what
            // the small one heard (as `switchboard replay` does).
            let wanted = match (&transcript, &intent) {
                (Ok(first), Ok(detected)) => {
                    second_opinion_wanted(first.second_opinion, first.confidence, detected.as_ref())
                }
                _ => false,
            };
            if let (true, Ok(first)) = (wanted, transcript.as_ref().cloned()) {
                match mode.stt.transcribe(audio, second_options).await {
                    Ok(second) => {
                        let (second_intent, time) = match &listen {
                            Some(listen) => detect(&mode, &flow, listen, &second.text).await,
                            None => (Ok(None), Duration::ZERO),
                        };
                        intent_time += time;
                        // Which hearing the flow can act on (as `switchboard
                        // replay` chooses); one it could not read is not it.
                        let take_second = match (&intent, &second_intent) {
                            (Ok(a), Ok(b)) => {
                                second_hearing_better(&first, a.as_ref(), &second, b.as_ref())
                            }
                            _ => false,
                        };
                        if take_second {
                            intent = second_intent;
                        }
                        transcript = Ok(first.settle(second, take_second));
                    }
                    Err(SttError::Cancelled) => transcript = Err(SttError::Cancelled),
                    // The first transcript stands.
                    Err(_) => {}
                }
            }
            Heard {
                transcript,
                listen_turn: listen.map(|l| l.turn),
                intent,
                intent_time,
            }
        });
        self.job = Some(Job {
            audio_len,
            handle,
            result: None,
        });
    }

    /// A recognition finished: keep it until its turn ends, or answer the
    /// turn that ended.
    async fn on_heard(&mut self, heard: Heard) -> Option<Ending> {
        let job_len = self.job.as_ref().map(|j| j.audio_len);
        let Some(answering) = self.answering.clone() else {
            // Speculative: the caller has not finished yet. What the words
            // read as tells the endpointer whether to wait for more.
            if let (Some(len), Some(reading)) = (job_len, turn_reading(&heard)) {
                self.endpointer.handle_reading(len, reading);
            }
            if let Some(job) = self.job.as_mut() {
                job.result = Some(heard);
            }
            return None;
        };
        if job_len != Some(answering.audio_len) {
            if let Some(job) = self.job.as_mut() {
                job.result = Some(heard);
            }
            return None;
        }
        self.job = None;
        let transcript = match heard.transcript {
            Ok(transcript) => transcript,
            Err(error) => {
                self.mode.metrics.stt_errors.fetch_add(1, Ordering::Relaxed);
                self.log(format_args!("speech recognition failed: {error}"));
                self.answering = None;
                return self.keypad_fallback().await;
            }
        };
        let stt_time = transcript.elapsed;
        self.mode.metrics.observe_stage(Stage::Stt, stt_time);
        let text = transcript.text.trim().to_string();
        if text.is_empty() {
            self.log(format_args!("heard no words; still listening"));
            self.answering = None;
            if !self.speaking {
                self.endpointer.arm_no_input(Instant::now());
            }
            return None;
        }
        self.log(format_args!(
            "caller said {text:?} ({} ms, {}, confidence {:.2})",
            stt_time.as_millis(),
            transcript.model,
            transcript.confidence
        ));
        let turn = self.interpreter.turn();
        let (intent, intent_time) = if heard.listen_turn == Some(turn) {
            (heard.intent, heard.intent_time)
        } else {
            // Recognised for an earlier question: detect for this one.
            match self.interpreter.listening().cloned() {
                Some(listen) => detect(&self.mode, &self.flow, &listen, &text).await,
                None => (Ok(None), Duration::ZERO),
            }
        };
        let intent = match intent {
            Ok(intent) => intent,
            Err(error) => {
                self.mode.metrics.llm_errors.fetch_add(1, Ordering::Relaxed);
                self.log(format_args!("intent detection failed: {error}"));
                self.answering = None;
                return self.keypad_fallback().await;
            }
        };
        self.mode.metrics.observe_stage(Stage::Intent, intent_time);
        let language = if self.mode.identifies_language && !transcript.model.ends_with(".en") {
            transcript.language.clone()
        } else {
            None
        };
        self.turns += 1;
        let utterance = Utterance {
            turn,
            transcript: text.clone(),
            language,
            intent: intent.clone(),
        };
        let actions = {
            let destinations = lock(&self.mode.destinations);
            self.interpreter
                .handle_utterance(self.mode.clock.now(), utterance, &destinations)
        };
        let route_reason = actions.iter().find_map(|a| match a {
            Action::Transfer(t) => Some(t.reason.clone()),
            _ => None,
        });
        self.log_events();
        self.pending_turn = Some(PendingTurn {
            record: TurnRecord {
                index: self.turns,
                at: now_rfc3339(),
                transcript: text,
                intent: intent.as_ref().and_then(|i| i.intent.clone()),
                confidence: intent.as_ref().map(|i| i.confidence),
                route_reason,
                stt_ms: Some(millis(stt_time)),
                intent_ms: Some(millis(intent_time)),
                tts_ms: None,
                reply_ms: None,
            },
            speech_ended_at: answering.speech_ended_at,
        });
        self.apply(actions).await
    }

    async fn on_key(&mut self, key: char) -> Option<Ending> {
        self.log(format_args!("DTMF {key}"));
        let now = Instant::now();
        if self.speaking && self.playout.interruptible(now) {
            let _ = self.leg.stop_playback().await;
            self.stop_speaking(now);
        }
        let turn = self.interpreter.turn();
        let actions = {
            let destinations = lock(&self.mode.destinations);
            self.interpreter
                .handle_key(self.mode.clock.now(), turn, key, &destinations)
        };
        self.log_events();
        if actions.is_empty() {
            return None;
        }
        self.job = None;
        self.answering = None;
        self.endpointer.disarm_no_input();
        self.apply(actions).await
    }

    /// Recognition or understanding failed: offer the node's keys.
    async fn keypad_fallback(&mut self) -> Option<Ending> {
        self.keys_only = true;
        let node = self.interpreter.node().to_string();
        let menu = keypad_menu(&self.flow, &node);
        let text = match menu {
            Some(menu) => format!("Sorry, I'm having trouble understanding you. {menu}"),
            None => {
                // No keys to offer: the flow's own escalation takes over.
                let turn = self.interpreter.turn();
                let actions = {
                    let destinations = lock(&self.mode.destinations);
                    self.interpreter
                        .handle_no_input(self.mode.clock.now(), turn, &destinations)
                };
                self.log_events();
                return self.apply(actions).await;
            }
        };
        let turn = self.interpreter.turn();
        let listen = self.interpreter.listening().cloned();
        let mut actions = vec![Action::Say(Say {
            turn,
            text,
            purpose: crate::flow::interpreter::SayPurpose::Prompt,
        })];
        if let Some(listen) = listen {
            actions.push(Action::Listen(listen));
        }
        self.apply(actions).await
    }

    async fn on_timer(&mut self) -> Option<Ending> {
        let now = Instant::now();
        if let Some(answering) = self.answering.as_mut() {
            if now >= answering.acknowledge_at {
                let phrase =
                    ACKNOWLEDGEMENTS[answering.acknowledged.min(ACKNOWLEDGEMENTS.len() - 1)];
                let clip = self.mode.phrases.cached(phrase);
                let length = clip.as_ref().map_or(Duration::ZERO, Clip::duration);
                answering.acknowledged += 1;
                answering.acknowledge_at = now + length + self.mode.reassure_every;
                if !self.speaking {
                    if let Some(clip) = clip {
                        self.log(format_args!("still working: {phrase:?}"));
                        self.play(now, &clip, true);
                    }
                }
            }
        }
        if self.endpointer.poll_timeout().is_some_and(|t| t <= now) {
            self.endpointer.handle_timeout(now);
            return self.on_endpointer().await;
        }
        None
    }

    /// Carries out the interpreter's actions: sentences are queued, and
    /// the listen, transfer or hang-up waits for them to be said.
    async fn apply(&mut self, actions: Vec<Action>) -> Option<Ending> {
        for action in actions {
            match action {
                Action::Say(say) => {
                    self.log(format_args!("saying {:?}", say.text));
                    let interruptible = say.purpose.interruptible();
                    for text in sentences(&say.text) {
                        self.queue.push_back(Sentence {
                            turn: say.turn,
                            text,
                            interruptible,
                        });
                    }
                    self.last_said = say.text;
                }
                Action::Listen(listen) => {
                    self.listening = None;
                    self.after = Some(Action::Listen(listen));
                }
                other => self.after = Some(other),
            }
        }
        self.pump();
        if !self.speaking && self.queue.is_empty() && self.synthesis.is_none() {
            return self.finished_speaking().await;
        }
        None
    }

    /// Plays queued sentences whose audio is ready, and starts
    /// synthesising the next one that is not.
    fn pump(&mut self) {
        while self.synthesis.is_none() {
            let Some(sentence) = self.queue.pop_front() else {
                return;
            };
            if sentence.turn < self.interpreter.turn() {
                // Superseded: the caller has moved the call on.
                continue;
            }
            if let Some(clip) = self.mode.phrases.cached(&sentence.text) {
                self.play(Instant::now(), &clip, sentence.interruptible);
                self.reply_started(Duration::ZERO);
                continue;
            }
            let phrases = self.mode.phrases.clone();
            let workers = self.mode.workers.clone();
            let text = sentence.text.clone();
            let handle = tokio::spawn(async move {
                let _permit = workers.acquire_owned().await;
                tokio::task::spawn_blocking(move || phrases.clip(&text))
                    .await
                    .unwrap_or_else(|e| Err(TtsError::Synthesis(e.to_string())))
            });
            self.synthesis = Some((sentence, handle));
        }
    }

    async fn on_spoken(&mut self, spoken: Option<(Sentence, Synthesized)>) -> Option<Ending> {
        let (sentence, result) = spoken?;
        match result {
            Ok((clip, elapsed)) => {
                self.mode.metrics.observe_stage(Stage::Tts, elapsed);
                self.play(Instant::now(), &clip, sentence.interruptible);
                self.reply_started(elapsed);
            }
            Err(error) => self.log(format_args!(
                "speech synthesis failed for {:?}: {error}",
                sentence.text
            )),
        }
        self.pump();
        if !self.speaking && self.queue.is_empty() && self.synthesis.is_none() {
            return self.finished_speaking().await;
        }
        None
    }

    fn play(&mut self, now: Instant, clip: &Clip, interruptible: bool) {
        if self.leg.play_clip(clip).is_err() {
            return;
        }
        self.playout.push(now, clip, interruptible);
        if !self.speaking {
            self.speaking = true;
            self.endpointer.handle_playback(now, true);
            self.endpointer.disarm_no_input();
        }
    }

    /// The first audio of a reply is on its way: the turn's latency.
    fn reply_started(&mut self, tts: Duration) {
        if self.answering.take().is_none() {
            return;
        }
        if let Some(pending) = self.pending_turn.as_mut() {
            if pending.record.reply_ms.is_none() {
                let reply = pending.speech_ended_at.elapsed();
                pending.record.reply_ms = Some(millis(reply));
                pending.record.tts_ms = Some(millis(tts));
                self.mode.metrics.reply_latency.observe(reply);
                self.log(format_args!(
                    "replying {} ms after the caller stopped",
                    reply.as_millis()
                ));
            }
        }
    }

    /// Everything queued has been said: carry out what follows it.
    async fn finished_speaking(&mut self) -> Option<Ending> {
        let now = Instant::now();
        if self.speaking {
            self.speaking = false;
            self.endpointer.handle_playback(now, false);
        }
        self.playout.clear();
        match self.after.take() {
            Some(Action::Listen(listen)) => {
                self.endpointer.arm_no_input(now);
                self.listening = Some(listen);
                None
            }
            Some(Action::Transfer(transfer)) => Some(self.transfer(transfer).await),
            Some(Action::Hangup(hangup)) => {
                hang_up(&mut self.leg).await;
                Some((
                    Outcome::AgentHungUp,
                    format!("the flow hung up ({:?})", hangup.reason),
                ))
            }
            Some(Action::Say(_)) | None => None,
        }
    }

    /// Transfers the caller to the routed targets in order, telling them
    /// when one fails.
    async fn transfer(&mut self, decision: Transfer) -> Ending {
        self.flush_turn_record().await;
        let targets = decision.targets.clone();
        let mut failures = Vec::new();
        for (index, target) in targets.iter().enumerate() {
            let uri = match self.mode.dial.uri(target) {
                Ok(uri) => uri,
                Err(why) => {
                    self.log(format_args!(
                        "cannot transfer to {}: {why}",
                        target.destination
                    ));
                    failures.push(format!("{}: {why}", target.destination));
                    continue;
                }
            };
            self.log(format_args!(
                "transferring to {} at {uri} ({})",
                describe_target(target),
                decision.reason
            ));
            let plan = TransferPlan {
                destinations: vec![uri.clone()],
                method: self.mode.dial.method,
                from: self.mode.dial.from.clone(),
                no_answer: self.mode.dial.no_answer,
            };
            let result = transfer(
                &self.agent,
                &mut self.leg,
                &plan,
                self.addresses,
                &self.cancel,
            )
            .await;
            match result {
                TransferResult::Referred { .. } | TransferResult::Bridged { .. } => {
                    let how = if matches!(result, TransferResult::Referred { .. }) {
                        "REFER"
                    } else {
                        "INVITE and bridge"
                    };
                    {
                        let mut destinations = lock(&self.mode.destinations);
                        destinations.record_transfer(target, self.mode.clock.now());
                    }
                    return (
                        Outcome::Transferred(target.destination.clone()),
                        format!("transferred to {} ({uri}) by {how}", target.destination),
                    );
                }
                TransferResult::CallerGone { .. } => {
                    return (
                        Outcome::CallerHungUp,
                        "the caller hung up during the transfer".into(),
                    );
                }
                TransferResult::Failed { attempts } => {
                    let why = attempts
                        .iter()
                        .map(|a| format!("{} {}", a.method, a.failure))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.log(format_args!(
                        "transfer to {} failed: {why}",
                        target.destination
                    ));
                    failures.push(format!("{}: {why}", target.destination));
                    let label = self.label(&target.destination);
                    let line = match targets.get(index + 1) {
                        Some(next) => format!(
                            "Sorry, {label} isn't available right now. Let me try {}.",
                            self.label(&next.destination)
                        ),
                        None => format!(
                            "Sorry, {label} isn't available right now, and nobody else can take your call. Please call again later. Goodbye."
                        ),
                    };
                    if let Some(ending) = self.say_and_wait(&line).await {
                        return ending;
                    }
                }
            }
        }
        if decision.targets.is_empty() || failures.len() == decision.targets.len() {
            hang_up(&mut self.leg).await;
        }
        (
            Outcome::TransferFailed,
            format!("every target failed: {}", failures.join("; ")),
        )
    }

    fn label(&self, destination: &str) -> String {
        self.flow
            .flow()
            .destinations
            .get(destination)
            .and_then(|d| d.label.clone())
            .unwrap_or_else(|| destination.to_string())
    }

    /// Says `text` and waits until it has been sent (or the caller hung up).
    async fn say_and_wait(&mut self, text: &str) -> Option<Ending> {
        for sentence in sentences(text) {
            let phrases = self.mode.phrases.clone();
            let clip = tokio::task::spawn_blocking(move || phrases.clip(&sentence)).await;
            if let Ok(Ok((clip, _))) = clip {
                self.play(Instant::now(), &clip, false);
            }
        }
        if !self.speaking {
            return None;
        }
        loop {
            match self.leg.next_event().await {
                None => return Some((Outcome::CallerHungUp, "call closed".into())),
                Some(LegEvent::PlaybackFinished) => break,
                Some(LegEvent::Ended(_)) => {
                    return Some((Outcome::CallerHungUp, "the caller hung up".into()))
                }
                Some(_) => {}
            }
        }
        self.speaking = false;
        self.playout.clear();
        self.endpointer.handle_playback(Instant::now(), false);
        None
    }

    /// Writes the last turn's record (once its reply started, or now).
    async fn flush_turn_record(&mut self) {
        let Some(pending) = self.pending_turn.take() else {
            return;
        };
        let (Some(store), Some(row)) = (self.mode.records.clone(), self.row) else {
            return;
        };
        let record = pending.record;
        if let Ok(Err(error)) =
            tokio::task::spawn_blocking(move || store.add_turn(row, &record)).await
        {
            self.log(format_args!("turn record not written: {error}"));
        }
    }

    /// One log line per interpreter event.
    fn log_events(&mut self) {
        while let Some(event) = self.interpreter.poll_event() {
            call_log(&self.id, format_args!("{}", describe_event(&event)));
        }
    }
}

fn describe_event(event: &Event) -> String {
    match event {
        Event::NodeEntered { node, .. } => format!("in node {node}"),
        Event::IntentMatched {
            intent, confidence, ..
        } => format!("intent {intent} (confidence {confidence:.2})"),
        Event::KeyMatched { key, node, .. } => format!("key {key} in node {node}"),
        Event::Reprompted {
            miss, count, limit, ..
        } => format!("reprompt for {} ({count} of {limit})", miss.as_str()),
        Event::Escalated { miss, node, .. } => format!(
            "escalating after the last {} reprompt in node {node}",
            miss.as_str()
        ),
        Event::LanguageDetected { language, .. } => format!("language {language} heard"),
        Event::SlotFilled { slot, value, .. } => format!("slot {slot} = {value}"),
        Event::SlotRejected { slot, problem, .. } => format!("slot {slot} not taken: {problem}"),
        Event::Routed { decision, .. } => match decision.targets.first() {
            Some(first) => format!("route: {} ({})", describe_target(first), decision.reason),
            None => format!("route: nobody ({})", decision.reason),
        },
        Event::InputIgnored { turn, current } => {
            format!("input for {turn} ignored (now {current})")
        }
    }
}

fn join_error(error: tokio::task::JoinError) -> IntentError {
    IntentError::Llm(crate::intent::LlmError::Runtime(std::io::Error::other(
        error.to_string(),
    )))
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// What a speculative recognition says about the end of the turn: its
/// words' reading ([`reading::read`]), except that a sentence the flow's
/// detector is unsure of does not count as finished (the caller may be
/// about to say what they want), and no intent at all means the question
/// wanted something else (a slot), where the words alone decide.
fn turn_reading(heard: &Heard) -> Option<TurnReading> {
    let transcript = heard.transcript.as_ref().ok()?;
    let reading = reading::read(&transcript.text)?;
    match (&heard.intent, reading) {
        (Ok(Some(intent)), TurnReading::Finished) if intent.unsure => None,
        (Err(_), _) => None,
        _ => Some(reading),
    }
}

/// Intent detection on a worker thread, bounded by the mode's workers.
async fn detect(
    mode: &Arc<AgentMode>,
    flow: &Arc<Simulator>,
    listen: &Listen,
    text: &str,
) -> (Result<Option<IntentResult>, IntentError>, Duration) {
    let Ok(_permit) = mode.workers.clone().acquire_owned().await else {
        return (Ok(None), Duration::ZERO);
    };
    let flow = flow.clone();
    let listen = listen.clone();
    let text = text.to_string();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || flow.detect(&listen, &text))
        .await
        .unwrap_or_else(|e| Err(join_error(e)));
    (result, started.elapsed())
}

/// "For our billing team, press 1. ..." from the keys `node` listens for
/// that transfer somewhere; `None` if it has none.
pub fn keypad_menu(flow: &Simulator, node: &str) -> Option<String> {
    let flow = flow.flow();
    let node = flow.nodes.get(node)?;
    let parts: Vec<String> = node
        .keys
        .iter()
        .filter_map(|(key, steps)| {
            steps.0.iter().find_map(|step| match step {
                Step::Transfer(destination) => {
                    let label = flow
                        .destinations
                        .get(destination)
                        .and_then(|d| d.label.clone())
                        .unwrap_or_else(|| destination.clone());
                    Some(format!("For {label}, press {key}."))
                }
                _ => None,
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

enum Wake {
    Leg(Option<LegEvent>),
    Heard(Heard),
    Spoken(Option<(Sentence, Synthesized)>),
    Timer,
}

/// Waits for the running job, if any, whose result is not in yet.
async fn job_done(job: &mut Option<Job>) -> Heard {
    match job {
        Some(job) if job.result.is_none() => match (&mut job.handle).await {
            Ok(heard) => heard,
            Err(error) => Heard {
                transcript: Err(SttError::Closed),
                listen_turn: None,
                intent: Err(join_error(error)),
                intent_time: Duration::ZERO,
            },
        },
        _ => std::future::pending().await,
    }
}

async fn synthesis_done(synthesis: &mut Option<Synthesis>) -> Option<(Sentence, Synthesized)> {
    let Some((_, handle)) = synthesis.as_mut() else {
        return std::future::pending().await;
    };
    let result = handle
        .await
        .unwrap_or_else(|e| Err(TtsError::Synthesis(e.to_string())));
    let (sentence, _) = synthesis.take()?;
    Some((sentence, result))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
