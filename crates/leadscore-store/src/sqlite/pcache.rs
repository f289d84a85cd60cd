//! SQLite's own page cache, with one change: where a B-tree page split
//! parks a page for a moment.
//!
//! When a split leaves its new pages out of order, SQLite's
//! `balance_nonroot` swaps two of them through a temporary page number, the
//! lock-byte page's (page 262,145 with 4 KiB pages: the page at 1 GiB). In a
//! file smaller than that, the page cache then holds a key far past the
//! file's end, and the commit, which drops every cached page past the end,
//! scans the cache's whole hash table instead of the few slots past the end
//! (`pcache1TruncateUnsafe`). Under single-event POSTs on a file of 750 MB
//! that scan was 29 % of the writer thread's samples (perf, Intel Xeon
//! host); a file past 1 GiB never pays it.
//!
//! This wraps each cache of SQLite's default implementation and forwards
//! every call to it, but parks that page at the key just past the largest
//! the cache may hold instead. A key past the largest is never in use, and
//! the commit's truncation then scans a slot or two. The largest key is
//! tracked as an upper bound, the way the default implementation tracks
//! its own: raised by every page created or moved, lowered by every
//! truncation. Nothing in the file changes: only which slot of the cache's
//! hash table the page sits in for the length of the swap.
//!
//! It must be installed before SQLite initialises (the first connection the
//! process opens); [`install`] is called before every connection leadscore
//! opens and does it once. Where SQLite was initialised before (a
//! connection opened elsewhere first), the default cache is used as it is.
#![allow(unsafe_code)]

use std::os::raw::{c_int, c_uint};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rusqlite::ffi;

/// SQLite's lock-byte offset (`PENDING_BYTE`): the temporary page number of
/// a swap is the page holding it.
const PENDING_BYTE: u32 = 0x4000_0000;

/// The default implementation's methods, as SQLite gave them.
struct Methods(ffi::sqlite3_pcache_methods2);
// SAFETY: the methods are plain function pointers and `pArg` is SQLite's
// global argument for them, which SQLite itself shares between threads.
unsafe impl Send for Methods {}
unsafe impl Sync for Methods {}

static DEFAULT: OnceLock<Option<Methods>> = OnceLock::new();

/// Pages parked by the wrapper so far, in every cache (for the tests).
static PARKED: AtomicU64 = AtomicU64::new(0);

/// One cache: the default implementation's, and the bound on its keys.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// The temporary page number of a swap for this cache's page size.
    pending: u32,
    /// No page in the cache has a larger key (zero: none yet).
    max_key: AtomicU32,
    /// Where the page SQLite thinks is at `pending` sits instead (zero:
    /// nowhere), and the bound on the keys before it was parked there.
    parked: AtomicU32,
    max_before: AtomicU32,
}

/// Installs the wrapper (once; see the module's documentation), and with
/// it SQLite's memory functions (`memory.rs`), which must also be set
/// before SQLite initialises. True when the wrapper is in use.
pub(crate) fn install() -> bool {
    DEFAULT
        .get_or_init(|| {
            // SAFETY: `sqlite3_config` is called with the argument type each
            // option expects; it fails (SQLITE_MISUSE) rather than act once
            // SQLite is initialised, and then nothing is changed.
            unsafe {
                let mut default: ffi::sqlite3_pcache_methods2 = std::mem::zeroed();
                if ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_GETPCACHE2,
                    &mut default as *mut ffi::sqlite3_pcache_methods2,
                ) != ffi::SQLITE_OK
                    || default.xCreate.is_none()
                {
                    tracing::warn!("SQLite's page cache is used as it is: SQLite was initialised before");
                    return None;
                }
                // SQLite's memory from the global allocator (memory.rs).
                if ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_MALLOC,
                    &super::memory::methods() as *const ffi::sqlite3_mem_methods,
                ) != ffi::SQLITE_OK
                {
                    tracing::warn!(
                        "SQLite keeps the C library's malloc: SQLite refused the global allocator"
                    );
                }
                let ours = ffi::sqlite3_pcache_methods2 {
                    xCreate: Some(create),
                    xCachesize: Some(cachesize),
                    xPagecount: Some(pagecount),
                    xFetch: Some(fetch),
                    xUnpin: Some(unpin),
                    xRekey: Some(rekey),
                    xTruncate: Some(truncate),
                    xDestroy: Some(destroy),
                    xShrink: Some(shrink),
                    ..default
                };
                if ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_PCACHE2,
                    &ours as *const ffi::sqlite3_pcache_methods2,
                ) != ffi::SQLITE_OK
                {
                    tracing::warn!("SQLite's page cache is used as it is: SQLite refused the wrapper");
                    return None;
                }
                // At once, so that no other thread's configuration comes
                // between (`sqlite3_config` is not thread-safe; once
                // initialised, SQLite refuses it).
                if ffi::sqlite3_initialize() != ffi::SQLITE_OK {
                    tracing::warn!("SQLite could not initialise with the page cache wrapper");
                }
                Some(Methods(default))
            }
        })
        .is_some()
}

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    match DEFAULT.get() {
        Some(Some(d)) => &d.0,
        // Only installed methods are ever called, and only after install.
        _ => unreachable!("the page cache wrapper runs only once installed"),
    }
}

