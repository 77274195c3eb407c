//! Write Portcullis policy components in Rust: the built-in policy kinds and custom
//! filters (declared by a WasmPlugin).
//!
//! Each policy kind is one interface of the `portcullis:policy@0.2.0` WIT package (`wit/`
//! at the root of the repository documents every function and record) and one world
//! named after it with `-policy`. The SDK names each kind once: the cargo feature
//! `retry`, the module `retry`, the trait `retry::Retry` and the macro
//! `retry::export!`; likewise `route-match`, `destination`, `endpoint`, `fault`,
//! `breaker`, `outlier` and `filter`.
//!
//! Enable the kind's feature, implement its trait on your type — `configure` builds it
//! from the Istio settings (one entry per route, virtual host or cluster) and the
//! WasmPlugin's `pluginConfig`; the other methods decide, with `&mut self` — and export
//! it with the kind's macro. The macro keeps the configured value for the instance's
//! life and delegates every call to it. Build with
//! `cargo build --release --target wasm32-wasip2`:
//!
//! ```ignore
//! // Cargo.toml: portcullis-sdk = { path = "…", features = ["retry"] }
//! use portcullis_sdk::PluginConfig;
//! use portcullis_sdk::retry::{self, Decision, Outcome, Retry, RetryPolicy};
//!
//! #[derive(serde::Deserialize, Default)]
//! struct Settings {
//!     backoff_ms: u64,
//! }
//!
//! struct RetryOnce {
//!     settings: Settings,
//! }
//!
//! impl Retry for RetryOnce {
//!     fn configure(_routes: Vec<RetryPolicy>, config: PluginConfig) -> Result<Self, String> {
//!         Ok(Self { settings: config.parse()? })
//!     }
//!
//!     fn should_retry(&mut self, _route: u32, attempt: u32, _outcome: Outcome) -> Decision {
//!         if attempt == 1 {
//!             Decision::RetryAfter(self.settings.backoff_ms)
//!         } else {
//!             Decision::Stop
//!         }
//!     }
//! }
//!
//! retry::export!(RetryOnce);
//! ```
//!
//! Every kind can read the request in progress ([`request`]) and use the host's services
//! ([`host`]: log lines, random numbers, counters shared by all instances, endpoint
//! addresses). An instance serves one call at a time and is reused across requests, so
//! `&mut self` may keep state between calls; instances may be replaced at any time and
//! several serve at once, so state they must share belongs in host counters.

#![warn(missing_docs)]

#[allow(missing_docs)]
mod imports {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
    });
}

pub use imports::portcullis::policy::{host, request, types};

/// The wit-bindgen bindings of `$world`, as a public `bindings` module whose export
/// macro (`export_bindings!`) the kind's `export!` calls.
macro_rules! bindings {
    ($world:tt, $module:tt) => {
        /// The wit-bindgen bindings of the world.
        #[doc(hidden)]
        #[allow(missing_docs)]
        pub mod bindings {
            wit_bindgen::generate!({
                path: "../../wit",
                world: $world,
                with: {
                    "portcullis:policy/types@0.2.0": crate::types,
                    "portcullis:policy/request@0.2.0": crate::request,
                    "portcullis:policy/host@0.2.0": crate::host,
                },
                pub_export_macro: true,
                export_macro_name: "export_bindings",
                default_bindings_module: $module,
            });
        }
    };
}

#[cfg(feature = "breaker")]
pub mod breaker;
#[cfg(feature = "destination")]
pub mod destination;
#[cfg(feature = "endpoint")]
pub mod endpoint;
#[cfg(feature = "fault")]
pub mod fault;
#[cfg(feature = "filter")]
pub mod filter;
#[cfg(feature = "outlier")]
pub mod outlier;
#[cfg(feature = "retry")]
pub mod retry;
#[cfg(feature = "route-match")]
pub mod route_match;

/// The WasmPlugin's `pluginConfig`, as the JSON text the host passed to `configure`.
///
/// A built-in gets none; a WasmPlugin without `pluginConfig` gets `null`. Both read as
/// "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginConfig(Option<String>);

impl PluginConfig {
    /// Wraps what `configure` received.
    pub fn new(json: Option<String>) -> Self {
        Self(json)
    }

