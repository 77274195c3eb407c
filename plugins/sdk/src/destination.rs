//! Destination selection: which of a route's weighted destinations (Istio's
//! `HTTPRouteDestination`) a request goes to. The `destination-policy` world, exporting
//! `portcullis:policy/destination`.
//!
//! The host asks only for routes with two or more destinations, and only when no filter
//! has already chosen one.
//!
//! ```no_run
//! use portcullis_sdk::destination::{self, Destination, PluginConfig, Route};
//!
//! /// Always the first destination.
//! struct First;
//!
//! impl Destination for First {
//!     fn configure(_routes: Vec<Route>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(First)
//!     }
//!     fn pick_destination(&mut self, _route: u32) -> u32 {
//!         0
//!     }
//! }
//!
//! destination::export!(First);
//! ```

bindings!(
    "destination-policy",
    "portcullis_sdk::destination::bindings"
);

pub use crate::PluginConfig;
pub use crate::types::RouteId;
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::destination::Guest;
pub use bindings::exports::portcullis::policy::destination::{Route, Weighted};

/// A weighted destination picker.
pub trait Destination: Sized + 'static {
    /// Builds the picker from every route's destinations (indexed by [`RouteId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(routes: Vec<Route>, config: PluginConfig) -> Result<Self, String>;

    /// The index of the destination of `route` the request in progress goes to; an index
    /// the route does not have is a failed call.
    fn pick_destination(&mut self, route: RouteId) -> u32;
}

/// Exports a type implementing [`Destination`] as the component's destination policy:
/// `destination::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_destination as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_destination {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, destination, Destination, configure(routes: ::std::vec::Vec<$crate::destination::Route>),
            fn pick_destination(route: u32) -> u32 = "destination.pick-destination";
        );
    };
}
