//! `switchboard chat FLOW`: talk to a flow in text. Each line is what the
//! caller says; an empty line is silence (the no-input timeout), `/press
//! KEYS` presses DTMF keys, `/language CODE` sets the language the
//! recogniser would report for the lines after it, `/quit` ends. Every
//! turn shows the detected intent and its confidence, the routing decision
//! with its reason, what the agent says and what it waits for. Works with
//! piped input: `printf 'my bill is wrong\n' | switchboard chat flows/support.yaml`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::replay::parse_time;
use crate::flow::simulator::{describe, CallerInput, Simulator};
use crate::flow::DestinationState;
use crate::intent::DetectorKind;

#[derive(clap::Args)]
pub struct Args {
    /// The flow file.
    flow: PathBuf,
    /// When the call happens, RFC 3339 (default: the time of each turn).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The caller's number, for prefixes and the customer file.
    #[arg(long, value_name = "NUMBER", default_value = "anonymous")]
    caller: String,
    /// Use this detector (embedded, llm, hybrid) instead of the flow's own.
    #[arg(long, value_name = "KIND")]
    detector: Option<DetectorKind>,
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let fixed = args.at.as_deref().map(parse_time).transpose()?;
    let now = || -> DateTime<Utc> { fixed.unwrap_or_else(Utc::now) };
    let simulator = Simulator::load(&args.flow, models, args.detector)?;
    let caller = simulator.identify(&args.caller);
    let flow = simulator.flow();
    let interactive = std::io::stdin().is_terminal();
    println!(
        "flow {} ({}), {} detector",
        flow.name,
        args.flow.display(),
        simulator.detector_kind()
    );
    println!(
        "caller {} (region {}, tier {}, language {}) at {}",
        args.caller,
        caller.region.as_deref().unwrap_or("-"),
        caller.tier.as_deref().unwrap_or("-"),
        caller.language.as_deref().unwrap_or("-"),
        now().to_rfc3339()
    );
    if interactive {
        println!(
            "(type what the caller says; empty line: silence; /press KEYS; /language CODE; /quit)"
        );
    }
    let mut call = simulator.call(now(), caller, DestinationState::default());
    print_lines(&describe(call.opening()));
    let mut language: Option<String> = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    while !call.is_finished() {
        if interactive {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let line = line.trim();
        let input = if line.is_empty() {
            CallerInput::Silence
        } else if let Some(keys) = line.strip_prefix("/press") {
            let keys: String = keys.split_whitespace().collect();
            if keys.is_empty()
                || !keys
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                println!("keys are 0-9, * and #: /press 2");
                continue;
            }
            CallerInput::Presses(keys)
        } else if let Some(code) = line.strip_prefix("/language") {
            let code = code.trim();
            language = (!code.is_empty()).then(|| code.to_string());
            println!(
                "(speech is now heard as {})",
                language.as_deref().unwrap_or("unknown")
            );
            continue;
        } else if line == "/quit" {
            break;
        } else if line.starts_with('/') {
            println!("commands: /press KEYS, /language CODE, /quit; an empty line is silence");
            continue;
        } else {
            CallerInput::Says {
                text: line.to_string(),
                language: language.clone(),
            }
        };
        match call.turn(now(), &input) {
            Ok(report) => print_lines(&describe(&report)),
            Err(error) => println!("error: {error}"),
        }
    }
    if call.is_finished() {
        println!("(call ended)");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_lines(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}
