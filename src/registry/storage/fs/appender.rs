//! Appending a request body to an upload's data file, the hot path of every push.
//!
//! The append task copies each received frame into a block-aligned buffer and drops it at
//! once, so hyper reuses its read buffer instead of allocating new ones while frames wait.
//! A full buffer goes to a blocking thread, which feeds it to the running SHA-256 and
//! writes it with `O_DIRECT` (the data is not copied a second time into the page cache and
//! written back later), while the append task fills the other buffer: decryption and
//! hashing run on two cores. A small body gets one buffer just large enough for it. The
//! unaligned tail of a request goes through an ordinary descriptor. Filesystems without
//! `O_DIRECT` (tmpfs, some FUSE mounts) get ordinary writes throughout.
//!
//! An upload holds two buffers however large it is. Large ones (2 MiB) come from one budget
//! for the whole process, enough for two uploads; the others get 256 KiB buffers. Fewer,
//! larger writes are cheaper (each is a request to the disk, and on a virtual machine a
//! notification to the host), and memory stays bounded however many pushes run at once.
//! The large buffers of a finished request are kept for the next one (a chunked push sends
//! a request per chunk) and handed back to the kernel once no upload has used them for
//! [`SPARES_LINGER`], so an idle server holds none.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use super::ALIGN;
use super::blobs::Hashing;
use crate::registry::storage::{ByteStream, Error, Result};

/// Bytes of large buffers all uploads may hold together.
const BUDGET: usize = 8 * 1024 * 1024;
/// A buffer (and `O_DIRECT` write) within the budget, and one beyond it.
const LARGE_BUFFER: usize = 2 * 1024 * 1024;
const SMALL_BUFFER: usize = 256 * 1024;

/// Large buffers kept for the next request: one upload's pair. Mapping a fresh pair for
/// each 16 MiB PATCH (and faulting in and zeroing its pages) cost a chunked push here
/// about 0.1 server CPU-s per GiB, a tenth of the whole.
const SPARES: usize = 2;
/// How long spare buffers outlive the last upload that used them.
const SPARES_LINGER: Duration = Duration::from_secs(2);

/// The spare large buffers of the process, and the task that trims them.
static SPARE: Mutex<Spares> = Mutex::new(Spares::new(SPARES));
static TRIMMER: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// Large buffers no block holds, up to `max`.
struct Spares {
    max: usize,
    free: Vec<Vec<u8>>,
    /// Whether a buffer was taken or given back since the last trim.
    used: bool,
}

impl Spares {
    const fn new(max: usize) -> Self {
        Spares { max, free: Vec::new(), used: false }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        self.used = true;
        self.free.pop()
    }

    /// Keeps `mem` unless `max` are kept already; false when it was dropped.
    fn give(&mut self, mem: Vec<u8>) -> bool {
        self.used = true;
        if self.free.len() >= self.max {
            return false;
        }
        self.free.push(mem);
        true
    }

    /// Drops every buffer when none was used since the last call; true when none is left.
    fn trim(&mut self) -> bool {
        if !std::mem::take(&mut self.used) {
            self.free.clear();
        }
        self.free.is_empty()
    }
}

/// The process's spare buffers.
fn spares() -> std::sync::MutexGuard<'static, Spares> {
    SPARE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a large buffer for the next request, and makes sure a task will trim it. Outside
/// a runtime (nothing could trim it) the buffer is dropped.
fn keep_spare(mem: Vec<u8>) {
    keep_in(&SPARE, &TRIMMER, SPARES_LINGER, mem);
}

/// [`keep_spare`] with the pool, trimmer and linger given (tests use their own).
fn keep_in(
    pool: &'static Mutex<Spares>,
    trimmer: &'static Mutex<Option<JoinHandle<()>>>,
    linger: Duration,
    mem: Vec<u8>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let lock = || pool.lock().unwrap_or_else(|p| p.into_inner());
    if !lock().give(mem) {
        return;
    }
    let mut trimmer = trimmer.lock().unwrap_or_else(|p| p.into_inner());
    // A trimmer ends when nothing is left, or with its runtime (tests start many).
    if trimmer.as_ref().is_none_or(JoinHandle::is_finished) {
        *trimmer = Some(runtime.spawn(async move {
            loop {
                tokio::time::sleep(linger).await;
                if lock().trim() {
                    break;
                }
            }
        }));
    }
}

