//! Which host a request is for. The request target's authority (absolute-form, or
//! HTTP/2's `:authority`) wins over `Host` (RFC 9112 §3.2.2); a request with more than one
//! `Host`, or an authority RFC 3986 does not allow, is refused.

use http::header::{self, HeaderValue};
use http::request::Parts;

/// Why a request's host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadHost {
    #[error("the request has no Host header")]
    Missing,
    #[error("the request has more than one Host header")]
    Repeated,
    #[error("the request's host is not a valid authority")]
    Invalid,
}

/// The authority `parts` is for. When the target names one, a `Host` header that says
/// otherwise is replaced by it, so that the upstream sees what was routed on.
pub fn authority(parts: &mut Parts) -> Result<String, BadHost> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadHost::Repeated);
    }
    let Some(target) = parts.uri.authority() else {
        let host = host.ok_or(BadHost::Missing)?;
        let host = host.to_str().map_err(|_| BadHost::Invalid)?;
        check(host)?;
        return Ok(host.to_string());
    };
    let target = target.as_str().to_string();
    check(&target)?;
    if host.is_some_and(|host| host.as_bytes() != target.as_bytes()) {
        let value = HeaderValue::from_str(&target).map_err(|_| BadHost::Invalid)?;
        parts.headers.insert(header::HOST, value);
    }
    Ok(target)
}

/// An authority as RFC 3986 writes one (`reg-name` or `[IP-literal]`, then an optional
/// numeric port), without the `userinfo@` it deprecates. A scan of the bytes: on every
/// request, so nothing is allocated.
fn check(text: &str) -> Result<(), BadHost> {
    let (host, port) = match text.rfind(':') {
        Some(at) if !text[at..].contains(']') => (&text[..at], Some(&text[at + 1..])),
        _ => (text, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(literal) => {
            !literal.is_empty()
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        }
        None => !host.is_empty() && host.bytes().all(reg_name_byte),
    };
    let port_ok =
        port.is_none_or(|p| p.parse::<u16>().is_ok() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(BadHost::Invalid)
    }
}

/// RFC 3986 `reg-name`: unreserved, percent-encoded and sub-delims characters.
fn reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&str]) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        for host in hosts {
            request = request.header(header::HOST, *host);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn takes_the_single_host_header() {
        let mut p = parts("/x", &["edge.test:8080"]);
        assert_eq!(authority(&mut p), Ok("edge.test:8080".into()));
        let mut p = parts("/x", &["[::1]:80"]);
        assert_eq!(authority(&mut p), Ok("[::1]:80".into()));
    }

    #[test]
    fn refuses_repeated_missing_and_malformed_hosts() {
        assert_eq!(
            authority(&mut parts("/", &["a", "b"])),
            Err(BadHost::Repeated)
        );
        assert_eq!(authority(&mut parts("/", &[])), Err(BadHost::Missing));
        for bad in [
            "a b",
            "edge.test/../x",
            "user@edge.test",
            "edge.test:http",
            "",
            "a\\b",
        ] {
            assert_eq!(
                authority(&mut parts("/", &[bad])),
                Err(BadHost::Invalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_targets_authority_wins_and_is_forwarded() {
        let mut p = parts("http://real.test/x", &["other.test"]);
        assert_eq!(authority(&mut p), Ok("real.test".into()));
        assert_eq!(p.headers[header::HOST], "real.test");
    }
}
