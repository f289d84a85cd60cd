//! What automation keeps (issue 6): each lead's trigger state and when to
//! look at it again, reps' loads, notifications, webhook subscriptions and
//! the delivery outbox.
//!
//! Unlike the scoring tables, nothing here needs an adapter of its own: the
//! SQL is written once (with `$n` placeholders, types both databases read
//! alike) and each adapter only runs a list of statements in one transaction
//! ([`SqlRunner`]). A statement may be a *guard*: when it changes no row, the
//! whole transaction is undone and the caller learns which guard it was. That
//! is how saves stay compare-and-set and how two leads never take a rep's last
//! slot, on SQLite's single writer and across PostgreSQL instances alike.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use leadscore_core::Timestamp;
use serde_json::Value;

use crate::workflow::{LogEntry, Task, doc_json, sql as wsql, state_word};
use crate::{Result, StoreError};

/// The tables, created by both adapters at start.
pub(crate) const SCHEMA: &str = include_str!("automation.sql");

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Val {
    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(t) => Some(t),
            _ => None,
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Real(r) => Some(*r as i64),
            _ => None,
        }
    }
    fn time(&self) -> Option<Timestamp> {
        self.int().map(Timestamp::from_micros)
    }
    fn owned_text(&self) -> Option<String> {
        self.text().map(str::to_owned)
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Text(s.to_owned())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Text(s)
    }
}
impl From<&String> for Val {
    fn from(s: &String) -> Self {
        Val::Text(s.clone())
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Self {
        Val::Int(i)
    }
}
impl From<Timestamp> for Val {
    fn from(t: Timestamp) -> Self {
        Val::Int(t.as_micros())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// One statement of a transaction.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub sql: String,
    pub args: Vec<Val>,
    pub kind: OpKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Run it; any number of rows.
    Exec,
    /// Run it; no row changed undoes the transaction.
    Guard,
    /// Run it and keep its rows (a SELECT, or a statement with RETURNING).
    Query,
}

pub(crate) type Rows = Vec<Vec<Val>>;

/// Where a save's rep-load statements are: each rep's row is created, then
/// changed (the change is a guard when the rep has a capacity).
struct LoadGuards {
    first: usize,
    reps: Vec<String>,
}

impl LoadGuards {
    /// What a run of a save's statements means for the engine.
    fn saved(&self, outcome: std::result::Result<Vec<Rows>, usize>) -> Saved {
        match outcome {
            Ok(_) => Saved::Done,
            Err(i) if i >= self.first && i < self.first + 2 * self.reps.len() => {
                Saved::Full(self.reps[(i - self.first) / 2].clone())
            }
            Err(_) => Saved::Changed,
        }
    }
}

/// The statements that save one evaluation's results, in one transaction.
fn save_ops(s: &AutomationSave) -> (Vec<Op>, LoadGuards) {
    let mut ops = Vec::new();
    let r = &s.record;
    let doc = s.record.doc.to_string();
    let cols: Vec<Val> = vec![
        s.lead.as_str().into(),
        r.lead_version.into(),
        r.workflow_rev.into(),
        r.next_at.into(),
        r.nurture_since.into(),
        r.counted_owner.clone().into(),
        doc.into(),
    ];
    if s.rev == 0 {
        ops.push(guard(
            "INSERT INTO automation (lead, rev, lead_version, workflow_rev, next_at, nurture_since, counted_owner, doc) \
             SELECT CAST($1 AS TEXT), 1, CAST($2 AS BIGINT), CAST($3 AS BIGINT), CAST($4 AS BIGINT), CAST($5 AS BIGINT), \
             CAST($6 AS TEXT), CAST($7 AS TEXT) WHERE EXISTS (SELECT 1 FROM leads WHERE id = $1 AND version = $2) \
             AND COALESCE((SELECT rev FROM workflow WHERE lead = $1), 0) = $3 \
             ON CONFLICT (lead) DO NOTHING",
            cols,
        ));
    } else {
        let mut args = cols;
        args.push(s.rev.into());
        ops.push(guard(
            "UPDATE automation SET rev = rev + 1, lead_version = $2, workflow_rev = $3, next_at = $4, \
             nurture_since = $5, counted_owner = $6, doc = $7 WHERE lead = $1 AND rev = $8 \
             AND EXISTS (SELECT 1 FROM leads WHERE id = $1 AND version = $2) \
             AND COALESCE((SELECT rev FROM workflow WHERE lead = $1), 0) = $3",
            args,
        ));
    }
    // In rep order: no two transactions wait on each other's rows in
    // opposite orders.
    let mut loads = s.loads.clone();
    loads.sort_by(|a, b| a.rep.cmp(&b.rep));
    let first_load = ops.len();
    for l in &loads {
        ops.push(exec(
            "INSERT INTO rep_load (rep, open_leads, assigned, last_assigned) VALUES ($1, 0, 0, 0) \
             ON CONFLICT (rep) DO NOTHING",
            vec![l.rep.as_str().into()],
        ));
        let assigned = i64::from(l.delta > 0);
        match l.capacity {
            Some(cap) => ops.push(guard(
                "UPDATE rep_load SET open_leads = open_leads + $2, assigned = assigned + $3, \
                 last_assigned = CASE WHEN $3 > 0 THEN (SELECT COALESCE(MAX(last_assigned), 0) + 1 FROM rep_load) \
                 ELSE last_assigned END WHERE rep = $1 AND open_leads + $2 <= $4",
                vec![l.rep.as_str().into(), l.delta.into(), assigned.into(), cap.into()],
            )),
            None => ops.push(exec(
                "UPDATE rep_load SET open_leads = CASE WHEN open_leads + $2 < 0 THEN 0 ELSE open_leads + $2 END, \
                 assigned = assigned + $3, \
                 last_assigned = CASE WHEN $3 > 0 THEN (SELECT COALESCE(MAX(last_assigned), 0) + 1 FROM rep_load) \
                 ELSE last_assigned END WHERE rep = $1",
                vec![l.rep.as_str().into(), l.delta.into(), assigned.into()],
            )),
        }
    }
    if let Some(owner) = &s.owner {
        ops.push(exec(
            "UPDATE leads SET owner = $2, updated_at = $3 WHERE id = $1",
            vec![s.lead.as_str().into(), owner.clone().into(), s.now.into()],
        ));
        // Open tasks follow the lead to its new owner.
        ops.push(exec(
            "UPDATE tasks SET owner = $2, rev = rev + 1 WHERE lead = $1 AND state = 'open'",
            vec![s.lead.as_str().into(), owner.clone().into()],
        ));
    }
    for t in &s.tasks {
        ops.push(exec(
            wsql::INSERT_TASK,
            vec![
                t.id.as_str().into(),
                t.lead.as_str().into(),
                t.owner.clone().into(),
                state_word(t.open).into(),
                t.due.into(),
                doc_json(&t.doc).into(),
            ],
        ));
    }
    for e in &s.log {
        ops.push(log_op(&s.lead, e));
    }
    for n in &s.notifications {
        ops.push(notification_op(n));
    }
    ops.extend(s.happenings.iter().map(happening_op));
    let reps = loads.into_iter().map(|l| l.rep).collect();
    (
        ops,
        LoadGuards {
            first: first_load,
            reps,
        },
    )
}

/// Does a list need a savepoint of its own inside a shared transaction? Only
/// when a guard follows a statement that changes rows: a failing first guard
/// has changed nothing, so there is nothing to undo.
pub(crate) fn needs_savepoint(ops: &[Op]) -> bool {
    ops.iter().skip(1).any(|op| op.kind == OpKind::Guard)
}

fn exec(sql: impl Into<String>, args: Vec<Val>) -> Op {
    Op {
        sql: sql.into(),
        args,
        kind: OpKind::Exec,
    }
}
fn guard(sql: impl Into<String>, args: Vec<Val>) -> Op {
    Op {
        sql: sql.into(),
        args,
        kind: OpKind::Guard,
    }
}
fn query(sql: impl Into<String>, args: Vec<Val>) -> Op {
    Op {
        sql: sql.into(),
        args,
        kind: OpKind::Query,
    }
}

/// What an adapter provides: statements run in one transaction.
#[async_trait]
pub(crate) trait SqlRunner: Send + Sync + std::fmt::Debug {
    fn postgres(&self) -> bool;
    /// Runs `ops` in one transaction: the rows of each (empty for `Exec` and
    /// `Guard`), or `Err(i)` when guard `i` changed no row (then nothing was
    /// done).
    async fn run(&self, ops: Vec<Op>) -> Result<std::result::Result<Vec<Rows>, usize>>;
    /// Runs each list of ops as [`run`](Self::run) would, all in one
    /// transaction: a list whose guard changed no row is undone alone.
    async fn run_each(&self, lists: Vec<Vec<Op>>) -> Result<Vec<std::result::Result<Vec<Rows>, usize>>>;
    /// One read, outside any write transaction.
    async fn read(&self, sql: String, args: Vec<Val>) -> Result<Rows>;
}

/// A lead's automation state as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutomationRecord {
    /// 0: nothing stored yet.
    pub rev: i64,
    pub lead_version: i64,
    pub workflow_rev: i64,
    pub next_at: Option<Timestamp>,
    pub nurture_since: Option<Timestamp>,
    pub counted_owner: Option<String>,
    /// The engine's own document (which triggers hold, what it last saw).
    pub doc: Value,
}

/// A lead the engine looked at and found its state unchanged (see
/// [`Automation::mark_seen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMark {
    pub lead: String,
    pub lead_version: i64,
    /// The state's revision it was found unchanged at.
    pub rev: i64,
}

