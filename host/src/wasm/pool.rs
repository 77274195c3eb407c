//! Ready instances of one policy component, reused across requests.
//!
//! Instantiating per request costs ~30 µs even with the pooling allocator, so each policy
//! keeps configured instances and lends one to each call. An instance that trapped, ran
//! past its deadline, or whose call was abandoned halfway is dropped, never reused.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::counters::Counters;
use super::engine::WasmEngine;
use super::error::PolicyError;
use super::limits::Limits;
use super::request_view::{Identity, RequestView};
use super::state::{PolicyState, Services};
use super::stats::PolicyStats;

/// Calls after which an instance is replaced, so that a leaking guest cannot grow forever.
const CALLS_PER_INSTANCE: u64 = 100_000;

/// One world of the WIT package (a policy kind), as its marker type in `policies.rs` names it.
pub trait PolicyWorld: Send + Sync + 'static {
    /// Pre-instantiated bindings.
    type Pre: Send + Sync;
    /// An instance's bindings.
    type Instance: Send;
    /// What the phase's `configure` takes.
    type Config: Send + Sync;

    /// Types the pre-instantiated component against the world.
    fn pre(pre: InstancePre<PolicyState>) -> wasmtime::Result<Self::Pre>;

    /// Instantiates in `store`.
    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<PolicyState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a;

    /// Calls the phase's `configure`.
    fn configure<'a>(
        instance: &'a Self::Instance,
        store: &'a mut Store<PolicyState>,
        config: &'a Self::Config,
    ) -> impl Future<Output = wasmtime::Result<Result<(), String>>> + Send + 'a;
}

struct Slot<K: PolicyWorld> {
    store: Store<PolicyState>,
    instance: K::Instance,
    calls: u64,
}

/// What each instance of a component starts with.
#[derive(Debug, Clone, Default)]
pub struct Setup<C> {
    /// What its `configure` gets.
    pub config: C,
    /// Its environment and the host services it may use.
    pub services: Services,
}

impl<C> Setup<C> {
    /// `configure`'s argument, no environment, and no services beyond every policy's.
    pub fn config(config: C) -> Self {
        Self {
            config,
            services: Services::default(),
        }
    }
}

/// Configured instances of one component.
pub struct Pool<K: PolicyWorld> {
    name: Arc<str>,
    engine: wasmtime::Engine,
    pre: K::Pre,
    setup: Setup<K::Config>,
    counters: Arc<Counters>,
    limits: Limits,
    idle: Mutex<Vec<Slot<K>>>,
    /// Calls, failures and durations of the component.
    pub stats: Arc<PolicyStats>,
}

impl<K: PolicyWorld> Pool<K> {
    /// Pre-instantiates `component` and configures a first instance as `setup` says, so
    /// that a component that does not fit the world or rejects its config fails here.
    /// What its instances do is counted in `stats`.
    pub async fn new(
        name: &str,
        wasm: &WasmEngine,
        component: &Component,
        setup: Setup<K::Config>,
        counters: Arc<Counters>,
        limits: Limits,
        stats: Arc<PolicyStats>,
    ) -> Result<Self, PolicyError> {
        let name: Arc<str> = name.into();
        let pre = wasm
            .linker()
            .instantiate_pre(component)
            .and_then(K::pre)
            .map_err(|e| PolicyError::Load {
                policy: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let pool = Self {
            name,
            engine: wasm.engine().clone(),
            pre,
            setup,
            counters,
            limits,
            idle: Mutex::new(Vec::new()),
            stats,
        };
        let first = pool.fresh().await?;
        pool.idle().push(first);
        Ok(pool)
    }

    /// The policy's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Slot<K>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new, configured instance.
    async fn fresh(&self) -> Result<Slot<K>, PolicyError> {
        let state = PolicyState::new(
            self.name.clone(),
            self.counters.clone(),
            self.limits,
            self.stats.clone(),
            &self.setup.services,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        // Instantiation and configuration may parse and compile: a generous deadline.
        store.set_epoch_deadline(
            self.limits
                .deadline_ticks
                .saturating_mul(u64::from(SETUP_DEADLINE_FACTOR)),
        );
        let load = |reason: String| PolicyError::Load {
            policy: self.name.clone(),
            reason,
        };
        let setup = self
            .limits
            .wall_deadline()
            .saturating_mul(SETUP_DEADLINE_FACTOR);
        let instance = within(setup, K::instantiate(&self.pre, &mut store))
            .await
            .map_err(|e| load(format!("{e:#}")))?;
        let configured = within(
            setup,
            K::configure(&instance, &mut store, &self.setup.config),
        );
        let configured = match configured.await {
            Ok(result) => Ok(result),
            Err(e) if is_interrupt(&e) => {
                return Err(load(format!("configure ran past {setup:?}")));
            }
            Err(e) => Err(e),
        };
        match configured {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(PolicyError::Config {
                    policy: self.name.clone(),
                    reason,
                });
            }
            Err(e) => return Err(load(format!("configure trapped: {e:#}"))),
        }
        self.stats.instances.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            store,
            instance,
            calls: 0,
        })
    }

