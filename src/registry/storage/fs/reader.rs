//! Streaming a blob out, the hot path of every pull.
//!
//! Chunks are read on blocking threads, several at once and ahead of the one being
//! encrypted and sent, so the disk always has work queued and disk and TLS overlap. A chunk
//! the page cache already holds entirely (a blob written by a server that writes through
//! the cache, or read by another program) is copied from there, as `cachestat(2)` tells
//! without touching the cache; anything else is read with `O_DIRECT` straight into the
//! chunk's buffer, which saves filling the page cache and copying out of it, and leaves the
//! cache to smaller, hotter data (measured here: a cold blob read through the cache took
//! twice the server CPU of a direct read). Uploads are written with `O_DIRECT` too (see
//! `appender`), so a large blob never pushes the rest of the system out of memory.
//!
//! A blob pulled a second time is hot (an image rolled out to many nodes pulls each layer
//! once per node): from then on it is read through the page cache, where it stays for as
//! long as the kernel keeps it, so later pulls no longer wait for the disk (measured here
//! over plain HTTP: 1.1-1.4 GB/s for every pull read directly, 4.7-6.0 GB/s at about half
//! the server CPU from the third pull on). The blobs pulled lately are remembered by file
//! identity, the last [`REMEMBERED`] of them.
//!
//! Filesystems without `O_DIRECT` get ordinary reads.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::cachestat::fully_cached;
use crate::registry::storage::ByteStream;

/// Alignment of `O_DIRECT` offsets, lengths and buffers.
const ALIGN: u64 = super::ALIGN as u64;

/// Bytes read per chunk. Each chunk costs a hand-off to a blocking thread and back, and a
/// write of its own through TLS; measured here (TLS, a 1 GiB pull right after its push, four
/// chunks ahead, four rounds each), the server spent 0.52-0.56 CPU-s per GiB with 512 KiB
/// chunks, 0.39-0.50 with 1 MiB and 0.42-0.47 with 2 MiB, at the same speed.
const CHUNK: usize = 1024 * 1024;

/// The blob's two descriptors, and the buffers its chunks are read into.
struct Source {
    file: File,
    direct: Option<File>,
    /// Cleared when the filesystem refuses a direct read (the rest go through the cache).
    direct_works: AtomicBool,
    pool: Arc<Pool>,
}

/// Chunk buffers a stream reuses once the chunk has been sent, so a pull neither allocates
/// nor zeroes memory for every chunk.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

/// Chunks a stream reads at once, ahead of the one being sent. One is not enough for a
/// direct read: a pull then waits for the disk at every other chunk (here, a pull right
/// after its push went at a median 555 MB/s with one 512 KiB chunk ahead and 906 MB/s with
/// eight; four, eight and sixteen measured alike). Beyond the first, a stream reads ahead
/// only within the process-wide [`READ_AHEAD`].
const DEPTH: usize = 4;

/// Chunks read ahead at once by all streams together (32 MiB): many pulls at once each keep
/// one read in flight, and share the rest, so their buffers stay bounded.
const READ_AHEAD: usize = 32;

/// The process-wide count of chunks read and not yet taken by their stream.
static BUDGET: Budget = Budget::new(READ_AHEAD);

/// A count of chunks read ahead, and its limit.
struct Budget {
    taken: AtomicUsize,
    limit: usize,
}

impl Budget {
    const fn new(limit: usize) -> Self {
        Budget { taken: AtomicUsize::new(0), limit }
    }

    /// A share even when the budget is spent: a stream's first read in flight.
    fn take(&'static self) -> Share {
        self.taken.fetch_add(1, Ordering::Relaxed);
        Share(self)
    }

    /// A share if the budget has one left.
    fn try_take(&'static self) -> Option<Share> {
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Share(self))
    }
}

/// One chunk's share of a [`Budget`], given back when dropped.
struct Share(&'static Budget);

impl Drop for Share {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Buffers a pool keeps: the chunks being read, one queued, one being sent.
const POOLED: usize = DEPTH + 2;

/// Bytes of a chunk buffer: a chunk, the lead-in of an unaligned offset rounded to a whole
/// block, and the slack that aligns the region.
const BUFFER: usize = CHUNK + 2 * ALIGN as usize;

impl Pool {
    fn take(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(|| vec![0; BUFFER])
    }
}

/// A chunk read into a pooled buffer; the buffer goes back to the pool when the last
/// `Bytes` of it is dropped.
struct Chunk {
    mem: Vec<u8>,
    range: std::ops::Range<usize>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.mem[self.range.clone()]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let mem = std::mem::take(&mut self.mem);
        let mut pool = self.pool.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOLED {
            pool.push(mem);
        }
    }
}

/// Opens `path` for streaming (blocking): with a direct descriptor too, unless the blob
/// was pulled lately (then it is hot and read through the page cache).
pub(super) fn open(path: &Path) -> io::Result<(File, Option<File>)> {
    let file = File::open(path)?;
    let direct = if pulled_lately(&file) { None } else { open_direct(path) };
    Ok((file, direct))
}

/// [`open`] without the memory of recent pulls, with `O_DIRECT` allowed or not (tests
/// cover both paths).
#[cfg(test)]
fn open_with(path: &Path, allow_direct: bool) -> io::Result<(File, Option<File>)> {
    let file = File::open(path)?;
    Ok((file, if allow_direct { open_direct(path) } else { None }))
}

/// A second descriptor of `path` with `O_DIRECT`, if the filesystem has it.
fn open_direct(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).ok()
}

