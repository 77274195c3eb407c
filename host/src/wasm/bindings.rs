//! The one place the host generates bindings from `wit/`: the shared imports, one world
//! per policy kind reusing them, and the frozen 0.1.0 `plugin` world that older filters
//! were built for. The generated items carry the WIT's own docs where it has them; the
//! rest are documented in `wit/`.
#![allow(missing_docs)]

mod imports {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "imports",
        imports: {
            "portcullis:policy/host.counter-add": trappable,
            "portcullis:policy/host.take-tokens": trappable,
            "portcullis:policy/host.authenticate": trappable,
            "portcullis:policy/host.check-with-provider": async,
        },
    });
}

pub use imports::Imports;
pub use imports::portcullis::policy::{host, request, types};

/// Bindings of the world `<kind>-policy` of `wit/`, reusing the shared imports.
macro_rules! policy_world {
    ($(#[$doc:meta])* $module:ident, $world:literal) => {
        $(#[$doc])*
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit",
                world: $world,
                exports: { default: async },
                with: {
                    "portcullis:policy/types": super::types,
                    "portcullis:policy/request": super::request,
                    "portcullis:policy/host": super::host,
                },
            });
        }
    };
}

policy_world!(
    /// Route selection.
    route_match, "route-match-policy"
);
policy_world!(
    /// Weighted destination selection.
    destination, "destination-policy"
);
policy_world!(
    /// Endpoint selection.
    endpoint, "endpoint-policy"
);
policy_world!(
    /// Fault injection.
    fault, "fault-policy"
);
policy_world!(
    /// Retry decisions.
    retry, "retry-policy"
);
policy_world!(
    /// Circuit breaking.
    breaker, "breaker-policy"
);
policy_world!(
    /// Outlier detection.
    outlier, "outlier-policy"
);
policy_world!(
    /// Custom filters declared by WasmPlugin resources.
    filter, "filter-policy"
);

/// `portcullis:policy@0.1.0`, frozen: the imports and the `plugin` world of filters built
/// before 0.2.0.
pub mod v0_1 {
    mod imports {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
            world: "imports",
            imports: {
                "portcullis:policy/host.counter-add": trappable,
            },
        });
    }

    pub use imports::Imports;
    pub use imports::portcullis::policy::{host, request};

    /// The 0.1.0 `plugin` world: a custom filter.
    pub mod plugin {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
            world: "plugin",
            exports: { default: async },
            with: {
                "portcullis:policy/request": super::request,
                "portcullis:policy/host": super::host,
            },
        });
    }
}
