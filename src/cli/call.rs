//! `switchboard call URI`: a test caller. It plays a file in real time (at
//! once, for barge-in tests, or once the agent has spoken its prompt),
//! records what it hears, can press keys (RFC 4733), follows a REFER like a
//! phone would (or declines it), and reports how the call went, with the
//! voice-to-voice latency measured on the wire (see [`timing`]): on
//! standard output as text, or as one JSON object with `--json`.

mod timing;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::run::{agent_config, SipOptions};
use crate::audio::wav::{write_file, WavEncoding};
use crate::audio::{decode::read_file, resample::resample, SampleRate, Samples};
use crate::call::bridge::hang_up;
use crate::call::leg::{LegEvent, MediaAddresses, MediaLeg};
use crate::media::g711::Law;
use crate::media::jitter::JitterConfig;
use crate::sip::agent::{AgentEvent, CallControl, CallEvent, CancellationToken, SipAgent};
use crate::sip::sdp::Codec;
use timing::{frame_levels, CallTiming, PlayedSpeech, PromptState, TimingReport};

/// Options of `switchboard call`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Whom to call, e.g. sip:switchboard@127.0.0.1:5060.
    uri: String,
    /// Audio to play once answered (any rate; sent as 8 kHz G.711).
    #[arg(long, value_name = "FILE")]
    play: Option<PathBuf>,
    /// Play `--play` only once the agent has spoken (300 ms or more of
    /// audio above -45 dBFS) and then been quiet for `--prompt-gap-ms`,
    /// as a caller answering a greeting would; without it the file plays
    /// as soon as the call is answered (what a barge-in test needs).
    #[arg(long, requires = "play")]
    play_after_prompt: bool,
    /// The silence that ends the agent's prompt, ms.
    #[arg(long, value_name = "MS", default_value_t = 700)]
    prompt_gap_ms: u64,
    /// Write what we hear (8 kHz, 16-bit WAV).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Keys to press (RFC 4733), `--dtmf-at` seconds after the answer.
    #[arg(long, value_name = "DIGITS")]
    dtmf: Option<String>,
    /// When to press the keys, seconds after the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    dtmf_at: f64,
    /// Our From URI [default: the --id, else sip:caller@<listen>].
    #[arg(long, value_name = "URI")]
    from: Option<String>,
    /// Hang up this many seconds after our file has played (default: wait
    /// for the other side to end the call).
    #[arg(long, value_name = "SECONDS")]
    hangup_after_play: Option<f64>,
    /// Give up and hang up after this many seconds in all.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    timeout: f64,
    /// Answer a REFER with NOTIFY 603 Declined instead of calling the
    /// target (tests the agent's transfer failure path).
    #[arg(long)]
    decline_refer: bool,
    /// After following a REFER, stay with the target this long, then hang
    /// up.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    stay_after_transfer: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    options: SipOptions,
}

/// What happened, for the report.
#[derive(Debug, Default, Serialize)]
struct Report {
    /// Whether the call was answered.
    answered: bool,
    /// Why it was not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    /// The Call-ID, to find the agent's record of the call.
    call_id: Option<String>,
    codec: Option<String>,
    /// Seconds from the INVITE to the answer.
    answer_after_s: Option<f64>,
    /// Seconds of audio we played.
    played_s: f64,
    /// Seconds of audio received, and how much of it was above -50 dBFS.
    heard_s: f64,
    heard_sound_s: f64,
    /// Level of what we heard, dBFS.
    heard_rms_dbfs: Option<f32>,
    dtmf_sent: String,
    dtmf_received: String,
    /// The REFER we received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    refer: Option<ReferReport>,
    /// How the call ended.
    ended: String,
    /// Seconds from the answer to the end.
    duration_s: f64,
    /// With `--play-after-prompt`: why we never played.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_missing: Option<String>,
    /// Voice-to-voice latency, the agent's silences and when its prompt
    /// came, measured on the wire.
    #[serde(flatten)]
    timing: TimingReport,
}

