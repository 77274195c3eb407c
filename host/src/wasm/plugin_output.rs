//! What a plugin may ask of the host: bounded headers and bodies, final statuses, and no
//! header that frames the message or describes a connection; anything else fails the
//! call, which its fail strategy then handles.

use super::policies::{Action, Edits, Header};

/// The most header bytes (names and values) one plugin call may add, as Envoy bounds
/// header maps at 60 KiB.
pub const MAX_HEADER_BYTES: usize = 60 << 10;
/// The largest body a rejection may carry.
pub const MAX_REJECTION_BODY: usize = 1 << 20;

/// Headers only the host may write: they frame messages or belong to one connection.
const RESERVED: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why an action is refused, or nothing when the host may carry it out.
pub fn check(action: &Action) -> Result<(), String> {
    let size: usize = written(action).map(|h| h.name.len() + h.value.len()).sum();
    if size > MAX_HEADER_BYTES {
        return Err(format!(
            "asked for {size} bytes of headers, more than {MAX_HEADER_BYTES}"
        ));
    }
    if let Some(name) = named(action).find(|name| reserved(name)) {
        return Err(format!("may not set or remove the `{name}` header"));
    }
    let Action::Reject(rejection) = action else {
        return Ok(());
    };
    if !(200..=599).contains(&rejection.status) {
        return Err(format!(
            "rejected with status {}, not a final status (200-599)",
            rejection.status
        ));
    }
    if rejection.body.len() > MAX_REJECTION_BODY {
        return Err(format!(
            "rejected with a body of {} bytes, more than {MAX_REJECTION_BODY}",
            rejection.body.len()
        ));
    }
    Ok(())
}

fn reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name.trim()))
}

/// The headers an action writes.
fn written(action: &Action) -> Box<dyn Iterator<Item = &Header> + '_> {
    match action {
        Action::Proceed(edits) => Box::new(
            edits
                .set_request_headers
                .iter()
                .chain(&edits.add_request_headers)
                .chain(&edits.set_response_headers)
                .chain(&edits.add_response_headers),
        ),
        Action::Reject(rejection) => Box::new(rejection.headers.iter()),
    }
}

/// The names of every header an action writes or removes.
fn named(action: &Action) -> impl Iterator<Item = &str> {
    let removed = match action {
        Action::Proceed(Edits {
            remove_request_headers,
            remove_response_headers,
            ..
        }) => Some(remove_request_headers.iter().chain(remove_response_headers)),
        Action::Reject(_) => None,
    };
    written(action)
        .map(|h| h.name.as_str())
        .chain(removed.into_iter().flatten().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::policies::Rejection;

    fn reject(status: u16, headers: &[(&str, &str)], body: usize) -> Action {
        Action::Reject(Rejection {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            body: "x".repeat(body),
        })
    }

    #[test]
    fn refuses_informational_statuses_framing_headers_and_huge_bodies() {
        assert!(check(&reject(401, &[("www-authenticate", "Basic")], 10)).is_ok());
        assert!(check(&reject(101, &[], 0)).unwrap_err().contains("101"));
        assert!(check(&reject(600, &[], 0)).is_err());
        assert!(check(&reject(403, &[("Transfer-Encoding", "chunked")], 0)).is_err());
        assert!(check(&reject(403, &[("content-length", "5")], 0)).is_err());
        assert!(check(&reject(403, &[], MAX_REJECTION_BODY + 1)).is_err());
        let removes = Action::Proceed(Edits {
            set_request_headers: Vec::new(),
            add_request_headers: Vec::new(),
            remove_request_headers: vec!["Connection".into()],
            set_response_headers: Vec::new(),
            add_response_headers: Vec::new(),
            remove_response_headers: Vec::new(),
            destination: None,
        });
        assert!(check(&removes).is_err());
    }
}
