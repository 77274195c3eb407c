//! The access log: one line per request (JSON, or Envoy's text format) with Envoy's
//! default fields and response flags. Each worker writes its lines into a buffer of its
//! own; a thread of its own writes the full buffers out, so that requests never wait on
//! the disk and no line crosses threads.
//!
//! Response flags, as Envoy spells them: `NR` no route, `UH` no healthy upstream, `UF`
//! connect failure, `UO` overflow, `UT` timeout, `URX` retries exhausted, `UC` upstream
//! reset, `FI` fault abort, `DI` fault delay, and Portcullis's own `WF` (a Wasm policy or
//! plugin failed).

mod clock;
mod format;
mod outcome;

use std::cell::RefCell;
use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue};
use http_body::{Frame, SizeHint};

use super::body::{Body, BoxError};
use super::metrics::Finished;
use crate::runtime::Generation;
pub use format::Format;
use format::{Line, Written};
pub use outcome::{Decision, Outcome, Policy, Said};

/// Buffers queued for the writer before new ones are dropped (16 MiB).
const QUEUE: usize = 256;

/// A thread's buffer is handed to the writer once it holds this many bytes.
const BUFFER_BYTES: usize = 64 * 1024;

/// How often workers hand over their buffers, full or not, and the writer writes out
/// what it was handed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

thread_local! {
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

    /// Appends `line` to this thread's buffer, handing the buffer to the writer once it
    /// is full: workers never wait on the writer, and rarely talk to it.
    fn write<'a>(&self, line: Line<'a, impl Iterator<Item = Written<'a>>>) {
        let full = BUFFER.with_borrow_mut(|buffer| {
            self.format.write(line, buffer);
            buffer.len() >= BUFFER_BYTES
        });
        if full {
            self.flush_thread();
        }
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

/// What a request's line needs of the request, captured when it arrives. Header values
/// are the request's own (reference-counted) bytes, so capturing them copies nothing.
pub struct Entry {
    started: Instant,
    method: http::Method,
    path: Option<PathAndQuery>,
    protocol: &'static str,
    bytes_received: Option<u64>,
    x_forwarded_for: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    authority: Option<HeaderValue>,
    grpc: bool,
    #[cfg(feature = "otel")]
    span: Option<super::spans::RequestSpan>,
}

impl Entry {
    /// Captures the request's fields, and starts its span when spans are on (which
    /// points the request's `traceparent` at it).
    pub fn new<B: http_body::Body>(request: &mut http::Request<B>, telemetry: &Telemetry) -> Self {
        #[cfg(feature = "otel")]
        let span = telemetry.spans.as_ref().map(|spans| {
            let method = request.method().clone();
            spans.start(&method, request.headers_mut())
        });
        #[cfg(not(feature = "otel"))]
        let _ = telemetry;
        let headers = request.headers();
        let protocol = match request.version() {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let authority = headers.get(HOST).cloned().or_else(|| {
            request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        Self {
            started: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path_and_query().cloned(),
            protocol,
            bytes_received: request.body().size_hint().exact(),
            x_forwarded_for: headers.get(X_FORWARDED_FOR).cloned(),
            user_agent: headers.get(USER_AGENT).cloned(),
            request_id: headers.get(X_REQUEST_ID).cloned(),
            authority,
            grpc: headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc")),
            #[cfg(feature = "otel")]
            span,
        }
    }

    /// Wraps the response so that its line is written when the body ends; `generation`
    /// names the routes, clusters and policies `outcome` notes by index.
    pub fn finish(
        self,
        telemetry: &'static Telemetry,
        generation: Arc<Generation>,
        outcome: Outcome,
        response: http::Response<Body>,
    ) -> http::Response<Body> {
        let (parts, body) = response.into_parts();
        let body = Logged {
            inner: body,
            finishing: Some(Finishing {
                status: parts.status.as_u16(),
                entry: self,
                outcome,
                telemetry,
                generation,
            }),
            sent: 0,
        };
        http::Response::from_parts(parts, super::body::boxed(body))
    }
}

/// A request whose response is on its way, what happened to it, and where it will be
/// reported.
struct Finishing {
    entry: Entry,
    status: u16,
    outcome: Outcome,
    telemetry: &'static Telemetry,
    generation: Arc<Generation>,
}

impl Finishing {
    /// The request's line, once its response has ended.
    fn line(&self, bytes_sent: u64, duration: u64) -> Line<'_, impl Iterator<Item = Written<'_>>> {
        let (entry, generation) = (&self.entry, &*self.generation);
        let policies = self.outcome.decisions().iter().map(|decision| {
            let (prefix, said) = decision.decision.parts(generation);
            Written {
                policy: decision.policy.name(generation),
                prefix,
                said,
            }
        });
        Line {
            start_time: clock::wall_clock(entry.started),
            method: entry.method.as_str(),
            path: entry.path.as_ref().map_or("/", |p| p.as_str()),
            protocol: entry.protocol,
            response_code: self.status,
            response_flags: &self.outcome.flags,
            bytes_received: entry.bytes_received,
            bytes_sent,
            duration,
            upstream_service_time: self.outcome.upstream_service_time,
            x_forwarded_for: text(&entry.x_forwarded_for),
            user_agent: text(&entry.user_agent),
            request_id: text(&entry.request_id),
            authority: text(&entry.authority),
            upstream_host: self.outcome.upstream_host,
            route_name: self.outcome.route.map(|id| generation.route_name(id)),
            policies,
        }
    }

    /// Counts the request, writes its line and ends its span, `bytes_sent` after its
    /// response ended.
    fn report(self, bytes_sent: u64) {
        let duration = self.entry.started.elapsed().as_millis() as u64;
        let (entry, outcome, generation) = (&self.entry, &self.outcome, &*self.generation);
        if let Some(metrics) = &self.telemetry.metrics {
            let cluster = outcome.cluster.map(|c| &generation.clusters[c]);
            metrics.record(&Finished {
                flags: &outcome.flags,
                service: cluster.map(|c| &*c.service),
                version: cluster.and_then(|c| c.subset.as_deref()),
                status: self.status,
                grpc: entry.grpc,
                duration_ms: duration,
                request_bytes: entry.bytes_received,
                response_bytes: bytes_sent,
            });
        }
        if let Some(log) = &self.telemetry.log {
            log.write(self.line(bytes_sent, duration));
        }
        #[cfg(feature = "otel")]
        if let Some(span) = self.entry.span {
            span.end(super::spans::Finished {
                path: self.entry.path.as_ref().map_or("/", |p| p.path()),
                status: self.status,
                flags: &self.outcome.flags,
                route: self.outcome.route.map(|id| self.generation.route_name(id)),
                upstream: self.outcome.upstream_host,
            });
        }
    }
}

/// A response body that reports its request when it ends or is dropped.
struct Logged {
    inner: Body,
    finishing: Option<Finishing>,
    sent: u64,
}

impl Logged {
    fn write(&mut self) {
        if let Some(finishing) = self.finishing.take() {
            finishing.report(self.sent);
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                self.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
                if self.inner.is_end_stream() {
                    self.write();
                }
            }
            Poll::Ready(_) => self.write(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.write();
    }
}

/// A header value as text, if it is visible ASCII.
fn text(value: &Option<HeaderValue>) -> Option<&str> {
    value.as_ref().and_then(|v| v.to_str().ok())
}
