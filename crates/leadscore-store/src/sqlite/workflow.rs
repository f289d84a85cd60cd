//! The rep's work on a lead, in SQLite: workflow documents, tasks, the log.

use std::collections::HashMap;

use leadscore_core::Timestamp;
use leadscore_core::workflow::Workflow;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use crate::leads::SqlValue;
use crate::workflow::*;
use crate::{Result, StoreError};

pub(super) fn workflows(c: &Connection, ids: &[String]) -> Result<HashMap<String, WorkflowRecord>> {
    let mut stmt = c.prepare_cached("SELECT rev, doc FROM workflow WHERE lead = ?1")?;
    let mut out = HashMap::new();
    for id in ids {
        if let Some((rev, doc)) = stmt
            .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?
        {
            out.insert(id.clone(), workflow_from_doc(&doc, rev)?);
        }
    }
    Ok(out)
}

pub(super) fn save_workflow(
    c: &Connection,
    lead: &str,
    rev: i64,
    wf: &Workflow,
    save: &WorkflowSave,
) -> Result<bool> {
    if c.prepare_cached(&for_sqlite(sql::LEAD_EXISTS))?
        .query_row([lead], |_| Ok(()))
        .optional()?
        .is_none()
    {
        return Err(StoreError::NotFound(format!("lead `{lead}`")));
    }
    let (rating, status) = workflow_columns(wf);
    let doc = doc_json(wf);
    let written = if rev == 0 {
        c.prepare_cached(&for_sqlite(sql::INSERT_WORKFLOW))?
            .execute(params![lead, rating, status, doc])?
    } else {
        c.prepare_cached(&for_sqlite(sql::UPDATE_WORKFLOW))?
            .execute(params![lead, rating, status, doc, rev])?
    };
    if written == 0 {
        return Ok(false);
    }
    for entry in &save.log {
        insert_log(c, lead, entry)?;
    }
    for t in &save.new_tasks {
        c.prepare_cached(&for_sqlite(sql::INSERT_TASK))?.execute(params![
            t.id,
            t.lead,
            t.owner,
            state_word(t.open),
            t.due.as_micros(),
            doc_json(&t.doc)
        ])?;
    }
    Ok(true)
}

fn insert_log(c: &Connection, lead: &str, e: &LogEntry) -> Result<()> {
    c.prepare_cached(&for_sqlite(sql::INSERT_LOG))?.execute(params![
        lead,
        e.at.as_micros(),
        e.actor,
        e.kind,
        e.detail.to_string()
    ])?;
    Ok(())
}

pub(super) fn lead_log(c: &Connection, lead: &str) -> Result<Vec<LogEntry>> {
    let mut stmt = c.prepare_cached(&for_sqlite(sql::SELECT_LOG))?;
    let rows = stmt.query_map([lead], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, actor, kind, detail) = row?;
        out.push(LogEntry {
            at: Timestamp::from_micros(at),
            actor,
            kind,
            detail: serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("a log line: {e}")))?,
        });
    }
    Ok(out)
}

/// A `tasks` row's values, as `TASK_SELECT` lists them.
type TaskRow = (String, String, Option<String>, String, i64, i64, String);

fn task_row(r: &rusqlite::Row) -> rusqlite::Result<TaskRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn tasks_from(rows: Vec<TaskRow>) -> Result<Vec<Task>> {
    rows.into_iter()
        .map(|(id, lead, owner, state, due, rev, doc)| {
            task_from_parts(id, lead, owner, &state, due, rev, &doc)
        })
        .collect()
}

pub(super) fn list_tasks(c: &Connection, q: &TaskQuery) -> Result<Vec<Task>> {
    let (sql, args) = task_list_sql(q, '?');
    let args = args.into_iter().map(|v| match v {
        SqlValue::Text(t) => Value::Text(t),
        SqlValue::Int(i) => Value::Integer(i),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Bool(b) => Value::Integer(i64::from(b)),
    });
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), task_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tasks_from(rows)
}

pub(super) fn get_task(c: &Connection, id: &str) -> Result<Option<Task>> {
    let row = c
        .prepare_cached(&format!("SELECT {TASK_SELECT} FROM tasks WHERE id = ?1"))?
        .query_row([id], task_row)
        .optional()?;
    Ok(tasks_from(row.into_iter().collect())?.pop())
}

pub(super) fn save_task(c: &Connection, t: &Task, log: &LogEntry) -> Result<bool> {
    let written = c.prepare_cached(&for_sqlite(sql::UPDATE_TASK))?.execute(params![
        t.id,
        t.owner,
        state_word(t.open),
        t.due.as_micros(),
        doc_json(&t.doc),
        t.rev
    ])?;
    if written == 0 {
        return Ok(false);
    }
    insert_log(c, &t.lead, log)?;
    Ok(true)
}

pub(super) fn init_workflows(c: &Connection, items: &[(String, Workflow)]) -> Result<()> {
    let mut stmt = c.prepare_cached(&for_sqlite(sql::INIT_WORKFLOW))?;
    for (lead, wf) in items {
        let (rating, status) = workflow_columns(wf);
        stmt.execute(params![lead, rating, status, doc_json(wf)])?;
    }
    Ok(())
}
