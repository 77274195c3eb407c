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

/// The wit-bindgen bindings of the world.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "route-match-policy",
        with: {
            "portcullis:policy/types@0.2.0": crate::types,
            "portcullis:policy/request@0.2.0": crate::request,
            "portcullis:policy/host@0.2.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "portcullis_sdk::route_match::bindings",
    });
}

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
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::route_match::Guest for Component {
                fn configure(
                    virtual_hosts: ::std::vec::Vec<$crate::route_match::VirtualHost>,
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::route_match::RouteMatch>::configure(
                        virtual_hosts,
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                fn select_route(
                    virtual_host: u32,
                ) -> ::core::option::Option<$crate::route_match::Selected> {
                    $crate::__private::with(&POLICY, "route-match.select-route", |p| {
                        <$ty as $crate::route_match::RouteMatch>::select_route(p, virtual_host)
                    })
                }
            }

            $crate::route_match::bindings::export_bindings!(Component with_types_in $crate::route_match::bindings);
        };
    };
}
