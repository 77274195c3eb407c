//! What each policy instance's store holds, and the host functions it imports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, request};
use super::counters::Counters;
use super::engine::EPOCH_TICK;
use super::log_budget::{Allowance, LINES_PER_SECOND, bounded};
use super::stats::PolicyStats;
use crate::config::resolved::PluginLimits;
use crate::tls::session::TlsSession;

/// The request a policy call decides on.
#[derive(Debug)]
pub struct RequestView {
    /// The request's head.
    pub parts: http::request::Parts,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The gateway port the request arrived on.
    pub port: u16,
    /// The client's address.
    pub client: SocketAddr,
    /// The client's TLS session, on an HTTPS server.
    pub tls: Option<Arc<TlsSession>>,
}

impl RequestView {
    /// The `Host` header, or the URI's authority (HTTP/2).
    pub fn authority(&self) -> &str {
        self.parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.parts.uri.authority().map(http::uri::Authority::as_str))
            .unwrap_or("")
    }
}

/// Limits every instance runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory: usize,
    /// Epoch ticks (milliseconds) one call may run. The epoch is wall-clock time, so the
    /// bound is generous enough for a busy machine that deschedules the thread.
    pub deadline_ticks: u64,
}

impl Limits {
    /// The wall-clock bound of one call: the epoch stops Wasm code, this stops a call
    /// waiting inside a host call (a WASI sleep or poll).
    pub fn wall_deadline(&self) -> std::time::Duration {
        EPOCH_TICK.saturating_mul(u32::try_from(self.deadline_ticks).unwrap_or(u32::MAX))
    }
}

impl From<PluginLimits> for Limits {
    fn from(limits: PluginLimits) -> Self {
        let ticks = limits.timeout.as_nanos() / EPOCH_TICK.as_nanos();
        Self {
            memory: limits.memory,
            deadline_ticks: u64::try_from(ticks).unwrap_or(u64::MAX).max(1),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        PluginLimits::default().into()
    }
}

/// The store's limits, noting the memory high-water mark in the policy's stats.
pub struct Limiter {
    limits: StoreLimits,
    stats: Arc<PolicyStats>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.stats
                .memory_high_water
                .fetch_max(desired as u64, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The data of one policy instance's store.
pub struct PolicyState {
    /// The policy's name, for its log lines.
    pub name: Arc<str>,
    /// The request of the call in progress.
    pub request: Option<Arc<RequestView>>,
    /// The counters the component may add to.
    pub counters: Arc<Counters>,
    /// The instance's memory and table limits.
    pub limits: Limiter,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl PolicyState {
    /// A state with no WASI capability granted but the environment `env`: no files, no
    /// sockets.
    pub fn new(
        name: Arc<str>,
        counters: Arc<Counters>,
        limits: Limits,
        stats: Arc<PolicyStats>,
        env: &[(String, String)],
    ) -> Self {
        Self {
            name,
            request: None,
            counters,
            limits: Limiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.memory)
                    .trap_on_grow_failure(true)
                    .build(),
                stats,
            },
            wasi: WasiCtx::builder().envs(env).build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for PolicyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

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
        match self.limits.stats.log.take(now) {
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
