//! Retry decisions (Istio's `HTTPRetry`): the `retry-policy` world, exporting
//! `portcullis:policy/retry`.
//!
//! The host asks only after a failed attempt that could be retried, and enforces the
//! route's timeout, the per-try timeout and the cluster's `maxRetries` itself.
//!
//! ```no_run
//! use portcullis_sdk::retry::{self, Decision, Outcome, PluginConfig, Retry, RetryPolicy};
//!
//! /// Never retries.
//! struct Never;
//!
//! impl Retry for Never {
//!     fn configure(_routes: Vec<RetryPolicy>, _config: PluginConfig) -> Result<Self, String> {
//!         Ok(Never)
//!     }
//!     fn should_retry(&mut self, _route: u32, _attempt: u32, _outcome: Outcome) -> Decision {
//!         Decision::Stop
//!     }
//! }
//!
//! retry::export!(Never);
//! ```

/// The wit-bindgen bindings of the world.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "retry-policy",
        with: {
            "portcullis:policy/types@0.2.0": crate::types,
            "portcullis:policy/request@0.2.0": crate::request,
            "portcullis:policy/host@0.2.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "portcullis_sdk::retry::bindings",
    });
}

pub use crate::PluginConfig;
pub use crate::types::{Millis, RouteId};
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::retry::Guest;
pub use bindings::exports::portcullis::policy::retry::{
    Decision, Outcome, ResponseStatus, RetryPolicy,
};

/// A retry policy.
pub trait Retry: Sized + 'static {
    /// Builds the policy from every route's retry settings (indexed by [`RouteId`]) and the
    /// WasmPlugin's `pluginConfig`. An error rejects the configuration.
    fn configure(routes: Vec<RetryPolicy>, config: PluginConfig) -> Result<Self, String>;

    /// Whether to try `route` again after attempt number `attempt` (1 for the first) ended
    /// with `outcome`, and after how long.
    fn should_retry(&mut self, route: RouteId, attempt: u32, outcome: Outcome) -> Decision;
}

/// Exports a type implementing [`Retry`] as the component's retry policy:
/// `retry::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_retry as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_retry {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::retry::Guest for Component {
                fn configure(
                    routes: ::std::vec::Vec<$crate::retry::RetryPolicy>,
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::retry::Retry>::configure(
                        routes,
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                fn should_retry(
                    route: u32,
                    attempt: u32,
                    outcome: $crate::retry::Outcome,
                ) -> $crate::retry::Decision {
                    $crate::__private::with(&POLICY, "retry.should-retry", |p| {
                        <$ty as $crate::retry::Retry>::should_retry(p, route, attempt, outcome)
                    })
                }
            }

            $crate::retry::bindings::export_bindings!(Component with_types_in $crate::retry::bindings);
        };
    };
}
