//! The access log: one line per request (JSON, or Envoy's text format) with Envoy's
//! default fields and response flags. Each worker formats its finished requests' lines
//! in batches (the formatting code and data stay in cache) into a buffer of its own; a
//! thread of its own writes the full buffers out, so that requests never wait on the
//! disk and no line crosses threads.
//!
//! Response flags, as Envoy spells them: `NR` no route, `UH` no healthy upstream, `UF`
//! connect failure, `UO` overflow, `UT` timeout, `URX` retries exhausted, `UC` upstream
//! reset (before the response or during its body), `DC` downstream went away before the
//! response ended (status 0 when before its head), `FI` fault abort, `DI` fault delay,
//! and Portcullis's own `WF` (a Wasm policy or plugin failed).

mod clock;
mod connection;
mod entry;
mod format;
mod outcome;

use std::cell::RefCell;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use clock::Stamp;
pub use connection::ConnectionReport;
use entry::Done;
pub use entry::Pending;
pub use format::Format;
use format::{Line, Written};
pub use outcome::{Decision, Outcome, Policy, Said};

/// Buffers queued for the writer before new ones are dropped (16 MiB).
const QUEUE: usize = 256;

/// A thread's buffer is handed to the writer once it holds this many bytes.
const BUFFER_BYTES: usize = 64 * 1024;

/// How often workers report their queued requests and hand over their buffers, full or
/// not, and the writer writes out what it was handed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Requests a worker counts and logs at a time.
const BATCH: usize = 32;

thread_local! {
    /// Requests finished on this thread, not yet counted or logged.
    static DONE: RefCell<Vec<Done>> = RefCell::new(Vec::with_capacity(BATCH));
    /// Lines finished on this thread and not yet handed to the writer.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// Writes finished requests' lines through the writer thread.
#[derive(Debug, Clone)]
pub struct AccessLog {
    format: Format,
    buffers: SyncSender<Vec<u8>>,
    writer: Arc<Writer>,
}

/// The writer thread, what tells it to finish, and the buffers it has written out.
#[derive(Debug)]
struct Writer {
    thread: Mutex<Option<JoinHandle<()>>>,
    closing: AtomicBool,
    /// Empty buffers for workers to fill again: their pages are already mapped.
    spare: Mutex<Vec<Vec<u8>>>,
}

impl AccessLog {
    /// Starts the writer thread.
    pub fn start(destination: &Destination, format: Format) -> std::io::Result<Self> {
        let mut out: Box<dyn std::io::Write + Send> = match destination {
            Destination::Stdout => Box::new(std::io::stdout()),
            Destination::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (buffers, receiver) = sync_channel::<Vec<u8>>(QUEUE);
        let writer = Arc::new(Writer {
            thread: Mutex::new(None),
            closing: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
        });
        // The writer wakes on a timer rather than on every buffer, so that handing one
        // over costs a worker no system call.
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn({
                let writer = writer.clone();
                move || loop {
                    std::thread::park_timeout(FLUSH_EVERY);
                    let closing = writer.closing.load(Ordering::Acquire);
                    for mut text in receiver.try_iter() {
                        let _ = out.write_all(&text);
                        text.clear();
                        let mut spare = writer
                            .spare
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if spare.len() < QUEUE {
                            spare.push(text);
                        }
                    }
                    let _ = out.flush();
                    if closing {
                        return;
                    }
                }
            })?;
        *writer
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(thread);
        Ok(Self {
            format,
            buffers,
            writer,
        })
    }

    /// Writes out every buffer handed over so far and stops the writer; called on
    /// shutdown, once the workers have handed over their last lines.
    pub fn close(&self) {
        let thread = self
            .writer
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            self.writer.closing.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    /// Formats the lines of `done` into this thread's buffer; true when it is full.
    fn format(&self, done: &[Done]) -> bool {
        BUFFER.with_borrow_mut(|buffer| {
            for done in done {
                self.format.write(done.line(), buffer);
            }
            buffer.len() >= BUFFER_BYTES
        })
    }

    /// Formats `line` into this thread's buffer, handing it over when full.
    fn write<'a>(&self, line: Line<'a, impl Iterator<Item = Written<'a>>>) {
        let full = BUFFER.with_borrow_mut(|buffer| {
            self.format.write(line, buffer);
            buffer.len() >= BUFFER_BYTES
        });
        if full {
            self.hand_over();
        }
    }

    /// An empty buffer: one the writer has written out, or a new one.
    fn spare_buffer(&self) -> Vec<u8> {
        let spare = self
            .writer
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BUFFER_BYTES + 4096))
    }

    /// Hands this thread's buffer to the writer.
    fn hand_over(&self) {
        clock::reanchor();
        let Some(text) = BUFFER.with_borrow_mut(|buffer| {
            (!buffer.is_empty()).then(|| std::mem::replace(buffer, self.spare_buffer()))
        }) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = self.buffers.try_send(text) {
            tracing::warn!("access log queue full; lines were dropped");
        }
    }
}

/// Where finished requests are reported: the access log and the metrics, each optional.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The access log, when one is written.
    pub log: Option<AccessLog>,
    /// Request metrics, when they are kept.
    pub metrics: Option<Arc<super::metrics::Metrics>>,
    /// OpenTelemetry spans, when an OTLP endpoint is given.
    #[cfg(feature = "otel")]
    pub spans: Option<super::spans::Spans>,
}

impl Telemetry {
    /// Whether finished requests are queued to be counted or logged, which a worker
    /// then flushes on a timer.
    pub fn batched(&self) -> bool {
        self.log.is_some() || self.metrics.is_some()
    }

    /// Queues a finished request on its thread; requests are counted and their lines
    /// formatted in batches of [`BATCH`], which keeps that code and its data in cache,
    /// and a thread's full buffer goes to the writer: workers never wait on it, and
    /// rarely talk to it.
    fn queue(&self, done: Done) {
        let batch = DONE.with_borrow_mut(|queued| {
            queued.push(done);
            queued.len() >= BATCH
        });
        if batch && self.report_queued() {
            self.hand_over();
        }
    }

    /// Counts this thread's queued requests and formats their lines; true when the
    /// thread's log buffer is full.
    fn report_queued(&self) -> bool {
        DONE.with_borrow_mut(|queued| {
            if let Some(metrics) = &self.metrics {
                metrics.record_all(queued.iter().map(Done::finished));
            }
            let full = self.log.as_ref().is_some_and(|log| log.format(queued));
            queued.clear();
            full
        })
    }

    fn hand_over(&self) {
        if let Some(log) = &self.log {
            log.hand_over();
        }
    }

    /// Reports what this thread has queued and hands its lines to the writer; workers
    /// call it every [`FLUSH_EVERY`] and when they stop.
    pub fn flush_thread(&self) {
        self.report_queued();
        self.hand_over();
    }
}
