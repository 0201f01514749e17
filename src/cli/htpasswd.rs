//! `regkit htpasswd`: arguments and glue over [`crate::htpasswd`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Status, output, password};
use crate::htpasswd::{self, Htpasswd, Scheme};

/// htpasswd subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a user, or change the password of an existing one (creates FILE when missing).
    #[command(
        after_help = "The entry is bcrypt in the $2y$ form of Apache's `htpasswd -B`. Other \
lines and their order are kept; the file is replaced atomically. A new file gets mode 0640; an \
existing one keeps its mode, narrowed to 0640 if it was wider.

Examples:
  regkit htpasswd add auth/htpasswd alice                 # prompts twice
  printf '%s\\n' \"$PW\" | regkit htpasswd add auth/htpasswd ci --password-stdin
  regkit htpasswd add auth/htpasswd bob --cost 12 --password-stdin < pw.txt"
    )]
    Add {
        /// The htpasswd file.
        file: PathBuf,
        /// The user name (no ':', no control characters).
        user: String,
        /// How the password is given.
        #[command(flatten)]
        password: PasswordArgs,
        /// bcrypt cost (work factor), 4 to 31; each step doubles the time per login.
        #[arg(long, default_value_t = htpasswd::DEFAULT_COST,
              value_parser = clap::value_parser!(u32).range(4..=31))]
        cost: u32,
        /// Accept an empty password.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Remove a user (all of its entries).
    #[command(after_help = "Example:\n  regkit htpasswd delete auth/htpasswd alice")]
    Delete {
        /// The htpasswd file (must exist).
        file: PathBuf,
        /// The user to remove.
        user: String,
    },
    /// Check a password: exit 0 when it matches, 1 when it does not.
    #[command(after_help = "Examples:\n  regkit htpasswd verify auth/htpasswd alice\n  \
printf '%s\\n' \"$PW\" | regkit htpasswd verify auth/htpasswd alice --password-stdin")]
    Verify {
        /// The htpasswd file (must exist).
        file: PathBuf,
        /// The user to check.
        user: String,
        /// How the password is given.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List the users, marking entries the registry ignores (not bcrypt).
    #[command(after_help = "Examples:\n  regkit htpasswd list auth/htpasswd\n  \
regkit htpasswd list auth/htpasswd --json | jq -r '.users[].user'")]
    List {
        /// The htpasswd file (must exist).
        file: PathBuf,
        /// Print JSON: {"file", "users": [{"user", "bcrypt", "cost"}]}.
        #[arg(long)]
        json: bool,
    },
}

/// How the password is given; with neither flag, regkit prompts on the terminal.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// The password itself. Lands in shell history and the process list: prefer
    /// --password-stdin or the prompt.
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
}

impl PasswordArgs {
    fn source(&self) -> password::Source<'_> {
        password::Source::from_flags(self.password_stdin, self.password.as_deref())
    }
}

/// Runs an `htpasswd` subcommand.
pub fn run(cmd: Command) -> anyhow::Result<Status> {
    match cmd {
        Command::Add { file, user, password, cost, allow_empty } => {
            add(&file, &user, &password, cost, allow_empty)
        }
        Command::Delete { file, user } => delete(&file, &user),
        Command::Verify { file, user, password } => verify(&file, &user, &password),
        Command::List { file, json } => list(&file, json),
    }
}

fn add(
    file: &Path,
    user: &str,
    pw: &PasswordArgs,
    cost: u32,
    allow_empty: bool,
) -> anyhow::Result<Status> {
    let pending = htpasswd::PendingAdd::prepare(file, user, cost)?;
    let secret = password::read(pw.source(), &format!("password for {user}"), true)?;
    let added = pending.finish(&secret, allow_empty)?;
    for w in added.warnings() {
        output::warn(&w);
    }
    output::note(&added.summary());
    Ok(Status::Ok)
}

fn delete(file: &Path, user: &str) -> anyhow::Result<Status> {
    htpasswd::validate_user(user)?;
    let mut entries = load_existing(file)?;
    if !entries.remove(user) {
        output::note(&format!(
            "{user} is not in {} (already deleted?); nothing changed",
            file.display()
        ));
        return Ok(Status::Ok);
    }
    let saved = entries.save(file)?;
    if let Some(old) = saved.narrowed_from {
        output::warn(&format!(
            "{} had mode {old:04o}; it is now {:04o}",
            file.display(),
            saved.mode
        ));
    }
    output::note(&format!("deleted {user} from {}", file.display()));
    Ok(Status::Ok)
}

fn verify(file: &Path, user: &str, pw: &PasswordArgs) -> anyhow::Result<Status> {
    htpasswd::validate_user(user)?;
    let entries = load_existing(file)?;
    let secret = password::read(pw.source(), &format!("password for {user}"), false)?;
    if entries.verify(user, &secret) {
        output::note(&format!("the password of {user} matches"));
        return Ok(Status::Ok);
    }
    match entries.hash_of(user) {
        None => output::error(&format!("{user} is not in {}", file.display())),
        Some(h) if htpasswd::scheme(h) == Scheme::Other => output::error(&format!(
            "the entry of {user} is not bcrypt, so the registry ignores it; replace it with \
             `regkit htpasswd add {} {user}`",
            file.display()
        )),
        Some(_) => output::error(&format!("the password of {user} does not match")),
    }
    Ok(Status::Problems)
}

fn list(file: &Path, json: bool) -> anyhow::Result<Status> {
    let entries = load_existing(file)?;
    if json {
        let users: Vec<_> = entries
            .entries()
            .map(|(user, hash)| {
                serde_json::json!({
                    "user": user,
                    "bcrypt": htpasswd::scheme(hash) == Scheme::Bcrypt,
                    "cost": htpasswd::cost_of(hash),
                })
            })
            .collect();
        let doc = serde_json::json!({ "file": file.display().to_string(), "users": users });
        println!("{}", serde_json::to_string_pretty(&doc).context("cannot render JSON")?);
    } else {
        for (user, hash) in entries.entries() {
            match htpasswd::cost_of(hash) {
                Some(cost) => println!("{user}\tbcrypt cost {cost}"),
                None => println!("{user}\tnot bcrypt (ignored by the registry)"),
            }
        }
    }
    warn_non_bcrypt(file, &entries);
    Ok(Status::Ok)
}

fn load_existing(file: &Path) -> anyhow::Result<Htpasswd> {
    if !file.exists() {
        anyhow::bail!(
            "{} does not exist (create it with `regkit htpasswd add {} USER`)",
            file.display(),
            file.display()
        );
    }
    Ok(Htpasswd::load(file)?)
}

fn warn_non_bcrypt(file: &Path, entries: &Htpasswd) {
    if let Some(w) = htpasswd::non_bcrypt_warning(file, &entries.non_bcrypt_users()) {
        output::warn(&w);
    }
}
