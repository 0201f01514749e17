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
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::registry::storage::ByteStream;

/// Alignment of `O_DIRECT` offsets, lengths and buffers.
const ALIGN: u64 = super::ALIGN as u64;

/// Bytes read per chunk.
const CHUNK: usize = 512 * 1024;

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
/// after its push went at a median 555 MB/s with one chunk ahead and 906 MB/s with eight;
/// four, eight, sixteen and two of 2 MiB measured alike, so four of 512 KiB it is, 2 MiB
/// in flight per pull).
const DEPTH: usize = 4;

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
    let source = Arc::new(Source {
        file,
        direct,
        direct_works: AtomicBool::new(true),
        pool: Arc::default(),
    });
    let mut reads = Reads { source, next: start, end: start + len, pending: VecDeque::new() };
    reads.top_up();
    Box::pin(futures_util::stream::unfold(reads, |mut reads| async move {
        let pending = reads.pending.pop_front()?;
        let chunk = match pending.await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => return Some((Err(e), reads.stop())),
            Err(e) => return Some((Err(io::Error::other(e)), reads.stop())),
        };
        reads.top_up();
        Some((Ok(chunk), reads))
    }))
}

/// The chunks of a stream being read, in order: up to [`DEPTH`] at once.
struct Reads {
    source: Arc<Source>,
    /// Offset of the first byte no read has been started for.
    next: u64,
    /// Offset just past the last byte to stream.
    end: u64,
    pending: VecDeque<JoinHandle<io::Result<Bytes>>>,
}

impl Reads {
    /// Starts reads until [`DEPTH`] are in flight or the range is covered.
    fn top_up(&mut self) {
        while self.pending.len() < DEPTH && self.next < self.end {
            let want = (self.end - self.next).min(CHUNK as u64) as usize;
            let (source, offset) = (self.source.clone(), self.next);
            self.pending.push_back(tokio::task::spawn_blocking(move || source.read(offset, want)));
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

/// `struct cachestat_range` of `cachestat(2)`.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of `cachestat(2)`.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// `cachestat(2)`'s number: new system calls share one number on every architecture.
const SYS_CACHESTAT: libc::c_long = 451;

/// Whether `cachestat(2)` works here: unknown, yes, no (remembered after the first call).
static CACHESTAT: AtomicU8 = AtomicU8::new(0);
const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const MISSING: u8 = 2;

/// True when the page cache holds every page of `len` bytes at `offset`. False when it
/// does not, or the kernel cannot tell (`cachestat` is Linux 6.5 and later; seccomp may
/// refuse it), which is asked once.
fn fully_cached(file: &File, offset: u64, len: usize) -> bool {
    if CACHESTAT.load(Ordering::Relaxed) == MISSING {
        return false;
    }
    let range = CachestatRange { off: offset, len: len as u64 };
    let mut stat = Cachestat::default();
    // SAFETY: both pointers refer to live, properly laid out `repr(C)` values for the whole
    // call; the kernel only reads `range` and writes `stat`. The descriptor is open.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error().raw_os_error();
        if matches!(e, Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)) {
            CACHESTAT.store(MISSING, Ordering::Relaxed);
        }
        return false;
    }
    if CACHESTAT.load(Ordering::Relaxed) == UNKNOWN {
        CACHESTAT.store(WORKS, Ordering::Relaxed);
    }
    let page = page_size();
    let pages = (offset + len as u64).div_ceil(page) - offset / page;
    stat.nr_cache >= pages
}

/// The system's page size (the unit `cachestat` counts in).
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory arguments.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
    })
}

/// Whether this kernel answers `cachestat(2)` (for tests that depend on it).
#[cfg(test)]
fn cachestat_works(file: &File) -> bool {
    fully_cached(file, 0, 1);
    CACHESTAT.load(Ordering::Relaxed) == WORKS
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than expected")
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

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
