//! Connection-pool limits and timeouts, over Istio's defaults (where 0 means "not set").

use super::{Scope, checks};
use crate::config::model::destination_rule::{
    ConnectionPoolSettings, H2UpgradePolicy, HttpSettings, TcpSettings,
};
use crate::config::resolved::{ConnectionPool, TcpKeepalive};

/// Connection-pool limits and timeouts: tcp, http, or both.
pub(super) fn connection_pool(
    spec: &ConnectionPoolSettings,
    at: &Scope<'_>,
) -> Option<ConnectionPool> {
    if spec.tcp.is_none() && spec.http.is_none() {
        at.error("connection pool must have at least one of tcp or http");
        return None;
    }
    let mut pool = ConnectionPool::default();
    if let Some(tcp) = &spec.tcp {
        tcp_settings(tcp, &mut pool, &at.field("tcp"));
    }
    if let Some(http) = &spec.http {
        http_settings(http, &mut pool, &at.field("http"));
    }
    Some(pool)
}

/// The connection-pool limits set in `pool` that only HTTP/1.1 connections honour.
pub(super) fn http1_only_limits(pool: &ConnectionPool) -> impl Iterator<Item = &'static str> {
    let defaults = ConnectionPool::default();
    [
        (
            "tcp.maxConnections",
            pool.max_connections != defaults.max_connections,
        ),
        ("tcp.tcpKeepalive", pool.tcp_keepalive.is_some()),
        (
            "tcp.maxConnectionDuration",
            pool.max_connection_duration.is_some(),
        ),
        (
            "http.http1MaxPendingRequests",
            pool.http1_max_pending_requests != defaults.http1_max_pending_requests,
        ),
        (
            "http.maxRequestsPerConnection",
            pool.max_requests_per_connection != defaults.max_requests_per_connection,
        ),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
}

/// The tcp settings, into `pool`.
fn tcp_settings(tcp: &TcpSettings, pool: &mut ConnectionPool, at: &Scope<'_>) {
    if let Some(n) = checks::count(tcp.max_connections, &at.field("maxConnections"))
        && n > 0
    {
        // As in Istio, 0 means "not set".
        pool.max_connections = n;
    }
    if let Some(d) = checks::duration(tcp.connect_timeout, &at.field("connectTimeout")) {
        pool.connect_timeout = d;
    }
    pool.max_connection_duration = checks::duration(
        tcp.max_connection_duration,
        &at.field("maxConnectionDuration"),
    );
    if let Some(d) = checks::duration(tcp.idle_timeout, &at.field("idleTimeout")) {
        pool.tcp_idle_timeout = d;
    }
    if let Some(keepalive) = &tcp.tcp_keepalive {
        let keepalive_at = at.field("tcpKeepalive");
        pool.tcp_keepalive = Some(TcpKeepalive {
            probes: keepalive.probes,
            time: checks::duration(keepalive.time, &keepalive_at.field("time")),
            interval: checks::duration(keepalive.interval, &keepalive_at.field("interval")),
        });
    }
}

/// The http settings, into `pool`.
fn http_settings(http: &HttpSettings, pool: &mut ConnectionPool, at: &Scope<'_>) {
    http_limits(http, pool, at);
    if let Some(d) = checks::duration(http.idle_timeout, &at.field("idleTimeout")) {
        pool.http_idle_timeout = d;
    }
    let use_client = http.use_client_protocol.unwrap_or(false);
    if use_client && http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) {
        at.field("useClientProtocol")
            .error("useClientProtocol cannot be combined with h2UpgradePolicy UPGRADE");
    }
    pool.use_client_protocol = use_client;
    pool.h2_upgrade = http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade);

    if let Some(keepalive) = &http.http2_keep_alive {
        let keepalive_at = at.field("http2KeepAlive");
        if keepalive.interval.is_none() || keepalive.timeout.is_none() {
            keepalive_at.error("http2KeepAlive needs both interval and timeout");
        }
        let interval = checks::duration(keepalive.interval, &keepalive_at.field("interval"));
        let timeout = checks::duration(keepalive.timeout, &keepalive_at.field("timeout"));
        pool.http2_keep_alive = interval.zip(timeout);
    }
}

