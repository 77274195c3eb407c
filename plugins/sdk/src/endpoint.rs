//! Endpoint selection inside a cluster, the load balancer (Istio's `loadBalancer`): the
//! `endpoint-policy` world, exporting `portcullis:policy/endpoint`.
//!
//! The host marks `healthy: false` the endpoints that may not be picked (ejected, or
//! already tried by a retry) and decides alone for clusters of zero or one endpoint.
//! [`EndpointState::id`] is stable per address for the gateway's life
//! ([`crate::host::endpoint_address`] gives the address).
//!
//! ```no_run
//! use portcullis_sdk::endpoint::{self, Cluster, Endpoint, EndpointState, PluginConfig};
//!
//! /// The first healthy endpoint.
//! struct First;
//!
//! impl Endpoint for First {
//!     fn configure(_clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(First)
//!     }
//!     fn pick_endpoint(&mut self, _cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
//!         endpoints.iter().position(|e| e.healthy).map(|i| i as u32)
//!     }
//! }
//!
//! endpoint::export!(First);
//! ```

bindings!("endpoint-policy", "portcullis_sdk::endpoint::bindings");

pub use crate::PluginConfig;
pub use crate::types::{ClusterId, EndpointId};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::endpoint::Guest;
pub use bindings::exports::portcullis::policy::endpoint::{
    Algorithm, Cluster, EndpointState, HashKey,
};

/// A load balancer.
pub trait Endpoint: Sized + 'static {
    /// Builds the balancer from every cluster's settings (indexed by [`ClusterId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(clusters: Vec<Cluster>, config: PluginConfig) -> Result<Self, String>;

    /// The index in `endpoints` of the endpoint of `cluster` the request in progress goes
    /// to, or none when none will do (503).
    fn pick_endpoint(&mut self, cluster: ClusterId, endpoints: Vec<EndpointState>) -> Option<u32>;
}

/// Exports a type implementing [`Endpoint`] as the component's endpoint policy:
/// `endpoint::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_endpoint as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_endpoint {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, endpoint, Endpoint, configure(clusters: ::std::vec::Vec<$crate::endpoint::Cluster>),
            fn pick_endpoint(cluster: u32, endpoints: ::std::vec::Vec<$crate::endpoint::EndpointState>) -> ::core::option::Option<u32> = "endpoint.pick-endpoint";
        );
    };
}