/// The wrapper SQLite handed back.
///
/// # Safety
/// `p` is a pointer [`create`] returned and [`destroy`] has not freed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a Cache {
    // SAFETY: as the caller promises.
    unsafe { &*(p as *const Cache) }
}

unsafe extern "C" fn create(sz_page: c_int, sz_extra: c_int, purgeable: c_int) -> *mut ffi::sqlite3_pcache {
    // SAFETY: forwarded as SQLite called it.
    let inner = unsafe { (default().xCreate.expect("xCreate"))(sz_page, sz_extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let pending = PENDING_BYTE / u32::try_from(sz_page.max(1)).unwrap_or(1) + 1;
    let cache = Box::new(Cache {
        inner,
        pending,
        max_key: AtomicU32::new(0),
        parked: AtomicU32::new(0),
        max_before: AtomicU32::new(0),
    });
    Box::into_raw(cache).cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    // SAFETY: `p` is ours (SQLite passes back what `create` gave it).
    unsafe { (default().xCachesize.expect("xCachesize"))(cache(p).inner, n) }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    // SAFETY: as in `cachesize`.
    unsafe { (default().xPagecount.expect("xPagecount"))(cache(p).inner) }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    // SAFETY: forwarded as SQLite called it.
    let page = unsafe { (default().xFetch.expect("xFetch"))(c.inner, key, create) };
    if !page.is_null() {
        raise(&c.max_key, key);
    }
    page
}

unsafe extern "C" fn unpin(p: *mut ffi::sqlite3_pcache, page: *mut ffi::sqlite3_pcache_page, discard: c_int) {
    // SAFETY: as in `cachesize`.
    unsafe { (default().xUnpin.expect("xUnpin"))(cache(p).inner, page, discard) }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    let methods = default();
    let max = c.max_key.load(Ordering::Relaxed);
    let mut new_key = new;
    if new == c.pending
        && c.parked.load(Ordering::Relaxed) == 0
        && max.saturating_add(1) < c.pending
        // SAFETY: a lookup without creating, as SQLite's own move does. The
        // key past the bound is free; checked all the same, since a key
        // in use would lose its page.
        && unsafe { (methods.xFetch.expect("xFetch"))(c.inner, max + 1, 0) }.is_null()
    {
        // Parked just past every key in use, instead of far past them.
        new_key = max + 1;
        c.parked.store(new_key, Ordering::Relaxed);
        c.max_before.store(max, Ordering::Relaxed);
        PARKED.fetch_add(1, Ordering::Relaxed);
    }
    let mut old_key = old;
    let mut unparked = false;
    if old == c.pending {
        let parked = c.parked.swap(0, Ordering::Relaxed);
        if parked != 0 {
            old_key = parked;
            unparked = true;
        }
    }
    // SAFETY: forwarded with the keys the default implementation holds the
    // page under; `new_key` is free (checked above, or SQLite's own).
    unsafe { (methods.xRekey.expect("xRekey"))(c.inner, page, old_key, new_key) };
    if unparked && c.max_key.load(Ordering::Relaxed) == old_key {
        // The parking key held nothing else (nothing larger came since):
        // the bound goes back to what it was, or the new key if larger, so
        // a transaction of many splits does not push it up by one each.
        let before = c.max_before.load(Ordering::Relaxed);
        c.max_key.store(before.max(new_key), Ordering::Relaxed);
    } else {
        raise(&c.max_key, new_key);
    }
}

/// Raises the bound to `key`. A cache is used by one connection, so by one
/// thread at a time (SQLite's own fields beside it are not atomic either):
/// a load and a store, not a locked read-modify-write on every page fetched.
fn raise(max: &AtomicU32, key: u32) {
    if key > max.load(Ordering::Relaxed) {
        max.store(key, Ordering::Relaxed);
    }
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    // SAFETY: forwarded as SQLite called it.
    unsafe { (default().xTruncate.expect("xTruncate"))(c.inner, limit) };
    // Every page at `limit` or past it is gone.
    if limit > 0 && limit <= c.max_key.load(Ordering::Relaxed) {
        c.max_key.store(limit - 1, Ordering::Relaxed);
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` is ours and SQLite uses it no more after this call.
    let c = unsafe { Box::from_raw(p.cast::<Cache>()) };
    // SAFETY: forwarded as SQLite called it.
    unsafe { (default().xDestroy.expect("xDestroy"))(c.inner) }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: as in `cachesize`.
    unsafe { (default().xShrink.expect("xShrink"))(cache(p).inner) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper parks a swapped page just past the largest key in use,
    /// and gives the page back under the key SQLite asked for.
    #[test]
    fn a_swap_parks_its_page_just_past_the_largest_key() {
        // Every connection this test binary opens calls `install` first.
        assert!(install());
        // SAFETY: SQLite is initialised (as a connection's open does), then
        // the methods are called as SQLite calls them: create, fetch with
        // create, rekey, truncate, unpin and destroy on one cache.
        unsafe {
            assert_eq!(ffi::sqlite3_initialize(), ffi::SQLITE_OK);
            let p = create(4096, 64, 1);
            assert!(!p.is_null());
            let c = cache(p);
            assert_eq!(c.pending, 262_145);
            // Room for unpinned pages to stay.
            cachesize(p, 100);
            let a = fetch(p, 10, 2);
            let b = fetch(p, 7, 2);
            assert!(!a.is_null() && !b.is_null());
            assert_eq!(c.max_key.load(Ordering::Relaxed), 10);
            // balance_nonroot's swap of pages 10 and 7.
            rekey(p, a, 10, 262_145);
            assert_eq!(c.max_key.load(Ordering::Relaxed), 11);
            assert_eq!(fetch(p, 11, 0), a);
            assert!(fetch(p, 262_145, 0).is_null());
            rekey(p, b, 7, 10);
            rekey(p, a, 262_145, 7);
            // The bound is back where it was.
            assert_eq!(c.max_key.load(Ordering::Relaxed), 10);
            assert_eq!(c.parked.load(Ordering::Relaxed), 0);
            assert_eq!(fetch(p, 7, 0), a);
            assert_eq!(fetch(p, 10, 0), b);
            assert!(fetch(p, 11, 0).is_null());
            unpin(p, a, 0);
            unpin(p, b, 0);
            // The commit's truncation past the file's end lowers the bound.
            truncate(p, 9);
            assert_eq!(c.max_key.load(Ordering::Relaxed), 8);
            assert!(fetch(p, 10, 0).is_null());
            assert_eq!(fetch(p, 7, 0), a);
            unpin(p, a, 1);
            destroy(p);
        }
    }

    /// Many B-tree splits in a file under 1 GiB park pages through the
    /// wrapper, and the file stays whole: every row is found and SQLite's
    /// integrity check passes.
    #[test]
    fn splits_through_the_wrapper_leave_the_file_whole() {
        assert!(install());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA cache_size = -2048;
             CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
             CREATE TABLE r (id INTEGER PRIMARY KEY, k TEXT, v BLOB);
             CREATE INDEX r_by_k ON r (k);",
        )
        .unwrap();
        let parked_before = PARKED.load(Ordering::Relaxed);
        // Keys in a scattered order, so splits happen all over the trees.
        let key = |i: u64| format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for batch in 0..40u64 {
            let tx = c.unchecked_transaction().unwrap();
            for i in batch * 1000..(batch + 1) * 1000 {
                let v = vec![(i % 251) as u8; 100 + (i % 300) as usize];
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, ?2)",
                    rusqlite::params![key(i), v],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO r (k, v) VALUES (?1, ?2)",
                    rusqlite::params![key(i), v],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        assert!(
            PARKED.load(Ordering::Relaxed) > parked_before,
            "no split parked a page through the wrapper"
        );
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        for i in (0..40_000u64).step_by(997) {
            let (t, r): (Vec<u8>, Vec<u8>) = c
                .query_row(
                    "SELECT t.v, r.v FROM t JOIN r ON r.k = t.k WHERE t.k = ?1",
                    [key(i)],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(t, vec![(i % 251) as u8; 100 + (i % 300) as usize]);
            assert_eq!(r, t);
        }
        // And a fresh connection (another cache, reading the file) agrees.
        drop(c);
        let c = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 40_000);
    }
}
