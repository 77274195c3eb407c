//! The admin API, off by default (`--admin ADDR`): `/ready`, `/config_dump`, `/plugins`,
//! `/metrics`.

pub mod collector;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::proxy::body::{Body, full};
use crate::proxy::metrics::Metrics;
use crate::runtime::Generation;
use crate::runtime::reload::ReloadStatus;

/// What the admin API reads.
#[derive(Clone)]
pub struct Admin {
    pub current: Arc<ArcSwap<Generation>>,
    pub status: Arc<Mutex<ReloadStatus>>,
    pub metrics: Option<Arc<Metrics>>,
}

impl Admin {
    /// Serves the API on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let admin = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.answer(&request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn answer(&self, request: &Request<Incoming>) -> Response<Body> {
        let generation = self.current.load();
        let status = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let body = match request.uri().path() {
            "/ready" => return text(StatusCode::OK, ready(&status)),
            "/metrics" => {
                let body = self
                    .metrics
                    .as_ref()
                    .map(|m| m.encode())
                    .unwrap_or_default();
                let mut response = Response::new(full(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return response;
            }
            "/config_dump" => json!({ "status": status, "config": generation.config }),
            "/plugins" => {
                let policies = &generation.policies;
                let builtins = [
                    (policies.route_match.name(), &policies.route_match.stats),
                    (policies.destination.name(), &policies.destination.stats),
                    (policies.endpoint.name(), &policies.endpoint.stats),
                    (policies.fault.name(), &policies.fault.stats),
                    (policies.retry.name(), &policies.retry.stats),
                    (policies.breaker.name(), &policies.breaker.stats),
                    (policies.outlier.name(), &policies.outlier.stats),
                ];
                let stats = |s: &crate::wasm::stats::PolicyStats| {
                    json!({
                        "calls": s.calls.load(Ordering::Relaxed),
                        "failures": s.failures.load(Ordering::Relaxed),
                        "instances": s.instances.load(Ordering::Relaxed),
                        "memory_high_water_bytes": s.memory_high_water.load(Ordering::Relaxed),
                        "quarantines": s.quarantines.load(Ordering::Relaxed),
                        "log_lines_dropped": s.log.dropped.load(Ordering::Relaxed),
                    })
                };
                json!({
                    "generation": status.generation,
                    "loaded_at": status.loaded_at,
                    "builtin": builtins.iter().map(|(name, s)| json!({ "name": &***name, "stats": stats(s) })).collect::<Vec<_>>(),
                    "plugins": generation.plugins.iter().map(|p| json!({
                        "name": p.plugin.name,
                        "path": p.plugin.path,
                        "sha256": p.sha256,
                        "phase": format!("{:?}", p.plugin.phase),
                        "priority": p.plugin.priority,
                        "stats": stats(p.stats()),
                    })).collect::<Vec<_>>(),
                })
            }
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        };
        let mut response = Response::new(full(
            serde_json::to_string_pretty(&body).unwrap_or_default(),
        ));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// `/ready`'s body: the gateway serves (on its last good config); a failed reload is
/// said on a second line.
fn ready(status: &ReloadStatus) -> String {
    match &status.last_error {
        None => "ready\n".to_string(),
        Some(error) => format!(
            "ready\nlast reload failed, the previous config serves: {}\n",
            error.lines().next().unwrap_or_default()
        ),
    }
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response
}

/// Binds the admin address.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
