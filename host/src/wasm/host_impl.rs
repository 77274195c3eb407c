//! The host functions a policy imports (`request` and `host` in `wit/policy.wit`),
//! implemented over its store's state.

use super::bindings::{host, request};
use super::log_budget::{Allowance, LINES_PER_SECOND, bounded};
use super::state::PolicyState;

impl request::Host for PolicyState {
    fn method(&mut self) -> String {
        self.request
            .as_ref()
            .map(|r| r.parts.method.to_string())
            .unwrap_or_default()
    }

    fn scheme(&mut self) -> String {
        self.request
            .as_ref()
            .map(|r| r.scheme.to_string())
            .unwrap_or_default()
    }

    fn authority(&mut self) -> String {
        self.request
            .as_ref()
            .map(|r| r.authority().to_string())
            .unwrap_or_default()
    }

    fn path(&mut self) -> String {
        self.request
            .as_ref()
            .and_then(|r| r.parts.uri.path_and_query())
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    }

    fn port(&mut self) -> u16 {
        self.request.as_ref().map(|r| r.port).unwrap_or_default()
    }

    fn header(&mut self, name: String) -> Option<String> {
        let value = self.request.as_ref()?.parts.headers.get(name.as_str())?;
        Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
    }

    fn client_address(&mut self) -> String {
        self.request
            .as_ref()
            .map(|r| r.client.ip().to_string())
            .unwrap_or_default()
    }

    fn tls(&mut self) -> Option<request::TlsSession> {
        let session = self.request.as_ref()?.tls.as_deref()?;
        Some(request::TlsSession {
            server_name: session.server_name.clone(),
            peer: session.peer.as_ref().map(|p| request::PeerCertificate {
                subject: p.subject.clone(),
                subject_alt_names: p.subject_alt_names.clone(),
                sha256: p.sha256.clone(),
            }),
        })
    }
}

impl host::Host for PolicyState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let policy = &*self.name;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.limits.stats().log.take(now) {
            Allowance::Drop => return,
            Allowance::Write { dropped_before: 0 } => {}
            Allowance::Write { dropped_before } => {
                tracing::warn!(
                    policy,
                    "{dropped_before} log lines dropped (over {LINES_PER_SECOND} a second)"
                );
            }
        }
        let message = bounded(&message);
        match level {
            host::LogLevel::Debug => tracing::debug!(policy, "{message}"),
            host::LogLevel::Info => tracing::info!(policy, "{message}"),
            host::LogLevel::Warn => tracing::warn!(policy, "{message}"),
            host::LogLevel::Error => tracing::error!(policy, "{message}"),
        }
    }

    fn random(&mut self) -> u64 {
        rand::random()
    }

    fn counter_add(&mut self, name: String, delta: i64) -> wasmtime::Result<i64> {
        Ok(self.counters.add(&self.name, &name, delta)?)
    }
}
