//! htpasswd files, as Apache's `htpasswd -B` writes them and the reference registry reads them.
//!
//! A file is kept as its lines: user entries are parsed, every other line (comments, blank
//! lines, malformed lines) is carried through untouched so that editing one user never
//! reorders or drops anything else. Hashes are bcrypt, written in the `$2y$` form; `$2a$`
//! and `$2b$` are read too. Entries in other schemes are kept but reported, because the
//! reference registry ignores them.
//!
//! Saving goes through [`crate::files`] (temp file + rename) with the mode rules of
//! [`mode_for`]; adding a user is one sequence around the password ([`PendingAdd`]); the
//! password prompt and the command line live in `crate::cli::htpasswd`.

mod add;
mod save;

use std::path::Path;

use thiserror::Error;

pub use add::{Added, PendingAdd, non_bcrypt_warning};
pub use save::{MODE_NEW, Saved, mode_for};

/// Cost used when none is given (the same as Apache's `htpasswd -B`).
pub const DEFAULT_COST: u32 = 10;
/// The smallest cost bcrypt accepts.
pub const MIN_COST: u32 = 4;
/// The largest cost bcrypt accepts.
pub const MAX_COST: u32 = 31;
/// bcrypt reads at most this many bytes of a password; longer ones would be cut silently.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// Apache's `htpasswd` refuses longer user names.
pub const MAX_USER_BYTES: usize = 255;

/// Errors from htpasswd handling.
#[derive(Debug, Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::files::Error),
    /// The user name cannot be stored in an htpasswd file.
    #[error("invalid user name {name:?}: {why}")]
    InvalidUser {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        why: &'static str,
    },
    /// bcrypt refused the input.
    #[error("cannot hash the password: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    /// The bcrypt cost is outside 4..=31.
    #[error("invalid bcrypt cost {cost}: it must be between {MIN_COST} and {MAX_COST}")]
    InvalidCost {
        /// The rejected cost.
        cost: u32,
    },
    /// The password is empty and empty passwords were not allowed.
    #[error("the password is empty (pass --allow-empty to store an empty password)")]
    EmptyPassword,
    /// The password is longer than bcrypt can use.
    #[error(
        "the password is {len} bytes long; bcrypt uses only the first {MAX_PASSWORD_BYTES}, \
         so the rest would be ignored silently"
    )]
    PasswordTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// One line of an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `user:hash`.
    Entry { user: String, hash: String },
    /// Anything else, kept verbatim.
    Other(String),
}

/// An htpasswd file in memory, lines in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Htpasswd {
    lines: Vec<Line>,
}

/// Whether a stored hash is one the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$2a$`, `$2b$`, `$2x$` or `$2y$`: bcrypt.
    Bcrypt,
    /// Anything else (MD5 `$apr1$`, SHA `{SHA}`, crypt, plain text): ignored by the registry.
    Other,
}

/// The scheme of a stored hash.
pub fn scheme(hash: &str) -> Scheme {
    let b = hash.as_bytes();
    if b.len() > 4
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
    {
        Scheme::Bcrypt
    } else {
        Scheme::Other
    }
}

/// Checks that `name` can be stored and later matched by the registry: non-empty, at most
/// 255 bytes, no `:`, no control characters, no leading `#` (a comment to the registry's
/// parser) and no leading or trailing white space (the registry trims lines).
pub fn validate_user(name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_USER_BYTES {
        "it is longer than 255 bytes"
    } else if name.contains(':') {
        "it contains ':', the field separator of htpasswd files"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else if name.starts_with('#') {
        "it starts with '#', which marks a comment line"
    } else if name.trim() != name {
        "it starts or ends with white space, which the registry strips"
    } else {
        return Ok(());
    };
    Err(Error::InvalidUser { name: name.to_string(), why })
}

/// Checks a new password: refuses an empty one unless `allow_empty`, and one longer than
/// bcrypt's 72 bytes (it would be truncated without a word).
pub fn check_password(password: &str, allow_empty: bool) -> Result<(), Error> {
    if password.is_empty() && !allow_empty {
        return Err(Error::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::PasswordTooLong { len: password.len() });
    }
    Ok(())
}

/// Checks that `cost` is one bcrypt accepts (4..=31).
pub fn validate_cost(cost: u32) -> Result<(), Error> {
    if (MIN_COST..=MAX_COST).contains(&cost) { Ok(()) } else { Err(Error::InvalidCost { cost }) }
}

/// The cost recorded in a bcrypt hash (`$2y$10$...` gives 10), `None` for other schemes.
pub fn cost_of(hash: &str) -> Option<u32> {
    if scheme(hash) != Scheme::Bcrypt {
        return None;
    }
    let digits = hash.get(4..6)?;
    if hash.as_bytes().get(6) != Some(&b'$') {
        return None;
    }
    digits.parse().ok()
}

/// Hashes `password` with bcrypt at `cost`, in the `$2y$` form of Apache's `htpasswd -B`.
pub fn hash_password(password: &str, cost: u32) -> Result<String, Error> {
    validate_cost(cost)?;
    let parts = bcrypt::hash_with_result(password, cost)?;
    Ok(parts.format_for_version(bcrypt::Version::TwoY))
}

/// A bcrypt hash of a random password, compared against when the user is unknown so that
/// probing for user names costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw: [u8; 16] = rand::random();
        hash_password(&hex::encode(pw), DEFAULT_COST).unwrap_or_default()
    })
}

