//! Write Portcullis policy components in Rust.
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

#[cfg(feature = "route-match")]
pub use route_match::exports::portcullis::policy::route_match::{Guest as RouteMatch, Selected};

#[cfg(feature = "destination")]
pub use destination::exports::portcullis::policy::destination::Guest as Destination;

#[cfg(feature = "endpoint")]
pub use endpoint::exports::portcullis::policy::endpoint::{EndpointState, Guest as Endpoint};
