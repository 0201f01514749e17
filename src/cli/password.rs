//! Where a password comes from on the command line: a no-echo prompt on the terminal (with
//! confirmation for new passwords), the first line of standard input with
//! `--password-stdin`, or, only when asked for explicitly, an argument (with a warning).
//! Shared by `regkit htpasswd`, `regkit k8s secret docker-registry` and the `--p12` export of
//! `regkit certs`.

use std::io::BufRead;

use anyhow::{Context, bail};

use super::output;

/// The ways a password may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// Read the first line of standard input.
    Stdin,
    /// Given as an argument (lands in shell history and the process list).
    Argument(&'a str),
    /// Ask on the terminal; fails when standard input is not one.
    Prompt,
}

impl<'a> Source<'a> {
    /// Picks the source from the two flags every password-taking command has.
    pub fn from_flags(stdin: bool, argument: Option<&'a str>) -> Self {
        match (stdin, argument) {
            (true, _) => Source::Stdin,
            (false, Some(p)) => Source::Argument(p),
            (false, None) => Source::Prompt,
        }
    }
}

/// Reads a password from `source`. `what` names it in the prompt ("password for alice");
/// `confirm` asks twice on a prompt and fails when the two differ.
pub fn read(source: Source<'_>, what: &str, confirm: bool) -> anyhow::Result<String> {
    read_with(source, what, confirm, "--password-stdin")
}

/// [`read`] for a command whose stdin flag has another name (`--p12-password-stdin`), which
/// the error without a terminal names.
pub fn read_with(
    source: Source<'_>,
    what: &str,
    confirm: bool,
    stdin_flag: &str,
) -> anyhow::Result<String> {
    match source {
        Source::Stdin => first_line_of_stdin(),
        Source::Argument(p) => {
            output::warn(
                "a password given with --password lands in your shell history and is visible \
                 to other users in the process list; prefer --password-stdin or the prompt",
            );
            Ok(p.to_string())
        }
        Source::Prompt => {
            if !super::stdin_is_terminal() {
                bail!(
                    "standard input is not a terminal, so regkit cannot prompt for the {what}: \
                     pipe it in with {stdin_flag}"
                );
            }
            let first = rpassword::prompt_password(format!("Enter {what}: "))
                .context("cannot read the password from the terminal")?;
            if confirm {
                let second = rpassword::prompt_password(format!("Confirm {what}: "))
                    .context("cannot read the password from the terminal")?;
                // Both values came from the same person at the same terminal; timing does
                // not leak anything here, but compare in constant time all the same.
                if !bool::from(subtle::ConstantTimeEq::ct_eq(first.as_bytes(), second.as_bytes())) {
                    bail!("the two passwords differ; nothing was changed");
                }
            }
            Ok(first)
        }
    }
}

fn first_line_of_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_string())
}
