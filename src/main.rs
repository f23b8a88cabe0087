//! The `artfs` binary: parse flags, run, print the error and its causes.

fn main() -> std::process::ExitCode {
    let cli = artfs::cli::parse();
    match artfs::cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let message = artfs::cmd::error_report(&e);
            // Programs driving the CLI (the Python package) act on the kind, not the wording.
            if std::env::var("ARTFS_ERROR_FORMAT").is_ok_and(|f| f == "json") {
                let kind = artfs::kind::ErrorKind::of(e.as_ref());
                let line = serde_json::json!({ "error": message, "kind": kind.name() });
                eprintln!("{line}");
                return std::process::ExitCode::FAILURE;
            }
            // Messages quote registry content (entry names, URIs): no raw control characters.
            eprintln!("error: {}", artfs::terminal::printable(&message));
            std::process::ExitCode::FAILURE
        }
    }
}
