//! leadscore's storage: one [`Store`] trait, an embedded SQLite adapter (the
//! default) and a PostgreSQL adapter, chosen by the URL scheme.
//!
//! Every write that can change a score (new events, a lead edit, a model
//! activation) rescores the leads it touches in the same transaction, with the
//! engine of `leadscore-core`: a stored score is never behind its data, and
//! two server instances writing to one PostgreSQL database keep every score
//! right (leads are locked before they are rescored).

pub mod accounts;
pub mod automation;
pub mod leads;
pub mod postgres;
pub mod records;
pub mod rescore;
pub mod sqlite;
pub mod stats;
pub mod testing;
pub mod workflow;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use leadscore_core::workflow::Workflow;
use leadscore_core::{Event, Timestamp};

pub use records::*;
pub use rescore::{ActiveModel, ActiveSet};
pub use workflow::{
    LogEntry, Task, TaskAction, TaskDoc, TaskQuery, WorkflowRecord, WorkflowSave, new_task_id,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation.
    #[error("database error: {0}")]
    Database(String),
    /// The stored data is not what this version of leadscore expects.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The request cannot be carried out as asked (e.g. activating an unknown model).
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The e-mail belongs to another lead (its id).
    #[error("another lead has this e-mail: {0}")]
    Conflict(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// See [`Store::lead_bundle`]. Leads that are missing are left out of each map.
#[derive(Debug, Default)]
pub struct LeadBundle {
    pub active: Option<ActiveSet>,
    pub records: HashMap<String, LeadRecord>,
    pub events: HashMap<String, Vec<Event>>,
    pub workflows: HashMap<String, WorkflowRecord>,
    /// Automation's stored state of each lead (see [`automation`]).
    pub states: HashMap<String, automation::AutomationRecord>,
}

/// Progress callback for long jobs: (done, total).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Everything the service keeps. Implemented by [`sqlite::SqliteStore`] and
/// [`postgres::PgStore`]; one contract test suite runs on both.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Writes leads: creates them, or with [`OnConflict::Update`] merges into
    /// the lead with the same id or e-mail. Each new or changed lead is scored
    /// with the active model as of `now`. One outcome per lead, in order.
    async fn write_leads(
        &self,
        leads: Vec<NewLead>,
        on_conflict: OnConflict,
        now: Timestamp,
    ) -> Result<Vec<LeadWrite>>;

    async fn get_lead(&self, id: &str) -> Result<Option<LeadRecord>>;

    /// These leads, by id, in one read (missing ones are left out).
    async fn get_leads(&self, ids: &[String]) -> Result<HashMap<String, LeadRecord>>;

    /// Applies a patch and rescores; `None` when there is no such lead.
    async fn update_lead(&self, id: &str, patch: LeadPatch, now: Timestamp) -> Result<Option<LeadRecord>>;

    /// Erases a lead, its events and its history. False when there was none.
    async fn delete_lead(&self, id: &str) -> Result<bool>;

    /// One page of leads and the cursor of the next page, if any.
    async fn list_leads(&self, query: &LeadQuery) -> Result<(Vec<LeadRecord>, Option<Cursor>)>;

    /// A lead's events in ingest order.
    async fn lead_events(&self, id: &str) -> Result<Vec<Event>>;

    /// These leads' events, each lead's in ingest order, in one read (leads
    /// without events are left out).
    async fn leads_events(&self, ids: &[String]) -> Result<HashMap<String, Vec<Event>>>;

    /// A lead's score history, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>>;

    /// Stores events (idempotent on the event id) and rescores their leads as
    /// of `now`, durably, before it returns. One status per event, in order.
    async fn ingest(&self, events: Vec<Event>, now: Timestamp) -> Result<Vec<IngestStatus>>;

    /// Stores a model's TOML under its name (validated by the caller).
    async fn put_model(&self, name: &str, toml: &str, now: Timestamp) -> Result<PutModel>;
    async fn list_models(&self) -> Result<Vec<ModelRecord>>;
    async fn get_model(&self, name: &str) -> Result<Option<ModelRecord>>;
    /// The active models, parsed, in the order they are tried on a lead.
    async fn active_model(&self) -> Result<Option<ActiveSet>>;

    /// Makes `name` the active model at once (new scores use it from now on),
    /// or with `alongside` adds it to the active ones; the caller then runs
    /// [`Store::rescore_all`] as of the activation's time, which this
    /// returns: `now`, or just after the latest activation stored if that is
    /// later (a clock set back, or another instance's running ahead), so
    /// that each activation is later than every one before it (a rescoring
    /// stops once a later activation exists: see `rescore_all`).
    async fn activate_model(&self, name: &str, now: Timestamp, alongside: bool) -> Result<Timestamp>;

    /// Rescores every lead with the active model as of `now`, recording the
    /// progress on the model (and through `progress`).
    async fn rescore_all(&self, now: Timestamp, progress: Progress) -> Result<u64>;

    async fn create_token(&self, token: TokenRecord) -> Result<()>;
    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>>;

    /// Counts of stored leads and events (for metrics and the demo loader).
    async fn counts(&self) -> Result<(u64, u64)>;

    /// The workflows of these leads; leads without one are left out (they
    /// are new and unrated).
    async fn workflows(&self, ids: &[String]) -> Result<HashMap<String, WorkflowRecord>>;

    /// What automation reads of these leads before it decides about them,
    /// as one read where the database allows it (on SQLite one read
    /// transaction on one read connection, rather than five).
    async fn lead_bundle(&self, ids: &[String]) -> Result<LeadBundle> {
        Ok(LeadBundle {
            active: self.active_model().await?,
            records: self.get_leads(ids).await?,
            events: self.leads_events(ids).await?,
            workflows: self.workflows(ids).await?,
            states: self.automation().states(ids).await?,
        })
    }

    /// Stores a lead's workflow if its revision is still `rev` (0: none
    /// stored yet), with its log lines and new tasks, all in one
    /// transaction. `Ok(false)`: someone saved in between (read it again).
    /// `NotFound` when there is no such lead.
    async fn save_workflow(
        &self,
        lead: &str,
        rev: i64,
        workflow: &Workflow,
        save: WorkflowSave,
    ) -> Result<bool>;

    /// Stores workflows for leads that have none yet (a new lead's first
    /// evaluation), in one transaction; leads that have one, or no longer
    /// exist, are left as they are.
    async fn init_workflows(&self, items: Vec<(String, Workflow)>) -> Result<()>;

    /// Stores a trained predictive model (JSON) with its figures and makes
    /// it the active one.
    async fn put_predictive(&self, name: &str, body: &str, metrics: &str, now: Timestamp) -> Result<()>;

    /// The active predictive model: (name, body, metrics), if any.
    async fn active_predictive(&self) -> Result<Option<(String, String, String)>>;

    /// A lead's log, oldest first.
    async fn lead_log(&self, lead: &str) -> Result<Vec<LogEntry>>;

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;
    async fn get_task(&self, id: &str) -> Result<Option<Task>>;

    /// Stores a changed task if its stored revision is still `task.rev`,
    /// with a line in its lead's log. `Ok(false)`: changed in between.
    async fn save_task(&self, task: &Task, log: LogEntry) -> Result<bool>;

    /// Rescores these leads as of `now` because time passed (decay,
    /// windows), recording history entries with the cause `time_passed`
    /// (`model_activated` when the model that scores a lead is no longer the
    /// one that scored it: `rescore::refresh_cause`).
    /// A lead whose stored score is as of a later moment is left as it is
    /// (`rescore::scored_after`).
    async fn refresh_scores(&self, ids: &[String], now: Timestamp) -> Result<()>;

    /// Readies a freshly started server for writes at full speed. The SQLite
    /// writer rescores a lead from its cache of leads and events; after a
    /// start that cache is empty, and each lead's first write reads it and
    /// all its events from the file (under 5,000 events a second over
    /// 200,000 leads that costs 4 % more CPU for minutes, and the writer
    /// can fall seconds behind). This reads every lead and event into the
    /// cache in one sequential pass instead, as the writer's first job
    /// (writes wait behind it). `Some((leads, events))` read; `None` when
    /// there is nothing to do (PostgreSQL, or more events than the cache
    /// holds).
    async fn warm_up(&self) -> Result<Option<(u64, u64)>> {
        Ok(None)
    }

    /// Automation's tables: trigger state, loads, webhooks and deliveries.
    fn automation(&self) -> automation::Automation;

    /// Users of the web pages and their sessions.
    fn accounts(&self) -> accounts::Accounts;

    /// Figures for the manager's overview.
    fn stats(&self) -> stats::Stats;
}

/// The default database: `leadscore.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://leadscore.db";

/// Opens (creating and migrating) the database a URL names:
/// `sqlite://PATH` (relative), `sqlite:///abs/path`, or `postgres://...`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(StoreError::Invalid("the sqlite URL names no file".into()));
        }
        let path = path.to_owned();
        let store =
            tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(std::path::Path::new(&path)))
                .await
                .map_err(|e| StoreError::Database(e.to_string()))??;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::Invalid(format!(
            "unsupported database URL (use sqlite://PATH or postgres://...): {}",
            redact_url(url)
        )))
    }
}

