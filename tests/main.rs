//! Portcullis's integration tests, in one binary (as wasmtime's `tests/all`) so that the
//! support code and the gateway library link once: the real `portcullis` binary on
//! configs the tests write, real upstreams and clients on loopback. One module per area.

mod support;

mod authorization;
mod builtins;
mod composition;
mod config_fuzz;
mod config_validation;
mod conformance;
mod data_path;
mod deploy;
mod edge;
mod external;
mod gateway_api;
mod grpc;
mod hardening;
mod istio_samples;
mod jwt;
mod layers;
mod observability;
mod plugins;
mod rate_limit;
mod reload;
mod resilience;
mod routing;
mod streams;
mod tls;
