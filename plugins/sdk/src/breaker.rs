//! Circuit breaking (Istio's `connectionPool` limits): the `breaker-policy` world,
//! exporting `portcullis:policy/breaker`.
//!
//! The host counts each cluster's load across all its workers and asks before a request
//! starts, before it opens a connection, and before a retry.
//!
//! ```no_run
//! use portcullis_sdk::breaker::{self, Admission, Breaker, ClusterLoad, Limits, PluginConfig};
//!
//! /// Never refuses.
//! struct Open;
//!
//! impl Breaker for Open {
//!     fn configure(_clusters: Vec<Limits>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(Open)
//!     }
//!     fn admit_request(&mut self, _cluster: u32, _load: ClusterLoad) -> bool {
//!         true
//!     }
//!     fn admit_connection(&mut self, _cluster: u32, _load: ClusterLoad) -> Admission {
//!         Admission::Admit
//!     }
//!     fn admit_retry(&mut self, _cluster: u32, _load: ClusterLoad) -> bool {
//!         true
//!     }
//! }
//!
//! breaker::export!(Open);
//! ```

bindings!("breaker-policy", "portcullis_sdk::breaker::bindings");

pub use crate::PluginConfig;
pub use crate::types::ClusterId;
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::breaker::Guest;
pub use bindings::exports::portcullis::policy::breaker::{Admission, ClusterLoad, Limits};

/// A circuit breaker.
pub trait Breaker: Sized + 'static {
    /// Builds the breaker from every cluster's limits (indexed by [`ClusterId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(clusters: Vec<Limits>, config: PluginConfig) -> Result<Self, String>;

    /// Whether a request to `cluster` may start.
    fn admit_request(&mut self, cluster: ClusterId, load: ClusterLoad) -> bool;

    /// Whether a request to `cluster` may open a connection, must wait for one, or is refused.
    fn admit_connection(&mut self, cluster: ClusterId, load: ClusterLoad) -> Admission;

    /// Whether a retry to `cluster` may start.
    fn admit_retry(&mut self, cluster: ClusterId, load: ClusterLoad) -> bool;
}

/// Exports a type implementing [`Breaker`] as the component's breaker policy:
/// `breaker::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_breaker as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_breaker {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, breaker, Breaker, configure(clusters: ::std::vec::Vec<$crate::breaker::Limits>),
            fn admit_request(cluster: u32, load: $crate::breaker::ClusterLoad) -> bool = "breaker.admit-request";
            fn admit_connection(cluster: u32, load: $crate::breaker::ClusterLoad) -> $crate::breaker::Admission = "breaker.admit-connection";
            fn admit_retry(cluster: u32, load: $crate::breaker::ClusterLoad) -> bool = "breaker.admit-retry";
        );
    };
}