/// A change to a rep's count of open leads. With `capacity`, the increment
/// happens only while the count is under it (else the save fails as `Full`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadChange {
    pub rep: String,
    pub delta: i64,
    pub capacity: Option<i64>,
}

/// Something that happened, for the webhook subscriptions of its type.
/// The body sent is `{"id": <delivery id>, ...payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Happening {
    /// Unique per happening; a delivery's id is this plus the subscription's.
    pub id: String,
    pub kind: String,
    pub lead: Option<String>,
    pub occurred_at: Timestamp,
    /// `{"type", "occurred_at", "lead": {...}, ...}`.
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    pub id: String,
    pub recipient: String,
    pub lead: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
    pub trigger: Option<String>,
    pub message: String,
    #[serde(serialize_with = "rfc3339_opt")]
    pub read_at: Option<Timestamp>,
}

fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}
fn rfc3339_opt<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

/// Everything one evaluation of a lead writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutomationSave {
    pub lead: String,
    /// The revision read (0: none stored yet).
    pub rev: i64,
    pub record: AutomationRecord,
    /// A new owner for the lead.
    pub owner: Option<Option<String>>,
    pub loads: Vec<LoadChange>,
    pub tasks: Vec<Task>,
    pub log: Vec<LogEntry>,
    pub happenings: Vec<Happening>,
    pub notifications: Vec<Notification>,
    pub now: Timestamp,
}

