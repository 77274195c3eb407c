//! What custom plugins' decisions do to requests and responses.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::body::{Body, full};
use crate::wasm::policies::{Header, Rejection};

/// Sets each header, replacing earlier values; invalid names or values are skipped.
pub fn set_headers(headers: &mut HeaderMap, set: &[Header]) {
    for header in set {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// The response a plugin rejected a request with.
pub fn rejection(rejection: Rejection) -> Response<Body> {
    let mut response = Response::new(full(rejection.body));
    *response.status_mut() =
        StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::FORBIDDEN);
    set_headers(response.headers_mut(), &rejection.headers);
    response
}