/// Blobs whose pulls are remembered, to tell a hot blob from a cold one. 1,024 layers of
/// recent pulls cost 16 KiB and a short scan per pull.
const REMEMBERED: usize = 1024;

/// The blobs streamed lately, process-wide.
static RECENT: Mutex<Recent> = Mutex::new(Recent::new(REMEMBERED));

/// True when `file` was streamed lately; remembers it either way. A blob deleted and pushed
/// again whose inode number is reused counts as hot: it is then read through the cache,
/// which is correct either way.
fn pulled_lately(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else { return false };
    RECENT.lock().unwrap_or_else(|p| p.into_inner()).saw((meta.dev(), meta.ino()))
}

/// The (device, inode) of the last `capacity` files streamed, least recently first.
struct Recent {
    capacity: usize,
    seen: VecDeque<(u64, u64)>,
}

impl Recent {
    const fn new(capacity: usize) -> Self {
        Recent { capacity, seen: VecDeque::new() }
    }

    /// Records a stream of `key`; true when it was among the remembered ones.
    fn saw(&mut self, key: (u64, u64)) -> bool {
        let known = match self.seen.iter().position(|&k| k == key) {
            Some(i) => {
                self.seen.remove(i);
                true
            }
            None => {
                if self.seen.len() == self.capacity {
                    self.seen.pop_front();
                }
                false
            }
        };
        self.seen.push_back(key);
        known
    }
}

/// Streams `len` bytes from byte `start` of an opened blob.
pub(super) fn stream(file: File, direct: Option<File>, start: u64, len: u64) -> ByteStream {
    stream_within(&BUDGET, file, direct, start, len)
}

/// [`stream`], reading ahead within `budget`.
fn stream_within(
    budget: &'static Budget,
    file: File,
    direct: Option<File>,
    start: u64,
    len: u64,
) -> ByteStream {
    let mut reads = Reads::new(budget, file, direct, start, len);
    reads.top_up();
    Box::pin(futures_util::stream::unfold(reads, |mut reads| async move {
        let (pending, share) = reads.pending.pop_front()?;
        let chunk = pending.await;
        drop(share);
        let chunk = match chunk {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => return Some((Err(e), reads.stop())),
            Err(e) => return Some((Err(io::Error::other(e)), reads.stop())),
        };
        reads.top_up();
        Some((Ok(chunk), reads))
    }))
}

/// The chunks of a stream being read, in order: up to [`DEPTH`] at once, each holding its
/// share of the read-ahead budget until the stream takes it.
struct Reads {
    source: Arc<Source>,
    /// Offset of the first byte no read has been started for.
    next: u64,
    /// Offset just past the last byte to stream.
    end: u64,
    pending: VecDeque<(JoinHandle<io::Result<Bytes>>, Share)>,
    budget: &'static Budget,
}

impl Reads {
    fn new(
        budget: &'static Budget,
        file: File,
        direct: Option<File>,
        start: u64,
        len: u64,
    ) -> Self {
        let source = Arc::new(Source {
            file,
            direct,
            direct_works: AtomicBool::new(true),
            pool: Arc::default(),
        });
        Reads { source, next: start, end: start + len, pending: VecDeque::new(), budget }
    }

    /// Starts reads until [`DEPTH`] are in flight, the budget has none to spare or the range
    /// is covered. The first read in flight needs no spare share: every stream moves.
    fn top_up(&mut self) {
        while self.pending.len() < DEPTH && self.next < self.end {
            let share = if self.pending.is_empty() {
                self.budget.take()
            } else {
                match self.budget.try_take() {
                    Some(share) => share,
                    None => break,
                }
            };
            let want = (self.end - self.next).min(CHUNK as u64) as usize;
            let (source, offset) = (self.source.clone(), self.next);
            let read = tokio::task::spawn_blocking(move || source.read(offset, want));
            self.pending.push_back((read, share));
            self.next += want as u64;
        }
    }

