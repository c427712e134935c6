//! The `hearken` binary: parses the command line and hands over to `hearken::cli`.

use std::process::ExitCode;

use clap::Parser as _;

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
