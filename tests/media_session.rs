//! The media session driver over real UDP sockets on 127.0.0.1: two
//! sessions talking to each other, or one session and a plain socket that
//! plays the peer so the test can read and forge the wire.
//!
//! The decisions themselves (pacing, latching, DTMF, hold) are tested in
//! virtual time next to the core in `src/media/session.rs`; these tests
//! check that the driver really moves them over the network. Every wait is
//! for an event or a packet, bounded by [`WAIT`]; none sleeps for things
//! to settle.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription};
use switchboard::audio::{SampleRate, Samples};
use switchboard::media::dtmf::DtmfError;
use switchboard::media::g711::Law;
use switchboard::media::rtp::{RtpPacket, FRAME_SAMPLES};
use switchboard::media::session::{MediaConfig, MediaError, MediaEvent, MediaSession, MediaStats};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The bound on every wait: far beyond what any step takes, so a failure
/// means the event never came rather than a slow machine.
const WAIT: Duration = Duration::from_secs(10);

/// One 20 ms frame of μ-law silence, as comfort silence sends it.
const SILENT_PAYLOAD: [u8; FRAME_SAMPLES] = [0xFF; FRAME_SAMPLES];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(remote: SocketAddr) -> MediaConfig {
    MediaConfig::new(LOCALHOST, remote, Law::MuLaw)
}

/// Awaits `future`, failing the test after [`WAIT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The first event `pick` accepts; the ones before it are handed to
/// `skipped`.
async fn wait_for_event<T>(
    events: &mut mpsc::Receiver<MediaEvent>,
    what: &str,
    mut pick: impl FnMut(&MediaEvent) -> Option<T>,
    mut skipped: impl FnMut(MediaEvent),
) -> T {
    within(what, async {
        loop {
            let event = events.recv().await.expect("the session is running");
            if let Some(found) = pick(&event) {
                return found;
            }
            skipped(event);
        }
    })
    .await
}

/// Polls the session's counters until `done` holds.
async fn stats_until(
    session: &MediaSession,
    what: &str,
    done: impl Fn(&MediaStats) -> bool,
) -> MediaStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = session.stats().await.expect("the session is running");
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(ms(10)).await;
    }
}

/// A sine of half full scale at 8 kHz.
fn tone(frequency: f64, duration: Duration) -> Samples {
    let count = duration.as_millis() as usize * 8;
    let data = (0..count)
        .map(|n| {
            let phase = std::f64::consts::TAU * frequency * n as f64 / 8_000.0;
            (0.5 * phase.sin()) as f32
        })
        .collect();
    Samples::new(SampleRate::TELEPHONE, data)
}

fn is_loud(event: &MediaEvent) -> bool {
    match event {
        MediaEvent::Audio(samples) => samples.rms_dbfs() > -20.0,
        _ => false,
    }
}

/// A PCMU packet whose every sample is `level`.
fn pcmu(ssrc: u32, sequence: u16, level: i16) -> Vec<u8> {
    RtpPacket {
        payload_type: 0,
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc,
        marker: sequence == 0,
        payload: vec![Law::MuLaw.encode(level); FRAME_SAMPLES],
    }
    .to_bytes()
}

/// A plain peer: RTP and RTCP sockets on an even port and the next.
async fn socket_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..100 {
        let rtp = UdpSocket::bind((LOCALHOST, 0)).await.expect("bind");
        let port = rtp.local_addr().expect("bound").port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((LOCALHOST, port + 1)).await {
            return (rtp, rtcp);
        }
    }
    panic!("no even port pair free on 127.0.0.1");
}

async fn receive(socket: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buffer = vec![0u8; 2_048];
    let (len, from) = within(what, socket.recv_from(&mut buffer))
        .await
        .expect("receive");
    buffer.truncate(len);
    (buffer, from)
}

async fn receive_rtp(socket: &UdpSocket) -> RtpPacket {
    let (datagram, _) = receive(socket, "an RTP packet").await;
    RtpPacket::parse(&datagram).expect("the session sends valid RTP")
}

