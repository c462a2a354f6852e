//! The `--metrics-listen` server: `GET /metrics` (and `GET /`, a one-line pointer) over
//! HTTP/1.x, from one thread that polls every connection, so a client costs a slot, never a
//! thread, and a slow one never holds up another.
//!
//! Bounds (the [`Limits`]): at most `max_conns` connections at once; when a new one comes and
//! every slot is taken, the connection that has waited longest for its request to finish is
//! closed to make room (counted, `over_limit`), so a flood of idle connections cannot lock a
//! scraper out. A request head must arrive whole within `head_timeout` and fit in `max_head`
//! bytes (a longer request line is answered 414, longer headers 431); a body is never read; the
//! answer must be taken within `write_timeout`. Anything but GET or HEAD is answered 405, a
//! malformed request 400, another path 404; every answer closes the connection. What the
//! server did is counted and served with the exposition (its own families, see [`Stats`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::metrics::{Exposition, CONTENT_TYPE};

/// What one server allows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_conns: usize,
    /// From accept to the end of the request head.
    pub head_timeout: Duration,
    /// From the end of the request head to the last byte of the answer taken.
    pub write_timeout: Duration,
    /// The request head (request line and headers).
    pub max_head: usize,
    /// The request line alone.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 64,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_head: 8192,
            max_line: 2048,
        }
    }
}

/// After an answer, what the client still sends is read and thrown away for this long (at
/// most [`DRAIN_BYTES`]), so that closing does not reset the connection before the client has
/// read the answer.
const DRAIN_TIME: Duration = Duration::from_millis(500);
const DRAIN_BYTES: usize = 64 * 1024;

/// The longest the poll loop sleeps when no deadline is nearer.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Why the server closed a connection without answering it.
const DROP_REASONS: [&str; 3] = ["over_limit", "timeout", "closed_by_client"];
const OVER_LIMIT: usize = 0;
const TIMEOUT: usize = 1;
const CLOSED_BY_CLIENT: usize = 2;

/// The status codes the server answers with.
const CODES: [(u16, &str); 7] = [
    (200, "OK"),
    (400, "Bad Request"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (414, "URI Too Long"),
    (431, "Request Header Fields Too Large"),
    (505, "HTTP Version Not Supported"),
];

/// What the server did, served with the exposition.
#[derive(Default)]
pub struct Stats {
    answered: [AtomicU64; CODES.len()],
    dropped: [AtomicU64; DROP_REASONS.len()],
    open: AtomicU64,
}

impl Stats {
    fn answered(&self, code: u16) {
        if let Some(i) = CODES.iter().position(|(c, _)| *c == code) {
            self.answered[i].fetch_add(1, Relaxed);
        }
    }

    fn dropped(&self, reason: usize) {
        self.dropped[reason].fetch_add(1, Relaxed);
    }

    /// The server's own families: answers by status code, connections closed unanswered by
    /// reason, connections open now.
    pub fn write(&self, tool: &str, out: &mut Exposition) {
        out.family(
            "coretrace_http_responses_total",
            "counter",
            "Requests to --metrics-listen answered, by HTTP status code.",
        );
        for (i, (code, _)) in CODES.iter().enumerate() {
            let code = code.to_string();
            let n = self.answered[i].load(Relaxed) as f64;
            let labels = [("tool", tool), ("code", code.as_str())];
            out.sample("coretrace_http_responses_total", &labels, n);
        }
        out.family(
            "coretrace_http_connections_dropped_total",
            "counter",
            "Connections to --metrics-listen closed without an answer: over_limit (every slot taken: the one waiting longest for its request closed), timeout (request or answer too slow), closed_by_client.",
        );
        for (i, reason) in DROP_REASONS.iter().enumerate() {
            let n = self.dropped[i].load(Relaxed) as f64;
            let labels = [("tool", tool), ("reason", *reason)];
            out.sample("coretrace_http_connections_dropped_total", &labels, n);
        }
        out.family(
            "coretrace_http_connections_open",
            "gauge",
            "Connections to --metrics-listen open now.",
        );
        let open = self.open.load(Relaxed) as f64;
        out.sample("coretrace_http_connections_open", &[("tool", tool)], open);
    }
}

/// What the server thread and the exporter share: the latest exposition, and the counts.
pub struct Shared {
    pub text: Mutex<Arc<str>>,
    pub stats: Stats,
}

/// Binds `addr` and starts the server thread; returns what it serves from and the address it
/// listens on (the port chosen, for port 0).
pub fn serve(tool: &str, addr: SocketAddr, limits: Limits) -> Result<(Arc<Shared>, SocketAddr)> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "--metrics-listen {addr}: cannot listen there: {e} (is another program using the port? give another PORT or HOST:PORT)"
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("--metrics-listen: setting the socket non-blocking")?;
    let local = listener.local_addr().unwrap_or(addr);
    let shared = Arc::new(Shared {
        text: Mutex::new(Arc::from("")),
        stats: Stats::default(),
    });
    let mut server = Server {
        tool: tool.to_string(),
        listener,
        limits,
        conns: Vec::new(),
        shared: shared.clone(),
    };
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || server.run())
        .context("starting the metrics server thread")?;
    Ok((shared, local))
}

