//! Helpers shared by the integration tests: paths, the fixture manifest and
//! running the built binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod agent;
pub mod baresip;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models() -> PathBuf {
    root().join("models")
}

pub fn fixtures() -> PathBuf {
    root().join("audio-fixtures")
}

/// Runs `switchboard` with `args`, with the project's models.
pub fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_MODELS", models())
        .output()
        .expect("running the switchboard binary")
}

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Fixture {
    pub file: String,
    pub voice: String,
    pub intent: Option<String>,
    pub destination: Option<String>,
    pub text: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

pub fn manifest() -> Vec<Fixture> {
    let text =
        std::fs::read_to_string(fixtures().join("manifest.yaml")).expect("reading the manifest");
    serde_yaml::from_str::<Manifest>(&text)
        .expect("parsing the manifest")
        .fixtures
}

pub fn fixture_path(f: &Fixture) -> PathBuf {
    fixtures().join(&f.file)
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Tests that run inference take this lock: whisper.cpp's threads spin
/// while they wait, so two decodings at once on a 2-core machine slow each
/// other down many times over. (Within one test binary; binaries run one
/// after another.)
pub fn cpu_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// Real SIP peers on loopback (SIPp, Kamailio): free ports, starting them,
// waiting for them with a bound, stopping exactly the process we started.

/// A port free for both UDP and TCP on 127.0.0.1 at the time of asking.
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("binding an ephemeral UDP port");
        let port = udp
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1 after 64 tries");
}

/// A SIPp scenario file in `tests/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    root().join("tests").join("sipp").join(name)
}

/// Starts SIPp in the foreground in `dir` (its logs go there) on
/// 127.0.0.1:`port`, with `args` after the common ones: no stdin, errors
/// traced, a global timeout so it can never outlive the test by much.
/// Killed when the handle is dropped, so a failing test leaves no SIPp.
pub fn spawn_sipp(dir: &Path, port: u16, args: &[&str]) -> tokio::process::Child {
    let media_port = free_port().to_string();
    let port = port.to_string();
    tokio::process::Command::new("sipp")
        .current_dir(dir)
        .args([
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            &media_port,
        ])
        .args([
            "-trace_err",
            "-trace_msg",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("sipp.stdout")).expect("creating sipp.stdout"))
        .stderr(std::fs::File::create(dir.join("sipp.stderr")).expect("creating sipp.stderr"))
        .kill_on_drop(true)
        .spawn()
        .expect("starting sipp (apt-get install sip-tester)")
}

/// Waits at most `bound` for `child` to exit; past that it is killed and
/// `None` is returned.
pub async fn wait_exit(
    child: &mut tokio::process::Child,
    bound: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    match tokio::time::timeout(bound, child.wait()).await {
        Ok(status) => Some(status.expect("waiting for a child process")),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            None
        }
    }
}

/// What SIPp left in `dir` (screen, errors), for a failure message.
pub fn sipp_report(dir: &Path) -> String {
    let mut report = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let tail: String = text
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                report.push_str(&format!("--- {}\n{tail}\n", path.display()));
            }
        }
    }
    report
}

/// A Kamailio we started, in its own process group: its main process
/// forks the workers, and a SIGKILL to the main PID alone would orphan
/// them. Stopping signals the group whose id is the main PID.
pub struct Kamailio {
    child: tokio::process::Child,
    group: u32,
    stopped: bool,
}

impl Kamailio {
    fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([signal, "--", &format!("-{}", self.group)])
            .status();
    }

    /// SIGTERM (Kamailio stops its workers), at most `bound` to exit, then
    /// SIGKILL to the group.
    pub async fn stop(mut self, bound: std::time::Duration) {
        self.signal("-TERM");
        if tokio::time::timeout(bound, self.child.wait())
            .await
            .is_err()
        {
            self.signal("-KILL");
            let _ = self.child.wait().await;
        }
        self.stopped = true;
    }
}

impl Drop for Kamailio {
    /// A test that panicked before `stop` still stops its Kamailio.
    fn drop(&mut self) {
        if !self.stopped {
            self.signal("-KILL");
        }
    }
}

/// Starts Kamailio in the foreground from the template `tests/peers/NAME`
/// with each `(placeholder, value)` replaced, its run directory and logs in
/// `dir`. As root it runs as `nobody` (setpriv execs it, so the child's PID
/// is Kamailio's).
pub fn spawn_kamailio(dir: &Path, template: &str, replace: &[(&str, String)]) -> Kamailio {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(root().join("tests").join("peers").join(template))
        .expect("reading the Kamailio config template");
    let cfg = dir.join("kamailio.cfg");
    let text = replace.iter().fold(text, |text, (placeholder, value)| {
        text.replace(placeholder, value)
    });
    std::fs::write(&cfg, text).expect("writing kamailio.cfg");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("creating Kamailio's run directory");
    for path in [dir, run.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
            .expect("opening the run directory to Kamailio's user");
    }
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644))
        .expect("making kamailio.cfg readable");
    let root_user = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut command = if root_user {
        let mut c = tokio::process::Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "kamailio",
        ]);
        c
    } else {
        tokio::process::Command::new("kamailio")
    };
    let run = run.to_str().expect("a UTF-8 temp path");
    let child = command
        .args(["-f", cfg.to_str().expect("a UTF-8 temp path")])
        .args([
            "-DD", "-E", "-n", "2", "-m", "64", "-M", "8", "-Y", run, "-w", run,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("kamailio.stdout")).expect("creating a log file"))
        .stderr(std::fs::File::create(dir.join("kamailio.stderr")).expect("creating a log file"))
        .process_group(0)
        .spawn()
        .expect("starting kamailio (apt-get install kamailio)");
    let group = child.id().expect("a running child has a PID");
    Kamailio {
        child,
        group,
        stopped: false,
    }
}