/// Two sessions, each sending to the other.
async fn session_pair(
    cancel: &CancellationToken,
    adjust: impl Fn(MediaConfig) -> MediaConfig,
) -> (
    (MediaSession, mpsc::Receiver<MediaEvent>, MediaConfig),
    (MediaSession, mpsc::Receiver<MediaEvent>, MediaConfig),
) {
    // B starts with nowhere to send; it learns A's address below.
    let b_config = adjust(config("0.0.0.0:0".parse().expect("address")));
    let (b, b_events) = MediaSession::start(b_config.clone(), cancel.clone())
        .await
        .expect("B starts");
    let a_config = adjust(config(b.local_addr()));
    let (a, a_events) = MediaSession::start(a_config.clone(), cancel.clone())
        .await
        .expect("A starts");
    b.set_remote(a.local_addr()).expect("B running");
    ((a, a_events, a_config), (b, b_events, b_config))
}

#[tokio::test]
async fn a_tone_played_on_one_session_is_heard_on_the_other() {
    let cancel = CancellationToken::new();
    let ((a, mut a_events, _), (b, mut b_events, _)) = session_pair(&cancel, |c| c).await;
    assert_eq!(a.local_addr().port() % 2, 0, "RTP on an even port");
    assert_eq!(a.rtcp_addr().port(), a.local_addr().port() + 1);

    a.play(tone(1_000.0, ms(1_000))).expect("A running");
    let first = wait_for_event(
        &mut b_events,
        "the tone at B",
        |e| is_loud(e).then(|| e.clone()),
        drop,
    )
    .await;
    let mut frames = vec![first];
    within("the end of the tone at B", async {
        loop {
            let event = b_events.recv().await.expect("B running");
            if !matches!(event, MediaEvent::Audio(_)) {
                continue;
            }
            if !is_loud(&event) {
                return;
            }
            frames.push(event);
        }
    })
    .await;

    let audio: Vec<f32> = frames
        .iter()
        .flat_map(|event| match event {
            MediaEvent::Audio(samples) => {
                assert_eq!(samples.rate, SampleRate::TELEPHONE);
                assert_eq!(samples.data.len(), FRAME_SAMPLES);
                samples.data.clone()
            }
            _ => Vec::new(),
        })
        .collect();
    // 50 frames on a quiet loopback; a stall may conceal one or two.
    assert!(
        (48..=52).contains(&frames.len()),
        "{} frames of tone",
        frames.len()
    );
    let audio = Samples::new(SampleRate::TELEPHONE, audio);
    let at_tone = audio.tone_amplitude(1_000.0);
    assert!((0.35..0.6).contains(&at_tone), "1 kHz at {at_tone}");
    let off_tone = audio.tone_amplitude(2_500.0);
    assert!(off_tone < at_tone / 20.0, "2.5 kHz at {off_tone}");

    wait_for_event(
        &mut a_events,
        "PlaybackFinished at A",
        |e| (*e == MediaEvent::PlaybackFinished).then_some(()),
        drop,
    )
    .await;
    let stats = b.stats().await.expect("B running");
    assert!(stats.packets_received >= 50, "{stats:?}");
    assert_eq!(stats.latched, Some(a.local_addr()));
    cancel.cancel();
}

#[tokio::test]
async fn packets_leave_every_20_ms_with_consecutive_numbers() {
    let (peer, _peer_rtcp) = socket_pair().await;
    let config = config(peer.local_addr().expect("bound"));
    let ssrc = config.ssrc;
    let cancel = CancellationToken::new();
    let (session, _events) = MediaSession::start(config, cancel.clone())
        .await
        .expect("starts");

    let mut packets = Vec::new();
    let mut first_at = None;
    for _ in 0..51 {
        packets.push(receive_rtp(&peer).await);
        first_at.get_or_insert_with(Instant::now);
    }
    let elapsed = first_at.expect("received").elapsed();

    for pair in packets.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
    }
    assert!(packets[0].marker, "the stream opens a talkspurt");
    assert!(packets[1..].iter().all(|packet| !packet.marker));
    assert!(packets.iter().all(|packet| packet.ssrc == ssrc
        && packet.payload_type == 0
        && packet.payload == SILENT_PAYLOAD));
    // Paced, not sent as fast as possible: packet 50 is due a second after
    // packet 0. A loose ceiling only, since this is no benchmark.
    assert!(
        elapsed >= ms(900) && elapsed < ms(5_000),
        "50 intervals took {elapsed:?}"
    );
    let stats = session.close().await.expect("closes");
    assert!(stats.packets_sent >= 51);
    cancel.cancel();
}

