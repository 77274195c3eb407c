//! Fault injection: delays and aborts, each for a share of requests.

use super::{Scope, checks};
use crate::config::model::common::Percent;
use crate::config::model::virtual_service::{Abort, Delay, HttpFaultInjection};
use crate::config::resolved::{AbortStatus, Fault, FaultAbort, FaultDelay};

/// gRPC status names an abort may use, by code.
const GRPC_STATUSES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A fault: a delay, an abort, or both.
pub fn fault(spec: &HttpFaultInjection, at: &Scope<'_>) -> Option<Fault> {
    if spec.delay.is_none() && spec.abort.is_none() {
        at.error("fault must have a delay or an abort");
        return None;
    }
    let delay = spec
        .delay
        .as_ref()
        .and_then(|d| delay(d, &at.field("delay")));
    let abort = spec
        .abort
        .as_ref()
        .and_then(|a| abort(a, &at.field("abort")));
    Some(Fault { delay, abort })
}

/// A fixed delay; `None` when it is invalid.
fn delay(delay: &Delay, at: &Scope<'_>) -> Option<FaultDelay> {
    if delay.exponential_delay.is_some() {
        at.field("exponentialDelay")
            .error("exponentialDelay is not supported (nor by Istio): use fixedDelay");
    }
    let percentage = share(delay.percentage, delay.percent, "delayed", at);
    let fixed_delay_at = at.field("fixedDelay");
    match checks::duration(delay.fixed_delay, &fixed_delay_at) {
        Some(fixed_delay) => Some(FaultDelay {
            fixed_delay,
            percentage,
        }),
        None if delay.fixed_delay.is_none() && delay.exponential_delay.is_none() => {
            fixed_delay_at.error("delay needs fixedDelay");
            None
        }
        None => None,
    }
}

/// An abort with an HTTP or gRPC status; `None` when it is invalid.
fn abort(abort: &Abort, at: &Scope<'_>) -> Option<FaultAbort> {
    let percentage = share(abort.percentage, None, "aborted", at);
    let status = match (abort.http_status, &abort.grpc_status, &abort.http2_error) {
        (Some(code), None, None) if (200..=599).contains(&code) => {
            Some(AbortStatus::Http(code as u16))
        }
        (Some(code), None, None) => {
            at.field("httpStatus")
                .error(format!("httpStatus {code} must be in the range 200..599"));
            None
        }
        (None, Some(name), None) => match GRPC_STATUSES.iter().position(|s| s == name) {
            Some(code) => Some(AbortStatus::Grpc(code as u8)),
            None => {
                at.field("grpcStatus").error(format!(
                    "unknown gRPC status {name:?}: use a name such as UNAVAILABLE"
                ));
                None
            }
        },
        (None, None, Some(_)) => {
            at.field("http2Error")
                .error("http2Error is not supported (nor by Istio): use httpStatus");
            None
        }
        (None, None, None) => {
            at.error("abort needs httpStatus or grpcStatus");
            None
        }
        _ => {
            at.error("abort takes only one of httpStatus, grpcStatus or http2Error");
            None
        }
    };
    status.map(|status| FaultAbort { status, percentage })
}

/// The share of requests a delay or abort applies to (`what`: "delayed" or "aborted"):
/// `percentage`, or the deprecated integer `percent`; none when neither is set.
fn share(percentage: Option<Percent>, percent: Option<i64>, what: &str, at: &Scope<'_>) -> f64 {
    if let Some(percent) = percent {
        let percent_at = at.field("percent");
        percent_at.warn("deprecated: use percentage.value");
        if !(0..=100).contains(&percent) {
            percent_at.error(format!("percent {percent} must be between 0 and 100"));
        }
        if percentage.is_none() {
            return percent.clamp(0, 100) as f64;
        }
    } else if percentage.is_none() {
        at.field("percentage").warn(format!(
            "percentage is not set, so no request is {what} (as in Istio): set percentage.value"
        ));
    }
    checks::percentage(percentage, &at.field("percentage"))
}

#[cfg(test)]
mod tests {
    use super::fault;
    use crate::config::Diagnostics;
    use crate::config::model::virtual_service::HttpFaultInjection;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::{AbortStatus, Fault};

    fn resolve(yaml: &str) -> (Option<Fault>, Diagnostics) {
        let spec: HttpFaultInjection = serde_yaml::from_str(yaml).unwrap();
        probe(|at| fault(&spec, &at.field("fault")))
    }

    #[test]
    fn a_delay_and_an_abort_are_sampled_each_on_its_own_share() {
        let (fault, reported) = resolve(
            "delay: {fixedDelay: 1s, percentage: {value: 10}}\nabort: {httpStatus: 503, percentage: {value: 0.5}}",
        );
        let fault = fault.unwrap();
        let delay = fault.delay.unwrap();
        assert_eq!((delay.fixed_delay.as_secs(), delay.percentage), (1, 10.0));
        let abort = fault.abort.unwrap();
        assert!(matches!(abort.status, AbortStatus::Http(503)));
        assert_eq!(abort.percentage, 0.5);
        assert!(errors_at(&reported).is_empty() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn without_a_percentage_nothing_is_injected_and_it_says_so() {
        let (fault, reported) = resolve("abort: {grpcStatus: UNAVAILABLE}");
        let abort = fault.unwrap().abort.unwrap();
        assert!(matches!(abort.status, AbortStatus::Grpc(14)));
        assert_eq!(abort.percentage, 0.0);
        assert_eq!(warnings_at(&reported), ["fault.abort.percentage"]);
    }

    #[test]
    fn the_deprecated_integer_percent_still_counts() {
        let (fault, reported) = resolve("delay: {fixedDelay: 5ms, percent: 30}");
        assert_eq!(fault.unwrap().delay.unwrap().percentage, 30.0);
        assert_eq!(warnings_at(&reported), ["fault.delay.percent"]);
    }

    #[test]
    fn bad_statuses_and_empty_faults_are_errors_at_their_fields() {
        let (_, reported) = resolve("abort: {httpStatus: 700, percentage: {value: 1}}");
        assert_eq!(errors_at(&reported), ["fault.abort.httpStatus"]);
        let (_, reported) = resolve("abort: {grpcStatus: SOMETIMES, percentage: {value: 1}}");
        assert_eq!(errors_at(&reported), ["fault.abort.grpcStatus"]);
        let (fault, reported) = resolve("{}");
        assert!(fault.is_none());
        assert_eq!(errors_at(&reported), ["fault"]);
    }
}
