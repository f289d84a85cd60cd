//! A commit's WAL frames written to the file in one call instead of two
//! calls a page.
//!
//! SQLite writes each frame of the WAL with two `pwrite` calls, its 24-byte
//! header and then its page, and a frame (4,120 bytes with 4 KiB pages)
//! straddles two of the file's pages, so the kernel copies into, locks and
//! marks dirty each of them two or three times. Under 5,000 single events a
//! second (about seven frames each) those calls were a fifth of the SQLite
//! writer's samples (perf, AMD EPYC host): a fifth of the work of the
//! thread every write waits on.
//!
//! leadscore registers, as the process's default, a VFS that is the
//! platform's own in every respect but one: the files it opens as a WAL
//! gather the frames SQLite appends and write them in one call when the
//! commit's frame is complete (the frame whose header carries the database
//! size), and before anything else is done with the file (a read, a sync,
//! its size, a truncation, a file control, closing it). Every other file
//! (the database itself, temporary files) is the platform VFS's own object,
//! untouched.
//!
//! Why that is safe: no one reads a frame before SQLite publishes it in the
//! WAL index, which happens after `sqlite3WalFrames` has written the
//! commit's frames, that is after the write that completes the commit frame
//! has returned, and here that write returns only once everything gathered
//! is in the file (its error, if any, fails the commit as SQLite's own
//! write would). Frames of a transaction still under way (a large one
//! spills pages to the WAL before its commit) are not published and are
//! flushed before SQLite reads any of them back. Rewrites of frames already
//! written (the same page written twice in one transaction, the checksums
//! then recomputed) go to the file at once, after whatever was gathered.
//! The syncer thread syncs the WAL through its own descriptor only after
//! the writer's commit has returned, so every frame it is to cover is in
//! the file by then.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// Bytes of a frame's header: page number, database size after a commit
/// (zero for other frames), salts and checksums.
const FRAME_HEADER: usize = 24;
/// Bytes of the WAL's own header, written at its start when it starts over.
const WAL_HEADER: usize = 32;
/// Gathered frames are written once they reach this many bytes even before
/// the commit (a transaction of thousands of pages).
const FLUSH_AT: usize = 1 << 20;
/// The most the platform's `xWrite` takes in one call (the unix VFS masks
/// a length to 17 bits).
const WRITE_AT_MOST: usize = 120 << 10;

