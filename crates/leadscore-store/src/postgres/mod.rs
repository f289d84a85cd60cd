//! The PostgreSQL adapter, for one or more server instances sharing a database.
//!
//! Every write runs in its own transaction on a pooled connection. A
//! transaction that rescores leads first locks their rows (`FOR NO KEY
//! UPDATE`, in id order, so two writers never deadlock and event inserts,
//! which only take key-share locks, are not blocked), then reads the active
//! model and the leads' events and stores the new scores. Under READ
//! COMMITTED each statement after the lock sees every event committed before
//! it, so whichever instance rescores a lead last sees all its events.
//!
//! A transaction that fails on a serialization failure, a deadlock or a
//! unique-key race (two instances creating the same lead) is retried.
//!
//! Each `PgStore` keeps a [`LeadCache`]. An entry is trusted only while its
//! stamp equals the locked row's (version and incarnation, see [`stamp`]);
//! entries a transaction touches carry a mark no row can have until that
//! transaction has committed, so nothing it did is trusted if it fails.

mod automation;
mod read;
mod workflow;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use leadscore_core::workflow::Workflow;
use leadscore_core::{Event, Timestamp};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use crate::records::*;
use crate::rescore::{ActiveModel, ActiveSet, LeadCache};
use crate::workflow::{LogEntry, Task, TaskQuery, WorkflowRecord, WorkflowSave};
use crate::{Progress, Result, Store, StoreError, redact_url};

const SCHEMA: &str = include_str!("schema.sql");
/// The advisory lock held while the schema is created ("leadscor").
const SCHEMA_LOCK: i64 = 0x6c65_6164_7363_6f72;
/// Held shared by every transaction that scores, exclusively by an
/// activation ("leadmodl").
pub(crate) const MODEL_LOCK: i64 = 0x6c65_6164_6d6f_646c;
const POOL_SIZE: usize = 16;
/// Tries of a transaction that keeps hitting a race before giving up.
const ATTEMPTS: u32 = 8;
/// The schema version this code writes.
const SCHEMA_VERSION: i64 = 1;

/// The columns `lead_from_row` reads, in order.
pub(crate) const LEAD_SELECT: &str = "id, first_name, last_name, email, phone, company, job_title, \
     industry, employees, annual_revenue, country, region, city, source, is_customer, attributes, \
     owner, created_at, updated_at, version, score_json, incarnation, rank, band, mql";

#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
    cache: Mutex<LeadCache>,
    /// Models parsed so far, by name.
    models: Mutex<Vec<ActiveModel>>,
    /// Source of the marks of cache entries touched by uncommitted transactions.
    marks: AtomicI64,
}

/// Why a transaction failed: a race worth retrying, or a final error.
#[derive(Debug)]
pub(crate) enum Fail {
    Retry(String),
    Store(StoreError),
}

pub(crate) type TxResult<T> = std::result::Result<T, Fail>;

/// An error's text without the server's DETAIL, which can quote row values
/// (e-mails, names) that must not reach logs.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        let retry = e.code().is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION
        });
        if retry {
            Fail::Retry(describe(&e))
        } else {
            Fail::Store(StoreError::Database(describe(&e)))
        }
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Fail::Store(match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Database(describe(&e)),
            e => StoreError::Database(e.to_string()),
        })
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Retry(msg) => StoreError::Database(msg),
            Fail::Store(e) => e,
        }
    }
}

/// A lead row's state as locked: what the cache and the history need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowState {
    pub incarnation: i64,
    pub version: i64,
    /// Score, band and MQL when the lead is scored.
    pub last: Option<(f64, String, bool)>,
}

impl RowState {
    pub fn stamp(&self) -> i64 {
        stamp(self.incarnation, self.version)
    }
}