/// Bytes of [`BUDGET`] taken by live blocks.
static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// `LARGE_BUFFER` bytes of [`BUDGET`], given back when dropped.
struct Reservation;

impl Reservation {
    /// A large buffer's share of the budget, or nothing when it is spent.
    fn large() -> Option<Reservation> {
        RESERVED
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + LARGE_BUFFER <= BUDGET).then_some(held + LARGE_BUFFER)
            })
            .ok()
            .map(|_| Reservation)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        RESERVED.fetch_sub(LARGE_BUFFER, Ordering::AcqRel);
    }
}

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
    let opened =
        tokio::task::spawn_blocking(move || Writer::open(&path, size, sha, len, allow_direct));
    let (writer, mut block) = joined(opened, data).await?;
    // The writer thread holds `writer` and the block it writes, which comes back as the
    // spare; meanwhile `block` is being filled.
    let mut stage = Stage::Idle(writer, None);
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
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            rest = block.fill(rest);
            if block.is_full() {
                let (mut w, spare) = stage.idle(data).await?;
                // What is still to come decides how large the next block needs to be.
                let left = len.map(|l| l - got + rest.len() as u64);
                let next = spare.unwrap_or_else(|| Block::new(left)).after(&block);
                let full = std::mem::replace(&mut block, next);
                stage = Stage::Busy(tokio::task::spawn_blocking(move || {
                    w.write_full(&full)?;
                    Ok((w, full))
                }));
            }
        }
    };
    // Always wait for the writer, so nothing is still writing when the caller rolls back.
    let writer = stage.idle(data).await;
    received?;
    if let Some(expected) = len.filter(|&e| got != e) {
        return Err(Error::SizeMismatch { expected, got });
    }
    let (w, _) = writer?;
    let done = tokio::task::spawn_blocking(move || w.finish(&block));
    let (sha, size) = joined(done, data).await?;
    Ok(Hashing { sha, size })
}

/// The writer and its spare block, or the write in flight that will give them back.
enum Stage {
    Idle(Writer, Option<Block>),
    Busy(JoinHandle<io::Result<(Writer, Block)>>),
}

impl Stage {
    /// Waits for the write in flight, if any.
    async fn idle(self, data: &Path) -> Result<(Writer, Option<Block>)> {
        match self {
            Stage::Idle(w, spare) => Ok((w, spare)),
            Stage::Busy(write) => joined(write, data).await.map(|(w, b)| (w, Some(b))),
        }
    }
}

async fn joined<T>(handle: JoinHandle<io::Result<T>>, data: &Path) -> Result<T> {
    let io = |source| Error::Io { action: "cannot write", path: data.to_path_buf(), source };
    match handle.await {
        Ok(r) => r.map_err(io),
        Err(e) => Err(io(io::Error::other(e))),
    }
}

/// `capacity` bytes of the file, from offset `base` (a multiple of `ALIGN`), in an aligned
/// region; `filled` of them hold data, of which the first `hashed` are already in the hash.
struct Block {
    mem: Vec<u8>,
    start: usize,
    capacity: usize,
    base: u64,
    filled: usize,
    hashed: usize,
    _budget: Option<Reservation>,
}

impl Block {
    /// A block for `need` bytes (unknown: any number): just large enough for a small body,
    /// large when the budget allows, else small.
    fn new(need: Option<u64>) -> Block {
        let (capacity, budget) = match need {
            Some(n) if n <= SMALL_BUFFER as u64 => {
                ((n as usize).next_multiple_of(ALIGN).max(ALIGN), None)
            }
            _ => match Reservation::large() {
                Some(r) => (LARGE_BUFFER, Some(r)),
                None => (SMALL_BUFFER, None),
            },
        };
        // A spare's old contents are never read: a block exposes only what it was filled with.
        let spare = if capacity == LARGE_BUFFER { spares().take() } else { None };
        let mem = spare.unwrap_or_else(|| vec![0u8; capacity + ALIGN]);
        let start = mem.as_ptr().align_offset(ALIGN);
        Block { mem, start, capacity, base: 0, filled: 0, hashed: 0, _budget: budget }
    }

