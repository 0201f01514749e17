//! Appending a request body to an upload's data file, the hot path of every push.
//!
//! The async side only receives frames from the connection and groups them into batches
//! (no copy: a batch is a list of the frames hyper handed over). A blocking thread takes one
//! batch at a time, feeds it to the running SHA-256, copies it into a block-aligned buffer
//! and writes whole blocks with `O_DIRECT`, so the data is not copied a second time into the
//! page cache and written back later; meanwhile the next batch is being received, so
//! decryption and hashing run on two cores. The unaligned tail of a request goes through an
//! ordinary descriptor. Filesystems without `O_DIRECT` (tmpfs, some FUSE mounts) get
//! ordinary writes throughout.
//!
//! At most one batch is in flight and one is being filled, so an upload holds about
//! `BUFFER + 2 * BATCH` bytes however large it is.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use super::blobs::Hashing;
use crate::registry::storage::{ByteStream, Error, Result};

/// Alignment of `O_DIRECT` offsets, lengths and buffers (covers 512-byte and 4 KiB
/// logical blocks).
const ALIGN: usize = 4096;

/// Bytes written per `O_DIRECT` write.
const BUFFER: usize = 512 * 1024;

/// Bytes of received frames handed to the writer thread at once.
const BATCH: usize = 256 * 1024;

/// Appends `body` to the data file at `data`, which holds `state.size` bytes hashed into
/// `state.sha`, and returns the new state. `len`, when given, is the exact body length.
/// On error the file may hold part of the body past `state.size`: the caller truncates.
pub(super) async fn append(
    data: &Path,
    state: &Hashing,
    len: Option<u64>,
    body: ByteStream,
) -> Result<Hashing> {
    append_with(data, state, len, body, true).await
}

/// [`append`], with `O_DIRECT` allowed or not (tests cover both paths).
async fn append_with(
    data: &Path,
    state: &Hashing,
    len: Option<u64>,
    mut body: ByteStream,
    allow_direct: bool,
) -> Result<Hashing> {
    let path = data.to_path_buf();
    let (size, sha) = (state.size, state.sha.clone());
    let mut writer: JoinHandle<io::Result<Writer>> =
        tokio::task::spawn_blocking(move || Writer::open(&path, size, sha, allow_direct));
    let mut batch = Vec::new();
    let mut batch_len = 0usize;
    let mut got = 0u64;
    let received = loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => break Err(Error::Body(e)),
            None => break Ok(()),
        };
        got += chunk.len() as u64;
        if let Some(expected) = len.filter(|&e| got > e) {
            break Err(Error::SizeMismatch { expected, got });
        }
        batch_len += chunk.len();
        batch.push(chunk);
        if batch_len >= BATCH {
            let frames = std::mem::take(&mut batch);
            batch_len = 0;
            let mut w = joined(writer, data).await?;
            writer = tokio::task::spawn_blocking(move || {
                w.push(&frames)?;
                Ok(w)
            });
        }
    };
    // Always wait for the writer, so nothing is still writing when the caller rolls back.
    let w = joined(writer, data).await;
    received?;
    if let Some(expected) = len.filter(|&e| got != e) {
        return Err(Error::SizeMismatch { expected, got });
    }
    let mut w = w?;
    let done = tokio::task::spawn_blocking(move || {
        w.push(&batch)?;
        w.finish()
    });
    let (sha, size) = joined(done, data).await?;
    Ok(Hashing { sha, size })
}

async fn joined<T>(handle: JoinHandle<io::Result<T>>, data: &Path) -> Result<T> {
    let io = |source| Error::Io { action: "cannot write", path: data.to_path_buf(), source };
    match handle.await {
        Ok(r) => r.map_err(io),
        Err(e) => Err(io(io::Error::other(e))),
    }
}

/// The blocking half: the data file, an aligned buffer and the running hash.
struct Writer {
    path: PathBuf,
    /// Ordinary descriptor: reads the tail back, writes unaligned tails.
    file: File,
    /// `O_DIRECT` descriptor, when the filesystem supports it.
    direct: Option<File>,
    /// `BUFFER + ALIGN` bytes; the aligned region starts at `start`.
    mem: Vec<u8>,
    start: usize,
    /// File offset of the region's first byte (a multiple of `ALIGN`).
    base: u64,
    /// Bytes of the region holding data.
    filled: usize,
    sha: Sha256,
}

