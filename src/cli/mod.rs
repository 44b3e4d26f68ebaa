//! The `switchboard` command line. Each subcommand lives in its own file;
//! this one parses arguments and turns errors into messages and exit codes.

mod audio_cmd;
mod call;
mod calls;
mod chat;
mod check;
mod demo;
mod engines;
mod models_cmd;
mod replay;
mod run;
mod say;
mod test_cmd;
mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "An AI call-flow agent for your PBX"
)]
pub struct Cli {
    /// Folder holding the models (default: ./models, or $SWITCHBOARD_MODELS).
    #[arg(long, global = true, value_name = "DIR")]
    models: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe audio files (WAV, FLAC, Ogg Vorbis).
    Transcribe(transcribe::Args),
    /// Synthesise speech to an 8 kHz telephone WAV file.
    Say(say::Args),
    /// List, fetch, verify and convert models.
    #[command(subcommand)]
    Models(models_cmd::Command),
    /// Audio tools: the simulated telephone line.
    #[command(subcommand)]
    Audio(audio_cmd::Command),
    /// Check call flows: every problem as file:line:col with a hint.
    Check(check::Args),
    /// Speech in and out: synthesise a caller, send it down a simulated
    /// telephone line, transcribe it, and print both with timings.
    Demo(demo::Args),
    /// Run the agent: register on a PBX (or take direct calls) and answer.
    Run(run::Args),
    /// A test caller: call a URI, play a file, record what comes back,
    /// press keys, follow a REFER, and report how the call went.
    Call(call::Args),
    /// List the call records `run` keeps, or show one call with its turns.
    Calls(calls::Args),
    /// Run flow tests: YAML conversations with expected intents, nodes and
    /// destinations; PASS/FAIL per test.
    Test(test_cmd::Args),
    /// Talk to a flow in text: intent, confidence and routing each turn.
    Chat(chat::Args),
    /// Recorded caller utterances through speech recognition, intent
    /// detection and routing, as the first turn of a call.
    Replay(replay::Args),
}

/// Runs the command line; the binary's `main` is just this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let models = crate::models::models_dir(cli.models.as_deref());
    let result = match cli.command {
        Command::Transcribe(args) => transcribe::run(&models, args),
        Command::Say(args) => say::run(&models, args),
        Command::Models(cmd) => models_cmd::run(&models, cmd),
        Command::Audio(cmd) => audio_cmd::run(cmd),
        Command::Demo(args) => demo::run(&models, args),
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(&models, args),
        Command::Call(args) => call::run(args),
        Command::Calls(args) => calls::run(args),
        Command::Test(args) => test_cmd::run(&models, args),
        Command::Chat(args) => chat::run(&models, args),
        Command::Replay(args) => replay::run(&models, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