/// The http request and stream limits, into `pool`.
fn http_limits(http: &HttpSettings, pool: &mut ConnectionPool, at: &Scope<'_>) {
    // As in Istio, 0 means "not set" (and for maxRequestsPerConnection, unlimited).
    let limit = |field: &str, value: Option<i64>, target: &mut u32| {
        if let Some(n) = checks::count(value, &at.field(field))
            && n > 0
        {
            *target = n;
        }
    };
    limit(
        "http1MaxPendingRequests",
        http.http1_max_pending_requests,
        &mut pool.http1_max_pending_requests,
    );
    limit(
        "http2MaxRequests",
        http.http2_max_requests,
        &mut pool.http2_max_requests,
    );
    limit(
        "maxRequestsPerConnection",
        http.max_requests_per_connection,
        &mut pool.max_requests_per_connection,
    );
    limit("maxRetries", http.max_retries, &mut pool.max_retries);
    limit(
        "maxConcurrentStreams",
        http.max_concurrent_streams,
        &mut pool.max_concurrent_streams,
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{connection_pool, http1_only_limits};
    use crate::config::Diagnostics;
    use crate::config::model::destination_rule::ConnectionPoolSettings;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::{ConnectionPool, UNLIMITED};

    fn resolve(yaml: &str) -> (Option<ConnectionPool>, Diagnostics) {
        let spec: ConnectionPoolSettings = serde_yaml::from_str(yaml).unwrap();
        probe(|at| connection_pool(&spec, &at.field("connectionPool")))
    }

    #[test]
    fn a_pool_needs_tcp_or_http() {
        let (pool, reported) = resolve("{}");
        assert_eq!(pool, None);
        assert_eq!(errors_at(&reported), ["connectionPool"]);
    }

    #[test]
    fn tcp_settings_leave_the_http_defaults() {
        let (pool, reported) = resolve(
            "tcp: {maxConnections: 100, connectTimeout: 2s, idleTimeout: 30s, maxConnectionDuration: 1m, tcpKeepalive: {probes: 3, time: 60s}}",
        );
        let pool = pool.unwrap();
        assert_eq!(pool.max_connections, 100);
        assert_eq!(pool.connect_timeout, Duration::from_secs(2));
        assert_eq!(pool.tcp_idle_timeout, Duration::from_secs(30));
        assert_eq!(pool.max_connection_duration, Some(Duration::from_secs(60)));
        let keepalive = pool.tcp_keepalive.as_ref().unwrap();
        assert_eq!(
            (keepalive.probes, keepalive.time, keepalive.interval),
            (Some(3), Some(Duration::from_secs(60)), None)
        );
        assert_eq!(pool.idle_timeout(), Duration::from_secs(30));
        assert_eq!(pool.http1_max_pending_requests, UNLIMITED);
        assert_eq!(pool.http_idle_timeout, Duration::from_secs(3600));
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn http_settings_leave_the_tcp_defaults() {
        let (pool, _) = resolve(
            "http: {http1MaxPendingRequests: 5, http2MaxRequests: 50, maxRequestsPerConnection: 1, maxRetries: 2, maxConcurrentStreams: 10, idleTimeout: 5s}",
        );
        let pool = pool.unwrap();
        assert_eq!(
            [
                pool.http1_max_pending_requests,
                pool.http2_max_requests,
                pool.max_requests_per_connection,
                pool.max_retries,
                pool.max_concurrent_streams
            ],
            [5, 50, 1, 2, 10]
        );
        assert_eq!(pool.http_idle_timeout, Duration::from_secs(5));
        assert_eq!(pool.max_connections, UNLIMITED);
        assert_eq!(pool.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn zero_limits_mean_unset_and_negative_ones_are_errors() {
        let (pool, reported) = resolve(
            "tcp: {maxConnections: 0}\nhttp: {http1MaxPendingRequests: 0, maxRequestsPerConnection: 0}",
        );
        assert_eq!(pool.unwrap(), ConnectionPool::default());
        assert!(!reported.has_errors());
        let (pool, reported) = resolve("http: {maxRetries: -1}");
        assert_eq!(pool.unwrap().max_retries, UNLIMITED);
        assert_eq!(errors_at(&reported), ["connectionPool.http.maxRetries"]);
    }

    #[test]
    fn h2_upgrade_and_client_protocol_exclude_each_other() {
        let (pool, reported) = resolve("http: {h2UpgradePolicy: UPGRADE}");
        let pool = pool.unwrap();
        assert!(pool.h2_upgrade && !pool.use_client_protocol);
        assert!(!reported.has_errors());
        let (pool, _) = resolve("http: {useClientProtocol: true, h2UpgradePolicy: DO_NOT_UPGRADE}");
        let pool = pool.unwrap();
        assert!(!pool.h2_upgrade && pool.use_client_protocol);
        let (_, reported) = resolve("http: {useClientProtocol: true, h2UpgradePolicy: UPGRADE}");
        assert_eq!(
            errors_at(&reported),
            ["connectionPool.http.useClientProtocol"]
        );
    }

    #[test]
    fn http2_keep_alive_needs_an_interval_and_a_timeout() {
        let (pool, _) = resolve("http: {http2KeepAlive: {interval: 30s, timeout: 5s}}");
        assert_eq!(
            pool.unwrap().http2_keep_alive,
            Some((Duration::from_secs(30), Duration::from_secs(5)))
        );
        let (pool, reported) = resolve("http: {http2KeepAlive: {interval: 30s}}");
        assert_eq!(pool.unwrap().http2_keep_alive, None);
        assert_eq!(errors_at(&reported), ["connectionPool.http.http2KeepAlive"]);
    }

    #[test]
    fn only_http1_limits_that_differ_from_the_defaults_are_listed() {
        assert_eq!(http1_only_limits(&ConnectionPool::default()).count(), 0);
        let (pool, _) = resolve(
            "tcp: {maxConnections: 10, connectTimeout: 1s}\nhttp: {maxRequestsPerConnection: 1, http2MaxRequests: 5}",
        );
        let limits: Vec<&str> = http1_only_limits(&pool.unwrap()).collect();
        assert_eq!(
            limits,
            ["tcp.maxConnections", "http.maxRequestsPerConnection"]
        );
    }
}
