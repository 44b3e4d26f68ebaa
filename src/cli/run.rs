//! `switchboard run`: the agent as a PBX extension (with `--registrar`) or
//! taking direct calls on `--listen`. The options follow pjsua's account
//! options; every one can also be given in a YAML file (`--config`), and
//! the command line wins over the file.
//!
//! Without a call flow this is the simple mode: answer, play `--play`, then
//! transfer to `--transfer-to` (tried in order) or hang up. With neither,
//! each call is answered and hung up at once.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::audio::{decode::read_file, resample::resample, SampleRate};
use crate::call::agent::{
    AgentMode, AgentParts, Clock, DialPlan, FlowSet, Phrases, ACKNOWLEDGEMENTS,
};
use crate::call::simple::{handle_call, SimpleMode};
use crate::call::transfer::{TransferMethod, TransferPlan};
use crate::media::session::Clip;
use crate::metrics::Metrics;
use crate::sip::agent::{
    Account, AgentConfig, AgentEvent, CancellationToken, SipAgent, Transports,
};
use crate::speech::stt::{Escalation, SpeechToText, SttPool, TranscribeOptions, WhisperConfig};
use std::sync::atomic::Ordering;

/// Options of `switchboard run`, all of which may come from `--config`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// A YAML file with any of the options below, in two sections, keys as
    /// written here without the dashes: `sip:` (`listen: 0.0.0.0:5060`,
    /// `registrar: ...`) and `answer:` (`play: ...`, `transfer-to: [...]`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    sip: SipOptions,
    #[command(flatten)]
    answer: AnswerOptions,
}

/// The layout of `--config`.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    sip: SipOptions,
    #[serde(default)]
    answer: AnswerOptions,
}

/// Where the agent listens and the PBX account it registers: shared by
/// `run` and `call`.
#[derive(clap::Args, serde::Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SipOptions {
    /// Address to listen on, UDP and TCP [default: 0.0.0.0:5060].
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Address peers reach us at from outside a NAT (Via, Contact, SDP).
    #[arg(long, value_name = "ADDR")]
    public_address: Option<SocketAddr>,
    /// Transports to listen on: udp, tcp or both [default: both].
    #[arg(long, value_name = "LIST")]
    transport: Option<String>,
    /// Registrar URI, e.g. sip:pbx.example.com.
    #[arg(long, value_name = "URI")]
    registrar: Option<String>,
    /// Our address of record, e.g. sip:200@pbx.example.com.
    #[arg(long, value_name = "URI")]
    id: Option<String>,
    /// Digest user name [default: the user part of --id].
    #[arg(long, value_name = "U")]
    username: Option<String>,
    /// Digest password.
    #[arg(long, value_name = "P")]
    password: Option<String>,
    /// Send every request through this proxy.
    #[arg(long, value_name = "URI")]
    outbound_proxy: Option<String>,
    /// Registration lifetime to ask for, seconds [default: 300].
    #[arg(long, value_name = "SECONDS")]
    expires: Option<u32>,
    /// Accept requests only from these addresses (the PBX); others get 403.
    #[arg(long = "allow", value_name = "IP")]
    #[serde(default)]
    allow: Vec<IpAddr>,
    /// Calls handled at once; one more gets 486 [default: 4].
    #[arg(long, value_name = "N")]
    max_calls: Option<usize>,
}

/// What the simple mode does with a call.
#[derive(clap::Args, serde::Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnswerOptions {
    /// Audio to play to each caller once answered.
    #[arg(long, value_name = "FILE")]
    play: Option<PathBuf>,
    /// Transfer each caller here after playing; repeat for failover.
    #[arg(long = "transfer-to", value_name = "URI")]
    #[serde(default)]
    transfer_to: Vec<String>,
    /// How to transfer [default: refer-then-invite].
    #[arg(long, value_enum, value_name = "METHOD")]
    transfer_by: Option<TransferMethod>,
    /// Seconds a transfer INVITE may ring before the next destination
    /// [default: 20].
    #[arg(long, value_name = "SECONDS")]
    no_answer: Option<u64>,
    /// Stay on the line after playing until the caller hangs up.
    #[arg(long)]
    #[serde(default)]
    stay: bool,
    /// Write what each caller said to DIR/<Call-ID>.wav (with a flow, also
    /// each turn as transcribed, to DIR/<Call-ID>-turn<N>.wav).
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
    /// The call records database (SQLite), created if need be
    /// [default: calls.db].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Keep no call records.
    #[arg(long)]
    #[serde(default)]
    no_records: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Also append every call event to FILE, one JSON object per line
    /// (time, call, event).
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// Answer with a call flow (checked at start; several flows: a call
    /// goes to the one named by the dialled user part, else the first).
    /// Reloaded on SIGHUP.
    #[arg(long = "flow", value_name = "FILE")]
    #[serde(default)]
    flow: Vec<PathBuf>,
    /// Start the agent's clock at this moment (RFC 3339), for tests and
    /// demos of time-based routing.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Where flow transfers to extensions go: `sip:EXT@HOST` (default: the
    /// registrar's host).
    #[arg(long, value_name = "HOST")]
    transfer_host: Option<String>,
    /// On SIGTERM or Ctrl-C, let calls in progress finish for up to this
    /// long before hanging them up (default: 30 with --flow, 0 without); a
    /// second signal ends them at once.
    #[arg(long, value_name = "SECONDS")]
    drain: Option<u64>,
    /// Speech recognition worker threads (default 2).
    #[arg(long, value_name = "N")]
    stt_workers: Option<usize>,
}