/// How a save went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Done,
    /// Someone saved this lead's state in between, or the lead is gone: read again.
    Changed,
    /// This rep had no slot left when it came to it.
    Full(String),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RepLoad {
    pub rep: String,
    pub open_leads: i64,
    pub assigned: i64,
    pub last_assigned: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub active: bool,
}

/// A delivery taken to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: String,
    pub webhook: String,
    pub kind: String,
    pub payload: String,
    /// Tries before this one.
    pub attempts: i64,
    /// Until when this claim stands.
    pub lease: Timestamp,
}

/// How a try went.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub delivery: String,
    pub at: Timestamp,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub millis: i64,
    /// Delivered (2xx).
    pub ok: bool,
    /// When to try again; `None` with `ok` false: given up.
    pub retry_at: Option<Timestamp>,
    /// The lease the delivery was claimed with.
    pub lease: Timestamp,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook: String,
    pub lead: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "rfc3339")]
    pub occurred_at: Timestamp,
    /// pending | delivered | failed
    pub state: String,
    pub attempts: i64,
    #[serde(serialize_with = "rfc3339")]
    pub next_at: Timestamp,
    #[serde(serialize_with = "rfc3339_opt")]
    pub delivered_at: Option<Timestamp>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// A task whose due moment has come.
#[derive(Debug, Clone, PartialEq)]
pub struct DueTask {
    pub id: String,
    pub lead: String,
    pub owner: Option<String>,
    pub due: Timestamp,
    pub title: String,
}

/// Automation's storage, over either database.
#[derive(Debug, Clone)]
pub struct Automation {
    sql: Arc<dyn SqlRunner>,
}

const STATE_SELECT: &str = "SELECT lead, rev, lead_version, workflow_rev, next_at, nurture_since, counted_owner, doc FROM automation";
const DELIVERY_SELECT: &str = "SELECT id, webhook, lead, type, occurred_at, state, attempts, next_at, \
     delivered_at, last_status, last_error FROM deliveries";

/// A query of the ids in a JSON array given as `$1`.
fn id_list(postgres: bool) -> &'static str {
    if postgres {
        "SELECT json_array_elements_text(CAST(CAST($1 AS TEXT) AS JSON))"
    } else {
        "SELECT value FROM json_each($1)"
    }
}

/// The statement (and its argument) that reads the stored states of these
/// leads. The ids go as one JSON array, so the statement is the same
/// whatever their number (and stays prepared).
pub(crate) fn states_query(postgres: bool, ids: &[String]) -> (String, Vec<Val>) {
    let sql = format!("{STATE_SELECT} WHERE lead IN ({})", id_list(postgres));
    let ids = serde_json::to_string(ids).expect("strings serialize");
    (sql, vec![ids.into()])
}

