//! The 49 RFC 4475 torture messages sent to a running agent, over UDP and
//! over TCP, each with the handling a user agent server should give it;
//! after each transport's run the agent still answers OPTIONS 200 and takes
//! a SIPp call over that transport.
//!
//! The agent runs in a child process of this test binary (the ignored test
//! `agent_process`, started with [`AGENT_PROCESS`] set) so that its standard
//! error, where every rejection leaves one line, can be read: each message
//! is sent from its own socket, and the line the transport's screen writes
//! names that socket's address. The child declines every call (603) except
//! SIPp's, which it answers.
//!
//! Where responses go: every message's top Via names some other host
//! (example.com, 192.0.2.x, a TCP transport on a UDP datagram). The agent
//! adds `received` and `rport` for the address a request came from (RFC
//! 3261 18.2.1, RFC 3581 4) and answers there, or on the connection it came
//! on (RFC 3261 18.2.2), so every response comes back to the sender; no
//! message has a Via `maddr` that would send it elsewhere.
//!
//! Each exchange ends with a sentinel OPTIONS from the same socket or on
//! the same connection: messages from one sender are screened in order, so
//! once the sentinel's 200 is in, a message that got no response got none.

mod common;

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use switchboard::sip::agent::{AgentConfig, AgentEvent, CancellationToken, IncomingCall, SipAgent};
use switchboard::sip::sdp;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

/// Set in the environment of the child process that hosts the agent.
const AGENT_PROCESS: &str = "SWITCHBOARD_RFC4475_LIVE_AGENT";
/// The child's first line on standard output, followed by its port.
const LISTENING: &str = "rfc4475-live agent listening on port";
/// Bound for any one exchange on loopback.
const STEP: Duration = Duration::from_secs(10);
/// Bound for a SIPp run to finish.
const SIPP_RUN: Duration = Duration::from_secs(45);
/// The child stops by itself after this, whatever happens to the parent.
const AGENT_LIFETIME: Duration = Duration::from_secs(300);

