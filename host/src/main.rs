//! The `portcullis` command: see `portcullis --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the proxy allocates and frees small buffers on every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    portcullis::cli::Cli::parse().run()
}
