//! The access log: one JSON line per request with Envoy's default fields and response
//! flags. Each worker batches its lines; a thread of its own writes the batches, so that
//! requests never wait on the disk.
//!
//! Response flags, as Envoy spells them: `NR` no route, `UH` no healthy upstream, `UF`
//! connect failure, `UO` overflow, `UT` timeout, `URX` retries exhausted, `UC` upstream
//! reset, `FI` fault abort, `DI` fault delay, and Portcullis's own `WF` (a Wasm policy or
//! plugin failed).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderValue;
use http_body::{Frame, SizeHint};
use serde::Serialize;

use super::body::{Body, BoxError};
use super::metrics::Finished;

/// Batches queued for the writer before new ones are dropped.
const QUEUE: usize = 1024;

/// A thread's batch is handed to the writer once it holds this many lines.
const BATCH_LINES: usize = 256;

/// How often workers hand over their batches, full or not.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

thread_local! {
    /// Lines finished on this thread and not yet handed to the writer.
    static BATCH: std::cell::RefCell<Vec<Line>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// Sends finished log lines to the writer thread.
#[derive(Debug, Clone)]
pub struct AccessLog {
    lines: SyncSender<Vec<Line>>,
}

impl AccessLog {
    /// Starts the writer thread.
    pub fn start(destination: Destination) -> std::io::Result<Self> {
        let mut out: Box<dyn std::io::Write + Send> = match &destination {
            Destination::Stdout => Box::new(std::io::stdout()),
            Destination::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (lines, receiver) = sync_channel::<Vec<Line>>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                // Lines are serialized here, off the workers.
                let mut text = Vec::with_capacity(BATCH_LINES * 512);
                while let Ok(batch) = receiver.recv() {
                    text.clear();
                    for line in &batch {
                        if serde_json::to_writer(&mut text, line).is_ok() {
                            text.push(b'\n');
                        }
                    }
                    let _ = out.write_all(&text).and_then(|()| out.flush());
                }
            })?;
        Ok(Self { lines })
    }

    /// Appends a line to this thread's batch, handing the batch to the writer once it is
    /// full: workers never wait on the writer, and rarely talk to it.
    fn write(&self, line: Line) {
        let full = BATCH.with_borrow_mut(|batch| {
            batch.push(line);
            batch.len() >= BATCH_LINES
        });
        if full {
            self.flush_thread();
        }
    }

    /// Hands this thread's batch to the writer; workers call it on a timer too.
    pub fn flush_thread(&self) {
        let batch = BATCH
            .with_borrow_mut(|batch| std::mem::replace(batch, Vec::with_capacity(BATCH_LINES)));
        if batch.is_empty() {
            return;
        }
        if let Err(TrySendError::Full(_)) = self.lines.try_send(batch) {
            tracing::warn!("access log queue full; a batch of lines was dropped");
        }
    }
}

/// What the data path learned about a request, carried to the log in the response's
/// extensions.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub flags: Vec<&'static str>,
    pub route_name: Option<Arc<str>>,
    pub upstream_host: Option<SocketAddr>,
    /// Time from sending upstream to the response head, in milliseconds.
    pub upstream_service_time: Option<u64>,
    /// The destination's host and subset, for metrics.
    pub destination_service: Option<Arc<str>>,
    pub destination_version: Option<Arc<str>>,
    /// What the policies and plugins decided, in order.
    pub policies: Vec<Decision>,
}

/// One policy's or plugin's decision about a request.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    #[serde(serialize_with = "text")]
    pub policy: Arc<str>,
    #[serde(serialize_with = "display")]
    pub decision: Said,
}

/// What a policy decided, written out only when the line is.
#[derive(Debug, Clone)]
pub enum Said {
    /// The route matched, by name.
    Route(Arc<str>),
    Static(&'static str),
    Text(String),
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Route(name) => write!(f, "route {name}"),
            Self::Static(text) => f.write_str(text),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// The decisions of one request, noted only when the access log will show them.
pub struct Decisions(Option<Vec<Decision>>);

impl Decisions {
    /// Notes decisions when `logged`.
    pub fn new(logged: bool) -> Self {
        Self(logged.then(|| Vec::with_capacity(4)))
    }

    /// Notes that `policy` decided what `decision` says.
    pub fn note(&mut self, policy: &Arc<str>, decision: impl FnOnce() -> Said) {
        if let Some(decisions) = &mut self.0 {
            decisions.push(Decision {
                policy: policy.clone(),
                decision: decision(),
            });
        }
    }

    /// Hands the decisions to `response`'s outcome.
    pub fn attach<B>(self, response: &mut http::Response<B>) {
        if let Some(decisions) = self.0 {
            Outcome::of(response).policies = decisions;
        }
    }
}

/// Where finished requests are reported: the access log and the metrics, each optional.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub log: Option<AccessLog>,
    pub metrics: Option<std::sync::Arc<super::metrics::Metrics>>,
    /// OpenTelemetry spans, when an OTLP endpoint is given.
    #[cfg(feature = "otel")]
    pub spans: Option<super::spans::Spans>,
}

impl Outcome {
    /// Adds `flag` to the response's outcome.
    pub fn flag<B>(response: &mut http::Response<B>, flag: &'static str) {
        Self::of(response).flags.push(flag);
    }

