//! The health port (`--health ADDR`), Istio's gateway convention (`:15021/healthz/ready`):
//! only `/healthz/ready`, 200 while the gateway serves and 503 once it drains, so that load
//! balancers' existing health checks work without exposing the admin API.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::wire::body::{Body, full};

/// Serves the health port on `listener`; `draining` turns true on shutdown.
pub async fn serve(listener: TcpListener, draining: watch::Receiver<bool>) {
    super::serve_http1(listener, move |request| answer(request, *draining.borrow())).await;
}

fn answer(request: &Request<Incoming>, draining: bool) -> Response<Body> {
    let (status, body) = match (request.uri().path(), draining) {
        ("/healthz/ready", false) => (StatusCode::OK, "ready\n"),
        ("/healthz/ready", true) => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
}
