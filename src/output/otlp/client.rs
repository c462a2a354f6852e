//! The sending side of OTLP export: a bounded queue the consumer's thread offers records to
//! without ever waiting, and a thread that batches log records (up to [`BATCH`] records, or
//! what came within [`BATCH_DELAY`]) and POSTs them, and each metrics snapshot, over plain
//! HTTP/1.1 (a new connection per request: one a second at most, no keep-alive state to get
//! wrong). What cannot be queued or sent is counted in [`Lost`], by cause.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::proto::{self, Origin};
use super::{Config, Lost, Url, LOST};
use crate::output::metrics::Exposition;

/// Records the queue holds (the SDKs' default for logs): about 2 MB of typical records.
pub const QUEUE: usize = 2048;
/// Log records per request at most (the SDKs' default batch).
pub const BATCH: usize = 512;
/// How long a log record waits for others before its batch is sent.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// A response's head is read up to this size; the body is never needed.
const RESPONSE_HEAD_MAX: usize = 16 * 1024;

/// Records queued and not yet sent or counted lost; once `close` gave up waiting and counted
/// them, the thread counts nothing more (one lock for both, so nothing is counted twice).
#[derive(Default)]
struct Pending {
    count: u64,
    abandoned: bool,
}

enum Item {
    Log(Vec<u8>),
    /// An encoded ExportMetricsServiceRequest.
    Metrics(Vec<u8>),
}

/// The consumer's side of the export: shared by the sink (logs) and the metrics exporter.
pub struct Client {
    tx: Mutex<Option<SyncSender<Item>>>,
    done: Mutex<Receiver<()>>,
    lost: Arc<Lost>,
    pending: Arc<Mutex<Pending>>,
    resource: Vec<(String, String)>,
    scope: String,
    start_ns: u64,
    timeout: Duration,
    logs: bool,
    metrics: bool,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Client {
    /// Starts the sending thread.
    pub fn start(config: Config, tool: &str) -> Result<Arc<Client>> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (done_tx, done) = mpsc::channel();
        let lost = LOST.get_or_init(Arc::default).clone();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let client = Arc::new(Client {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(done),
            lost: lost.clone(),
            pending: pending.clone(),
            resource: config.resource.clone(),
            scope: format!("coretrace/{tool}"),
            start_ns: unix_ns(),
            timeout: config.timeout,
            logs: config.logs.is_some(),
            metrics: config.metrics.is_some(),
        });
        let sender = Sender {
            scope: client.scope.clone(),
            config,
            lost,
            pending,
        };
        std::thread::Builder::new()
            .name("otlp".into())
            .spawn(move || {
                sender.run(rx);
                let _ = done_tx.send(());
            })
            .context("starting the OTLP export thread")?;
        Ok(client)
    }

    /// Offers one `--json` record as a log record; never waits.
    pub fn log(&self, record: &serde_json::Value) {
        if self.logs {
            self.offer(Item::Log(proto::log_record(record, unix_ns())));
        }
    }

    /// Offers a metrics snapshot; never waits.
    pub fn metrics(&self, exp: &Exposition) {
        if self.metrics {
            let origin = Origin {
                resource: &self.resource,
                scope: &self.scope,
            };
            let body = proto::metrics_request(&origin, exp.families(), self.start_ns, unix_ns());
            self.offer(Item::Metrics(body));
        }
    }

    fn offer(&self, item: Item) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(item) {
            self.lost.queue_full.fetch_add(1, Ordering::Relaxed);
        } else {
            pending.count += 1;
        }
    }

    /// At the end of a run: sends what is queued, waiting at most the timeout and a second;
    /// what is still unsent then counts as lost with the endpoint down.
    pub fn close(&self) {
        let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        drop(tx);
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if done.recv_timeout(self.timeout + BATCH_DELAY).is_err() {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.abandoned = true;
            let left = std::mem::take(&mut pending.count);
            self.lost.endpoint_down.fetch_add(left, Ordering::Relaxed);
        }
    }
}

/// The thread's side.
struct Sender {
    config: Config,
    scope: String,
    lost: Arc<Lost>,
    pending: Arc<Mutex<Pending>>,
}

/// How a request went.
enum Outcome {
    Sent,
    Down,
    Rejected,
}

impl Sender {
    fn run(&self, rx: Receiver<Item>) {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut due: Option<Instant> = None;
        loop {
            let wait = due.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            match rx.recv_timeout(wait) {
                Ok(Item::Log(r)) => {
                    batch.push(r);
                    due.get_or_insert_with(|| Instant::now() + BATCH_DELAY);
                    if batch.len() >= BATCH {
                        self.send_logs(&mut batch);
                        due = None;
                    }
                }
                Ok(Item::Metrics(body)) => {
                    if let Some(url) = &self.config.metrics {
                        let outcome = self.post(url, &body);
                        self.account(outcome, 1);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.send_logs(&mut batch);
                    due = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.send_logs(&mut batch);
                    return;
                }
            }
        }
    }

    fn send_logs(&self, batch: &mut Vec<Vec<u8>>) {
        let (Some(url), false) = (&self.config.logs, batch.is_empty()) else {
            return;
        };
        let origin = Origin {
            resource: &self.config.resource,
            scope: &self.scope,
        };
        let body = proto::logs_request(&origin, batch);
        let outcome = self.post(url, &body);
        self.account(outcome, batch.len() as u64);
        batch.clear();
    }

    fn account(&self, outcome: Outcome, n: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.abandoned {
            return;
        }
        pending.count = pending.count.saturating_sub(n);
        let counter = match outcome {
            Outcome::Sent => None,
            Outcome::Down => Some(&self.lost.endpoint_down),
            Outcome::Rejected => Some(&self.lost.rejected),
        };
        if let Some(c) = counter {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// One POST within the timeout; 2xx is sent, 429/502/503/504 and no answer are the
    /// endpoint down (the specification's retryable answers), anything else is refused.
    fn post(&self, url: &Url, body: &[u8]) -> Outcome {
        match self.exchange(url, body) {
            Ok(status) if (200..300).contains(&status) => Outcome::Sent,
            Ok(429 | 502 | 503 | 504) | Err(_) => Outcome::Down,
            Ok(_) => Outcome::Rejected,
        }
    }

    fn exchange(&self, url: &Url, body: &[u8]) -> std::io::Result<u16> {
        let deadline = Instant::now() + self.config.timeout;
        let addr = url
            .authority
            .to_socket_addrs()?
            .next()
            .ok_or(std::io::ErrorKind::NotFound)?;
        let mut stream = TcpStream::connect_timeout(&addr, self.config.timeout)?;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        stream.set_write_timeout(Some(left()))?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: coretrace/{}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.path,
            url.host,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        for (k, v) in &self.config.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        // The status line, read within what is left of the timeout.
        let mut got = Vec::with_capacity(512);
        let mut buf = [0u8; 1024];
        while !got.windows(2).any(|w| w == b"\r\n") && got.len() < RESPONSE_HEAD_MAX {
            stream.set_read_timeout(Some(left()))?;
            if Instant::now() >= deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&got);
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|_| line.starts_with("HTTP/1."))
            .ok_or_else(|| std::io::ErrorKind::InvalidData.into())
    }
}