impl Htpasswd {
    /// Parses file contents. Never fails: lines that are not entries are kept as they are.
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|raw| {
                let trimmed = raw.trim_end_matches('\r');
                match trimmed.split_once(':') {
                    Some((user, hash)) if !user.is_empty() && !trimmed.starts_with('#') => {
                        Line::Entry { user: user.to_string(), hash: hash.to_string() }
                    }
                    _ => Line::Other(raw.to_string()),
                }
            })
            .collect();
        Htpasswd { lines }
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Ok(Self::parse(&crate::files::read_to_string(path)?))
    }

    /// Reads `path`, or starts an empty file when it does not exist.
    pub fn load_or_empty(path: &Path) -> Result<Self, Error> {
        if path.exists() { Self::load(path) } else { Ok(Self::default()) }
    }

    /// User names in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.entries().map(|(u, _)| u)
    }

    /// `(user, hash)` pairs in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry { user, hash } => Some((user.as_str(), hash.as_str())),
            Line::Other(_) => None,
        })
    }

    /// The stored hash of `user` (the first entry when a name repeats, as Apache reads it).
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.entries().find(|(u, _)| *u == user).map(|(_, h)| h)
    }

    /// Users whose entries are not bcrypt and so are ignored by the registry.
    pub fn non_bcrypt_users(&self) -> Vec<&str> {
        self.entries().filter(|(_, h)| scheme(h) == Scheme::Other).map(|(u, _)| u).collect()
    }

    /// Sets `user`'s hash: replaces the existing line in place, or appends a new one.
    /// Returns true when the user already existed.
    pub fn set(&mut self, user: &str, hash: String) -> Result<bool, Error> {
        validate_user(user)?;
        for line in &mut self.lines {
            if let Line::Entry { user: u, hash: h } = line
                && u == user
            {
                *h = hash;
                return Ok(true);
            }
        }
        self.lines.push(Line::Entry { user: user.to_string(), hash });
        Ok(false)
    }

    /// Removes every entry of `user`. Returns true when one was removed.
    pub fn remove(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| !matches!(l, Line::Entry { user: u, .. } if u == user));
        self.lines.len() != before
    }

    /// Checks `password` for `user`. Unknown users and non-bcrypt entries are refused after a
    /// full bcrypt comparison, so the answer takes the same time either way.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.hash_of(user) {
            Some(hash) if scheme(hash) == Scheme::Bcrypt => {
                bcrypt::verify(password, hash).unwrap_or(false)
            }
            _ => {
                let _ = bcrypt::verify(password, dummy_hash());
                false
            }
        }
    }

    /// The file contents: every line in order, each ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Entry { user, hash } => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(hash);
                }
                Line::Other(raw) => out.push_str(raw),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_lines_and_order_and_replaces_in_place() {
        let text = "# registry users\nalice:$2y$05$abc\n\nbob:{SHA}xyz\ncarol:$2b$05$def\n";
        let mut f = Htpasswd::parse(text);
        assert_eq!(f.render(), text);
        assert!(f.set("bob", "$2y$05$new".into()).unwrap());
        assert_eq!(
            f.render(),
            "# registry users\nalice:$2y$05$abc\n\nbob:$2y$05$new\ncarol:$2b$05$def\n"
        );
        assert!(!f.set("dave", "$2y$05$d".into()).unwrap());
        assert!(f.render().ends_with("dave:$2y$05$d\n"));
        assert!(f.remove("alice"));
        assert!(!f.remove("alice"));
        assert_eq!(f.users().collect::<Vec<_>>(), ["bob", "carol", "dave"]);
    }

    #[test]
    fn reports_non_bcrypt_entries() {
        let f = Htpasswd::parse("a:$apr1$x$y\nb:$2y$05$z\nc:plain\n");
        assert_eq!(f.non_bcrypt_users(), ["a", "c"]);
    }

    #[test]
    fn hashes_in_2y_form_and_verifies_all_bcrypt_prefixes() {
        let h = hash_password("s3cret", 4).unwrap();
        assert!(h.starts_with("$2y$04$"), "{h}");
        let mut f = Htpasswd::default();
        f.set("u", h.clone()).unwrap();
        assert!(f.verify("u", "s3cret"));
        assert!(!f.verify("u", "wrong"));
        assert!(!f.verify("nobody", "s3cret"));
        for prefix in ["$2a$", "$2b$"] {
            let mut g = Htpasswd::default();
            g.set("u", h.replacen("$2y$", prefix, 1)).unwrap();
            assert!(g.verify("u", "s3cret"), "{prefix}");
        }
    }

    #[test]
    fn checks_cost_password_and_reads_cost() {
        assert!(matches!(hash_password("x", 3), Err(Error::InvalidCost { cost: 3 })));
        assert!(matches!(hash_password("x", 32), Err(Error::InvalidCost { cost: 32 })));
        assert!(matches!(check_password("", false), Err(Error::EmptyPassword)));
        check_password("", true).unwrap();
        check_password(&"a".repeat(72), false).unwrap();
        assert!(matches!(
            check_password(&"a".repeat(73), false),
            Err(Error::PasswordTooLong { len: 73 })
        ));
        assert_eq!(cost_of(&hash_password("x", 5).unwrap()), Some(5));
        assert_eq!(cost_of("$2b$12$abc"), Some(12));
        assert_eq!(cost_of("$apr1$x$y"), None);
        assert_eq!(cost_of("$2y$1"), None);
    }

    #[test]
    fn rejects_bad_user_names() {
        let long = "u".repeat(256);
        for bad in ["", "a:b", "a\nb", "tab\there", "#x", " x", "x ", long.as_str()] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
        validate_user("ci-bot@example.com").unwrap();
    }
}
