//! Parsed names for everything a client puts in a registry path: repository names, tags,
//! references, digests and upload ids. Each type can only be built by its parser, which
//! enforces the OCI distribution-spec grammar, so no raw client string ever reaches a
//! filesystem path (no `..`, no upper case, no empty or over-long components).

use std::fmt;

use sha2::Digest as _;

/// Longest repository name accepted (distribution's limit; the spec says clients may cap
/// the registry host plus name at 255 characters).
pub const MAX_NAME_LEN: usize = 255;

/// Why a name, tag, digest or upload id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The repository name breaks the spec grammar.
    #[error("invalid repository name {0:?}: {1}")]
    Name(String, &'static str),
    /// The tag breaks the spec grammar.
    #[error("invalid tag {0:?}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    Tag(String),
    /// The digest is malformed or uses an unsupported algorithm.
    #[error("invalid digest {0:?}: {1}")]
    Digest(String, &'static str),
    /// The upload id is not one this registry issued.
    #[error("invalid upload id {0:?}")]
    Upload(String),
}

/// A repository name: `/`-separated components, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// Parses a repository name against the spec grammar and length limit.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = |why| Err(NameError::Name(s.to_string(), why));
        if s.is_empty() {
            return bad("empty");
        }
        if s.len() > MAX_NAME_LEN {
            return bad("longer than 255 characters");
        }
        for component in s.split('/') {
            if !valid_component(component) {
                return bad("each /-separated part must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*");
            }
        }
        Ok(RepoName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components (all valid, none `.` or `..`).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or any run of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+", always followed by an alphanumeric
        // (the last byte is alphanumeric, so the run cannot end the component).
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Parses a tag against the spec grammar.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let first = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
        let rest = |x: u8| first(x) || x == b'.' || x == b'-';
        if b.is_empty() || b.len() > 128 || !first(b[0]) || !b[1..].iter().all(|&x| rest(x)) {
            return Err(NameError::Tag(s.to_string()));
        }
        Ok(Tag(s.to_string()))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest algorithm this registry can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// SHA-256 (required by the spec; the default everywhere).
    Sha256,
    /// SHA-512 (accepted when a client asks for it).
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in digests and on-disk paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The digest of `data` with this algorithm.
    pub fn digest_of(self, data: &[u8]) -> Digest {
        let hex = match self {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(data)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(data)),
        };
        Digest { algorithm: self, hex }
    }
}

/// A content digest `algorithm:hex` with lower-case hex of the algorithm's exact length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = |why| Err(NameError::Digest(s.to_string(), why));
        let Some((alg, hex)) = s.split_once(':') else {
            return bad("expected algorithm:hex");
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return bad("only sha256 and sha512 are supported"),
        };
        if hex.len() != algorithm.hex_len() {
            return bad("wrong length for the algorithm");
        }
        if !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            return bad("the encoded part must be lower-case hex");
        }
        Ok(Digest { algorithm, hex: hex.to_string() })
    }

    /// Builds a SHA-256 digest from a finished hash.
    pub fn sha256_from_bytes(bytes: &[u8]) -> Self {
        Digest { algorithm: Algorithm::Sha256, hex: hex::encode(bytes) }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag name.
    Tag(Tag),
    /// A content digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a digest when the text contains `:`, a tag otherwise (tags cannot hold `:`).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: a version-4 style UUID in lower-case hex, as distribution issues.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        UploadId(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
    }

    /// Parses an id of the form `8-4-4-4-12` lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups.iter().zip(lens).all(|(g, n)| {
                g.len() == n && g.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            });
        if ok { Ok(UploadId(s.to_string())) } else { Err(NameError::Upload(s.to_string())) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_the_spec_grammar() {
        for ok in ["a", "library/alpine", "a.b_c__d---e/f0", "x/y/z", "0"] {
            RepoName::parse(ok).unwrap();
        }
        let long = "a".repeat(256);
        for bad in
            ["", "A", "../x", "a/../b", "a//b", "a/", "-a", "a-", "a___b", "a..b", "a_.b", &long]
        {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RepoName::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn tags_digests_and_ids() {
        Tag::parse("v1.0_rc-1").unwrap();
        Tag::parse("_x").unwrap();
        assert!(Tag::parse(".x").is_err() && Tag::parse("a/b").is_err());
        assert!(Tag::parse(&"a".repeat(129)).is_err());
        let d = Algorithm::Sha256.digest_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:E3B0").is_err());
        assert!(Digest::parse("md5:00").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        Digest::parse(&Algorithm::Sha512.digest_of(b"x").to_string()).unwrap();
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(id.as_str()).unwrap(), id);
        assert!(UploadId::parse("../../etc").is_err());
        assert!(matches!(Reference::parse("latest").unwrap(), Reference::Tag(_)));
        assert!(Reference::parse("sha256:abc").is_err());
    }
}
