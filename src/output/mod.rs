//! The sinks every tool writes through: an aligned table with a header, JSON lines, and (in
//! [`histogram`]) latency histograms. Output is buffered and written once per poll round by the
//! consumer, never once per event.

pub mod frames;
pub mod histogram;
pub mod http;
pub mod losses;
pub mod metrics;
pub mod otlp;
pub mod schema;

use std::fmt::Display;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use crate::host::container::Resolver;
use crate::output::losses::LossCounts;
use crate::render::clock::{Clock, TimeMode};
pub use crate::render::column::{Align, Column};

/// Table or JSON lines (`--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// The cells of one row, gathered without allocating (a row has at most 12).
pub struct Cells<'a> {
    cells: [&'a dyn Display; 12],
    len: usize,
}

impl<'a> Default for Cells<'a> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Cells<'a> {
    pub fn new() -> Self {
        Cells {
            cells: [&""; 12],
            len: 0,
        }
    }

    pub fn push(&mut self, cell: &'a dyn Display) {
        self.cells[self.len] = cell;
        self.len += 1;
    }

    pub fn as_slice(&self) -> &[&'a dyn Display] {
        &self.cells[..self.len]
    }
}

/// The columns every per-event table shares around a tool's own, in one order with one set of
/// widths: the time first (`-T`/`-t`, see [`TimeMode`]), the tool's columns, CONTAINER
/// (`--print-container`), then the tool's tail (its free-text column: ARGS, PATH, EXIT). It
/// holds the clock and the container names, which the tool's JSON records use too.
pub struct EventTable {
    pub clock: Clock,
    pub containers: Resolver,
    time: TimeMode,
    print_container: bool,
    time_text: String,
}

impl EventTable {
    pub fn new(time: TimeMode, print_container: bool) -> Self {
        EventTable {
            clock: Clock::new(),
            containers: Resolver::default(),
            time,
            print_container,
            time_text: String::new(),
        }
    }

    /// Sets `sink`'s columns (and prints the header in table mode): time, `own`, container,
    /// `tail`.
    pub fn header(
        &self,
        sink: &mut Sink,
        own: impl IntoIterator<Item = Column>,
        tail: impl IntoIterator<Item = Column>,
    ) -> io::Result<()> {
        let mut cols: Vec<Column> = self.time.column().into_iter().collect();
        cols.extend(own);
        if self.print_container {
            cols.push(Resolver::header());
        }
        cols.extend(tail);
        sink.columns(cols)
    }

    /// One row of the event at `ts_ns` (kernel monotonic time) from cgroup `cgroup_id`, in
    /// the header's order.
    pub fn row(
        &mut self,
        sink: &mut Sink,
        ts_ns: u64,
        cgroup_id: u64,
        own: &[&dyn Display],
        tail: &[&dyn Display],
    ) -> io::Result<()> {
        let time = self.clock.cell(self.time, ts_ns, &mut self.time_text);
        let mut cells = Cells::new();
        if self.time != TimeMode::None {
            cells.push(&time);
        }
        for &cell in own {
            cells.push(cell);
        }
        if self.print_container {
            cells.push(self.containers.column(cgroup_id));
        }
        for &cell in tail {
            cells.push(cell);
        }
        sink.row(cells.as_slice())
    }
}

/// Where a tool's rows go.
pub struct Sink {
    out: BufWriter<Box<dyn Write>>,
    format: Format,
    columns: Vec<Column>,
    metrics: Option<metrics::Exporter>,
    otlp: Option<std::sync::Arc<otlp::Client>>,
}

impl Sink {
    /// Buffered standard output.
    pub fn stdout(format: Format) -> Self {
        Self::new(Box::new(io::stdout()), format)
    }

    pub fn new(writer: Box<dyn Write>, format: Format) -> Self {
        Sink {
            out: BufWriter::with_capacity(64 * 1024, writer),
            format,
            columns: Vec::new(),
            metrics: None,
            otlp: None,
        }
    }

    /// Also sends the JSON records as OTLP log records (see [`otlp`]).
    pub fn with_otlp(mut self, client: Option<std::sync::Arc<otlp::Client>>) -> Self {
        self.otlp = client;
        self
    }

    /// At the end of a run, after the last metrics: sends what OTLP export has queued (a
    /// bounded wait), so that the loss report that follows counts what could not be sent.
    pub fn close_export(&mut self) {
        if let Some(c) = self.otlp.take() {
            c.close();
        }
    }

