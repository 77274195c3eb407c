//! The two line formats: JSON (the default) and Envoy's default text format, each
//! written straight into the caller's buffer.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

/// How lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, the fields named as in the README.
    #[default]
    Json,
    /// Envoy's default format, then the route name and the policies' decisions:
    /// `[START_TIME] "METHOD PATH PROTOCOL" RESPONSE_CODE RESPONSE_FLAGS BYTES_RECEIVED
    /// BYTES_SENT DURATION UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR" "USER-AGENT"
    /// "X-REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST" ROUTE_NAME "POLICY=DECISION; ..."`,
    /// with `-` for what is unknown.
    Text,
}

/// One policy's decision as written: the policy's name, then what it decided, in a
/// fixed prefix and the rest.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub policy: &'a str,
    pub prefix: &'static str,
    pub said: &'a str,
}

/// The fields of one line; `P` iterates the policies' decisions.
pub struct Line<'a, P> {
    /// Since the Unix epoch.
    pub start_time: Duration,
    pub method: &'a str,
    pub path: &'a str,
    pub protocol: &'static str,
    pub response_code: u16,
    pub response_flags: &'a [&'static str],
    /// Envoy's `%RESPONSE_CODE_DETAILS%` (JSON lines only: Envoy's default text format
    /// leaves it out).
    pub response_code_details: Option<&'a str>,
    pub bytes_received: Option<u64>,
    pub bytes_sent: u64,
    /// Milliseconds from the request's arrival to the response's end.
    pub duration: u64,
    pub upstream_service_time: Option<u64>,
    pub x_forwarded_for: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub upstream_host: Option<SocketAddr>,
    pub route_name: Option<&'a str>,
    pub policies: P,
}

impl Format {
    /// Appends `line`, newline included, to `out`.
    pub fn write<'a>(self, line: Line<'a, impl Iterator<Item = Written<'a>>>, out: &mut Vec<u8>) {
        match self {
            Self::Json => json(line, out),
            Self::Text => text(line, out),
        }
        out.push(b'\n');
    }
}

