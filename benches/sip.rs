//! Telephony benchmark against `switchboard run` on 127.0.0.1, driven by
//! SIPp:
//!
//! 1. Call-setup rate: SIPp places calls at a target rate; the agent (no
//!    `--play`, no transfer) answers each and hangs up at once. Reports the
//!    achieved rate and the failed calls. Target on 2 cores: >= 1000
//!    calls/s with zero failures.
//! 2. Held calls: N calls with audio both ways (SIPp streams G.711 in, the
//!    agent plays a recording out), no speech processing. Reports the
//!    agent's CPU and resident memory per call. Target: <= 0.2% of a core
//!    and <= 1 MB per call.
//!
//! Run: `cargo bench --bench sip` (needs `sipp`; scripts/setup installs
//! it). Options through the environment: `SIP_BENCH_RATE` (default 1200),
//! `SIP_BENCH_CALLS` (default 24000), `SIP_BENCH_HELD` (default 100).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_time, env_or, free_port, rss, temp_dir};
use switchboard::audio::wav::{write_file, WavEncoding};
use switchboard::audio::{SampleRate, Samples};
use switchboard::media::g711::Law;

struct Agent {
    child: Child,
    port: u16,
}

impl Agent {
    fn start(dir: &Path, args: &[&str]) -> Agent {
        let port = free_port();
        let log = dir.join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("run")
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("creating the agent's log"))
            .spawn()
            .expect("starting switchboard run");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(Instant::now() < deadline, "the agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Agent { child, port }
    }

    /// User + system CPU time so far.
    fn cpu(&self) -> Duration {
        cpu_time(self.child.id()).expect("reading /proc/PID/stat")
    }