/// The rows of [`states_query`], by lead.
pub(crate) fn states_from(rows: Rows) -> Result<HashMap<String, AutomationRecord>> {
    rows.iter()
        .map(|r| Ok((text(&r[0])?, record_from(&r[1..])?)))
        .collect()
}

impl Automation {
    pub(crate) fn new(sql: Arc<dyn SqlRunner>) -> Automation {
        Automation { sql }
    }

    async fn rows(&self, sql: &str, args: Vec<Val>) -> Result<Rows> {
        self.sql.read(sql.to_owned(), args).await
    }

    /// The stored states of these leads (leads without one are left out).
    pub async fn states(&self, ids: &[String]) -> Result<HashMap<String, AutomationRecord>> {
        let (sql, args) = states_query(self.sql.postgres(), ids);
        states_from(self.rows(&sql, args).await?)
    }

    /// Saves one evaluation's results (see [`AutomationSave`]).
    pub async fn save(&self, s: AutomationSave) -> Result<Saved> {
        let (ops, loads) = save_ops(&s);
        Ok(loads.saved(self.sql.run(ops).await?))
    }

    /// Saves several leads' evaluations in one transaction, each as if alone:
    /// one whose lead changed in between (or whose rep is full) is left out
    /// and the others are saved. One outcome per save, in order.
    pub async fn save_many(&self, saves: &[AutomationSave]) -> Result<Vec<Saved>> {
        // In lead order: two instances saving overlapping batches take the
        // rows' locks in the same order, so neither waits on the other in a
        // circle.
        let mut order: Vec<usize> = (0..saves.len()).collect();
        order.sort_by(|&a, &b| saves[a].lead.cmp(&saves[b].lead));
        let (lists, guards): (Vec<Vec<Op>>, Vec<LoadGuards>) =
            order.iter().map(|&i| save_ops(&saves[i])).unzip();
        let outcomes = self.sql.run_each(lists).await?;
        let mut out = vec![Saved::Done; saves.len()];
        for ((&i, outcome), g) in order.iter().zip(outcomes).zip(guards) {
            out[i] = g.saved(outcome);
        }
        Ok(out)
    }

    /// Records that the engine looked at these leads as they were at
    /// `lead_version` and found nothing to change in their state at `rev`
    /// (so the sweeps need not look at them again), in one transaction. A
    /// state saved since (another revision) or a later version already
    /// recorded is left as it is.
    pub async fn mark_seen(&self, marks: &[SeenMark]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&SeenMark> = marks.iter().collect();
        // In lead order, as `save_many` takes its rows.
        sorted.sort_by(|a, b| a.lead.cmp(&b.lead));
        let ops = sorted
            .into_iter()
            .map(|m| {
                exec(
                    "UPDATE automation SET lead_version = $2 WHERE lead = $1 AND rev = $3 AND lead_version < $2",
                    vec![m.lead.as_str().into(), m.lead_version.into(), m.rev.into()],
                )
            })
            .collect();
        self.sql
            .run(ops)
            .await?
            .map_err(|_| StoreError::Database("mark_seen".into()))?;
        Ok(())
    }

    /// Each lead's latest activity (its latest event, activities logged by
    /// reps included) at or before `now`; leads without one are left out.
    pub async fn last_activity(&self, ids: &[String], now: Timestamp) -> Result<HashMap<String, Timestamp>> {
        let list = id_list(self.sql.postgres());
        let sql = format!(
            "SELECT lead, MAX(occurred_at) FROM events WHERE lead IN ({list}) AND occurred_at <= $2 GROUP BY lead"
        );
        let ids = serde_json::to_string(ids).expect("strings serialize");
        let mut out = HashMap::new();
        for r in self.rows(&sql, vec![ids.into(), now.into()]).await? {
            if let Some(t) = r[1].time() {
                out.insert(text(&r[0])?, t);
            }
        }
        Ok(out)
    }

    /// Records happenings outside a lead's evaluation (e.g. `task.due`),
    /// moving the watermark `key` from `from` to `to` in the same
    /// transaction; false when another instance moved it first.
    pub async fn emit(&self, happenings: &[Happening], key: &str, from: i64, to: i64) -> Result<bool> {
        let mut ops = vec![
            exec(
                "INSERT INTO automation_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                vec![key.into(), from.into()],
            ),
            guard(
                "UPDATE automation_meta SET value = $3 WHERE key = $1 AND value = $2",
                vec![key.into(), from.into(), to.into()],
            ),
        ];
        ops.extend(happenings.iter().map(happening_op));
        Ok(self.sql.run(ops).await?.is_ok())
    }

