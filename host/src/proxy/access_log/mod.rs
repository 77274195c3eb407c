//! The access log: one line per request (JSON, or Envoy's text format) with Envoy's
//! default fields and response flags. Each worker formats its finished requests' lines
//! in batches (the formatting code and data stay in cache) into a buffer of its own; a
//! thread of its own writes the full buffers out, so that requests never wait on the
//! disk and no line crosses threads.
//!
//! Response flags, as Envoy spells them: `NR` no route, `UH` no healthy upstream, `UF`
//! connect failure, `UO` overflow, `UT` timeout, `URX` retries exhausted, `UC` upstream
//! reset (before the response or during its body), `DC` downstream went away before the
//! response ended, `FI` fault abort, `DI` fault delay, and Portcullis's own `WF` (a Wasm
//! policy or plugin failed).

mod clock;
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

use entry::Done;
pub use entry::Entry;
pub use format::Format;
pub use outcome::{Decision, Outcome, Policy, Said};

/// Buffers queued for the writer before new ones are dropped (16 MiB).
const QUEUE: usize = 256;

/// A thread's buffer is handed to the writer once it holds this many bytes.
const BUFFER_BYTES: usize = 64 * 1024;

/// How often workers hand over their buffers, full or not, and the writer writes out
/// what it was handed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Lines a worker formats at a time.
const BATCH: usize = 32;

thread_local! {
    /// Requests finished on this thread whose lines are not yet formatted.
    static DONE: RefCell<Vec<Done>> = RefCell::new(Vec::with_capacity(BATCH));
    /// Lines finished on this thread and not yet handed to the writer.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
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
    pub fn start(destination: Destination, format: Format) -> std::io::Result<Self> {
        let mut out: Box<dyn std::io::Write + Send> = match &destination {
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
                        let mut spare = writer.spare.lock().unwrap_or_else(|e| e.into_inner());
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
        *writer.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
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
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            self.writer.closing.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    /// Queues `done`'s line on this thread; lines are formatted in batches of [`BATCH`]
    /// into the thread's buffer, which goes to the writer once full: workers never wait
    /// on the writer, and rarely talk to it.
    fn write(&self, done: Done) {
        let batch = DONE.with_borrow_mut(|queued| {
            queued.push(done);
            queued.len() >= BATCH
        });
        if batch && self.format_queued() {
            self.flush_thread();
        }
    }

    /// Formats this thread's queued lines into its buffer; true when the buffer is full.
    fn format_queued(&self) -> bool {
        DONE.with_borrow_mut(|queued| {
            BUFFER.with_borrow_mut(|buffer| {
                for done in queued.drain(..) {
                    self.format.write(done.line(), buffer);
                }
                buffer.len() >= BUFFER_BYTES
            })
        })
    }

    /// An empty buffer: one the writer has written out, or a new one.
    fn spare_buffer(&self) -> Vec<u8> {
        let spare = self
            .writer
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BUFFER_BYTES + 4096))
    }

    /// Hands this thread's buffer to the writer; workers call it on a timer too.
    pub fn flush_thread(&self) {
        self.format_queued();
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
    pub log: Option<AccessLog>,
    pub metrics: Option<Arc<super::metrics::Metrics>>,
    /// OpenTelemetry spans, when an OTLP endpoint is given.
    #[cfg(feature = "otel")]
    pub spans: Option<super::spans::Spans>,
}