impl SipOptions {
    /// Fills what the command line left out from the file.
    fn or(self, file: SipOptions) -> SipOptions {
        SipOptions {
            listen: self.listen.or(file.listen),
            public_address: self.public_address.or(file.public_address),
            transport: self.transport.or(file.transport),
            registrar: self.registrar.or(file.registrar),
            id: self.id.or(file.id),
            username: self.username.or(file.username),
            password: self.password.or(file.password),
            outbound_proxy: self.outbound_proxy.or(file.outbound_proxy),
            expires: self.expires.or(file.expires),
            allow: if self.allow.is_empty() {
                file.allow
            } else {
                self.allow
            },
            max_calls: self.max_calls.or(file.max_calls),
        }
    }
}

impl AnswerOptions {
    /// Fills what the command line left out from the file.
    fn or(self, file: AnswerOptions) -> AnswerOptions {
        AnswerOptions {
            play: self.play.or(file.play),
            transfer_to: if self.transfer_to.is_empty() {
                file.transfer_to
            } else {
                self.transfer_to
            },
            transfer_by: self.transfer_by.or(file.transfer_by),
            no_answer: self.no_answer.or(file.no_answer),
            stay: self.stay || file.stay,
            record_dir: self.record_dir.or(file.record_dir),
            metrics: self.metrics.or(file.metrics),
            event_log: self.event_log.or(file.event_log),
            db: self.db.or(file.db),
            no_records: self.no_records || file.no_records,
            flow: if self.flow.is_empty() {
                file.flow
            } else {
                self.flow
            },
            at: self.at.or(file.at),
            transfer_host: self.transfer_host.or(file.transfer_host),
            drain: self.drain.or(file.drain),
            stt_workers: self.stt_workers.or(file.stt_workers),
        }
    }
}

/// Reads `--config`: a YAML mapping of the options, errors as
/// `file:line:col: message`.
fn read_config(path: &Path) -> Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|error| match error.location() {
        Some(at) => anyhow::anyhow!(
            "{}:{}:{}: {}",
            path.display(),
            at.line(),
            at.column(),
            error
        ),
        None => anyhow::anyhow!("{}: {error}", path.display()),
    })
}

pub(crate) fn parse_transports(text: Option<&str>) -> Result<Transports> {
    let Some(text) = text else {
        return Ok(Transports::default());
    };
    let mut transports = Transports {
        udp: false,
        tcp: false,
    };
    for word in text.split(',').map(str::trim) {
        match word.to_ascii_lowercase().as_str() {
            "udp" => transports.udp = true,
            "tcp" => transports.tcp = true,
            "both" => transports = Transports::default(),
            other => bail!("--transport: {other:?} is not udp, tcp or both"),
        }
    }
    Ok(transports)
}

/// The user part of a SIP URI (`sip:200@pbx` -> `200`).
fn user_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let user = rest.split_once('@')?.0;
    Some(user.split(';').next().unwrap_or(user))
}

