//! Retries: attempts, per-try timeout, the conditions retried on, and backoff.

use super::{Scope, checks};
use crate::config::model::virtual_service::HttpRetry;
use crate::config::resolved::RetryPolicy;

/// Envoy's retry conditions, HTTP and gRPC.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Envoy's retry conditions that are accepted but that the retry policy never meets:
/// no rate-limit header, no resets before the request, no retriable headers, no HTTP/3.
const NOT_RETRIED_ON: &[&str] = &[
    "envoy-ratelimited",
    "reset-before-request",
    "retriable-headers",
    "http3-post-connect-failure",
];

/// The retry policy (Istio's defaults when `spec` is not set).
pub fn retry(spec: Option<&HttpRetry>, at: &Scope<'_>) -> RetryPolicy {
    let Some(spec) = spec else {
        return RetryPolicy::default();
    };
    let mut policy = RetryPolicy::default();
    let attempts = spec.attempts.unwrap_or(0);
    if attempts < 0 {
        at.field("attempts")
            .error(format!("attempts {attempts} must not be negative"));
    }
    policy.attempts = u32::try_from(attempts).unwrap_or(0);
    policy.per_try_timeout = checks::duration(spec.per_try_timeout, &at.field("perTryTimeout"));
    if let Some(retry_on) = &spec.retry_on {
        conditions(retry_on, &mut policy, &at.field("retryOn"));
    }
    policy.retry_remote_localities = spec.retry_remote_localities.unwrap_or(false);
    if policy.retry_remote_localities {
        at.field("retryRemoteLocalities").warn(
            "endpoints have no localities here, so retries already go to any endpoint; ignored",
        );
    }
    policy.ignore_previous_hosts = spec.retry_ignore_previous_hosts.unwrap_or(true);
    if let Some(backoff) = checks::duration(spec.backoff, &at.field("backoff")) {
        policy.backoff_base = backoff;
    }
    if policy.attempts == 0 && (spec.per_try_timeout.is_some() || spec.retry_on.is_some()) {
        at.field("attempts").warn("attempts is 0 (or unset), which disables retries: retryOn and perTryTimeout have no effect");
    }
    policy
}

/// `retryOn`: comma-separated conditions and status codes, into `policy`.
fn conditions(retry_on: &str, policy: &mut RetryPolicy, at: &Scope<'_>) {
    policy.retry_on.clear();
    for condition in retry_on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if let Ok(code) = condition.parse::<u16>()
            && (100..=599).contains(&code)
        {
            policy.retriable_status_codes.push(code);
            continue;
        }
        if RETRY_ON.contains(&condition) {
            if NOT_RETRIED_ON.contains(&condition) {
                at.warn(format!(
                    "{condition:?} is not carried out: no retry is made on it; ignored"
                ));
            }
            policy.retry_on.push(condition.to_string());
        } else {
            at.error(format!(
                "{condition:?} is not a valid retryOn policy: use status codes or {}",
                RETRY_ON.join(", ")
            ));
        }
    }
    if !policy.retriable_status_codes.is_empty()
        && !policy
            .retry_on
            .iter()
            .any(|c| c == "retriable-status-codes")
    {
        policy.retry_on.push("retriable-status-codes".into());
    }
}

#[cfg(test)]
mod tests {
    use super::retry;
    use crate::config::Diagnostics;
    use crate::config::model::virtual_service::HttpRetry;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::RetryPolicy;

    fn resolve(yaml: &str) -> (RetryPolicy, Diagnostics) {
        let spec: HttpRetry = serde_yaml::from_str(yaml).unwrap();
        probe(|at| retry(Some(&spec), &at.field("retries")))
    }

    #[test]
    fn no_retries_block_is_istios_default() {
        let (policy, reported) = probe(|at| retry(None, at));
        assert_eq!(policy, RetryPolicy::default());
        assert_eq!(policy.attempts, 2);
        assert_eq!(
            policy.retry_on,
            [
                "connect-failure",
                "refused-stream",
                "unavailable",
                "cancelled",
                "retriable-status-codes"
            ]
        );
        assert_eq!(policy.backoff_base.as_millis(), 25);
        assert!(policy.ignore_previous_hosts);
        assert!(!reported.has_errors());
    }

    #[test]
    fn status_codes_in_retry_on_become_retriable_status_codes() {
        let (policy, reported) = resolve("attempts: 3\nretryOn: 5xx, 503,gateway-error");
        assert_eq!(policy.attempts, 3);
        assert_eq!(
            policy.retry_on,
            ["5xx", "gateway-error", "retriable-status-codes"]
        );
        assert_eq!(policy.retriable_status_codes, [503]);
        assert!(warnings_at(&reported).is_empty());
    }

    #[test]
    fn an_unknown_condition_is_an_error_at_retry_on() {
        let (_, reported) = resolve("attempts: 1\nretryOn: sometimes");
        assert_eq!(errors_at(&reported), ["retries.retryOn"]);
    }

    #[test]
    fn conditions_never_met_are_kept_with_a_warning() {
        let (policy, reported) = resolve("attempts: 1\nretryOn: envoy-ratelimited");
        assert_eq!(policy.retry_on, ["envoy-ratelimited"]);
        assert_eq!(warnings_at(&reported), ["retries.retryOn"]);
    }

    #[test]
    fn a_block_without_attempts_disables_retries_and_says_so() {
        let (policy, reported) = resolve("retryOn: 5xx\nperTryTimeout: 2s");
        assert_eq!(policy.attempts, 0);
        assert_eq!(policy.per_try_timeout.map(|t| t.as_secs()), Some(2));
        assert_eq!(warnings_at(&reported), ["retries.attempts"]);
    }

    #[test]
    fn negative_attempts_are_an_error() {
        let (_, reported) = resolve("attempts: -1");
        assert_eq!(errors_at(&reported), ["retries.attempts"]);
    }
}
