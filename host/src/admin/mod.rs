//! The admin API, off by default (`--admin ADDR`): the web dashboard at `/`; `/ready`
//! (503 once the gateway drains);
//! `/metrics`; and JSON views: `/config_dump`, `/reloads`, `/listeners`, `/routes`,
//! `/clusters`, `/plugins`.

pub mod collector;
mod dashboard;
pub mod health;
mod views;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::reload::ReloadStatus;
use crate::runtime::Generation;
use crate::server::listeners::Listeners;
use crate::telemetry::metrics::{Format, Metrics};
use crate::wire::body::{Body, full};

/// What the admin API reads.
#[derive(Clone)]
pub struct Admin {
    /// The generation serving now.
    pub current: Arc<ArcSwap<Generation>>,
    /// Reload counts and history.
    pub status: Arc<Mutex<ReloadStatus>>,
    /// Request metrics, when they are kept.
    pub metrics: Option<Arc<Metrics>>,
    /// The bound listeners.
    pub listeners: Arc<Listeners>,
    /// Turns true when the gateway drains.
    pub draining: tokio::sync::watch::Receiver<bool>,
}

impl Admin {
    /// Serves the API on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        serve_http1(listener, move |request| self.answer(request)).await;
    }

    fn answer(&self, request: &Request<Incoming>) -> Response<Body> {
        let path = request.uri().path();
        if let Some((content_type, file)) = dashboard::asset(path) {
            return with_type(full(file), content_type);
        }
        let generation = self.current.load();
        let status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let body = match path {
            "/ready" if *self.draining.borrow() => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "draining\n");
            }
            "/ready" => return text(StatusCode::OK, ready(&status)),
            "/metrics" => return self.metrics(request),
            "/config_dump" => json!({
                "status": status,
                "config": generation.config,
                "chains": views::chains::view(&generation),
            }),
            "/plugins" => views::plugins::view(&generation, &status),
            "/listeners" => views::listeners::view(&generation, &self.listeners),
            "/routes" => {
                let totals = self
                    .metrics
                    .as_ref()
                    .map(|m| m.routes())
                    .unwrap_or_default();
                views::routes::view(&generation, &totals)
            }
            "/clusters" => views::clusters::view(&generation),
            "/reloads" => json!(status),
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        };
        let json = serde_json::to_string_pretty(&body).unwrap_or_default();
        let mut response = with_type(full(json), "application/json");
        // The dashboard polls these; a cache must never answer for the gateway.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        response
    }
}

impl Admin {
    /// `/metrics`, in the format the scraper prefers.
    fn metrics(&self, request: &Request<Incoming>) -> Response<Body> {
        let accept = request.headers().get(header::ACCEPT);
        let format = Format::negotiate(accept.and_then(|a| a.to_str().ok()));
        let body = self
            .metrics
            .as_ref()
            .map(|m| m.encode(format))
            .unwrap_or_default();
        with_type(full(body), format.content_type())
    }
}

/// Answers each HTTP/1.1 request on `listener` with `answer`, until the task is dropped.
pub(crate) async fn serve_http1<F>(listener: TcpListener, answer: F)
where
    F: Fn(&Request<Incoming>) -> Response<Body> + Clone + Send + Sync + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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

/// A 200 response of `body`, of `content_type`.
fn with_type(body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response
}