    /// Resident memory, bytes.
    fn rss(&self) -> u64 {
        rss(self.child.id()).expect("reading /proc/PID/status")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
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

/// SIPp's counters from its `-trace_stat` CSV (the last line, cumulative).
struct SippStats {
    successful: u64,
    failed: u64,
}

fn sipp_stats(dir: &Path) -> SippStats {
    let csv = std::fs::read_dir(dir)
        .expect("reading SIPp's folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("_.csv"))
        .expect("SIPp wrote its statistics");
    let text = std::fs::read_to_string(&csv).expect("reading SIPp's statistics");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or("").split(';').collect();
    let field = |name: &str| -> u64 {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    SippStats {
        successful: field("SuccessfulCall(C)"),
        failed: field("FailedCall(C)"),
    }
}

fn sipp(dir: &Path, scenario: &Path, target: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sipp");
    command
        .current_dir(dir)
        .args(["-nostdin", "-i", "127.0.0.1", "-p"])
        .arg(free_port().to_string())
        .args(["-mp"])
        .arg(free_port().to_string())
        .arg("-sf")
        .arg(scenario)
        .arg(target)
        .args(["-trace_stat", "-fd", "1", "-trace_err"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn call_setup_rate(root: &Path, rate: u64, calls: u64) {
    let dir = temp_dir("setup");
    let agent = Agent::start(&dir, &["--max-calls", "2000"]);
    let scenario = root.join("benches/sipp/uac_callee_hangs_up.xml");
    let started = Instant::now();
    let cpu_before = agent.cpu();
    let status = sipp(
        &dir,
        &scenario,
        &format!("127.0.0.1:{}", agent.port),
        &[
            "-r",
            &rate.to_string(),
            "-m",
            &calls.to_string(),
            "-l",
            "5000",
            "-timeout",
            "300s",
        ],
    )
    .status()
    .expect("running sipp");
    let elapsed = started.elapsed();
    let cpu = agent.cpu() - cpu_before;
    let stats = sipp_stats(&dir);
    // SIPp holds each finished call 1 s in timewait; it is not setup time.
    let active = elapsed.saturating_sub(Duration::from_secs(1));
    println!(
        "call setup: {} calls offered at {rate}/s: {} successful, {} failed, \
         {:.0} calls/s achieved over {:.1} s (SIPp exit {:?}); agent CPU {:.0}% of a core",
        calls,
        stats.successful,
        stats.failed,
        stats.successful as f64 / active.as_secs_f64(),
        active.as_secs_f64(),
        status.code(),
        100.0 * cpu.as_secs_f64() / active.as_secs_f64()
    );
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn held_calls(root: &Path, calls: u64) {
    let dir = temp_dir("held");
    // 60 s of a quiet 440 Hz tone as the agent's recording, and 1 s of
    // headerless mu-law for SIPp to loop towards the agent.
    let seconds = 60;
    let tone: Vec<f32> = (0..8000 * seconds)
        .map(|n| 0.1 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 8000.0).sin())
        .collect();
    let tone = Samples::new(SampleRate::TELEPHONE, tone);
    let play = dir.join("tone.wav");
    write_file(&play, &tone, WavEncoding::Pcm16).expect("writing the tone");
    let ulaw: Vec<u8> = tone.data[..8000]
        .iter()
        .map(|&s| Law::MuLaw.encode(switchboard::audio::f32_to_i16(s)))
        .collect();
    let stream = dir.join("caller.ulaw");
    std::fs::write(&stream, ulaw).expect("writing the caller's stream");
    let scenario = dir.join("uac_held.xml");
    let template = std::fs::read_to_string(root.join("benches/sipp/uac_held.xml"))
        .expect("reading the held-call scenario");
    std::fs::write(
        &scenario,
        template.replace("@STREAM@", stream.to_str().expect("a UTF-8 path")),
    )
    .expect("writing the scenario");

    let agent = Agent::start(
        &dir,
        &[
            "--max-calls",
            &(calls + 10).to_string(),
            "--play",
            play.to_str().unwrap(),
            "--stay",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = agent.rss();
    let idle_cpu = agent.cpu();
    let idle_started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let idle_load = (agent.cpu() - idle_cpu).as_secs_f64() / idle_started.elapsed().as_secs_f64();

    let mut caller = sipp(
        &dir,
        &scenario,
        &format!("127.0.0.1:{}", agent.port),
        &[
            "-r",
            "50",
            "-m",
            &calls.to_string(),
            "-l",
            &calls.to_string(),
            "-timeout",
            "120s",
        ],
    )
    .spawn()
    .expect("starting sipp");
    // All calls are up after calls/50 s; measure over 10 s within the 40 s
    // they are held.
    std::thread::sleep(Duration::from_secs_f64(calls as f64 / 50.0 + 3.0));
    let rss = agent.rss();
    let cpu_before = agent.cpu();
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let load = (agent.cpu() - cpu_before).as_secs_f64() / window.elapsed().as_secs_f64();
    let status = caller.wait().expect("waiting for sipp");
    let stats = sipp_stats(&dir);
    let per_call_cpu = 100.0 * (load - idle_load).max(0.0) / calls as f64;
    let per_call_mem = rss.saturating_sub(idle_rss) as f64 / calls as f64 / (1024.0 * 1024.0);
    println!(
        "held calls: {calls} calls with audio both ways ({} successful, {} failed, SIPp exit {:?}): \
         agent CPU {:.1}% of a core in all ({:.1}% idle), {per_call_cpu:.3}% per call; \
         RSS {:.1} MB ({:.1} MB idle), {per_call_mem:.2} MB per call",
        stats.successful,
        stats.failed,
        status.code(),
        100.0 * load,
        100.0 * idle_load,
        rss as f64 / 1048576.0,
        idle_rss as f64 / 1048576.0,
    );
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("SIP benchmark on {cores} core(s)");
    call_setup_rate(
        &root,
        env_or("SIP_BENCH_RATE", 1200),
        env_or("SIP_BENCH_CALLS", 24000),
    );
    held_calls(&root, env_or("SIP_BENCH_HELD", 100));
}
