//! Plugins declared by WasmPlugin resources: loading, what kind of policy each serves,
//! calling them, and what their `failStrategy` makes of a failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::builtin;
use super::counters::Counters;
use super::kinds::{Contract, PolicyKind};
use super::legacy;
use super::outbound::Outbound;
use super::plugin_output;
use super::policies::call;
use super::policies::{
    Action, BreakerWorld, DestinationWorld, Edits, EndpointWorld, FaultWorld, FilterWorld,
    LegacyFilterWorld, OutlierWorld, PhaseConfig, PhaseTables, Rejection, RetryWorld,
    RouteMatchWorld,
};
use super::pool::{Pool, Setup};
use super::quarantine::{QUARANTINE_AFTER, Quarantine};
use super::request_view::Identity;
use super::state::Services;
use super::stats::PolicyStats;
use super::{PolicyError, RequestView, WasmEngine};
use crate::config::resolved::{FailStrategy, Phase, Plugin, Source};

/// Makes a call to a plugin under its quarantine and fail strategy (the call is made
/// again on a fresh instance when it fails and the plugin reloads on failure); comes to
/// `Ok(None)` when the plugin failed, or is quarantined, and fails open.
macro_rules! guarded {
    ($plugin:expr, $call:expr) => {{
        let plugin: &$crate::wasm::plugins::LoadedPlugin = $plugin;
        let result = match plugin.quarantined() {
            Some(error) => Err(error),
            None => {
                let mut result = $call.await;
                if result.is_err() && plugin.reloads_on_failure() {
                    result = $call.await;
                }
                plugin.count(result.is_ok());
                result
            }
        };
        plugin.settle(result)
    }};
}
pub(crate) use guarded;

/// Where a filter runs in a route's chain: phase first, then descending priority, then
/// name.
pub fn chain_order(plugin: &Plugin) -> (u8, i64, &str) {
    let phase = match plugin.phase {
        Phase::Authn => 0,
        Phase::Authz => 1,
        Phase::UnspecifiedPhase => 2,
        Phase::Stats => 3,
    };
    (phase, -plugin.priority, &plugin.name)
}

/// A plugin's component, compiled and checked, not yet configured.
pub struct CompiledPlugin {
    /// The plugin as configured.
    pub plugin: Plugin,
    /// The sha256 of the component as loaded.
    pub sha256: String,
    /// The phase the component serves, by the interface it exports.
    pub kind: PolicyKind,
    /// The contract version it was built against.
    pub contract: Contract,
    component: Component,
}

