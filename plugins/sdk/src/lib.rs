//! Write Portcullis policy components in Rust: custom plugins (feature `filter`, world
//! `plugin`, declared by a WasmPlugin) and the built-in policy kinds.
//!
//! Each policy kind is a world of the `portcullis:policy` WIT package (`wit/` at the root
//! of the repository documents every function). Enable the kind's cargo feature, implement
//! its trait, export your type with the kind's macro, and build with
//! `cargo build --release --target wasm32-wasip2`:
//!
//! ```ignore
//! // Cargo.toml: portcullis-sdk = { path = "…", features = ["destination"] }
//! use portcullis_sdk::destination::{self, Destination};
//!
//! struct AlwaysFirst;
//!
//! impl Destination for AlwaysFirst {
//!     fn configure(_config: String) -> Result<(), String> {
//!         Ok(())
//!     }
//!     fn pick_destination(_route: u32) -> u32 {
//!         0
//!     }
//! }
//!
//! destination::export!(AlwaysFirst);
//! ```
//!
//! Every kind can read the request in progress ([`request`]) and use the host's services
//! ([`host`]).

mod imports {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
    });
}

pub use imports::portcullis::policy::{host, request};

/// Bindings of the `matcher` world.
#[cfg(feature = "route-match")]
pub mod route_match {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "matcher",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::route_match",
    });
}

/// Bindings of the `weighter` world.
#[cfg(feature = "destination")]
pub mod destination {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weighter",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::destination",
    });
}

/// Bindings of the `balancer` world.
#[cfg(feature = "endpoint")]
pub mod endpoint {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "balancer",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::endpoint",
    });
}

/// Bindings of the `injector` world.
#[cfg(feature = "fault")]
pub mod fault {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "injector",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::fault",
    });
}

/// Bindings of the `retrier` world.
#[cfg(feature = "retry")]
pub mod retry {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "retrier",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::retry",
    });
}

/// Bindings of the `limiter` world.
#[cfg(feature = "breaker")]
pub mod breaker {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "limiter",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::breaker",
    });
}

/// Bindings of the `detector` world.
#[cfg(feature = "outlier")]
pub mod outlier {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "detector",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::outlier",
    });
}

/// Bindings of the `plugin` world: custom plugins.
#[cfg(feature = "filter")]
pub mod plugin {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        with: {
            "portcullis:policy/request@0.1.0": crate::request,
            "portcullis:policy/host@0.1.0": crate::host,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "portcullis_sdk::plugin",
    });
}

#[cfg(feature = "route-match")]
pub use route_match::exports::portcullis::policy::route_match::{Guest as RouteMatch, Selected};

#[cfg(feature = "destination")]
pub use destination::exports::portcullis::policy::destination::Guest as Destination;

#[cfg(feature = "endpoint")]
pub use endpoint::exports::portcullis::policy::endpoint::{EndpointState, Guest as Endpoint};

#[cfg(feature = "fault")]
pub use fault::exports::portcullis::policy::fault::{Guest as Fault, Injection};

#[cfg(feature = "retry")]
pub use retry::exports::portcullis::policy::retry::{
    Decision, Guest as Retry, Outcome, ResponseStatus,
};

#[cfg(feature = "breaker")]
pub use breaker::exports::portcullis::policy::breaker::{Admission, ClusterLoad, Guest as Breaker};

#[cfg(feature = "outlier")]
pub use outlier::exports::portcullis::policy::outlier::{EndpointResult, Guest as Outlier};

#[cfg(feature = "filter")]
pub use plugin::exports::portcullis::policy::filter::{
    Action, Edits, Guest as Plugin, Header, Rejection,
};

/// No edits: `Edits { set_request_headers: …, ..Edits::default() }` names only what changes.
#[cfg(feature = "filter")]
impl Default for Edits {
    fn default() -> Self {
        Self {
            set_request_headers: Vec::new(),
            add_request_headers: Vec::new(),
            remove_request_headers: Vec::new(),
            set_response_headers: Vec::new(),
            add_response_headers: Vec::new(),
            remove_response_headers: Vec::new(),
            destination: None,
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
