//! `switchboard calls [--db FILE] [--limit N] [--json] [--last | CALL-ID]`: the call
//! records `run` keeps: the latest calls, or one call with its turns.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::records::{CallRecord, Store};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The records database `run` writes.
    #[arg(long, value_name = "FILE", default_value = "calls.db")]
    db: PathBuf,
    /// How many calls to list.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print JSON (one object per call).
    #[arg(long)]
    json: bool,
    /// Show the latest call with its turns.
    #[arg(long, conflicts_with = "call_id")]
    last: bool,
    /// Show this call (its Call-ID) with its turns.
    call_id: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.db.exists() {
        bail!(
            "no call records at {} (switchboard run writes them there; see --db)",
            args.db.display()
        );
    }
    let store = Store::open(&args.db)?;
    let latest = if args.last {
        match store.list(1)?.into_iter().next() {
            Some(call) => Some(call.start.call_id),
            None => bail!("no calls in {}", args.db.display()),
        }
    } else {
        args.call_id.clone()
    };
    match &latest {
        Some(call_id) => {
            let Some(call) = store.show(call_id)? else {
                bail!("no call {call_id:?} in {}", args.db.display());
            };
            if args.json {
                println!("{}", serde_json::to_string(&call)?);
            } else {
                print_call(&call);
            }
        }
        None => {
            for call in store.list(args.limit)? {
                if args.json {
                    println!("{}", serde_json::to_string(&call)?);
                } else {
                    print_line(&call);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(call: &CallRecord) {
    let end = call.end.as_ref();
    println!(
        "{}  {}  {} -> {}  {}{}",
        call.start.started_at,
        call.start.call_id,
        call.start.caller,
        call.start.callee,
        end.map_or("in progress", |e| e.outcome.as_str()),
        end.and_then(|e| e.destination.as_deref())
            .map(|d| format!(" to {d}"))
            .unwrap_or_default()
    );
}

fn print_call(call: &CallRecord) {
    println!("call     {}", call.start.call_id);
    println!("from     {}", call.start.caller);
    println!("to       {}", call.start.callee);
    println!("started  {}", call.start.started_at);
    match &call.end {
        Some(end) => {
            println!("ended    {}", end.ended_at);
            println!("outcome  {}", end.outcome);
            if let Some(destination) = &end.destination {
                println!("went to  {destination}");
            }
            if let Some(result) = &end.transfer_result {
                println!("transfer {result}");
            }
        }
        None => println!("(in progress)"),
    }
    for turn in &call.turns {
        println!(
            "turn {}  {}  {:?}  intent {} ({})  {}",
            turn.index,
            turn.at,
            turn.transcript,
            turn.intent.as_deref().unwrap_or("-"),
            turn.confidence
                .map_or("-".to_string(), |c| format!("{c:.2}")),
            turn.route_reason.as_deref().unwrap_or("")
        );
        let ms = |v: Option<u32>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        println!(
            "        stt {}, intent {}, tts {}, end of speech to reply {}",
            ms(turn.stt_ms),
            ms(turn.intent_ms),
            ms(turn.tts_ms),
            ms(turn.reply_ms)
        );
    }
}
