//! `auth.htpasswd`: HTTP Basic credentials checked against an htpasswd file of bcrypt entries.
//!
//! The file is re-checked with one `stat` at most every [`RECHECK`] (the check is a good part
//! of a cached request's cost) and re-read when its identity, size or modification time
//! changes, so an edit applies within a second. bcrypt is deliberately slow, so a successful check is cached in
//! memory for a bounded time, keyed by user name and an HMAC-SHA256 of the presented password
//! under a random per-process key (the cache never holds a password or anything that can be
//! checked offline without the key). The cache is dropped whenever the file changes. Unknown
//! users still cost a full bcrypt comparison, against a dummy hash at the cost the file uses,
//! and cached digests are compared in constant time. Async callers run bcrypt on the blocking
//! pool, at most a few at a time, so a flood of wrong passwords cannot take every thread. A missing or unreadable file at start-up is
//! an error; if it disappears later every request is refused until it is back.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::htpasswd::{DEFAULT_COST, Htpasswd, Scheme, hash_password, scheme};

/// How long the file is trusted unchanged before the next `stat`.
pub const RECHECK: Duration = Duration::from_secs(1);
/// How long a successful verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// The most users remembered at once.
pub const CACHE_MAX_ENTRIES: usize = 1024;

/// Errors opening the htpasswd file.
#[derive(Debug, Error)]
pub enum Error {
    /// The file cannot be read (missing, permissions, ...).
    #[error("auth.htpasswd.path {}", path.display())]
    Unreadable {
        /// The htpasswd file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no bcrypt entries, so nobody could log in.
    #[error(
        "auth.htpasswd.path {}: no bcrypt entries; add one with `regkit htpasswd` or `htpasswd -B`",
        path.display()
    )]
    NoUsers {
        /// The htpasswd file.
        path: PathBuf,
    },
}

/// Why a request was not authenticated. The handler answers 401 with [`HtpasswdAuth::challenge`]
/// in every case; the variants only exist for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// The header is not `Basic` with base64 of `user:password`.
    Malformed,
    /// Unknown user or wrong password.
    BadCredentials,
    /// The htpasswd file cannot be read right now.
    FileUnavailable,
}

/// An htpasswd-backed authenticator, shared by all requests.
#[derive(Debug)]
pub struct HtpasswdAuth {
    realm: String,
    challenge: HeaderValue,
    path: PathBuf,
    hmac_key: [u8; 32],
    ttl: Duration,
    /// [`RECHECK`], or zero in tests that change the file and check at once.
    recheck: Duration,
    state: Mutex<State>,
    bcrypt_slots: tokio::sync::Semaphore,
    /// bcrypt comparisons that ran to the end (see [`HtpasswdAuth::bcrypt_comparisons`]).
    comparisons: AtomicU64,
}

#[derive(Debug)]
struct State {
    stamp: Option<Stamp>,
    /// When `stamp` was last compared with the file.
    checked: Instant,
    file: Option<Arc<Loaded>>,
    cache: HashMap<String, CacheEntry>,
}

/// One version of the file, with the hash unknown users are compared against.
#[derive(Debug)]
struct Loaded {
    file: Htpasswd,
    /// A bcrypt hash of a random password at the cost the file's entries use, so that an
    /// unknown user costs as much time as a known one (a fixed cost would tell them apart).
    dummy: String,
}

impl Loaded {
    fn new(text: &str) -> Self {
        let file = Htpasswd::parse(text);
        let cost = file.entries().find_map(|(_, h)| bcrypt_cost(h)).unwrap_or(DEFAULT_COST);
        let pw: [u8; 16] = rand::random();
        let dummy = hash_password(&hex::encode(pw), cost).unwrap_or_default();
        Loaded { file, dummy }
    }

    /// Whether `password` is `user`'s, and whether a full bcrypt comparison ran (false only
    /// when a hash is malformed, which bcrypt rejects before doing any work).
    fn verify(&self, user: &str, password: &str) -> (bool, bool) {
        match self.file.hash_of(user) {
            Some(hash) if scheme(hash) == Scheme::Bcrypt => match bcrypt::verify(password, hash) {
                Ok(ok) => (ok, true),
                Err(_) => (false, false),
            },
            _ => (false, bcrypt::verify(password, &self.dummy).is_ok()),
        }
    }
}

/// The cost of a `$2y$NN$...` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    if scheme(hash) != Scheme::Bcrypt {
        return None;
    }
    hash.get(4..6)?.parse().ok().filter(|c| (4..=31).contains(c))
}