    /// The response's outcome, created on first use.
    pub fn of<B>(response: &mut http::Response<B>) -> &mut Outcome {
        response.extensions_mut().get_or_insert_default::<Outcome>()
    }
}

/// One access log line. Request fields keep the request's own (reference-counted)
/// values, so that capturing them costs no copies.
#[derive(Serialize)]
struct Line {
    #[serde(serialize_with = "rfc3339")]
    start_time: SystemTime,
    #[serde(serialize_with = "as_str")]
    method: http::Method,
    #[serde(serialize_with = "path")]
    path: http::Uri,
    protocol: &'static str,
    response_code: u16,
    response_flags: String,
    bytes_received: Option<u64>,
    bytes_sent: u64,
    duration: u64,
    upstream_service_time: Option<u64>,
    #[serde(serialize_with = "header")]
    x_forwarded_for: Option<HeaderValue>,
    #[serde(serialize_with = "header")]
    user_agent: Option<HeaderValue>,
    #[serde(serialize_with = "header")]
    request_id: Option<HeaderValue>,
    #[serde(serialize_with = "header")]
    authority: Option<HeaderValue>,
    upstream_host: Option<SocketAddr>,
    #[serde(serialize_with = "optional_text")]
    route_name: Option<Arc<str>>,
    policies: Vec<Decision>,
}

fn text<S: serde::Serializer>(value: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value)
}

fn optional_text<S: serde::Serializer>(value: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(text) => s.serialize_some(&**text),
        None => s.serialize_none(),
    }
}

fn display<S: serde::Serializer>(value: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*time))
}

fn as_str<S: serde::Serializer>(method: &http::Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(method.as_str())
}

fn path<S: serde::Serializer>(uri: &http::Uri, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(uri.path_and_query().map_or("/", |p| p.as_str()))
}

fn header<S: serde::Serializer>(value: &Option<HeaderValue>, s: S) -> Result<S::Ok, S::Error> {
    match value.as_ref().and_then(|v| v.to_str().ok()) {
        Some(text) => s.serialize_some(text),
        None => s.serialize_none(),
    }
}

/// The request side of a log line, captured when the request arrives.
pub struct Entry {
    started: Instant,
    line: Line,
    grpc: bool,
    outcome: Outcome,
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
        let header = |name: &str| request.headers().get(name).cloned();
        let protocol = match request.version() {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let authority = header("host").or_else(|| {
            request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let line = Line {
            start_time: SystemTime::now(),
            method: request.method().clone(),
            path: request.uri().clone(),
            protocol,
            response_code: 0,
            response_flags: String::new(),
            bytes_received: request.body().size_hint().exact(),
            bytes_sent: 0,
            duration: 0,
            upstream_service_time: None,
            x_forwarded_for: header("x-forwarded-for"),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
            authority,
            upstream_host: None,
            route_name: None,
            policies: Vec::new(),
        };
        let grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
        Self {
            started: Instant::now(),
            line,
            grpc,
            outcome: Outcome::default(),
            #[cfg(feature = "otel")]
            span,
        }
    }

    /// Wraps the response so that its line is written when the body ends.
    pub fn finish(
        mut self,
        telemetry: &std::sync::Arc<Telemetry>,
        response: http::Response<Body>,
    ) -> http::Response<Body> {
        let (mut parts, body) = response.into_parts();
        if let Some(mut outcome) = parts.extensions.remove::<Outcome>() {
            self.line.response_flags = outcome.flags.join(",");
            self.line.route_name = outcome.route_name.take();
            self.line.upstream_host = outcome.upstream_host;
            self.line.upstream_service_time = outcome.upstream_service_time;
            self.line.policies = std::mem::take(&mut outcome.policies);
            self.outcome = outcome;
        }
        if self.line.response_flags.is_empty() {
            self.line.response_flags.push('-');
        }
        self.line.response_code = parts.status.as_u16();
        let body = Logged {
            inner: body,
            entry: Some((self, telemetry.clone())),
            sent: 0,
        };
        http::Response::from_parts(parts, super::body::boxed(body))
    }
}

/// A response body that writes its request's log line when it ends or is dropped.
struct Logged {
    inner: Body,
    entry: Option<(Entry, std::sync::Arc<Telemetry>)>,
    sent: u64,
}

impl Logged {
    fn write(&mut self) {
        let Some((entry, telemetry)) = self.entry.take() else {
            return;
        };
        let duration = entry.started.elapsed().as_millis() as u64;
        if let Some(metrics) = &telemetry.metrics {
            metrics.record(&Finished {
                outcome: &entry.outcome,
                status: entry.line.response_code,
                grpc: entry.grpc,
                duration_ms: duration,
                request_bytes: entry.line.bytes_received,
                response_bytes: self.sent,
            });
        }
        #[cfg(feature = "otel")]
        if let Some(span) = entry.span {
            let line = &entry.line;
            span.end(super::spans::Finished {
                path: line.path.path(),
                status: line.response_code,
                flags: &line.response_flags,
                route: line.route_name.as_deref(),
                upstream: line.upstream_host,
            });
        }
        if let Some(log) = &telemetry.log {
            let mut line = entry.line;
            line.bytes_sent = self.sent;
            line.duration = duration;
            log.write(line);
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
