//! The `hearken` binary: parses the command line and hands over to `hearken::cli`.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than glibc's malloc: the server allocates and frees many small, short-lived
/// objects from two threads (docs/performance.md has the profile and the numbers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = hearken::cli::Cli::parse();
    match hearken::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hearken: {error:#}");
            ExitCode::FAILURE
        }
    }
}