    /// Ends the stream after an error (with nothing pending, the next poll ends it): the
    /// reads still running finish unobserved.
    fn stop(mut self) -> Self {
        self.pending.clear();
        self
    }
}

impl Source {
    /// Reads exactly `want` bytes at `offset` (an error if the file ends first).
    fn read(&self, offset: u64, want: usize) -> io::Result<Bytes> {
        let mut mem = self.pool.take();
        let range = self.read_into(&mut mem, offset, want)?;
        Ok(Bytes::from_owner(Chunk { mem, range, pool: self.pool.clone() }))
    }

    /// Reads `want` bytes at `offset` into `mem` and returns where they are.
    fn read_into(
        &self,
        mem: &mut [u8],
        offset: u64,
        want: usize,
    ) -> io::Result<std::ops::Range<usize>> {
        // A direct read covers whole blocks: from the block holding `offset` (`lead` bytes
        // before it) to the end of the block holding the last byte, in an aligned region.
        let lead = (offset % ALIGN) as usize;
        let span = (lead + want).next_multiple_of(ALIGN as usize);
        let base = mem.as_ptr().align_offset(ALIGN as usize);
        let direct = self.direct.as_ref().filter(|_| self.direct_works.load(Ordering::Relaxed));
        if let Some(direct) = direct.filter(|_| !fully_cached(&self.file, offset, want)) {
            match read_full(direct, &mut mem[base..base + span], offset - lead as u64) {
                Ok(got) if got >= lead + want => return Ok(base + lead..base + lead + want),
                Ok(_) => return Err(short()),
                // The filesystem wants another alignment: read through the cache from now on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct_works.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        if read_full(&self.file, &mut mem[base..base + want], offset)? < want {
            return Err(short());
        }
        Ok(base..base + want)
    }
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than expected")
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use futures_util::StreamExt;

    use super::super::cachestat::cachestat_works;
    use super::*;

    /// True on tmpfs, where pages cannot be evicted (`TMPDIR` may point there).
    fn on_tmpfs(path: &Path) -> bool {
        std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(path)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs")
    }

    async fn collect(mut stream: ByteStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Whole files and ranges at unaligned offsets come back exactly, read directly, from
    /// the page cache, and without `O_DIRECT`.
    #[tokio::test]
    async fn ranges_read_back_exactly_by_every_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let content: Vec<u8> = (0..3 * CHUNK + 12_345).map(|i| (i * 7 + i / 4096) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let ranges = [
            (0, content.len()),
            (1, 4095),
            (4095, CHUNK + 2),
            (CHUNK as u64 as usize - 1, 2 * CHUNK + 12_346),
            (content.len() - 1, 1),
        ];
        // Cached (just written), evicted (read with O_DIRECT), and without O_DIRECT.
        for (allow_direct, evict) in [(true, false), (true, true), (false, false)] {
            for &(start, len) in &ranges {
                let (file, direct) = open_with(&path, allow_direct).unwrap();
                assert!(allow_direct || direct.is_none());
                // Which path a read takes is only asserted where the kernel can tell
                // (cachestat) and the filesystem evicts on request (not tmpfs); the bytes
                // are checked everywhere.
                let probes = cachestat_works(&file);
                if evict {
                    drop_cached(&file);
                    if probes && !on_tmpfs(&path) {
                        assert!(!fully_cached(&file, start as u64, len));
                    }
                } else if allow_direct && probes {
                    // Just written, so in the page cache: the cached path is taken.
                    assert!(fully_cached(&file, start as u64, len));
                }
                let got = collect(stream(file, direct, start as u64, len as u64)).await.unwrap();
                assert!(got == content[start..start + len], "range {start}+{len}");
            }
        }
    }

    /// Drops `file`'s pages from the page cache (on tmpfs this does nothing).
    fn drop_cached(file: &File) {
        file.sync_all().unwrap();
        // SAFETY: plain system call on an open descriptor.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }

    /// The first pull of a blob reads it directly and leaves the page cache alone; the
    /// second reads it through the cache, which then holds all of it for the pulls after.
    #[tokio::test]
    async fn a_blob_pulled_again_is_read_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let content: Vec<u8> = (0..2 * CHUNK + 777).map(|i| (i % 253 + i / 8192) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let len = content.len() as u64;

        let (file, direct) = open(&path).unwrap();
        let direct_here = direct.is_some(); // not on tmpfs, nor where O_DIRECT is refused
        let probes = cachestat_works(&file) && !on_tmpfs(&path);
        drop_cached(&file);
        let check = file.try_clone().unwrap();
        assert!(collect(stream(file, direct, 0, len)).await.unwrap() == content);
        if probes && direct_here {
            assert!(!fully_cached(&check, 0, content.len()), "a first pull filled the cache");
        }

        let (file, direct) = open(&path).unwrap();
        assert!(direct.is_none(), "a second pull got a direct descriptor");
        drop_cached(&file);
        let check = file.try_clone().unwrap();
        assert!(collect(stream(file, direct, 0, len)).await.unwrap() == content);
        if probes {
            assert!(fully_cached(&check, 0, content.len()), "a second pull left the cache");
        }

        // Another blob is still cold.
        let other = dir.path().join("other");
        std::fs::write(&other, b"other blob").unwrap();
        assert_eq!(open(&other).unwrap().1.is_some(), direct_here);
    }

    /// The memory of recent pulls holds the most recently pulled, and forgets the least.
    #[test]
    fn recent_pulls_forget_the_least_recently_pulled() {
        let mut recent = Recent::new(3);
        for key in [(1, 1), (1, 2), (1, 3)] {
            assert!(!recent.saw(key));
        }
        assert!(recent.saw((1, 1))); // now the most recent; (1, 2) is the least
        assert!(!recent.saw((1, 4))); // forgets (1, 2)
        assert!(!recent.saw((1, 2))); // forgets (1, 3)
        assert!(recent.saw((1, 1)));
        assert!(recent.saw((1, 4)));
        assert!(!recent.saw((1, 3)));
        assert!(!recent.saw((2, 1)), "another device, same inode number");
        assert_eq!(recent.seen.len(), 3);
    }

    /// Streams read ahead within their budget: each has one read in flight, the rest share
    /// what is left, and a stream done or dropped gives its shares back.
    #[tokio::test]
    async fn read_ahead_stays_within_the_budget_and_every_stream_moves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let content: Vec<u8> = (0..8 * CHUNK).map(|i| (i % 241 + i / 5000) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let len = content.len() as u64;
        let budget: &'static Budget = Box::leak(Box::new(Budget::new(3)));
        let reads = |start| {
            let (file, direct) = open_with(&path, true).unwrap();
            let mut reads = Reads::new(budget, file, direct, start, len - start);
            reads.top_up();
            reads
        };
        let first = reads(0);
        assert_eq!(first.pending.len(), 3, "the first stream takes the whole budget");
        let second = reads(CHUNK as u64);
        assert_eq!(second.pending.len(), 1, "a stream beyond the budget still reads one");
        assert_eq!(budget.taken.load(Ordering::Relaxed), 4);
        drop(first);
        assert_eq!(budget.taken.load(Ordering::Relaxed), 1, "a dropped stream gave back");
        drop(second);

        let (file, direct) = open_with(&path, true).unwrap();
        let (other, other_direct) = open_with(&path, false).unwrap();
        let (a, b) = futures_util::join!(
            collect(stream_within(budget, file, direct, 0, len)),
            collect(stream_within(budget, other, other_direct, 5, len - 5)),
        );
        assert!(a.unwrap() == content && b.unwrap() == content[5..]);
        assert_eq!(budget.taken.load(Ordering::Relaxed), 0, "finished streams gave back");
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, vec![5u8; 10_000]).unwrap();
        for allow_direct in [true, false] {
            let (file, direct) = open_with(&path, allow_direct).unwrap();
            let err = collect(stream(file, direct, 0, 20_000)).await.err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    /// With several chunks read at once, a file that ends early yields the chunks before
    /// the gap, in order, then one error, then nothing: no chunk read ahead of the error
    /// slips out after it.
    #[tokio::test]
    async fn chunks_read_ahead_arrive_in_order_and_stop_at_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let whole = 2 * CHUNK + 100;
        let content: Vec<u8> = (0..whole).map(|i| (i / 4096 + i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        for allow_direct in [true, false] {
            let (file, direct) = open_with(&path, allow_direct).unwrap();
            // Promise (DEPTH + 2) chunks: reads of the last ones fail, the first two succeed.
            let promised = ((DEPTH + 2) * CHUNK) as u64;
            let mut s = stream(file, direct, 0, promised);
            let mut got = Vec::new();
            let mut errors = 0;
            while let Some(item) = s.next().await {
                match item {
                    Ok(chunk) => {
                        assert_eq!(errors, 0, "a chunk arrived after the error");
                        got.extend_from_slice(&chunk);
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                        errors += 1;
                    }
                }
            }
            assert_eq!(errors, 1);
            assert!(got == content[..2 * CHUNK], "the two whole chunks, in order");
        }
    }
}
