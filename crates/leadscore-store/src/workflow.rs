//! What the store keeps of the rep's work on a lead: the workflow document
//! (rating, status, qualification), follow-up tasks and the log of who
//! changed what. The rules (allowed transitions, follow-up dates, checks)
//! live in `leadscore_core::workflow`; the store only keeps their results,
//! with compare-and-set revisions so that concurrent saves never overwrite
//! each other silently.

use leadscore_core::Timestamp;
use leadscore_core::workflow::Workflow;
use serde::{Deserialize, Serialize};

use crate::leads::SqlValue;
use crate::{Result, StoreError};

/// A lead's workflow and its revision (0: nothing stored yet, the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowRecord {
    pub workflow: Workflow,
    pub rev: i64,
}

/// One line of a lead's log: who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    #[serde(serialize_with = "as_rfc3339")]
    pub at: Timestamp,
    pub actor: String,
    /// `status`, `rating`, `qualification`, `activity`, `task_created`, `task_done`, ...
    pub kind: String,
    pub detail: serde_json::Value,
}

fn as_rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

/// A follow-up task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub lead: String,
    pub owner: Option<String>,
    pub open: bool,
    pub due: Timestamp,
    pub doc: TaskDoc,
    /// 0 for a task not stored yet.
    pub rev: i64,
}

/// The rest of a task, kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDoc {
    pub kind: String,
    pub title: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
    /// Every completion, snooze and reassignment: who, when, what.
    #[serde(default)]
    pub actions: Vec<TaskAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAction {
    pub action: String,
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Which tasks to list: open ones by default, soonest due first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    pub owner: Option<String>,
    pub lead: Option<String>,
    pub due_before: Option<Timestamp>,
    /// `Some(true)`: open only; `Some(false)`: done only; `None`: both.
    pub open: Option<bool>,
    pub limit: usize,
}

/// What a workflow save does besides storing the document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowSave {
    pub log: Vec<LogEntry>,
    pub new_tasks: Vec<Task>,
}

/// Columns of `tasks` as read, in order.
pub(crate) const TASK_SELECT: &str = "id, lead, owner, state, due_at, rev, doc";

pub(crate) fn state_word(open: bool) -> &'static str {
    if open { "open" } else { "done" }
}

/// A task from its row's values.
pub(crate) fn task_from_parts(
    id: String,
    lead: String,
    owner: Option<String>,
    state: &str,
    due_at: i64,
    rev: i64,
    doc: &str,
) -> Result<Task> {
    Ok(Task {
        id,
        lead,
        owner,
        open: state == "open",
        due: Timestamp::from_micros(due_at),
        doc: serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("a task's document: {e}")))?,
        rev,
    })
}

pub(crate) fn workflow_from_doc(doc: &str, rev: i64) -> Result<WorkflowRecord> {
    Ok(WorkflowRecord {
        workflow: serde_json::from_str(doc)
            .map_err(|e| StoreError::Corrupt(format!("a lead's workflow document: {e}")))?,
        rev,
    })
}

pub(crate) fn doc_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("workflow documents serialize")
}

/// The rating and status columns kept beside a workflow document.
pub(crate) fn workflow_columns(w: &Workflow) -> (Option<&'static str>, &'static str) {
    (
        w.rating.as_ref().map(|r| r.rating.as_str()),
        w.status.status.as_str(),
    )
}

/// SQL shared by both adapters, written with `$n` placeholders; SQLite's
/// copy turns them into `?n` (see [`for_sqlite`]).
pub(crate) mod sql {
    pub const INSERT_WORKFLOW: &str = "INSERT INTO workflow (lead, rating, status, rev, doc) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (lead) DO NOTHING";
    pub const UPDATE_WORKFLOW: &str =
        "UPDATE workflow SET rating = $2, status = $3, rev = rev + 1, doc = $4 WHERE lead = $1 AND rev = $5";
    pub const INSERT_LOG: &str =
        "INSERT INTO lead_log (lead, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)";
    pub const INSERT_TASK: &str =
        "INSERT INTO tasks (id, lead, owner, state, due_at, rev, doc) VALUES ($1, $2, $3, $4, $5, 1, $6)";
    pub const UPDATE_TASK: &str = "UPDATE tasks SET owner = $2, state = $3, due_at = $4, rev = rev + 1, doc = $5 WHERE id = $1 AND rev = $6";
    pub const INIT_WORKFLOW: &str = "INSERT INTO workflow (lead, rating, status, rev, doc) \
         SELECT $1, $2, $3, 1, $4 WHERE EXISTS (SELECT 1 FROM leads WHERE id = $1) ON CONFLICT (lead) DO NOTHING";
    pub const LEAD_EXISTS: &str = "SELECT 1 FROM leads WHERE id = $1";
    pub const SELECT_LOG: &str = "SELECT at, actor, kind, detail FROM lead_log WHERE lead = $1 ORDER BY seq";
}

/// A `$n` statement as SQLite's `?n`.
pub(crate) fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The task listing as SQL: `mark` is `?` (SQLite) or `$` (PostgreSQL).
pub(crate) fn task_list_sql(q: &TaskQuery, mark: char) -> (String, Vec<SqlValue>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let mut arg = |v: SqlValue| {
        args.push(v);
        format!("{mark}{}", args.len())
    };
    if let Some(open) = q.open {
        conds.push(format!(
            "state = {}",
            arg(SqlValue::Text(state_word(open).into()))
        ));
    }
    if let Some(o) = &q.owner {
        conds.push(format!("owner = {}", arg(SqlValue::Text(o.clone()))));
    }
    if let Some(l) = &q.lead {
        conds.push(format!("lead = {}", arg(SqlValue::Text(l.clone()))));
    }
    if let Some(t) = q.due_before {
        conds.push(format!("due_at < {}", arg(SqlValue::Int(t.as_micros()))));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (
        format!(
            "SELECT {TASK_SELECT} FROM tasks {filter} ORDER BY due_at, id LIMIT {}",
            q.limit.clamp(1, 1000)
        ),
        args,
    )
}

/// A fresh task id.
pub fn new_task_id() -> String {
    format!("tk_{}", uuid::Uuid::now_v7().simple())
}
