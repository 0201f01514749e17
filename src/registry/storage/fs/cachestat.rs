//! Whether the page cache holds a range of a file, from `cachestat(2)` (Linux 6.5), which
//! tells without touching the cache. The blob reader uses it to copy a chunk the cache
//! already holds rather than read it again from the disk.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

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
pub(super) fn fully_cached(file: &File, offset: u64, len: usize) -> bool {
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
pub(super) fn cachestat_works(file: &File) -> bool {
    fully_cached(file, 0, 1);
    CACHESTAT.load(Ordering::Relaxed) == WORKS
}
