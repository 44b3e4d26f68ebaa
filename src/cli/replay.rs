//! `switchboard replay --flow FLOW AUDIO...`: each recording as the
//! caller's first turn after the greeting: speech recognition (the same
//! recogniser as `switchboard transcribe`), the flow's intent detection,
//! and the interpreter's routing. Per file: the transcript, the intent and
//! its confidence, where the call would be transferred (or nothing: the
//! agent asks a clarifying question), and the time each stage took. With
//! `--json`, one object per line. The recogniser is primed with what the
//! agent said before the caller's turn (Whisper's initial prompt), as a
//! live call would prime it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::engines::load_recogniser;
use crate::audio::read_file;
use crate::flow::simulator::{address, Simulator};
use crate::flow::DestinationState;
use crate::intent::{second_hearing_better, second_opinion_wanted, DetectorKind};
use crate::speech::stt::{Escalation, SpeechToText, TranscribeOptions, Transcript, WhisperConfig};

#[derive(clap::Args)]
pub struct Args {
    /// The flow the calls come into.
    #[arg(long)]
    flow: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// When the calls happen, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The caller's number, for prefixes and the customer file.
    #[arg(long, value_name = "NUMBER", default_value = "anonymous")]
    caller: String,
    /// Use this detector (embedded, llm, hybrid) instead of the flow's own.
    #[arg(long, value_name = "KIND")]
    detector: Option<DetectorKind>,
    /// Whisper model: tiny.en, base, or a path to a ggml file.
    #[arg(long, default_value = "tiny.en")]
    model: String,
    /// A larger model that decodes again when the first is unsure.
    #[arg(long, default_value = "base")]
    escalate: String,
    /// Never re-decode with a larger model.
    #[arg(long)]
    no_escalate: bool,
    /// Threads per decoding.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Don't prime the recogniser with what the agent said before the
    /// caller's turn (by default the greeting is Whisper's initial prompt,
    /// as a live call would give it).
    #[arg(long)]
    no_prompt: bool,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// An RFC 3339 instant (`2025-01-07T10:00:00-05:00`).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("invalid time {text:?}: write RFC 3339, e.g. 2025-01-07T10:00:00-05:00")
        })
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let at = match &args.at {
        Some(text) => parse_time(text)?,
        None => Utc::now(),
    };
    let simulator = Simulator::load(&args.flow, models, args.detector)?;
    let config = WhisperConfig {
        threads: args.threads,
        // As `run` does: the caller's language among the flow's.
        languages: simulator.flow().languages(),
        ..Default::default()
    };
    let escalate =
        (!args.no_escalate && args.escalate != args.model).then_some(args.escalate.as_str());
    let (stt, load) = load_recogniser(models, &args.model, escalate, config)?;
    if !args.json {
        eprintln!(
            "loaded {} in {} ms; flow {} with the {} detector; calls at {}",
            args.model,
            load.as_millis(),
            simulator.flow().name,
            simulator.detector_kind(),
            at.to_rfc3339()
        );
    }
    let caller = simulator.identify(&args.caller);
    // What the caller heard just before speaking: the context Whisper's
    // initial prompt is for (vocabulary, and the style of a reply).
    let opening = simulator.call(at, caller.clone(), DestinationState::default());
    let options = TranscribeOptions {
        prompt: (!args.no_prompt).then(|| opening.opening().said().collect::<Vec<_>>().join(" ")),
        // As a live call does: the larger model only for a transcript the
        // flow cannot route with confidence (see `second_opinion_wanted`).
        escalation: Escalation::Defer,
        ..Default::default()
    };
    let second_options = TranscribeOptions {
        escalation: Escalation::Only,
        ..options.clone()
    };
    let mut failed = false;
    for file in &args.files {
        let heard = read_file(file)
            .map_err(anyhow::Error::from)
            .and_then(|audio| {
                let first = stt.transcribe(&audio, &options)?;
                Ok((audio, first))
            });
        let heard = heard.and_then(|(audio, first)| {
            let mut call = simulator.call(at, caller.clone(), DestinationState::default());
            let report = call.says(at, &first.text, detected_language(&first))?;
            if !second_opinion_wanted(
                first.second_opinion,
                first.confidence,
                report.intent.as_ref(),
            ) {
                return Ok((first, call, report));
            }
            let second = stt.transcribe(&audio, &second_options)?;
            let mut second_call = simulator.call(at, caller.clone(), DestinationState::default());
            let second_report = second_call.says(at, &second.text, detected_language(&second))?;
            let take_second = second_hearing_better(
                &first,
                report.intent.as_ref(),
                &second,
                second_report.intent.as_ref(),
            );
            let transcript = first.settle(second, take_second);
            Ok(if take_second {
                (transcript, second_call, second_report)
            } else {
                (transcript, call, report)
            })
        });
        let (transcript, _call, report) = match heard {
            Ok(t) => t,
            Err(e) => {
                failed = true;
                if args.json {
                    println!(
                        "{}",
                        json!({"file": file.display().to_string(), "error": format!("{e:#}")})
                    );
                }
                eprintln!("error: {}: {e:#}", file.display());
                continue;
            }
        };
        let target = report.destination();
        let intent = report.matched_intent();
        let confidence = report.intent.as_ref().map(|r| r.confidence);
        let stt_ms = transcript.elapsed.as_secs_f64() * 1000.0;
        let intent_ms = report.detect_time.as_secs_f64() * 1000.0;
        let route_ms = report.handle_time.as_secs_f64() * 1000.0;
        if args.json {
            let value = json!({
                "file": file.display().to_string(),
                "transcript": transcript.text,
                "language": detected_language(&transcript),
                "model": transcript.model,
                "passes": transcript.passes,
                "intent": intent,
                "confidence": confidence.map(|c| (f64::from(c) * 1000.0).round() / 1000.0),
                "destination": target.map(|t| t.destination.as_str()),
                "extension": target.map(address),
                "reason": report.transfer().map(|t| t.reason.as_str()),
                "agent": report.said().collect::<Vec<_>>().join(" "),
                "timings": {
                    "stt_ms": round(stt_ms),
                    "intent_ms": round(intent_ms),
                    "route_ms": round(route_ms),
                },
            });
            println!("{value}");
        } else {
            let routed = match target {
                Some(t) => format!("{} ({})", t.destination, address(t)),
                None => "no transfer (the agent asks again)".into(),
            };
            println!(
                "{}: {:?} → {}{} → {routed} [stt {stt_ms:.0} ms, intent {intent_ms:.1} ms, route {route_ms:.2} ms]",
                file.display(),
                transcript.text,
                intent.unwrap_or("no intent"),
                confidence.map_or(String::new(), |c| format!(" ({c:.2})")),
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The language the recogniser heard, when it identified one: an
/// English-only model (`tiny.en`) reports `en` for any speech, which says
/// nothing about the caller and must not override their language.
fn detected_language(transcript: &Transcript) -> Option<&str> {
    if transcript.model.ends_with(".en") {
        None
    } else {
        transcript.language.as_deref()
    }
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}