/// How the agent should handle one message on one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// These final responses (provisional ones aside, in any order: each
    /// is its own transaction); the connection stays usable.
    Answered(&'static [u16]),
    /// No response.
    Silent,
    /// TCP: these final responses, then the agent closes the connection:
    /// the stream cannot be framed past this point (RFC 3261 18.3).
    AnsweredThenClosed(&'static [u16]),
    /// TCP: the message is unfinished until the sender closes its side
    /// (its Content-Length runs past its end, or no empty line ends its
    /// header section); then it is answered as it stands.
    AnsweredAtEnd(u16),
}

/// A log line a message leaves on the agent's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    /// A line from the transport's screen naming the sender's address and
    /// containing this. The screen's lines for a sender are exactly the
    /// `Screen` entries, in order.
    Screen(&'static str),
    /// A line from the stack's dispatcher containing this; it names no
    /// port, so it is only looked for.
    Stack(&'static str),
}

use Handling::{Answered, AnsweredAtEnd, AnsweredThenClosed, Silent};
use Logged::{Screen, Stack};

#[derive(Debug, Clone, Copy)]
struct Expect {
    handling: Handling,
    logged: &'static [Logged],
}

const fn on(handling: Handling, logged: &'static [Logged]) -> Expect {
    Expect { handling, logged }
}

/// File, expected over UDP, expected over TCP, why.
struct Row {
    stem: &'static str,
    udp: Expect,
    tcp: Expect,
    why: &'static str,
}

const fn both(stem: &'static str, expect: Expect, why: &'static str) -> Row {
    Row {
        stem,
        udp: expect,
        tcp: expect,
        why,
    }
}

/// The screen's answer with `status`, and its line.
const fn refused(status: &'static [u16], line: &'static [Logged]) -> Expect {
    on(Answered(status), line)
}

const BAD_REQUEST: Expect = refused(&[400], &[Screen("answered 400: ")]);
const NOT_REGISTRAR: Expect = on(
    Answered(&[405]),
    &[Stack("REGISTER from 127.0.0.1 answered 405: ")],
);
const OPTIONS_OK: Expect = on(Answered(&[200]), &[]);
const DECLINED: Expect = on(Answered(&[603]), &[]);
const STRAY_RESPONSE: Expect = on(Silent, &[]);
const BAD_RESPONSE: Expect = on(Silent, &[Screen("dropped: malformed response")]);

const EXPECTED: &[Row] = &[
    // 3.1.1 Valid messages.
    both(
        "wsinv",
        on(Answered(&[481]), &[Stack("INVITE from 127.0.0.1 answered 481: ")]),
        "INVITE with a To tag (;  tag = ..., SWS allowed): a dialog we do not have (RFC 3261 12.2.2)",
    ),
    both("intmeth", refused(&[501], &[Screen("answered 501: unknown method")]), "unknown method (RFC 3261 8.2.1)"),
    both("esc01", DECLINED, "INVITE reaches the application, which declines it"),
    both("escnull", NOT_REGISTRAR, "REGISTER: we are not a registrar"),
    both("esc02", refused(&[501], &[Screen("answered 501: unknown method")]), "RE%47IST%45R is an unknown method, not REGISTER"),
    both("lwsdisp", OPTIONS_OK, "OPTIONS"),
    both("longreq", DECLINED, "INVITE reaches the application"),
    Row {
        stem: "dblreq",
        udp: NOT_REGISTRAR,
        tcp: on(
            AnsweredThenClosed(&[400, 405]),
            &[
                Stack("REGISTER from 127.0.0.1 answered 405: "),
                Stack("INVITE answered 400: no dialog can be made"),
                Screen("dropped, no 400 can be sent: no Content-Length"),
            ],
        ),
        why: "REGISTER; in a datagram the INVITE after it is ignored; on a stream it is the next message \
              (no Contact: 400), and its 5 octets beyond Content-Length start one with no Content-Length",
    },
    both("semiuri", OPTIONS_OK, "OPTIONS"),
    both("transports", OPTIONS_OK, "OPTIONS; unknown transports in lower Vias"),
    both(
        "mpart01",
        on(Answered(&[405]), &[Stack("MESSAGE from 127.0.0.1 answered 405: ")]),
        "MESSAGE is not supported",
    ),
    both("unreason", STRAY_RESPONSE, "a response to no request of ours"),
    both("noreason", STRAY_RESPONSE, "a response to no request of ours"),
    // 3.1.2 Invalid messages.
    both("badinv01", BAD_REQUEST, "extraneous separators in Via and Contact"),
    Row {
        stem: "clerr",
        udp: BAD_REQUEST,
        tcp: on(AnsweredAtEnd(400), &[Screen("answered 400: Content-Length 9999 exceeds")]),
        why: "Content-Length larger than the message",
    },
    Row {
        stem: "ncl",
        udp: BAD_REQUEST,
        tcp: on(AnsweredThenClosed(&[400]), &[Screen("answered 400: Content-Length \"-999\"")]),
        why: "negative Content-Length",
    },
    both("scalar02", BAD_REQUEST, "CSeq above 2**31"),
    both("scalarlg", BAD_RESPONSE, "response with a CSeq beyond 32 bits"),
    both("quotbal", BAD_REQUEST, "unterminated quoted display name"),
    both("ltgtruri", BAD_REQUEST, "<> around the Request-URI"),
    both("lwsruri", BAD_REQUEST, "LWS inside the Request-URI"),
    both("lwsstart", BAD_REQUEST, "several SP between Request-Line elements"),
    both("trws", BAD_REQUEST, "SP after the SIP-Version"),
    both("escruri", BAD_REQUEST, "escaped headers in a SIP Request-URI"),
    both("baddate", BAD_REQUEST, "Date not in GMT"),
    both("regbadct", BAD_REQUEST, "Contact URI with ? not enclosed in <>"),
    both("badaspec", BAD_REQUEST, "spaces inside <addr-spec>"),
    Row {
        stem: "baddn",
        udp: BAD_REQUEST,
        tcp: on(AnsweredAtEnd(400), &[Screen("answered 400: ")]),
        why: "unquoted display name with a comma; no empty line ends the headers",
    },
    both("badvers", refused(&[505], &[Screen("answered 505: ")]), "SIP/7.0"),
    both("mismatch01", BAD_REQUEST, "CSeq method differs from the Request-Line"),
    both("mismatch02", BAD_REQUEST, "unknown method and CSeq mismatch"),
    both("bigcode", BAD_RESPONSE, "response with status 4294967301"),
    // 3.2 Transaction layer semantics.
    both("badbranch", BAD_REQUEST, "branch is the bare magic cookie"),
    // 3.3 Application layer semantics.
    both("insuf", BAD_REQUEST, "missing To, From, Call-ID"),
    both("unkscm", refused(&[416], &[Screen("answered 416: ")]), "unknown Request-URI scheme"),
    both("novelsc", refused(&[416], &[Screen("answered 416: ")]), "soap.beep Request-URI"),
    both("unksm2", NOT_REGISTRAR, "REGISTER with an isbn: To: well formed, and we are not a registrar"),
    both("bext01", refused(&[420], &[Screen("answered 420: ")]), "Require of unknown extensions"),
    both("invut", refused(&[415], &[Screen("answered 415: ")]), "INVITE body of an unknown type"),
    both("regaut01", NOT_REGISTRAR, "REGISTER with an unknown Authorization scheme"),
    both("multi01", BAD_REQUEST, "several To, From, Call-ID, CSeq"),
    Row {
        stem: "mcl01",
        udp: BAD_REQUEST,
        tcp: on(AnsweredThenClosed(&[400]), &[Screen("answered 400: Content-Length given twice")]),
        why: "two Content-Length values: on a stream, nothing after it can be framed",
    },
    both("bcast", STRAY_RESPONSE, "a 200 to no request of ours"),
    both("zeromf", OPTIONS_OK, "OPTIONS with Max-Forwards 0 at an endpoint"),
    both("cparam01", NOT_REGISTRAR, "REGISTER"),
    both("cparam02", NOT_REGISTRAR, "REGISTER"),
    both("regescrt", NOT_REGISTRAR, "REGISTER"),
    both("sdp01", refused(&[406], &[Screen("answered 406: ")]), "INVITE whose Accept excludes application/sdp"),
    // 3.4 Backward compatibility.
    Row {
        stem: "inv2543",
        udp: on(Answered(&[400]), &[Stack("INVITE answered 400: no dialog can be made")]),
        tcp: on(AnsweredThenClosed(&[400]), &[Screen("answered 400: no Content-Length")]),
        why: "RFC 2543 INVITE: its missing From tag is taken as null (RFC 3261 12.1.1), but without Contact \
              no dialog can be made (RFC 3261 8.1.1.8); on a stream, no Content-Length (RFC 3261 18.3)",
    },
];

fn corpus_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let beside = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/rfc4475"));
    let candidates = [
        beside,
        manifest
            .parent()
            .map(|parent| parent.join("../shared/rfc4475"))
            .unwrap_or_default(),
    ];
    candidates
        .iter()
        .find(|dir| dir.join("MANIFEST.tsv").is_file())
        .cloned()
        .unwrap_or_else(|| panic!("RFC 4475 corpus not found; looked in {candidates:?}"))
}

/// Every file of the manifest with its class and bytes, in manifest order.
fn corpus() -> Vec<(String, String, Vec<u8>)> {
    let dir = corpus_dir();
    let manifest = fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let corpus: Vec<(String, String, Vec<u8>)> = manifest
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (file, class) = line
                .split_once('\t')
                .expect("MANIFEST line is file<TAB>class");
            let bytes = fs::read(dir.join(file.trim())).expect("read message");
            let stem = file.trim().trim_end_matches(".dat").to_string();
            (stem, class.trim().to_string(), bytes)
        })
        .collect();
    assert_eq!(corpus.len(), 49, "the corpus has 49 messages");
    for (stem, _, _) in &corpus {
        assert!(
            EXPECTED.iter().any(|row| row.stem == stem),
            "{stem} has no row in EXPECTED"
        );
    }
    assert_eq!(corpus.len(), EXPECTED.len(), "every row has a file");
    corpus
}