#[derive(Debug)]
struct CacheEntry {
    digest: [u8; 32],
    expires: Instant,
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

impl HtpasswdAuth {
    /// Opens `path` for `realm`. The file must exist, be readable and hold a bcrypt entry.
    pub fn open(realm: &str, path: &Path) -> Result<Self, Error> {
        Self::with_ttl(realm, path, CACHE_TTL)
    }

    /// Like [`HtpasswdAuth::open`] with a chosen cache lifetime (zero disables the cache).
    pub fn with_ttl(realm: &str, path: &Path, ttl: Duration) -> Result<Self, Error> {
        let unreadable = |source| Error::Unreadable { path: path.to_path_buf(), source };
        let st = stamp(path).map_err(unreadable)?;
        let text = std::fs::read_to_string(path).map_err(unreadable)?;
        let loaded = Loaded::new(&text);
        if loaded.file.entries().all(|(_, h)| scheme(h) != Scheme::Bcrypt) {
            return Err(Error::NoUsers { path: path.to_path_buf() });
        }
        let quoted = realm.replace(['"', '\\'], "");
        // Invariant: the realm was checked for control characters by the config layer, and
        // quotes are removed above; a value that still fails falls back to a fixed realm.
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{quoted}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"regkit\""));
        Ok(HtpasswdAuth {
            realm: realm.to_string(),
            challenge,
            path: path.to_path_buf(),
            hmac_key: rand::random(),
            ttl,
            recheck: RECHECK,
            bcrypt_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            state: Mutex::new(State {
                stamp: Some(st),
                checked: Instant::now(),
                file: Some(Arc::new(loaded)),
                cache: HashMap::new(),
            }),
            comparisons: AtomicU64::new(0),
        })
    }

    /// The realm named in the challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The htpasswd file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of the `WWW-Authenticate` header of a 401: `Basic realm="<realm>"`.
    pub fn challenge(&self) -> HeaderValue {
        self.challenge.clone()
    }

    /// Checks the request's `Authorization: Basic` header; returns the user name. May run a
    /// bcrypt comparison (tens of milliseconds): async callers should use
    /// [`HtpasswdAuth::check_async`].
    pub fn check(&self, headers: &HeaderMap) -> Result<String, Denied> {
        let (user, password) = basic_credentials(headers)?;
        if self.verify(&user, &password)? { Ok(user) } else { Err(Denied::BadCredentials) }
    }

    /// [`HtpasswdAuth::check`] with the bcrypt work moved off the async worker threads.
    pub async fn check_async(self: &Arc<Self>, headers: &HeaderMap) -> Result<String, Denied> {
        let (user, password) = basic_credentials(headers)?;
        let digest = self.digest(&user, &password);
        let (file, cached) = self.lookup(&user, &digest)?;
        if cached {
            return Ok(user);
        }
        let _slot = self.bcrypt_slots.acquire().await.map_err(|_| Denied::FileUnavailable)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            this.verify_uncached(&file, &user, &password, digest).then_some(user)
        })
        .await
        .ok()
        .flatten()
        .ok_or(Denied::BadCredentials)
    }

    /// Checks one user name and password (cache first, then bcrypt).
    pub fn verify(&self, user: &str, password: &str) -> Result<bool, Denied> {
        let digest = self.digest(user, password);
        let (file, cached) = self.lookup(user, &digest)?;
        if cached {
            return Ok(true);
        }
        Ok(self.verify_uncached(&file, user, password, digest))
    }

    /// How many bcrypt comparisons ran to completion since start (for tests and
    /// diagnostics): one per uncached check, for unknown users too.
    pub fn bcrypt_comparisons(&self) -> u64 {
        self.comparisons.load(Ordering::Relaxed)
    }

    /// Number of users currently cached (for tests and diagnostics).
    pub fn cached_users(&self) -> usize {
        self.lock().cache.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent (every update
        // is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file as it is now, and whether `user` with this password digest is in the cache.
    /// The common case (file checked recently, user cached) takes the lock once.
    fn lookup(&self, user: &str, digest: &[u8; 32]) -> Result<(Arc<Loaded>, bool), Denied> {
        {
            let st = self.lock();
            if st.checked.elapsed() < self.recheck {
                let file = st.file.clone().ok_or(Denied::FileUnavailable)?;
                let cached = st.cache.get(user).is_some_and(|e| {
                    e.expires > Instant::now() && bool::from(e.digest.ct_eq(digest))
                });
                return Ok((file, cached));
            }
        }
        let file = self.current_file()?;
        let st = self.lock();
        let cached = st.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &file))
            && st
                .cache
                .get(user)
                .is_some_and(|e| e.expires > Instant::now() && bool::from(e.digest.ct_eq(digest)));
        Ok((file, cached))
    }

    /// The file as it is now: re-read when its stamp changed, dropping the cache. The
    /// re-read (and the new dummy hash) happen outside the lock.
    fn current_file(&self) -> Result<Arc<Loaded>, Denied> {
        let now = stamp(&self.path).ok();
        {
            let mut st = self.lock();
            if now.is_some() && now == st.stamp {
                st.checked = Instant::now();
                return st.file.clone().ok_or(Denied::FileUnavailable);
            }
        }
        let loaded = std::fs::read_to_string(&self.path).map(|text| Arc::new(Loaded::new(&text)));
        let mut st = self.lock();
        st.cache.clear();
        st.stamp = now;
        st.checked = Instant::now();
        match loaded {
            Ok(loaded) => {
                tracing::info!(path = %self.path.display(), "htpasswd file changed, reloaded");
                st.file = Some(loaded.clone());
                Ok(loaded)
            }
            Err(e) => {
                if st.file.take().is_some() {
                    tracing::error!(
                        path = %self.path.display(),
                        "cannot read the htpasswd file, refusing every login until it is back: {e}"
                    );
                }
                Err(Denied::FileUnavailable)
            }
        }
    }

    fn verify_uncached(
        &self,
        file: &Arc<Loaded>,
        user: &str,
        password: &str,
        digest: [u8; 32],
    ) -> bool {
        let (ok, compared) = file.verify(user, password);
        if compared {
            self.comparisons.fetch_add(1, Ordering::Relaxed);
        }
        if ok && !self.ttl.is_zero() {
            let mut st = self.lock();
            // Only remember the result if the file did not change during the comparison.
            if st.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, file)) {
                let now = Instant::now();
                if st.cache.len() >= CACHE_MAX_ENTRIES && !st.cache.contains_key(user) {
                    st.cache.retain(|_, e| e.expires > now);
                    if st.cache.len() >= CACHE_MAX_ENTRIES {
                        let oldest =
                            st.cache.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            st.cache.remove(&k);
                        }
                    }
                }
                st.cache.insert(user.to_string(), CacheEntry { digest, expires: now + self.ttl });
            }
        }
        ok
    }

    /// HMAC-SHA256(key, user ":" password): the cache key material.
    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut msg = Vec::with_capacity(user.len() + password.len() + 1);
        msg.extend_from_slice(user.as_bytes());
        msg.push(b':');
        msg.extend_from_slice(password.as_bytes());
        hmac_sha256(&self.hmac_key, &msg)
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256, whose block size is 64 bytes. Written out here because
/// it is ten lines and the `hmac` crate is not otherwise needed.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Extracts `(user, password)` from `Authorization: Basic ...`.
pub fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), Denied> {
    let value = headers.get(header::AUTHORIZATION).ok_or(Denied::Missing)?;
    let value = value.to_str().map_err(|_| Denied::Malformed)?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or(Denied::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Denied::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| Denied::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| Denied::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(Denied::Malformed)?;
    if user.is_empty() {
        return Err(Denied::Malformed);
    }
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {enc}")).unwrap());
        h
    }

    fn write_users(path: &Path, users: &[(&str, &str)]) {
        let mut f = Htpasswd::default();
        for (u, p) in users {
            f.set(u, crate::htpasswd::hash_password(p, 4).unwrap()).unwrap();
        }
        crate::files::write_atomic(path, f.render().as_bytes(), crate::files::MODE_PRIVATE)
            .unwrap();
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block is hashed first.
        let mac =
            hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn checks_credentials_and_caches_only_successes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("alice", "wonderland"), ("bob", "builder")]);
        let auth = HtpasswdAuth::open("Test", &path).unwrap();
        assert_eq!(auth.challenge(), "Basic realm=\"Test\"");
        // Unknown users are compared against a hash of the file's own cost (4 here).
        assert!(auth.lock().file.as_ref().unwrap().dummy.starts_with("$2y$04$"));
        assert_eq!(bcrypt_cost("$2b$12$abcdefghijklmnopqrstuv"), Some(12));
        assert_eq!(bcrypt_cost("$apr1$x$y"), None);
        assert_eq!(auth.check(&HeaderMap::new()), Err(Denied::Missing));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(auth.check(&bearer), Err(Denied::Malformed));
        assert_eq!(auth.check(&basic("alice", "nope")), Err(Denied::BadCredentials));
        assert_eq!(auth.check(&basic("mallory", "wonderland")), Err(Denied::BadCredentials));
        assert_eq!(auth.cached_users(), 0);
        assert_eq!(auth.check(&basic("alice", "wonderland")), Ok("alice".into()));
        assert_eq!(auth.cached_users(), 1);
        // A cached user with a wrong password is still refused.
        assert_eq!(auth.check(&basic("alice", "wonderlan")), Err(Denied::BadCredentials));
        assert_eq!(auth.check(&basic("alice", "wonderland")), Ok("alice".into()));
    }

    #[test]
    fn unknown_users_cost_a_full_bcrypt_comparison() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("alice", "wonderland")]);
        let auth = HtpasswdAuth::open("Test", &path).unwrap();
        let count = || auth.bcrypt_comparisons();
        assert_eq!(count(), 0);
        // An unknown user is compared against the dummy hash, to the end.
        assert_eq!(auth.check(&basic("mallory", "wonderland")), Err(Denied::BadCredentials));
        assert_eq!(count(), 1);
        assert_eq!(auth.check(&basic("mallory", "other")), Err(Denied::BadCredentials));
        assert_eq!(count(), 2);
        // A known user with a wrong password costs the same, every time.
        assert_eq!(auth.check(&basic("alice", "nope")), Err(Denied::BadCredentials));
        assert_eq!(count(), 3);
        // The right password costs one comparison, then is answered from the cache.
        assert_eq!(auth.check(&basic("alice", "wonderland")), Ok("alice".into()));
        assert_eq!(auth.check(&basic("alice", "wonderland")), Ok("alice".into()));
        assert_eq!(count(), 4);
        // Requests refused before any password is looked at cost nothing.
        assert_eq!(auth.check(&HeaderMap::new()), Err(Denied::Missing));
        assert_eq!(count(), 4);
        // The async path (the server's) counts the same way.
        let auth = Arc::new(auth);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let denied = rt.block_on(auth.check_async(&basic("nobody", "x")));
        assert_eq!(denied, Err(Denied::BadCredentials));
        assert_eq!(auth.bcrypt_comparisons(), 5);
    }

    #[test]
    fn file_change_drops_the_cache_and_applies_new_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("alice", "old")]);
        let mut auth = HtpasswdAuth::open("Test", &path).unwrap();
        auth.recheck = Duration::ZERO;
        assert_eq!(auth.verify("alice", "old"), Ok(true));
        assert_eq!(auth.cached_users(), 1);
        write_users(&path, &[("alice", "new")]);
        // The old password was cached, but the file changed: the cache must not answer.
        assert_eq!(auth.verify("alice", "old"), Ok(false));
        assert_eq!(auth.cached_users(), 0);
        assert_eq!(auth.verify("alice", "new"), Ok(true));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(auth.verify("alice", "new"), Err(Denied::FileUnavailable));
        write_users(&path, &[("alice", "new")]);
        assert_eq!(auth.verify("alice", "new"), Ok(true));
    }

    #[test]
    fn a_change_applies_at_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("alice", "old")]);
        let mut auth = HtpasswdAuth::open("Test", &path).unwrap();
        auth.recheck = Duration::from_millis(300);
        assert_eq!(auth.verify("alice", "old"), Ok(true));
        write_users(&path, &[("alice", "new")]);
        // Within the recheck interval the file is not looked at: the cached success stands.
        assert_eq!(auth.verify("alice", "old"), Ok(true));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(auth.verify("alice", "old"), Ok(false));
        assert_eq!(auth.verify("alice", "new"), Ok(true));
    }

    #[test]
    fn cache_entries_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("alice", "pw")]);
        let auth = HtpasswdAuth::with_ttl("Test", &path, Duration::from_millis(50)).unwrap();
        assert_eq!(auth.verify("alice", "pw"), Ok(true));
        let digest = auth.digest("alice", "pw");
        assert!(auth.lookup("alice", &digest).unwrap().1);
        std::thread::sleep(Duration::from_millis(80));
        assert!(!auth.lookup("alice", &digest).unwrap().1);
        assert_ne!(auth.digest("alice", "pw"), auth.digest("alice", "pW"));
    }

    #[test]
    fn missing_or_empty_file_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let err = HtpasswdAuth::open("T", &dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("auth.htpasswd.path"), "{err}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nobody\n").unwrap();
        assert!(matches!(HtpasswdAuth::open("T", &empty), Err(Error::NoUsers { .. })));
    }
}
