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

/// The wit-bindgen bindings of the world.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "breaker-policy",
        with: {
            "portcullis:policy/types@0.2.0": crate::types,
            "portcullis:policy/request@0.2.0": crate::request,
            "portcullis:policy/host@0.2.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "portcullis_sdk::breaker::bindings",
    });
}

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
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::breaker::Guest for Component {
                fn configure(
                    clusters: ::std::vec::Vec<$crate::breaker::Limits>,
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::breaker::Breaker>::configure(
                        clusters,
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                fn admit_request(
                    cluster: u32,
                    load: $crate::breaker::ClusterLoad,
                ) -> bool {
                    $crate::__private::with(&POLICY, "breaker.admit-request", |p| {
                        <$ty as $crate::breaker::Breaker>::admit_request(p, cluster, load)
                    })
                }

                fn admit_connection(
                    cluster: u32,
                    load: $crate::breaker::ClusterLoad,
                ) -> $crate::breaker::Admission {
                    $crate::__private::with(&POLICY, "breaker.admit-connection", |p| {
                        <$ty as $crate::breaker::Breaker>::admit_connection(p, cluster, load)
                    })
                }

                fn admit_retry(
                    cluster: u32,
                    load: $crate::breaker::ClusterLoad,
                ) -> bool {
                    $crate::__private::with(&POLICY, "breaker.admit-retry", |p| {
                        <$ty as $crate::breaker::Breaker>::admit_retry(p, cluster, load)
                    })
                }
            }

            $crate::breaker::bindings::export_bindings!(Component with_types_in $crate::breaker::bindings);
        };
    };
}
