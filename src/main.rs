//! The `artfs` binary: parse flags, run, print the error and its causes.

fn main() -> std::process::ExitCode {
    let cli = artfs::cli::parse();
    let json = cli.json;
    match artfs::cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let kind = artfs::cmd::exit::kind_of(&e);
            // Programs driving the CLI (the Python package, scripts) act on the kind, not the
            // wording: with `--json` or ARTFS_ERROR_FORMAT=json the error is one JSON object.
            if json || std::env::var("ARTFS_ERROR_FORMAT").is_ok_and(|f| f == "json") {
                eprintln!("{}", artfs::cmd::exit::json_error(&e));
            } else {
                // Messages quote registry content (entry names, URIs): no raw control characters.
                eprintln!("error: {}", artfs::terminal::printable(&artfs::cmd::error_report(&e)));
            }
            artfs::cmd::exit::exit_code(kind)
        }
    }
}