    /// Lends an instance for one call about `request`.
    pub async fn lease(&self, request: &Arc<RequestView>) -> Result<Lease<'_, K>, PolicyError> {
        let reused = self.idle().pop();
        let mut slot = match reused {
            Some(slot) => slot,
            None => self.fresh().await?,
        };
        slot.store.data_mut().request = Some(request.clone());
        slot.store.set_epoch_deadline(self.limits.deadline_ticks);
        slot.calls += 1;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Lease {
            pool: self,
            slot: Some(slot),
            healthy: false,
            started: Instant::now(),
        })
    }
}

/// How many call deadlines instantiation and `configure` may take: they may parse and
/// compile.
const SETUP_DEADLINE_FACTOR: u32 = 50;

/// Waits at most `deadline` for a call into a component. The epoch stops Wasm code that
/// runs too long; this stops a call waiting inside a host call (a WASI sleep or poll),
/// which is abandoned as if interrupted: its instance is never reused. Most calls never
/// wait and finish in their first poll, so the timer is armed only when one does (the
/// epoch bounds the time before that).
pub async fn within<R>(
    deadline: std::time::Duration,
    call: impl std::future::Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(result) = first {
        return result;
    }
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into()))
}

fn is_interrupt(error: &wasmtime::Error) -> bool {
    matches!(
        error.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

/// An instance lent for one call. Unless [`Lease::finish`] sees the call succeed, the
/// instance is dropped rather than reused.
pub struct Lease<'p, K: PolicyWorld> {
    pool: &'p Pool<K>,
    slot: Option<Slot<K>>,
    healthy: bool,
    started: Instant,
}

impl<K: PolicyWorld> Lease<'_, K> {
    /// The wall-clock bound of the call (see [`within`]).
    pub fn deadline(&self) -> std::time::Duration {
        self.pool.limits.wall_deadline()
    }

    /// The instance and its store.
    pub fn parts(&mut self) -> (&K::Instance, &mut Store<PolicyState>) {
        let slot = self
            .slot
            .as_mut()
            .expect("a lease holds its slot until dropped");
        (&slot.instance, &mut slot.store)
    }

    /// What the call said besides its result: who the request comes from
    /// (`host.authenticate`) and why it decided so (`host.response-details`).
    pub fn take_said(&mut self) -> (Option<Identity>, Option<String>) {
        let state = self.parts().1.data_mut();
        (state.identity.take(), state.details.take())
    }

    /// Ends the call: a trap becomes a [`PolicyError`] and retires the instance.
    pub fn finish<R>(mut self, result: wasmtime::Result<R>) -> Result<R, PolicyError> {
        let stats = &self.pool.stats;
        stats
            .durations
            .observe(self.started.elapsed().as_secs_f64());
        match result {
            Ok(value) => {
                self.healthy = true;
                Ok(value)
            }
            Err(error) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                let error = PolicyError::from_trap(self.pool.name.clone(), &error);
                tracing::warn!(policy = %self.pool.name, "{error}");
                Err(error)
            }
        }
    }
}

impl<K: PolicyWorld> Drop for Lease<'_, K> {
    fn drop(&mut self) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        let state = slot.store.data_mut();
        state.request = None;
        state.identity = None;
        state.details = None;
        if self.healthy && slot.calls < CALLS_PER_INSTANCE {
            self.pool.idle().push(slot);
        }
    }
}
