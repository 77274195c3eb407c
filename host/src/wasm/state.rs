//! What each policy instance's store holds. The host functions it offers are in
//! `host_impl.rs`.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::counters::Counters;
use super::limits::{Limiter, Limits};
use super::outbound::Outbound;
use super::request_view::{Identity, RequestView};
use super::stats::PolicyStats;

/// What an instance is given beside its configuration.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Its environment variables (WasmPlugin `vmConfig.env`).
    pub env: Arc<[(String, String)]>,
    /// The extension providers it may ask (the AuthorizationPolicy filter's).
    pub outbound: Option<Arc<Outbound>>,
}

/// The data of one policy instance's store.
pub struct PolicyState {
    /// The policy's name, for its log lines.
    pub name: Arc<str>,
    /// The request of the call in progress.
    pub request: Option<Arc<RequestView>>,
    /// Who the call in progress said the request comes from (`host.authenticate`).
    pub identity: Option<Identity>,
    /// Why the call in progress decides as it does (`host.response-details`).
    pub details: Option<String>,
    /// The counters the component may add to.
    pub counters: Arc<Counters>,
    /// The instance's memory and table limits.
    pub limits: Limiter,
    /// The extension providers it may ask, if it may.
    pub outbound: Option<Arc<Outbound>>,
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
        setup: &Services,
    ) -> Self {
        Self {
            name,
            request: None,
            identity: None,
            details: None,
            counters,
            limits: Limiter::new(limits, stats),
            outbound: setup.outbound.clone(),
            wasi: WasiCtx::builder().envs(&setup.env).build(),
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