/// What a cache entry is checked against: the row's version and its
/// incarnation (a lead deleted and created again starts at version 1 again).
/// Never negative, so it never equals a mark.
pub(crate) fn stamp(incarnation: i64, version: i64) -> i64 {
    ((incarnation as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version as u64) as i64 & i64::MAX
}

/// Reads a row selected with [`LEAD_SELECT`].
pub(crate) fn lead_from_row(r: &Row) -> std::result::Result<(LeadRecord, RowState), tokio_postgres::Error> {
    let mut values: [Option<String>; 15] = Default::default();
    for (i, v) in values.iter_mut().enumerate() {
        *v = r.try_get(i)?;
    }
    let lead = crate::leads::lead_from_columns(values, r.try_get::<_, Option<String>>(15)?.as_deref());
    let score: Option<String> = r.try_get(20)?;
    let version: i64 = r.try_get(19)?;
    let state = RowState {
        incarnation: r.try_get(21)?,
        version,
        last: match score {
            Some(_) => Some((
                r.try_get(22)?,
                r.try_get::<_, Option<String>>(23)?.unwrap_or_default(),
                r.try_get::<_, Option<bool>>(24)?.unwrap_or(false),
            )),
            None => None,
        },
    };
    let record = LeadRecord {
        lead,
        owner: r.try_get(16)?,
        created_at: Timestamp::from_micros(r.try_get(17)?),
        updated_at: Timestamp::from_micros(r.try_get(18)?),
        version,
        score: score.and_then(|s| serde_json::from_str(&s).ok()),
    };
    Ok((record, state))
}

impl PgStore {
    /// Connects (a pool from the URL, whose options such as
    /// `options=-c search_path=...` apply to every connection) and creates
    /// the tables if missing.
    pub async fn open(url: &str) -> Result<PgStore> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL {}: {e}", redact_url(url))))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Database(format!("cannot set up the connection pool: {e}")))?;
        let store = PgStore {
            pool,
            cache: Mutex::default(),
            models: Mutex::default(),
            marks: AtomicI64::new(-1),
        };
        store.retry(|| store.migrate()).await?;
        Ok(store)
    }

    async fn migrate(&self) -> TxResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Two instances starting at once must not both create the tables.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.batch_execute(crate::automation::SCHEMA).await?;
        tx.batch_execute(crate::accounts::SCHEMA).await?;
        let version: String = tx
            .query_one(
                "SELECT value FROM leadscore_meta WHERE key = 'schema_version'",
                &[],
            )
            .await?
            .try_get(0)?;
        match version.parse::<i64>() {
            Ok(v) if v <= SCHEMA_VERSION => {}
            _ => {
                return Err(Fail::Store(StoreError::Corrupt(format!(
                    "the database has schema version {version}, newer than this leadscore knows ({SCHEMA_VERSION})"
                ))));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    fn cache(&self) -> MutexGuard<'_, LeadCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A mark for the cache entries of one transaction (see the module docs).
    fn next_mark(&self) -> i64 {
        self.marks.fetch_sub(1, Ordering::Relaxed)
    }

    /// After a commit: the entries marked `mark` are current at `stamp`.
    fn settle(&self, done: Vec<write::Settled>) {
        if done.is_empty() {
            return;
        }
        let mut cache = self.cache();
        for s in done {
            if cache.current(&s.id, s.mark).is_some() {
                cache.set_version(&s.id, s.stamp);
            }
        }
    }

    /// Runs a transaction, again after a race (with a short pause), up to
    /// [`ATTEMPTS`] times. A failed try forgets the cache.
    async fn retry<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = TxResult<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(fail) => {
                    self.cache().clear();
                    match fail {
                        Fail::Retry(msg) if attempt < ATTEMPTS => {
                            tracing::debug!(attempt, "retrying a transaction after a race: {msg}");
                            let jitter = u64::from(attempt) * 3
                                + (self.marks.load(Ordering::Relaxed).unsigned_abs() % 7);
                            tokio::time::sleep(Duration::from_millis(jitter)).await;
                        }
                        fail => return Err(fail.into()),
                    }
                }
            }
        }
    }

    /// The active model, parsed once per name.
    pub(crate) async fn active(&self, c: &impl GenericClient) -> TxResult<Option<ActiveSet>> {
        let stmt = c
            .prepare_cached("SELECT name, toml FROM models WHERE active ORDER BY activated_at, name")
            .await?;
        let mut members = Vec::new();
        for row in c.query(&stmt, &[]).await? {
            let (name, toml): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            members.push(crate::rescore::parse_once(&self.models, &name, || Ok(toml))?);
        }
        Ok(ActiveSet::of(members))
    }

    /// The model to score with in a transaction that has locked its leads.
    /// It holds [`MODEL_LOCK`] shared until the end, so an activation waits
    /// for it (and the rescoring that follows an activation sees every lead
    /// it wrote), and it reads the model after any activation that committed
    /// while it waited.
    pub(crate) async fn scoring_model(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> TxResult<Option<ActiveSet>> {
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock_shared($1)")
            .await?;
        tx.execute(&lock, &[&MODEL_LOCK]).await?;
        self.active(tx).await
    }

    /// Runs a read on a pooled connection.
    async fn read<T>(&self, f: impl AsyncFnOnce(&deadpool_postgres::Client) -> TxResult<T>) -> Result<T> {
        let client = self.pool.get().await.map_err(Fail::from)?;
        Ok(f(&client).await?)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn write_leads(
        &self,
        leads: Vec<NewLead>,
        on_conflict: OnConflict,
        now: Timestamp,
    ) -> Result<Vec<LeadWrite>> {
        let leads = &leads;
        self.retry(|| self.write_leads_once(leads, on_conflict, now))
            .await
    }

    async fn get_lead(&self, id: &str) -> Result<Option<LeadRecord>> {
        self.read(async |c| read::lead(c, id).await).await
    }

    async fn get_leads(&self, ids: &[String]) -> Result<HashMap<String, LeadRecord>> {
        self.read(async |c| read::leads(c, ids).await).await
    }

    async fn update_lead(&self, id: &str, patch: LeadPatch, now: Timestamp) -> Result<Option<LeadRecord>> {
        let patch = &patch;
        self.retry(|| self.update_lead_once(id, patch, now)).await
    }

    async fn delete_lead(&self, id: &str) -> Result<bool> {
        let deleted = self
            .retry(|| async {
                let client = self.pool.get().await?;
                Ok(client.execute("DELETE FROM leads WHERE id = $1", &[&id]).await? > 0)
            })
            .await;
        self.cache().remove(id);
        deleted
    }

    async fn list_leads(&self, query: &LeadQuery) -> Result<(Vec<LeadRecord>, Option<Cursor>)> {
        self.read(async |c| read::list(c, query).await).await
    }

    async fn lead_events(&self, id: &str) -> Result<Vec<Event>> {
        self.read(async |c| read::events(c, id).await).await
    }

    async fn leads_events(&self, ids: &[String]) -> Result<HashMap<String, Vec<Event>>> {
        self.read(async |c| read::leads_events(c, ids).await).await
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        self.read(async |c| read::history(c, id).await).await
    }

    async fn ingest(&self, events: Vec<Event>, now: Timestamp) -> Result<Vec<IngestStatus>> {
        let events = &events;
        self.retry(|| self.ingest_once(events, now)).await
    }

    async fn put_model(&self, name: &str, toml: &str, now: Timestamp) -> Result<PutModel> {
        self.retry(|| async {
            let client = self.pool.get().await?;
            let inserted = client
                .execute(
                    "INSERT INTO models (name, toml, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                    &[&name, &toml, &now.as_micros()],
                )
                .await?;
            if inserted > 0 {
                return Ok(PutModel::Created);
            }
            let row = client
                .query_one("SELECT toml FROM models WHERE name = $1", &[&name])
                .await?;
            let existing: String = row.try_get(0)?;
            Ok(if existing == toml {
                PutModel::Unchanged
            } else {
                PutModel::NameTaken
            })
        })
        .await
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>> {
        self.read(async |c| read::models(c, None).await).await
    }

    async fn get_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        self.read(async |c| Ok(read::models(c, Some(name)).await?.pop()))
            .await
    }

    async fn active_model(&self) -> Result<Option<ActiveSet>> {
        self.read(async |c| self.active(c).await).await
    }

    async fn activate_model(&self, name: &str, now: Timestamp, alongside: bool) -> Result<Timestamp> {
        self.retry(|| self.activate_once(name, now, alongside)).await
    }

    async fn rescore_all(&self, now: Timestamp, progress: Progress) -> Result<u64> {
        let total: u64 = self
            .read(async |c| {
                let n: i64 = c.query_one("SELECT count(*) FROM leads", &[]).await?.try_get(0)?;
                Ok(n as u64)
            })
            .await?;
        let mut after = String::new();
        let mut done = 0u64;
        loop {
            let from = after.as_str();
            let (n, last) = self
                .retry(|| self.rescore_chunk(from, write::RESCORE_CHUNK, now, done, total))
                .await?;
            done += n;
            progress(done.min(total), total);
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        self.retry(|| async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // Waits for an activation under way (in any instance): its later
            // time then makes this record change nothing.
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&MODEL_LOCK])
                .await?;
            write::record_rescore(&tx, done, done.max(total), true, now).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        Ok(done)
    }

    async fn create_token(&self, token: TokenRecord) -> Result<()> {
        let client = self.pool.get().await.map_err(Fail::from)?;
        client
            .execute(
                "INSERT INTO tokens (hash, role, user_name, created_at) VALUES ($1, $2, $3, $4)",
                &[
                    &token.hash,
                    &token.role,
                    &token.user,
                    &token.created_at.as_micros(),
                ],
            )
            .await
            .map_err(|e| StoreError::Database(describe(&e)))?;
        Ok(())
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.read(async |c| read::token(c, hash).await).await
    }

    async fn counts(&self) -> Result<(u64, u64)> {
        self.read(async |c| {
            let row = c
                .query_one(
                    "SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM events)",
                    &[],
                )
                .await?;
            let (leads, events): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            Ok((leads as u64, events as u64))
        })
        .await
    }
    async fn workflows(&self, ids: &[String]) -> Result<HashMap<String, WorkflowRecord>> {
        self.read(async |c| workflow::workflows(c, ids).await).await
    }

    async fn save_workflow(&self, lead: &str, rev: i64, wf: &Workflow, save: WorkflowSave) -> Result<bool> {
        self.retry(|| self.save_workflow_once(lead, rev, wf, &save)).await
    }

    async fn init_workflows(&self, items: Vec<(String, Workflow)>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.read(async |c| workflow::init_workflows(c, &items).await)
            .await
    }

    async fn put_predictive(&self, name: &str, body: &str, metrics: &str, now: Timestamp) -> Result<()> {
        self.retry(|| async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute("UPDATE predictive_models SET active = FALSE WHERE active", &[])
                .await?;
            tx.execute(
                "INSERT INTO predictive_models (name, body, metrics, created_at, active) VALUES ($1, $2, $3, $4, TRUE) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, metrics = excluded.metrics, \
                 created_at = excluded.created_at, active = TRUE",
                &[&name, &body, &metrics, &now.as_micros()],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn active_predictive(&self) -> Result<Option<(String, String, String)>> {
        self.read(async |c| {
            let row = c
                .query_opt(
                    "SELECT name, body, metrics FROM predictive_models WHERE active",
                    &[],
                )
                .await?;
            Ok(match row {
                Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
                None => None,
            })
        })
        .await
    }

    async fn lead_log(&self, lead: &str) -> Result<Vec<LogEntry>> {
        self.read(async |c| workflow::lead_log(c, lead).await).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        self.read(async |c| workflow::list_tasks(c, query).await).await
    }

    async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        self.read(async |c| workflow::get_task(c, id).await).await
    }

    async fn save_task(&self, task: &Task, log: LogEntry) -> Result<bool> {
        self.retry(|| self.save_task_once(task, &log)).await
    }

    async fn refresh_scores(&self, ids: &[String], now: Timestamp) -> Result<()> {
        self.retry(|| self.refresh_once(ids, now)).await
    }

    fn automation(&self) -> crate::automation::Automation {
        crate::automation::Automation::new(std::sync::Arc::new(automation::PgSql {
            pool: self.pool.clone(),
        }))
    }

    fn accounts(&self) -> crate::accounts::Accounts {
        crate::accounts::Accounts::new(std::sync::Arc::new(automation::PgSql {
            pool: self.pool.clone(),
        }))
    }

    fn stats(&self) -> crate::stats::Stats {
        crate::stats::Stats::new(std::sync::Arc::new(automation::PgSql {
            pool: self.pool.clone(),
        }))
    }
}
