//! The access log: one JSON line per request with Envoy's default fields and response
//! flags, written by a thread of its own so that requests never wait on the disk.
//!
//! Response flags, as Envoy spells them: `NR` no route, `UH` no healthy upstream, `UF`
//! connect failure, `UO` overflow, `UT` timeout, `URX` retries exhausted, `UC` upstream
//! reset, `FI` fault abort, `DI` fault delay, and Portcullis's own `WF` (a Wasm policy or
//! plugin failed).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::body::{Body, BoxError};

/// Lines queued for the writer before new ones are dropped.
const QUEUE: usize = 65_536;

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// Sends finished log lines to the writer thread.
#[derive(Debug, Clone)]
pub struct AccessLog {
    lines: SyncSender<String>,
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
        let (lines, receiver) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buffered = std::io::BufWriter::new(&mut out);
                while let Ok(line) = receiver.recv() {
                    let _ = writeln!(buffered, "{line}");
                    // Flush when the queue is drained, so lines appear promptly but in batches.
                    while let Ok(line) = receiver.try_recv() {
                        let _ = writeln!(buffered, "{line}");
                    }
                    let _ = buffered.flush();
                }
            })?;
        Ok(Self { lines })
    }

    fn write(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line) {
            tracing::warn!("access log queue full; a line was dropped");
        }
    }
}

/// What the data path learned about a request, carried to the log in the response's
/// extensions.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub flags: Vec<&'static str>,
    pub route_name: Option<String>,
    pub upstream_host: Option<SocketAddr>,
    /// Time from sending upstream to the response head, in milliseconds.
    pub upstream_service_time: Option<u64>,
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

/// The request side of a log line, captured when the request arrives.
pub struct Entry {
    started: Instant,
    start_time: SystemTime,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Entry {
    /// Captures the request's fields.
    pub fn new<B: http_body::Body>(request: &http::Request<B>) -> Self {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let mut fields = serde_json::Map::new();
        fields.insert("method".into(), request.method().as_str().into());
        fields.insert(
            "path".into(),
            request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .into(),
        );
        fields.insert("protocol".into(), format!("{:?}", request.version()).into());
        fields.insert(
            "authority".into(),
            header("host")
                .or_else(|| request.uri().authority().map(|a| a.to_string()))
                .into(),
        );
        fields.insert("x_forwarded_for".into(), header("x-forwarded-for").into());
        fields.insert("user_agent".into(), header("user-agent").into());
        fields.insert("request_id".into(), header("x-request-id").into());
        fields.insert(
            "bytes_received".into(),
            request.body().size_hint().exact().into(),
        );
        Self {
            started: Instant::now(),
            start_time: SystemTime::now(),
            fields,
        }
    }

    /// Wraps the response so that its line is written when the body ends.
    pub fn finish(self, log: &AccessLog, response: http::Response<Body>) -> http::Response<Body> {
        let (parts, body) = response.into_parts();
        let outcome = parts
            .extensions
            .get::<Outcome>()
            .cloned()
            .unwrap_or_default();
        let mut entry = self;
        let fields = &mut entry.fields;
        fields.insert("response_code".into(), parts.status.as_u16().into());
        fields.insert(
            "response_flags".into(),
            if outcome.flags.is_empty() {
                "-".into()
            } else {
                outcome.flags.join(",").into()
            },
        );
        fields.insert("route_name".into(), outcome.route_name.into());
        fields.insert(
            "upstream_host".into(),
            outcome.upstream_host.map(|a| a.to_string()).into(),
        );
        fields.insert(
            "upstream_service_time".into(),
            outcome.upstream_service_time.into(),
        );
        let body = Logged {
            inner: body,
            entry: Some((entry, log.clone())),
            sent: 0,
        };
        http::Response::from_parts(parts, super::body::boxed(body))
    }
}

/// A response body that writes its request's log line when it ends or is dropped.
struct Logged {
    inner: Body,
    entry: Option<(Entry, AccessLog)>,
    sent: u64,
}

impl Logged {
    fn write(&mut self) {
        let Some((mut entry, log)) = self.entry.take() else {
            return;
        };
        let fields = &mut entry.fields;
        fields.insert("bytes_sent".into(), self.sent.into());
        fields.insert(
            "duration".into(),
            (entry.started.elapsed().as_millis() as u64).into(),
        );
        fields.insert(
            "start_time".into(),
            humantime::format_rfc3339_millis(entry.start_time)
                .to_string()
                .into(),
        );
        log.write(serde_json::Value::Object(std::mem::take(fields)).to_string());
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
