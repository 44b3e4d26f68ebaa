//! Live-call benchmark: voice-to-voice latency measured on the wire from
//! the caller's side, against `switchboard run --flow flows/support.yaml`
//! on 127.0.0.1 (its clock set with `--at` to a Tuesday morning, when
//! every department is open), with a second `switchboard run --stay`
//! taking the transfers (`--transfer-host`).
//!
//! The caller is `switchboard call --play FIXTURE --play-after-prompt
//! --json`: it waits for the agent's greeting and a 700 ms pause, plays a
//! fixture utterance, and reports `voice_to_voice_ms` (our last speech
//! packet sent to the first packet of agent speech after it, the
//! jitter-buffer delay taken off; see `src/cli/call/timing.rs`), when the
//! greeting came and the agent's longest silence before the transfer.
//!
//! 1. Single calls: every speech fixture of `audio-fixtures/manifest.yaml`
//!    (the four noise fixtures have nothing to answer), one call at a
//!    time, after one call to warm up. Prints p50/p95/max voice-to-voice,
//!    the agent's own breakdown of each first turn from its records
//!    (`switchboard calls --db FILE --json CALL-ID`), dead air and where
//!    the calls went.
//! 2. Concurrency sweep: waves of 1, 2, 4 and 8 simultaneous calls (each
//!    wave's callers start together, so they speak at about the same
//!    time; the agent runs with `--max-calls` raised to the highest
//!    level). Prints per level the voice-to-voice p50/p95/max, the agent's
//!    own end-of-speech-to-reply latency from its records (the turns it
//!    recorded: a caller that hangs up first leaves none), the agent's CPU
//!    (`/proc/PID/stat`) and its resident memory before the level and at
//!    its peak (`VmRSS`, sampled every 50 ms), per additional call.
//!
//! Writes every latency to `target/bench-call/latencies.csv` and draws the
//! single-call distribution (histogram and CDF) to `docs/latency.svg`.
//!
//! Run: `cargo bench --bench call` (after scripts/setup: the agent loads
//! the models). Options through the environment: `CALL_BENCH_FIXTURES=N`
//! (N speech fixtures spread evenly over the manifest; default all 80),
//! `CALL_BENCH_SWEEP_CALLS` (calls per concurrency level, default 16),
//! `CALL_BENCH_LEVELS` (default `1,2,4,8`), `CALL_BENCH_SVG` (where the
//! SVG goes; `0` for nowhere), `CALL_BENCH_REDRAW=1` (only draw the SVG
//! again from the last run's CSV).

mod common;

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_time, env_or, free_port, rss, temp_dir};
use serde_json::Value;

/// How long a caller stays after its file has played when the agent
/// neither transfers nor hangs up (a clarifying question waits for an
/// answer we do not give): long enough for the slowest reply seen to end
/// in its transfer, alone and with 8 calls at once (replies up to 25 s).
const HANGUP_AFTER_PLAY_S: u64 = 30;
const HANGUP_AFTER_PLAY_LOADED_S: u64 = 60;

/// A caller's bound for the whole call.
const CALL_TIMEOUT_S: &str = "90";

/// The agent's clock starts at a Tuesday morning, when every department
/// of the support flow is open, so calls route as the manifest says
/// whenever the benchmark runs.
const OPEN_HOURS: &str = "2025-01-07T10:00:00-05:00";