#[tokio::test]
async fn rtp_latches_onto_the_port_the_peer_sends_from() {
    // The SDP names `signalled`; the peer sends from `actual`.
    let (signalled, _) = socket_pair().await;
    let (actual, _) = socket_pair().await;
    let (intruder, _) = socket_pair().await;
    let signalled_addr = signalled.local_addr().expect("bound");
    let actual_addr = actual.local_addr().expect("bound");
    let cancel = CancellationToken::new();
    let (session, mut events) = MediaSession::start(config(signalled_addr), cancel.clone())
        .await
        .expect("starts");
    let target = session.local_addr();

    receive_rtp(&signalled).await;
    for sequence in 0..10 {
        actual
            .send_to(&pcmu(0x1111, sequence, 0), target)
            .await
            .expect("send");
    }
    let latched = wait_for_event(
        &mut events,
        "the latch",
        |e| match e {
            MediaEvent::Latched(addr) => Some(*addr),
            _ => None,
        },
        drop,
    )
    .await;
    assert_eq!(latched, actual_addr);

    // Everything after the switch goes to the actual source: packets that
    // reached the SDP address all came before the first one here.
    let switched = receive_rtp(&actual).await.sequence;
    let mut buffer = [0u8; 2_048];
    while let Ok(len) = signalled.try_recv(&mut buffer) {
        let packet = RtpPacket::parse(&buffer[..len]).expect("valid");
        assert!((switched.wrapping_sub(packet.sequence) as i16) > 0);
    }

    // A third party sending loud audio is ignored.
    for sequence in 0..20 {
        intruder
            .send_to(&pcmu(0x2222, sequence, 20_000), target)
            .await
            .expect("send");
    }
    let stats = stats_until(&session, "the intruder's packets", |s| {
        s.packets_received + s.foreign >= 30
    })
    .await;
    assert_eq!(stats.packets_received, 10, "{stats:?}");
    assert_eq!(stats.foreign, 20);
    assert_eq!(stats.latched, Some(actual_addr));
    let next = receive_rtp(&actual).await;
    assert!((next.sequence.wrapping_sub(switched) as i16) > 0);
    assert!(
        intruder.try_recv(&mut buffer).is_err(),
        "nothing is sent to the intruder"
    );
    while let Ok(event) = events.try_recv() {
        assert!(!is_loud(&event), "the intruder's audio was played");
        assert!(!matches!(event, MediaEvent::Latched(_)), "latched twice");
    }
    cancel.cancel();
}

#[tokio::test]
async fn digits_arrive_once_each_in_order() {
    let cancel = CancellationToken::new();
    let ((a, _a_events, _), (_b, mut b_events, _)) = session_pair(&cancel, |c| c).await;

    assert!(matches!(
        a.send_dtmf("1x"),
        Err(MediaError::Dtmf(DtmfError::NotADigit('x')))
    ));
    a.send_dtmf("12#").expect("A running");
    // Audio queued behind the digits marks the end of them on the wire.
    a.play(tone(1_000.0, ms(200))).expect("A running");
    let mut digits = Vec::new();
    wait_for_event(
        &mut b_events,
        "the tone after the digits",
        |e| is_loud(e).then_some(()),
        |e| {
            if let MediaEvent::Dtmf(digit) = e {
                digits.push(digit);
            }
        },
    )
    .await;
    assert_eq!(digits, ['1', '2', '#']);
    cancel.cancel();
}

