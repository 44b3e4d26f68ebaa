//! A real OpenAI-compatible server for the LLM tests and benchmark, and a
//! pass-through HTTP proxy to put in front of it.
//!
//! [`LlmServer::start`] runs `tests/llm/server.py` (llama.cpp's server from
//! the xllamacpp wheel, with SmolLM2-135M-Instruct; both installed by
//! scripts/setup under .cache/llm) as a child process on a free port of
//! 127.0.0.1, waits for `GET /health` to answer 200, and kills it by PID
//! when dropped. The script also exits when its standard input closes, so
//! a server is never left behind by a test binary that dies or by one kept
//! in a `static`.
//!
//! [`Proxy`] forwards each HTTP request to the server, after recording it
//! and optionally holding it back for a while: the tests read the request
//! the detector sent, and make the server late.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The model alias the server answers to.
pub const MODEL: &str = "local";

/// How long a server may take to load the model and answer `/health`:
/// ~4 s on an idle 2-core machine, much more when other jobs load it.
const START_LIMIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the venv scripts/setup makes.
pub fn python() -> PathBuf {
    root().join(".cache/llm/venv/bin/python")
}

/// The GGUF model scripts/setup extracts and checks.
pub fn smollm2() -> PathBuf {
    root().join(".cache/llm/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// A llama.cpp server in a child process.
pub struct LlmServer {
    child: Child,
    /// Held open: the server exits when it closes (see the module doc).
    _stdin: Option<ChildStdin>,
    pub port: u16,
    /// From spawning the process to `/health` answering 200.
    pub start_time: Duration,
    log: PathBuf,
}

impl LlmServer {
    /// Starts the SmolLM2 server and waits until it is ready.
    pub fn start() -> Self {
        Self::start_with(&smollm2(), None)
    }

    /// Serves `model` with `threads` threads (the script's default: 1).
    pub fn start_with(model: &Path, threads: Option<u32>) -> Self {
        for (path, what) in [
            (python(), "the llm venv"),
            (model.to_path_buf(), "the model"),
        ] {
            assert!(
                path.exists(),
                "{what} is missing ({}): run scripts/setup",
                path.display()
            );
        }
        let port = free_port();
        // Under target/ (git-ignored): the log of a server kept in a
        // `static` outlives the test binary, which never drops it.
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("llm-server-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("creating the server log");
        let started = Instant::now();
        let mut command = Command::new(python());
        command
            .arg(root().join("tests/llm/server.py"))
            .arg("--model")
            .arg(model)
            .args(["--port", &port.to_string(), "--alias", MODEL])
            .arg("--exit-with-stdin");
        if let Some(threads) = threads {
            command.args(["--threads", &threads.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("starting tests/llm/server.py");
        let stdin = child.stdin.take();
        let mut server = Self {
            child,
            _stdin: stdin,
            port,
            start_time: Duration::ZERO,
            log,
        };
        while !server.healthy() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the LLM server exited ({status}) before it was ready:\n{}",
                    server.log_tail()
                );
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "the LLM server was not ready within {START_LIMIT:?}:\n{}",
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server.start_time = started.elapsed();
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The API base URL for the detector.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    fn healthy(&self) -> bool {
        http_status(self.addr(), "/health") == Some(200)
    }

    /// Kills the server by its PID and waits for the process to end.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// The status of `GET path`, or `None` when nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

/// One request as the proxy received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 pass-through on 127.0.0.1 that records every request and
/// can hold each one back before forwarding it. One request per
/// connection: it asks the server to close after answering, so the
/// response can be copied back until end of stream.
pub struct Proxy {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (log, stop) = (recorded.clone(), stopped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, upstream, delay, &log);
                });
            }
        });
        Self {
            addr,
            recorded,
            stopped,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far, oldest first.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    log: &Mutex<Vec<Recorded>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    log.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });

    if !delay.is_zero() {
        std::thread::sleep(delay);
        // A client that gave up meanwhile gets nothing forwarded, so the
        // server is not kept busy for nobody.
        client.set_nonblocking(true)?;
        let closed = matches!((&client).read(&mut [0u8; 1]), Ok(0));
        client.set_nonblocking(false)?;
        if closed {
            return Ok(());
        }
    }

    let mut server = TcpStream::connect(upstream)?;
    write!(server, "{method} {path} HTTP/1.1\r\n")?;
    for (name, value) in &headers {
        if name != "connection" {
            write!(server, "{name}: {value}\r\n")?;
        }
    }
    write!(server, "connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut client = client;
    std::io::copy(&mut server, &mut client)?;
    client.shutdown(Shutdown::Both)
}
