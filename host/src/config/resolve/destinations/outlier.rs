//! Outlier detection (passive health checking), over Istio's defaults.

use super::{Scope, checks};
use crate::config::model::destination_rule::OutlierDetection as OutlierSpec;
use crate::config::resolved::OutlierDetection;

/// Passive health checking.
pub(super) fn outlier_detection(spec: &OutlierSpec, at: &Scope<'_>) -> OutlierDetection {
    let mut outlier = OutlierDetection::default();
    consecutive_errors(spec, &mut outlier, at);
    check_error_codes(
        &spec.outlier_detection_http_error_codes,
        &at.field("outlierDetectionHttpErrorCodes"),
    );
    if let Some(d) = checks::duration(spec.interval, &at.field("interval")) {
        at.field("interval").warn("endpoints are ejected as they fail and return when their ejection time ends, with no periodic sweep; ignored");
        outlier.interval = d;
    }
    if let Some(d) = checks::duration(spec.base_ejection_time, &at.field("baseEjectionTime")) {
        outlier.base_ejection_time = d;
    }
    ejection_bounds(spec, &mut outlier, at);
    outlier
}

/// The errors in a row that eject an endpoint, into `outlier`.
fn consecutive_errors(spec: &OutlierSpec, outlier: &mut OutlierDetection, at: &Scope<'_>) {
    if spec.consecutive_errors.is_some() {
        at.field("consecutiveErrors")
            .warn("deprecated: use consecutive5xxErrors");
    }
    if let Some(n) = checks::count(
        spec.consecutive5xx_errors.or(spec.consecutive_errors),
        &at.field("consecutive5xxErrors"),
    ) {
        outlier.consecutive_5xx_errors = n;
    }
    if let Some(n) = checks::count(
        spec.consecutive_gateway_errors,
        &at.field("consecutiveGatewayErrors"),
    ) {
        outlier.consecutive_gateway_errors = n;
    }
    outlier.split_external_local_origin_errors =
        spec.split_external_local_origin_errors.unwrap_or(false);
    let local_at = at.field("consecutiveLocalOriginFailures");
    if spec.consecutive_local_origin_failures.is_some()
        && !outlier.split_external_local_origin_errors
    {
        local_at.error("consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true");
    }
    if let Some(n) = checks::count(spec.consecutive_local_origin_failures, &local_at) {
        outlier.consecutive_local_origin_failures = n;
    }
}

/// The percentages that bound ejections, each 0–100, into `outlier`.
fn ejection_bounds(spec: &OutlierSpec, outlier: &mut OutlierDetection, at: &Scope<'_>) {
    for (field, value, target) in [
        (
            "maxEjectionPercent",
            spec.max_ejection_percent,
            &mut outlier.max_ejection_percent,
        ),
        (
            "minHealthPercent",
            spec.min_health_percent,
            &mut outlier.min_health_percent,
        ),
    ] {
        match value {
            Some(v) if !(0..=100).contains(&v) => at
                .field(field)
                .error(format!("{field} must be between 0 and 100, got {v}")),
            Some(v) => *target = v as u32,
            None => {}
        }
    }
}

/// Custom error statuses, which are not counted.
fn check_error_codes(codes: &[i64], at: &Scope<'_>) {
    if codes.is_empty() {
        return;
    }
    if let Some(code) = codes.iter().find(|c| !(100..=599).contains(*c)) {
        at.error(format!("{code} is not an HTTP status"));
    }
    at.warn(
        "outlier detection counts 5xx (and gateway errors); other statuses are not counted; ignored",
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::outlier_detection;
    use crate::config::Diagnostics;
    use crate::config::model::destination_rule::OutlierDetection as OutlierSpec;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::OutlierDetection;

    fn resolve(yaml: &str) -> (OutlierDetection, Diagnostics) {
        let spec: OutlierSpec = serde_yaml::from_str(yaml).unwrap();
        probe(|at| outlier_detection(&spec, &at.field("outlierDetection")))
    }

    #[test]
    fn an_empty_block_is_istios_defaults() {
        let (outlier, reported) = resolve("{}");
        assert_eq!(outlier, OutlierDetection::default());
        assert_eq!(
            (
                outlier.consecutive_5xx_errors,
                outlier.consecutive_gateway_errors,
                outlier.consecutive_local_origin_failures
            ),
            (5, 0, 5)
        );
        assert!(!outlier.split_external_local_origin_errors);
        assert_eq!(outlier.interval, Duration::from_secs(10));
        assert_eq!(outlier.base_ejection_time, Duration::from_secs(30));
        assert_eq!(
            (outlier.max_ejection_percent, outlier.min_health_percent),
            (10, 0)
        );
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn thresholds_and_bounds_are_taken_as_set() {
        let (outlier, reported) = resolve(
            "{consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, baseEjectionTime: 1m, maxEjectionPercent: 100, minHealthPercent: 50}",
        );
        assert_eq!(outlier.consecutive_5xx_errors, 0);
        assert_eq!(outlier.consecutive_gateway_errors, 3);
        assert_eq!(outlier.base_ejection_time, Duration::from_secs(60));
        assert_eq!(
            (outlier.max_ejection_percent, outlier.min_health_percent),
            (100, 50)
        );
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn the_deprecated_consecutive_errors_counts_as_5xx_errors() {
        let (outlier, reported) = resolve("{consecutiveErrors: 7}");
        assert_eq!(outlier.consecutive_5xx_errors, 7);
        assert_eq!(
            warnings_at(&reported),
            ["outlierDetection.consecutiveErrors"]
        );
        let (outlier, _) = resolve("{consecutiveErrors: 7, consecutive5xxErrors: 2}");
        assert_eq!(outlier.consecutive_5xx_errors, 2);
    }

    #[test]
    fn local_origin_failures_need_the_split() {
        let (outlier, reported) =
            resolve("{splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}");
        assert!(outlier.split_external_local_origin_errors);
        assert_eq!(outlier.consecutive_local_origin_failures, 2);
        assert!(!reported.has_errors());
        let (_, reported) = resolve("{consecutiveLocalOriginFailures: 2}");
        assert_eq!(
            errors_at(&reported),
            ["outlierDetection.consecutiveLocalOriginFailures"]
        );
    }

    #[test]
    fn percentages_outside_0_to_100_are_errors_and_keep_the_default() {
        let (outlier, reported) = resolve("{maxEjectionPercent: 150, minHealthPercent: -1}");
        assert_eq!(
            errors_at(&reported),
            [
                "outlierDetection.maxEjectionPercent",
                "outlierDetection.minHealthPercent"
            ]
        );
        assert_eq!(
            (outlier.max_ejection_percent, outlier.min_health_percent),
            (10, 0)
        );
    }

    #[test]
    fn the_interval_and_custom_error_codes_are_not_carried_out() {
        let (outlier, reported) = resolve("{interval: 5s, outlierDetectionHttpErrorCodes: [429]}");
        assert_eq!(outlier.interval, Duration::from_secs(5));
        assert!(errors_at(&reported).is_empty());
        assert_eq!(
            warnings_at(&reported),
            [
                "outlierDetection.outlierDetectionHttpErrorCodes",
                "outlierDetection.interval"
            ]
        );
        let (_, reported) = resolve("{outlierDetectionHttpErrorCodes: [429, 700]}");
        assert_eq!(
            errors_at(&reported),
            ["outlierDetection.outlierDetectionHttpErrorCodes"]
        );
    }
}