#[tokio::test]
async fn requests_the_session_cannot_serve_are_refused() {
    let cancel = CancellationToken::new();
    let mut no_dtmf = config("127.0.0.1:9".parse().expect("address"));
    no_dtmf.dtmf_payload_type = None;
    let (session, _events) = MediaSession::start(no_dtmf, cancel.clone())
        .await
        .expect("starts");
    assert!(matches!(
        session.send_dtmf("1"),
        Err(MediaError::DtmfNotNegotiated)
    ));
    let wideband = Samples::new(SampleRate::SPEECH_RECOGNITION, vec![0.0; 320]);
    assert!(matches!(
        session.play(wideband),
        Err(MediaError::SampleRate(SampleRate(16_000)))
    ));

    // 192.0.2.1 (TEST-NET-1) is no address of this host.
    let elsewhere = MediaConfig {
        local_ip: "192.0.2.1".parse().expect("ip"),
        ..config("127.0.0.1:9".parse().expect("address"))
    };
    assert!(matches!(
        MediaSession::start(elsewhere, cancel.clone()).await,
        Err(MediaError::Bind { .. })
    ));
    let odd_only = MediaConfig {
        port_range: 20_001..=20_001,
        ..config("127.0.0.1:9".parse().expect("address"))
    };
    assert!(matches!(
        MediaSession::start(odd_only, cancel.clone()).await,
        Err(MediaError::EmptyPortRange { .. })
    ));
    cancel.cancel();
}

#[tokio::test]
async fn barge_in_drops_the_queue_and_garbage_does_not_break_the_session() {
    let (peer, peer_rtcp) = socket_pair().await;
    let cancel = CancellationToken::new();
    let (session, mut events) =
        MediaSession::start(config(peer.local_addr().expect("bound")), cancel.clone())
            .await
            .expect("starts");

    session.play(tone(1_000.0, ms(5_000))).expect("running");
    within("the tone on the wire", async {
        while receive_rtp(&peer).await.payload == SILENT_PAYLOAD {}
    })
    .await;
    let dropped = session.stop_playback().await.expect("running");
    assert!(
        dropped > ms(3_000) && dropped < ms(5_000),
        "dropped {dropped:?}"
    );
    // Silence follows within a frame or two, and the stream goes on.
    let mut silent = within("comfort silence", async {
        loop {
            let packet = receive_rtp(&peer).await;
            if packet.payload == SILENT_PAYLOAD {
                return packet;
            }
        }
    })
    .await;
    for _ in 0..10 {
        let next = receive_rtp(&peer).await;
        assert_eq!(next.payload, SILENT_PAYLOAD);
        assert_eq!(next.sequence, silent.sequence.wrapping_add(1));
        silent = next;
    }
    while let Ok(event) = events.try_recv() {
        assert_ne!(event, MediaEvent::PlaybackFinished, "barge-in is no finish");
    }

    let mut bad_rtp: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        vec![0x80; 11],
        {
            let mut version_one = pcmu(7, 1, 0);
            version_one[0] = 0x40;
            version_one
        },
        {
            let mut csrcs_missing = pcmu(7, 1, 0)[..12].to_vec();
            csrcs_missing[0] = 0x8F;
            csrcs_missing
        },
        {
            let mut extension_overrun = pcmu(7, 1, 0)[..12].to_vec();
            extension_overrun[0] = 0x90;
            extension_overrun.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF]);
            extension_overrun
        },
        {
            let mut zero_padding = pcmu(7, 1, 0);
            zero_padding[0] |= 0x20;
            *zero_padding.last_mut().expect("payload") = 0;
            zero_padding
        },
        vec![0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0],
    ];
    bad_rtp.push((0..=255).collect());
    for datagram in &bad_rtp {
        assert!(RtpPacket::parse(datagram).is_err(), "{datagram:?} parses");
    }
    let bad_rtcp: [&[u8]; 5] = [
        &[],
        &[0x80, 201],
        &[0x40, 201, 0, 1, 0, 0, 0, 0],
        &[0x80, 201, 0, 7, 0, 0, 0, 0],
        &[0x81, 201, 0, 1, 0, 0, 0, 1],
    ];
    for datagram in &bad_rtp {
        peer.send_to(datagram, session.local_addr())
            .await
            .expect("send");
    }
    for datagram in bad_rtcp {
        peer_rtcp
            .send_to(datagram, session.rtcp_addr())
            .await
            .expect("send");
    }
    for sequence in 0..10 {
        peer.send_to(&pcmu(0x3333, sequence, 12_000), session.local_addr())
            .await
            .expect("send");
    }
    wait_for_event(
        &mut events,
        "the peer's audio after the garbage",
        |e| is_loud(e).then_some(()),
        drop,
    )
    .await;
    let expected = (bad_rtp.len() + bad_rtcp.len()) as u64;
    let stats = stats_until(&session, "the garbage counted", |s| s.malformed >= expected).await;
    assert_eq!(stats.malformed, expected, "{stats:?}");
    assert_eq!(stats.packets_received, 10);
    receive_rtp(&peer).await;
    cancel.cancel();
}

