//! The WebAssembly side of the host: bindings, engine, instance pools and the policies.

pub mod bindings;
pub mod buckets;
pub mod builtin;
pub mod counters;
pub mod endpoints;
pub mod engine;
pub mod error;
mod host_impl;
pub mod kinds;
mod legacy;
pub mod limits;
pub mod log_budget;
pub mod outbound;
pub mod plugin_output;
pub mod plugins;
pub mod policies;
pub mod pool;
pub mod quarantine;
pub mod request_view;
pub mod state;
pub mod stats;

pub use engine::WasmEngine;
pub use error::PolicyError;
pub use limits::Limits;
pub use request_view::RequestView;