/// Bytes an answer is written from: its head (owned) and its body (shared with the exporter).
struct Answer {
    parts: [Arc<str>; 3],
    part: usize,
    offset: usize,
}

enum State {
    /// Reading the request head into the buffer.
    Head(Vec<u8>),
    /// Writing the answer.
    Answer(Answer),
    /// Answered: reading what the client still sends, then closing.
    Drain(usize),
}

struct Conn {
    stream: TcpStream,
    /// When the current state must end.
    deadline: Instant,
    state: State,
}

impl Conn {
    /// Whether it may be closed to make room for a new connection (it waits on its client).
    fn evictable(&self) -> bool {
        !matches!(self.state, State::Answer(_))
    }
}

/// What one step of a connection left.
enum Step {
    Keep,
    Close,
    Dropped(usize),
}

struct Server {
    tool: String,
    listener: TcpListener,
    limits: Limits,
    conns: Vec<Conn>,
    shared: Arc<Shared>,
}

impl Server {
    fn run(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.limits.max_conns + 1);
        loop {
            fds.clear();
            fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
            for c in &self.conns {
                let events = match c.state {
                    State::Answer(_) => libc::POLLOUT,
                    _ => libc::POLLIN,
                };
                fds.push(pollfd(c.stream.as_raw_fd(), events));
            }
            let now = Instant::now();
            let sleep = self
                .conns
                .iter()
                .map(|c| c.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            // The timeout rounds up, so a deadline is past when poll returns.
            let ms = sleep.as_millis() as i32 + 1;
            // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd structures that
            // lives across the call; poll writes only their `revents` fields.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if n < 0 {
                std::thread::sleep(Duration::from_millis(10)); // EINTR, or ENOMEM: try again
                continue;
            }
            // Connections first (their indices match `fds` until accept adds more).
            let ready: Vec<bool> = fds[1..].iter().map(|f| f.revents != 0).collect();
            self.step_all(&ready);
            if fds[0].revents != 0 {
                self.accept_all();
            }
        }
    }

    /// Moves every ready connection on, and closes those past their deadline.
    fn step_all(&mut self, ready: &[bool]) {
        let now = Instant::now();
        let mut i = 0;
        let mut flags = ready.iter();
        self.conns.retain_mut(|c| {
            i += 1;
            let ready = flags.next().copied().unwrap_or(false);
            let step = if ready {
                step(c, &self.limits, &self.shared, &self.tool)
            } else {
                Step::Keep
            };
            let step = match step {
                Step::Keep if now >= c.deadline => match c.state {
                    State::Drain(_) => Step::Close,
                    _ => Step::Dropped(TIMEOUT),
                },
                s => s,
            };
            match step {
                Step::Keep => true,
                Step::Close => false,
                Step::Dropped(reason) => {
                    self.shared.stats.dropped(reason);
                    false
                }
            }
        });
        self.shared
            .stats
            .open
            .store(self.conns.len() as u64, Relaxed);
    }

    /// Takes every connection waiting in the listen queue.
    fn accept_all(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    // Out of descriptors or memory: let the queue wait instead of spinning.
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.conns.len() >= self.limits.max_conns && !self.evict_one() {
                self.shared.stats.dropped(OVER_LIMIT);
                continue; // every slot is writing an answer: the newcomer is closed
            }
            self.conns.push(Conn {
                stream,
                deadline: Instant::now() + self.limits.head_timeout,
                state: State::Head(Vec::new()),
            });
        }
        self.shared
            .stats
            .open
            .store(self.conns.len() as u64, Relaxed);
    }

    /// Closes the connection that has waited longest on its client (the oldest in the list).
    fn evict_one(&mut self) -> bool {
        let Some(i) = self.conns.iter().position(Conn::evictable) else {
            return false;
        };
        let c = self.conns.remove(i);
        if !matches!(c.state, State::Drain(_)) {
            self.shared.stats.dropped(OVER_LIMIT);
        }
        true
    }
}

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// One connection's turn: read what arrived, or write what the socket takes.
fn step(c: &mut Conn, limits: &Limits, shared: &Shared, tool: &str) -> Step {
    match &mut c.state {
        State::Head(buf) => match read_head(&mut c.stream, buf, limits) {
            Ok(None) => Step::Keep,
            Ok(Some(request)) => {
                let answer = answer(&request, shared, tool);
                c.state = State::Answer(answer);
                c.deadline = Instant::now() + limits.write_timeout;
                write_answer(c)
            }
            Err(reason) => Step::Dropped(reason),
        },
        State::Answer(_) => write_answer(c),
        State::Drain(left) => {
            let mut scratch = [0u8; 4096];
            match c.stream.read(&mut scratch) {
                Ok(n) if n > 0 && n < *left => {
                    *left -= n;
                    Step::Keep
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Step::Keep,
                _ => Step::Close,
            }
        }
    }
}

/// What a request head asked for, once parsed, or the error status to answer with.
type Request = std::result::Result<(bool, String), u16>;

/// Reads what the socket has: `Some` once the head is whole (or cannot be: an error status),
/// `None` while it is not, `Err` when the client went away.
fn read_head(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> std::result::Result<Option<Request>, usize> {
    let mut chunk = [0u8; 2048];
    loop {
        let room = limits.max_head - buf.len();
        let n = match s.read(&mut chunk[..room.min(2048)]) {
            Ok(0) => return Err(CLOSED_BY_CLIENT),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(CLOSED_BY_CLIENT),
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let line_end = buf.iter().position(|&b| b == b'\n');
        if line_end.map_or(buf.len(), |e| e) > limits.max_line {
            return Ok(Some(Err(414)));
        }
        if let Some(end) = head_end(buf, from) {
            return Ok(Some(parse_head(&buf[..end])));
        }
        if buf.len() >= limits.max_head {
            return Ok(Some(Err(431)));
        }
    }
}

/// Where an HTTP head ends (after its blank line), searching from `from`: the exporter's
/// requests and the OTLP client's responses.
pub(crate) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        let rest = &buf[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// The request line and headers: (HEAD rather than GET, the path), or the status to answer
/// with. Headers are checked for form only: nothing in them changes the answer.
fn parse_head(head: &[u8]) -> Request {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut f = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (f.next(), f.next(), f.next(), f.next())
    else {
        return Err(400);
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(method) || !target.starts_with('/') && target != "*" {
        return Err(400);
    }
    match version.strip_prefix("HTTP/") {
        Some("1.0" | "1.1") => {}
        Some(v) if v.len() == 3 && v.as_bytes()[1] == b'.' => return Err(505),
        _ => return Err(400),
    }
    for h in lines.filter(|l| !l.is_empty()) {
        let ok = h.split_once(':').is_some_and(|(name, _)| token(name));
        if !ok {
            return Err(400);
        }
    }
    match method {
        "GET" => Ok((false, target.to_string())),
        "HEAD" => Ok((true, target.to_string())),
        _ => Err(405),
    }
}

/// The answer to a request (the exposition, the pointer, or an error), counted first (so a
/// scrape sees itself in the counts).
fn answer(request: &Request, shared: &Shared, tool: &str) -> Answer {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let (code, head_only, path) = match request {
        Ok((head_only, target)) => {
            let path = target.split('?').next().unwrap_or_default();
            let code = if path == "/metrics" || path == "/" {
                200
            } else {
                404
            };
            (code, *head_only, path)
        }
        Err(code) => (*code, false, ""),
    };
    shared.stats.answered(code);
    let (content_type, body, tail): (&str, Arc<str>, Arc<str>) = match (code, path) {
        (200, "/metrics") => {
            let text = shared
                .text
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut own = Exposition::new();
            shared.stats.write(tool, &mut own);
            (CONTENT_TYPE, text, Arc::from(own.as_str()))
        }
        (200, _) => {
            let pointer = format!("coretrace {tool}: Prometheus metrics are at /metrics\n");
            (PLAIN, Arc::from(pointer), Arc::from(""))
        }
        (404, _) => (
            PLAIN,
            Arc::from("not found: metrics are at /metrics\n"),
            Arc::from(""),
        ),
        _ => (PLAIN, Arc::from(error_text(code)), Arc::from("")),
    };
    let reason = CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, r)| r);
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len() + tail.len()
    );
    let parts = if head_only {
        [Arc::from(head), Arc::from(""), Arc::from("")]
    } else {
        [Arc::from(head), body, tail]
    };
    Answer {
        parts,
        part: 0,
        offset: 0,
    }
}

fn error_text(code: u16) -> String {
    let why = match code {
        405 => "only GET and HEAD are served here",
        414 => "the request line is too long",
        431 => "the request head is too large",
        505 => "only HTTP/1.0 and HTTP/1.1 are served here",
        _ => "malformed request",
    };
    format!("{code}: {why}; metrics are at GET /metrics\n")
}

/// Writes what the socket takes; once all is written, stops sending and drains.
fn write_answer(c: &mut Conn) -> Step {
    let State::Answer(a) = &mut c.state else {
        return Step::Keep;
    };
    while a.part < a.parts.len() {
        let bytes = &a.parts[a.part].as_bytes()[a.offset..];
        if bytes.is_empty() {
            a.part += 1;
            a.offset = 0;
            continue;
        }
        match c.stream.write(bytes) {
            Ok(0) => return Step::Dropped(CLOSED_BY_CLIENT),
            Ok(n) => a.offset += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Keep,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Step::Dropped(CLOSED_BY_CLIENT),
        }
    }
    let _ = c.stream.shutdown(Shutdown::Write);
    c.state = State::Drain(DRAIN_BYTES);
    c.deadline = Instant::now() + DRAIN_TIME;
    Step::Keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_are_checked() {
        let parse = |s: &str| parse_head(s.as_bytes());
        assert_eq!(
            parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok((false, "/metrics".into()))
        );
        assert_eq!(parse("HEAD / HTTP/1.0\n\n"), Ok((true, "/".into())));
        assert_eq!(
            parse("POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            Err(405)
        );
        assert_eq!(parse("GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse("GET  /metrics HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(parse("GET /metrics HTTP/2.0\r\n\r\n"), Err(505));
        assert_eq!(parse("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"), Err(400));
        assert_eq!(parse("\u{1}GET / HTTP/1.1\r\n\r\n"), Err(400));
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }
}
