//! `switchboard run` between real phones: Kamailio as the PBX
//! (`tests/peers/kamailio-pbx.cfg`: registrar and record-routing proxy with
//! digest authentication) and baresip as the callers and the transfer
//! target, all on 127.0.0.1.
//!
//! - A caller on the PBX hears the greeting, is heard (both checked by what
//!   the speech recogniser makes of the recordings) and is handed to bob by
//!   REFER; bob hears the caller.
//! - A caller is bridged (B2BUA) to bob after a busy destination: audio
//!   crosses the bridge both ways, and the caller's hang-up hangs bob up.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent::RunningAgent;
use common::baresip::{self, Baresip};
use switchboard::audio::{decode::read_file, Samples};
use switchboard::speech::text::word_errors;

/// Bound on each step of a call (registration, answer, transfer, hang-up).
const STEP: Duration = Duration::from_secs(30);
/// baresip quits by itself after this long, whatever the test does.
const PHONE_LIFETIME: Duration = Duration::from_secs(120);
/// The PBX's users, as in `tests/peers/kamailio-pbx.cfg`.
const SWITCHBOARD_PASSWORD: &str = "s3cret";
const ALICE_PASSWORD: &str = "alicepw";
const BOB_PASSWORD: &str = "bobpw";

fn fixture(name: &str) -> (PathBuf, String) {
    let entry = common::manifest()
        .into_iter()
        .find(|f| f.file == name)
        .unwrap_or_else(|| panic!("{name} is in the manifest"));
    (common::fixture_path(&entry), entry.text)
}