#[derive(Debug, Serialize)]
struct ReferReport {
    /// The Refer-To target.
    target: String,
    /// Whether we called it.
    followed: bool,
    /// The target's final status, as we reported it in NOTIFY.
    status: Option<u16>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let play = match &args.play {
        Some(path) => {
            let audio = read_file(path).with_context(|| format!("--play {}", path.display()))?;
            Some(resample(&audio, SampleRate::TELEPHONE))
        }
        None => None,
    };
    if args.timeout.is_nan() || args.timeout <= 0.0 {
        bail!("--timeout must be positive");
    }
    let mut options = args.options.clone();
    if options.listen.is_none() {
        options.listen = Some(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    }
    let mut config = agent_config(&options)?;
    config.accept_refer = true;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(place(config, &args, play))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.answered && report.prompt_missing.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &Report) {
    if !report.answered {
        println!(
            "not answered: {}",
            report.failure.as_deref().unwrap_or("unknown")
        );
        return;
    }
    println!(
        "answered after {:.2} s ({})",
        report.answer_after_s.unwrap_or(0.0),
        report.codec.as_deref().unwrap_or("?")
    );
    println!("played:   {:.1} s", report.played_s);
    println!(
        "heard:    {:.1} s, {:.1} s of it sound, {}",
        report.heard_s,
        report.heard_sound_s,
        report
            .heard_rms_dbfs
            .map_or("silence".to_string(), |db| format!("{db:.1} dBFS"))
    );
    if !report.dtmf_sent.is_empty() {
        println!("DTMF sent: {}", report.dtmf_sent);
    }
    if !report.dtmf_received.is_empty() {
        println!("DTMF received: {}", report.dtmf_received);
    }
    if let Some(refer) = &report.refer {
        println!(
            "REFER to {} ({})",
            refer.target,
            match (refer.followed, refer.status) {
                (false, _) => "declined".to_string(),
                (true, Some(status)) => format!("followed; the target answered {status}"),
                (true, None) => "followed; no answer".to_string(),
            }
        );
    }
    println!(
        "ended:    {} after {:.1} s",
        report.ended, report.duration_s
    );
    print_timing(report);
}

fn print_timing(report: &Report) {
    let timing = &report.timing;
    let ms = |value: Option<u64>| value.map_or("-".to_string(), |v| format!("{v} ms"));
    println!(
        "prompt:   agent speech heard {} after the answer; we played {} after it",
        ms(timing.prompt_heard_ms),
        ms(timing.play_started_ms)
    );
    if let Some(missing) = &report.prompt_missing {
        println!("          not played: {missing}");
    }
    if let (Some(end), Some(threshold)) =
        (timing.speech_end_in_file_s, timing.speech_threshold_dbfs)
    {
        println!("speech:   ours ends {end:.2} s into the file (frames >= {threshold:.1} dBFS)");
    }
    println!(
        "voice to voice: {} (playout delay of {} subtracted)",
        ms(timing.voice_to_voice_ms),
        timing
            .playout_delay_ms
            .map_or("-".to_string(), |d| format!("{d:.0} ms"))
    );
    if let Some(silences) = &timing.agent_silences {
        let gaps: Vec<String> = silences.gaps_ms.iter().map(|g| g.to_string()).collect();
        println!(
            "agent silences: longest {} ms over {} ms; of 500 ms or more: [{}] ms",
            silences.longest_ms,
            silences.window_ms,
            gaps.join(", ")
        );
    }
}

async fn place(
    config: crate::sip::agent::AgentConfig,
    args: &Args,
    play: Option<Samples>,
) -> Result<Report> {
    let cancel = CancellationToken::new();
    let registering = config.account.is_some();
    let from = match (&args.from, &config.account) {
        (Some(from), _) => from.clone(),
        (None, Some(account)) => account.id.clone(),
        (None, None) => "sip:caller@127.0.0.1".to_string(),
    };
    let (agent, mut events) = SipAgent::start(config, cancel.clone()).await?;
    if registering {
        let registered = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(event) = events.recv().await {
                match event {
                    AgentEvent::Registered { .. } => return Ok(()),
                    AgentEvent::RegistrationFailed { reason } => return Err(reason.to_string()),
                    _ => {}
                }
            }
            Err("the agent stopped".to_string())
        })
        .await;
        match registered {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => bail!("registration failed: {reason}"),
            Err(_) => bail!("no answer from the registrar within 15 s"),
        }
    }
    // Anyone calling the test caller is turned away.
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let AgentEvent::IncomingCall(call) = event {
                let _ = call.reject(486).await;
            }
        }
    });
    let addresses = MediaAddresses::of_agent(&agent);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let started = Instant::now();
    let mut report = Report::default();
    let dialled = tokio::time::timeout_at(
        deadline.into(),
        MediaLeg::dial(&agent, &args.uri, &from, addresses, &cancel),
    )
    .await;
    let mut leg = match dialled {
        Ok(Ok(leg)) => leg,
        Ok(Err(error)) => {
            report.failure = Some(error.to_string());
            return finish(agent, cancel, report).await;
        }
        Err(_) => {
            report.failure = Some(format!("no answer within {} s", args.timeout));
            return finish(agent, cancel, report).await;
        }
    };
    report.answered = true;
    report.answer_after_s = Some(started.elapsed().as_secs_f64());
    report.codec = Some(leg.negotiated().codec.encoding_name().to_string());
    report.call_id = Some(leg.info().call_id.clone());
    let answered = Instant::now();
    // MediaLeg runs its jitter buffer with the default target of the law.
    let law = match leg.negotiated().codec {
        Codec::Pcmu => Law::MuLaw,
        Codec::Pcma => Law::ALaw,
    };
    let mut timing = CallTiming::new(
        answered,
        JitterConfig::new(law).min_delay,
        Duration::from_millis(args.prompt_gap_ms),
    );
    // Played at once, or once the agent's prompt is over.
    let mut to_play = play;
    if !args.play_after_prompt {
        start_playing(&leg, &mut to_play, &mut timing, &mut report);
    }
    let mut heard = Samples::new(SampleRate::TELEPHONE, Vec::new());
    let dtmf_at = tokio::time::sleep(Duration::from_secs_f64(args.dtmf_at.max(0.0)));
    tokio::pin!(dtmf_at);
    let mut dtmf_pending = args.dtmf.clone();
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let mut transferred = false;
    report.ended = loop {
        let hangup_timer = async {
            match hangup_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                hang_up(&mut leg).await;
                break format!("we hung up at the {} s timeout", args.timeout);
            }
            _ = hangup_timer => {
                hang_up(&mut leg).await;
                break if transferred { "we hung up on the transfer target" } else { "we hung up after playing" }.to_string();
            }
            _ = &mut dtmf_at, if dtmf_pending.is_some() => {
                if let Some(digits) = dtmf_pending.take() {
                    match leg.send_dtmf(&digits) {
                        Ok(()) => report.dtmf_sent = digits,
                        Err(error) => eprintln!("DTMF not sent: {error}"),
                    }
                }
            }
            event = leg.next_event() => match event {
                None => break "the call closed".to_string(),
                Some(LegEvent::Audio(samples)) => {
                    heard.extend(&samples);
                    if !transferred && timing.handle_agent_audio(Instant::now(), &samples) && args.play_after_prompt {
                        start_playing(&leg, &mut to_play, &mut timing, &mut report);
                    }
                }
                Some(LegEvent::Latched(_)) => {
                    if !transferred {
                        timing.handle_latched(Instant::now());
                    }
                }
                Some(LegEvent::Dtmf(digit)) => report.dtmf_received.push(digit),
                Some(LegEvent::PlaybackFinished) => {
                    timing.handle_playback_finished(Instant::now());
                    if let (Some(after), None) = (args.hangup_after_play, hangup_at) {
                        if !transferred {
                            hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(after.max(0.0)));
                        }
                    }
                }
                Some(LegEvent::Signalling(CallEvent::Referred { target })) => {
                    let control = leg.control();
                    if args.decline_refer {
                        let _ = control.notify_transfer(603, "Declined").await;
                        report.refer = Some(ReferReport { target, followed: false, status: None });
                        continue;
                    }
                    timing.handle_agent_gone(Instant::now());
                    let (status, new_leg) = follow_refer(&agent, &control, &target, &from, addresses, &cancel).await;
                    report.refer = Some(ReferReport { target, followed: true, status });
                    if let Some(new_leg) = new_leg {
                        // The transferor ends the old leg with BYE; we go on
                        // with the target, recording what it says.
                        let old = std::mem::replace(&mut leg, new_leg);
                        tokio::spawn(async move {
                            let mut old = old;
                            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                                while let Some(event) = old.next_event().await {
                                    if matches!(event, LegEvent::Ended(_)) {
                                        break;
                                    }
                                }
                            }).await;
                        });
                        transferred = true;
                        hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(args.stay_after_transfer.max(0.0)));
                    }
                }
                Some(LegEvent::Ended(event)) => break match event {
                    CallEvent::RemoteHangup => if report.refer.as_ref().is_some_and(|r| r.followed && !transferred) {
                        "the transferor hung up".to_string()
                    } else if transferred { "the transfer target hung up".to_string() } else { "the other side hung up (BYE)".to_string() },
                    other => format!("{other:?}"),
                },
                Some(_) => {}
            }
        }
    };
    let ended = Instant::now();
    timing.handle_agent_gone(ended);
    report.timing = timing.report(ended);
    if to_play.is_some() && args.play_after_prompt {
        report.prompt_missing = Some(match timing.prompt() {
            PromptState::Silent => "the agent never spoke".to_string(),
            PromptState::Speaking => format!(
                "the agent never paused for {} ms after speaking 300 ms",
                args.prompt_gap_ms
            ),
            PromptState::Over => "the call ended first".to_string(),
        });
    }
    report.duration_s = answered.elapsed().as_secs_f64();
    report.heard_s = heard.duration().as_secs_f64();
    report.heard_sound_s = sound_seconds(&heard);
    report.heard_rms_dbfs = (report.heard_sound_s > 0.0).then(|| heard.rms_dbfs());
    if let Some(path) = &args.record {
        write_file(path, &heard, WavEncoding::Pcm16)
            .with_context(|| format!("--record {}", path.display()))?;
    }
    drop(leg);
    finish(agent, cancel, report).await
}