    /// The JSON text as the host passed it (none for a built-in).
    pub fn raw(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether there is a configuration: neither none nor `null`.
    pub fn is_set(&self) -> bool {
        self.0.as_deref().is_some_and(|json| json.trim() != "null")
    }

    /// Deserializes the configuration; none or `null` gives `T::default()`. The error is
    /// serde's message.
    pub fn parse<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, String> {
        match self.0.as_deref() {
            None => Ok(T::default()),
            Some(json) => serde_json::from_str::<Option<T>>(json)
                .map(Option::unwrap_or_default)
                .map_err(|e| e.to_string()),
        }
    }

    /// Deserializes a configuration the component cannot do without: none or `null` is
    /// the error `pluginConfig is required`; otherwise as [`PluginConfig::parse`].
    pub fn parse_required<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let json = self.0.as_deref().unwrap_or("null");
        match serde_json::from_str::<Option<T>>(json) {
            Ok(Some(config)) => Ok(config),
            Ok(None) => Err("pluginConfig is required".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A small, fast generator for sampling (weights, percentages, jitter), seeded by the host.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (use [`Rng::from_host`] once the host is reachable).
    pub const fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A generator seeded from [`host::random`].
    pub fn from_host() -> Self {
        Self(host::random() | 1)
    }

    /// The next number (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `percent / 100`.
    pub fn percent(&mut self, percent: f64) -> bool {
        percent > 0.0 && self.next_f64() * 100.0 < percent
    }
}

/// What every kind's `export!` expands to: a thread-local slot for the policy that
/// `configure` builds (with the table `$table`, if the kind has one, and the plugin's
/// configuration), and the kind's `Guest` implementation, each method delegating to the
/// policy (`$wit` names the call in the trap of one made before `configure`).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy {
    (
        $ty:ty, $kind:ident, $trait:ident, configure($($table:ident: $table_ty:ty)?),
        $(fn $method:ident($($arg:ident: $arg_ty:ty),*) -> $ret:ty = $wit:literal;)*
    ) => {
        const _: () = {
            ::std::thread_local! {
                static POLICY: $crate::__private::Slot<$ty> =
                    const { $crate::__private::RefCell::new(::core::option::Option::None) };
            }

            struct Component;

            impl $crate::$kind::Guest for Component {
                fn configure(
                    $($table: $table_ty,)?
                    plugin_config: ::core::option::Option<::std::string::String>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let policy = <$ty as $crate::$kind::$trait>::configure(
                        $($table,)?
                        $crate::PluginConfig::new(plugin_config),
                    )?;
                    $crate::__private::install(&POLICY, policy);
                    ::core::result::Result::Ok(())
                }

                $(
                    fn $method($($arg: $arg_ty),*) -> $ret {
                        $crate::__private::with(&POLICY, $wit, |p| {
                            <$ty as $crate::$kind::$trait>::$method(p, $($arg),*)
                        })
                    }
                )*
            }

            $crate::$kind::bindings::export_bindings!(Component with_types_in $crate::$kind::bindings);
        };
    };
}

/// What the kinds' `export!` macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::cell::RefCell;
    use std::thread::LocalKey;

    /// Where an instance keeps its configured policy.
    pub type Slot<T> = RefCell<Option<T>>;

    /// Keeps the policy `configure` built.
    pub fn install<T: 'static>(slot: &'static LocalKey<Slot<T>>, policy: T) {
        slot.with(|s| *s.borrow_mut() = Some(policy));
    }

    /// Runs `call` on the configured policy; traps if `configure` has not succeeded.
    pub fn with<T: 'static, R>(
        slot: &'static LocalKey<Slot<T>>,
        function: &str,
        call: impl FnOnce(&mut T) -> R,
    ) -> R {
        slot.with(|s| match s.borrow_mut().as_mut() {
            Some(policy) => call(policy),
            None => panic!("portcullis-sdk: `{function}` was called before `configure` succeeded"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PluginConfig;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    struct Settings {
        n: u32,
    }

    fn config(json: Option<&str>) -> PluginConfig {
        PluginConfig::new(json.map(String::from))
    }

    #[test]
    fn none_and_null_parse_as_the_default() {
        for json in [None, Some("null"), Some(" null\n")] {
            assert_eq!(config(json).parse::<Settings>(), Ok(Settings::default()));
            assert!(!config(json).is_set());
            assert_eq!(
                config(json).parse_required::<Settings>(),
                Err("pluginConfig is required".into())
            );
        }
    }

    #[test]
    fn a_value_parses_and_an_error_is_serdes_message() {
        let set = config(Some(r#"{"n": 3}"#));
        assert!(set.is_set());
        assert_eq!(set.raw(), Some(r#"{"n": 3}"#));
        assert_eq!(set.parse::<Settings>(), Ok(Settings { n: 3 }));
        assert_eq!(set.parse_required::<Settings>(), Ok(Settings { n: 3 }));
        let bad = config(Some(r#"{"n": -1}"#))
            .parse::<Settings>()
            .unwrap_err();
        assert!(bad.starts_with("invalid value: integer `-1`"), "{bad}");
    }
}
