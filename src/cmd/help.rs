//! `artfs completions SHELL` and `artfs man`: shell completions and the manual page, generated
//! from the clap definitions in `cli`, so they never disagree with `--help`.

use std::io::Write as _;

use anyhow::{Context, Result};

pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = crate::cli::command();
    // `generate` panics when its writer fails (`artfs completions bash | head`): it writes to
    // memory, and the one write that can fail is ours.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "artfs", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script).and_then(|()| out.flush()).context("cannot write the completion script")
}

pub(super) fn man() -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(crate::cli::command())
        .render(&mut out)
        .context("cannot write the manual page")?;
    out.flush().context("cannot write the manual page")
}
