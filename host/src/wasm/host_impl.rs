//! The host functions a policy imports (`request` and `host` in `wit/`), implemented
//! over its store's state; 0.1.0's are the same functions.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::bindings::{host, request, types, v0_1};
use super::buckets::Shape;
use super::log_budget::{Allowance, LINES_PER_SECOND, bounded};
use super::request_view::Identity;
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
            .map(|r| r.client.ip().to_canonical().to_string())
            .unwrap_or_default()
    }

    fn principal(&mut self) -> Option<String> {
        Some(self.identity()?.principal.clone())
    }

    fn claims(&mut self) -> Option<String> {
        Some(Value::Object(self.identity()?.claims.clone()).to_string())
    }

    fn claim(&mut self, path: Vec<String>) -> Option<Vec<String>> {
        self.identity()?.claim(&path)
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

    fn take_tokens(
        &mut self,
        name: String,
        bucket: host::Bucket,
        cost: u32,
    ) -> wasmtime::Result<Result<u32, u64>> {
        let shape = Shape {
            max_tokens: bucket.max_tokens,
            tokens_per_fill: bucket.tokens_per_fill,
            fill_interval: Duration::from_millis(bucket.fill_interval),
        };
        let taken = self
            .counters
            .buckets
            .take((&self.name, &name), shape, cost, Instant::now())?;
        Ok(taken.map_err(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)))
    }

    fn authenticate(&mut self, principal: String, claims: String) -> wasmtime::Result<()> {
        if self.request.is_none() {
            wasmtime::bail!("authenticate called outside a request");
        }
        if self.identity().is_some() {
            wasmtime::bail!("the request's identity is set already; it cannot be replaced");
        }
        self.identity = Some(Identity::new(principal, &claims).map_err(wasmtime::Error::msg)?);
        Ok(())
    }

    fn response_details(&mut self, details: String) {
        let mut details = details.replace(' ', "_");
        if details.len() > MAX_DETAILS {
            let mut end = MAX_DETAILS;
            while !details.is_char_boundary(end) {
                end -= 1;
            }
            details.truncate(end);
        }
        self.details = Some(details);
    }

    async fn check_with_provider(
        &mut self,
        provider: String,
        method: String,
        path: String,
        headers: Vec<types::Header>,
    ) -> Result<host::ProviderResponse, String> {
        let Some(outbound) = self.outbound.clone() else {
            return Err("only the AuthorizationPolicy filter may ask extension providers".into());
        };
        outbound.check(&provider, &method, &path, &headers).await
    }

    fn endpoint_address(&mut self, endpoint: u32) -> Option<String> {
        super::endpoints::address(endpoint).map(|a| a.to_string())
    }
}

/// The longest response code details kept.
const MAX_DETAILS: usize = 256;

impl PolicyState {
    /// The identity the call in progress has said, else the request's.
    fn identity(&self) -> Option<&Identity> {
        self.identity
            .as_ref()
            .or_else(|| self.request.as_ref()?.identity.as_deref())
    }
}

impl types::Host for PolicyState {}

impl v0_1::request::Host for PolicyState {
    fn method(&mut self) -> String {
        request::Host::method(self)
    }

    fn scheme(&mut self) -> String {
        request::Host::scheme(self)
    }

    fn authority(&mut self) -> String {
        request::Host::authority(self)
    }

    fn path(&mut self) -> String {
        request::Host::path(self)
    }

    fn port(&mut self) -> u16 {
        request::Host::port(self)
    }

    fn header(&mut self, name: String) -> Option<String> {
        request::Host::header(self, name)
    }

    fn client_address(&mut self) -> String {
        request::Host::client_address(self)
    }

    fn tls(&mut self) -> Option<v0_1::request::TlsSession> {
        let session = request::Host::tls(self)?;
        Some(v0_1::request::TlsSession {
            server_name: session.server_name,
            peer: session.peer.map(|p| v0_1::request::PeerCertificate {
                subject: p.subject,
                subject_alt_names: p.subject_alt_names,
                sha256: p.sha256,
            }),
        })
    }
}

impl v0_1::host::Host for PolicyState {
    fn log(&mut self, level: v0_1::host::LogLevel, message: String) {
        let level = match level {
            v0_1::host::LogLevel::Debug => host::LogLevel::Debug,
            v0_1::host::LogLevel::Info => host::LogLevel::Info,
            v0_1::host::LogLevel::Warn => host::LogLevel::Warn,
            v0_1::host::LogLevel::Error => host::LogLevel::Error,
        };
        host::Host::log(self, level, message);
    }

    fn random(&mut self) -> u64 {
        host::Host::random(self)
    }

    fn counter_add(&mut self, name: String, delta: i64) -> wasmtime::Result<i64> {
        host::Host::counter_add(self, name, delta)
    }
}
