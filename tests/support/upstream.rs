//! Real HTTP servers on loopback that say who they are and what they received. The
//! behaviours below apply wherever the marker appears in the path (`/any/prefix/slow/100`).
//!
//! - any path: a JSON report `{name, method, path, headers, body_bytes}`;
//! - `/echo…`: streams the request body back;
//! - `/bytes/N`: streams N bytes;
//! - `/status/CODE`: answers CODE;
//! - `/fail/N/KEY`: answers 503 to the first N requests for KEY, then reports;
//! - `/slow/MS`: waits MS milliseconds, then reports;
//! - `/reset`: closes the connection without answering.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;
type Failures = Arc<Mutex<HashMap<String, usize>>>;

/// A running upstream server.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    connections: Arc<(AtomicUsize, AtomicUsize)>,
}

impl Upstream {
    /// Starts a server named `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> Self {
        Self::serve(name, None).await
    }

    /// Starts a server that answers every request with `status`.
    pub async fn failing(name: &str, status: u16) -> Self {
        Self::serve(name, Some(status)).await
    }

    async fn serve(name: &str, always: Option<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let connections: Arc<(AtomicUsize, AtomicUsize)> = Arc::default();
        let name: Arc<str> = name.into();
        let (counter, open) = (hits.clone(), connections.clone());
        let failures = Failures::default();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let now = open.0.fetch_add(1, Ordering::SeqCst) + 1;
                open.1.fetch_max(now, Ordering::SeqCst);
                let (name, counter, failures, open) = (
                    name.clone(),
                    counter.clone(),
                    failures.clone(),
                    open.clone(),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let path = match always {
                            Some(status) => format!("/status/{status}"),
                            None => String::new(),
                        };
                        respond(name.clone(), failures.clone(), path, request)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    open.0.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            hits,
            connections,
        }
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// The most connections that were ever open at once.
    pub fn max_connections(&self) -> usize {
        self.connections.1.load(Ordering::SeqCst)
    }
}

async fn respond(
    name: Arc<str>,
    failures: Failures,
    forced_path: String,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let full_path = match forced_path.is_empty() {
        true => request.uri().path().to_string(),
        false => forced_path,
    };
    let path = ["/status/", "/fail/", "/slow/", "/echo", "/bytes/"]
        .iter()
        .find_map(|marker| full_path.find(marker).map(|at| full_path[at..].to_string()))
        .unwrap_or_else(|| full_path.clone());
    let status = |code: u16| {
        let response = Response::builder()
            .status(code)
            .header("x-upstream", &*name)
            .body(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            );
        Ok(response.unwrap())
    };
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
        return status(code);
    }
    if let Some((n, key)) = path
        .strip_prefix("/fail/")
        .and_then(|rest| rest.split_once('/'))
    {
        let n: usize = n.parse().unwrap_or(0);
        let seen = {
            let mut failures = failures.lock().unwrap();
            let seen = failures.entry(key.to_string()).or_default();
            *seen += 1;
            *seen
        };
        if seen <= n {
            return status(503);
        }
    }
    if let Some(ms) = path.strip_prefix("/slow/").and_then(|ms| ms.parse().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if full_path.ends_with("/reset") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "resetting as asked",
        ));
    }
    if path.starts_with("/echo") {
        return Ok(Response::new(request.into_body().boxed()));
    }
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok::<_, hyper::Error>(Frame::data(chunk.slice(..len)))
        });
        return Ok(Response::new(
            StreamBody::new(futures_util::stream::iter(chunks)).boxed(),
        ));
    }
    let method = request.method().to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .keys()
        .map(|k| {
            let values: Vec<String> = request
                .headers()
                .get_all(k)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (k.to_string(), values.join(", ").into())
        })
        .collect();
    let body_bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let report = serde_json::json!({
        "name": &*name,
        "method": method,
        "path": path_and_query,
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let response = Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", &*name)
        .body(
            Full::new(Bytes::from(report.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap();
    Ok(response)
}
