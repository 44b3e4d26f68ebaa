//! The support flow on the recorded fixtures: each caller utterance as the
//! first turn after the greeting, on a Tuesday morning (open), routed as
//! `audio-fixtures/manifest.yaml` says (`destination`; null: the agent
//! asks a clarifying question). Once on the manifest's texts (the embedded
//! classifier and routing alone), once on the audio through `switchboard
//! replay` (speech recognition too), with a table per voice.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;
use switchboard::flow::simulator::Simulator;
use switchboard::flow::DestinationState;

const AT: &str = "2025-01-07T10:00:00-05:00";

/// The target: 95% of calls routed where the manifest says.
const TARGET: f64 = 0.95;

/// What the recordings reach today (74 of 84 with the greeting as
/// Whisper's prompt): a regression guard, below the target. The misses
/// are recognition errors on the robotic voices (espeak-ng's and klatt's
/// "I think I won't move challenge for my last order", "Reprimantative,
/// clean"), the embedded classifier on direction ("switching to you from
/// another provider" is unsure between sales and cancel) and on "add
/// another line to my account" (billing), chit-chat close to `operator`,
/// and Whisper hearing words in the rumble once primed. Raise it as they
/// are fixed.
const AUDIO_FLOOR: f64 = 0.85;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(AT)
        .unwrap()
        .with_timezone(&Utc)
}

/// Right and total per voice, printed as a table; returns the share right.
fn table(results: &[(Fixture, Option<String>)]) -> f64 {
    let mut per_voice: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (fixture, got) in results {
        let entry = per_voice.entry(fixture.voice.as_str()).or_default();
        entry.1 += 1;
        if *got == fixture.destination {
            entry.0 += 1;
        }
    }
    println!("{:<22} {:>5} {:>5}", "voice", "right", "of");
    for (voice, (right, total)) in &per_voice {
        println!("{voice:<22} {right:>5} {total:>5}");
    }
    let right: usize = per_voice.values().map(|v| v.0).sum();
    let total = results.len();
    println!(
        "{:<22} {right:>5} {total:>5} = {:.1}%",
        "all",
        100.0 * right as f64 / total as f64
    );
    right as f64 / total as f64
}

fn show(destination: &Option<String>) -> &str {
    destination.as_deref().unwrap_or("null")
}

#[test]
fn fixture_transcripts_route_as_the_manifest_says() {
    let _cpu = cpu_lock();
    let simulator = Simulator::load(Path::new("flows/support.yaml"), &models(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let fixtures = manifest();
    let mut results = Vec::new();
    for fixture in &fixtures {
        let mut call = simulator.call(
            at(),
            simulator.identify("anonymous"),
            DestinationState::default(),
        );
        let report = call.says(at(), &fixture.text, None).unwrap();
        let got = report.destination().map(|t| t.destination.clone());
        if got != fixture.destination {
            let intent = report.intent.as_ref();
            println!(
                "MISS {} {:?}: expected {}, got {} (best {} at confidence {:.2})",
                fixture.file,
                fixture.text,
                show(&fixture.destination),
                show(&got),
                intent.and_then(|r| r.best()).unwrap_or("-"),
                intent.map_or(0.0, |r| r.confidence)
            );
        }
        results.push((fixture.clone(), got));
    }
    assert!(results.len() >= 80, "{} fixtures", results.len());
    let share = table(&results);
    assert!(
        share >= TARGET,
        "{:.1}% of transcripts routed right",
        share * 100.0
    );
}

#[test]
fn replayed_fixtures_route_as_the_manifest_says() {
    let _cpu = cpu_lock();
    let fixtures = manifest();
    let paths: Vec<String> = fixtures
        .iter()
        .map(|f| fixture_path(f).display().to_string())
        .collect();
    let flow = root().join("flows/support.yaml").display().to_string();
    // One thread per decoding: whisper's threads spin while they wait, so
    // two on a busy 2-core machine are many times slower than one.
    let mut args = vec![
        "replay",
        "--json",
        "--threads",
        "1",
        "--flow",
        &flow,
        "--at",
        AT,
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = switchboard(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), fixtures.len());

    let mut results = Vec::new();
    let mut timings: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (fixture, line) in fixtures.iter().zip(&lines) {
        assert!(
            line["file"].as_str().unwrap().ends_with(&fixture.file),
            "{line}"
        );
        for key in [
            "transcript",
            "intent",
            "confidence",
            "destination",
            "extension",
        ] {
            assert!(line.get(key).is_some(), "no {key} in {line}");
        }
        for key in ["stt_ms", "intent_ms", "route_ms"] {
            let ms = line["timings"][key]
                .as_f64()
                .unwrap_or_else(|| panic!("no timings.{key} in {line}"));
            timings.entry(key).or_default().push(ms);
        }
        let got = line["destination"].as_str().map(String::from);
        // The extension is the destination's in the flow.
        match got.as_deref() {
            Some("billing") => assert_eq!(line["extension"], "201"),
            None => assert!(line["extension"].is_null()),
            _ => {}
        }
        if got != fixture.destination {
            println!(
                "MISS {} heard {:?}: expected {}, got {} (intent {}, confidence {})",
                fixture.file,
                line["transcript"].as_str().unwrap_or(""),
                show(&fixture.destination),
                show(&got),
                line["intent"],
                line["confidence"]
            );
        }
        results.push((fixture.clone(), got));
    }
    for (key, mut values) in timings {
        values.sort_by(f64::total_cmp);
        println!(
            "{key}: median {:.1}, max {:.1}",
            values[values.len() / 2],
            values[values.len() - 1]
        );
    }
    let share = table(&results);
    println!(
        "target {:.0}%: {}",
        TARGET * 100.0,
        if share >= TARGET { "met" } else { "NOT met" }
    );
    assert!(
        share >= AUDIO_FLOOR,
        "{:.1}% of recordings routed right",
        share * 100.0
    );
}

/// Spanish speech (espeak-ng's Spanish voice, made here; scripts/setup
/// installs it for the fixtures) is recognised as Spanish by the
/// escalation model and routed by the flow's `es` rule.
#[test]
fn spanish_speech_goes_to_the_spanish_team() {
    let _cpu = cpu_lock();
    let dir = temp_dir("replay-spanish");
    let wav = dir.join("factura.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "es", "-s", "150", "-w"])
        .arg(&wav)
        .arg("Hola, buenos días. Tengo un problema con mi factura de este mes.")
        .status()
        .expect("running espeak-ng (scripts/setup installs it)");
    assert!(status.success());
    let flow = root().join("flows/support.yaml").display().to_string();
    let out = switchboard(&[
        "replay",
        "--json",
        "--threads",
        "1",
        "--flow",
        &flow,
        "--at",
        AT,
        wav.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    println!("{line}");
    assert_eq!(line["language"], "es", "{line}");
    assert_eq!(line["destination"], "spanish", "{line}");
    assert_eq!(line["extension"], "210", "{line}");
    let reason = line["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("language es detected in speech → spanish"),
        "{reason}"
    );
    assert!(line["agent"]
        .as_str()
        .unwrap()
        .contains("our Spanish-speaking team"));
}