// --- The agent's process -------------------------------------------------

/// The agent, in its own process so its standard error can be read. Only
/// runs when started by `rfc4475_corpus_to_a_running_agent`.
#[test]
#[ignore = "the agent process of rfc4475_corpus_to_a_running_agent, started by it"]
fn agent_process() {
    if std::env::var_os(AGENT_PROCESS).is_none() {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run_agent());
}

/// Runs the agent until standard input closes (the parent is done or
/// gone) or [`AGENT_LIFETIME`] passes.
async fn run_agent() {
    let cancel = CancellationToken::new();
    let config = AgentConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let (agent, mut events) = SipAgent::start(config, cancel.clone())
        .await
        .expect("the agent starts on a free port");
    println!("{LISTENING} {}", agent.local_addr().port());
    let mut parent_done = tokio::spawn(async {
        let mut rest = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    });
    let lifetime = tokio::time::sleep(AGENT_LIFETIME);
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            _ = &mut parent_done => break,
            _ = &mut lifetime => break,
            event = events.recv() => match event {
                Some(AgentEvent::IncomingCall(call)) => {
                    tokio::spawn(take_call(call));
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    cancel.cancel();
    let _ = tokio::time::timeout(STEP, agent.stopped()).await;
}

/// Answers SIPp's calls until they end; declines the corpus's INVITEs.
async fn take_call(call: IncomingCall) {
    if !call.info().caller.contains("sipp") {
        let _ = call.reject(603).await;
        return;
    }
    let answer = sdp::parse(call.remote_sdp().as_bytes())
        .ok()
        .and_then(|offer| sdp::answer(&offer, "127.0.0.1".parse().unwrap(), 41000, 1, 1).ok());
    let Some(answer) = answer else {
        let _ = call.reject(488).await;
        return;
    };
    if let Ok(mut handle) = call.answer(&answer.sdp).await {
        while let Ok(Some(_)) = tokio::time::timeout(STEP, handle.next_event()).await {}
    }
}

/// The agent's process, seen from the test.
struct AgentProcess {
    child: tokio::process::Child,
    port: u16,
    /// Lines of its standard error so far.
    log: watch::Receiver<Vec<String>>,
}

impl AgentProcess {
    async fn start() -> AgentProcess {
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "agent_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(AGENT_PROCESS, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the agent process");
        let (lines, log) = watch::channel(Vec::new());
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                lines.send_modify(|lines| lines.push(line));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = tokio::time::timeout(STEP, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(at) = line.find(LISTENING) {
                    return line[at + LISTENING.len()..].trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("the agent process reports its port");
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        AgentProcess { child, port, log }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn lines(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// Waits until every line the agent wrote so far has been read: a
    /// request with no Via is dropped with a line naming its sender, and
    /// lines arrive in order.
    async fn sync_log(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let marker = format!("from {} over UDP", socket.local_addr().unwrap());
        socket
            .send_to(
                b"OPTIONS sip:marker@127.0.0.1 SIP/2.0\r\nl: 0\r\n\r\n",
                self.addr(),
            )
            .await
            .expect("send the marker");
        let mut log = self.log.clone();
        let seen = tokio::time::timeout(
            STEP,
            log.wait_for(|lines| lines.iter().any(|line| line.contains(&marker))),
        )
        .await;
        assert!(
            matches!(seen, Ok(Ok(_))),
            "the agent logs a dropped request within the bound"
        );
    }

    /// Closes its standard input: it stops the agent and exits.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = common::wait_exit(&mut self.child, STEP).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "the agent process exits cleanly: {status:?}"
        );
    }
}

// --- Talking to the agent ------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Udp,
    Tcp,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Udp => "UDP",
            Via::Tcp => "TCP",
        })
    }
}

