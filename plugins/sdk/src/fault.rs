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

bindings!("fault-policy", "portcullis_sdk::fault::bindings");

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
        $crate::__export_policy!(
            $ty, fault, Fault, configure(routes: ::std::vec::Vec<::core::option::Option<$crate::fault::RouteFault>>),
            fn inject(route: u32) -> $crate::fault::Injection = "fault.inject";
        );
    };
}
