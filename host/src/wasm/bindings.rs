//! The one place the host generates bindings from `wit/`: the shared imports, and one
//! world per policy kind reusing them. The generated items carry the WIT's own docs
//! where it has them; the rest are documented in `wit/`.
#![allow(missing_docs)]

mod imports {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "imports",
        imports: {
            "portcullis:policy/host.counter-add": trappable,
        },
    });
}

pub use imports::Imports;
pub use imports::portcullis::policy::{host, request};

/// The `matcher` world: route selection.
pub mod matcher {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "matcher",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `weighter` world: weighted destination selection.
pub mod weighter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "weighter",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `balancer` world: endpoint selection.
pub mod balancer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "balancer",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `injector` world: fault injection.
pub mod injector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "injector",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `retrier` world: retry decisions.
pub mod retrier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "retrier",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `limiter` world: circuit breaking.
pub mod limiter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "limiter",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `detector` world: outlier detection.
pub mod detector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "detector",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}

/// The `plugin` world: custom plugins declared by WasmPlugin resources.
pub mod plugin {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        exports: { default: async },
        with: {
            "portcullis:policy/request": super::request,
            "portcullis:policy/host": super::host,
        },
    });
}