/// The parts of a response the test needs.
#[derive(Debug)]
struct Response {
    status: u16,
    call_id: String,
    cseq: String,
    via: String,
    from: String,
    to: String,
}

fn parse_response(bytes: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()?
        .strip_prefix("SIP/2.0 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let mut response = Response {
        status,
        call_id: String::new(),
        cseq: String::new(),
        via: String::new(),
        from: String::new(),
        to: String::new(),
    };
    for line in lines.take_while(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        let field = match name.trim().to_ascii_lowercase().as_str() {
            "call-id" | "i" => &mut response.call_id,
            "cseq" => &mut response.cseq,
            "via" | "v" => &mut response.via,
            "from" | "f" => &mut response.from,
            "to" | "t" => &mut response.to,
            _ => continue,
        };
        if field.is_empty() {
            *field = value;
        }
    }
    Some(response)
}

/// An OPTIONS from `local` to the agent, closing an exchange.
fn sentinel(id: &str, local: SocketAddr, agent: SocketAddr, via: Via) -> Vec<u8> {
    format!(
        "OPTIONS sip:probe@{agent} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {local};branch=z9hG4bK-{id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={id}\r\n\
         To: <sip:probe@{agent}>\r\n\
         Call-ID: {id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The ACK for a non-2xx final response to an INVITE (RFC 3261 17.1.1.3),
/// so the agent's INVITE transaction completes instead of waiting for it.
fn ack_for(request: &[u8], response: &Response) -> Option<Vec<u8>> {
    if !response.cseq.ends_with("INVITE") || response.status < 300 {
        return None;
    }
    let text = String::from_utf8_lossy(request);
    let uri = text
        .split("\r\n")
        .find_map(|line| line.strip_prefix("INVITE "))?
        .split(' ')
        .next()?;
    let top_via = response.via.split(',').next()?;
    let number = response.cseq.split_whitespace().next()?;
    Some(
        format!(
            "ACK {uri} SIP/2.0\r\nVia: {top_via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {number} ACK\r\nContent-Length: 0\r\n\r\n",
            response.from, response.to, response.call_id
        )
        .into_bytes(),
    )
}

/// What came back for one message.
#[derive(Debug, Default)]
struct Got {
    /// Final statuses, each transaction once (UDP retransmissions aside).
    finals: Vec<u16>,
    /// The sentinel's status, if it came.
    sentinel: Option<u16>,
    /// The agent closed the connection.
    closed: bool,
}

impl Got {
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.finals.iter().map(u16::to_string).collect();
        if parts.is_empty() {
            parts.push("silent".into());
        }
        if self.closed {
            parts.push("closed".into());
        }
        parts.join(" ")
    }
}

/// Collects responses: finals once per transaction, the sentinel's apart.
/// Done once the expected finals and the sentinel are in.
struct Collector<'a> {
    request: &'a [u8],
    sentinel_id: String,
    wanted: usize,
    /// Whether to ACK a non-2xx final to an INVITE: not when the screen
    /// refuses the message, since its stateless answers have no
    /// transaction to complete and an ACK copied from a malformed INVITE
    /// would be malformed itself.
    ack: bool,
    seen: HashSet<(String, String)>,
    got: Got,
}

