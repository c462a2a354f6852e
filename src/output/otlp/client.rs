//! The sending side of OTLP export: a bounded queue the consumer's thread offers records to
//! without ever waiting, and a thread that batches log records (up to [`BATCH`] records, or
//! what came within [`BATCH_DELAY`]) and POSTs them, and each metrics snapshot ([`http`]),
//! retrying what the specification says to retry. What cannot be queued or sent is counted in
//! [`Lost`], by cause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::http;
use super::proto::{self, Origin};
use super::{Config, Lost, Url, LOST};
use crate::output::metrics::Exposition;

/// Records the queue holds (the SDKs' default for logs): about 2 MB of typical records.
pub const QUEUE: usize = 2048;
/// Log records per request at most (the SDKs' default batch).
pub const BATCH: usize = 512;
/// How long a log record waits for others before its batch is sent.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Requests per export at most: the first and its retries.
pub const ATTEMPTS: u32 = 4;
/// The wait before the first retry, doubled before each next one up to BACKOFF_MAX (less a
/// random quarter), unless the endpoint says how long with `Retry-After`.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

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
    /// Set by `close`: the sender stops retrying (the run is ending, a user waits for it).
    closing: Arc<AtomicBool>,
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
        let closing = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Client {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(done),
            lost: lost.clone(),
            pending: pending.clone(),
            closing: closing.clone(),
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
            closing,
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

    /// At the end of a run: sends what is queued, one request each (no more retries: a user
    /// waits), waiting at most the timeout and a second; what is still unsent then counts as
    /// lost with the endpoint down.
    pub fn close(&self) {
        let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        self.closing.store(true, Ordering::Relaxed);
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
    closing: Arc<AtomicBool>,
}

/// How an export went.
enum Outcome {
    /// Accepted, but for the records (log records, or data points) its partial success rejected.
    Sent {
        rejected: u64,
    },
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
        let (counter, lost) = match outcome {
            // Never more than were sent, whatever the endpoint says: a metrics snapshot
            // (n = 1) with rejected points counts as one.
            Outcome::Sent { rejected } => (&self.lost.rejected, rejected.min(n)),
            Outcome::Down => (&self.lost.endpoint_down, n),
            Outcome::Rejected => (&self.lost.rejected, n),
        };
        if lost > 0 {
            counter.fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// One export: POSTs until an answer that is not retryable, within the timeout in all
    /// (the specification's "time to wait for each batch export"). 429, 502, 503, 504 and no
    /// answer are retried after an exponential backoff (or the `Retry-After` asked for), at
    /// most [`ATTEMPTS`] times; then, or when the wait would pass the timeout or the run is
    /// ending (`Client::close`), the endpoint is down. A 2xx is sent, less what its partial success rejected; anything else is refused.
    fn post(&self, url: &Url, body: &[u8]) -> Outcome {
        let deadline = Instant::now() + self.config.timeout;
        let mut backoff = BACKOFF_FIRST;
        for attempt in 1..=ATTEMPTS {
            let wait = match http::post(url, &self.config.headers, body, deadline) {
                Ok(r) if (200..300).contains(&r.status) => {
                    return Outcome::Sent {
                        rejected: proto::rejected(&r.body),
                    }
                }
                Ok(r) if matches!(r.status, 429 | 502 | 503 | 504) => r.retry_after,
                Ok(_) => return Outcome::Rejected,
                Err(_) => None,
            };
            let wait = wait.unwrap_or_else(|| jitter(backoff));
            if attempt == ATTEMPTS || Instant::now() + wait >= deadline || !self.pause(wait) {
                break;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        Outcome::Down
    }
}

impl Sender {
    /// Waits `wait` before a retry; false, at once, if the run is ending.
    fn pause(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while !self.closing.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        false
    }
}

/// `d` less up to a quarter, so that exporters the same outage stopped do not all retry at
/// once (the clock's nanoseconds are random enough for that).
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d - d / 4 * (nanos % 1000) / 1000
}
