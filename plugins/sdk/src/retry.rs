//! Retry decisions (Istio's `HTTPRetry`): the `retry-policy` world, exporting
//! `portcullis:policy/retry`.
//!
//! The host asks only after a failed attempt that could be retried, and enforces the
//! route's timeout, the per-try timeout and the cluster's `maxRetries` itself.
//!
//! ```no_run
//! use portcullis_sdk::retry::{self, Decision, Outcome, PluginConfig, Retry, RetryPolicy};
//!
//! /// Never retries.
//! struct Never;
//!
//! impl Retry for Never {
//!     fn configure(_routes: Vec<RetryPolicy>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(Never)
//!     }
//!     fn should_retry(&mut self, _route: u32, _attempt: u32, _outcome: Outcome) -> Decision {
//!         Decision::Stop
//!     }
//! }
//!
//! retry::export!(Never);
//! ```

bindings!("retry-policy", "portcullis_sdk::retry::bindings");

pub use crate::PluginConfig;
pub use crate::types::{Millis, RouteId};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::retry::Guest;
pub use bindings::exports::portcullis::policy::retry::{
    Decision, Outcome, ResponseStatus, RetryPolicy,
};

/// A retry policy.
pub trait Retry: Sized + 'static {
    /// Builds the policy from every route's retry settings (indexed by [`RouteId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(routes: Vec<RetryPolicy>, config: PluginConfig) -> Result<Self, String>;

    /// Whether to try `route` again after attempt number `attempt` (1 for the first) ended
    /// with `outcome`, and after how long.
    fn should_retry(&mut self, route: RouteId, attempt: u32, outcome: Outcome) -> Decision;
}

/// Exports a type implementing [`Retry`] as the component's retry policy:
/// `retry::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_retry as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_retry {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, retry, Retry, configure(routes: ::std::vec::Vec<$crate::retry::RetryPolicy>),
            fn should_retry(route: u32, attempt: u32, outcome: $crate::retry::Outcome) -> $crate::retry::Decision = "retry.should-retry";
        );
    };
}