/// The agent's configuration from the options.
pub(crate) fn agent_config(options: &SipOptions) -> Result<AgentConfig> {
    let listen = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5060)));
    let mut config = AgentConfig::new(listen);
    config.transports = parse_transports(options.transport.as_deref())?;
    config.public_address = options.public_address;
    if let Some(max) = options.max_calls {
        config.max_calls = max;
    }
    if !options.allow.is_empty() {
        config.allowed_sources = Some(options.allow.clone());
    }
    config.account = match (&options.registrar, &options.id) {
        (Some(registrar), Some(id)) => {
            let username = match &options.username {
                Some(user) => user.clone(),
                None => user_of(id)
                    .with_context(|| format!("--id {id:?} has no user part; give --username"))?
                    .to_string(),
            };
            Some(Account {
                registrar: registrar.clone(),
                id: id.clone(),
                username,
                password: options.password.clone().unwrap_or_default(),
                outbound_proxy: options.outbound_proxy.clone(),
                expires: options.expires.unwrap_or(300),
            })
        }
        (Some(_), None) => bail!("--registrar needs --id (our address of record)"),
        (None, Some(_)) => bail!("--id needs --registrar"),
        (None, None) => None,
    };
    if let Some(account) = &config.account {
        if let Some(user) = user_of(&account.id) {
            config.contact_user = user.to_string();
        }
    }
    Ok(config)
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let (sip, options) = match &args.config {
        Some(path) => {
            let file = read_config(path)?;
            (args.sip.or(file.sip), args.answer.or(file.answer))
        }
        None => (args.sip, args.answer),
    };
    let config = agent_config(&sip)?;
    let play = match &options.play {
        Some(path) => {
            let audio = read_file(path).with_context(|| format!("--play {}", path.display()))?;
            Some(Clip::new(&resample(&audio, SampleRate::TELEPHONE))?)
        }
        None => None,
    };
    if let Some(dir) = &options.record_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --record-dir {}", dir.display()))?;
    }
    let from = match &config.account {
        Some(account) => account.id.clone(),
        None => format!("sip:{}@{}", config.contact_user, config.listen),
    };
    if let Some(path) = &options.event_log {
        crate::call::log::open_json_log(path)
            .with_context(|| format!("cannot open --event-log {}", path.display()))?;
    }
    let metrics = Arc::new(Metrics::default());
    let records = if options.no_records {
        None
    } else {
        let path = options
            .db
            .clone()
            .unwrap_or_else(|| PathBuf::from("calls.db"));
        Some(Arc::new(crate::records::Store::open(&path)?))
    };
    let mode = if options.flow.is_empty() {
        let transfer = (!options.transfer_to.is_empty()).then(|| TransferPlan {
            destinations: options.transfer_to.clone(),
            method: options.transfer_by.unwrap_or_default(),
            from,
            no_answer: Duration::from_secs(options.no_answer.unwrap_or(20)),
        });
        Mode::Simple(Arc::new(SimpleMode {
            play,
            transfer,
            stay: options.stay,
            record_dir: options.record_dir.clone(),
            metrics: metrics.clone(),
            records,
        }))
    } else {
        let host = options
            .transfer_host
            .clone()
            .or_else(|| config.account.as_ref().map(|a| host_of(&a.registrar)));
        let dial = DialPlan {
            host,
            method: options.transfer_by.unwrap_or_default(),
            from,
            no_answer: Duration::from_secs(options.no_answer.unwrap_or(20)),
            refer_timeout: Duration::from_secs(30),
        };
        let clock = match &options.at {
            Some(text) => Clock::starting_at(super::replay::parse_time(text)?),
            None => Clock::system(),
        };
        Mode::Flow(Arc::new(load_flow_mode(
            models,
            &options,
            dial,
            clock,
            metrics.clone(),
            records,
        )?))
    };
    let drain = Duration::from_secs(options.drain.unwrap_or(match mode {
        Mode::Flow(_) => 30,
        Mode::Simple(_) => 0,
    }));
    let metrics_addr = options.metrics;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config, mode, metrics, metrics_addr, drain))
}

/// The host (and port) of a registrar URI: `sip:pbx.example.com:5060`.
fn host_of(uri: &str) -> String {
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split(';').next().unwrap_or(rest).to_string()
}

/// What each call gets.
#[derive(Clone)]
enum Mode {
    Simple(Arc<SimpleMode>),
    Flow(Arc<AgentMode>),
}

