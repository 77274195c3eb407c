//! Field checks shared by every kind, worded like Istio's validation.

use std::time::Duration;

use super::scope::Scope;
use crate::config::model::common::{self, Percent, StringMatch};
use crate::config::resolved::StringMatcher;

/// A duration of at least 1ms with millisecond precision (Istio's `ValidateDuration`).
pub fn duration(value: Option<common::Duration>, at: &Scope<'_>) -> Option<Duration> {
    let d = value?.0;
    if d < Duration::from_millis(1) {
        at.error(format!("duration must be at least 1ms, got {d:?}"));
        return None;
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        at.error(format!(
            "only durations to ms precision are supported, got {d:?}"
        ));
        return None;
    }
    Some(d)
}

/// A percentage: 0, or in [0.0001, 100].
pub fn percentage(value: Option<Percent>, at: &Scope<'_>) -> f64 {
    let Some(Percent { value }) = value else {
        return 0.0;
    };
    if !(0.0..=100.0).contains(&value) || (value > 0.0 && value < 0.0001) || value.is_nan() {
        at.field("value").error(format!(
            "percentage {value} must be 0 or between 0.0001 and 100"
        ));
        return 0.0;
    }
    value
}

/// A port number in 1–65535.
pub fn port(number: u32, at: &Scope<'_>) -> Option<u16> {
    match u16::try_from(number) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            at.error(format!(
                "port number {number} must be in the range 1..65535"
            ));
            None
        }
    }
}

/// A count that must not be negative, saturating at `u32::MAX`.
pub fn count(value: Option<i64>, at: &Scope<'_>) -> Option<u32> {
    let value = value?;
    if value < 0 {
        at.error(format!("must be 0 or more, got {value}"));
        return None;
    }
    Some(u32::try_from(value).unwrap_or(u32::MAX))
}

/// A StringMatch with exactly one of exact, prefix, regex (a valid RE2 regex).
pub fn string_match(value: &StringMatch, at: &Scope<'_>) -> Option<StringMatcher> {
    match (&value.exact, &value.prefix, &value.regex) {
        (Some(exact), None, None) => Some(StringMatcher::Exact(exact.clone())),
        (None, Some(prefix), None) => Some(StringMatcher::Prefix(prefix.clone())),
        (None, None, Some(regex)) => {
            regex_syntax(regex, &at.field("regex"))?;
            Some(StringMatcher::Regex(regex.clone()))
        }
        (None, None, None) => {
            at.error("string match needs one of exact, prefix or regex");
            None
        }
        _ => {
            at.error("string match takes only one of exact, prefix or regex");
            None
        }
    }
}

/// An RE2-compatible regex.
pub fn regex_syntax(regex: &str, at: &Scope<'_>) -> Option<()> {
    match regex::Regex::new(regex) {
        Ok(_) => Some(()),
        Err(e) => {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("invalid").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            at.error(format!("invalid regex {regex:?}: {last}"));
            None
        }
    }
}

/// An HTTP header name (an RFC 7230 token), returned lowercase.
pub fn header_name(name: &str, at: &Scope<'_>) -> Option<String> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        at.error(format!("invalid header name {name:?}"));
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// A DNS name with an optional leading `*` label, as Gateway, VirtualService and
/// ServiceEntry hosts are written.
pub fn host_name(host: &str, at: &Scope<'_>) -> bool {
    if host == "*" {
        return true;
    }
    // `*.example.com`, or Istio's partial wildcard `*example.com` (a suffix match).
    let name = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('*'))
        .unwrap_or(host);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid {
        let hint = if host.contains('*') {
            ": a wildcard must be the whole left-most label, as in *.example.com"
        } else if host.contains(':') {
            ": hosts carry no port"
        } else {
            ""
        };
        at.error(format!("invalid host {host:?}{hint}"));
    }
    valid
}

/// Whether `name` is an RFC 1123 label: lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters (Istio's rule for Gateway names).
pub fn dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is a Kubernetes resource name: RFC 1123 labels joined by dots, at most
/// 253 characters.
pub fn dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(dns1123_label)
}

/// Whether `value` is a Kubernetes label value: empty, or at most 63 letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or digit.
pub fn label_value(value: &str) -> bool {
    value.is_empty()
        || value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `pattern` (a host, `*.suffix` or `*`) covers `host`.
pub fn host_covers(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match (pattern.strip_prefix('*'), host.strip_prefix('*')) {
        // `*.example.com` covers `a.example.com` and `*.a.example.com`, not `example.com`.
        (Some(suffix), Some(other)) => other.ends_with(suffix),
        (Some(suffix), None) => host.ends_with(suffix) && host.len() > suffix.len(),
        (None, _) => false,
    }
}

/// The narrower of two hosts when one covers the other.
pub fn host_intersection(a: &str, b: &str) -> Option<String> {
    if host_covers(a, b) {
        Some(b.to_string())
    } else if host_covers(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(host_covers("*", "a.com"));
        assert!(host_covers("*.example.com", "dev.example.com"));
        assert!(!host_covers("*.example.com", "example.com"));
        assert!(host_covers("*.example.com", "*.dev.example.com"));
        assert!(!host_covers("dev.example.com", "*.example.com"));
        assert_eq!(host_intersection("*", "a.com").as_deref(), Some("a.com"));
        assert_eq!(
            host_intersection("a.b.com", "*.b.com").as_deref(),
            Some("a.b.com")
        );
        assert_eq!(host_intersection("a.com", "b.com"), None);
    }
}
