//! SQLite's memory, taken from the process's global allocator instead of
//! the C library's `malloc`.
//!
//! The `leadscore` binary's global allocator is mimalloc (see its
//! `main.rs`); SQLite, a C library inside the same binary, would otherwise
//! still call glibc's `malloc` for its page caches, statements and
//! journals. Under a long run of ingest glibc's heap fragments (its sorting
//! and merging of free blocks, `_int_malloc`, `malloc_consolidate` and
//! `unlink_chunk`, were 14 % of the server's samples under 5,000 single
//! events a second after 5 million batched ones: see ARCHITECTURE.md). With
//! these methods installed, every allocation of the process goes to one
//! allocator, whichever the binary chose (the tests' binaries keep the
//! system's).
//!
//! Each block carries its size in 8 bytes before the pointer SQLite gets
//! (SQLite asks a block's size back, and Rust's allocator needs it to free
//! the block); SQLite needs its memory aligned to 8 bytes, which the block
//! and its header are.
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::ffi::c_void;
use std::os::raw::c_int;

use rusqlite::ffi;

/// Bytes before each block SQLite gets: the size it asked for.
const HEADER: usize = 8;
const ALIGN: usize = 8;

/// Blocks allocated here so far (for the tests).
#[cfg(test)]
static ALLOCATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The methods, for `sqlite3_config(SQLITE_CONFIG_MALLOC, ...)` (SQLite
/// copies them).
pub(super) fn methods() -> ffi::sqlite3_mem_methods {
    ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    }
}

/// The layout of a block of `n` bytes for SQLite, header included; `None`
/// past what a layout can describe.
fn layout(n: usize) -> Option<Layout> {
    Layout::from_size_align(n.checked_add(HEADER)?, ALIGN).ok()
}

/// A block's start, from the pointer SQLite holds.
///
/// # Safety
/// `p` is a pointer [`malloc`] or [`realloc`] returned, not yet freed.
unsafe fn base(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: as the caller promises, the header lies just before `p`,
    // inside the same block, aligned to 8.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<u64>().read() as usize)
    }
}

/// Writes the size into a new block's header; SQLite's pointer.
///
/// # Safety
/// `base` is a block of at least `HEADER + n` bytes, aligned to 8.
unsafe fn stamp(base: *mut u8, n: usize) -> *mut c_void {
    // SAFETY: as the caller promises.
    unsafe {
        base.cast::<u64>().write(n as u64);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(n).ok().filter(|&n| n > 0).and_then(layout) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout's size is at least HEADER, never zero.
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    #[cfg(test)]
    ALLOCATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: the block was just allocated with room for the header and `n`.
    unsafe { stamp(base, layout.size() - HEADER) }
}

unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what its `xMalloc` or `xRealloc` gave, once;
    // the block was allocated with the layout its header gives back.
    unsafe {
        let (base, n) = base(p);
        std::alloc::dealloc(base, layout(n).expect("a block's own size"));
    }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as `malloc` (SQLite does not do this, but C's realloc may).
        return unsafe { malloc(n) };
    }
    let Some(new) = usize::try_from(n).ok().filter(|&n| n > 0).and_then(layout) else {
        // SQLite never shrinks a block to nothing; refused, the block stays.
        return std::ptr::null_mut();
    };
    // SAFETY: `p` is a live block of ours (SQLite reallocates only those),
    // allocated with the layout its header gives; the new size is not zero.
    // On failure the old block stays as it was, as SQLite expects.
    unsafe {
        let (base, old) = base(p);
        let moved = std::alloc::realloc(base, layout(old).expect("a block's own size"), new.size());
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        stamp(moved, new.size() - HEADER)
    }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks the size of its live blocks only; their sizes
    // came from a `c_int`.
    unsafe { base(p).1 as c_int }
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    // SQLite never asks for more than about 2 GiB less a page, so this
    // does not overflow.
    n.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once installed (as before every connection leadscore opens),
    /// SQLite's memory functions are these, and a block keeps its bytes
    /// and its size through a move.
    #[test]
    fn sqlite_allocates_through_the_global_allocator() {
        assert!(super::super::pcache::install());
        // SAFETY: SQLite is initialised (install did it); its own allocation
        // functions are called as documented, each block freed once.
        unsafe {
            let before = ALLOCATED.load(std::sync::atomic::Ordering::Relaxed);
            let p = ffi::sqlite3_malloc(100).cast::<u8>();
            assert!(!p.is_null());
            assert!(
                ALLOCATED.load(std::sync::atomic::Ordering::Relaxed) > before,
                "the block is ours"
            );
            assert_eq!(p as usize % 8, 0);
            // SQLite asks for sizes rounded up by `roundup`.
            assert_eq!(ffi::sqlite3_msize(p.cast()), 104);
            for i in 0..100 {
                p.add(i).write(i as u8);
            }
            let q = ffi::sqlite3_realloc(p.cast(), 100_000).cast::<u8>();
            assert!(!q.is_null());
            assert_eq!(ffi::sqlite3_msize(q.cast()), 100_000);
            assert!((0..100).all(|i| q.add(i).read() == i as u8));
            let r = ffi::sqlite3_realloc(q.cast(), 10).cast::<u8>();
            assert_eq!(ffi::sqlite3_msize(r.cast()), 16);
            assert!((0..10).all(|i| r.add(i).read() == i as u8));
            ffi::sqlite3_free(r.cast());
            assert!(ffi::sqlite3_malloc(0).is_null());
            assert!(ffi::sqlite3_malloc(-5).is_null());
            ffi::sqlite3_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn sizes_round_up_to_eight() {
        // SAFETY: a pure function.
        unsafe {
            assert_eq!(roundup(1), 8);
            assert_eq!(roundup(8), 8);
            assert_eq!(roundup(4097), 4104);
        }
    }
}
