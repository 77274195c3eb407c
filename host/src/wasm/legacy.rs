//! Filters built against `portcullis:policy@0.1.0`: their actions, which have the shape
//! of 0.2.0's, converted to it.

use super::bindings::v0_1::plugin::exports::portcullis::policy::filter as v0_1;
use super::policies::{Action, Edits, Header, Rejection};

/// A 0.1.0 filter's action.
pub use v0_1::Action as LegacyAction;

impl From<v0_1::Action> for Action {
    fn from(action: v0_1::Action) -> Self {
        match action {
            v0_1::Action::Proceed(edits) => Self::Proceed(edits.into()),
            v0_1::Action::Reject(rejection) => Self::Reject(Rejection {
                status: rejection.status,
                headers: headers(rejection.headers),
                body: rejection.body,
            }),
        }
    }
}

impl From<v0_1::Edits> for Edits {
    fn from(edits: v0_1::Edits) -> Self {
        Self {
            set_request_headers: headers(edits.set_request_headers),
            add_request_headers: headers(edits.add_request_headers),
            remove_request_headers: edits.remove_request_headers,
            set_response_headers: headers(edits.set_response_headers),
            add_response_headers: headers(edits.add_response_headers),
            remove_response_headers: edits.remove_response_headers,
            destination: edits.destination,
        }
    }
}

fn headers(headers: Vec<v0_1::Header>) -> Vec<Header> {
    headers
        .into_iter()
        .map(|h| Header {
            name: h.name,
            value: h.value,
        })
        .collect()
}
