//! What custom plugins' decisions do to requests and responses.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::wasm::policies::{Edits, Header, Rejection};
use crate::wire::body::{Body, full};

/// Sets each header, replacing earlier values; invalid names or values are skipped.
pub fn set_headers(headers: &mut HeaderMap, set: &[Header]) {
    for (name, value) in valid(set) {
        headers.insert(name, value);
    }
}

/// Adds each header beside earlier values; invalid names or values are skipped.
fn add_headers(headers: &mut HeaderMap, add: &[Header]) {
    for (name, value) in valid(add) {
        headers.append(name, value);
    }
}

fn valid(headers: &[Header]) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
    headers.iter().filter_map(|header| {
        Some((
            HeaderName::from_bytes(header.name.as_bytes()).ok()?,
            HeaderValue::from_str(&header.value).ok()?,
        ))
    })
}

/// Applies a plugin's request edits: set, then add, then remove.
pub fn edit_request(headers: &mut HeaderMap, edits: &Edits) {
    set_headers(headers, &edits.set_request_headers);
    add_headers(headers, &edits.add_request_headers);
    for name in &edits.remove_request_headers {
        headers.remove(name.as_str());
    }
}

/// The edits of the plugins that ran, in order, kept for their response part.
#[derive(Default)]
pub struct ResponseEdits(Vec<Edits>);

impl ResponseEdits {
    /// Keeps `edits` when they change the response.
    pub fn push(&mut self, edits: Edits) {
        if !(edits.set_response_headers.is_empty()
            && edits.add_response_headers.is_empty()
            && edits.remove_response_headers.is_empty())
        {
            self.0.push(edits);
        }
    }

    /// Applies them to a response's headers: each plugin's set, then add, then remove.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for edits in &self.0 {
            set_headers(headers, &edits.set_response_headers);
            add_headers(headers, &edits.add_response_headers);
            for name in &edits.remove_response_headers {
                headers.remove(name.as_str());
            }
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
