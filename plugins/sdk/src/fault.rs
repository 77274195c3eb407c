//! Fault injection, delays and aborts (Istio's `HTTPFaultInjection`): the `fault-policy`
//! world, exporting `portcullis:policy/fault`.
//!
//! The host holds the request for the delay, then answers with the abort.
//!
//! ```no_run
//! use portcullis_sdk::fault::{self, Fault, Injection, PluginConfig, RouteFault};
//!
//! /// Never injects anything.
//! struct Nothing;
//!
//! impl Fault for Nothing {
//!     fn configure(_routes: Vec<Option<RouteFault>>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(Nothing)
//!     }
//!     fn inject(&mut self, _route: u32) -> Injection {
//!         Injection { delay: None, abort: None }
//!     }
//! }
//!
//! fault::export!(Nothing);
//! ```

/// The wit-bindgen bindings of the world.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fault-policy",
        with: {
            "portcullis:policy/types@0.2.0": crate::types,
            "portcullis:policy/request@0.2.0": crate::request,
            "portcullis:policy/host@0.2.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "portcullis_sdk::fault::bindings",
    });
}

pub use crate::PluginConfig;
pub use crate::types::{Millis, Percent, RouteId};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::fault::Guest;
pub use bindings::exports::portcullis::policy::fault::{
    Abort, AbortStatus, Delay, Injection, RouteFault,
};

/// A fault injector.
pub trait Fault: Sized + 'static {
    /// Builds the injector from every route's fault (none for a route without; indexed by
    /// [`RouteId`]) and the WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(routes: Vec<Option<RouteFault>>, config: PluginConfig) -> Result<Self, String>;

    /// What to inject into the request in progress on `route`.
    fn inject(&mut self, route: RouteId) -> Injection;
}

/// Exports a type implementing [`Fault`] as the component's fault policy:
/// `fault::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_fault as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_fault {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::fault::Guest for Component {
                fn configure(
                    routes: ::std::vec::Vec<::core::option::Option<$crate::fault::RouteFault>>,
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::fault::Fault>::configure(
                        routes,
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                fn inject(
                    route: u32,
                ) -> $crate::fault::Injection {
                    $crate::__private::with(&POLICY, "fault.inject", |p| {
                        <$ty as $crate::fault::Fault>::inject(p, route)
                    })
                }
            }

            $crate::fault::bindings::export_bindings!(Component with_types_in $crate::fault::bindings);
        };
    };
}
