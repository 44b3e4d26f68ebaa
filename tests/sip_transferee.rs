//! The SIP agent against SIPp on 127.0.0.1 in what a test caller needs:
//! being transferred by the other side (REFER with `accept_refer`, progress
//! reported in NOTIFY), a re-INVITE without SDP whose answer comes in the
//! ACK, and an incoming call nobody decides on, answered 480 after
//! `answer_timeout`.
//!
//! Each test starts its own agent on a free port and its own SIPp, bounds
//! every wait, and checks SIPp's exit status (0: every check of its
//! scenario passed) as well as what the agent reported.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use switchboard::sip::agent::{
    AgentConfig, AgentEvent, CallError, CallEvent, CallHandle, CancellationToken, EndReason,
    IncomingCall, SipAgent,
};
use switchboard::sip::sdp;
use tokio::sync::mpsc;

/// Bound for any one thing to happen on loopback.
const STEP: Duration = Duration::from_secs(20);
/// Bound for a SIPp run to finish.
const SIPP_RUN: Duration = Duration::from_secs(45);

async fn start_agent(
    configure: impl FnOnce(&mut AgentConfig),
) -> (SipAgent, mpsc::Receiver<AgentEvent>, CancellationToken) {
    let mut config = AgentConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    configure(&mut config);
    let cancel = CancellationToken::new();
    let (agent, events) = SipAgent::start(config, cancel.clone())
        .await
        .expect("the agent starts on a free port");
    (agent, events, cancel)
}

async fn stop_agent(agent: &SipAgent, cancel: &CancellationToken) {
    cancel.cancel();
    tokio::time::timeout(STEP, agent.stopped())
        .await
        .expect("the agent stops within the bound");
}

async fn next_call(events: &mut mpsc::Receiver<AgentEvent>) -> IncomingCall {
    loop {
        let event = tokio::time::timeout(STEP, events.recv())
            .await
            .expect("an incoming call within the bound")
            .expect("the agent is running");
        if let AgentEvent::IncomingCall(call) = event {
            return call;
        }
    }
}

async fn next_event(handle: &mut CallHandle) -> Option<CallEvent> {
    tokio::time::timeout(STEP, handle.next_event())
        .await
        .expect("a call event within the bound")
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
async fn a_refer_to_us_is_reported_and_followed_by_two_notifies() {
    let (agent, _events, cancel) = start_agent(|config| config.accept_refer = true).await;
    let dir = common::temp_dir("sipp-refer-sender");
    let port = common::free_port();
    let scenario = common::sipp_scenario("refer_sender.xml");
    let mut sipp = common::spawn_sipp(&dir, port, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let offer = sdp::offer(
        "127.0.0.1".parse().unwrap(),
        41000,
        3,
        1,
        sdp::Direction::SendRecv,
    );
    let call = tokio::time::timeout(
        STEP,
        agent.call(
            &format!("sip:service@127.0.0.1:{port}"),
            &offer,
            "sip:switchboard@127.0.0.1",
        ),
    )
    .await
    .expect("answered within the bound")
    .expect("SIPp answers");
    let mut handle = call.handle;
    assert_eq!(
        next_event(&mut handle).await,
        Some(CallEvent::Referred {
            // The URI's own parameter stays, the header's goes.
            target: "sip:carol@127.0.0.1:5999;transport=udp".to_string()
        })
    );
    handle
        .notify_transfer(100, "Trying")
        .await
        .expect("the first report goes out");
    handle
        .notify_transfer(200, "OK")
        .await
        .expect("the final report goes out");
    // SIPp hangs up only after it has checked both NOTIFYs.
    assert_eq!(next_event(&mut handle).await, Some(CallEvent::RemoteHangup));
    assert_eq!(next_event(&mut handle).await, None);
    sipp_succeeds(&mut sipp, &dir).await;
    stop_agent(&agent, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_without_sdp_gets_our_offer_and_reports_the_acks_answer() {
    let (agent, mut events, cancel) = start_agent(|_| {}).await;
    let dir = common::temp_dir("sipp-reinvite-no-sdp");
    let scenario = common::sipp_scenario("reinvite_no_sdp.xml");
    let target = format!("127.0.0.1:{}", agent.local_addr().port());
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &["-sf", scenario.to_str().unwrap(), &target, "-m", "1"],
    );
    let call = next_call(&mut events).await;
    let offer = sdp::parse(call.remote_sdp().as_bytes()).expect("SIPp's offer parses");
    let answer = sdp::answer(&offer, "127.0.0.1".parse().unwrap(), 41100, 1, 1)
        .expect("SIPp offers PCMU")
        .sdp;
    let mut handle = call.answer(&answer).await.expect("the call answers");
    let mut reported = Vec::new();
    while let Some(event) = next_event(&mut handle).await {
        reported.push(event);
    }
    sipp_succeeds(&mut sipp, &dir).await;
    assert_eq!(reported.len(), 3, "{reported:?}");
    assert_eq!(reported[0], CallEvent::Established);
    let CallEvent::ReInvite { sdp: from_ack } = &reported[1] else {
        panic!("expected the answer from the ACK, got {reported:?}");
    };
    assert!(from_ack.contains("s=answer-in-ack"), "{from_ack}");
    let media = sdp::accept_answer(&sdp::parse(from_ack.as_bytes()).expect("the answer parses"))
        .expect("SIPp's answer takes a codec we offered");
    assert_eq!(media.codec, sdp::Codec::Pcmu);
    assert_eq!(reported[2], CallEvent::RemoteHangup);
    stop_agent(&agent, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_left_undecided_is_answered_480_after_the_answer_timeout() {
    let (agent, mut events, cancel) =
        start_agent(|config| config.answer_timeout = Duration::from_millis(300)).await;
    let dir = common::temp_dir("sipp-unanswered");
    let scenario = common::sipp_scenario("unanswered.xml");
    let target = format!("127.0.0.1:{}", agent.local_addr().port());
    let mut sipp = common::spawn_sipp(
        &dir,
        common::free_port(),
        &["-sf", scenario.to_str().unwrap(), &target, "-m", "1"],
    );
    let mut call = next_call(&mut events).await;
    call.ringing().await.expect("180 Ringing goes out");
    let event = tokio::time::timeout(STEP, call.next_event())
        .await
        .expect("the answer timeout runs out within the bound");
    assert_eq!(event, Some(CallEvent::Ended(EndReason::Unanswered)));
    let answer = sdp::answer(
        &sdp::parse(call.remote_sdp().as_bytes()).expect("SIPp's offer parses"),
        "127.0.0.1".parse().unwrap(),
        41200,
        1,
        1,
    )
    .expect("SIPp offers PCMU")
    .sdp;
    assert_eq!(
        call.answer(&answer).await.err(),
        Some(CallError::CallEnded),
        "an unanswered call cannot be answered late"
    );
    sipp_succeeds(&mut sipp, &dir).await;
    stop_agent(&agent, &cancel).await;
}
