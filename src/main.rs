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
        // A reader that closed the pipe (`hearken score … | head -1`) has all it wanted.
        Err(error)
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hearken: {error:#}");
            ExitCode::FAILURE
        }
    }
}
