//! The SIP agent against SIPp on 127.0.0.1: calls in (answered, hung up by
//! the caller, cancelled, turned away), OPTIONS, and calls out (answered,
//! busy, transferred with REFER).
//!
//! Each test starts its own agent on a free port and its own SIPp, bounds
//! every wait, and checks SIPp's exit status (0: every call of its
//! scenario went as scripted) as well as what the agent reported.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use switchboard::sip::agent::{
    AgentConfig, AgentEvent, CallError, CallEvent, CancellationToken, EndReason, IncomingCall,
    SipAgent, TransferFailure, TransferOutcome,
};
use switchboard::sip::sdp;
use tokio::sync::mpsc;

/// Bound for any one thing to happen on loopback.
const STEP: Duration = Duration::from_secs(20);
/// Bound for a SIPp run to finish.
const SIPP_RUN: Duration = Duration::from_secs(45);

struct Agent {
    agent: SipAgent,
    events: mpsc::Receiver<AgentEvent>,
    cancel: CancellationToken,
}

impl Agent {
    async fn start(configure: impl FnOnce(&mut AgentConfig)) -> Agent {
        let mut config = AgentConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        configure(&mut config);
        let cancel = CancellationToken::new();
        let (agent, events) = SipAgent::start(config, cancel.clone())
            .await
            .expect("the agent starts on a free port");
        Agent {
            agent,
            events,
            cancel,
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.agent.local_addr().port())
    }

