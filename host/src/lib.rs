//! Portcullis: an edge gateway whose traffic policies are WebAssembly components.

pub mod cli;
pub mod config;
pub mod tls;