/// Checks the flows, loads the models once and prepares the flows'
/// sentences, reporting each step.
fn load_flow_mode(
    models: &Path,
    options: &AnswerOptions,
    dial: DialPlan,
    clock: Clock,
    metrics: Arc<Metrics>,
    records: Option<Arc<crate::records::Store>>,
) -> Result<AgentMode> {
    let problems = crate::flow::check_files(&options.flow);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        bail!(
            "{} problem{} in the flow{}: fix them (switchboard check) and start again",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            if options.flow.len() == 1 { "" } else { "s" }
        );
    }
    let started = std::time::Instant::now();
    let flows = FlowSet::load(&options.flow, models)?;
    eprintln!(
        "switchboard: {} flow{} loaded with their intents ({} ms)",
        options.flow.len(),
        if options.flow.len() == 1 { "" } else { "s" },
        started.elapsed().as_millis()
    );
    // The caller's language is identified among those the flows route on
    // (fixed at start: a SIGHUP that adds one needs a restart for it).
    let mut languages: Vec<String> = Vec::new();
    for simulator in flows.flows() {
        for language in simulator.flow().languages() {
            if !languages.contains(&language) {
                languages.push(language);
            }
        }
    }
    let started = std::time::Instant::now();
    let stt = crate::speech::stt::load_default(
        models,
        WhisperConfig {
            languages,
            ..WhisperConfig::default()
        },
    )?;
    let identifies_language = stt.identifies_language();
    eprintln!(
        "switchboard: speech recognition loaded ({} ms)",
        started.elapsed().as_millis()
    );
    let (tts, took) = super::engines::load_piper(models, 1)?;
    eprintln!("switchboard: voice loaded ({} ms)", took.as_millis());
    let phrases = Arc::new(Phrases::new(Arc::new(tts)));
    let started = std::time::Instant::now();
    for simulator in flows.flows() {
        let name = simulator.flow().name.clone();
        phrases.prepare(simulator.flow(), ACKNOWLEDGEMENTS, |done, all| {
            if done == all || done % 10 == 0 {
                eprintln!("switchboard: flow {name}: {done}/{all} sentences synthesised");
            }
        })?;
    }
    eprintln!(
        "switchboard: sentences ready ({} ms)",
        started.elapsed().as_millis()
    );
    // The first decoding in a process pays for whisper.cpp's buffers:
    // pay it now rather than on the first caller's turn.
    if let Some(clip) = flows
        .flows()
        .next()
        .and_then(|f| {
            crate::speech::text::sentences(&f.flow().greeting)
                .into_iter()
                .next()
        })
        .and_then(|sentence| phrases.cached(&sentence))
    {
        let started = std::time::Instant::now();
        let audio = crate::audio::Samples::new(
            SampleRate::TELEPHONE,
            clip.samples()
                .iter()
                .map(|&s| f32::from(s) / 32768.0)
                .collect(),
        );
        // Both models: the larger one's first decode took 3 s more than
        // its next ones, on a caller's turn.
        let first = TranscribeOptions {
            escalation: Escalation::Defer,
            ..Default::default()
        };
        let heard = stt.transcribe(&audio, &first)?;
        let larger = TranscribeOptions {
            escalation: Escalation::Only,
            ..Default::default()
        };
        let again = stt.transcribe(&audio, &larger)?;
        eprintln!(
            "switchboard: speech recognition warmed up on the greeting ({} ms): {:?} ({}), {:?} ({})",
            started.elapsed().as_millis(),
            heard.text,
            heard.model,
            again.text,
            again.model,
        );
    }
    let workers = options.stt_workers.unwrap_or(2);
    Ok(AgentMode::new(
        flows,
        AgentParts {
            flow_paths: options.flow.clone(),
            models: models.to_path_buf(),
            stt: SttPool::new(Arc::new(stt), workers, 64),
            identifies_language,
            phrases,
            workers: 2,
            clock,
            dial,
            metrics,
            records,
            record_dir: options.record_dir.clone(),
        },
    ))
}