    /// This (emptied) block, placed right after `full`.
    fn after(mut self, full: &Block) -> Block {
        self.base = full.base + full.capacity as u64;
        self.filled = 0;
        self.hashed = 0;
        self
    }

    fn region(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.filled]
    }

    fn is_full(&self) -> bool {
        self.filled == self.capacity
    }

    /// Copies as much of `bytes` as fits and returns the rest.
    fn fill<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let n = bytes.len().min(self.capacity - self.filled);
        let at = self.start + self.filled;
        self.mem[at..at + n].copy_from_slice(&bytes[..n]);
        self.filled += n;
        &bytes[n..]
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.capacity == LARGE_BUFFER {
            keep_spare(std::mem::take(&mut self.mem));
        }
    }
}

/// The blocking half: the data file and the running hash.
struct Writer {
    path: PathBuf,
    /// Ordinary descriptor: reads the tail back, writes unaligned tails.
    file: File,
    /// `O_DIRECT` descriptor, when the filesystem supports it.
    direct: Option<File>,
    sha: Sha256,
}

impl Writer {
    /// Opens the file, which holds `size` bytes, and returns the first block to fill,
    /// holding the file's partial last block so that appends rewrite whole blocks.
    fn open(
        path: &Path,
        size: u64,
        sha: Sha256,
        len: Option<u64>,
        allow_direct: bool,
    ) -> io::Result<(Writer, Block)> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let direct = allow_direct
            .then(|| {
                std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path)
            })
            .and_then(io::Result::ok);
        let tail = (size % ALIGN as u64) as usize;
        let mut block = Block::new(len.map(|l| l + tail as u64));
        block.base = size - tail as u64;
        if tail > 0 {
            let at = block.start;
            file.read_exact_at(&mut block.mem[at..at + tail], block.base)?;
        }
        (block.filled, block.hashed) = (tail, tail);
        Ok((Writer { path: path.to_path_buf(), file, direct, sha }, block))
    }

    /// Hashes and writes a full block.
    fn write_full(&mut self, block: &Block) -> io::Result<()> {
        self.sha.update(&block.region()[block.hashed..]);
        self.write_aligned(block.region(), block.base)
    }

    /// Hashes and writes the last, partly filled block; returns the hash and the file's new
    /// size.
    fn finish(mut self, block: &Block) -> io::Result<(Sha256, u64)> {
        let data = block.region();
        self.sha.update(&data[block.hashed..]);
        let aligned = data.len() - data.len() % ALIGN;
        if aligned > 0 {
            self.write_aligned(&data[..aligned], block.base)?;
        }
        if aligned < data.len() {
            self.file.write_all_at(&data[aligned..], block.base + aligned as u64)?;
        }
        Ok((self.sha, block.base + data.len() as u64))
    }

    /// Writes `data` (a multiple of `ALIGN` bytes, from an aligned address) at `offset`.
    fn write_aligned(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        if let Some(direct) = &self.direct {
            match direct.write_all_at(data, offset) {
                Ok(()) => return Ok(()),
                // The filesystem wants another alignment: plain writes from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(
                        path = %self.path.display(),
                        "O_DIRECT refused, writing through the page cache"
                    );
                    self.direct = None;
                }
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(data, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;

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
            vec![LARGE_BUFFER - 3, 7, 70_000],
            vec![SMALL_BUFFER / 2, SMALL_BUFFER / 2, SMALL_BUFFER + 1, 13],
            vec![4096 * 3],
            vec![LARGE_BUFFER * 2 + 5],
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

    /// Where the filesystem takes aligned `O_DIRECT` writes, the writer uses them and keeps
    /// using them (no silent fall-back).
    #[test]
    fn direct_writes_are_used_where_the_filesystem_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"").unwrap();
        let block = Block::new(None);
        let probe = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&data)
            .and_then(|f| f.write_all_at(&block.mem[block.start..block.start + ALIGN], 0));
        std::fs::write(&data, b"").unwrap();
        let (mut w, mut first) = Writer::open(&data, 0, Sha256::new(), None, true).unwrap();
        let bytes = pattern(first.capacity + 10, 3);
        assert_eq!(first.fill(&bytes).len(), 10);
        w.write_full(&first).unwrap();
        if probe.is_ok() {
            assert!(w.direct.is_some(), "O_DIRECT works here but the writer did not use it");
        }
        assert_eq!(
            std::fs::read(&data).unwrap(),
            pattern(first.capacity + 10, 3)[..first.capacity]
        );
    }

    #[tokio::test]
    async fn appends_are_exact_through_the_page_cache() {
        appends_are_exact(false).await;
    }

    #[test]
    fn large_buffers_come_from_a_bounded_budget() {
        // Other tests may hold blocks meanwhile: count on what this test takes alone.
        let blocks: Vec<Block> =
            (0..2 * BUDGET / LARGE_BUFFER + 3).map(|_| Block::new(None)).collect();
        let large = blocks.iter().filter(|b| b.capacity == LARGE_BUFFER).count();
        assert!(large <= BUDGET / LARGE_BUFFER, "{large} large blocks");
        assert!(
            blocks.iter().all(|b| b.capacity % ALIGN == 0 && b.start + b.capacity <= b.mem.len())
        );
        assert!(blocks.iter().any(|b| b.capacity == SMALL_BUFFER));
        drop(blocks);
        assert!(RESERVED.load(Ordering::Acquire) <= BUDGET);
        // A small body takes a small block and nothing from the budget.
        let small = Block::new(Some(1000));
        assert_eq!((small.capacity, small._budget.is_some()), (ALIGN, false));
        assert_eq!(Block::new(Some(SMALL_BUFFER as u64 + 1)).capacity % ALIGN, 0);
    }

    #[test]
    fn spare_buffers_are_reused_up_to_a_bound_and_trimmed_once_unused() {
        let mut spares = Spares::new(2);
        assert!(spares.take().is_none());
        assert!(spares.give(vec![1u8; 64]));
        assert!(spares.give(vec![2u8; 64]));
        assert!(!spares.give(vec![3u8; 64]), "kept more than the bound");
        assert!(!spares.trim(), "trimmed although used since the last trim");
        assert_eq!(spares.free.len(), 2);
        let again = spares.take().unwrap();
        assert!(!spares.trim(), "trimmed right after a take");
        assert!(spares.give(again));
        assert!(!spares.trim());
        assert!(spares.trim(), "kept although unused between two trims");
        assert!(spares.free.is_empty());
        assert!(spares.give(vec![4u8; 64]));
        assert_eq!(spares.take().unwrap()[0], 4);
    }

    /// A kept buffer is handed back to the kernel once unused for the linger, by a task
    /// that then ends; outside a runtime nothing is kept.
    #[tokio::test]
    async fn spare_buffers_are_dropped_after_the_linger() {
        static POOL: Mutex<Spares> = Mutex::new(Spares::new(2));
        static TRIM: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
        let linger = Duration::from_millis(20);
        keep_in(&POOL, &TRIM, linger, vec![0u8; 64]);
        keep_in(&POOL, &TRIM, linger, vec![0u8; 64]);
        assert_eq!(POOL.lock().unwrap().free.len(), 2);
        let task = TRIM.lock().unwrap().take().expect("no trimmer was started");
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        assert!(POOL.lock().unwrap().free.is_empty(), "the trimmer ended but kept buffers");
        std::thread::spawn(move || keep_in(&POOL, &TRIM, linger, vec![0u8; 64])).join().unwrap();
        assert!(POOL.lock().unwrap().free.is_empty(), "kept a buffer outside a runtime");
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
