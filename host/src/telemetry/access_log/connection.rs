//! The line of a connection forwarded as bytes (TLS PASSTHROUGH, TCP), with the fields
//! Envoy's TCP proxy logs: no method, path or status; the flags, the bytes each way, the
//! duration, the upstream host and the route; the authority is the SNI it was routed by.

use std::net::SocketAddr;

use super::format::Line;
use super::{Stamp, Telemetry, clock};

/// A forwarded connection, once it has ended.
pub struct ConnectionReport<'a> {
    /// When it was accepted.
    pub started: Stamp,
    /// Envoy's response flag, when it was not forwarded (`NR`, `UH`, `UO`, `UF`).
    pub flag: Option<&'static str>,
    /// Bytes from the client.
    pub received: u64,
    /// Bytes to the client.
    pub sent: u64,
    /// The SNI it was routed by (PASSTHROUGH).
    pub sni: Option<&'a str>,
    /// The upstream it was forwarded to (or tried).
    pub upstream: Option<SocketAddr>,
    /// The route that took it.
    pub route: Option<&'a str>,
}

impl Telemetry {
    /// Writes the line of a forwarded connection, when an access log is written.
    pub fn report_connection(&self, report: &ConnectionReport<'_>) {
        let Some(log) = &self.log else { return };
        let flags: &[&'static str] = match &report.flag {
            Some(flag) => std::slice::from_ref(flag),
            None => &[],
        };
        log.write(Line {
            start_time: clock::since_epoch(report.started),
            method: "-",
            path: "-",
            protocol: "-",
            response_code: 0,
            response_flags: flags,
            response_code_details: None,
            bytes_received: Some(report.received),
            bytes_sent: report.sent,
            duration: u64::try_from(report.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            upstream_service_time: None,
            x_forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: report.sni,
            upstream_host: report.upstream,
            route_name: report.route,
            policies: std::iter::empty(),
        });
    }
}
