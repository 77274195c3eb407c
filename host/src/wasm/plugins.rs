//! Custom plugins declared by WasmPlugin resources: loading, calling, and what their
//! `failStrategy` makes of a failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::counters::Counters;
use super::policies::{Action, Filter};
use super::pool::Pool;
use super::quarantine::{QUARANTINE_AFTER, Quarantine};
use super::stats::PolicyStats;
use super::{PolicyError, RequestView, WasmEngine};
use crate::config::resolved::{FailStrategy, Phase, Plugin};

/// The most header bytes (names and values) one plugin call may add, as Envoy bounds
/// header maps at 60 KiB.
const MAX_HEADER_BYTES: usize = 60 << 10;

/// The header bytes an action would add.
fn header_bytes(action: &Action) -> usize {
    let headers = match action {
        Action::Proceed(edits) => edits
            .set_request_headers
            .iter()
            .chain(&edits.add_request_headers)
            .chain(&edits.set_response_headers)
            .chain(&edits.add_response_headers)
            .collect::<Vec<_>>(),
        Action::Reject(rejection) => rejection.headers.iter().collect(),
    };
    headers.iter().map(|h| h.name.len() + h.value.len()).sum()
}

/// A loaded plugin and its configured instances.
pub struct LoadedPlugin {
    pub plugin: Plugin,
    /// The sha256 of the component as loaded.
    pub sha256: String,
    pool: Pool<Filter>,
    quarantine: Quarantine,
}

/// What a plugin's call came to, after its fail strategy.
pub enum Verdict {
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
            plugin.config.to_string(),
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
        let (instance, store) = lease.parts();
        let result = instance
            .portcullis_policy_filter()
            .call_on_request(store)
            .await;
        let action = lease.finish(result)?;
        let size = header_bytes(&action);
        if size > MAX_HEADER_BYTES {
            return Err(PolicyError::Trap {
                policy: self.plugin.name.as_str().into(),
                reason: format!("asked for {size} bytes of headers, more than {MAX_HEADER_BYTES}"),
            });
        }
        Ok(action)
    }
}