    async fn next_call(&mut self) -> IncomingCall {
        loop {
            let event = tokio::time::timeout(STEP, self.events.recv())
                .await
                .expect("an incoming call within the bound")
                .expect("the agent is running");
            if let AgentEvent::IncomingCall(call) = event {
                return call;
            }
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(STEP, self.agent.stopped())
            .await
            .expect("the agent stops within the bound");
    }
}

/// Our SDP answer to a caller's offer, on a made-up RTP port.
fn answer_to(offer: &str, rtp_port: u16) -> String {
    let offer = sdp::parse(offer.as_bytes()).expect("SIPp's offer parses");
    sdp::answer(&offer, "127.0.0.1".parse().unwrap(), rtp_port, 1, 1)
        .expect("SIPp offers PCMU")
        .sdp
}

fn our_offer(rtp_port: u16) -> String {
    sdp::offer(
        "127.0.0.1".parse().unwrap(),
        rtp_port,
        2,
        1,
        sdp::Direction::SendRecv,
    )
}

async fn sipp_succeeds(sipp: &mut tokio::process::Child, dir: &Path) {
    let status = common::wait_exit(sipp, SIPP_RUN).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed ({status:?}):\n{}",
        common::sipp_report(dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_are_answered_and_end_on_the_callers_bye() {
    let mut agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-uac");
    let calls = 5;
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sn",
            "uac",
            &agent.target(),
            "-m",
            &calls.to_string(),
            "-r",
            "5",
            "-l",
            "2",
            "-d",
            "300",
        ],
    );
    let mut answered = Vec::new();
    for i in 0..calls {
        let call = agent.next_call().await;
        let answer = answer_to(call.remote_sdp(), 40000 + 2 * i);
        answered.push(tokio::spawn(async move {
            let mut handle = call.answer(&answer).await.expect("the call answers");
            let mut events = Vec::new();
            while let Some(event) = tokio::time::timeout(STEP, handle.next_event())
                .await
                .expect("the call ends within the bound")
            {
                events.push(event);
            }
            events
        }));
    }
    sipp_succeeds(&mut sipp, &dir).await;
    for call in answered {
        let events = call.await.expect("the call task completes");
        assert_eq!(
            events,
            vec![CallEvent::Established, CallEvent::RemoteHangup]
        );
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_gets_200_with_allow_and_accept() {
    let agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-options");
    let scenario = common::sipp_scenario("options.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &agent.target(),
            "-m",
            "1",
        ],
    );
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_the_access_list_gets_403() {
    let agent = Agent::start(|config| {
        config.allowed_sources = Some(vec!["192.0.2.1".parse().unwrap()]);
    })
    .await;
    let dir = common::temp_dir("sipp-forbidden");
    let scenario = common::sipp_scenario("options_forbidden.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &agent.target(),
            "-m",
            "1",
        ],
    );
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_beyond_max_calls_gets_486() {
    let mut agent = Agent::start(|config| config.max_calls = 0).await;
    let dir = common::temp_dir("sipp-busy-agent");
    let scenario = common::sipp_scenario("invite_busy.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &agent.target(),
            "-m",
            "1",
        ],
    );
    sipp_succeeds(&mut sipp, &dir).await;
    assert!(
        agent.events.try_recv().is_err(),
        "a turned-away call never reaches the application"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_gets_487_and_reports_cancelled() {
    let mut agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-cancel");
    let scenario = common::sipp_scenario("cancel.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &agent.target(),
            "-m",
            "1",
        ],
    );
    let mut call = agent.next_call().await;
    call.ringing().await.expect("180 Ringing goes out");
    let event = tokio::time::timeout(STEP, call.next_event())
        .await
        .expect("the CANCEL arrives within the bound");
    assert_eq!(event, Some(CallEvent::Cancelled));
    let answer = answer_to(call.remote_sdp(), 40100);
    assert_eq!(
        call.answer(&answer).await.err(),
        Some(CallError::CallEnded),
        "a cancelled call cannot be answered"
    );
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_call_to_sipp_uas_is_answered_and_hung_up() {
    let agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-uas");
    let port = common::free_port();
    let mut sipp = common::spawn_sipp(&dir, port, &["-sn", "uas", "-m", "1"]);
    // If SIPp is not bound yet the INVITE is lost and retransmitted after
    // T1 (RFC 3261 17.1.1.2): no wait for it to start is needed.
    let call = tokio::time::timeout(
        STEP,
        agent.agent.call(
            &format!("sip:service@127.0.0.1:{port}"),
            &our_offer(40200),
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("answered within the bound")
    .expect("SIPp answers");
    let media = sdp::accept_answer(&sdp::parse(call.remote_sdp.as_bytes()).expect("SDP answer"))
        .expect("SIPp accepts PCMU");
    assert_eq!(media.codec, sdp::Codec::Pcmu);
    let mut handle = call.handle;
    handle.hangup().await.expect("BYE goes out");
    let event = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound");
    assert_eq!(event, Some(CallEvent::Ended(EndReason::LocalHangup)));
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_call_to_a_busy_callee_fails_with_busy() {
    let agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-uas-busy");
    let port = common::free_port();
    let scenario = common::sipp_scenario("uas_busy.xml");
    let mut sipp = common::spawn_sipp(&dir, port, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let result = tokio::time::timeout(
        STEP,
        agent.agent.call(
            &format!("sip:service@127.0.0.1:{port}"),
            &our_offer(40300),
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("a final response within the bound");
    assert_eq!(result.err(), Some(CallError::Busy { status: 486 }));
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

/// Calls a SIPp transferee, transfers it, and returns the outcome and the
/// call's events.
async fn transfer_to_sipp(final_status: &str, name: &str) -> (TransferOutcome, Vec<CallEvent>) {
    let agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir(name);
    let port = common::free_port();
    let scenario = common::sipp_scenario("transferee.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        port,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-m",
            "1",
            "-key",
            "final",
            final_status,
        ],
    );
    let call = tokio::time::timeout(
        STEP,
        agent.agent.call(
            &format!("sip:service@127.0.0.1:{port}"),
            &our_offer(40400),
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("answered within the bound")
    .expect("SIPp answers");
    let mut handle = call.handle;
    let outcome = tokio::time::timeout(STEP, handle.refer("sip:sales@127.0.0.1:5999"))
        .await
        .expect("the transfer settles within the bound")
        .expect("the REFER goes out");
    if outcome != TransferOutcome::Succeeded {
        // The call is ours again: hang it up.
        handle.hangup().await.expect("BYE goes out");
    }
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound")
    {
        events.push(event);
    }
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
    (outcome, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_reported_200_ends_our_leg() {
    let (outcome, events) = transfer_to_sipp("200 OK", "sipp-transfer-ok").await;
    assert_eq!(outcome, TransferOutcome::Succeeded);
    assert_eq!(
        events,
        vec![
            CallEvent::TransferProgress { status: 100 },
            CallEvent::TransferSucceeded,
            CallEvent::Ended(EndReason::Transferred),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_reported_486_gives_the_call_back() {
    let (outcome, events) = transfer_to_sipp("486 Busy Here", "sipp-transfer-busy").await;
    let failure = TransferFailure::TargetFailed { status: 486 };
    assert_eq!(outcome, TransferOutcome::Failed(failure.clone()));
    assert_eq!(
        events,
        vec![
            CallEvent::TransferProgress { status: 100 },
            CallEvent::TransferFailed(failure),
            CallEvent::Ended(EndReason::LocalHangup),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tcp_is_answered_and_ends_on_the_callers_bye() {
    let mut agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-uac-tcp");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sn",
            "uac",
            "-t",
            "t1",
            &agent.target(),
            "-m",
            "1",
            "-d",
            "200",
        ],
    );
    let call = agent.next_call().await;
    let answer = answer_to(call.remote_sdp(), 40700);
    let mut handle = call.answer(&answer).await.expect("the call answers");
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound")
    {
        events.push(event);
    }
    assert_eq!(
        events,
        vec![CallEvent::Established, CallEvent::RemoteHangup]
    );
    sipp_succeeds(&mut sipp, &dir).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_reinvite_is_answered_recvonly_and_reported() {
    let mut agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-reinvite");
    let scenario = common::sipp_scenario("reinvite_hold.xml");
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            &agent.target(),
            "-m",
            "1",
        ],
    );
    let call = agent.next_call().await;
    let answer = answer_to(call.remote_sdp(), 40800);
    let mut handle = call.answer(&answer).await.expect("the call answers");
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("the call ends within the bound")
    {
        events.push(event);
    }
    sipp_succeeds(&mut sipp, &dir).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], CallEvent::Established);
    let CallEvent::ReInvite { sdp: offer } = &events[1] else {
        panic!("expected the re-INVITE, got {events:?}");
    };
    let offer = sdp::parse(offer.as_bytes()).expect("the new offer parses");
    assert!(offer.is_hold(), "the caller put us on hold");
    assert_eq!(events[2], CallEvent::RemoteHangup);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_calls_in_progress() {
    let agent = Agent::start(|_| {}).await;
    let dir = common::temp_dir("sipp-uas-shutdown");
    let port = common::free_port();
    let mut sipp = common::spawn_sipp(&dir, port, &["-sn", "uas", "-m", "1"]);
    let call = tokio::time::timeout(
        STEP,
        agent.agent.call(
            &format!("sip:service@127.0.0.1:{port}"),
            &our_offer(40900),
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("answered within the bound")
    .expect("SIPp answers");
    let mut handle = call.handle;
    agent.cancel.cancel();
    tokio::time::timeout(STEP, agent.agent.stopped())
        .await
        .expect("the agent stops within the bound");
    assert_eq!(
        handle.next_event().await,
        Some(CallEvent::Ended(EndReason::LocalHangup))
    );
    assert_eq!(
        agent
            .agent
            .call(
                &format!("sip:service@127.0.0.1:{port}"),
                &our_offer(40902),
                "sip:switchboard@127.0.0.1",
            )
            .await
            .err(),
        Some(CallError::AgentStopped)
    );
    // SIPp's uas expects the BYE: it only succeeds if we sent it.
    sipp_succeeds(&mut sipp, &dir).await;
}
