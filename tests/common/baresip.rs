//! baresip 1.0.0 as a child process: a SIP phone with one account on the
//! test's PBX that answers by itself (`answermode=auto`) or dials at start,
//! takes a WAV file as its microphone (`aufile`; at the end of the file it
//! hangs up) and records what it hears (`sndfile`). Its folder holds its
//! config, its log and its recordings. It is stopped by PID: SIGTERM, a
//! second SIGTERM for a stuck call, then SIGKILL.
//!
//! Facts this relies on are in /work/shared/notes/test-peers.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running baresip.
pub struct Baresip {
    child: tokio::process::Child,
    /// Its name in diagnostics (the account's user).
    pub name: String,
    /// Its standard output and error: registrations, calls, audio setup.
    pub log: PathBuf,
    /// Where `sndfile` writes `dump-<time>-dec.wav` (what it heard) and
    /// `-enc.wav` (what it sent) for each call.
    pub recordings: PathBuf,
    /// Its SIP port on 127.0.0.1 (it also binds the next one, for TLS).
    pub port: u16,
}

/// The account line of `user` on a PBX at 127.0.0.1:`pbx_port`: it
/// answers every call at once and speaks G.711 mu-law only.
pub fn account(user: &str, password: &str, pbx_port: u16) -> String {
    format!(
        "<sip:{user}@127.0.0.1:{pbx_port}>;auth_pass={password};answermode=auto;audio_codecs=pcmu"
    )
}

/// A port free on 127.0.0.1 together with the one after it (baresip binds
/// `sip_listen` and the next port for TLS).
pub fn free_port_pair() -> u16 {
    for _ in 0..64 {
        let port = super::free_port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        let udp = std::net::UdpSocket::bind(("127.0.0.1", next));
        let tcp = std::net::TcpListener::bind(("127.0.0.1", next));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no two consecutive ports free on 127.0.0.1 after 64 tries");
}

/// Runs sox with `args`, panicking with its error output when it fails.
pub fn sox(args: &[&str]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .expect("running sox (apt-get install sox)");
    assert!(
        out.status.success(),
        "sox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `input` as a baresip microphone file (8 kHz mono 16-bit PCM
/// WAV, what `aufile` reads) with `pad_seconds` of silence after it: the
/// call lasts as long as the file.
pub fn microphone_file(input: &Path, output: &Path, pad_seconds: f64) {
    let pad = format!("{pad_seconds:.2}");
    sox(&[
        input.to_str().expect("a UTF-8 path"),
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        output.to_str().expect("a UTF-8 path"),
        "pad",
        "0",
        &pad,
    ]);
}

/// Writes a sine of `hz` lasting `seconds` at `volume` (of full scale) as
/// an 8 kHz mono 16-bit WAV.
pub fn tone_file(output: &Path, hz: u32, seconds: f64, volume: f64) {
    sox(&[
        "-n",
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        output.to_str().expect("a UTF-8 path"),
        "synth",
        &format!("{seconds:.2}"),
        "sine",
        &hz.to_string(),
        "vol",
        &format!("{volume:.2}"),
    ]);
}

/// Writes `seconds` of silence as an 8 kHz mono 16-bit WAV: a microphone
/// for a phone that only listens (and, being long, never hangs up).
pub fn silence_file(output: &Path, seconds: f64) {
    sox(&[
        "-n",
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        output.to_str().expect("a UTF-8 path"),
        "trim",
        "0",
        &format!("{seconds:.2}"),
    ]);
}

impl Baresip {
    /// Starts baresip in `dir` (created) with the account line `account`
    /// and `microphone` as its audio source, on a free port pair. With
    /// `dial`, it calls that URI at once. It quits by itself after
    /// `lifetime`, a bound in case the test never stops it.
    pub fn start(
        dir: &Path,
        name: &str,
        account: &str,
        microphone: &Path,
        dial: Option<&str>,
        lifetime: Duration,
    ) -> Baresip {
        let recordings = dir.join("recordings");
        std::fs::create_dir_all(&recordings).expect("creating baresip's folder");
        let port = free_port_pair();
        // No audio player module: playback is skipped, and `sndfile` (an
        // audio filter) still sees every decoded frame.
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.1:{port}\n\
             net_interface\t127.0.0.1\n\
             audio_source\taufile,{microphone}\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\tg711.so\n\
             module\taufile.so\n\
             module\tsndfile.so\n\
             module_app\taccount.so\n\
             module_app\tmenu.so\n\
             snd_path\t{recordings}\n",
            microphone = microphone.display(),
            recordings = recordings.display(),
        );
        std::fs::write(dir.join("config"), config).expect("writing baresip's config");
        std::fs::write(dir.join("accounts"), format!("{account}\n"))
            .expect("writing baresip's accounts");
        let log = dir.join("baresip.log");
        let mut command = tokio::process::Command::new("baresip");
        command
            .args(["-f", dir.to_str().expect("a UTF-8 temp path")])
            .args(["-t", &lifetime.as_secs().max(1).to_string()]);
        if let Some(uri) = dial {
            command.args(["-e", &format!("/dial {uri}")]);
        }
        let output = std::fs::File::create(&log).expect("creating baresip's log");
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone().expect("sharing baresip's log"))
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .expect("starting baresip (apt-get install baresip-core)");
        Baresip {
            child,
            name: name.to_string(),
            log,
            recordings,
            port,
        }
    }

    /// The log so far, without the call-statistics line baresip redraws
    /// with carriage returns several times a second.
    pub fn log_text(&self) -> String {
        let raw = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&raw)
            .split(['\r', '\n'])
            .map(str::trim_end)
            .filter(|line| !line.is_empty())
            .filter(|line| !(line.trim_start().starts_with("[0:") && line.contains("audio=")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits at most `bound` for a log line containing `needle` after the
    /// first line containing `after` (from the start with `""`). Returns
    /// the line, or `None` when it did not come.
    pub async fn wait_for_line_after(
        &self,
        after: &str,
        needle: &str,
        bound: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + bound;
        loop {
            let text = self.log_text();
            let found = text
                .lines()
                .skip_while(|line| !line.contains(after))
                .find(|line| line.contains(needle))
                .map(str::to_string);
            if found.is_some() {
                return found;
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits at most `bound` for a log line containing `needle`.
    pub async fn wait_for_line(&self, needle: &str, bound: Duration) -> Option<String> {
        self.wait_for_line_after("", needle, bound).await
    }

    /// What it heard, one WAV per call, oldest first (the names carry the
    /// time the call's audio started, to the second).
    pub fn heard_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.recordings)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// For a failure message: the log and the recordings made.
    pub fn report(&self) -> String {
        format!(
            "--- baresip {} (port {}), recordings {:?}\n{}\n",
            self.name,
            self.port,
            self.heard_files(),
            self.log_text()
        )
    }

    /// SIGTERM, then SIGTERM again (a call in progress can hold the first
    /// one up), then SIGKILL, each after a third of `bound`. Returns
    /// whether it exited on a SIGTERM.
    pub async fn stop(mut self, bound: Duration) -> bool {
        let step = bound / 3;
        for _ in 0..2 {
            if let Some(pid) = self.child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(step, self.child.wait()).await.is_ok() {
                return true;
            }
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(step, self.child.wait()).await;
        false
    }
}
