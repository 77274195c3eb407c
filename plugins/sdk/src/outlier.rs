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

bindings!("outlier-policy", "portcullis_sdk::outlier::bindings");

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
        $crate::__export_policy!(
            $ty, outlier, Outlier, configure(clusters: ::std::vec::Vec<$crate::outlier::Cluster>),
            fn record_result(cluster: u32, endpoint: u32, result: $crate::outlier::EndpointResult, ejected: u32, total: u32) -> ::core::option::Option<u64> = "outlier.record-result";
        );
    };
}
