//! Route selection (Istio's `HTTPMatchRequest`): the `route-match-policy` world,
//! exporting `portcullis:policy/route-match`.
//!
//! The host has already chosen the virtual host and normalized the path; read the
//! request through [`crate::request`].
//!
//! ```no_run
//! use portcullis_sdk::route_match::{self, PluginConfig, RouteMatch, Selected, VirtualHost};
//!
//! /// Always the first route.
//! struct First;
//!
//! impl RouteMatch for First {
//!     fn configure(_virtual_hosts: Vec<VirtualHost>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(First)
//!     }
//!     fn select_route(&mut self, _virtual_host: u32) -> Option<Selected> {
//!         Some(Selected { route: 0, match_block: 0 })
//!     }
//! }
//!
//! route_match::export!(First);
//! ```

bindings!(
    "route-match-policy",
    "portcullis_sdk::route_match::bindings"
);

pub use crate::PluginConfig;
pub use crate::types::{StringMatch, VirtualHostId};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::route_match::Guest;
pub use bindings::exports::portcullis::policy::route_match::{
    HeaderMatch, MatchBlock, QueryMatch, Route, Selected, VirtualHost,
};

/// A route matcher.
pub trait RouteMatch: Sized + 'static {
    /// Builds the matcher from every virtual host's routes (indexed by [`VirtualHostId`])
    /// and the WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(virtual_hosts: Vec<VirtualHost>, config: PluginConfig) -> Result<Self, String>;

    /// The route of `virtual_host` the request in progress takes, and which of its match
    /// blocks matched (0 for a route without blocks); none for no route (404).
    fn select_route(&mut self, virtual_host: VirtualHostId) -> Option<Selected>;
}

/// Exports a type implementing [`RouteMatch`] as the component's route-match policy:
/// `route_match::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_route_match as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_route_match {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, route_match, RouteMatch, configure(virtual_hosts: ::std::vec::Vec<$crate::route_match::VirtualHost>),
            fn select_route(virtual_host: u32) -> ::core::option::Option<$crate::route_match::Selected> = "route-match.select-route";
        );
    };
}
