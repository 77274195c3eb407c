//! Real HTTP servers on loopback that say who they are and what they received.
//!
//! - any path: a JSON report `{name, method, path, headers, body_bytes}`;
//! - `/echo…`: streams the request body back;
//! - `/bytes/N`: streams N bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// A running upstream server.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

impl Upstream {
    /// Starts a server named `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let name: Arc<str> = name.into();
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (name, counter) = (name.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        respond(name.clone(), request)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, hits }
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn respond(name: Arc<str>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
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
