//! `switchboard run` as a child process: started on a free port on
//! 127.0.0.1 in the test's folder (its `calls.db` lands there), its log
//! (standard error) in a file the test can wait on, stopped with SIGTERM
//! by PID.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running `switchboard run`.
pub struct RunningAgent {
    child: tokio::process::Child,
    /// Its SIP port (UDP and TCP) on 127.0.0.1.
    pub port: u16,
    /// Its standard error: one line per call event.
    pub log: PathBuf,
}

impl RunningAgent {
    /// Starts `switchboard run --listen 127.0.0.1:PORT ARGS` with its log in
    /// `dir/agent.log`, and waits until it listens.
    pub async fn start(dir: &Path, args: &[&str]) -> RunningAgent {
        Self::start_within(dir, args, Duration::from_secs(20)).await
    }

    /// [`RunningAgent::start`] with a bound of `bound` on the start: an
    /// agent with a flow loads its models and synthesises the flow's
    /// sentences before it listens.
    pub async fn start_within(dir: &Path, args: &[&str], bound: Duration) -> RunningAgent {
        let port = super::free_port();
        let log = dir.join("agent.log");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("run")
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("SWITCHBOARD_MODELS", super::models())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("agent.stdout")).expect("creating a log file"))
            .stderr(std::fs::File::create(&log).expect("creating a log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("starting switchboard run");
        let agent = RunningAgent { child, port, log };
        agent
            .wait_for_line("switchboard: listening on", bound)
            .await;
        agent
    }

    /// `sip:USER@127.0.0.1:PORT`.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits at most `bound` for a log line containing `needle`; returns
    /// it. Panics with the log when it does not come.
    pub async fn wait_for_line(&self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(line) = self.log_text().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() > deadline {
                panic!(
                    "no log line with {needle:?} within {bound:?}; the agent's log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then at most `bound` for it to hang up, unregister and
    /// exit (killed past that). Returns whether it exited cleanly.
    pub async fn stop(mut self, bound: Duration) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                false
            }
        }
    }
}
