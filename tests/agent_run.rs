//! `switchboard run` and `switchboard call` as processes, against each
//! other and against SIPp on 127.0.0.1: DTMF from Debian's RFC 2833
//! captures, audio both ways checked by what the speech recogniser makes of
//! the recordings, a REFER followed by the caller, a REFER declined, and
//! the answer-and-hang-up mode.

mod common;

use std::path::Path;
use std::time::Duration;

use common::agent::RunningAgent;
use switchboard::speech::text::word_errors;

const STEP: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> (String, String) {
    let entry = common::manifest()
        .into_iter()
        .find(|f| f.file == name)
        .unwrap_or_else(|| panic!("{name} is in the manifest"));
    (
        common::fixture_path(&entry).display().to_string(),
        entry.text,
    )
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
        "transcribe failed: {}",
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

/// Runs `switchboard call ARGS --json` and returns its report.
async fn call(args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("call")
        .args(args)
        .args(["--json", "--listen", "127.0.0.1:0"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), out)
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
async fn rfc2833_digits_from_sipp_are_reported_once_each_in_order() {
    let dir = common::temp_dir("run-dtmf");
    let agent = RunningAgent::start(&dir, &["--stay"]).await;
    let scenario = common::sipp_scenario("uac_dtmf.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &format!("127.0.0.1:{}", agent.port),
            "-m",
            "1",
        ],
    );
    let status = common::wait_exit(&mut sipp, Duration::from_secs(45)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}\nagent:\n{}",
        common::sipp_report(&dir),
        agent.log_text()
    );
    agent.wait_for_line("ended: the caller hung up", STEP).await;
    let log = agent.log_text();
    let digits: String = log
        .lines()
        .filter_map(|l| l.split_once(": DTMF ").map(|(_, d)| d.trim().to_string()))
        .collect();
    assert_eq!(digits, "15#", "the agent's log:\n{log}");
    assert!(agent.stop(STEP).await, "the agent exits cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hears_the_greeting_is_heard_and_follows_the_refer() {
    let dir = common::temp_dir("run-refer");
    let (greeting, greeting_text) = fixture("billing-01-piper.wav");
    let (caller_audio, caller_text) = fixture("support-01-piper.wav");
    // The transfer target: SIPp's built-in callee.
    let target_port = common::free_port();
    let target_dir = dir.join("target");
    std::fs::create_dir_all(&target_dir).unwrap();
    let mut target = common::spawn_sipp(&target_dir, target_port, &["-sn", "uas", "-m", "1"]);
    let target_uri = format!("sip:support@127.0.0.1:{target_port}");
    let recordings = dir.join("recordings");
    let agent = RunningAgent::start(
        &dir,
        &[
            "--play",
            &greeting,
            "--transfer-to",
            &target_uri,
            "--transfer-by",
            "refer",
            "--record-dir",
            recordings.to_str().unwrap(),
        ],
    )
    .await;
    let heard = dir.join("heard.wav");
    let report = call(&[
        &agent.uri("switchboard"),
        "--play",
        &caller_audio,
        "--record",
        heard.to_str().unwrap(),
        "--stay-after-transfer",
        "1",
    ])
    .await;
    assert_eq!(report["answered"], true, "{report}");
    assert_eq!(report["refer"]["target"], target_uri.as_str(), "{report}");
    assert_eq!(report["refer"]["followed"], true, "{report}");
    assert_eq!(report["refer"]["status"], 200, "{report}");
    assert_eq!(
        report["ended"], "we hung up on the transfer target",
        "{report}"
    );
    let status = common::wait_exit(&mut target, Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the transfer target (SIPp uas) failed ({status:?}):\n{}",
        common::sipp_report(&target_dir)
    );
    agent
        .wait_for_line(&format!("transferred to {target_uri} by REFER"), STEP)
        .await;

    // Audio arrived both ways: the caller heard the greeting, the agent
    // heard the caller, and each recognisably.
    let greeting_seconds = switchboard::audio::decode::read_file(Path::new(&greeting))
        .unwrap()
        .duration()
        .as_secs_f64();
    let sound = report["heard_sound_s"].as_f64().unwrap();
    assert!(
        sound > 0.6 * greeting_seconds,
        "the caller heard {sound:.2} s of sound for a {greeting_seconds:.2} s greeting: {report}"
    );
    let heard_text = transcribe(&heard);
    assert!(
        wer(&greeting_text, &heard_text) <= 0.25,
        "the caller heard {heard_text:?} for {greeting_text:?}"
    );
    let recorded: Vec<_> = std::fs::read_dir(&recordings)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(recorded.len(), 1, "one recording per call: {recorded:?}");
    let agent_heard = transcribe(&recorded[0]);
    assert!(
        wer(&caller_text, &agent_heard) <= 0.25,
        "the agent heard {agent_heard:?} for {caller_text:?}"
    );
    assert!(agent.stop(STEP).await, "the agent exits cleanly on SIGTERM");

    // The call record says where the call went.
    let out = common::switchboard(&[
        "calls",
        "--json",
        "--db",
        dir.join("calls.db").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let listed = common::stdout(&out);
    let record: serde_json::Value =
        serde_json::from_str(listed.trim()).unwrap_or_else(|e| panic!("{listed:?}: {e}"));
    assert_eq!(record["outcome"], "transferred", "{record}");
    assert_eq!(record["destination"], target_uri.as_str(), "{record}");
    let call_id = record["call_id"].as_str().unwrap().to_string();
    let out = common::switchboard(&[
        "calls",
        "--db",
        dir.join("calls.db").to_str().unwrap(),
        &call_id,
    ]);
    assert!(
        common::stdout(&out).contains(&format!("went to  {target_uri}")),
        "{}",
        common::stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_refer_fails_over_to_the_next_destination() {
    let dir = common::temp_dir("run-refer-declined");
    let agent = RunningAgent::start(
        &dir,
        &[
            "--transfer-to",
            "sip:billing@127.0.0.1:9",
            "--transfer-to",
            "sip:support@127.0.0.1:9",
            "--transfer-by",
            "refer",
        ],
    )
    .await;
    let report = call(&[&agent.uri("switchboard"), "--decline-refer"]).await;
    assert_eq!(report["answered"], true, "{report}");
    assert_eq!(report["refer"]["followed"], false, "{report}");
    // Both destinations were tried by REFER, then the agent hung up.
    agent
        .wait_for_line("REFER to sip:billing@127.0.0.1:9 failed", STEP)
        .await;
    agent
        .wait_for_line("REFER to sip:support@127.0.0.1:9 failed", STEP)
        .await;
    agent
        .wait_for_line("transfer failed (2 attempts", STEP)
        .await;
    assert_eq!(report["ended"], "the other side hung up (BYE)", "{report}");
    assert!(agent.stop(STEP).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_anything_to_play_each_call_is_answered_and_hung_up_at_once() {
    let dir = common::temp_dir("run-hangup");
    let metrics_port = common::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let events = dir.join("events.jsonl");
    let agent = RunningAgent::start(
        &dir,
        &[
            "--max-calls",
            "50",
            "--metrics",
            &metrics_addr,
            "--event-log",
            events.to_str().unwrap(),
        ],
    )
    .await;
    let scenario = common::root()
        .join("benches")
        .join("sipp")
        .join("uac_callee_hangs_up.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &format!("127.0.0.1:{}", agent.port),
            "-m",
            "200",
            "-r",
            "100",
        ],
    );
    let status = common::wait_exit(&mut sipp, Duration::from_secs(45)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}",
        common::sipp_report(&dir)
    );
    // The operator's view agrees: 200 calls, each hung up by the agent.
    let metrics = scrape(&metrics_addr).await;
    assert!(
        metrics.contains("switchboard_calls_total{outcome=\"agent_hung_up\"} 200"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_active_calls 0"), "{metrics}");
    assert!(agent.stop(STEP).await);
    // And the JSON event log: one object per line, every call's end in it.
    let text = std::fs::read_to_string(&events).expect("the event log");
    let mut ended = std::collections::HashSet::new();
    for line in text.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            event["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        let call = event["call"].as_str().expect("a call id");
        if event["event"]
            .as_str()
            .is_some_and(|e| e.starts_with("ended"))
        {
            ended.insert(call.to_string());
        }
    }
    assert_eq!(ended.len(), 200, "{}", &text[..text.len().min(2000)]);
}

/// GET /metrics.
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the metrics port answers");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: switchboard\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_public_address_is_in_the_contact_and_the_sdp() {
    let dir = common::temp_dir("call-public-address");
    let port = common::free_port();
    let scenario = common::sipp_scenario("uas_public_address.xml");
    let mut callee =
        common::spawn_sipp(&dir, port, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let report = call(&[
        &format!("sip:support@127.0.0.1:{port}"),
        "--public-address",
        "192.0.2.10:5099",
    ])
    .await;
    assert_eq!(report["answered"], false, "{report}");
    assert_eq!(report["failure"], "busy (486)", "{report}");
    let status = common::wait_exit(&mut callee, Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the callee saw another Contact or c= line ({status:?}):\n{}",
        common::sipp_report(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_to_a_new_port_moves_the_agents_rtp_there() {
    let dir = common::temp_dir("run-reinvite-move");
    let (greeting, _) = fixture("billing-01-piper.wav");
    let agent = RunningAgent::start(&dir, &["--play", &greeting, "--stay"]).await;
    let new_media = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let new_port = new_media.local_addr().unwrap().port();
    let scenario = common::sipp_scenario("reinvite_move.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &format!("127.0.0.1:{}", agent.port),
            "-m",
            "1",
            "-key",
            "newport",
            &new_port.to_string(),
        ],
    );
    // The greeting (4 s) is still playing when the media moves: its RTP,
    // PCMU with our SSRC and consecutive sequence numbers, must arrive here.
    let mut packets = Vec::new();
    let mut buf = [0u8; 2048];
    while packets.len() < 50 {
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), new_media.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} RTP packets at the new port within 5 s; agent:\n{}",
                    packets.len(),
                    agent.log_text()
                )
            })
            .unwrap();
        packets.push(buf[..len].to_vec());
    }
    let ssrc = |p: &Vec<u8>| u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    let sequence = |p: &Vec<u8>| u16::from_be_bytes([p[2], p[3]]);
    assert!(
        packets.iter().all(|p| p.len() == 172 && p[1] & 0x7f == 0),
        "PCMU, 20 ms each"
    );
    assert!(
        packets.iter().all(|p| ssrc(p) == ssrc(&packets[0])),
        "one SSRC"
    );
    assert!(
        packets
            .windows(2)
            .all(|w| sequence(&w[1]) == sequence(&w[0]).wrapping_add(1)),
        "consecutive sequence numbers"
    );
    let status = common::wait_exit(&mut sipp, Duration::from_secs(45)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}",
        common::sipp_report(&dir)
    );
    assert!(agent.stop(STEP).await);
}
