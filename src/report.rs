//! One-line error reports: an error and its causes, `: `-separated, each cause once.
//!
//! Errors here carry their source in their own message (so that `{e}` alone is complete) and
//! also return it from `source()` (so that it can be inspected), while some carry it only as
//! `source()`. Walking the chain therefore prints a cause unless its parent's message already
//! contains it: nothing is repeated (`…: X: X: X`) and nothing is lost.

use std::error::Error;

/// `err` and its causes on one line.
pub fn error_line(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut parent: Option<String> = None;
    let mut next: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parent.as_deref().is_some_and(|p| p.contains(text.as_str())) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        // A skipped cause is inside its parent: its own causes are compared with it next.
        parent = Some(text);
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct InMessage {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the cache")]
    struct OnlySource(#[source] InMessage);

    #[test]
    fn each_cause_once_and_none_lost() {
        let io = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = InMessage { path: "/x", source: io() };
        assert_eq!(error_line(&e), "cannot read /x: No such file or directory (os error 2)");
        let e = OnlySource(InMessage { path: "/x", source: io() });
        assert_eq!(
            error_line(&e),
            "cannot open the cache: cannot read /x: No such file or directory (os error 2)"
        );
    }
}