impl<'a> Collector<'a> {
    fn new(request: &'a [u8], expect: Expect, id: &str) -> Collector<'a> {
        Collector {
            request,
            sentinel_id: id.to_string(),
            wanted: wanted(expect.handling),
            ack: !expect.logged.iter().any(|l| matches!(l, Screen(_))),
            seen: HashSet::new(),
            got: Got::default(),
        }
    }

    fn handle(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let response = parse_response(bytes)?;
        if response.status < 200 {
            return None;
        }
        if response.call_id == self.sentinel_id {
            self.got.sentinel = Some(response.status);
            return None;
        }
        if self
            .seen
            .insert((response.call_id.clone(), response.cseq.clone()))
        {
            self.got.finals.push(response.status);
        }
        if !self.ack {
            return None;
        }
        ack_for(self.request, &response)
    }

    fn done(&self) -> bool {
        self.got.sentinel.is_some() && self.got.finals.len() >= self.wanted
    }
}

fn wanted(handling: Handling) -> usize {
    match handling {
        Answered(statuses) => statuses.len(),
        Silent => 0,
        AnsweredThenClosed(statuses) => statuses.len(),
        AnsweredAtEnd(_) => 1,
    }
}

/// Sends `message` in one datagram from a new socket, then the sentinel.
async fn exchange_udp(
    agent: SocketAddr,
    message: &[u8],
    expect: Expect,
    id: &str,
) -> (Got, UdpSocket) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
    let local = socket.local_addr().unwrap();
    let mut collector = Collector::new(message, expect, id);
    if !message.is_empty() {
        socket.send_to(message, agent).await.expect("send");
    }
    socket
        .send_to(&sentinel(id, local, agent, Via::Udp), agent)
        .await
        .expect("send the sentinel");
    let mut buf = vec![0; 65_536];
    let _ = tokio::time::timeout(STEP, async {
        while !collector.done() {
            let (len, _) = socket.recv_from(&mut buf).await.expect("receive");
            if let Some(ack) = collector.handle(&buf[..len]) {
                socket.send_to(&ack, agent).await.expect("send ACK");
            }
        }
    })
    .await;
    (collector.got, socket)
}

/// Cuts one response off the front of `buffer` by its Content-Length.
fn take_response(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let start = buffer.iter().position(|&b| b != b'\r' && b != b'\n')?;
    buffer.drain(..start);
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let body: usize = head
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            matches!(name.trim(), "content-length" | "l").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (buffer.len() >= end + body).then(|| buffer.drain(..end + body).collect())
}

