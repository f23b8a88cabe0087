//! The `artfs` binary: parse flags, run, print the error and its causes.

fn main() -> std::process::ExitCode {
    let cli = artfs::cli::parse();
    match artfs::cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Messages quote registry content (entry names, URIs): no raw control characters.
            eprintln!("error: {}", artfs::terminal::printable(&artfs::cmd::error_report(&e)));
            artfs::cmd::exit::kind_of(&e).exit_code()
        }
    }
}
