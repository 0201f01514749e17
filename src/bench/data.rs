//! The bytes the benchmark pushes: a seeded fast PRNG stream (xoshiro via `SmallRng`) made in
//! 256 KiB blocks while the request body is being sent, so a 1 GiB blob is never held in memory
//! and is never all zeros (which compressing or deduplicating layers could shortcut). The same
//! seed always yields the same stream, whatever the chunk boundaries, so the digest can be
//! computed in a pass before the timed upload.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Size of one generated block and the largest body frame sent.
pub const BLOCK: usize = 256 * 1024;

/// An endless deterministic byte stream for one seed.
pub struct RandomSource {
    rng: SmallRng,
    block: Bytes,
}

impl RandomSource {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        RandomSource { rng: SmallRng::seed_from_u64(seed), block: Bytes::new() }
    }

    /// The next `max` bytes of the stream or fewer (never more than one block, never zero when
    /// `max > 0`). Whole blocks are always generated, so the stream does not depend on how it
    /// is cut.
    pub fn take(&mut self, max: usize) -> Bytes {
        if self.block.is_empty() {
            let mut fresh = BytesMut::zeroed(BLOCK);
            self.rng.fill_bytes(&mut fresh);
            self.block = fresh.freeze();
        }
        let n = max.min(self.block.len());
        self.block.split_to(n)
    }
}

/// The `sha256:<hex>` digest of the first `size` bytes of the stream for `seed`; `progress`
/// advances by the bytes hashed. CPU-bound: call it from a blocking thread.
pub fn digest_of(seed: u64, size: u64, progress: &ProgressBar) -> String {
    let mut source = RandomSource::new(seed);
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let piece = source.take(usize::try_from(left).unwrap_or(BLOCK).min(BLOCK));
        hasher.update(&piece);
        left -= piece.len() as u64;
        progress.inc(piece.len() as u64);
    }
    sha256_text(&hasher.finalize())
}

/// `sha256:<hex>` for a finished SHA-256 output.
pub fn sha256_text(hash: &[u8]) -> String {
    format!("sha256:{}", hex::encode(hash))
}

/// The digest of bytes in memory.
pub fn digest_bytes(bytes: &[u8]) -> String {
    sha256_text(&Sha256::digest(bytes))
}

/// A shared source, so consecutive chunk bodies continue one stream.
pub type SharedSource = Arc<Mutex<RandomSource>>;

/// A request body of exactly `len` bytes drawn from a source while hyper sends it.
pub struct RandomBody {
    source: SharedSource,
    remaining: u64,
    progress: ProgressBar,
}

impl RandomBody {
    /// A body of the next `len` bytes of `source`, counting them on `progress` as they go out.
    pub fn new(source: SharedSource, len: u64, progress: ProgressBar) -> Self {
        RandomBody { source, remaining: len, progress }
    }
}

impl hyper::body::Body for RandomBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.remaining).unwrap_or(BLOCK).min(BLOCK);
        // A poisoned lock only means another body panicked mid-take; the stream state is
        // still a valid PRNG state, so keep going.
        let piece = self.source.lock().unwrap_or_else(|p| p.into_inner()).take(want);
        self.remaining -= piece.len() as u64;
        self.progress.inc(piece.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(seed: u64, cuts: &[usize]) -> Vec<u8> {
        let mut s = RandomSource::new(seed);
        let mut out = Vec::new();
        for &cut in cuts {
            let mut left = cut;
            while left > 0 {
                let piece = s.take(left);
                left -= piece.len();
                out.extend_from_slice(&piece);
            }
        }
        out
    }

    #[test]
    fn stream_is_independent_of_cuts_and_not_constant() {
        let a = collect(7, &[3, 5, BLOCK, 100_000, 1]);
        let b = collect(7, &[a.len()]);
        assert_eq!(a, b);
        assert_ne!(collect(8, &[a.len()]), a);
        let zeros = a.iter().filter(|&&x| x == 0).count();
        assert!(zeros < a.len() / 100, "too many zero bytes: {zeros}");
    }

    #[test]
    fn digest_matches_the_stream() {
        let size = BLOCK as u64 * 2 + 12345;
        let bytes = collect(42, &[size as usize]);
        assert_eq!(digest_of(42, size, &ProgressBar::hidden()), digest_bytes(&bytes));
        assert_eq!(
            digest_bytes(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