/// Sends `message` on a new connection, ended as `expect` requires.
async fn exchange_tcp(
    agent: SocketAddr,
    message: &[u8],
    expect: Expect,
    id: &str,
) -> (Got, TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    // We close first, so the port lingers in TIME_WAIT; with SO_REUSEADDR
    // it does not stop a later agent (this test's or another's), whose UDP
    // port may be this one, from listening on it over TCP.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    let mut stream = socket.connect(agent).await.expect("connect");
    let local = stream.local_addr().unwrap();
    let mut collector = Collector::new(message, expect, id);
    stream.write_all(message).await.expect("send");
    match expect.handling {
        Answered(_) | Silent => {
            stream
                .write_all(&sentinel(id, local, agent, Via::Tcp))
                .await
                .expect("send the sentinel");
        }
        AnsweredAtEnd(_) => stream.shutdown().await.expect("close our side"),
        // The agent closes the connection; nothing is sent after the
        // message, which would race its close.
        AnsweredThenClosed(_) => {}
    }
    let mut buffer = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    let _ = tokio::time::timeout(STEP, async {
        loop {
            while let Some(response) = take_response(&mut buffer) {
                if let Some(ack) = collector.handle(&response) {
                    // The agent may have closed already.
                    let _ = stream.write_all(&ack).await;
                }
            }
            if collector.done() {
                break;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    collector.got.closed = true;
                    break;
                }
                Ok(len) => buffer.extend_from_slice(&chunk[..len]),
            }
        }
    })
    .await;
    (collector.got, stream)
}

/// Whether `got` is what `handling` asks for over `via`.
fn handled_as(handling: Handling, via: Via, got: &Got) -> bool {
    let finals_are = |statuses: &[u16]| {
        let mut got = got.finals.clone();
        got.sort_unstable();
        let mut want = statuses.to_vec();
        want.sort_unstable();
        got == want
    };
    match handling {
        Answered(statuses) => finals_are(statuses) && got.sentinel == Some(200) && !got.closed,
        Silent => got.finals.is_empty() && got.sentinel == Some(200) && !got.closed,
        AnsweredThenClosed(statuses) => via == Via::Tcp && finals_are(statuses) && got.closed,
        AnsweredAtEnd(status) => via == Via::Tcp && finals_are(&[status]) && got.closed,
    }
}

