//! The built-in policy components, embedded at build time (see `build.rs`), and their
//! replacement by files on disk.

use std::path::{Path, PathBuf};

/// A built-in component: its name (the phase it serves) and embedded bytes.
pub struct Builtin {
    /// Its name; `--policy-dir` overrides it with `<name>.wasm`.
    pub name: &'static str,
    bytes: &'static [u8],
}

macro_rules! builtin {
    ($name:literal, $file:literal) => {
        Builtin {
            name: $name,
            bytes: include_bytes!(concat!(env!("PORTCULLIS_PLUGINS_DIR"), "/", $file)),
        }
    };
}

/// Route matching.
pub const ROUTE_MATCH: Builtin = builtin!("route-match", "portcullis_route_match.wasm");
/// Weighted destinations.
pub const DESTINATION: Builtin = builtin!("destination", "portcullis_destination.wasm");
/// Load balancing.
pub const ENDPOINT: Builtin = builtin!("endpoint", "portcullis_endpoint.wasm");
/// Fault injection.
pub const FAULT: Builtin = builtin!("fault", "portcullis_fault.wasm");
/// Retry decisions.
pub const RETRY: Builtin = builtin!("retry", "portcullis_retry.wasm");
/// Circuit breaking.
pub const BREAKER: Builtin = builtin!("breaker", "portcullis_breaker.wasm");
/// Outlier detection.
pub const OUTLIER: Builtin = builtin!("outlier", "portcullis_outlier.wasm");

/// Istio's AuthorizationPolicy, as a filter (not a phase: it is attached to the Gateways
/// that policies apply to).
pub const AUTHORIZATION: Builtin = builtin!("authorization", "portcullis_authorization.wasm");

/// Local rate limiting, as a filter a WasmPlugin runs (`url: builtin:rate-limit`).
pub const RATE_LIMIT: Builtin = builtin!("rate-limit", "portcullis_rate_limit.wasm");

/// Istio's RequestAuthentication (JWT verification), as a filter run before routing on
/// the Gateways that policies apply to.
pub const JWT: Builtin = builtin!("jwt", "portcullis_jwt.wasm");

/// The built-in filter `name`.
pub fn named(name: &str) -> Option<&'static Builtin> {
    [&AUTHORIZATION, &RATE_LIMIT, &JWT]
        .into_iter()
        .find(|b| b.name == name)
}

/// Every built-in policy phase.
pub const ALL: [&Builtin; 7] = [
    &ROUTE_MATCH,
    &DESTINATION,
    &ENDPOINT,
    &FAULT,
    &RETRY,
    &BREAKER,
    &OUTLIER,
];

impl Builtin {
    /// The embedded component.
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// The file in `dir` that replaces the built-in when it exists.
    pub fn override_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.wasm", self.name))
    }

    /// The component's bytes: its override in `dir` when that file exists, else the
    /// embedded build. Returns where they came from.
    pub fn load(&self, dir: Option<&Path>) -> std::io::Result<(Vec<u8>, String)> {
        if let Some(file) = dir.map(|d| self.override_in(d)).filter(|f| f.exists()) {
            return Ok((std::fs::read(&file)?, file.display().to_string()));
        }
        Ok((self.bytes.to_vec(), format!("builtin:{}", self.name)))
    }
}