fn json<'a>(line: Line<'a, impl Iterator<Item = Written<'a>>>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"start_time\":\"");
    timestamp(line.start_time, out);
    out.extend_from_slice(b"\",\"method\":");
    json_string(line.method, out);
    out.extend_from_slice(b",\"path\":");
    json_string(line.path, out);
    out.extend_from_slice(b",\"protocol\":\"");
    out.extend_from_slice(line.protocol.as_bytes());
    out.extend_from_slice(b"\",\"response_code\":");
    number(line.response_code.into(), out);
    out.extend_from_slice(b",\"response_flags\":\"");
    flags(line.response_flags, out);
    out.extend_from_slice(b"\",\"response_code_details\":");
    match line.response_code_details {
        Some(details) => json_string(details, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"bytes_received\":");
    json_number(line.bytes_received, out);
    out.extend_from_slice(b",\"bytes_sent\":");
    number(line.bytes_sent, out);
    out.extend_from_slice(b",\"duration\":");
    number(line.duration, out);
    out.extend_from_slice(b",\"upstream_service_time\":");
    json_number(line.upstream_service_time, out);
    for (name, value) in [
        (&b",\"x_forwarded_for\":"[..], line.x_forwarded_for),
        (b",\"user_agent\":", line.user_agent),
        (b",\"request_id\":", line.request_id),
        (b",\"authority\":", line.authority),
    ] {
        out.extend_from_slice(name);
        match value {
            Some(value) => json_string(value, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"upstream_host\":");
    match line.upstream_host {
        Some(host) => {
            out.push(b'"');
            socket_address(host, out);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"route_name\":");
    match line.route_name {
        Some(name) => json_string(name, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"policies\":[");
    for (i, decision) in line.policies.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"policy\":\"");
        escaped(decision.policy, out);
        out.extend_from_slice(b"\",\"decision\":\"");
        out.extend_from_slice(decision.prefix.as_bytes());
        escaped(decision.said, out);
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
}

fn text<'a>(line: Line<'a, impl Iterator<Item = Written<'a>>>, out: &mut Vec<u8>) {
    out.push(b'[');
    timestamp(line.start_time, out);
    out.extend_from_slice(b"] \"");
    for (value, then) in [
        (line.method, &b" "[..]),
        (line.path, b" "),
        (line.protocol, b"\" "),
    ] {
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(then);
    }
    number(line.response_code.into(), out);
    out.push(b' ');
    flags(line.response_flags, out);
    for value in [
        line.bytes_received,
        Some(line.bytes_sent),
        Some(line.duration),
        line.upstream_service_time,
    ] {
        out.push(b' ');
        match value {
            Some(value) => number(value, out),
            None => out.push(b'-'),
        }
    }
    for value in [
        line.x_forwarded_for,
        line.user_agent,
        line.request_id,
        line.authority,
    ] {
        out.extend_from_slice(b" \"");
        out.extend_from_slice(value.unwrap_or("-").as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b" \"");
    match line.upstream_host {
        Some(host) => socket_address(host, out),
        None => out.push(b'-'),
    }
    out.push(b'"');
    out.push(b' ');
    out.extend_from_slice(line.route_name.unwrap_or("-").as_bytes());
    out.extend_from_slice(b" \"");
    for (i, decision) in line.policies.enumerate() {
        if i > 0 {
            out.extend_from_slice(b"; ");
        }
        for part in [decision.policy, "=", decision.prefix, decision.said] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.push(b'"');
}

/// Envoy's response flags, comma-separated, or `-` for none.
fn flags(flags: &[&str], out: &mut Vec<u8>) {
    if flags.is_empty() {
        out.push(b'-');
    }
    for (i, flag) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(flag.as_bytes());
    }
}

fn number(value: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn json_number(value: Option<u64>, out: &mut Vec<u8>) {
    match value {
        Some(value) => number(value, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn json_string(value: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    escaped(value, out);
    out.push(b'"');
}

/// `text` as the inside of a JSON string: quotes, backslashes and control characters
/// escaped, the rest (UTF-8 included) as it is.
fn escaped(text: &str, out: &mut Vec<u8>) {
    let plain = |b: u8| (b >= 0x20) & (b != b'"') & (b != b'\\');
    // Most text needs no escape; a fold without early exit checks it a vector at a time.
    if text.bytes().fold(true, |all, b| all & plain(b)) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let mut rest = text.as_bytes();
    while let Some(at) = rest.iter().position(|&b| !plain(b)) {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xf)]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// `address` as `a.b.c.d:port` or `[v6]:port`.
fn socket_address(address: SocketAddr, out: &mut Vec<u8>) {
    match address {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        SocketAddr::V6(v6) => {
            let _ = write!(out, "[{}]", v6.ip());
        }
    }
    out.push(b':');
    number(address.port().into(), out);
}

/// `since` the Unix epoch in RFC 3339 with milliseconds (`2026-11-26T16:08:22.247Z`);
/// the text up to the second is formatted once per second per thread.
fn timestamp(since: Duration, out: &mut Vec<u8>) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() || text.is_empty() {
            *second = since.as_secs();
            let whole = UNIX_EPOCH + Duration::from_secs(*second);
            *text = humantime::format_rfc3339_seconds(whole).to_string();
            text.pop(); // the `Z`
        }
        out.extend_from_slice(text.as_bytes());
    });
    let millis = since.subsec_millis();
    out.push(b'.');
    for digit in [millis / 100, millis / 10 % 10, millis % 10] {
        out.push(b'0' + digit as u8);
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(policies: &'a [Written<'a>]) -> Line<'a, impl Iterator<Item = Written<'a>>> {
        Line {
            start_time: Duration::from_millis(1_795_000_000_042),
            method: "GET",
            path: "/a?b=\"c\"",
            protocol: "HTTP/1.1",
            response_code: 503,
            response_flags: &["UF", "URX"],
            response_code_details: Some(
                "upstream_reset_before_response_started{connection_failure}",
            ),
            bytes_received: Some(0),
            bytes_sent: 19,
            duration: 7,
            upstream_service_time: None,
            x_forwarded_for: None,
            user_agent: Some("curl/8"),
            request_id: Some("id-1"),
            authority: Some("a.test"),
            upstream_host: Some("127.0.0.1:8080".parse().unwrap()),
            route_name: Some("r.0"),
            policies: policies.iter().copied(),
        }
    }

    fn written<'a>(format: Format, line: Line<'a, impl Iterator<Item = Written<'a>>>) -> String {
        let mut out = Vec::new();
        format.write(line, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_lines_parse_with_every_field() {
        let policies = [Written {
            policy: "builtin:route-match",
            prefix: "route ",
            said: "r.0",
        }];
        let text = written(Format::Json, line(&policies));
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "start_time": "2026-11-18T11:06:40.042Z",
                "method": "GET",
                "path": "/a?b=\"c\"",
                "protocol": "HTTP/1.1",
                "response_code": 503,
                "response_flags": "UF,URX",
                "response_code_details": "upstream_reset_before_response_started{connection_failure}",
                "bytes_received": 0,
                "bytes_sent": 19,
                "duration": 7,
                "upstream_service_time": null,
                "x_forwarded_for": null,
                "user_agent": "curl/8",
                "request_id": "id-1",
                "authority": "a.test",
                "upstream_host": "127.0.0.1:8080",
                "route_name": "r.0",
                "policies": [{"policy": "builtin:route-match", "decision": "route r.0"}],
            })
        );
    }

    #[test]
    fn strings_are_escaped_and_addresses_written_whole() {
        let mut out = Vec::new();
        json_string("a\"b\\c\nd\u{1}é", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#""a\"b\\c\nd\u0001é""#);
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            "a\"b\\c\nd\u{1}é"
        );
        for address in ["[::1]:8443", "10.0.0.255:80", "192.68.7.100:65535"] {
            let mut out = Vec::new();
            socket_address(address.parse().unwrap(), &mut out);
            assert_eq!(out, address.as_bytes());
        }
    }

    #[test]
    fn text_lines_follow_envoys_default_format() {
        let policies = [
            Written {
                policy: "builtin:route-match",
                prefix: "route ",
                said: "r.0",
            },
            Written {
                policy: "api-key",
                prefix: "",
                said: "proceed",
            },
        ];
        assert_eq!(
            written(Format::Text, line(&policies)),
            "[2026-11-18T11:06:40.042Z] \"GET /a?b=\"c\" HTTP/1.1\" 503 UF,URX 0 19 7 - \"-\" \
             \"curl/8\" \"id-1\" \"a.test\" \"127.0.0.1:8080\" r.0 \
             \"builtin:route-match=route r.0; api-key=proceed\"\n"
        );
    }
}