fn describe(handling: Handling) -> String {
    match handling {
        Answered(statuses) => statuses
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        Silent => "silent".into(),
        AnsweredThenClosed(statuses) => format!(
            "{} closed",
            statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        AnsweredAtEnd(status) => format!("{status} at end, closed"),
    }
}

/// The log lines the screen wrote for a sender.
fn screen_lines(lines: &[String], sender: SocketAddr, via: Via) -> Vec<String> {
    let needle = format!("from {sender} over {via} ");
    lines
        .iter()
        .filter(|line| line.contains(&needle))
        .cloned()
        .collect()
}

/// Checks the log lines one message left; the problems found.
fn check_log(lines: &[String], sender: SocketAddr, via: Via, expect: Expect) -> Vec<String> {
    let screened = screen_lines(lines, sender, via);
    let wanted: Vec<&str> = expect
        .logged
        .iter()
        .filter_map(|logged| match logged {
            Screen(fragment) => Some(*fragment),
            Stack(_) => None,
        })
        .collect();
    let mut problems = Vec::new();
    let one_each = screened.len() == wanted.len()
        && screened
            .iter()
            .zip(&wanted)
            .all(|(line, fragment)| line.contains(fragment) && !line.trim_end().ends_with(':'));
    if !one_each {
        problems.push(format!(
            "screen lines {wanted:?} expected for {sender}, got {screened:?}"
        ));
    }
    for logged in expect.logged {
        if let Stack(fragment) = logged {
            if !lines.iter().any(|line| line.contains(fragment)) {
                problems.push(format!("no line with {fragment:?}"));
            }
        }
    }
    problems
}

/// An OPTIONS on its own: the agent's status for it.
async fn options_status(agent: SocketAddr, via: Via, id: &str) -> Option<u16> {
    match via {
        Via::Udp => {
            exchange_udp(agent, b"", on(Silent, &[]), id)
                .await
                .0
                .sentinel
        }
        Via::Tcp => {
            exchange_tcp(agent, b"", on(Silent, &[]), id)
                .await
                .0
                .sentinel
        }
    }
}

/// A SIPp uac call to the agent over `via`, answered and hung up by SIPp.
async fn sipp_call(agent: SocketAddr, via: Via) {
    let dir = common::temp_dir(&format!("rfc4475-live-sipp-{via}"));
    let target = agent.to_string();
    let mut args = vec!["-sn", "uac", target.as_str(), "-m", "1", "-d", "200"];
    if via == Via::Tcp {
        args.extend(["-t", "t1"]);
    }
    let mut sipp = common::spawn_sipp(&dir, common::free_port(), &args);
    let status = common::wait_exit(&mut sipp, SIPP_RUN).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "a SIPp call over {via} after the corpus failed ({status:?}):\n{}",
        common::sipp_report(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4475_corpus_to_a_running_agent() {
    let corpus = corpus();
    let agent = AgentProcess::start().await;
    let mut failures = Vec::new();
    println!(
        "{:<10} {:<16} {:<4} {:<22} {:<22} why",
        "file", "class", "via", "expected", "got"
    );
    for via in [Via::Udp, Via::Tcp] {
        // Every socket stays open until its log lines are checked, so no
        // port is reused by a later message.
        let mut udp_sockets = Vec::new();
        let mut tcp_streams = Vec::new();
        let mut sent = Vec::new();
        for (n, (stem, class, bytes)) in corpus.iter().enumerate() {
            let row = EXPECTED
                .iter()
                .find(|row| row.stem == stem)
                .expect("checked in corpus()");
            let expect = match via {
                Via::Udp => row.udp,
                Via::Tcp => row.tcp,
            };
            let id = format!("sentinel-{via}-{n}-{stem}");
            let (got, sender) = match via {
                Via::Udp => {
                    let (got, socket) = exchange_udp(agent.addr(), bytes, expect, &id).await;
                    let sender = socket.local_addr().unwrap();
                    udp_sockets.push(socket);
                    (got, sender)
                }
                Via::Tcp => {
                    let (got, stream) = exchange_tcp(agent.addr(), bytes, expect, &id).await;
                    let sender = stream.local_addr().unwrap();
                    tcp_streams.push(stream);
                    (got, sender)
                }
            };
            println!(
                "{:<10} {:<16} {:<4} {:<22} {:<22} {}",
                stem,
                class,
                via,
                describe(expect.handling),
                got.describe(),
                row.why
            );
            if !handled_as(expect.handling, via, &got) {
                failures.push(format!(
                    "{stem} over {via}: expected {}, got {got:?} ({})",
                    describe(expect.handling),
                    row.why
                ));
            }
            // The corpus README's class rule, for a file that arrives as
            // one message (on a stream, dblreq carries a second, and some
            // files end the connection): a valid message is never refused
            // as malformed; an invalid request gets 400 or 505, an invalid
            // response nothing.
            let one_message = matches!(expect.handling, Answered(_) | Silent);
            let refused = got.finals.iter().any(|s| matches!(s, 400 | 505));
            let class_ok = match class.as_str() {
                _ if !one_message => true,
                "3.1.1-valid" => !refused,
                "3.1.2-invalid" if bytes.starts_with(b"SIP/") => got.finals.is_empty(),
                "3.1.2-invalid" => refused,
                _ => true,
            };
            if !class_ok {
                failures.push(format!(
                    "{stem} over {via}: {got:?} breaks the rule of {class}"
                ));
            }
            sent.push((stem, sender, expect));
        }

        agent.sync_log().await;
        let lines = agent.lines();
        for (stem, sender, expect) in sent {
            for problem in check_log(&lines, sender, via, expect) {
                failures.push(format!("{stem} over {via}: log: {problem}"));
            }
        }
        drop((udp_sockets, tcp_streams));

        let status = options_status(agent.addr(), via, &format!("after-corpus-{via}")).await;
        if status != Some(200) {
            failures.push(format!("OPTIONS over {via} after the corpus: {status:?}"));
        }
        sipp_call(agent.addr(), via).await;
        println!("after the corpus over {via}: OPTIONS {status:?}, a SIPp call completed");
    }
    let lines = agent.lines();
    agent.stop().await;
    assert!(
        failures.is_empty(),
        "\n{}\n--- agent log:\n{}",
        failures.join("\n"),
        lines.join("\n")
    );
}
