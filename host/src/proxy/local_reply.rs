//! The one place that turns every failure into the response Envoy would send.

use std::borrow::Cow;

use http::{Response, StatusCode, header};

use super::authority::BadHost;
use crate::telemetry::access_log::Outcome;
use crate::wasm::PolicyError;
use crate::wasm::policies::FaultStatus;
use crate::wire::body::{Body, full};

/// Why the gateway answers a request itself.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No virtual host or route matches (Envoy flag NR).
    #[error("no route matched")]
    NoRoute,
    /// The request names no host, two, or one that is not an authority.
    #[error(transparent)]
    BadHost(#[from] BadHost),
    /// The path has no normal form that is a valid URI path.
    #[error("the path cannot be normalized")]
    BadPath,
    /// A CONNECT request, for which no route is configured (Envoy: 404, flag NR).
    #[error("CONNECT is not routed")]
    Connect,
    /// The cluster has no endpoint to send to (UH).
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    /// The connection to the endpoint failed (UF).
    #[error("upstream connect error: {0}")]
    ConnectFailure(String),
    /// The upstream closed or reset before a response (UC).
    #[error("upstream reset: {0}")]
    UpstreamReset(String),
    /// A circuit-breaker limit overflowed (UO).
    #[error("upstream overflow")]
    Overflow,
    /// The route timeout (or the last per-try timeout) expired (UT).
    #[error("upstream request timeout")]
    Timeout,
    /// The client's request body was malformed (Envoy flag DPE) or broke off (DC).
    #[error("downstream request body failed: {0}")]
    Downstream(DownstreamFailure),
    /// A policy component failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// How a client's request body failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DownstreamFailure {
    /// The request could not be read (400).
    #[error("malformed")]
    Malformed,
    /// The client went away before the response.
    #[error("the client went away")]
    Aborted,
}

impl DownstreamFailure {
    /// What a body error from the client's connection means.
    pub fn of(error: &hyper::Error) -> Self {
        if error.is_parse() {
            Self::Malformed
        } else {
            Self::Aborted
        }
    }
}

impl ProxyError {
    /// The status Envoy answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute | Self::Connect => StatusCode::NOT_FOUND,
            Self::BadHost(_) | Self::BadPath => StatusCode::BAD_REQUEST,
            Self::NoHealthyUpstream
            | Self::ConnectFailure(_)
            | Self::UpstreamReset(_)
            | Self::Overflow => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Downstream(_) => StatusCode::BAD_REQUEST,
            Self::Policy(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body Envoy answers with.
    fn body(&self) -> &'static str {
        match self {
            Self::NoRoute | Self::Connect => "",
            Self::BadHost(BadHost::Missing) => "missing host header\n",
            Self::BadHost(BadHost::Repeated) => "more than one host header\n",
            Self::BadHost(BadHost::Invalid) => "invalid host header\n",
            Self::BadPath => "invalid path\n",
            Self::NoHealthyUpstream => "no healthy upstream",
            Self::ConnectFailure(_) => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
            }
            Self::UpstreamReset(_) => {
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
            }
            Self::Overflow => {
                "upstream connect error or disconnect/reset before headers. reset reason: overflow"
            }
            Self::Timeout => "upstream request timeout",
            Self::Downstream(_) => "bad request body\n",
            Self::Policy(_) => "policy failure\n",
        }
    }

    /// Envoy's response flag for the access log.
    fn flag(&self) -> Option<&'static str> {
        Some(match self {
            Self::NoRoute | Self::Connect => "NR",
            Self::BadHost(_) | Self::BadPath => "DPE",
            Self::NoHealthyUpstream => "UH",
            Self::ConnectFailure(_) => "UF",
            Self::UpstreamReset(_) => "UC",
            Self::Overflow => "UO",
            Self::Timeout => "UT",
            Self::Policy(_) => "WF",
            Self::Downstream(DownstreamFailure::Malformed) => "DPE",
            Self::Downstream(DownstreamFailure::Aborted) => "DC",
        })
    }

    /// Envoy's response code details for it.
    fn details(&self) -> &'static str {
        match self {
            Self::NoRoute | Self::Connect => "route_not_found",
            Self::BadHost(_) => "http.invalid_authority",
            Self::BadPath => "path_normalization_failed",
            Self::NoHealthyUpstream => "no_healthy_upstream",
            Self::ConnectFailure(_) => "upstream_reset_before_response_started{connection_failure}",
            Self::UpstreamReset(_) => {
                "upstream_reset_before_response_started{connection_termination}"
            }
            Self::Overflow => "upstream_reset_before_response_started{overflow}",
            Self::Timeout => "response_timeout",
            Self::Policy(_) => "wasm_fail_stream",
            Self::Downstream(DownstreamFailure::Malformed) => "http1.codec_error",
            Self::Downstream(DownstreamFailure::Aborted) => "downstream_remote_disconnect",
        }
    }

    /// The response to send downstream; its flag and details go to the request's
    /// `outcome`.
    pub fn into_response(self, outcome: &mut Outcome) -> Response<Body> {
        tracing::debug!(error = %self, "local reply");
        outcome.flags.extend(self.flag());
        outcome.details = Some(Cow::Borrowed(self.details()));
        let body = self.body();
        let mut response = Response::builder().status(self.status());
        if !body.is_empty() {
            response = response.header(header::CONTENT_TYPE, "text/plain");
        }
        if matches!(self, Self::Overflow) {
            response = response.header("x-envoy-overloaded", "true");
        }
        response
            .body(full(body))
            .expect("a static response is valid")
    }
}

/// The answer to a request aborted by fault injection (Envoy flag FI): the HTTP status, or
/// for gRPC a 200 carrying `grpc-status`.
pub fn fault_abort(status: FaultStatus, outcome: &mut Outcome) -> Response<Body> {
    outcome.flags.push("FI");
    outcome.details = Some(Cow::Borrowed("fault_filter_abort"));
    let mut response = Response::builder();
    let grpc = matches!(status, FaultStatus::Grpc(_));
    match status {
        FaultStatus::Grpc(code) => {
            response = response
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/grpc")
                .header("grpc-status", code.to_string())
                .header("grpc-message", "fault filter abort");
        }
        FaultStatus::Http(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            response = response
                .status(status)
                .header(header::CONTENT_TYPE, "text/plain");
        }
    }
    let body = if grpc { "" } else { "fault filter abort" };
    response
        .body(full(body))
        .expect("a fault response is valid")
}

/// What a gRPC status message may carry unencoded: printable ASCII but `%` (the gRPC
/// spec's percent-encoding).
const GRPC_MESSAGE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// A local reply to a gRPC request, as Envoy sends it: a trailers-only gRPC response
/// (HTTP 200, no body) whose `grpc-status` maps the HTTP status and whose `grpc-message`
/// is the reply's text; the reply's other headers are kept.
pub async fn as_grpc(response: Response<Body>) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let (mut parts, body) = response.into_parts();
    let text = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let code = crate::wire::grpc::status_of(parts.status);
    let message = percent_encoding::percent_encode(&text, GRPC_MESSAGE).to_string();
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    let headers = &mut parts.headers;
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", code.into());
    if let Ok(message) = header::HeaderValue::try_from(message) {
        headers.insert("grpc-message", message);
    }
    Response::from_parts(parts, full(""))
}
