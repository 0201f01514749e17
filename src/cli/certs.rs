//! `regkit certs`: arguments and glue over [`crate::pki`].

use clap::Subcommand;

use super::Status;

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs a `certs` subcommand.
pub fn run(cmd: Command) -> anyhow::Result<Status> {
    match cmd {}
}