impl CompiledPlugin {
    /// Reads, checks and compiles the plugin's component, and reads its kind.
    pub async fn compile(plugin: Plugin, wasm: &WasmEngine) -> anyhow::Result<Self> {
        let source = &plugin.source;
        let bytes = match source {
            Source::File(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
            }
            Source::Builtin(name) => builtin::named(name)
                .with_context(|| format!("no built-in component {name}"))?
                .bytes()
                .to_vec(),
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &plugin.sha256 {
            anyhow::ensure!(
                &sha256 == expected,
                "{source} has sha256 {sha256}, not {expected}"
            );
        }
        let component = wasm.compile(&plugin.name, bytes).await?;
        let (kind, contract) = PolicyKind::of(&component, wasm.engine())
            .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        Ok(Self {
            plugin,
            sha256,
            kind,
            contract,
            component,
        })
    }

    /// Instantiates and configures the component: a filter with its `pluginConfig`, a
    /// policy with its phase's table in `tables` and the `pluginConfig` beside it. Only
    /// the AuthorizationPolicy filter may ask the extension providers of `outbound`.
    pub async fn configure(
        self,
        wasm: &WasmEngine,
        counters: Arc<Counters>,
        stats: Arc<PolicyStats>,
        tables: &PhaseTables,
        outbound: &Arc<Outbound>,
    ) -> anyhow::Result<LoadedPlugin> {
        let authorization = self.plugin.source == Source::Builtin("authorization".into());
        let services = Services {
            env: self.plugin.env.clone().into(),
            outbound: authorization.then(|| outbound.clone()),
        };
        let limits = self.plugin.limits.into();
        let name = self.plugin.name.as_str();
        let plugin_config = Some(self.plugin.config.to_string());
        macro_rules! pool {
            ($variant:ident, $config:expr) => {{
                let setup = Setup {
                    config: $config,
                    services,
                };
                PluginPool::$variant(
                    Pool::new(name, wasm, &self.component, setup, counters, limits, stats).await?,
                )
            }};
        }
        macro_rules! table {
            ($variant:ident, $table:ident) => {
                pool!(
                    $variant,
                    PhaseConfig {
                        table: tables.$table.clone(),
                        plugin_config,
                    }
                )
            };
        }
        let pool = match (self.kind, self.contract) {
            (PolicyKind::RouteMatch, _) => table!(RouteMatch, route_match),
            (PolicyKind::Destination, _) => table!(Destination, destination),
            (PolicyKind::Endpoint, _) => table!(Endpoint, endpoint),
            (PolicyKind::Fault, _) => table!(Fault, fault),
            (PolicyKind::Retry, _) => table!(Retry, retry),
            (PolicyKind::Breaker, _) => table!(Breaker, breaker),
            (PolicyKind::Outlier, _) => table!(Outlier, outlier),
            (PolicyKind::Filter, Contract::V0_2) => pool!(Filter, plugin_config),
            (PolicyKind::Filter, Contract::V0_1) => pool!(LegacyFilter, plugin_config),
        };
        Ok(LoadedPlugin {
            plugin: self.plugin,
            sha256: self.sha256,
            kind: self.kind,
            pool,
            quarantine: Quarantine::default(),
        })
    }
}

/// A plugin's configured instances, typed by the phase it serves.
pub enum PluginPool {
    /// A route matcher.
    RouteMatch(Pool<RouteMatchWorld>),
    /// A destination picker.
    Destination(Pool<DestinationWorld>),
    /// A load balancer.
    Endpoint(Pool<EndpointWorld>),
    /// A fault injector.
    Fault(Pool<FaultWorld>),
    /// A retry policy.
    Retry(Pool<RetryWorld>),
    /// A circuit breaker.
    Breaker(Pool<BreakerWorld>),
    /// An outlier detector.
    Outlier(Pool<OutlierWorld>),
    /// A custom filter.
    Filter(Pool<FilterWorld>),
    /// A custom filter built against 0.1.0.
    LegacyFilter(Pool<LegacyFilterWorld>),
}

macro_rules! typed {
    ($($method:ident: $variant:ident($world:ident)),* $(,)?) => {
        impl PluginPool {
            $(
                #[doc = concat!("The pool, when the plugin serves the `", stringify!($method), "` phase.")]
                pub fn $method(&self) -> Option<&Pool<$world>> {
                    match self {
                        Self::$variant(pool) => Some(pool),
                        _ => None,
                    }
                }
            )*

            fn stats(&self) -> &Arc<PolicyStats> {
                match self {
                    $(Self::$variant(pool) => &pool.stats,)*
                    Self::Filter(pool) => &pool.stats,
                    Self::LegacyFilter(pool) => &pool.stats,
                }
            }
        }
    };
}

typed!(
    route_match: RouteMatch(RouteMatchWorld),
    destination: Destination(DestinationWorld),
    endpoint: Endpoint(EndpointWorld),
    fault: Fault(FaultWorld),
    retry: Retry(RetryWorld),
    breaker: Breaker(BreakerWorld),
    outlier: Outlier(OutlierWorld),
);

/// A loaded plugin and its configured instances.
pub struct LoadedPlugin {
    /// The plugin as configured.
    pub plugin: Plugin,
    /// The sha256 of the component as loaded.
    pub sha256: String,
    /// The phase it serves.
    pub kind: PolicyKind,
    /// Its instances.
    pub pool: PluginPool,
    quarantine: Quarantine,
}

/// What a filter's call said beside its action.
#[derive(Default)]
struct Said {
    identity: Option<Identity>,
    details: Option<String>,
}

/// What a plugin's call came to, after its fail strategy.
pub enum Verdict {
    /// Go on with these edits; the plugin may have said who the request comes from.
    Proceed(Edits, Option<Identity>),
    /// Answer the request with this response, for the reason given (Envoy's response code
    /// details), if the plugin gave one.
    Reject(Rejection, Option<String>),
    /// The plugin failed and fails open: go on as if it were not there.
    Skip,
}

impl LoadedPlugin {
    /// The plugin's `namespace/name`.
    pub fn name(&self) -> &str {
        &self.plugin.name
    }