fn read(path: &Path) -> Samples {
    read_file(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn seconds(path: &Path) -> f64 {
    read(path).duration().as_secs_f64()
}

/// Seconds of 20 ms frames above -50 dBFS: sound, not comfort silence.
fn sound_seconds(audio: &Samples) -> f64 {
    let frame = (audio.rate.hz() / 50) as usize;
    let loud = audio
        .data
        .chunks(frame.max(1))
        .filter(|chunk| {
            let energy = chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32;
            10.0 * energy.max(1e-12).log10() > -50.0
        })
        .count();
    loud as f64 * 0.02
}

/// What tiny.en hears in `path`.
fn transcribe(path: &Path) -> String {
    let _cpu = common::cpu_lock();
    let out = common::switchboard(&[
        "transcribe",
        "--json",
        "--no-escalate",
        path.to_str().expect("a UTF-8 path"),
    ]);
    assert!(
        out.status.success(),
        "transcribe {} failed: {}",
        path.display(),
        common::stderr(&out)
    );
    let line = common::stdout(&out);
    let value: serde_json::Value = serde_json::from_str(line.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("transcribe --json printed {line:?}: {e}"));
    value["text"].as_str().unwrap_or_default().to_string()
}

/// Word error rate of `heard` against `said`.
fn wer(said: &str, heard: &str) -> f64 {
    let (errors, words) = word_errors(said, heard);
    errors as f64 / words.max(1) as f64
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kamailio, the agent's log and the phones of one test, with everything's
/// logs for a failure message.
struct Scene {
    dir: PathBuf,
    kamailio: Option<common::Kamailio>,
    /// Kamailio's port (UDP and TCP) on 127.0.0.1.
    pbx_port: u16,
    /// The agent's log (the agent itself is owned by the test, which
    /// stops it).
    agent_log: PathBuf,
    phones: Vec<Baresip>,
}

impl Scene {
    /// Starts Kamailio from `kamailio-pbx.cfg` in `dir/pbx`.
    fn new(dir: &Path) -> Scene {
        let pbx_dir = dir.join("pbx");
        std::fs::create_dir_all(&pbx_dir).expect("creating the PBX's folder");
        let pbx_port = common::free_port();
        let kamailio = common::spawn_kamailio(
            &pbx_dir,
            "kamailio-pbx.cfg",
            &[("@PORT@", pbx_port.to_string())],
        );
        Scene {
            dir: dir.to_path_buf(),
            kamailio: Some(kamailio),
            pbx_port,
            agent_log: dir.join("agent.log"),
            phones: Vec::new(),
        }
    }

    /// `sip:USER@127.0.0.1:PBX_PORT`: a user of the PBX.
    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.pbx_port)
    }

    fn pbx_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pbx").join("kamailio.stderr")).unwrap_or_default()
    }

    fn agent_log_text(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    /// Everything's logs, for a failure message.
    fn diagnostics(&self) -> String {
        let mut text = format!("--- agent log\n{}\n", self.agent_log_text());
        for phone in &self.phones {
            text.push_str(&phone.report());
        }
        text.push_str(&format!(
            "--- Kamailio (port {}), last lines\n{}\n",
            self.pbx_port,
            tail(&self.pbx_log(), 40)
        ));
        text
    }

    /// Starts `switchboard run ARGS`, registered on the PBX as
    /// sip:switchboard@127.0.0.1, and waits for the registration.
    async fn start_agent(&self, args: &[&str]) -> RunningAgent {
        let registrar = format!("sip:127.0.0.1:{}", self.pbx_port);
        let mut all = vec![
            "--registrar",
            &registrar,
            "--id",
            "sip:switchboard@127.0.0.1",
            "--username",
            "switchboard",
            "--password",
            SWITCHBOARD_PASSWORD,
        ];
        all.extend_from_slice(args);
        let agent = RunningAgent::start(&self.dir, &all).await;
        assert_eq!(agent.log, self.agent_log);
        self.agent_line("switchboard: registered for", STEP).await;
        agent
    }

    /// Starts baresip as `user` of the PBX in `dir/USER` with `microphone`
    /// as its audio, and waits until it has registered. With `dial`, it
    /// then calls that URI.
    async fn start_phone(
        &mut self,
        user: &str,
        password: &str,
        microphone: &Path,
        dial: Option<&str>,
    ) {
        let account = baresip::account(user, password, self.pbx_port);
        let phone = Baresip::start(
            &self.dir.join(user),
            user,
            &account,
            microphone,
            dial,
            PHONE_LIFETIME,
        );
        self.phones.push(phone);
        self.phone_line(user, "", "binding]", STEP).await;
    }

    fn phone(&self, user: &str) -> &Baresip {
        self.phones
            .iter()
            .find(|phone| phone.name == user)
            .unwrap_or_else(|| panic!("no phone {user}"))
    }

    /// Waits at most `bound` for a line containing `needle` in the agent's
    /// log; panics with everything's logs when it does not come.
    async fn agent_line(&self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(line) = self.agent_log_text().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() > deadline {
                panic!(
                    "no agent log line with {needle:?} within {bound:?}\n{}",
                    self.diagnostics()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits at most `bound` for a line containing `needle` in `user`'s
    /// baresip log after the first line containing `after`; panics with
    /// everything's logs when it does not come.
    async fn phone_line(&self, user: &str, after: &str, needle: &str, bound: Duration) -> String {
        match self
            .phone(user)
            .wait_for_line_after(after, needle, bound)
            .await
        {
            Some(line) => line,
            None => panic!(
                "no line with {needle:?} after {after:?} in {user}'s baresip log within \
                 {bound:?}\n{}",
                self.diagnostics()
            ),
        }
    }

    /// Stops the phones, then `agent` (which must exit cleanly, having
    /// unregistered), then Kamailio.
    async fn finish(mut self, agent: RunningAgent) {
        for phone in self.phones.drain(..) {
            phone.stop(Duration::from_secs(6)).await;
        }
        let clean = agent.stop(STEP).await;
        let log = self.agent_log_text();
        assert!(
            clean,
            "the agent exits cleanly on SIGTERM\n{}",
            self.diagnostics()
        );
        assert!(
            log.lines().any(|l| l.contains("switchboard: unregistered")),
            "the agent unregisters when it stops\n{}",
            self.diagnostics()
        );
        if let Some(kamailio) = self.kamailio.take() {
            kamailio.stop(Duration::from_secs(10)).await;
        }
    }
}

/// Runs `switchboard call ARGS --json` and returns its report.
async fn call(args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("call")
        .args(args)
        .args(["--json", "--listen", "127.0.0.1:0", "--timeout", "40"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("switchboard call ends within its bound")
        .expect("running switchboard call");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "switchboard call printed {stdout:?} ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_on_the_pbx_hears_the_greeting_is_heard_and_is_referred_to_bob() {
    let dir = common::temp_dir("baresip-refer");
    let (greeting, greeting_text) = fixture("billing-01-piper.wav");
    let (speech, speech_text) = fixture("support-01-piper.wav");
    let greeting_seconds = seconds(&greeting);
    let speech_seconds = seconds(&speech);
    // The fixtures' own sound (speech has pauses): what arrives should
    // have as much, G.711 on loopback losing nothing.
    let greeting_sound = sound_seconds(&read(&greeting));
    let speech_sound = sound_seconds(&read(&speech));
    let mut scene = Scene::new(&dir);
    let bob_uri = scene.uri("bob");
    let recordings = dir.join("agent-recordings");
    let agent = scene
        .start_agent(&[
            "--play",
            greeting.to_str().unwrap(),
            "--transfer-to",
            &bob_uri,
            "--transfer-by",
            "refer",
            "--record-dir",
            recordings.to_str().unwrap(),
        ])
        .await;

    let bob_microphone = dir.join("bob-microphone.wav");
    baresip::silence_file(&bob_microphone, 60.0);
    scene
        .start_phone("bob", BOB_PASSWORD, &bob_microphone, None)
        .await;
    // Alice says her piece as soon as the agent answers, then stays on the
    // line past the greeting and the REFER: baresip hangs up at the end of
    // its file. Following the REFER, she says it again to bob.
    let alice_microphone = dir.join("alice-microphone.wav");
    let pad = (greeting_seconds + 3.5 - speech_seconds).max(1.0);
    baresip::microphone_file(&speech, &alice_microphone, pad);
    let switchboard_uri = scene.uri("switchboard");
    scene
        .start_phone(
            "alice",
            ALICE_PASSWORD,
            &alice_microphone,
            Some(&switchboard_uri),
        )
        .await;

    // The call came through Kamailio, was answered, and the greeting
    // played; then the REFER, which alice follows to bob.
    scene
        .agent_line("incoming from sip:alice@127.0.0.1", STEP)
        .await;
    scene
        .agent_line(&format!("ended: transferred to {bob_uri} by REFER"), STEP)
        .await;
    let recorded_line = scene.agent_line("recorded ", STEP).await;
    scene
        .phone_line("bob", "", "Call established: sip:alice@127.0.0.1", STEP)
        .await;
    // Alice's second call lasts her whole file; then she hangs up on bob.
    let call_bound = STEP + Duration::from_secs_f64(speech_seconds + pad);
    scene
        .phone_line(
            "alice",
            "",
            &format!("Call with {bob_uri} terminated"),
            call_bound,
        )
        .await;
    scene
        .phone_line("bob", "Call established", "terminated", STEP)
        .await;
    let pbx = scene.pbx_log();
    for needle in [
        "INVITE from alice to switchboard relayed",
        "in-dialog REFER from switchboard to alice",
        "INVITE from alice to bob",
        "in-dialog BYE from switchboard to alice",
    ] {
        assert!(
            pbx.contains(needle),
            "Kamailio's log has {needle:?}\n{}",
            scene.diagnostics()
        );
    }

    // Alice heard the greeting: her first recording (the agent's call; the
    // second is bob's).
    let alice_heard = scene.phone("alice").heard_files();
    assert_eq!(
        alice_heard.len(),
        2,
        "alice recorded two calls\n{}",
        scene.diagnostics()
    );
    let heard = read(&alice_heard[0]);
    let sound = sound_seconds(&heard);
    assert!(
        sound > 0.8 * greeting_sound,
        "alice heard {sound:.2} s of sound for the greeting's {greeting_sound:.2} s\n{}",
        scene.diagnostics()
    );
    let alice_text = transcribe(&alice_heard[0]);
    println!("alice heard: {alice_text:?}");
    assert!(
        wer(&greeting_text, &alice_text) <= 0.25,
        "alice heard {alice_text:?} for {greeting_text:?}\n{}",
        scene.diagnostics()
    );

    // The agent heard alice.
    let agent_recordings: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .expect("the agent's recording folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(
        agent_recordings.len(),
        1,
        "one recording for the call ({recorded_line})\n{}",
        scene.diagnostics()
    );
    let agent_text = transcribe(&agent_recordings[0]);
    println!("the agent heard: {agent_text:?}");
    assert!(
        wer(&speech_text, &agent_text) <= 0.25,
        "the agent heard {agent_text:?} for {speech_text:?}\n{}",
        scene.diagnostics()
    );

    // Bob heard alice, once she had followed the REFER.
    let bob_heard = scene.phone("bob").heard_files();
    assert_eq!(
        bob_heard.len(),
        1,
        "bob recorded one call\n{}",
        scene.diagnostics()
    );
    let sound = sound_seconds(&read(&bob_heard[0]));
    assert!(
        sound > 0.8 * speech_sound,
        "bob heard {sound:.2} s of sound for alice's {speech_sound:.2} s\n{}",
        scene.diagnostics()
    );
    let bob_text = transcribe(&bob_heard[0]);
    println!("bob heard: {bob_text:?}");
    assert!(
        wer(&speech_text, &bob_text) <= 0.25,
        "bob heard {bob_text:?} for {speech_text:?}\n{}",
        scene.diagnostics()
    );

    scene.finish(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_is_bridged_to_bob_after_a_busy_destination_and_the_hang_up_crosses_the_bridge() {
    const CALLER_HZ: f64 = 1000.0;
    const BOB_HZ: f64 = 1700.0;
    let dir = common::temp_dir("baresip-bridge");
    let (greeting, _) = fixture("operator-03-piper.wav");
    let mut scene = Scene::new(&dir);

    // The first destination is busy: SIPp answers 486.
    let busy_port = common::free_port();
    let busy_dir = dir.join("busy");
    std::fs::create_dir_all(&busy_dir).unwrap();
    let scenario = common::sipp_scenario("uas_busy.xml");
    let mut busy = common::spawn_sipp(
        &busy_dir,
        busy_port,
        &["-sf", scenario.to_str().unwrap(), "-m", "1"],
    );
    let busy_uri = format!("sip:busy@127.0.0.1:{busy_port}");
    let bob_uri = scene.uri("bob");
    let agent = scene
        .start_agent(&[
            "--play",
            greeting.to_str().unwrap(),
            "--transfer-by",
            "invite",
            "--transfer-to",
            &busy_uri,
            "--transfer-to",
            &bob_uri,
        ])
        .await;
    // Bob answers with a tone, so the way back is checked too.
    let bob_microphone = dir.join("bob-microphone.wav");
    baresip::tone_file(&bob_microphone, BOB_HZ as u32, 60.0, 0.3);
    scene
        .start_phone("bob", BOB_PASSWORD, &bob_microphone, None)
        .await;

    // The caller plays a tone from the answer on, and hangs up 2 s after
    // it ends: by then it has been bridged to bob.
    let caller_tone = dir.join("caller-tone.wav");
    baresip::tone_file(&caller_tone, CALLER_HZ as u32, 4.0, 0.5);
    let caller_heard = dir.join("caller-heard.wav");
    let report = call(&[
        &agent.uri("switchboard"),
        "--play",
        caller_tone.to_str().unwrap(),
        "--hangup-after-play",
        "2",
        "--record",
        caller_heard.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        report["answered"],
        true,
        "{report}\n{}",
        scene.diagnostics()
    );
    assert_eq!(
        report["ended"],
        "we hung up after playing",
        "{report}\n{}",
        scene.diagnostics()
    );

    // The busy destination was tried first, then bob answered.
    let status = common::wait_exit(&mut busy, STEP).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the busy destination (SIPp) failed ({status:?}):\n{}\n{}",
        common::sipp_report(&busy_dir),
        scene.diagnostics()
    );
    let busy_failed = scene
        .agent_line(&format!("transfer: INVITE to {busy_uri} failed"), STEP)
        .await;
    assert!(
        busy_failed.contains("486"),
        "the busy destination's 486 is logged: {busy_failed}"
    );
    scene
        .agent_line(&format!("transfer: {bob_uri} answered; bridging"), STEP)
        .await;
    let log = scene.agent_log_text();
    let position = |needle: &str| log.find(needle).unwrap_or(usize::MAX);
    assert!(
        position(&format!("INVITE to {busy_uri} failed"))
            < position(&format!("transfer: INVITE to {bob_uri}")),
        "the busy destination is tried before bob\n{}",
        scene.diagnostics()
    );
    // The caller's hang-up ends the bridge and bob's leg.
    scene.agent_line("bridge ended: FirstHungUp", STEP).await;
    scene
        .phone_line(
            "bob",
            "Call established: sip:switchboard@127.0.0.1",
            "terminated",
            STEP,
        )
        .await;
    scene.agent_line("ended: bridged to", STEP).await;
    let pbx = scene.pbx_log();
    assert!(
        pbx.contains("INVITE from switchboard to bob")
            && pbx.contains("in-dialog BYE from switchboard to bob"),
        "the agent's call to bob and its BYE went through Kamailio\n{}",
        scene.diagnostics()
    );

    // Audio crossed the bridge: bob heard the caller's tone, the caller
    // heard bob's.
    let bob_heard = scene.phone("bob").heard_files();
    assert_eq!(
        bob_heard.len(),
        1,
        "bob recorded one call\n{}",
        scene.diagnostics()
    );
    let at_bob = read(&bob_heard[0]);
    let (tone, off_tone) = (
        at_bob.tone_amplitude(CALLER_HZ),
        at_bob.tone_amplitude(500.0),
    );
    println!(
        "bob heard {:.1} s: {CALLER_HZ} Hz at {tone:.4}, 500 Hz at {off_tone:.4}",
        at_bob.duration().as_secs_f64()
    );
    assert!(
        tone > 0.05 && tone > 10.0 * off_tone,
        "bob heard the caller's {CALLER_HZ} Hz tone at {tone:.4} (500 Hz: {off_tone:.4})\n{}",
        scene.diagnostics()
    );
    let at_caller = read(&caller_heard);
    let (tone, off_tone) = (
        at_caller.tone_amplitude(BOB_HZ),
        at_caller.tone_amplitude(1300.0),
    );
    println!(
        "the caller heard {:.1} s: {BOB_HZ} Hz at {tone:.4}, 1300 Hz at {off_tone:.4}",
        at_caller.duration().as_secs_f64()
    );
    assert!(
        tone > 0.03 && tone > 10.0 * off_tone,
        "the caller heard bob's {BOB_HZ} Hz tone at {tone:.4} (1300 Hz: {off_tone:.4}): \
         {report}\n{}",
        scene.diagnostics()
    );

    scene.finish(agent).await;
}
