//! Custom plugins declared by WasmPlugin resources: loading, calling, and what their
//! `failStrategy` makes of a failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::counters::Counters;
use super::plugin_output;
use super::policies::{Action, Filter};
use super::pool::{Pool, Setup};
use super::quarantine::{QUARANTINE_AFTER, Quarantine};
use super::stats::PolicyStats;
use super::{PolicyError, RequestView, WasmEngine};
use crate::config::resolved::{FailStrategy, Phase, Plugin};

/// A loaded plugin and its configured instances.
pub struct LoadedPlugin {
    /// The plugin as configured.
    pub plugin: Plugin,
    /// The sha256 of the component as loaded.
    pub sha256: String,
    pool: Pool<Filter>,
    quarantine: Quarantine,
}

/// What a plugin's call came to, after its fail strategy.
pub enum Verdict {
    /// Carry out the plugin's action.
    Act(Action),
    /// The plugin failed and fails open: go on as if it were not there.
    Skip,
}

impl LoadedPlugin {
    /// Reads, checks, compiles and configures the plugin's component.
    pub async fn load(
        plugin: Plugin,
        wasm: &WasmEngine,
        counters: Arc<Counters>,
        stats: Arc<PolicyStats>,
    ) -> anyhow::Result<Self> {
        let bytes = std::fs::read(&plugin.path)
            .with_context(|| format!("reading {}", plugin.path.display()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &plugin.sha256 {
            anyhow::ensure!(
                &sha256 == expected,
                "{} has sha256 {sha256}, not {expected}",
                plugin.path.display()
            );
        }
        let component = wasm.compile(&plugin.name, bytes).await?;
        let pool = Pool::new(
            &plugin.name,
            wasm,
            &component,
            Setup {
                config: plugin.config.to_string(),
                env: plugin.env.clone().into(),
            },
            counters,
            plugin.limits.into(),
            stats,
        )
        .await?;
        Ok(Self {
            plugin,
            sha256,
            pool,
            quarantine: Quarantine::default(),
        })
    }

    /// The plugin's `namespace/name`.
    pub fn name(&self) -> &Arc<str> {
        self.pool.name()
    }

    /// Calls and failures so far.
    pub fn stats(&self) -> &PolicyStats {
        &self.pool.stats
    }

    /// Where the plugin runs in a chain: phase first, then descending priority, then name.
    pub fn order(&self) -> (u8, i64, &str) {
        let phase = match self.plugin.phase {
            Phase::Authn => 0,
            Phase::Authz => 1,
            Phase::UnspecifiedPhase => 2,
            Phase::Stats => 3,
        };
        (phase, -self.plugin.priority, &self.plugin.name)
    }

    /// Calls the plugin on the request; a failure, or the plugin being quarantined,
    /// follows the plugin's fail strategy.
    pub async fn on_request(&self, request: &Arc<RequestView>) -> Result<Verdict, PolicyError> {
        let result = match self.quarantine.active() {
            true => Err(PolicyError::Quarantined {
                policy: self.name().clone(),
                failures: QUARANTINE_AFTER,
            }),
            false => {
                let mut result = self.call(request).await;
                if result.is_err() && self.plugin.fail_strategy == FailStrategy::FailReload {
                    // The failed instance is gone; one more try on a fresh one.
                    result = self.call(request).await;
                }
                match &result {
                    Ok(_) => self.quarantine.succeeded(),
                    Err(_) => {
                        if let Some(backoff) = self.quarantine.failed() {
                            self.pool.stats.quarantines.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(plugin = %self.plugin.name, "failed {QUARANTINE_AFTER} calls in a row; quarantined for {backoff:?}");
                        }
                    }
                }
                result
            }
        };
        match (result, self.plugin.fail_strategy) {
            (Ok(action), _) => Ok(Verdict::Act(action)),
            (Err(_), FailStrategy::FailOpen) => Ok(Verdict::Skip),
            (Err(error), _) => Err(error),
        }
    }

    async fn call(&self, request: &Arc<RequestView>) -> Result<Action, PolicyError> {
        let mut lease = self.pool.lease(request).await?;
        let deadline = lease.deadline();
        let (instance, store) = lease.parts();
        let call = instance.portcullis_policy_filter().call_on_request(store);
        let result = super::pool::within(deadline, call).await;
        let action = lease.finish(result)?;
        plugin_output::check(&action).map_err(|reason| PolicyError::Trap {
            policy: self.plugin.name.as_str().into(),
            reason,
        })?;
        Ok(action)
    }
}
