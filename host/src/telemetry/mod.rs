//! What the gateway reports of the requests it serves: the access log, Istio's request
//! metrics, and OpenTelemetry spans. The data path fills a request's outcome; telemetry
//! reads it when the response ends.

pub mod access_log;
pub mod metrics;
#[cfg(feature = "otel")]
pub mod spans;