impl Writer {
    /// Opens the file, which holds `size` bytes, and loads its partial last block into the
    /// buffer so that appends rewrite whole blocks.
    fn open(path: &Path, size: u64, sha: Sha256, allow_direct: bool) -> io::Result<Writer> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let direct = allow_direct
            .then(|| {
                std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path)
            })
            .and_then(io::Result::ok);
        let mem = vec![0u8; BUFFER + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        let tail = (size % ALIGN as u64) as usize;
        let base = size - tail as u64;
        let mut w =
            Writer { path: path.to_path_buf(), file, direct, mem, start, base, filled: tail, sha };
        if tail > 0 {
            let (file, region) = (&w.file, &mut w.mem[start..start + tail]);
            file.read_exact_at(region, base)?;
        }
        Ok(w)
    }

    /// Hashes `frames` and writes every full buffer.
    fn push(&mut self, frames: &[Bytes]) -> io::Result<()> {
        for frame in frames {
            self.sha.update(frame);
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let n = rest.len().min(BUFFER - self.filled);
                let at = self.start + self.filled;
                self.mem[at..at + n].copy_from_slice(&rest[..n]);
                self.filled += n;
                rest = &rest[n..];
                if self.filled == BUFFER {
                    self.write_region(BUFFER)?;
                    self.base += BUFFER as u64;
                    self.filled = 0;
                }
            }
        }
        Ok(())
    }

    /// Writes what the buffer holds and returns the hash and the file's new size.
    fn finish(mut self) -> io::Result<(Sha256, u64)> {
        let aligned = self.filled - self.filled % ALIGN;
        if aligned > 0 {
            self.write_region(aligned)?;
        }
        if aligned < self.filled {
            let at = self.start;
            self.file.write_all_at(
                &self.mem[at + aligned..at + self.filled],
                self.base + aligned as u64,
            )?;
        }
        Ok((self.sha, self.base + self.filled as u64))
    }

    /// Writes the first `n` bytes of the region (a multiple of `ALIGN`) at `base`.
    fn write_region(&mut self, n: usize) -> io::Result<()> {
        let region = &self.mem[self.start..self.start + n];
        if let Some(direct) = &self.direct {
            match direct.write_all_at(region, self.base) {
                Ok(()) => return Ok(()),
                // The filesystem wants another alignment: plain writes from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(path = %self.path.display(), "O_DIRECT refused, writing through the page cache");
                    self.direct = None;
                }
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(region, self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(pieces: Vec<Vec<u8>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(pieces.into_iter().map(|p| Ok(Bytes::from(p)))))
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8).collect()
    }

    /// Requests of awkward sizes (unaligned starts and tails, frames crossing the buffer
    /// and batch boundaries) leave exactly the concatenated bytes and their hash.
    async fn appends_are_exact(allow_direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"").unwrap();
        let requests: Vec<Vec<usize>> = vec![
            vec![1],
            vec![4095, 2],
            vec![BUFFER - 3, 7, 70_000],
            vec![BATCH, BATCH, BATCH + 1, 13],
            vec![4096 * 3],
            vec![BUFFER * 2 + 5],
        ];
        let (mut state, mut all) = (Hashing { sha: Sha256::new(), size: 0 }, Vec::new());
        for (i, sizes) in requests.iter().enumerate() {
            let pieces: Vec<Vec<u8>> =
                sizes.iter().enumerate().map(|(j, &n)| pattern(n, (i * 7 + j) as u8)).collect();
            let len: usize = sizes.iter().sum();
            pieces.iter().for_each(|p| all.extend_from_slice(p));
            state = append_with(&data, &state, Some(len as u64), body(pieces), allow_direct)
                .await
                .unwrap();
            assert_eq!(state.size, all.len() as u64);
            assert_eq!(std::fs::read(&data).unwrap(), all, "after request {i}");
        }
        assert_eq!(state.sha.finalize(), Sha256::digest(&all));
    }

    #[tokio::test]
    async fn appends_are_exact_with_direct_io() {
        appends_are_exact(true).await;
    }

    #[tokio::test]
    async fn appends_are_exact_through_the_page_cache() {
        appends_are_exact(false).await;
    }

    #[tokio::test]
    async fn a_body_longer_than_announced_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"").unwrap();
        let state = Hashing { sha: Sha256::new(), size: 0 };
        let err = append(&data, &state, Some(10), body(vec![vec![1; 6], vec![2; 6]]))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::SizeMismatch { expected: 10, got: 12 }), "{err}");
        let err = append(&data, &state, Some(10), body(vec![vec![1; 6]])).await.err().unwrap();
        assert!(matches!(err, Error::SizeMismatch { expected: 10, got: 6 }), "{err}");
    }
}