/// Calls the REFER's target and reports progress to the transferor in
/// NOTIFYs (RFC 3515 2.4.4): 100 first, then the target's final status.
async fn follow_refer(
    agent: &SipAgent,
    control: &CallControl,
    target: &str,
    from: &str,
    addresses: MediaAddresses,
    cancel: &CancellationToken,
) -> (Option<u16>, Option<MediaLeg>) {
    let _ = control.notify_transfer(100, "Trying").await;
    match MediaLeg::dial(agent, target, from, addresses, cancel).await {
        Ok(leg) => {
            let _ = control.notify_transfer(200, "OK").await;
            (Some(200), Some(leg))
        }
        Err(error) => {
            let status = match &error {
                crate::call::leg::LegError::Call(crate::sip::agent::CallError::Busy { status })
                | crate::call::leg::LegError::Call(crate::sip::agent::CallError::Rejected {
                    status,
                }) => *status,
                crate::call::leg::LegError::Call(crate::sip::agent::CallError::NoAnswer {
                    ..
                }) => 408,
                _ => 503,
            };
            let _ = control.notify_transfer(status, &error.to_string()).await;
            (Some(status), None)
        }
    }
}

/// Queues our file, if it has not been, and notes when and where its
/// speech ends.
fn start_playing(
    leg: &MediaLeg,
    to_play: &mut Option<Samples>,
    timing: &mut CallTiming,
    report: &mut Report,
) {
    let Some(audio) = to_play.take() else {
        return;
    };
    report.played_s = audio.duration().as_secs_f64();
    let speech = PlayedSpeech::of(&frame_levels(&audio));
    timing.handle_play(Instant::now(), speech);
    if let Err(error) = leg.play(audio) {
        eprintln!("cannot play: {error}");
    }
}

/// Seconds of 20 ms frames above -50 dBFS: how much was sound rather than
/// comfort silence.
fn sound_seconds(audio: &Samples) -> f64 {
    let loud = frame_levels(audio)
        .into_iter()
        .filter(|&level| level > -50.0)
        .count();
    loud as f64 * 0.02
}

async fn finish(agent: SipAgent, cancel: CancellationToken, report: Report) -> Result<Report> {
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.stopped()).await;
    Ok(report)
}
