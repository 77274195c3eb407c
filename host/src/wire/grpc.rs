//! gRPC over HTTP as a proxy meets it: the `grpc-timeout` header (a deadline the client
//! sets) and Envoy's mapping of an HTTP status to the gRPC status of a local reply.

use std::time::Duration;

use http::HeaderMap;

/// The `grpc-timeout` header's name.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Whether a request with `headers` is gRPC proper (`application/grpc`, `+proto`…), not
/// gRPC-Web.
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value == b"application/grpc" || value.starts_with(b"application/grpc+")
        })
}

/// The deadline of a `grpc-timeout` header: up to 8 digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`), rounded up to whole milliseconds (as Envoy reads it); `None` when it
/// is missing, zero or malformed (then it is ignored, as Envoy does).
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => millis_up(u128::from(amount) * 1_000),
        "n" => millis_up(u128::from(amount)),
        _ => return None,
    };
    (!timeout.is_zero()).then_some(timeout)
}

/// `nanos` rounded up to whole milliseconds.
fn millis_up(nanos: u128) -> Duration {
    Duration::from_millis(u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

/// `timeout` as a `grpc-timeout` value, in milliseconds (rounded up; hours when that
/// would take more than 8 digits).
pub fn timeout_value(timeout: Duration) -> http::HeaderValue {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}H", millis.div_ceil(3_600_000).min(99_999_999))
    };
    http::HeaderValue::try_from(text).expect("digits and a unit are a valid header value")
}

/// The gRPC status of a local reply of HTTP `status`, as Envoy maps it.
pub fn status_of(status: http::StatusCode) -> u32 {
    match status.as_u16() {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => 2,                // UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, value.parse().unwrap());
        headers
    }

    #[test]
    fn timeouts_parse_in_every_unit_and_refuse_what_is_malformed() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("7u", Some(Duration::from_millis(1))),
            ("1500u", Some(Duration::from_millis(2))),
            ("9n", Some(Duration::from_millis(1))),
            ("0m", None),
            ("123456789S", None),
            ("S", None),
            ("10x", None),
            ("-1S", None),
        ];
        for (value, expected) in cases {
            assert_eq!(timeout(&with_timeout(value)), expected, "{value}");
        }
        assert_eq!(timeout_value(Duration::from_micros(1500)), "2m");
        assert_eq!(
            timeout(&with_timeout(
                timeout_value(Duration::from_secs(7)).to_str().unwrap()
            )),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn local_reply_statuses_map_as_envoy_maps_them() {
        let map = |code: u16| status_of(http::StatusCode::from_u16(code).unwrap());
        assert_eq!(
            [400, 401, 403, 404, 429, 502, 503, 504, 500].map(map),
            [13, 16, 7, 12, 14, 14, 14, 14, 2]
        );
    }
}