async fn serve(
    config: AgentConfig,
    mode: Mode,
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    drain: Duration,
) -> Result<ExitCode> {
    let cancel = CancellationToken::new();
    // Calls end on their own token: on shutdown they may finish first,
    // while the agent still carries their signalling.
    let calls = CancellationToken::new();
    if let Some(addr) = metrics_addr {
        let bound = crate::metrics::serve(addr, metrics.clone(), cancel.clone()).await?;
        eprintln!("switchboard: metrics on http://{bound}/metrics");
    }
    let registering = config.account.is_some();
    let transports = config.transports;
    let (agent, mut events) = SipAgent::start(config, cancel.clone()).await?;
    let agent = Arc::new(agent);
    eprintln!(
        "switchboard: listening on {}{}{}, contact {}{}",
        agent.local_addr(),
        if transports.udp { " udp" } else { "" },
        if transports.tcp { " tcp" } else { "" },
        agent.contact_address(),
        if registering { "; registering" } else { "" },
    );
    let draining = CancellationToken::new();
    {
        let draining = draining.clone();
        let calls = calls.clone();
        let stop = cancel.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            draining.cancel();
            let active = metrics.active_calls.load(Ordering::Relaxed);
            if active > 0 && !drain.is_zero() {
                eprintln!(
                    "switchboard: shutting down: letting {active} call{} finish (at most {} s; signal again to end them now)",
                    if active == 1 { "" } else { "s" },
                    drain.as_secs()
                );
                let deadline = tokio::time::Instant::now() + drain;
                loop {
                    tokio::select! {
                        _ = shutdown_signal() => break,
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {
                            if metrics.active_calls.load(Ordering::Relaxed) <= 0 {
                                break;
                            }
                        }
                    }
                }
            }
            eprintln!("switchboard: shutting down (hanging up calls, unregistering)");
            calls.cancel();
            // Give the hang-ups a moment to go out before the agent stops.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while metrics.active_calls.load(Ordering::Relaxed) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.cancel();
        });
    }
    #[cfg(unix)]
    if let Mode::Flow(flow_mode) = &mode {
        let flow_mode = flow_mode.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hangup) = signal(SignalKind::hangup()) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    received = hangup.recv() => if received.is_none() { return },
                }
                eprintln!("switchboard: SIGHUP: reloading the flows");
                let reloading = flow_mode.clone();
                match tokio::task::spawn_blocking(move || reloading.reload()).await {
                    Ok(Ok(count)) => eprintln!(
                        "switchboard: {count} flow{} reloaded; calls in progress keep the old ones",
                        if count == 1 { "" } else { "s" }
                    ),
                    Ok(Err(error)) => {
                        eprintln!("switchboard: flows not reloaded, the old ones stay:\n{error}")
                    }
                    Err(error) => eprintln!("switchboard: flows not reloaded: {error}"),
                }
            }
        });
    }
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.recv() => event,
        };
        let Some(event) = event else { break };
        match event {
            AgentEvent::IncomingCall(call) if draining.is_cancelled() => {
                tokio::spawn(async move {
                    let _ = call.reject(503).await;
                });
            }
            AgentEvent::IncomingCall(call) => match &mode {
                Mode::Simple(simple) => {
                    tokio::spawn(handle_call(
                        agent.clone(),
                        call,
                        simple.clone(),
                        calls.child_token(),
                    ));
                }
                Mode::Flow(flow) => {
                    tokio::spawn(crate::call::agent::handle_call(
                        agent.clone(),
                        call,
                        flow.clone(),
                        calls.child_token(),
                    ));
                }
            },
            AgentEvent::Registered { expires } => {
                eprintln!("switchboard: registered for {expires} s");
            }
            AgentEvent::RegistrationFailed { reason } => {
                eprintln!("switchboard: registration failed: {reason}; retrying with backoff");
            }
            AgentEvent::Unregistered => eprintln!("switchboard: unregistered"),
        }
    }
    calls.cancel();
    // Keep reading events while the agent stops, so the unREGISTER's
    // outcome is reported; then whatever is still queued.
    let report = |event: AgentEvent| match event {
        AgentEvent::Unregistered => eprintln!("switchboard: unregistered"),
        AgentEvent::RegistrationFailed { reason } => {
            eprintln!("switchboard: unREGISTER failed: {reason}")
        }
        AgentEvent::IncomingCall(call) => drop(call),
        AgentEvent::Registered { .. } => {}
    };
    loop {
        tokio::select! {
            _ = agent.stopped() => break,
            event = events.recv() => match event {
                Some(event) => report(event),
                None => {
                    agent.stopped().await;
                    break;
                }
            },
        }
    }
    while let Ok(event) = events.try_recv() {
        report(event);
    }
    eprintln!("switchboard: stopped");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_part_comes_from_the_id() {
        assert_eq!(user_of("sip:200@pbx.example.com"), Some("200"));
        assert_eq!(user_of("sips:alice;x=1@pbx"), Some("alice"));
        assert_eq!(user_of("sip:pbx.example.com"), None);
    }

    #[test]
    fn transports_parse() {
        assert!(!parse_transports(Some("udp")).unwrap().tcp);
        assert!(parse_transports(Some("udp,tcp")).unwrap().tcp);
        assert!(parse_transports(Some("sctp")).is_err());
    }

    #[test]
    fn a_bad_config_file_names_the_line_and_column() {
        let dir = std::env::temp_dir().join(format!("sb-run-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.yaml");
        std::fs::write(&path, "sip:\n  listen: 127.0.0.1:5060\n  max-calls: many\n").unwrap();
        let error = read_config(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}:3:", path.display())),
            "{error}"
        );
        std::fs::write(&path, "sip:\n  listne: 127.0.0.1:5060\n").unwrap();
        let error = read_config(&path).unwrap_err().to_string();
        assert!(error.contains("unknown field `listne`"), "{error}");
    }
}