/// The platform's VFS, which does the work.
struct Platform(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and shared by all threads; SQLite
// itself calls it from any thread.
unsafe impl Send for Platform {}
unsafe impl Sync for Platform {}

static PLATFORM: OnceLock<Option<Platform>> = OnceLock::new();

// Writes to WAL files by this thread (for the tests).
#[cfg(test)]
thread_local! {
    static WAL_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static REWRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A WAL opened through this VFS: the frames gathered, in front of the
/// platform's file object (which follows it in the same allocation).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    platform: *mut ffi::sqlite3_file,
    pending: *mut Pending,
}

/// Bytes of a [`WalFile`] before the platform's file object, aligned to 8.
const OFFSET: usize = std::mem::size_of::<WalFile>().next_multiple_of(8);

struct Pending {
    /// Frames gathered, to be written at `start`.
    buf: Vec<u8>,
    start: i64,
    /// The end of the frames of the WAL as it is now: a write from here on
    /// appends a frame, one before it rewrites one of this transaction's.
    end: i64,
    /// The last write gathered is the header of a commit frame: the write of
    /// its page completes the commit.
    commit_header: bool,
}

/// Registers the VFS as the default, once (see the module's
/// documentation). Connections opened before keep the VFS they have.
pub(crate) fn register() {
    PLATFORM.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` gives the default VFS, which
        // stays registered for the life of the process; ours is a copy of it
        // with a larger file object and its own `xOpen`, leaked so that it
        // outlives every connection, and registered once.
        unsafe {
            let platform = ffi::sqlite3_vfs_find(std::ptr::null());
            if platform.is_null() {
                tracing::warn!("SQLite has no default VFS to wrap: WAL frames are written one call each");
                return None;
            }
            let Ok(size) = c_int::try_from(OFFSET + (*platform).szOsFile as usize) else {
                return None;
            };
            let ours = Box::leak(Box::new(ffi::sqlite3_vfs {
                szOsFile: size,
                pNext: std::ptr::null_mut(),
                zName: c"leadscore-wal".as_ptr(),
                xOpen: Some(open),
                ..*platform
            }));
            if ffi::sqlite3_vfs_register(ours, 1) != ffi::SQLITE_OK {
                tracing::warn!("SQLite refused the VFS: WAL frames are written one call each");
                return None;
            }
            Some(Platform(platform))
        }
    });
}

/// `xOpen`: the platform's file object; for a WAL, behind a [`WalFile`].
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Some(Platform(platform))) = PLATFORM.get() else {
        return ffi::SQLITE_CANTOPEN;
    };
    let platform = *platform;
    // SAFETY: SQLite gives `file` our `szOsFile` bytes, room for a
    // `WalFile` and the platform's object after it; the platform's `xOpen`
    // gets its own VFS and an object of its own size.
    unsafe {
        let Some(platform_open) = (*platform).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Any other file is the platform's object itself.
            return platform_open(platform, name, file, flags, out_flags);
        }
        let wal = file.cast::<WalFile>();
        let inner = file.cast::<u8>().add(OFFSET).cast::<ffi::sqlite3_file>();
        (*wal).base.pMethods = std::ptr::null();
        (*wal).platform = inner;
        (*wal).pending = std::ptr::null_mut();
        (*inner).pMethods = std::ptr::null();
        let rc = platform_open(platform, name, inner, flags, out_flags);
        // A platform object with methods is closed through ours, even if
        // its open failed (SQLite then calls `xClose`).
        if !(*inner).pMethods.is_null() {
            (*wal).pending = Box::into_raw(Box::new(Pending {
                buf: Vec::new(),
                start: 0,
                end: 0,
                commit_header: false,
            }));
            (*wal).base.pMethods = &METHODS;
        }
        rc
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The WAL file behind `file` and the platform's methods for it.
///
/// # Safety
/// `file` is a `WalFile` whose open succeeded (SQLite calls these methods
/// only on such files, one call at a time per file).
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (&'a mut WalFile, &'a ffi::sqlite3_io_methods) {
    // SAFETY: see the function's contract.
    unsafe {
        let wal = &mut *file.cast::<WalFile>();
        let methods = &*(*wal.platform).pMethods;
        (wal, methods)
    }
}

/// Writes what is gathered, if anything: SQLite's result code.
fn flush(wal: &mut WalFile, methods: &ffi::sqlite3_io_methods) -> c_int {
    // SAFETY: `pending` is ours from `open` until `close`.
    let pending = unsafe { &mut *wal.pending };
    pending.commit_header = false;
    if pending.buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: the platform's writes of our buffer to its own object, in
    // pieces it takes whole (the unix VFS writes at most 128 KiB a call).
    let mut rc = ffi::SQLITE_OK;
    let mut at = pending.start;
    for piece in pending.buf.chunks(WRITE_AT_MOST) {
        #[cfg(test)]
        WAL_WRITES.with(|w| w.set(w.get() + 1));
        rc = unsafe {
            methods.xWrite.map_or(ffi::SQLITE_IOERR_WRITE, |w| {
                w(wal.platform, piece.as_ptr().cast(), piece.len() as c_int, at)
            })
        };
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += piece.len() as i64;
    }
    // Written or failed, it is no longer ours to write: after a failure
    // SQLite rolls the transaction back and writes its frames again.
    pending.buf.clear();
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: as for `parts`.
    let (wal, methods) = unsafe { parts(file) };
    // SAFETY: SQLite's contract for `xWrite`: `data` holds `amt` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amt.max(0) as usize) };
    // SAFETY: `pending` is ours from `open` until `close`; this reference
    // is not used after `flush` takes its own.
    let pending = unsafe { &mut *wal.pending };
    let through = |wal: &mut WalFile| {
        let rc = flush(wal, methods);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        #[cfg(test)]
        WAL_WRITES.with(|w| w.set(w.get() + 1));
        // SAFETY: the platform's write of SQLite's bytes to its own object.
        unsafe {
            methods
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |w| w(wal.platform, data, amt, offset))
        }
    };
    if offset == 0 && bytes.len() == WAL_HEADER {
        // The WAL starts over (or anew): its frames follow the header.
        pending.end = WAL_HEADER as i64;
        return through(wal);
    }
    if offset < pending.end {
        // A rewrite of a frame this transaction wrote before.
        #[cfg(test)]
        REWRITES.with(|w| w.set(w.get() + 1));
        return through(wal);
    }
    if !pending.buf.is_empty() && offset != pending.start + pending.buf.len() as i64 {
        let rc = flush(wal, methods);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    // SAFETY: as above, taken again after the flush.
    let pending = unsafe { &mut *wal.pending };
    if pending.buf.is_empty() {
        pending.start = offset;
    }
    pending.buf.extend_from_slice(bytes);
    pending.end = offset + bytes.len() as i64;
    let completes_commit = pending.commit_header;
    // A frame header's bytes 4..8 are the database's size after a commit,
    // zero in every other frame.
    pending.commit_header = bytes.len() == FRAME_HEADER && bytes[4..8] != [0; 4];
    if completes_commit || pending.buf.len() >= FLUSH_AT {
        return flush(wal, methods);
    }
    ffi::SQLITE_OK
}

/// Flushes, then runs `f` with the platform's object and methods.
///
/// # Safety
/// As for [`parts`].
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> Option<c_int>,
) -> c_int {
    // SAFETY: see the function's contract.
    let (wal, methods) = unsafe { parts(file) };
    let rc = flush(wal, methods);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    f(wal.platform, methods).unwrap_or(ffi::SQLITE_IOERR)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once, after its last other call.
    unsafe {
        let (wal, methods) = parts(file);
        let flushed = flush(wal, methods);
        let rc = methods.xClose.map_or(ffi::SQLITE_OK, |c| c(wal.platform));
        drop(Box::from_raw(wal.pending));
        wal.pending = std::ptr::null_mut();
        wal.base.pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK { flushed } else { rc }
    }
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, offset: i64) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xRead.map(|f| f(p, buf, amt, offset))) }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, _) = parts(file);
        let pending = &mut *wal.pending;
        pending.end = pending.end.min(size);
        flushed(file, |p, m| m.xTruncate.map(|f| f(p, size)))
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xSync.map(|f| f(p, flags))) }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xFileSize.map(|f| f(p, size))) }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xLock.map(|f| f(p, level))) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xUnlock.map(|f| f(p, level))) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe { flushed(file, |p, m| m.xCheckReservedLock.map(|f| f(p, out))) }
}

unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: forwarded as SQLite called it. An operation the platform does
    // not know answers NOTFOUND, as SQLite expects.
    unsafe {
        flushed(file, |p, m| {
            Some(m.xFileControl.map_or(ffi::SQLITE_NOTFOUND, |f| f(p, op, arg)))
        })
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods.xSectorSize.map_or(4096, |f| f(wal.platform))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods.xDeviceCharacteristics.map_or(0, |f| f(wal.platform))
    }
}

// The shared-memory and memory-mapping methods belong to the database
// file; SQLite does not call them on a WAL. They are forwarded all the same.

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods.xShmMap.map_or(ffi::SQLITE_IOERR_SHMMAP, |f| {
            f(wal.platform, page, size, extend, out)
        })
    }
}

unsafe extern "C" fn shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods
            .xShmLock
            .map_or(ffi::SQLITE_IOERR_SHMLOCK, |f| f(wal.platform, offset, n, flags))
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        if let Some(f) = methods.xShmBarrier {
            f(wal.platform);
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods
            .xShmUnmap
            .map_or(ffi::SQLITE_OK, |f| f(wal.platform, delete))
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarded as SQLite called it; without the platform's method,
    // no mapping (SQLite then reads).
    unsafe {
        flushed(file, |p, m| {
            Some(match m.xFetch {
                Some(f) => f(p, offset, amt, out),
                None => {
                    *out = std::ptr::null_mut();
                    ffi::SQLITE_OK
                }
            })
        })
    }
}

unsafe extern "C" fn unfetch(file: *mut ffi::sqlite3_file, offset: i64, p: *mut c_void) -> c_int {
    // SAFETY: forwarded as SQLite called it.
    unsafe {
        let (wal, methods) = parts(file);
        methods
            .xUnfetch
            .map_or(ffi::SQLITE_OK, |f| f(wal.platform, offset, p))
    }
}

#[cfg(test)]
mod tests {
    use super::{REWRITES, WAL_WRITES};

    fn wal_writes() -> u64 {
        WAL_WRITES.with(std::cell::Cell::get)
    }

    fn open(path: &std::path::Path) -> rusqlite::Connection {
        super::super::pcache::install();
        super::register();
        let c = rusqlite::Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
        )
        .unwrap();
        c
    }

    fn sum(c: &rusqlite::Connection) -> (i64, i64) {
        c.query_row("SELECT count(*), coalesce(sum(x), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    /// A copy of the database and its WAL (`w.db`, `w.db-wal` in `dir`) as
    /// a crash would leave them: the copy recovers from the WAL alone.
    fn crash_copy(dir: &std::path::Path) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for name in ["w.db", "w.db-wal"] {
            std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
        }
        copy
    }

    fn assert_intact(c: &rusqlite::Connection) {
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    /// A commit of many pages is one write to the WAL, and what another
    /// connection reads of it, and what a copy of the files recovers from
    /// the WAL alone, is all of it.
    #[test]
    fn a_commit_is_one_write_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (x INTEGER, b BLOB); INSERT INTO t VALUES (0, zeroblob(10));")
            .unwrap();
        let reader = open(&path);
        assert_eq!(sum(&reader), (1, 0));
        let frames = |c: &rusqlite::Connection| -> i64 {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                .unwrap()
        };
        let before = wal_writes();
        writer
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO t SELECT i, randomblob(3000) FROM n;",
            )
            .unwrap();
        // 200 rows of 3 KB, a page each: their frames in calls of at most
        // 120 KiB (seven), where there were two calls a frame, and perhaps
        // one for the WAL's header (the first write after a checkpoint that
        // copied everything starts it over).
        let in_wal = frames(&writer) as u64;
        assert!(in_wal > 200, "{in_wal}");
        let calls = wal_writes() - before;
        assert!(
            calls <= 1 + (in_wal * (4096 + 24)).div_ceil(120 << 10),
            "{calls} calls"
        );
        assert!(calls >= 7, "{calls} calls");
        assert_eq!(sum(&reader), (201, 200 * 201 / 2));
        // A copy of the database and its WAL, as a crash would leave them
        // (nothing checkpointed): SQLite recovers every commit from the WAL.
        let copy = crash_copy(dir.path());
        let recovered = open(&copy.path().join("w.db"));
        assert_eq!(sum(&recovered), (201, 200 * 201 / 2));
        assert_intact(&recovered);
    }

    /// A transaction larger than its page cache spills frames to the WAL
    /// before its commit and reads them back, and writes some pages twice
    /// (rewriting their frames); a restarted WAL takes frames from its start
    /// again. Every row reads back and the file checks out.
    #[test]
    fn spilled_and_rewritten_frames_and_restarts_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = open(&path);
        writer
            .execute_batch("PRAGMA cache_size = 20; CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB);")
            .unwrap();
        let reader = open(&path);
        let rewrites = REWRITES.with(std::cell::Cell::get);
        let mut expected = 0;
        for round in 0..4 {
            writer.execute_batch("BEGIN").unwrap();
            for i in 0..300 {
                writer
                    .execute(
                        "INSERT INTO t VALUES (?1, randomblob(700)) ON CONFLICT (x) DO UPDATE SET b = randomblob(900)",
                        [i * 7 % 1000 + round],
                    )
                    .unwrap();
            }
            // The same pages changed again after spilling.
            writer
                .execute_batch("UPDATE t SET b = randomblob(800) WHERE x % 5 = 0; COMMIT;")
                .unwrap();
            expected = writer
                .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sum(&reader).1, expected);
            if round == 1 {
                // Everything copied: the next write starts the WAL over.
                let (busy, frames, copied): (i64, i64, i64) = writer
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .unwrap();
                assert_eq!((busy, frames), (0, copied));
            }
        }
        assert!(
            REWRITES.with(std::cell::Cell::get) > rewrites,
            "no frame was rewritten"
        );
        let copy = crash_copy(dir.path());
        for c in [&reader, &open(&copy.path().join("w.db"))] {
            assert_eq!(sum(c).1, expected);
            assert_intact(c);
        }
    }
}
