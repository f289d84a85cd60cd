//! The embedded default: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that owns the write connection
//! and the [`LeadCache`]. It takes every write waiting in its queue into one
//! transaction and commits them together (group commit: one fsync for many
//! requests), then answers each; a request is answered only after its commit.
//! Each request runs in its own savepoint, so one failing request does not
//! undo the others. Reads use a small pool of read-only connections and never
//! wait for the writer.

mod automation;
mod memory;
mod pcache;
mod read;
mod walwrite;
mod workflow;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use leadscore_core::workflow::Workflow;
use leadscore_core::{Event, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use crate::records::*;
use crate::rescore::{ActiveModel, ActiveSet, LeadCache};
use crate::workflow::{LogEntry, Task, TaskQuery, WorkflowRecord, WorkflowSave};
use crate::{Progress, Result, Store, StoreError};

const SCHEMA: &str = include_str!("schema.sql");
/// The events table and its seq counter (run with [`SCHEMA`], and by the
/// upgrade from version 1).
const EVENTS_SCHEMA: &str = include_str!("events.sql");
/// The leads' sort by score. Part of the schema, but a rescoring of more
/// leads than one chunk drops it first and builds it again at its end
/// ([`Writer::set_rank_index`]): moving each lead's entry rewrote nearly all
/// of the index's pages once per chunk (every rescored lead has a new rank,
/// anywhere in the index). Meanwhile a list sorted by score reads the whole
/// table (about 0.1 s for 200,000 leads). A failed rescoring builds it
/// too; one cut off by a stop leaves it to the next open, one cut off by a
/// newer activation to that activation's rescoring.
const RANK_INDEX: &str = "CREATE INDEX IF NOT EXISTS leads_by_rank ON leads (rank DESC, id);";
/// The `user_version` that [`SCHEMA`] sets: 2 stores events clustered by
/// lead; 3 stores scores compact (`rescore::compact_score_json`), which an
/// earlier version would read as no score at all, so it refuses the file.
const SCHEMA_VERSION: i64 = 3;
const READERS: usize = 4;
/// At most this many requests share one commit.
const GROUP: usize = 512;

/// The columns `lead_from_row` reads, in order, but the last (the stored score).
macro_rules! lead_columns {
    () => {
        "id, first_name, last_name, email, phone, company, job_title, \
         industry, employees, annual_revenue, country, region, city, source, is_customer, attributes, \
         owner, created_at, updated_at, version, "
    };
}

/// The columns `lead_from_row` reads, in order.
pub(crate) const LEAD_SELECT: &str = concat!(lead_columns!(), "score_json");

/// How many columns [`LEAD_SELECT`] (and [`LEAD_DATA_SELECT`]) has: a
/// query's next column is at this index.
pub(crate) const LEAD_SELECT_LEN: usize = 21;

/// [`LEAD_SELECT`] without the stored score (read as NULL): for filling the
/// writer's cache, which needs the lead's data and version only (parsing
/// each score's JSON was a good part of reading a lead).
pub(crate) const LEAD_DATA_SELECT: &str = concat!(lead_columns!(), "NULL");

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How a request is undone alone if it fails (see `Writer::run_undoable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// In a savepoint of its own (or, first in its transaction, by rolling
    /// the transaction back).
    Savepoint,
    /// By rolling back the whole transaction and running the requests
    /// before it again: only when all of them can run again.
    Redo,
}

/// A write request: runs on the writer thread (`None` when no transaction
/// could be begun), perhaps again after its transaction was rolled back
/// (only if `redoable`), and then becomes what to do once the commit is
/// known.
trait WriteJob: Send {
    /// Runs the request; false when it failed (with `Undo::Redo`, leaving
    /// its transaction to be rolled back).
    fn run(&mut self, w: Option<&mut Writer>, undo: Undo) -> bool;
    /// Whether it gives the same writes when run again on the same data.
    fn redoable(&self) -> bool;
    fn reply(self: Box<Self>) -> Reply;
}
type Job = Box<dyn WriteJob>;

/// A queued request: its work (an `FnOnce` wrapped to run once), whether
/// it may run again, and its outcome, sent once its commit is known.
struct Request<T, F> {
    f: F,
    redoable: bool,
    tx: tokio::sync::oneshot::Sender<Result<T>>,
    result: Option<Result<T>>,
}

impl<T, F> WriteJob for Request<T, F>
where
    T: Send + 'static,
    F: FnMut(&mut Writer) -> Result<T> + Send,
{
    fn run(&mut self, w: Option<&mut Writer>, undo: Undo) -> bool {
        let result = match w {
            Some(w) => w.run_undoable(&mut self.f, undo),
            None => Err(StoreError::Database("could not begin a transaction".into())),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }
    fn redoable(&self) -> bool {
        self.redoable
    }
    fn reply(self: Box<Self>) -> Reply {
        let Request { tx, result, .. } = *self;
        Box::new(move |commit: Result<(), String>| {
            let _ = tx.send(match commit {
                Ok(()) => result.unwrap_or_else(|| Err(StoreError::Database("the write did not run".into()))),
                Err(e) => Err(StoreError::Database(e)),
            });
        })
    }
}

/// A write request as queued for the writer: the job, and whether what it
/// writes can be recomputed from what is stored (see [`Io::write_derived`]).
struct Queued {
    job: Job,
    derived: bool,
}

#[derive(Debug)]
pub struct SqliteStore {
    /// Dropped with the store, which ends the checkpointer thread.
    stop_checkpoints: Option<mpsc::Sender<()>>,
    /// The checkpointer thread, joined when the store is dropped.
    checkpointer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    io: Arc<Io>,
    models: Arc<Mutex<Vec<ActiveModel>>>,
    /// The syncer thread's state (read by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    durable: Arc<WalSync>,
    /// Leads rescored per writer transaction by [`Store::rescore_all`]
    /// ([`write::RESCORE_CHUNK`]; smaller in tests).
    rescore_chunk: usize,
}

/// The writer's queue and the read connections: what every operation goes through.
#[derive(Debug)]
struct Io {
    jobs: mpsc::Sender<Queued>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub conn: Connection,
    pub cache: LeadCache,
    pub active: Option<ActiveSet>,
    /// The active models' names in activation order, as last read.
    pub active_names: Vec<String>,
    /// Models parsed so far, by name.
    pub parsed: Arc<Mutex<Vec<ActiveModel>>>,
    /// The WAL's length in frames as the checkpointer last saw it, and when
    /// the writer last restarted the WAL.
    wal: Arc<WalLength>,
    last_restart: std::time::Instant,
    /// The open transaction holds no request's writes yet: the next request
    /// runs without a savepoint (see [`Writer::run_undoable`]).
    fresh: bool,
    /// SQLite's `data_version` when the writer last began a transaction
    /// (see [`Writer::follow_others`]).
    data_version: Option<i64>,
    /// The syncer thread's state: the writer refuses every write once a sync
    /// has failed (see [`sync_loop`]).
    durable: Arc<WalSync>,
}

/// Page cache of the writer and of each reader, in KiB: the writer touches
/// leads and index pages all over the file, the readers mostly a page or two.
///
/// The writer's cache was kept at 64 MiB because, in a file under 1 GiB,
/// many commits scanned the whole cache (with 256 MiB about a quarter of
/// the writer's time under single-event POSTs); the page cache wrapper
/// (`pcache.rs`) has ended that scan. 256 MiB measured again since, on a
/// file of 1.0-1.4 GiB (Intel Xeon host, automation off, two runs each):
/// the writer's CPU an event 5-9 % lower, wrk 5-8 % faster, the steady p99
/// no better (24.3 and 12.8 ms against 12.4 and 12.4), and the server's
/// peak memory 897-927 MiB against 683-713, too close to its 1 GiB bound.
/// Kept at 64 MiB.
const WRITER_CACHE_KIB: i64 = 65_536;
/// How long a connection waits for a lock another holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const READER_CACHE_KIB: i64 = 16_384;

fn open_conn(path: &Path, flags: OpenFlags, cache_kib: i64) -> Result<Connection> {
    pcache::install();
    walwrite::register();
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // No connection checkpoints on commit: a checkpoint copies the WAL back
    // into the file and would stall the writer (and every request waiting on
    // it) for its whole length. The checkpointer thread does it instead.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -{cache_kib}; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;"
    ))?;
    Ok(conn)
}

/// A handle on the database file for the checkpointer's syncs, one per file
/// and process, never closed: closing any descriptor of a file drops every
/// POSIX lock the process holds on it, SQLite's included (its own descriptors
/// are shared and kept for that reason), so a handle closed while another
/// connection of this process is in a transaction would let another process
/// write beside it. One descriptor per database file a process opens is
/// kept for the process's life.
fn sync_handle(path: &Path) -> Result<Arc<std::fs::File>> {
    use std::os::unix::fs::MetadataExt;
    type Handles = Mutex<HashMap<(u64, u64), Arc<std::fs::File>>>;
    static HANDLES: std::sync::OnceLock<Handles> = std::sync::OnceLock::new();
    let cannot = |e: std::io::Error| StoreError::Database(format!("cannot open {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    let key = (meta.dev(), meta.ino());
    let mut handles = HANDLES
        .get_or_init(Handles::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(file) = handles.get(&key) {
        return Ok(file.clone());
    }
    let file = Arc::new(std::fs::File::open(path).map_err(cannot)?);
    handles.insert(key, file.clone());
    Ok(file)
}

impl SqliteStore {
    /// Opens the file, creating and migrating it if needed.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            WRITER_CACHE_KIB,
        )?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "cannot use WAL mode on {}",
                path.display()
            )));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "{} has schema version {version}, newer than this leadscore knows ({SCHEMA_VERSION})",
                path.display()
            )));
        }
        if version == 1 {
            migrate_events_by_lead(&conn, path)?;
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} {RANK_INDEX} {EVENTS_SCHEMA} {} {} COMMIT;",
            crate::automation::SCHEMA,
            crate::accounts::SCHEMA
        ))?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(open_conn(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                READER_CACHE_KIB,
            )?));
        }
        let models: Arc<Mutex<Vec<ActiveModel>>> = Arc::default();
        let wal = Arc::new(WalLength::default());
        // The writer's commits leave the WAL's sync to the syncer thread
        // (see `writer_loop`); its checkpoints still sync.
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        let durable = Arc::new(WalSync::open(&conn)?);
        let mut writer = Writer {
            conn,
            cache: LeadCache::default(),
            active: None,
            active_names: Vec::new(),
            parsed: models.clone(),
            wal: wal.clone(),
            last_restart: std::time::Instant::now(),
            fresh: false,
            data_version: None,
            durable: durable.clone(),
        };
        writer.refresh_active()?;
        let (jobs, rx) = mpsc::channel::<Queued>();
        let (committed, to_sync) = mpsc::channel::<Committed>();
        let syncer_state = durable.clone();
        let syncer = std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || sync_loop(&syncer_state, &to_sync))
            .map_err(|e| StoreError::Database(format!("cannot start the syncer: {e}")))?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer_loop(&mut writer, &rx, &committed);
                // Every answer is given before the writer's connection
                // closes (closing the last connection may delete the WAL).
                drop(committed);
                let _ = syncer.join();
                drop(writer);
            })
            .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        let checkpointer = open_conn(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            READER_CACHE_KIB,
        )?;
        let db_file = sync_handle(path)?;
        let (stop_checkpoints, stopped) = mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &db_file, &stopped, &wal))
            .map_err(|e| StoreError::Database(format!("cannot start the checkpointer: {e}")))?;
        Ok(SqliteStore {
            stop_checkpoints: Some(stop_checkpoints),
            checkpointer: Some(checkpointer),
            path: path.to_owned(),
            io: Arc::new(Io {
                jobs,
                readers: Arc::new(readers),
                next_reader: AtomicUsize::new(0),
            }),
            models,
            durable,
            rescore_chunk: write::RESCORE_CHUNK,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.io.write(f).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.io.read(f).await
    }
}

impl Io {
    /// Runs `f` on the writer thread inside the next group transaction and
    /// answers once that transaction has committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.queue(f, false).await
    }

    /// Like [`Io::write`], for a write of data that is recomputed when it is
    /// lost (a rescoring's chunk: a rescoring cut off resumes at the next
    /// start and leaves the leads it finds current): it runs in a
    /// transaction of its own whose commit does not wait for the disk. Any
    /// later commit's sync makes it durable too (the WAL is written in
    /// order), so it can be lost only with the trailing writes of a crash of
    /// the machine, never before or across an ingest that was answered.
    async fn write_derived<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.queue(f, true).await
    }

    /// Like [`Io::write`], for a request that writes the same when run
    /// again on the same data (it keeps its inputs; ingest): in a group of
    /// such requests none runs in a savepoint of its own. Should one fail,
    /// the transaction is rolled back and the ones before it run again,
    /// each in a savepoint. A savepoint copies every page its request
    /// changes, as it was, into a journal in memory: under 5,000 single
    /// events a second that copying was 8 % of the writer's samples.
    async fn write_redoable<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.send(f, true, false).await
    }

    async fn queue<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
        derived: bool,
    ) -> Result<T> {
        // Never run twice: its request is not redoable.
        let mut f = Some(f);
        let once = move |w: &mut Writer| match f.take() {
            Some(f) => f(w),
            None => Err(StoreError::Database("the write ran already".into())),
        };
        self.send(once, false, derived).await
    }

    async fn send<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Writer) -> Result<T> + Send + 'static,
        redoable: bool,
        derived: bool,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(Request {
            f,
            redoable,
            tx,
            result: None,
        });
        self.jobs
            .send(Queued { job, derived })
            .map_err(|_| StoreError::Database("the database writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Database("the database writer has stopped".into()))?
    }

    /// Runs `f` on a read connection, off the async threads, inside one
    /// read transaction: all its statements see the same snapshot, and the
    /// connection's page cache stays valid from one statement to the next
    /// (each transaction that starts after a commit drops the whole cache, so
    /// without it a loop of lookups read every page afresh).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || {
            let conn = free_reader(&readers, i);
            // Dropped at the end: a read-only transaction has nothing to keep.
            let snapshot = conn.unchecked_transaction()?;
            f(&snapshot)
        })
        .await
        .map_err(|e| StoreError::Database(format!("a read failed: {e}")))?
    }
}

/// A read connection nobody holds, looking from the `i`-th on, else the
/// `i`-th once it is free. A read waits behind another only when all are
/// taken: one long read (an export, the automation's bulk reads, whose
/// threads run at a lower priority and so hold their connection longer)
/// used to hold up every read that took its turn on the same connection.
fn free_reader(readers: &[Mutex<Connection>], i: usize) -> std::sync::MutexGuard<'_, Connection> {
    let n = readers.len();
    for k in 0..n {
        match readers[(i + k) % n].try_lock() {
            Ok(conn) => return conn,
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
    readers[i].lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for SqliteStore {
    /// Waits for the checkpointer's last checkpoint, which copies what is
    /// left of the WAL into the database and empties it. Without the wait the
    /// process could end in the middle of it, leaving a WAL of a gigabyte
    /// (after heavy writes) for the next start to read back.
    fn drop(&mut self) {
        drop(self.stop_checkpoints.take());
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = checkpointer.join();
        }
    }
}

/// The WAL's length and how much of it is not yet copied into the database,
/// in frames (pages of 4 KiB), as the checkpointer last saw them.
#[derive(Debug, Default)]
struct WalLength {
    frames: AtomicI64,
    behind: AtomicI64,
}

/// Copies the WAL back into the database file every half second (more often
/// while the WAL is long), beside the writer rather than inside its commits
/// (a PASSIVE checkpoint never blocks the writer or the readers), and tells
/// the writer how long the WAL is (see `Writer::bound_wal`). Ends when the
/// store is dropped.
///
/// Under steady writes a PASSIVE checkpoint never reaches the WAL's end (new
/// frames arrive while it copies), and SQLite syncs the database file only
/// when one does: the copied pages would wait in the operating system's cache
/// for the writer's next WAL restart, which then spent a third of a second
/// writing them out while every write waited. So after each checkpoint that
/// copied something the checkpointer syncs the file itself, off the writer's
/// path, and the restart finds little left to write (10 to 85 ms, against
/// 0.3 to 0.4 s before, under 5,000 events a second).
fn checkpoint_loop(conn: &Connection, db_file: &std::fs::File, stop: &mpsc::Receiver<()>, wal: &WalLength) {
    // Behind the writer and the request threads for the CPU: its copies
    // (tens of milliseconds of memory copying each) delayed answers.
    crate::lower_this_threads_priority();
    let mut pause = std::time::Duration::from_millis(500);
    let mut synced = 0;
    // Passes made since the WAL grew past the restart length.
    let mut passes_long = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(pause) {
        let started = std::time::Instant::now();
        match wal_checkpoint(conn, "PASSIVE") {
            Ok((_, frames, copied)) => {
                let copied_at = started.elapsed();
                if copied > 0 && copied != synced {
                    if let Err(e) = db_file.sync_data() {
                        tracing::warn!(error = %e, "syncing the database file failed; it is tried again");
                    }
                    synced = copied;
                }
                tracing::debug!(
                    frames,
                    copied,
                    copy_ms = copied_at.as_secs_f64() * 1e3,
                    sync_ms = (started.elapsed() - copied_at).as_secs_f64() * 1e3,
                    "WAL checkpointed"
                );
                // Past the restart length, passes follow each other: each
                // copies what came during the one before, so each is shorter,
                // and the restart after the last has little left to copy and
                // sync while every write waits (35 ms after a single pass
                // under 5,000 events a second: the frames of its sync). Until
                // then the writer is told the checkpointer is behind.
                let long = frames > WAL_RESTART_FRAMES;
                passes_long = if long { passes_long + 1 } else { 0 };
                let settling = long && passes_long < RESTART_PASSES;
                wal.frames.store(frames, Ordering::Relaxed);
                wal.behind
                    .store(if settling { frames } else { frames - copied }, Ordering::Relaxed);
                pause = std::time::Duration::from_millis(if settling {
                    0
                } else if long {
                    50
                } else {
                    500
                });
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again"),
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Schema version 1 to 2: the events table, until then in ingest order
/// with an index by lead, is rewritten clustered by lead (see events.sql),
/// and the last seq moves to `event_seq`. One transaction: an interrupted
/// migration leaves version 1 as it was, and the next start does it again;
/// the version is read again inside it, so a file another process has just
/// upgraded is left alone. (A process of an older leadscore still writing
/// the file would fail every ingest afterwards: stop them all first.)
/// It copies every event once (about half a minute for 5,000,000).
fn migrate_events_by_lead(conn: &Connection, path: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    tracing::info!(
        file = %path.display(),
        "upgrading the database: storing events clustered by lead (once; it can take a minute)"
    );
    // Not while the old table is renamed and dropped: its rows are all
    // copied, and no table refers to events.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = (|| -> rusqlite::Result<bool> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // Another process may have upgraded the file since it was looked at.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != 1 {
            conn.execute_batch("COMMIT")?;
            return Ok(false);
        }
        conn.execute_batch(&format!(
            "ALTER TABLE events RENAME TO events_v1;
             {EVENTS_SCHEMA}
             INSERT INTO events (lead, seq, id, type, occurred_at, properties, received_at)
                 SELECT lead, seq, id, type, occurred_at, properties, received_at FROM events_v1
                 ORDER BY lead, seq;
             UPDATE event_seq SET last = (SELECT coalesce(max(seq), 0) FROM events_v1);
             DROP TABLE events_v1;
             PRAGMA user_version = 2;
             COMMIT;"
        ))?;
        Ok(true)
    })();
    if migrated.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    let migrated =
        migrated.map_err(|e| StoreError::Database(format!("cannot upgrade {}: {e}", path.display())))?;
    if !migrated {
        return Ok(());
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "upgraded the database: events are clustered by lead"
    );
    Ok(())
}

/// The answers of a group whose commit waits for a sync.
struct Committed(Vec<Reply>);

/// Runs the write requests in group transactions. A group's commit writes
/// its WAL frames without waiting for the disk (`synchronous = NORMAL`);
/// its answers go to the syncer thread, which answers them once a sync of
/// the WAL has covered that commit, while the writer goes on with the next
/// group. Under `synchronous = FULL` the writer itself waited for every
/// sync, and no request could start meanwhile: under 5,000 single events a
/// second on an Intel Xeon host the syncs were 57 % of the writer's time
/// (writer busy 85 %: the queue behind it set the p99 at 36 ms).
///
/// No answer comes before its events are on the disk, as before. What
/// changes: a reader may see a commit for the few milliseconds before its
/// sync (SQLite shows a commit to readers at once under `NORMAL`), so a
/// crash of the machine (not of the process: the operating system keeps
/// what was written) in that moment can lose a write someone has read but
/// whose client was never answered, and will retry it.
fn writer_loop(w: &mut Writer, rx: &mpsc::Receiver<Queued>, syncer: &mpsc::Sender<Committed>) {
    while let Ok(first) = rx.recv() {
        let started = std::time::Instant::now();
        // A derived write (see `Io::write_derived`) commits alone, and is
        // answered without waiting for a sync.
        let derived = first.derived;
        let mut first = first.job;
        if w.durable.failed.load(Ordering::Relaxed) {
            first.run(None, Undo::Savepoint);
            first.reply()(Err(WRITES_REFUSED.into()));
            continue;
        }
        if !w.begin() {
            first.run(None, Undo::Savepoint);
            first.reply()(Err("could not begin a transaction".into()));
            continue;
        }
        first.run(Some(&mut *w), Undo::Savepoint);
        let mut jobs = vec![first];
        while !derived && jobs.len() < GROUP {
            match rx.try_recv() {
                // SQLite may have rolled the whole transaction back itself (a
                // full disk, an I/O error): the rest must not run outside it.
                Ok(mut q) if w.conn.is_autocommit() => {
                    q.job.run(None, Undo::Savepoint);
                    jobs.push(q.job);
                }
                Ok(mut q) => {
                    w.run_in_group(&mut jobs, &mut q.job);
                    jobs.push(q.job);
                }
                Err(_) => break,
            }
        }
        let replies: Vec<Reply> = jobs.into_iter().map(WriteJob::reply).collect();
        let worked = started.elapsed();
        let commit = w.conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        tracing::debug!(
            requests = replies.len(),
            derived,
            work_ms = worked.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - worked).as_secs_f64() * 1e3,
            "group committed"
        );
        if commit.is_err() {
            let _ = w.conn.execute_batch("ROLLBACK");
            w.cache.clear();
            w.active = None;
            w.active_names.clear();
        }
        if derived || commit.is_err() {
            for reply in replies {
                reply(commit.clone());
            }
        } else if let Err(mpsc::SendError(Committed(replies))) = syncer.send(Committed(replies)) {
            // No syncer (it cannot have stopped but by a panic): these
            // commits may never be synced, so nothing more is written.
            w.durable.failed.store(true, Ordering::Relaxed);
            tracing::error!("the WAL's syncer has stopped: writes are refused until a restart");
            for reply in replies {
                reply(Err(SYNC_FAILED.into()));
            }
        }
        w.bound_wal();
    }
}

/// The answer to the writes a failed sync was to make durable: they are
/// committed, but whether the disk kept them is not known.
const SYNC_FAILED: &str = "the database's log could not be synced to the disk, so this write \
     may not be kept; writes are refused until leadscore is restarted";
/// The answer to every write after a failed sync.
const WRITES_REFUSED: &str = "writes are refused: the database's log could not be synced to \
     the disk; restart leadscore";

/// What the syncer thread shares with the writer: the WAL, and whether a
/// sync has failed.
#[derive(Debug)]
struct WalSync {
    /// The WAL's path, as SQLite resolved it (symbolic links followed).
    path: PathBuf,
    /// The WAL, open for syncing. SQLite makes the file anew only when the
    /// last connection to the database closes, and the writer's closes only
    /// after the syncer has ended (see `SqliteStore::open`), so this stays
    /// the file SQLite writes for as long as anything is synced.
    file: std::fs::File,
    /// Set for good by the first failed sync. After a failed `fsync` Linux
    /// may drop the pages it could not write and report the next sync as a
    /// success, so nothing written afterwards could be trusted to be durable.
    failed: AtomicBool,
    /// Successful syncs so far.
    syncs: AtomicU64,
    /// Makes the next sync fail, for the test of that path.
    #[cfg(test)]
    fail_next: AtomicBool,
}

impl WalSync {
    /// The WAL of the writer's connection, which is in WAL mode and has
    /// committed (so the file exists).
    fn open(conn: &Connection) -> Result<WalSync> {
        let db = conn
            .path()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| StoreError::Database("the database has no file to sync".into()))?;
        let path = PathBuf::from(format!("{db}-wal"));
        // Read-only: `fdatasync` on any descriptor of a file syncs the file.
        // (Closing it drops no lock: SQLite locks the database and its
        // `-shm` file, never the WAL.)
        let file = std::fs::File::open(&path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        Ok(WalSync {
            path,
            file,
            failed: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            #[cfg(test)]
            fail_next: AtomicBool::new(false),
        })
    }

    /// Syncs the WAL's data to the disk.
    fn sync(&self) -> std::result::Result<(), String> {
        #[cfg(test)]
        if self.fail_next.swap(false, Ordering::Relaxed) {
            return Err("an injected failure".into());
        }
        self.file
            .sync_data()
            .map_err(|e| format!("cannot sync {}: {e}", self.path.display()))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Answers the writer's groups once their commits are durable: takes every
/// group committed so far, syncs the WAL once for all of them (one sync
/// covers every frame written before it began), and answers them; the
/// groups committed meanwhile wait for the next sync. A failed sync fails
/// those groups' requests, and every write after them (see [`WalSync`]).
/// Ends when the writer does, after answering everything it was sent.
fn sync_loop(durable: &WalSync, committed: &mpsc::Receiver<Committed>) {
    while let Ok(first) = committed.recv() {
        let mut groups = vec![first];
        groups.extend(committed.try_iter());
        let started = std::time::Instant::now();
        let synced = if durable.failed.load(Ordering::Relaxed) {
            Err(WRITES_REFUSED.to_owned())
        } else {
            durable.sync().map_err(|e| {
                durable.failed.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, "syncing the WAL failed: writes are refused until a restart");
                SYNC_FAILED.to_owned()
            })
        };
        tracing::debug!(
            groups = groups.len(),
            sync_ms = started.elapsed().as_secs_f64() * 1e3,
            "WAL synced"
        );
        for Committed(replies) in groups {
            for reply in replies {
                reply(synced.clone());
            }
        }
    }
}

/// The WAL length, in frames (pages of 4 KiB), past which the writer
/// restarts it (see [`Writer::bound_wal`]): 512 MiB. The WAL grows this long
/// only under writes that never pause (any pause lets SQLite start it over
/// for free), and then every few seconds. A restart stalls writes for 10 to
/// 85 ms (it waits for the readers and syncs what the checkpointer has not),
/// but a longer WAL costs more: each commit that grows the file waits for
/// the file system to allocate it (at 5,000 events a second, commits took
/// ten times as long until the WAL, then allowed to reach 4 GiB, first
/// restarted), and every page lookup in the WAL's index grows slower.
const WAL_RESTART_FRAMES: i64 = 131_072;
/// The restart waits until the checkpointer is at most this many frames
/// (16 MiB) behind, so that the writer has little left to copy.
const WAL_RESTART_BEHIND: i64 = 4096;
/// Checkpoints in a row, once the WAL is past [`WAL_RESTART_FRAMES`], before
/// the checkpointer counts as caught up (see `checkpoint_loop`).
const RESTART_PASSES: u32 = 3;

/// Runs a checkpoint in `mode` (PASSIVE, RESTART, ...): whether it was
/// kept from finishing (busy, 0 or 1), the WAL's length in frames and how
/// many of them are copied into the database (-1 and -1 when busy).
fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// What [`restart_wal`] did (times in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Restart {
    /// The pass left `left` frames (or the checkpointer was busy): no restart.
    PutOff { pass_ms: f64, left: i64 },
    /// The restart ran after the pass; `restarted` when the next write
    /// starts the WAL over.
    Tried { pass_ms: f64, ms: f64, restarted: bool },
}

/// The writer's part of [`Writer::bound_wal`], outside any transaction: a
/// pass that copies what the checkpointer has not (waiting for no one),
/// then, when it copied everything or `forced`, the restart. Unless
/// `forced`, the restart waits for no reader either: while one still reads
/// frames of the WAL it is not restarted (`restarted` false; the next write
/// may still start it over, as SQLite does when no reader is in the WAL).
fn restart_wal(conn: &Connection, forced: bool) -> rusqlite::Result<Restart> {
    let started = std::time::Instant::now();
    let (busy, in_wal, copied) = wal_checkpoint(conn, "PASSIVE")?;
    let pass_ms = started.elapsed().as_secs_f64() * 1e3;
    // Busy: the checkpointer is in the middle of a pass.
    if (busy != 0 || copied < in_wal) && !forced {
        return Ok(Restart::PutOff {
            pass_ms,
            left: in_wal - copied,
        });
    }
    let started = std::time::Instant::now();
    let restart = if forced {
        wal_checkpoint(conn, "RESTART")
    } else {
        conn.busy_timeout(std::time::Duration::ZERO)?;
        let tried = wal_checkpoint(conn, "RESTART");
        conn.busy_timeout(BUSY_TIMEOUT)?;
        tried
    };
    let (busy, ..) = restart?;
    Ok(Restart::Tried {
        pass_ms,
        ms: started.elapsed().as_secs_f64() * 1e3,
        restarted: busy == 0,
    })
}

impl Writer {
    /// Keeps the WAL bounded under steady writes. The checkpointer copies
    /// the WAL into the database beside the writer, but SQLite starts the
    /// WAL over only when a write begins with every frame copied, which
    /// never happens while writes follow each other: the WAL would grow by
    /// gigabytes, and every page lookup in it would grow slower. So when it
    /// is past [`WAL_RESTART_FRAMES`], the checkpointer runs more often, and
    /// once it is nearly caught up the writer, between two transactions,
    /// copies what is left and makes the next write start the WAL over,
    /// reusing the file from its start. The file is not trimmed (cutting a
    /// file of gigabytes stalls the next commit); the checkpoint at shutdown
    /// empties it. Tried at most once a second.
    ///
    /// The writer copies what is left with a pass that waits for no one.
    /// When a reader still reads frames older than the WAL's end, that pass
    /// cannot copy them, and the restart would wait for the reader and then
    /// copy them, with every write held up behind it (15-36 ms more than the
    /// pass, AMD EPYC host, under 5,000 single events a second): the restart
    /// is put off to the next try instead, unless the WAL is past half as
    /// long again, where it restarts whatever it waits for. After a pass
    /// that copied everything the restart waits for no reader either: a
    /// reader of a snapshot the WAL still holds (the automation's bulk reads,
    /// at the lowest priority, last tens of milliseconds) held every write
    /// behind it for 33-40 ms (AMD EPYC host, under 5,000 single events a
    /// second); it is tried again a second later.
    fn bound_wal(&mut self) {
        if self.last_restart.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        let frames = self.wal.frames.load(Ordering::Relaxed);
        let caught_up = self.wal.behind.load(Ordering::Relaxed) <= WAL_RESTART_BEHIND;
        // Past half as long again the WAL is restarted however far behind
        // the checkpointer is: its length stays bounded whatever the load.
        let forced = frames > WAL_RESTART_FRAMES * 3 / 2;
        if frames <= WAL_RESTART_FRAMES || !(caught_up || forced) {
            return;
        }
        self.last_restart = std::time::Instant::now();
        match restart_wal(&self.conn, forced) {
            Ok(Restart::PutOff { pass_ms, left }) => tracing::debug!(
                pass_ms,
                left,
                "WAL restart put off: the checkpointer, or a reader of frames the pass could not copy, was busy"
            ),
            Ok(Restart::Tried {
                pass_ms,
                ms,
                restarted,
            }) => {
                if restarted {
                    self.wal.frames.store(0, Ordering::Relaxed);
                }
                tracing::debug!(pass_ms, ms, restarted, forced, "WAL checkpointed to restart it");
            }
            Err(e) => tracing::warn!(error = %e, "WAL restart failed; it is tried again"),
        }
    }

    /// Begins the group's transaction and follows the active models; false
    /// (and no transaction open) when either fails.
    fn begin(&mut self) -> bool {
        let begun = self.conn.execute_batch("BEGIN IMMEDIATE").is_ok()
            && self.follow_others().is_ok()
            && self.refresh_active().is_ok();
        if !begun {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.fresh = begun;
        begun
    }

    /// Runs one request so that, failing, it is undone alone. The first
    /// request of a transaction runs without a savepoint: undoing it is
    /// rolling the whole transaction back (and beginning another for the
    /// requests after it). Inside a savepoint SQLite copies every page a
    /// request changes, as it was, into a journal in memory, at its first
    /// change: 5-6 % of the writer's CPU in an activation's chunks (tens of
    /// thousands of pages each).
    ///
    /// With `Undo::Redo` (a request after others that can all run again) it
    /// runs without a savepoint, and a failure leaves the transaction to be
    /// rolled back by the caller (see [`Writer::run_in_group`]).
    fn run_undoable<T>(&mut self, f: impl FnOnce(&mut Writer) -> Result<T>, undo: Undo) -> Result<T> {
        let alone = std::mem::take(&mut self.fresh);
        let savepoint = !alone && undo == Undo::Savepoint;
        if savepoint {
            self.conn.execute_batch("SAVEPOINT job")?;
        }
        self.cache.trim();
        self.cache.begin();
        // A panic inside one request must not take the writer thread (and so
        // every later write) down with it: it fails that request alone.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))).unwrap_or_else(|_| {
                Err(StoreError::Database(
                    "an internal error stopped this write; nothing was changed".into(),
                ))
            });
        match outcome {
            Ok(v) if !savepoint => Ok(v),
            Ok(v) => {
                self.conn.execute_batch("RELEASE job")?;
                Ok(v)
            }
            Err(e) => {
                // The entries this write changed may hold what is undone.
                self.cache.undo();
                if alone {
                    // Nothing but this request is in the transaction. The
                    // requests after it in the group get one of their own
                    // (none, if it cannot begin: see `writer_loop`).
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.begin();
                } else if savepoint {
                    let _ = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
                }
                // Else the caller rolls back the whole transaction.
                Err(e)
            }
        }
    }

    /// Runs `job`, queued after `done` in this group's transaction. When it
    /// and every request of the transaction before it can run again, it
    /// runs without a savepoint, and if it fails the transaction is rolled
    /// back and those requests run again, each in a savepoint (the writes
    /// of the failed one are gone with the rest).
    fn run_in_group(&mut self, done: &mut [Job], job: &mut Job) {
        let redo = !self.fresh && job.redoable() && done.iter().all(|j| j.redoable());
        if job.run(Some(self), if redo { Undo::Redo } else { Undo::Savepoint }) || !redo {
            return;
        }
        let _ = self.conn.execute_batch("ROLLBACK");
        // The cache may hold what the rolled-back requests wrote.
        self.cache.clear();
        if !self.begin() {
            for j in done {
                j.run(None, Undo::Savepoint);
            }
            return;
        }
        tracing::debug!(
            requests = done.len(),
            "a request failed; the ones before it in its group run again"
        );
        for j in done {
            j.run(Some(self), Undo::Savepoint);
        }
    }

    /// Stops trusting what the cache knows of the lead rows when another
    /// connection (another process: this one's readers never write) has
    /// committed since the writer last looked. SQLite's `data_version`
    /// changes with every commit but the connection's own.
    fn follow_others(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version != Some(version) {
            if self.data_version.is_some() {
                tracing::debug!("another connection wrote the database; the writer reads its rows again");
            }
            self.cache.forget_rows();
            self.data_version = Some(version);
        }
        Ok(())
    }

    /// Follows the active models in the database (another process may change them).
    fn refresh_active(&mut self) -> Result<()> {
        let names = read::active_names(&self.conn)?;
        if self.active.is_some() && names == self.active_names {
            return Ok(());
        }
        self.active = read::models_named(&self.conn, &self.parsed, &names)?;
        self.active_names = names;
        Ok(())
    }
}

/// Finds the model a stored score names, for its explanation's rule ids and
/// labels (see [`crate::rescore::read_stored`]): parsed once per store, its
/// text read from this connection the first time.
#[derive(Clone, Copy)]
pub(crate) struct Models<'a> {
    pub conn: &'a Connection,
    pub parsed: &'a Mutex<Vec<ActiveModel>>,
}

impl Models<'_> {
    /// The model named `name`; `None` when there is none, or its text no
    /// longer parses (said in the log). A failed read is an error.
    fn get(&self, name: &str) -> rusqlite::Result<Option<ActiveModel>> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = parsed.iter().find(|m| &*m.name == name) {
            return Ok(Some(m.clone()));
        }
        let toml: Option<String> = self
            .conn
            .prepare_cached("SELECT toml FROM models WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(toml) = toml else { return Ok(None) };
        match ActiveModel::parse(name, &toml) {
            Ok(m) => {
                parsed.push(m.clone());
                Ok(Some(m))
            }
            Err(e) => {
                tracing::warn!(model = name, error = %e, "a stored model does not parse");
                Ok(None)
            }
        }
    }
}

pub(crate) fn lead_from_row(r: &Row, models: Models) -> rusqlite::Result<LeadRecord> {
    let mut values: [Option<String>; 15] = Default::default();
    for (i, v) in values.iter_mut().enumerate() {
        *v = r.get(i)?;
    }
    let lead = crate::leads::lead_from_columns(values, r.get::<_, Option<String>>(15)?.as_deref());
    let text: Option<String> = r.get(20)?;
    // A failed read of the model fails the read; a score that cannot be
    // read (no such model, a bad text) is served as none, as before.
    let mut failed = None;
    let score = text.and_then(|text| {
        let model = |name: &str| match models.get(name) {
            Ok(found) => found,
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        crate::rescore::read_stored(&text, model)
            .inspect_err(|e| tracing::warn!(error = %e, "a stored score cannot be read"))
            .ok()
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(LeadRecord {
        lead,
        owner: r.get(16)?,
        created_at: Timestamp::from_micros(r.get(17)?),
        updated_at: Timestamp::from_micros(r.get(18)?),
        version: r.get(19)?,
        score,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn write_leads(
        &self,
        leads: Vec<NewLead>,
        on_conflict: OnConflict,
        now: Timestamp,
    ) -> Result<Vec<LeadWrite>> {
        self.write(move |w| {
            leads
                .into_iter()
                .map(|l| w.write_lead(l, on_conflict, now))
                .collect()
        })
        .await
    }

    async fn get_lead(&self, id: &str) -> Result<Option<LeadRecord>> {
        let id = id.to_owned();
        let models = self.models.clone();
        self.read(move |c| read::lead(c, &models, &id)).await
    }

    async fn get_leads(&self, ids: &[String]) -> Result<HashMap<String, LeadRecord>> {
        let ids = ids.to_vec();
        let models = self.models.clone();
        self.read(move |c| read::leads(c, &models, &ids)).await
    }

    async fn update_lead(&self, id: &str, patch: LeadPatch, now: Timestamp) -> Result<Option<LeadRecord>> {
        let id = id.to_owned();
        self.write(move |w| w.update_lead(&id, &patch, now)).await
    }

    async fn delete_lead(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |w| {
            w.cache.remove(&id);
            Ok(w.conn.execute("DELETE FROM leads WHERE id = ?1", [&id])? > 0)
        })
        .await
    }

    async fn list_leads(&self, query: &LeadQuery) -> Result<(Vec<LeadRecord>, Option<Cursor>)> {
        let query = query.clone();
        let models = self.models.clone();
        self.read(move |c| read::list(c, &models, &query)).await
    }

    async fn lead_events(&self, id: &str) -> Result<Vec<Event>> {
        let id = id.to_owned();
        self.read(move |c| read::events(c, &id)).await
    }

    async fn leads_events(&self, ids: &[String]) -> Result<HashMap<String, Vec<Event>>> {
        let ids = ids.to_vec();
        self.read(move |c| read::leads_events(c, &ids)).await
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let id = id.to_owned();
        self.read(move |c| read::history(c, &id)).await
    }

    async fn ingest(&self, events: Vec<Event>, now: Timestamp) -> Result<Vec<IngestStatus>> {
        self.io.write_redoable(move |w| w.ingest(&events, now)).await
    }

    async fn put_model(&self, name: &str, toml: &str, now: Timestamp) -> Result<PutModel> {
        let (name, toml) = (name.to_owned(), toml.to_owned());
        self.write(move |w| {
            let existing: Option<String> = {
                let mut stmt = w.conn.prepare_cached("SELECT toml FROM models WHERE name = ?1")?;
                let mut rows = stmt.query([&name])?;
                rows.next()?.map(|r| r.get(0)).transpose()?
            };
            Ok(match existing {
                Some(t) if t == toml => PutModel::Unchanged,
                Some(_) => PutModel::NameTaken,
                None => {
                    w.conn.execute(
                        "INSERT INTO models (name, toml, created_at) VALUES (?1, ?2, ?3)",
                        rusqlite::params![name, toml, now.as_micros()],
                    )?;
                    PutModel::Created
                }
            })
        })
        .await
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>> {
        self.read(|c| read::models(c, None)).await
    }

    async fn get_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        let name = name.to_owned();
        self.read(move |c| Ok(read::models(c, Some(&name))?.pop())).await
    }

    async fn active_model(&self) -> Result<Option<ActiveSet>> {
        let models = self.models.clone();
        self.read(move |c| read::active_model(c, &models)).await
    }

    async fn activate_model(&self, name: &str, now: Timestamp, alongside: bool) -> Result<Timestamp> {
        let name = name.to_owned();
        self.write(move |w| {
            let latest: Option<i64> = w
                .conn
                .query_row("SELECT max(activated_at) FROM models", [], |r| r.get(0))?;
            let at = crate::activation_time(now, latest);
            let found = w.conn.execute(
                "UPDATE models SET active = 1, activated_at = ?2, rescore = NULL WHERE name = ?1",
                rusqlite::params![name, at.as_micros()],
            )?;
            if found == 0 {
                return Err(StoreError::NotFound(format!("model `{name}`")));
            }
            if alongside {
                // The progress of the rescoring that follows is the set's.
                w.conn
                    .execute("UPDATE models SET rescore = NULL WHERE active = 1", [])?;
            } else {
                w.conn
                    .execute("UPDATE models SET active = 0 WHERE name <> ?1", [&name])?;
            }
            w.refresh_active()?;
            Ok(at)
        })
        .await
    }

    async fn rescore_all(&self, now: Timestamp, progress: Progress) -> Result<u64> {
        let total: u64 = self
            .read(|c| Ok(c.query_row("SELECT count(*) FROM leads", [], |r| r.get::<_, i64>(0))? as u64))
            .await?;
        let chunk = self.rescore_chunk;
        let many = total > chunk as u64;
        if many {
            self.write(|w| w.set_rank_index(false)).await?;
        }
        let mut after = String::new();
        let mut done = 0u64;
        let rescored: Result<()> = async {
            loop {
                let from = after.clone();
                let (n, last) = self
                    .io
                    .write_derived(move |w| w.rescore_chunk(&from, chunk, now, done, total))
                    .await?;
                done += n;
                progress(done.min(total), total);
                match last {
                    Some(last) => after = last,
                    None => return Ok(()),
                }
            }
        }
        .await;
        // Built again even when the rescoring failed, and by every rescoring
        // (a no-op when it is there): one cut off by a newer activation left
        // it to the newer one, which may be of a single chunk. In a job of
        // its own, before the end is recorded (so that no one sees the
        // rescoring finished without it), and kept if recording fails.
        let rebuilt = self.write(|w| w.set_rank_index(true)).await;
        rescored?;
        rebuilt?;
        self.write(move |w| w.record_rescore(done, done.max(total), true, now))
            .await?;
        Ok(done)
    }

    async fn create_token(&self, token: TokenRecord) -> Result<()> {
        self.write(move |w| {
            w.conn.execute(
                "INSERT INTO tokens (hash, role, user_name, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![token.hash, token.role, token.user, token.created_at.as_micros()],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| read::token(c, &hash)).await
    }

    async fn counts(&self) -> Result<(u64, u64)> {
        self.read(|c| {
            let leads: i64 = c.query_row("SELECT count(*) FROM leads", [], |r| r.get(0))?;
            let events: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            Ok((leads as u64, events as u64))
        })
        .await
    }
    async fn workflows(&self, ids: &[String]) -> Result<HashMap<String, WorkflowRecord>> {
        let ids = ids.to_vec();
        self.read(move |c| workflow::workflows(c, &ids)).await
    }

    async fn lead_bundle(&self, ids: &[String]) -> Result<crate::LeadBundle> {
        let ids = ids.to_vec();
        let models = self.models.clone();
        self.read(move |c| {
            Ok(crate::LeadBundle {
                active: read::active_model(c, &models)?,
                records: read::leads(c, &models, &ids)?,
                events: read::leads_events(c, &ids)?,
                workflows: workflow::workflows(c, &ids)?,
                states: {
                    let (sql, args) = crate::automation::states_query(false, &ids);
                    crate::automation::states_from(automation::query(c, &sql, args)?)?
                },
            })
        })
        .await
    }

    async fn save_workflow(&self, lead: &str, rev: i64, wf: &Workflow, save: WorkflowSave) -> Result<bool> {
        let (lead, wf) = (lead.to_owned(), wf.clone());
        self.write(move |w| workflow::save_workflow(&w.conn, &lead, rev, &wf, &save))
            .await
    }

    async fn init_workflows(&self, items: Vec<(String, Workflow)>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.write(move |w| workflow::init_workflows(&w.conn, &items))
            .await
    }

    async fn put_predictive(&self, name: &str, body: &str, metrics: &str, now: Timestamp) -> Result<()> {
        let (name, body, metrics) = (name.to_owned(), body.to_owned(), metrics.to_owned());
        self.write(move |w| {
            w.conn.execute("UPDATE predictive_models SET active = 0 WHERE active = 1", [])?;
            w.conn.execute(
                "INSERT INTO predictive_models (name, body, metrics, created_at, active) VALUES (?1, ?2, ?3, ?4, 1) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, metrics = excluded.metrics, \
                 created_at = excluded.created_at, active = 1",
                rusqlite::params![name, body, metrics, now.as_micros()],
            )?;
            Ok(())
        })
        .await
    }

    async fn active_predictive(&self) -> Result<Option<(String, String, String)>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT name, body, metrics FROM predictive_models WHERE active = 1")?
                    .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?,
            )
        })
        .await
    }

    async fn lead_log(&self, lead: &str) -> Result<Vec<LogEntry>> {
        let lead = lead.to_owned();
        self.read(move |c| workflow::lead_log(c, &lead)).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        let query = query.clone();
        self.read(move |c| workflow::list_tasks(c, &query)).await
    }

    async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        let id = id.to_owned();
        self.read(move |c| workflow::get_task(c, &id)).await
    }

    async fn save_task(&self, task: &Task, log: LogEntry) -> Result<bool> {
        let task = task.clone();
        self.write(move |w| workflow::save_task(&w.conn, &task, &log))
            .await
    }

    async fn refresh_scores(&self, ids: &[String], now: Timestamp) -> Result<()> {
        let ids = ids.to_vec();
        self.write(move |w| w.refresh(&ids, now)).await
    }

    async fn warm_up(&self) -> Result<Option<(u64, u64)>> {
        let filled = self.write(|w| w.fill_cache()).await?;
        // After the filling's memory is freed, in a job of its own.
        self.write(|_| {
            write::settle_allocator();
            Ok(())
        })
        .await?;
        Ok(filled)
    }

    fn automation(&self) -> crate::automation::Automation {
        crate::automation::Automation::new(self.io.clone())
    }

    fn accounts(&self) -> crate::accounts::Accounts {
        crate::accounts::Accounts::new(self.io.clone())
    }

    fn stats(&self) -> crate::stats::Stats {
        crate::stats::Stats::new(self.io.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::{SqliteStore, free_reader, sync_handle};
    use crate::StoreError;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// The writer's WAL restart: while a reader still reads frames the
    /// writer's pass cannot copy, it is put off (the reader's snapshot and
    /// the writes go on); forced, it is tried (and, with the reader still
    /// there, does not restart); once the reader is gone it restarts, and
    /// the next write starts the WAL over.
    #[test]
    fn a_wal_restart_waits_for_no_reader_unless_forced() {
        use super::{Restart, restart_wal};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO t SELECT randomblob(3000) FROM n;",
            )
            .unwrap();
        let reader = rusqlite::Connection::open(&path).unwrap();
        let count = |c: &rusqlite::Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
        };
        reader.execute_batch("BEGIN").unwrap();
        assert_eq!(count(&reader), 100);
        // Frames after the reader's snapshot.
        writer
            .execute_batch("INSERT INTO t VALUES (randomblob(3000))")
            .unwrap();
        match restart_wal(&writer, false).unwrap() {
            Restart::PutOff { left, .. } => assert!(left > 0, "{left}"),
            other => panic!("not put off: {other:?}"),
        }
        writer
            .execute_batch("INSERT INTO t VALUES (randomblob(3000))")
            .unwrap();
        assert_eq!(count(&reader), 100, "the reader keeps its snapshot");
        // Forced, it waits for the reader: here for 50 ms, in vain.
        writer.busy_timeout(std::time::Duration::from_millis(50)).unwrap();
        match restart_wal(&writer, true).unwrap() {
            Restart::Tried { restarted, .. } => assert!(!restarted),
            other => panic!("not tried: {other:?}"),
        }
        reader.execute_batch("COMMIT").unwrap();
        // A reader of the WAL's last snapshot: the pass copies everything,
        // and the restart, unforced, does not wait for that reader.
        // (It ends its read 0.3 s later: a restart that waited for it, as
        // forced ones do, would restart.)
        writer.busy_timeout(std::time::Duration::from_secs(60)).unwrap();
        let (began, begun) = std::sync::mpsc::channel();
        let reading = std::thread::spawn(move || {
            reader.execute_batch("BEGIN").unwrap();
            assert_eq!(count(&reader), 102);
            began.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            reader.execute_batch("COMMIT").unwrap();
            reader
        });
        begun.recv().unwrap();
        match restart_wal(&writer, false).unwrap() {
            Restart::Tried { restarted, .. } => assert!(!restarted),
            other => panic!("not tried: {other:?}"),
        }
        let reader = reading.join().unwrap();
        match restart_wal(&writer, false).unwrap() {
            Restart::Tried { restarted, .. } => assert!(restarted),
            other => panic!("not tried: {other:?}"),
        }
        // The next write starts the WAL over: it holds that write's frames alone.
        writer
            .execute_batch("INSERT INTO t VALUES (randomblob(3000))")
            .unwrap();
        let (_, frames, _) = super::wal_checkpoint(&writer, "PASSIVE").unwrap();
        assert!((1..=4).contains(&frames), "{frames} frames in the WAL");
        assert_eq!(count(&reader), 103);
    }

    /// `LEAD_SELECT_LEN` counts `LEAD_SELECT`'s columns (the queries that
    /// read more after them start there).
    #[test]
    fn the_lead_columns_are_counted() {
        assert_eq!(super::LEAD_SELECT.split(',').count(), super::LEAD_SELECT_LEN);
        assert_eq!(super::LEAD_DATA_SELECT.split(',').count(), super::LEAD_SELECT_LEN);
    }

    /// A read takes a connection nobody holds, whichever its turn, and waits
    /// for its turn's connection only when all are taken.
    #[test]
    fn a_read_takes_a_free_connection_before_waiting_for_a_busy_one() {
        // Each connection knows its place (as its user_version).
        let readers: Vec<std::sync::Mutex<rusqlite::Connection>> = (0..3)
            .map(|k| {
                // As every connection leadscore opens (see `open_conn`).
                super::pcache::install();
                let c = rusqlite::Connection::open_in_memory().unwrap();
                c.pragma_update(None, "user_version", k).unwrap();
                std::sync::Mutex::new(c)
            })
            .collect();
        let place = |c: &rusqlite::Connection| -> i64 {
            c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
        };
        assert_eq!(place(&free_reader(&readers, 1)), 1);
        let held = readers[1].lock().unwrap();
        let next = free_reader(&readers, 1);
        assert_eq!(place(&next), 2);
        let last = free_reader(&readers, 1);
        assert_eq!(place(&last), 0);
        // All taken: it waits for its turn's, and gets it once it is free.
        let waiting = std::thread::scope(|s| {
            let t = s.spawn(|| place(&free_reader(&readers, 1)));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!t.is_finished());
            drop(held);
            t.join().unwrap()
        });
        assert_eq!(waiting, 1);
        drop((next, last));
    }

    /// A write is answered only after a sync of the WAL that began after
    /// its commit; a derived write (a rescoring's chunk) waits for none.
    /// Every commit leaves the sync to the syncer thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_answered_after_the_wal_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let io = store.io.clone();
        // The syncs counted while the write ran, and its sync level (1 is NORMAL).
        let syncs_then = |w: &mut super::Writer| -> crate::Result<(u64, i64)> {
            let level = w.conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            Ok((w.durable.syncs.load(Ordering::SeqCst), level))
        };
        for _ in 0..20 {
            let (then, level) = io.write(syncs_then).await.unwrap();
            assert_eq!(level, 1);
            let now = store_syncs(&store);
            assert!(now > then, "answered after {now} syncs, written after {then}");
        }
        // Derived writes are answered at their commit: with no other write
        // under way, no sync happens for them.
        let before = store_syncs(&store);
        for _ in 0..5 {
            io.write_derived(syncs_then).await.unwrap();
        }
        assert_eq!(store_syncs(&store), before);
    }

    /// Requests that can run again share their group's transaction without
    /// savepoints; when one fails, the transaction is rolled back, the ones
    /// before it run again (in savepoints), its own writes are gone, and
    /// every other request is answered with its own outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_request_among_redoable_ones_is_undone_alone() {
        use std::sync::atomic::AtomicUsize;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let io = store.io.clone();
        io.write(|w| Ok(w.conn.execute_batch("CREATE TABLE scratch (x TEXT)")?))
            .await
            .unwrap();
        // The first request holds the writer until the others are queued,
        // so that they all run in its group.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let mut held = Some(held);
        let first = tokio::spawn({
            let io = io.clone();
            async move {
                io.write_redoable(move |_| {
                    if let Some(held) = held.take() {
                        held.recv().unwrap();
                    }
                    Ok(())
                })
                .await
            }
        });
        let runs = Arc::new(AtomicUsize::new(0));
        let insert = |x: &'static str, fail: bool| {
            let (io, runs) = (io.clone(), runs.clone());
            tokio::spawn(async move {
                io.write_redoable(move |w| {
                    if x == "a" {
                        runs.fetch_add(1, Ordering::SeqCst);
                    }
                    w.conn.execute("INSERT INTO scratch VALUES (?1)", [x])?;
                    if fail {
                        return Err(StoreError::Invalid(format!("{x} fails")));
                    }
                    Ok(x)
                })
                .await
            })
        };
        let a = insert("a", false);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let b = insert("b", true);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let c = insert("c", false);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(a.await.unwrap().unwrap(), "a");
        assert!(matches!(b.await.unwrap(), Err(StoreError::Invalid(m)) if m == "b fails"));
        assert_eq!(c.await.unwrap().unwrap(), "c");
        // `a` ran twice: first without a savepoint, then again after `b`
        // failed and the transaction was rolled back.
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let rows = io
            .write(|w| {
                let mut stmt = w.conn.prepare("SELECT x FROM scratch ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, ["a", "c"]);
    }

    /// A database reached through a symbolic link: SQLite keeps the WAL
    /// beside the file the link names, and that WAL is the one synced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_behind_a_symbolic_link_syncs_the_wal_sqlite_writes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let real = dir.path().join("data").join("real.db");
        drop(SqliteStore::open(&real).unwrap());
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let store = SqliteStore::open(&link).unwrap();
        assert!(
            store.durable.path.ends_with("data/real.db-wal"),
            "{}",
            store.durable.path.display()
        );
        let before = store_syncs(&store);
        store
            .io
            .write(|w: &mut super::Writer| -> crate::Result<()> {
                w.conn.execute_batch("PRAGMA application_id = 7")?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(store_syncs(&store) > before);
        assert!(!dir.path().join("link.db-wal").exists());
    }

    fn store_syncs(store: &SqliteStore) -> u64 {
        store.durable.syncs.load(Ordering::SeqCst)
    }

    /// A failed sync fails the writes it was to make durable (committed,
    /// but perhaps not kept: the answer says so), and every write after it
    /// is refused without being made; reads go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_fails_its_writes_and_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let io = store.io.clone();
        let write = |n: i64| {
            move |w: &mut super::Writer| -> crate::Result<()> {
                w.conn.execute_batch(&format!("PRAGMA application_id = {n}"))?;
                Ok(())
            }
        };
        let version = || async {
            io.read(|c| Ok(c.query_row("PRAGMA application_id", [], |r| r.get::<_, i64>(0))?))
                .await
                .unwrap()
        };
        io.write(write(10)).await.unwrap();
        store.durable.fail_next.store(true, Ordering::SeqCst);
        let e = io.write(write(11)).await.unwrap_err().to_string();
        assert!(
            e.contains("could not be synced") && e.contains("may not be kept"),
            "{e}"
        );
        assert_eq!(version().await, 11);
        for n in 12..15 {
            let e = io.write(write(n)).await.unwrap_err().to_string();
            assert!(e.contains("writes are refused") && e.contains("restart"), "{e}");
        }
        let e = io.write_derived(write(15)).await.unwrap_err().to_string();
        assert!(e.contains("writes are refused"), "{e}");
        assert_eq!(version().await, 11);
    }

    /// The first request of a group runs without a savepoint: failing, it is
    /// undone by rolling the transaction back, and the requests queued behind
    /// it in the same group still run and are committed; a failing request
    /// later in a group is undone alone, by its savepoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_request_is_undone_alone_wherever_it_is_in_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let io = store.io.clone();
        io.write(|w| {
            w.conn.execute("CREATE TABLE marks (name TEXT PRIMARY KEY)", [])?;
            Ok(())
        })
        .await
        .unwrap();
        let mark = |name: &'static str, fail: bool| {
            let io = io.clone();
            async move {
                io.write(move |w| {
                    w.conn.execute("INSERT INTO marks (name) VALUES (?1)", [name])?;
                    if fail {
                        return Err(StoreError::Database(format!("{name} fails")));
                    }
                    Ok(())
                })
                .await
            }
        };
        // The first request holds the writer until the others are queued, so
        // that they join its group; then it fails, after writing.
        let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let io = io.clone();
            tokio::spawn(async move {
                io.write(move |w| {
                    w.conn.execute("INSERT INTO marks (name) VALUES ('first')", [])?;
                    queued_rx.recv().unwrap();
                    Err::<(), _>(StoreError::Database("first fails".into()))
                })
                .await
            })
        };
        // Until the writer runs the first request, it is not in its group.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let rest = [
            tokio::spawn(mark("second", false)),
            tokio::spawn(mark("third", true)),
            tokio::spawn(mark("fourth", false)),
        ];
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        queued_tx.send(()).unwrap();
        assert!(first.await.unwrap().is_err());
        let answers = succeeded(rest).await;
        assert_eq!(answers, [true, false, true]);
        let names: Vec<String> = io
            .read(|c| {
                let mut stmt = c.prepare("SELECT name FROM marks ORDER BY name")?;
                let names = stmt.query_map([], |r| r.get(0))?;
                Ok(names.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(names, ["fourth", "second"]);
    }

    /// A rescoring of more leads than one chunk drops the sort by score
    /// while it runs and builds it again at its end; one of a single chunk
    /// keeps it, and builds it when an earlier rescoring, cut off, left it
    /// dropped. Either way the list by score comes out in order, and each
    /// lead holds its own score (a chunk is scored in parts, each written
    /// while the next is scored).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_rescoring_builds_the_rank_index_again_at_its_end() {
        use crate::{LeadQuery, NewLead, OnConflict, Store};
        use leadscore_core::{Lead, ScoringModel, StdField, Timestamp};
        const MODEL: &str = include_str!("../../../leadscore-core/tests/fixtures/spec-model.toml");
        const LEADS: usize = 2_500;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
        let titles = ["CEO", "Intern", "VP Sales", "Analyst", "Founder"];
        let leads: Vec<NewLead> = (0..LEADS)
            .map(|i| NewLead {
                lead: Lead::new(format!("L{i:04}"))
                    .with(StdField::JobTitle, titles[i % titles.len()])
                    .with(StdField::Employees, (i % 7 * 150).to_string())
                    .with(StdField::Industry, if i % 3 == 0 { "Travel" } else { "Retail" }),
                owner: None,
            })
            .collect();
        let ids: Vec<String> = leads.iter().map(|l| l.lead.id().to_owned()).collect();
        store.write_leads(leads, OnConflict::Refuse, now).await.unwrap();
        let indexed = {
            let path = path.clone();
            move || {
                let c = rusqlite::Connection::open(&path).unwrap();
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'leads_by_rank'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                    == 1
            }
        };
        let cases = [
            ("first", "15", 1_200, false, false),
            ("second", "14", 5_000, true, false),
            ("third", "13", 5_000, false, true),
        ];
        for (name, points, chunk, during, cut_off_before) in cases {
            if cut_off_before {
                // As a rescoring stopped by a newer activation leaves it.
                store.io.write(|w| w.set_rank_index(false)).await.unwrap();
            }
            store.rescore_chunk = chunk;
            let toml = MODEL.replace("points = 15", &format!("points = {points}"));
            store.put_model(name, &toml, now).await.unwrap();
            // Each later than the one before (all asked for at `now`).
            let at = store.activate_model(name, now, false).await.unwrap();
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let (log, look) = (seen.clone(), indexed.clone());
            let n = store
                .rescore_all(at, Arc::new(move |_, _| log.lock().unwrap().push(look())))
                .await
                .unwrap();
            assert_eq!(n, LEADS as u64);
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen, vec![during; LEADS.div_ceil(chunk)], "{name}");
            assert!(indexed(), "{name}");
            // The build's own temp_store is undone: every other statement
            // keeps its temporary data in memory (2).
            let temp_store = store
                .io
                .write(|w| {
                    Ok(w.conn
                        .query_row("PRAGMA temp_store", [], |r| r.get::<_, i64>(0))?)
                })
                .await
                .unwrap();
            assert_eq!(temp_store, 2, "{name}");
            // The first page (a page is at most 1,000 leads).
            let query = LeadQuery {
                limit: 1_000,
                ..LeadQuery::default()
            };
            let (listed, _) = store.list_leads(&query).await.unwrap();
            let scores: Vec<f64> = listed.iter().map(|r| r.score.as_ref().unwrap().score).collect();
            assert_eq!(scores.len(), 1_000);
            assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{name}");
            assert!(scores.first() > scores.last(), "{name}");
            let engine = ScoringModel::from_toml(&toml, name).unwrap();
            let stored = store.get_leads(&ids).await.unwrap();
            for id in &ids {
                let record = &stored[id];
                let score = record.score.as_ref().unwrap();
                let fresh = engine.score(&record.lead, &[], at);
                assert_eq!((score.model.as_ref(), score.score), (name, fresh.score), "{id}");
            }
        }
    }

    /// Scores are stored compact (the explanation without the rules' ids
    /// and labels): a store that has not seen the model yet finds it by the
    /// name the score gives, and a score stored whole by an earlier version
    /// reads as before.
    #[tokio::test]
    async fn compact_and_whole_stored_scores_read_the_same() {
        use crate::{NewLead, OnConflict, Store};
        use leadscore_core::{Lead, StdField, Timestamp};
        const MODEL: &str = include_str!("../../../leadscore-core/tests/fixtures/spec-model.toml");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();
        let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
        store.put_model("spec", MODEL, now).await.unwrap();
        let at = store.activate_model("spec", now, false).await.unwrap();
        store.rescore_all(at, Arc::new(|_, _| {})).await.unwrap();
        let lead = Lead::new("L1")
            .with(StdField::JobTitle, "VP Sales")
            .with(StdField::Industry, "Software");
        let new = NewLead { lead, owner: None };
        store
            .write_leads(vec![new], OnConflict::Refuse, now)
            .await
            .unwrap();
        let read = store.get_lead("L1").await.unwrap().unwrap();
        let score = read.score.clone().unwrap();
        assert!(
            score
                .breakdown
                .iter()
                .any(|e| e.rule == "decision_maker" && e.label != e.rule)
        );
        let c = rusqlite::Connection::open(&path).unwrap();
        let text = || -> String {
            c.query_row("SELECT score_json FROM leads WHERE id = 'L1'", [], |r| r.get(0))
                .unwrap()
        };
        let compact = text();
        assert!(
            compact.contains("\"parts\"") && !compact.contains("decision_maker"),
            "{compact}"
        );
        drop(store);
        let other = SqliteStore::open(&path).unwrap();
        // Opening parsed the active model: forgotten, it is read by name.
        other.models.lock().unwrap().clear();
        assert_eq!(
            other.get_lead("L1").await.unwrap().unwrap().score,
            Some(score.clone())
        );
        let whole = serde_json::to_string(&score).unwrap();
        c.execute("UPDATE leads SET score_json = ?1 WHERE id = 'L1'", [&whole])
            .unwrap();
        assert_eq!(text(), whole);
        let listed = other.list_leads(&crate::LeadQuery::default()).await.unwrap().0;
        assert_eq!(listed[0].score, Some(score));
    }

    /// Which of the requests succeeded, in order.
    async fn succeeded<const N: usize>(
        handles: [tokio::task::JoinHandle<crate::Result<()>>; N],
    ) -> Vec<bool> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap().is_ok());
        }
        out
    }

    #[test]
    fn one_sync_handle_per_file_kept_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let first = sync_handle(&a).unwrap();
        assert!(
            Arc::ptr_eq(&first, &sync_handle(&a).unwrap()),
            "the same file, the same handle"
        );
        assert!(!Arc::ptr_eq(&first, &sync_handle(&b).unwrap()));
        // A new file at the same path is another file: it gets its own handle
        // (and the old one stays open).
        std::fs::remove_file(&a).unwrap();
        std::fs::write(&a, b"new").unwrap();
        let second = sync_handle(&a).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        first.sync_data().unwrap();
        assert!(sync_handle(&dir.path().join("missing.db")).is_err());
    }
}