    /// Calls and failures so far.
    pub fn stats(&self) -> &PolicyStats {
        self.pool.stats()
    }

    /// The error a call gets while the plugin is quarantined.
    pub fn quarantined(&self) -> Option<PolicyError> {
        self.quarantine.active().then(|| PolicyError::Quarantined {
            policy: self.plugin.name.as_str().into(),
            failures: QUARANTINE_AFTER,
        })
    }

    /// Whether a failed call is tried once more on a fresh instance (FAIL_RELOAD).
    pub fn reloads_on_failure(&self) -> bool {
        self.plugin.fail_strategy == FailStrategy::FailReload
    }

    /// What a call's result comes to under the fail strategy: `Ok(None)` when it failed
    /// and the plugin fails open.
    pub fn settle<T>(&self, result: Result<T, PolicyError>) -> Result<Option<T>, PolicyError> {
        match (result, self.plugin.fail_strategy) {
            (Ok(decided), _) => Ok(Some(decided)),
            (Err(_), FailStrategy::FailOpen) => Ok(None),
            (Err(error), _) => Err(error),
        }
    }

    /// Counts a call's success or failure towards quarantine.
    pub fn count(&self, succeeded: bool) {
        if succeeded {
            self.quarantine.succeeded();
        } else if let Some(backoff) = self.quarantine.failed() {
            self.stats().quarantines.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = %self.plugin.name, "failed {QUARANTINE_AFTER} calls in a row; quarantined for {backoff:?}");
        }
    }

    /// Calls the filter on the request; a failure, or the plugin being quarantined,
    /// follows the plugin's fail strategy.
    pub async fn on_request(&self, request: &Arc<RequestView>) -> Result<Verdict, PolicyError> {
        let called = guarded!(self, self.call(request))?;
        Ok(match called {
            None => Verdict::Skip,
            Some((Action::Reject(rejection), said)) => Verdict::Reject(rejection, said.details),
            Some((Action::Proceed(edits), said)) => Verdict::Proceed(edits, said.identity),
        })
    }

    async fn call(&self, request: &Arc<RequestView>) -> Result<(Action, Said), PolicyError> {
        let mut said = Said::default();
        let action = match &self.pool {
            PluginPool::Filter(pool) => {
                let mut lease = pool.lease(request).await?;
                let deadline = lease.deadline();
                let (instance, store) = lease.parts();
                let call = instance.portcullis_policy_filter().call_on_request(store);
                let result = super::pool::within(deadline, call).await;
                (said.identity, said.details) = lease.take_said();
                lease.finish(result)?
            }
            PluginPool::LegacyFilter(pool) => {
                let action: legacy::LegacyAction =
                    call!(pool, request, |instance, store| instance
                        .portcullis_policy_filter()
                        .call_on_request(store))?;
                action.into()
            }
            _ => {
                return Err(PolicyError::Trap {
                    policy: self.plugin.name.as_str().into(),
                    reason: format!("a {} policy is not a filter", self.kind.interface()),
                });
            }
        };
        plugin_output::check(&action).map_err(|reason| PolicyError::Trap {
            policy: self.plugin.name.as_str().into(),
            reason,
        })?;
        Ok((action, said))
    }
}