    /// Also exports Prometheus metrics (see [`metrics`]).
    pub fn with_metrics(mut self, exporter: Option<metrics::Exporter>) -> Self {
        self.metrics = exporter;
        self
    }

    /// Whether Prometheus metrics are exported (a tool keeps what only they need only then).
    pub fn exports_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// Whether metrics are exported and an export is due (`final_export`: at the end of a
    /// run, always).
    pub fn metrics_due(&self, now: std::time::Instant, final_export: bool) -> bool {
        self.metrics
            .as_ref()
            .is_some_and(|m| final_export || m.due(now))
    }

    pub fn publish_metrics(
        &mut self,
        exp: metrics::Exposition,
        now: std::time::Instant,
    ) -> anyhow::Result<()> {
        match &mut self.metrics {
            Some(m) => m.publish(exp, now),
            None => Ok(()),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Sets the table's columns and, in table mode, prints the header.
    pub fn columns(&mut self, columns: Vec<Column>) -> io::Result<()> {
        self.columns = columns;
        if self.format == Format::Table {
            let names: Vec<&dyn Display> = self
                .columns
                .iter()
                .map(|c| &c.name as &dyn Display)
                .collect();
            write_row(&mut self.out, &self.columns, &names)?;
        }
        Ok(())
    }

    /// One table row: one cell per column, padded to the column's width.
    pub fn row(&mut self, cells: &[&dyn Display]) -> io::Result<()> {
        write_row(&mut self.out, &self.columns, cells)
    }

    /// One JSON object on a line.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::from)?;
        if let Some(otlp) = &self.otlp {
            otlp.log(&serde_json::to_value(value).map_err(io::Error::from)?);
        }
        self.out.write_all(b"\n")
    }

    /// Reports, while running, that events have been lost so far: a JSON record in the JSON
    /// stream, a warning on stderr next to the table.
    pub fn lost(&mut self, tool: &str, counts: &LossCounts) -> io::Result<()> {
        match self.format {
            Format::Json => self.json(&counts.json()),
            Format::Table => {
                self.out.flush()?;
                eprintln!("{tool}: WARNING: {}", counts.brief());
                Ok(())
            }
        }
    }

    /// At the end of a run: the loss record, in the JSON stream only (the table's report goes
    /// to stderr, one line per cause).
    pub fn final_losses(&mut self, counts: &LossCounts) -> io::Result<()> {
        if self.is_json() {
            self.json(&counts.json())?;
        }
        Ok(())
    }

    /// The raw writer, for output that is neither rows nor JSON records (histograms).
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_row(out: &mut impl Write, columns: &[Column], cells: &[&dyn Display]) -> io::Result<()> {
    let last = cells.len().saturating_sub(1);
    for (i, cell) in cells.iter().enumerate() {
        let col = columns.get(i);
        match col {
            Some(col) if i < last => match col.align {
                Align::Left => write!(out, "{:<w$} ", cell, w = col.width)?,
                Align::Right => write!(out, "{:>w$} ", cell, w = col.width)?,
            },
            _ => write!(out, "{cell}")?,
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn table_aligns_columns_and_leaves_the_last_free() {
        let buf = Shared::default();
        let mut sink = Sink::new(Box::new(buf.clone()), Format::Table);
        sink.columns(vec![
            Column::left("PCOMM", 6),
            Column::right("PID", 5),
            Column::left("ARGS", 0),
        ])
        .unwrap();
        sink.row(&[&"ls", &42, &"/bin/ls -l"]).unwrap();
        sink.flush().unwrap();
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        assert_eq!(text, "PCOMM    PID ARGS\nls        42 /bin/ls -l\n");
    }

    #[test]
    fn json_is_one_object_per_line() {
        let buf = Shared::default();
        let mut sink = Sink::new(Box::new(buf.clone()), Format::Json);
        sink.json(&serde_json::json!({"pid": 1})).unwrap();
        let counts = LossCounts {
            counts: vec![(&crate::output::losses::RINGBUF_FULL, 3)],
        };
        sink.lost("t", &counts).unwrap();
        sink.flush().unwrap();
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        assert_eq!(
            text,
            "{\"pid\":1}\n{\"schema_url\":\"urn:coretrace:events:1\",\"event.name\":\"losses\",\"lost_events\":3,\"lost_by_cause\":{\"ringbuf_full\":3}}\n"
        );
    }
}
