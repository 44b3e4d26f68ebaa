//! Registration (RFC 3261 10) against Kamailio on 127.0.0.1, configured as
//! a PBX that challenges REGISTER with digest, qop=auth and nonce counting
//! (`tests/peers/kamailio-registrar.cfg`).
//!
//! Each test starts its own Kamailio on a free port, as `nobody` when run
//! as root, and stops it by PID.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::sip::agent::{
    Account, AgentConfig, AgentEvent, CallEvent, CancellationToken, EndReason, RegistrationFailure,
    SipAgent,
};
use switchboard::sip::sdp;
use tokio::sync::mpsc;

/// Bound for any one thing to happen on loopback.
const STEP: Duration = Duration::from_secs(20);

fn account(kamailio_port: u16, password: &str, expires: u32) -> Account {
    Account {
        registrar: format!("sip:127.0.0.1:{kamailio_port}"),
        id: "sip:switchboard@127.0.0.1".to_string(),
        username: "switchboard".to_string(),
        password: password.to_string(),
        outbound_proxy: None,
        expires,
    }
}

/// Kamailio on `port`, relaying calls for `uas@` to `uas_port`,
/// challenging with qop=auth.
fn pbx(dir: &std::path::Path, port: u16, uas_port: u16) -> common::Kamailio {
    pbx_with(dir, port, uas_port, true)
}

fn pbx_with(dir: &std::path::Path, port: u16, uas_port: u16, qop: bool) -> common::Kamailio {
    common::spawn_kamailio(
        dir,
        "kamailio-registrar.cfg",
        &[
            ("@PORT@", port.to_string()),
            ("@UAS_PORT@", uas_port.to_string()),
            ("@CHALLENGE_FLAGS@", if qop { "1" } else { "0" }.to_string()),
        ],
    )
}

async fn start(account: Account) -> (SipAgent, mpsc::Receiver<AgentEvent>, CancellationToken) {
    let mut config = AgentConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.account = Some(account);
    let cancel = CancellationToken::new();
    let (agent, events) = SipAgent::start(config, cancel.clone())
        .await
        .expect("the agent starts");
    (agent, events, cancel)
}