/// The dead air a caller should never hear.
const DEAD_AIR: Duration = Duration::from_secs(3);

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A `switchboard run` we started; stopped by its PID.
struct Agent {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Agent {
    /// Starts `switchboard run --listen 127.0.0.1:PORT ARGS` in `dir` and
    /// waits until it listens (loading and warming the models first).
    fn start(dir: &Path, name: &str, port: u16, args: &[&str]) -> Agent {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(binary())
            .arg("run")
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("SWITCHBOARD_MODELS", root().join("models"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("creating the agent's log"))
            .spawn()
            .expect("starting switchboard run");
        let agent = Agent { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(300);
        while !agent.log_text().contains("listening on") {
            assert!(
                Instant::now() < deadline,
                "{name} did not start; its log:\n{}",
                agent.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples a process's VmRSS every 50 ms until dropped; keeps the peak.
struct RssPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start(pid: u32) -> RssPeak {
        let peak = Arc::new(AtomicU64::new(rss(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid).unwrap_or(0), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        RssPeak {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(serde::Deserialize, Clone)]
struct Fixture {
    file: String,
    voice: String,
    destination: Option<String>,
    text: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

/// The speech fixtures, or `n` of them: each voice family (piper, flite,
/// espeak-ng) its share, spread evenly over the manifest (which is ordered
/// by intent), in manifest order. The manifest alternates Piper with the
/// other voices, so an even stride over all of it would take only one kind.
fn speech_fixtures(n: Option<usize>) -> Vec<Fixture> {
    let text = std::fs::read_to_string(root().join("audio-fixtures/manifest.yaml"))
        .expect("reading audio-fixtures/manifest.yaml");
    let all: Vec<Fixture> = serde_yaml::from_str::<Manifest>(&text)
        .expect("parsing the manifest")
        .fixtures
        .into_iter()
        .filter(|f| !f.text.trim().is_empty())
        .collect();
    let Some(n) = n.filter(|&n| n < all.len()) else {
        return all;
    };
    let family = |f: &Fixture| f.voice.split(':').next().unwrap_or_default().to_string();
    let mut families: Vec<String> = all.iter().map(family).collect();
    families.sort();
    families.dedup();
    let mut chosen: Vec<usize> = Vec::new();
    for name in &families {
        let members: Vec<usize> = (0..all.len())
            .filter(|&i| family(&all[i]) == *name)
            .collect();
        let share = (n * members.len() + all.len() / 2) / all.len();
        chosen.extend((0..share).map(|i| members[i * members.len() / share]));
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| all[i].clone()).collect()
}

/// One call as the caller reported it, with the agent's record of it.
struct CallResult {
    phase: &'static str,
    concurrency: usize,
    fixture: Fixture,
    /// `switchboard call --json`'s report, or `None` when it printed none.
    report: Option<Value>,
    /// `switchboard calls --json CALL-ID`, once the agent has ended it.
    record: Option<Value>,
    /// What went wrong, for the log.
    error: Option<String>,
}

impl CallResult {
    fn report_u64(&self, key: &str) -> Option<u64> {
        self.report.as_ref()?.get(key)?.as_u64()
    }

    fn voice_to_voice(&self) -> Option<u64> {
        self.report_u64("voice_to_voice_ms")
    }

    fn longest_silence(&self) -> Option<u64> {
        self.report.as_ref()?["agent_silences"]["longest_ms"].as_u64()
    }

    fn refer_target(&self) -> Option<&str> {
        self.report.as_ref()?["refer"]["target"].as_str()
    }

    /// The agent's first turn, from its records.
    fn first_turn(&self) -> Option<&Value> {
        self.record.as_ref()?["turns"].as_array()?.first()
    }

    fn turn_ms(&self, key: &str) -> Option<u64> {
        self.first_turn()?.get(key)?.as_u64()
    }

    fn outcome(&self) -> String {
        let record = self.record.as_ref();
        let outcome = record.and_then(|r| r["outcome"].as_str());
        let destination = record.and_then(|r| r["destination"].as_str());
        match (outcome, destination) {
            (Some(outcome), Some(destination)) => format!("{outcome} to {destination}"),
            (Some(outcome), None) => outcome.to_string(),
            _ => "no record".to_string(),
        }
    }
}

/// The arguments of one `switchboard call`.
fn caller(agent_port: u16, fixture: &Fixture, hangup_after_play: u64) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("call")
        .arg(format!("sip:agent@127.0.0.1:{agent_port}"))
        .arg("--play")
        .arg(root().join("audio-fixtures").join(&fixture.file))
        .args(["--play-after-prompt", "--json", "--listen", "127.0.0.1:0"])
        .arg("--hangup-after-play")
        .arg(hangup_after_play.to_string())
        .args(["--stay-after-transfer", "0.5", "--timeout", CALL_TIMEOUT_S])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Places `fixtures.len()` calls at once and waits for all of them.
fn call_wave(
    agent: &Agent,
    db: &Path,
    phase: &'static str,
    fixtures: &[Fixture],
) -> Vec<CallResult> {
    let hangup_after_play = if fixtures.len() > 1 {
        HANGUP_AFTER_PLAY_LOADED_S
    } else {
        HANGUP_AFTER_PLAY_S
    };
    let children: Vec<(Fixture, std::io::Result<Child>)> = fixtures
        .iter()
        .map(|f| (f.clone(), caller(agent.port, f, hangup_after_play).spawn()))
        .collect();
    let concurrency = fixtures.len();
    children
        .into_iter()
        .map(|(fixture, child)| {
            let output = child.and_then(|c| c.wait_with_output());
            let (report, error) = match output {
                Ok(output) => {
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    match serde_json::from_str::<Value>(stdout.trim()) {
                        Ok(report) => {
                            let error = report["prompt_missing"]
                                .as_str()
                                .or(report["failure"].as_str())
                                .map(str::to_string);
                            (Some(report), error)
                        }
                        Err(e) => (
                            None,
                            Some(format!(
                                "no report ({e}); stderr: {}",
                                String::from_utf8_lossy(&output.stderr).trim()
                            )),
                        ),
                    }
                }
                Err(e) => (None, Some(format!("cannot run switchboard call: {e}"))),
            };
            let record = report
                .as_ref()
                .and_then(|r| r["call_id"].as_str())
                .and_then(|id| agent_record(db, id));
            CallResult {
                phase,
                concurrency,
                fixture,
                report,
                record,
                error,
            }
        })
        .collect()
}

/// The agent's record of a call, waiting (at most 10 s) until it has been
/// ended: the caller may hang up a moment before the agent writes.
fn agent_record(db: &Path, call_id: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new(binary())
            .args(["calls", "--json", "--db"])
            .arg(db)
            .arg(call_id)
            .output()
            .ok()?;
        let record = serde_json::from_slice::<Value>(&output.stdout).ok();
        if record.as_ref().is_some_and(|r| r["ended_at"].is_string()) || Instant::now() > deadline {
            return record;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values
}

fn ms(value: Option<u64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v} ms"))
}

/// "p50 X, p95 Y, max Z (n values)".
fn summary(values: &[u64]) -> String {
    format!(
        "p50 {}, p95 {}, max {} ({} values)",
        ms(percentile(values, 0.50)),
        ms(percentile(values, 0.95)),
        ms(values.last().copied()),
        values.len()
    )
}

fn print_call(result: &CallResult) {
    let transcript = result
        .first_turn()
        .and_then(|t| t["transcript"].as_str())
        .unwrap_or("");
    println!(
        "  {:<38} v2v {:>8}  greeting {:>7}  longest silence {:>8}  {}  (agent: stt {}, intent {}, tts {}, reply {}) {:?}{}",
        result.fixture.file,
        ms(result.voice_to_voice()),
        ms(result.report_u64("prompt_heard_ms")),
        ms(result.longest_silence()),
        result.outcome(),
        ms(result.turn_ms("stt_ms")),
        ms(result.turn_ms("intent_ms")),
        ms(result.turn_ms("tts_ms")),
        ms(result.turn_ms("reply_ms")),
        transcript,
        result
            .error
            .as_ref()
            .map(|e| format!("  ERROR: {e}"))
            .unwrap_or_default()
    );
}

fn single_calls(agent: &Agent, db: &Path, fixtures: &[Fixture]) -> Vec<CallResult> {
    println!(
        "single calls: {} speech fixtures, one call at a time",
        fixtures.len()
    );
    let mut results = Vec::new();
    for fixture in fixtures {
        let result = call_wave(agent, db, "single", std::slice::from_ref(fixture))
            .pop()
            .expect("one call per wave");
        print_call(&result);
        results.push(result);
    }
    let v2v = sorted(results.iter().filter_map(CallResult::voice_to_voice));
    println!(
        "voice to voice, single calls: {} ({} of {} calls had a reply)",
        summary(&v2v),
        v2v.len(),
        results.len()
    );
    let greeting = sorted(
        results
            .iter()
            .filter_map(|r| r.report_u64("prompt_heard_ms")),
    );
    println!("greeting heard after the answer: {}", summary(&greeting));
    println!("the agent's first turn, from its records:");
    for (key, what) in [
        ("stt_ms", "recognition, both passes"),
        ("intent_ms", "transcript to intent"),
        ("tts_ms", "intent to the reply's first audio"),
        ("reply_ms", "end of speech to the reply's first audio"),
    ] {
        let values = sorted(results.iter().filter_map(|r| r.turn_ms(key)));
        println!("  {key:<10} {what:<42} {}", summary(&values));
    }
    let transferred: Vec<&CallResult> = results
        .iter()
        .filter(|r| r.refer_target().is_some())
        .collect();
    let silences = sorted(transferred.iter().filter_map(|r| r.longest_silence()));
    let dead_air = silences
        .iter()
        .filter(|&&s| s > DEAD_AIR.as_millis() as u64)
        .count();
    println!(
        "longest agent silence from our speech to the REFER: {}; over {} s in {} of {} transferred calls",
        summary(&silences),
        DEAD_AIR.as_secs(),
        dead_air,
        transferred.len()
    );
    let expected = results
        .iter()
        .filter(|r| {
            r.record.as_ref().and_then(|c| c["destination"].as_str())
                == r.fixture.destination.as_deref()
        })
        .count();
    println!(
        "routed where the manifest says: {expected} of {}",
        results.len()
    );
    let mut outcomes: Vec<(String, usize)> = Vec::new();
    for result in &results {
        let outcome = result.outcome();
        match outcomes.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => outcomes.push((outcome, 1)),
        }
    }
    outcomes.sort();
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n} {o}")).collect();
    println!("outcomes: {}", outcomes.join(", "));
    results
}

fn sweep(
    agent: &Agent,
    db: &Path,
    fixtures: &[Fixture],
    levels: &[usize],
    calls: usize,
) -> Vec<CallResult> {
    println!("concurrency sweep: {calls} calls per level, in waves that start together");
    println!(
        "  {:>5} {:>6} {:>8} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>5} {:>9} {:>9} {:>9} {:>11} {:>17}",
        "calls",
        "placed",
        "answered",
        "replied",
        "v2v p50",
        "v2v p95",
        "v2v max",
        "reply p50",
        "reply p95",
        "turns",
        "agent CPU",
        "RSS before",
        "RSS peak",
        "RSS per call",
        "over sweep start"
    );
    let sweep_start_rss = rss(agent.pid()).unwrap_or(0);
    let mut all = Vec::new();
    let mut next = 0;
    for &level in levels {
        let waves = calls.div_ceil(level);
        let rss_before = rss(agent.pid()).unwrap_or(0);
        let peak = RssPeak::start(agent.pid());
        let cpu_before = cpu_time(agent.pid()).unwrap_or_default();
        let started = Instant::now();
        let mut results = Vec::new();
        for _ in 0..waves {
            let wave: Vec<Fixture> = (0..level)
                .map(|i| fixtures[(next + i) % fixtures.len()].clone())
                .collect();
            next += level;
            results.extend(call_wave(agent, db, "sweep", &wave));
        }
        let elapsed = started.elapsed();
        let cpu = cpu_time(agent.pid())
            .unwrap_or_default()
            .saturating_sub(cpu_before);
        let rss_peak = peak.finish();
        let answered = results
            .iter()
            .filter(|r| r.report.as_ref().is_some_and(|r| r["answered"] == true))
            .count();
        let v2v = sorted(results.iter().filter_map(CallResult::voice_to_voice));
        let reply = sorted(results.iter().filter_map(|r| r.turn_ms("reply_ms")));
        let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
        println!(
            "  {:>5} {:>6} {:>8} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>5} {:>8.0}% {:>6.0} MB {:>6.0} MB {:>8.1} MB {:>14.1} MB",
            level,
            results.len(),
            answered,
            v2v.len(),
            ms(percentile(&v2v, 0.50)),
            ms(percentile(&v2v, 0.95)),
            ms(v2v.last().copied()),
            ms(percentile(&reply, 0.50)),
            ms(percentile(&reply, 0.95)),
            reply.len(),
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
            mb(rss_before),
            mb(rss_peak),
            mb(rss_peak.saturating_sub(rss_before)) / level as f64,
            mb(rss_peak.saturating_sub(sweep_start_rss)) / level as f64,
        );
        for result in results.iter().filter(|r| r.error.is_some()) {
            print_call(result);
        }
        all.extend(results);
    }
    all
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn write_csv(path: &Path, results: &[CallResult]) {
    let mut out = String::from(
        "phase,concurrency,fixture,call_id,voice_to_voice_ms,prompt_heard_ms,\
         longest_silence_ms,refer_target,outcome,stt_ms,intent_ms,tts_ms,reply_ms,transcript,error\n",
    );
    let number = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in results {
        let call_id = r
            .report
            .as_ref()
            .and_then(|r| r["call_id"].as_str())
            .unwrap_or("");
        let transcript = r
            .first_turn()
            .and_then(|t| t["transcript"].as_str())
            .unwrap_or("");
        let fields = [
            r.phase.to_string(),
            r.concurrency.to_string(),
            r.fixture.file.clone(),
            call_id.to_string(),
            number(r.voice_to_voice()),
            number(r.report_u64("prompt_heard_ms")),
            number(r.longest_silence()),
            r.refer_target().unwrap_or("").to_string(),
            r.outcome(),
            number(r.turn_ms("stt_ms")),
            number(r.turn_ms("intent_ms")),
            number(r.turn_ms("tts_ms")),
            number(r.turn_ms("reply_ms")),
            transcript.to_string(),
            r.error.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("creating target/bench-call");
    }
    std::fs::write(path, out).expect("writing the latencies");
}

/// A histogram of `values` (ms) with their CDF over it, as an SVG drawn
/// by hand: bars against the left axis (calls), the CDF line against the
/// right one (0-100%), p50 and p95 marked.
fn latency_svg(values: &[u64], title: &str) -> String {
    let (width, height) = (720.0, 400.0);
    let (left, right, top, bottom) = (60.0, 60.0, 50.0, 60.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = values.last().copied().unwrap_or(1).max(1) as f64;
    // A round bin width giving at most 30 bins.
    let bin = [
        10.0, 20.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0,
    ]
    .into_iter()
    .find(|b| max / b < 30.0)
    .unwrap_or(10_000.0);
    // One empty bin on the right, so the last bar stands clear of the axis.
    let bins = (max / bin).floor() as usize + 2;
    let x_max = bins as f64 * bin;
    let mut counts = vec![0usize; bins];
    for &v in values {
        counts[((v as f64 / bin) as usize).min(bins - 1)] += 1;
    }
    let y_max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let x = |ms: f64| left + plot_w * ms / x_max;
    let y = |count: f64| top + plot_h * (1.0 - count / y_max);
    let y_cdf = |fraction: f64| top + plot_h * (1.0 - fraction);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{title}</text>"#,
        width / 2.0
    );
    for (i, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#7aa6d6" stroke="#3f6f9f"/>"##,
            x(i as f64 * bin),
            y(count as f64),
            plot_w * bin / x_max,
            plot_h * count as f64 / y_max
        );
    }
    // The CDF: a step at each value.
    let mut path = format!("M{:.1},{:.1}", x(0.0), y_cdf(0.0));
    for (i, &v) in values.iter().enumerate() {
        let _ = write!(
            path,
            " L{:.1},{:.1} L{:.1},{:.1}",
            x(v as f64),
            y_cdf(i as f64 / values.len() as f64),
            x(v as f64),
            y_cdf((i + 1) as f64 / values.len() as f64)
        );
    }
    let _ = write!(path, " L{:.1},{:.1}", x(x_max), y_cdf(1.0));
    let _ = writeln!(
        svg,
        r##"<path d="{path}" fill="none" stroke="#c0392b" stroke-width="2"/>"##
    );
    // p50 and p95 as dashed lines labelled above the plot, the figures in
    // a legend at its top left.
    let mut legend = Vec::new();
    for (p, label) in [(0.50, "p50"), (0.95, "p95")] {
        if let Some(v) = percentile(values, p) {
            legend.push(format!("{label} {v} ms"));
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#555" stroke-dasharray="4 3"/><text x="{0:.1}" y="{3}" fill="#555" text-anchor="middle">{label}</text>"##,
                x(v as f64),
                top,
                top + plot_h,
                top - 5.0,
            );
        }
    }
    legend.push(format!("max {} ms, {} calls", max, values.len()));
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" fill="#333">{}</text>"##,
        left + 8.0,
        top + 16.0,
        legend.join(", ")
    );
    // Axes, ticks and labels.
    let _ = writeln!(
        svg,
        r##"<path d="M{left},{top} V{0} H{1} V{top}" fill="none" stroke="black"/>"##,
        top + plot_h,
        left + plot_w
    );
    let tick = [
        20.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0,
    ]
    .into_iter()
    .find(|t| x_max / t <= 10.0)
    .unwrap_or(10_000.0);
    let mut t = 0.0;
    while t <= x_max + 0.5 {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="black"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(t),
            top + plot_h,
            top + plot_h + 5.0,
            top + plot_h + 19.0,
            t
        );
        t += tick;
    }
    let count_step = (y_max / 5.0).ceil().max(1.0);
    let mut c = 0.0;
    while c <= y_max + 0.5 {
        let _ = writeln!(
            svg,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="black"/><text x="{3}" y="{4:.1}" text-anchor="end">{c}</text>"##,
            left - 5.0,
            y(c),
            left,
            left - 8.0,
            y(c) + 4.0
        );
        c += count_step;
    }
    for percent in [0, 25, 50, 75, 100] {
        let yy = y_cdf(f64::from(percent) / 100.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#c0392b"/><text x="{3}" y="{4:.1}" fill="#c0392b">{percent}%</text>"##,
            left + plot_w,
            yy,
            left + plot_w + 5.0,
            left + plot_w + 8.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">voice-to-voice latency, ms (caller's side, on the wire)</text>"#,
        left + plot_w / 2.0,
        height - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18,{0}) rotate(-90)" text-anchor="middle">calls</text>"#,
        top + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<text transform="translate({0},{1}) rotate(90)" text-anchor="middle" fill="#c0392b">cumulative share of calls</text>"##,
        width - 14.0,
        top + plot_h / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// `GET /metrics` from the agent, for the counters by outcome.
fn metrics(port: u16) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Draws the SVG again from the single calls of the last run's CSV (no
/// calls placed), for a run made with `CALL_BENCH_SVG=0`.
fn redraw(root: &Path, cores: usize) {
    let csv = root.join("target/bench-call/latencies.csv");
    let text = std::fs::read_to_string(&csv).expect("reading the last run's latencies.csv");
    // phase, concurrency, fixture, call_id, voice_to_voice_ms, ...: no
    // commas before the quoted transcript.
    let single = sorted(text.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.splitn(6, ',').collect();
        (fields.first() == Some(&"single"))
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    }));
    draw_svg(root, &single, cores);
}

/// Draws the single calls' distribution where `CALL_BENCH_SVG` says
/// (default `docs/latency.svg`; `0`: nowhere).
fn draw_svg(root: &Path, single: &[u64], cores: usize) {
    let svg = std::env::var("CALL_BENCH_SVG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("docs/latency.svg"));
    if svg.as_os_str() == "0" || single.is_empty() {
        return;
    }
    let title = format!(
        "Voice-to-voice latency, single calls ({} calls, {cores} cores)",
        single.len()
    );
    std::fs::write(&svg, latency_svg(single, &title)).expect("writing the SVG");
    println!("histogram: {}", svg.display());
}

fn main() {
    let root = root();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if std::env::var("CALL_BENCH_REDRAW").is_ok_and(|v| v == "1") {
        redraw(&root, cores);
        return;
    }
    let help = Command::new(binary())
        .args(["run", "--help"])
        .output()
        .expect("running switchboard run --help");
    if !String::from_utf8_lossy(&help.stdout).contains("--flow") {
        eprintln!("this switchboard has no `run --flow`: the live call is not built yet");
        std::process::exit(1);
    }
    let fixtures = speech_fixtures(
        std::env::var("CALL_BENCH_FIXTURES")
            .ok()
            .and_then(|v| v.parse().ok()),
    );
    let levels: Vec<usize> = std::env::var("CALL_BENCH_LEVELS")
        .unwrap_or_else(|_| "1,2,4,8".to_string())
        .split(',')
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&l| l > 0)
        .collect();
    let sweep_calls = env_or("CALL_BENCH_SWEEP_CALLS", 16) as usize;

    let dir = temp_dir("call");
    let db = dir.join("calls.db");
    let (agent_port, target_port, metrics_port) = (free_port(), free_port(), free_port());
    let loading = Instant::now();
    let target = Agent::start(
        &dir,
        "transfer-target",
        target_port,
        &["--stay", "--no-records", "--max-calls", "100"],
    );
    let flow = root.join("flows/support.yaml");
    let max_calls = levels.iter().copied().max().unwrap_or(1).max(4);
    let agent = Agent::start(
        &dir,
        "agent",
        agent_port,
        &[
            "--flow",
            flow.to_str().expect("a UTF-8 path"),
            "--transfer-host",
            &format!("127.0.0.1:{target_port}"),
            "--db",
            db.to_str().expect("a UTF-8 path"),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
            "--at",
            OPEN_HOURS,
            // The default (4) answers a fifth call 486; the sweep goes
            // beyond it.
            "--max-calls",
            &max_calls.to_string(),
        ],
    );
    println!(
        "Live-call benchmark on {cores} core(s): switchboard run --flow flows/support.yaml \
         --at {OPEN_HOURS} (ready in {:.1} s, RSS {:.0} MB idle), callers: switchboard call \
         --play-after-prompt",
        loading.elapsed().as_secs_f64(),
        rss(agent.pid()).unwrap_or(0) as f64 / 1_048_576.0
    );

    let warm_up = call_wave(&agent, &db, "warm-up", &fixtures[..1]);
    println!("warm-up call (not counted):");
    warm_up.iter().for_each(print_call);

    let mut results = single_calls(&agent, &db, &fixtures);
    let single = sorted(results.iter().filter_map(CallResult::voice_to_voice));
    results.extend(sweep(&agent, &db, &fixtures, &levels, sweep_calls));

    let body = metrics(metrics_port);
    let counters: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("switchboard_calls_total")
                || l.starts_with("switchboard_transfers_total")
                || l.starts_with("switchboard_stt_errors_total")
                || l.starts_with("switchboard_calls_rejected_total")
        })
        .collect();
    println!("agent metrics: {}", counters.join("; "));

    let csv = root.join("target/bench-call/latencies.csv");
    write_csv(&csv, &results);
    println!("latencies: {}", csv.display());
    draw_svg(&root, &single, cores);

    agent.stop();
    target.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