#[tokio::test]
async fn compound_reports_reach_the_peer_and_come_back() {
    let short = |config: MediaConfig| MediaConfig {
        rtcp_interval: ms(200),
        ..config
    };

    // What goes on the wire, read by a plain peer.
    let (peer, peer_rtcp) = socket_pair().await;
    let config = short(config(peer.local_addr().expect("bound")));
    let cancel = CancellationToken::new();
    let (session, _events) = MediaSession::start(config.clone(), cancel.clone())
        .await
        .expect("starts");
    let (datagram, from) = receive(&peer_rtcp, "an RTCP report").await;
    assert_eq!(from, session.rtcp_addr());
    let packets = rtcp::packet::unmarshal(&mut &datagram[..]).expect("valid compound RTCP");
    assert_eq!(packets.len(), 2, "a report and the SDES");
    let report = packets[0]
        .as_any()
        .downcast_ref::<SenderReport>()
        .expect("a sender report: the session sends comfort silence");
    assert_eq!(report.ssrc, config.ssrc);
    assert!(report.packet_count > 0);
    let description = packets[1]
        .as_any()
        .downcast_ref::<SourceDescription>()
        .expect("SDES");
    let item = &description.chunks[0].items[0];
    assert_eq!(description.chunks[0].source, config.ssrc);
    assert_eq!(item.sdes_type, SdesType::SdesCname);
    assert_eq!(&item.text[..], config.cname.as_bytes());

    // Between two sessions: each reads the other's reports.
    let ((a, _a_events, _), (_b, _b_events, b_config)) = session_pair(&cancel, short).await;
    let stats = stats_until(&a, "B's report on A's stream", |s| {
        s.remote_report
            .is_some_and(|report| report.round_trip.is_some())
    })
    .await;
    let remote = stats.remote_report.expect("checked");
    assert_eq!(remote.reporter, b_config.ssrc);
    assert!(remote.round_trip.expect("checked") < ms(1_000));
    assert!(stats.rtcp_received > 0 && stats.rtcp_sent > 0);
    cancel.cancel();
}

#[tokio::test]
async fn cancelling_ends_the_task_and_frees_the_ports() {
    let cancel = CancellationToken::new();
    let (session, mut events) = MediaSession::start(
        config("127.0.0.1:9".parse().expect("address")),
        cancel.clone(),
    )
    .await
    .expect("starts");
    let (rtp_addr, rtcp_addr) = (session.local_addr(), session.rtcp_addr());
    cancel.cancel();
    // The task drops the event sender as it ends.
    within("the end of the task", async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(session.is_closed());
    assert!(matches!(
        session.play(tone(1_000.0, ms(20))),
        Err(MediaError::Closed)
    ));
    assert!(matches!(session.stats().await, Err(MediaError::Closed)));
    session.close().await.expect("the task ended cleanly");
    UdpSocket::bind(rtp_addr)
        .await
        .expect("RTP port free again");
    UdpSocket::bind(rtcp_addr)
        .await
        .expect("RTCP port free again");
}