    /// A watermark's value, if set.
    pub async fn watermark(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .rows(
                "SELECT value FROM automation_meta WHERE key = $1",
                vec![key.into()],
            )
            .await?
            .pop()
            .and_then(|r| r[0].int()))
    }

    /// Sets a watermark or other stored number.
    pub async fn set_meta(&self, key: &str, value: i64) -> Result<()> {
        self.sql
            .run(vec![exec(
                "INSERT INTO automation_meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![key.into(), value.into()],
            )])
            .await?
            .map_err(|_| StoreError::Database("set_meta".into()))?;
        Ok(())
    }

    /// Lead ids after `after`, in order (to look at every lead again).
    pub async fn lead_ids(&self, after: &str, limit: usize) -> Result<Vec<String>> {
        ids(self
            .rows(
                "SELECT id FROM leads WHERE id > $1 ORDER BY id LIMIT $2",
                vec![after.into(), (limit as i64).into()],
            )
            .await?)
    }

    /// Leads whose `next_at` has come, soonest first.
    pub async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>> {
        ids(self
            .rows(
                "SELECT lead FROM automation WHERE next_at <= $1 ORDER BY next_at, lead LIMIT $2",
                vec![now.into(), (limit as i64).into()],
            )
            .await?)
    }

    /// The soonest `next_at` of any lead.
    pub async fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self
            .rows("SELECT MIN(next_at) FROM automation", vec![])
            .await?
            .pop()
            .and_then(|r| r[0].time()))
    }

    /// One page of leads after `after` in id order (`limit` of them): those
    /// the automation has not seen as they are now (no state, or the lead or
    /// its workflow changed since), and where the next page starts (`None`
    /// at the end). Three indexed reads per page rather than one join: a
    /// join ordered and cut by id makes PostgreSQL's planner walk every
    /// state for every lead.
    pub async fn unseen_page(&self, after: &str, limit: usize) -> Result<(Vec<String>, Option<String>)> {
        let leads = self
            .rows(
                "SELECT id, version FROM leads WHERE id > $1 ORDER BY id LIMIT $2",
                vec![after.into(), (limit as i64).into()],
            )
            .await?;
        if leads.is_empty() {
            return Ok((Vec::new(), None));
        }
        let ids: Vec<Val> = leads.iter().map(|r| r[0].clone()).collect();
        let last = text(&leads[leads.len() - 1][0])?;
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let within = |table: &str, cols: &str| {
            format!(
                "SELECT lead, {cols} FROM {table} WHERE lead IN ({})",
                marks.join(", ")
            )
        };
        let states: HashMap<String, (i64, i64)> = self
            .rows(&within("automation", "lead_version, workflow_rev"), ids.clone())
            .await?
            .into_iter()
            .filter_map(|r| Some((r[0].owned_text()?, (r[1].int()?, r[2].int()?))))
            .collect();
        let revs: HashMap<String, i64> = self
            .rows(&within("workflow", "rev"), ids)
            .await?
            .into_iter()
            .filter_map(|r| Some((r[0].owned_text()?, r[1].int()?)))
            .collect();
        let mut unseen = Vec::new();
        for r in &leads {
            let id = text(&r[0])?;
            let version = r[1].int().unwrap_or(0);
            let rev = revs.get(&id).copied().unwrap_or(0);
            if states.get(&id) != Some(&(version, rev)) {
                unseen.push(id);
            }
        }
        let next = (leads.len() == limit).then_some(last);
        Ok((unseen, next))
    }

    /// Up to `limit` leads the automation has not seen as they are now,
    /// after `after` in id order (walking pages of leads until it has them).
    pub async fn unseen(&self, after: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut from = after.to_owned();
        loop {
            let (page, next) = self.unseen_page(&from, 1000).await?;
            out.extend(page);
            match next {
                Some(n) if out.len() < limit => from = n,
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Makes sure every rep has a load row, then recounts every rep's open
    /// leads from the leads counted towards them.
    pub async fn recount_loads(&self, reps: &[String]) -> Result<()> {
        let mut ops: Vec<Op> = reps
            .iter()
            .map(|r| {
                exec(
                    "INSERT INTO rep_load (rep, open_leads, assigned, last_assigned) VALUES ($1, 0, 0, 0) \
                     ON CONFLICT (rep) DO NOTHING",
                    vec![r.into()],
                )
            })
            .collect();
        if self.sql.postgres() {
            // Under READ COMMITTED the UPDATE's count would come from a
            // snapshot taken before it waited for a save holding a row:
            // take the rows first, then count with a fresh snapshot.
            ops.push(query("SELECT rep FROM rep_load ORDER BY rep FOR UPDATE", vec![]));
        }
        ops.push(exec(
            "UPDATE rep_load SET open_leads = (SELECT COUNT(*) FROM automation a WHERE a.counted_owner = rep_load.rep)",
            vec![],
        ));
        self.sql
            .run(ops)
            .await?
            .map_err(|_| StoreError::Database("recount".into()))?;
        Ok(())
    }

    pub async fn loads(&self) -> Result<Vec<RepLoad>> {
        self.rows(
            "SELECT rep, open_leads, assigned, last_assigned FROM rep_load ORDER BY rep",
            vec![],
        )
        .await?
        .into_iter()
        .map(|r| {
            Ok(RepLoad {
                rep: text(&r[0])?,
                open_leads: r[1].int().unwrap_or(0),
                assigned: r[2].int().unwrap_or(0),
                last_assigned: r[3].int().unwrap_or(0),
            })
        })
        .collect()
    }

    /// The nurture list, in lead id order after `after`: (lead, since).
    pub async fn nurture(&self, after: &str, limit: usize) -> Result<Vec<(String, Timestamp)>> {
        self.rows(
            "SELECT lead, nurture_since FROM automation WHERE nurture_since IS NOT NULL AND lead > $1 \
             ORDER BY lead LIMIT $2",
            vec![after.into(), (limit as i64).into()],
        )
        .await?
        .into_iter()
        .map(|r| Ok((text(&r[0])?, r[1].time().unwrap_or_default())))
        .collect()
    }

    pub async fn notifications(
        &self,
        recipient: &str,
        unread_only: bool,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        let filter = if unread_only { " AND read_at IS NULL" } else { "" };
        self.rows(
            &format!(
                "SELECT id, recipient, lead, at, trigger_id, message, read_at FROM notifications \
                 WHERE recipient = $1{filter} ORDER BY at DESC, id LIMIT $2"
            ),
            vec![recipient.into(), (limit as i64).into()],
        )
        .await?
        .into_iter()
        .map(|r| {
            Ok(Notification {
                id: text(&r[0])?,
                recipient: text(&r[1])?,
                lead: r[2].owned_text(),
                at: r[3].time().unwrap_or_default(),
                trigger: r[4].owned_text(),
                message: text(&r[5])?,
                read_at: r[6].time(),
            })
        })
        .collect()
    }

    /// Marks a notification read; false when it is not the recipient's.
    pub async fn mark_read(&self, id: &str, recipient: &str, now: Timestamp) -> Result<bool> {
        Ok(self
            .sql
            .run(vec![guard(
                "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND recipient = $2",
                vec![id.into(), recipient.into(), now.into()],
            )])
            .await?
            .is_ok())
    }

    pub async fn create_webhook(&self, w: &Webhook) -> Result<()> {
        self.sql
            .run(vec![exec(
                "INSERT INTO webhooks (id, url, events, secret, created_at, created_by, active) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    w.id.as_str().into(),
                    w.url.as_str().into(),
                    format!(",{},", w.events.join(",")).into(),
                    w.secret.as_str().into(),
                    w.created_at.into(),
                    w.created_by.clone().into(),
                    i64::from(w.active).into(),
                ],
            )])
            .await?
            .map_err(|_| StoreError::Database("create webhook".into()))?;
        Ok(())
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.rows(
            "SELECT id, url, events, secret, created_at, created_by, active FROM webhooks ORDER BY created_at, id",
            vec![],
        )
        .await?
        .into_iter()
        .map(|r| {
            Ok(Webhook {
                id: text(&r[0])?,
                url: text(&r[1])?,
                events: text(&r[2])?
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                secret: text(&r[3])?,
                created_at: r[4].time().unwrap_or_default(),
                created_by: r[5].owned_text(),
                active: r[6].int() == Some(1),
            })
        })
        .collect()
    }

    /// Deletes a subscription and its delivery log; false when there was none.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        Ok(self
            .sql
            .run(vec![guard("DELETE FROM webhooks WHERE id = $1", vec![id.into()])])
            .await?
            .is_ok())
    }

    /// Takes up to `limit` deliveries due by `now` to send, setting them
    /// aside until `lease_until` (if this instance stops before it records
    /// the try, another takes them up then).
    pub async fn claim(&self, now: Timestamp, lease_until: Timestamp, limit: usize) -> Result<Vec<Claimed>> {
        let skip = if self.sql.postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let rows = self
            .sql
            .run(vec![query(
                format!(
                    "UPDATE deliveries SET next_at = $2 WHERE id IN (SELECT id FROM deliveries \
                     WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at LIMIT $3{skip}) \
                     RETURNING id, webhook, type, payload, attempts"
                ),
                vec![now.into(), lease_until.into(), (limit as i64).into()],
            )])
            .await?
            .map_err(|_| StoreError::Database("claim".into()))?
            .pop()
            .unwrap_or_default();
        rows.into_iter()
            .map(|r| {
                Ok(Claimed {
                    id: text(&r[0])?,
                    webhook: text(&r[1])?,
                    kind: text(&r[2])?,
                    payload: text(&r[3])?,
                    attempts: r[4].int().unwrap_or(0),
                    lease: lease_until,
                })
            })
            .collect()
    }

    /// Records tries: delivered, to retry at a time, or given up. A try
    /// counts only while its claim stands (`next_at` still the lease it was
    /// claimed with): a late answer after the lease ran out, or after a
    /// redelivery by hand, is not recorded over the newer state.
    pub async fn record(&self, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(attempts.len() * 2);
        for a in attempts {
            let (state, next) = match (a.ok, a.retry_at) {
                (true, _) => ("delivered", a.at),
                (false, Some(t)) => ("pending", t),
                (false, None) => ("failed", a.at),
            };
            ops.push(exec(
                "UPDATE deliveries SET attempts = attempts + 1, state = $2, next_at = $3, \
                 delivered_at = CASE WHEN $2 = 'delivered' THEN $4 ELSE delivered_at END, \
                 last_status = $5, last_error = $6 WHERE id = $1 AND state = 'pending' AND next_at = $7",
                vec![
                    a.delivery.as_str().into(),
                    state.into(),
                    next.into(),
                    a.at.into(),
                    a.status.into(),
                    a.error.clone().into(),
                    a.lease.into(),
                ],
            ));
            let log = exec(
                "INSERT INTO delivery_attempts (delivery, attempt, at, status, error, millis) \
                 SELECT id, attempts + 1, CAST($2 AS BIGINT), CAST($3 AS BIGINT), CAST($4 AS TEXT), CAST($5 AS BIGINT) \
                 FROM deliveries WHERE id = $1 AND state = 'pending' AND next_at = $6 \
                 ON CONFLICT (delivery, attempt) DO NOTHING",
                vec![
                    a.delivery.as_str().into(),
                    a.at.into(),
                    a.status.into(),
                    a.error.clone().into(),
                    a.millis.into(),
                    a.lease.into(),
                ],
            );
            // The log line first, while the claim is still as it was.
            let update = ops.pop().expect("just pushed");
            ops.push(log);
            ops.push(update);
        }
        self.sql
            .run(ops)
            .await?
            .map_err(|_| StoreError::Database("record".into()))?;
        Ok(())
    }

    /// A subscription's deliveries, newest first (optionally in one state).
    pub async fn deliveries(
        &self,
        webhook: &str,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>> {
        let (filter, mut args) = (
            if state.is_some() { " AND state = $3" } else { "" },
            vec![webhook.into(), (limit as i64).into()],
        );
        if let Some(s) = state {
            args.push(s.into());
        }
        self.rows(
            &format!(
                "{DELIVERY_SELECT} WHERE webhook = $1{filter} ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            args,
        )
        .await?
        .iter()
        .map(|r| delivery_from(r))
        .collect()
    }

    /// One delivery with its tries: (at, status, error, millis).
    pub async fn delivery(&self, id: &str) -> Result<Option<(DeliveryRecord, Vec<Value>)>> {
        let Some(r) = self
            .rows(&format!("{DELIVERY_SELECT} WHERE id = $1"), vec![id.into()])
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let tries = self
            .rows(
                "SELECT attempt, at, status, error, millis FROM delivery_attempts WHERE delivery = $1 ORDER BY attempt",
                vec![id.into()],
            )
            .await?
            .into_iter()
            .map(|t| {
                serde_json::json!({
                    "attempt": t[0].int(),
                    "at": t[1].time().map(|t| t.to_string()),
                    "status": t[2].int(),
                    "error": t[3].text(),
                    "millis": t[4].int(),
                })
            })
            .collect();
        Ok(Some((delivery_from(&r)?, tries)))
    }

    /// Sends a delivery again (same id), whatever its state; false when the
    /// subscription has no such delivery.
    pub async fn redeliver(&self, webhook: &str, id: &str, now: Timestamp) -> Result<bool> {
        Ok(self
            .sql
            .run(vec![guard(
                "UPDATE deliveries SET state = 'pending', next_at = $3 WHERE id = $2 AND webhook = $1",
                vec![webhook.into(), id.into(), now.into()],
            )])
            .await?
            .is_ok())
    }

    /// Counts of deliveries per state (for metrics and benchmarks).
    pub async fn delivery_counts(&self) -> Result<HashMap<String, i64>> {
        Ok(self
            .rows("SELECT state, COUNT(*) FROM deliveries GROUP BY state", vec![])
            .await?
            .into_iter()
            .filter_map(|r| Some((r[0].owned_text()?, r[1].int()?)))
            .collect())
    }

    /// Open tasks due in (from, to], soonest first.
    pub async fn due_tasks(&self, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<DueTask>> {
        self.rows(
            "SELECT id, lead, owner, due_at, doc FROM tasks WHERE state = 'open' AND due_at > $1 AND due_at <= $2 \
             ORDER BY due_at, id LIMIT $3",
            vec![from.into(), to.into(), (limit.min(i64::MAX as usize) as i64).into()],
        )
        .await?
        .into_iter()
        .map(|r| {
            let doc: Value = serde_json::from_str(&text(&r[4])?).unwrap_or_default();
            Ok(DueTask {
                id: text(&r[0])?,
                lead: text(&r[1])?,
                owner: r[2].owned_text(),
                due: r[3].time().unwrap_or_default(),
                title: doc["title"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect()
    }
}

fn log_op(lead: &str, e: &LogEntry) -> Op {
    exec(
        wsql::INSERT_LOG,
        vec![
            lead.into(),
            e.at.into(),
            e.actor.as_str().into(),
            e.kind.as_str().into(),
            e.detail.to_string().into(),
        ],
    )
}

fn notification_op(n: &Notification) -> Op {
    exec(
        "INSERT INTO notifications (id, recipient, lead, at, trigger_id, message, read_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT (id) DO NOTHING",
        vec![
            n.id.as_str().into(),
            n.recipient.as_str().into(),
            n.lead.clone().into(),
            n.at.into(),
            n.trigger.clone().into(),
            n.message.as_str().into(),
        ],
    )
}

/// One delivery per active subscription to the happening's type (or to `*`).
fn happening_op(h: &Happening) -> Op {
    exec(
        "INSERT INTO deliveries (id, webhook, lead, type, occurred_at, payload, state, attempts, next_at, created_at) \
         SELECT CAST($1 AS TEXT) || '.' || w.id, w.id, CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT), \
         CAST($5 AS TEXT), 'pending', 0, CAST($4 AS BIGINT), CAST($4 AS BIGINT) FROM webhooks w \
         WHERE w.active = 1 AND (w.events LIKE '%,' || CAST($3 AS TEXT) || ',%' OR w.events LIKE '%,*,%') \
         ON CONFLICT (id) DO NOTHING",
        vec![
            h.id.as_str().into(),
            h.lead.clone().into(),
            h.kind.as_str().into(),
            h.occurred_at.into(),
            h.payload.to_string().into(),
        ],
    )
}

pub(crate) fn text(v: &Val) -> Result<String> {
    v.owned_text()
        .ok_or_else(|| StoreError::Corrupt("an automation row lacks a text value".into()))
}

fn ids(rows: Rows) -> Result<Vec<String>> {
    rows.iter().map(|r| text(&r[0])).collect()
}

fn record_from(r: &[Val]) -> Result<AutomationRecord> {
    Ok(AutomationRecord {
        rev: r[0].int().unwrap_or(0),
        lead_version: r[1].int().unwrap_or(0),
        workflow_rev: r[2].int().unwrap_or(0),
        next_at: r[3].time(),
        nurture_since: r[4].time(),
        counted_owner: r[5].owned_text(),
        doc: serde_json::from_str(&text(&r[6])?)
            .map_err(|e| StoreError::Corrupt(format!("a lead's automation document: {e}")))?,
    })
}

fn delivery_from(r: &[Val]) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: text(&r[0])?,
        webhook: text(&r[1])?,
        lead: r[2].owned_text(),
        kind: text(&r[3])?,
        occurred_at: r[4].time().unwrap_or_default(),
        state: text(&r[5])?,
        attempts: r[6].int().unwrap_or(0),
        next_at: r[7].time().unwrap_or_default(),
        delivered_at: r[8].time(),
        last_status: r[9].int(),
        last_error: r[10].owned_text(),
    })
}
