//! Portcullis: an edge gateway whose traffic policies are WebAssembly components.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod interner;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod wasm;
pub mod wire;