/// The nice value of background threads (see
/// [`lower_this_threads_priority`]). For the SQLite checkpointer alone,
/// under 5,000 single events a second on an Intel Xeon host, servers taking
/// turns: p99 24.1-33.5 ms against 30.9-36.3 with the automation (three runs
/// each) and 13.7-14.7 against 13.4-27.0 without (two), the largest latency
/// 38-55 ms against 52-68; batched ingest and activations unchanged (16,707
/// against 16,059 events a second, 2.18 against 2.16 s). Later, nice 19
/// instead of 10, for the checkpointer and the automation together (Intel
/// Xeon host, a file of 1.4 GiB, automation on, servers taking turns, two
/// runs each): steady 5,000 single events a second p99 32.2 and 21.4 ms
/// against 42.0 and 51.2, p90 10.7 and 9.2 against 12.0 and 11.3, wrk 6,889
/// and 7,151 requests a second against 6,685 and 6,731, the automation
/// caught up 0.05 s after the load as before; a million batched events
/// 15,006 events a second against 13,755, the automation caught up 9.8 s
/// after them against 9.5, the activation 1.38 s against 1.46 (one run
/// each). At 19 these threads still take the CPU the requests leave: the
/// automation used 117 µs of CPU an event under the steady load, as before.
pub const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`] (Linux:
/// a thread's own id names that thread alone; elsewhere nothing). For work
/// that should give way to answering requests: the SQLite checkpointer, the
/// automation's runtime. Failing, the thread keeps its priority.
pub fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE) {
        tracing::debug!(error = %e, "a background thread keeps its priority");
    }
}

/// A URL fit for logs and messages: any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Standard lead columns as stored, in the order of the `leads` table's
/// columns `f_id` .. `f_is_customer`.
pub(crate) const LEAD_COLUMNS: [&str; 15] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "region",
    "city",
    "source",
    "is_customer",
];

/// When an activation asked for at `now` is stored: `now`, or a
/// microsecond after `latest` (the latest activation stored, in
/// microseconds) if that is not before it (see `Store::activate_model`).
pub(crate) fn activation_time(now: Timestamp, latest: Option<i64>) -> Timestamp {
    Timestamp::from_micros(latest.map_or(now.as_micros(), |l| now.as_micros().max(l + 1)))
}

/// The key used to find a lead by e-mail: trimmed and lower-cased.
pub fn email_key(email: Option<&str>) -> Option<String> {
    email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty())
}

/// A fresh lead id for leads created without one.
pub fn new_lead_id() -> String {
    format!("ld_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://leadscore.db"), "sqlite://leadscore.db");
    }
}
