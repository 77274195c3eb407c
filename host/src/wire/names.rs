//! Header names the data path sets and telemetry reads.

use http::HeaderName;

/// `x-request-id`, generated when a request has none.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-for`, which the gateway appends the client to.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