async fn next_event(events: &mut mpsc::Receiver<AgentEvent>) -> AgentEvent {
    tokio::time::timeout(STEP, events.recv())
        .await
        .expect("an agent event within the bound")
        .expect("the agent's event channel is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_refreshes_takes_a_call_and_unregisters() {
    let dir = common::temp_dir("kamailio-register");
    let pbx_port = common::free_port();
    let kamailio = pbx(&dir, pbx_port, 9);
    // Kamailio may still be starting: the REGISTER is retransmitted over
    // UDP (RFC 3261 17.1.2.2 Timer E) until it answers.
    let (agent, mut events, cancel) = start(account(pbx_port, "s3cret", 2)).await;

    // Registered, then refreshed at half the 2 s lifetime.
    for _ in 0..2 {
        match next_event(&mut events).await {
            AgentEvent::Registered { expires } => assert_eq!(expires, 2),
            other => panic!(
                "expected Registered, got {other:?}\n{}",
                common::sipp_report(&dir)
            ),
        }
    }

    // A call to the extension through the PBX reaches the agent at the
    // Contact it registered.
    let sipp_dir = common::temp_dir("kamailio-register-sipp");
    let mut sipp = common::spawn_sipp(
        &sipp_dir,
        common::free_port(),
        &[
            "-sn",
            "uac",
            &format!("127.0.0.1:{pbx_port}"),
            "-s",
            "switchboard",
            "-m",
            "1",
            "-d",
            "200",
        ],
    );
    let call = loop {
        match next_event(&mut events).await {
            AgentEvent::IncomingCall(call) => break call,
            AgentEvent::Registered { .. } => continue,
            other => panic!("expected the call, got {other:?}"),
        }
    };
    let offer = sdp::parse(call.remote_sdp().as_bytes()).expect("SIPp's offer parses");
    let answer = sdp::answer(&offer, "127.0.0.1".parse().unwrap(), 40500, 1, 1)
        .expect("PCMU offered")
        .sdp;
    let mut handle = call.answer(&answer).await.expect("the call answers");
    let mut call_events = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound")
    {
        call_events.push(event);
    }
    assert_eq!(
        call_events,
        vec![CallEvent::Established, CallEvent::RemoteHangup]
    );
    let status = common::wait_exit(&mut sipp, STEP).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}",
        common::sipp_report(&sipp_dir)
    );

    // Shutdown removes the binding.
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    let mut unregistered = false;
    while let Ok(event) = events.try_recv() {
        unregistered |= matches!(event, AgentEvent::Unregistered);
    }
    assert!(unregistered, "the unREGISTER was answered 200");
    kamailio.stop(Duration::from_secs(10)).await;

    // Refreshes answered the first nonce again with a growing nonce count
    // (RFC 2617 3.2.2), which Kamailio checks (auth nonce_count).
    let log = std::fs::read_to_string(dir.join("kamailio.stderr")).expect("Kamailio's log");
    assert!(
        log.contains("accepted: Digest") && log.contains("nc=00000002"),
        "no refresh with nc=00000002 in Kamailio's log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_and_retried() {
    let dir = common::temp_dir("kamailio-bad-password");
    let pbx_port = common::free_port();
    let kamailio = pbx(&dir, pbx_port, 9);
    let (agent, mut events, cancel) = start(account(pbx_port, "wrong", 60)).await;
    // Two failures: the first attempt, then the retry after the 1 s backoff.
    for _ in 0..2 {
        match next_event(&mut events).await {
            AgentEvent::RegistrationFailed {
                reason: RegistrationFailure::AuthenticationFailed { status },
            } => assert_eq!(status, 401),
            other => panic!("expected an authentication failure, got {other:?}"),
        }
    }
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    kamailio.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_challenged_by_the_proxy_is_answered_and_goes_through() {
    let dir = common::temp_dir("kamailio-invite-auth");
    let pbx_port = common::free_port();
    let uas_port = common::free_port();
    let kamailio = pbx(&dir, pbx_port, uas_port);
    let sipp_dir = common::temp_dir("kamailio-invite-auth-sipp");
    let scenario = common::sipp_scenario("uas_record_route.xml");
    let mut sipp = common::spawn_sipp(
        &sipp_dir,
        uas_port,
        &["-sf", scenario.to_str().unwrap(), "-m", "1"],
    );
    let (agent, _events, cancel) = start(account(pbx_port, "s3cret", 60)).await;

    // If Kamailio or SIPp is not up yet, the INVITE is retransmitted (RFC
    // 3261 17.1.1.2 Timer A).
    let offer = sdp::offer(
        "127.0.0.1".parse().unwrap(),
        40600,
        3,
        1,
        sdp::Direction::SendRecv,
    );
    let call = tokio::time::timeout(
        STEP,
        agent.call(
            &format!("sip:uas@127.0.0.1:{pbx_port}"),
            &offer,
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("answered within the bound")
    .expect("the proxy lets the authenticated INVITE through");
    let mut handle = call.handle;
    // ACK and BYE follow the Record-Route through Kamailio, and so does
    // the 200 for the BYE: hangup returns once it has arrived. Kamailio's
    // worker processes forward two datagrams sent within microseconds of
    // each other in either order, and SIPp's scenario fails a BYE that
    // overtakes the ACK; no caller hangs up that fast, so wait a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), handle.hangup())
        .await
        .expect("the BYE is answered within 5 s")
        .expect("BYE goes out");
    let status = common::wait_exit(&mut sipp, STEP).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}",
        common::sipp_report(&sipp_dir)
    );
    let ended = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound");
    assert_eq!(ended, Some(CallEvent::Ended(EndReason::LocalHangup)));

    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    kamailio.stop(Duration::from_secs(10)).await;
    let log = std::fs::read_to_string(dir.join("kamailio.stderr")).expect("Kamailio's log");
    assert!(
        log.contains("INVITE from switchboard challenged")
            && log.contains("INVITE from switchboard accepted: Digest"),
        "the INVITE was not challenged and then accepted:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_without_qop_through_an_outbound_proxy() {
    let dir = common::temp_dir("kamailio-no-qop");
    let pbx_port = common::free_port();
    let kamailio = pbx_with(&dir, pbx_port, 9, false);
    // The registrar's URI names no port, so only the outbound proxy setting
    // gets the REGISTER to Kamailio (RFC 3261 8.1.2).
    let mut account = account(pbx_port, "s3cret", 60);
    account.registrar = "sip:127.0.0.1".to_string();
    account.outbound_proxy = Some(format!("sip:127.0.0.1:{pbx_port};lr"));
    let (agent, mut events, cancel) = start(account).await;
    match next_event(&mut events).await {
        AgentEvent::Registered { expires } => assert_eq!(expires, 60),
        other => panic!("expected Registered, got {other:?}"),
    }
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    kamailio.stop(Duration::from_secs(10)).await;
    let log = std::fs::read_to_string(dir.join("kamailio.stderr")).expect("Kamailio's log");
    let accepted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("accepted: Digest"))
        .collect();
    assert!(
        !accepted.is_empty(),
        "no accepted REGISTER in Kamailio's log:\n{log}"
    );
    for line in accepted {
        // Without qop in the challenge the answer has neither qop nor nc
        // (RFC 2617 3.2.2).
        assert!(
            !line.contains("qop=") && !line.contains("nc="),
            "an answer to a challenge without qop carried qop or nc: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_407_challenge_to_register_is_answered_and_shutdown_unregisters() {
    let dir = common::temp_dir("sipp-registrar-407");
    let port = common::free_port();
    let scenario = common::sipp_scenario("registrar_407.xml");
    let mut sipp = common::spawn_sipp(&dir, port, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let (agent, mut events, cancel) = start(account(port, "s3cret", 300)).await;
    match next_event(&mut events).await {
        AgentEvent::Registered { expires } => assert_eq!(expires, 30),
        other => panic!(
            "expected Registered, got {other:?}\n{}",
            common::sipp_report(&dir)
        ),
    }
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    let status = common::wait_exit(&mut sipp, STEP).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the registrar (SIPp) failed ({status:?}):\n{}",
        common::sipp_report(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_pbx_restarts_the_agent_registers_again() {
    let dir = common::temp_dir("kamailio-restart");
    let pbx_port = common::free_port();
    let kamailio = pbx(&dir, pbx_port, 9);
    // Over TCP, so the retries after the restart open a new connection.
    let mut account = account(pbx_port, "s3cret", 2);
    account.registrar = format!("sip:127.0.0.1:{pbx_port};transport=tcp");
    let (agent, mut events, cancel) = start(account).await;
    match next_event(&mut events).await {
        AgentEvent::Registered { .. } => {}
        other => panic!("expected Registered, got {other:?}"),
    }
    kamailio.stop(Duration::from_secs(10)).await;
    // The refresh fails while the PBX is down. rsipstack does not turn a
    // dead TCP connection into an immediate transport error (RFC 3261
    // 17.1.4), so this takes the transaction timeout (64*T1 = 32 s).
    loop {
        let event = tokio::time::timeout(Duration::from_secs(45), events.recv())
            .await
            .expect("a failed refresh within the transaction timeout")
            .expect("the agent is running");
        match event {
            AgentEvent::RegistrationFailed { .. } => break,
            AgentEvent::Registered { .. } => continue,
            other => panic!("expected a failed refresh, got {other:?}"),
        }
    }
    // ...and once it is back (same port, empty location table), the
    // agent's retry registers again.
    let restarted_dir = dir.join("restarted");
    std::fs::create_dir_all(&restarted_dir).unwrap();
    let kamailio = pbx(&restarted_dir, pbx_port, 9);
    let registered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(AgentEvent::Registered { .. }) => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(registered, Ok(true), "registered again after the restart");
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
    kamailio.stop(Duration::from_secs(10)).await;
}
