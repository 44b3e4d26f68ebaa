//! `switchboard call URI`: a test caller. It plays a file in real time,
//! records what it hears, can press keys (RFC 4733), follows a REFER like a
//! phone would (or declines it), and reports how the call went: on
//! standard output as text, or as one JSON object with `--json`.

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
use crate::sip::agent::{AgentEvent, CallControl, CallEvent, CancellationToken, SipAgent};

/// Options of `switchboard call`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Whom to call, e.g. sip:switchboard@127.0.0.1:5060.
    uri: String,
    /// Audio to play once answered (any rate; sent as 8 kHz G.711).
    #[arg(long, value_name = "FILE")]
    play: Option<PathBuf>,
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
    Ok(if report.answered {
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
    let answered = Instant::now();
    if let Some(audio) = &play {
        report.played_s = audio.duration().as_secs_f64();
        let _ = leg.play(audio.clone());
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
                Some(LegEvent::Audio(samples)) => heard.extend(&samples),
                Some(LegEvent::Dtmf(digit)) => report.dtmf_received.push(digit),
                Some(LegEvent::PlaybackFinished) => {
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

/// Seconds of 20 ms frames above -50 dBFS: how much was sound rather than
/// comfort silence.
fn sound_seconds(audio: &Samples) -> f64 {
    let frame = 160;
    let loud = audio
        .data
        .chunks(frame)
        .filter(|chunk| {
            let energy = chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32;
            10.0 * energy.max(1e-12).log10() > -50.0
        })
        .count();
    loud as f64 * 0.02
}

async fn finish(agent: SipAgent, cancel: CancellationToken, report: Report) -> Result<Report> {
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.stopped()).await;
    Ok(report)
}
