//! Outlier detection, ejecting endpoints that keep failing (Istio's
//! `outlierDetection`): the `outlier-policy` world, exporting `portcullis:policy/outlier`.
//!
//! The host asks only for clusters with detection, only about failures and the first
//! success after one; it keeps the ejections and applies the panic threshold.
//!
//! ```no_run
//! use portcullis_sdk::outlier::{self, Cluster, EndpointResult, Millis, Outlier, PluginConfig};
//!
//! /// Never ejects.
//! struct Lenient;
//!
//! impl Outlier for Lenient {
//!     fn configure(_clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(Lenient)
//!     }
//!     fn record_result(
//!         &mut self,
//!         _cluster: u32,
//!         _endpoint: u32,
//!         _result: EndpointResult,
//!         _ejected: u32,
//!         _total: u32,
//!     ) -> Option<Millis> {
//!         None
//!     }
//! }
//!
//! outlier::export!(Lenient);
//! ```

/// The wit-bindgen bindings of the world.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "outlier-policy",
        with: {
            "portcullis:policy/types@0.2.0": crate::types,
            "portcullis:policy/request@0.2.0": crate::request,
            "portcullis:policy/host@0.2.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "portcullis_sdk::outlier::bindings",
    });
}

pub use crate::PluginConfig;
pub use crate::types::{ClusterId, EndpointId, Millis};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::outlier::Guest;
pub use bindings::exports::portcullis::policy::outlier::{Cluster, Detection, EndpointResult};

/// An outlier detector.
pub trait Outlier: Sized + 'static {
    /// Builds the detector from every cluster's settings (indexed by [`ClusterId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(clusters: Vec<Cluster>, config: PluginConfig) -> Result<Self, String>;

    /// Records how a request to `endpoint` of `cluster` ended, while `ejected` of the
    /// cluster's `total` endpoints are ejected; returns how long to eject it for, if at all.
    fn record_result(
        &mut self,
        cluster: ClusterId,
        endpoint: EndpointId,
        result: EndpointResult,
        ejected: u32,
        total: u32,
    ) -> Option<Millis>;
}

/// Exports a type implementing [`Outlier`] as the component's outlier policy:
/// `outlier::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_outlier as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_outlier {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::outlier::Guest for Component {
                fn configure(
                    clusters: ::std::vec::Vec<$crate::outlier::Cluster>,
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::outlier::Outlier>::configure(
                        clusters,
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                fn record_result(
                    cluster: u32,
                    endpoint: u32,
                    result: $crate::outlier::EndpointResult,
                    ejected: u32,
                    total: u32,
                ) -> ::core::option::Option<u64> {
                    $crate::__private::with(&POLICY, "outlier.record-result", |p| {
                        <$ty as $crate::outlier::Outlier>::record_result(p, cluster, endpoint, result, ejected, total)
                    })
                }
            }

            $crate::outlier::bindings::export_bindings!(Component with_types_in $crate::outlier::bindings);
        };
    };
}
