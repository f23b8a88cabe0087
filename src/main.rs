//! The `artfs` binary: parse flags, run, print the error chain.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = artfs::cli::Cli::parse();
    match artfs::cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Messages quote registry content (entry names, URIs): no raw control characters.
            eprintln!("error: {}", artfs::terminal::printable(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
