//! The rep's work on a lead, in PostgreSQL: workflow documents, tasks, the log.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use leadscore_core::Timestamp;
use leadscore_core::workflow::Workflow;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, TxResult};
use crate::StoreError;
use crate::leads::SqlValue;
use crate::workflow::*;

pub(super) async fn workflows(
    c: &impl GenericClient,
    ids: &[String],
) -> TxResult<HashMap<String, WorkflowRecord>> {
    let stmt = c
        .prepare_cached("SELECT lead, rev, doc FROM workflow WHERE lead = ANY($1)")
        .await?;
    let mut out = HashMap::new();
    for row in c.query(&stmt, &[&ids]).await? {
        let (lead, rev, doc): (String, i64, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        out.insert(lead, workflow_from_doc(&doc, rev)?);
    }
    Ok(out)
}

async fn insert_log(c: &impl GenericClient, lead: &str, e: &LogEntry) -> TxResult<()> {
    let stmt = c.prepare_cached(sql::INSERT_LOG).await?;
    c.execute(
        &stmt,
        &[&lead, &e.at.as_micros(), &e.actor, &e.kind, &e.detail.to_string()],
    )
    .await?;
    Ok(())
}

impl PgStore {
    pub(super) async fn save_workflow_once(
        &self,
        lead: &str,
        rev: i64,
        wf: &Workflow,
        save: &WorkflowSave,
    ) -> TxResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if tx.query_opt(sql::LEAD_EXISTS, &[&lead]).await?.is_none() {
            return Err(StoreError::NotFound(format!("lead `{lead}`")).into());
        }
        let (rating, status) = workflow_columns(wf);
        let doc = doc_json(wf);
        let written = if rev == 0 {
            tx.execute(sql::INSERT_WORKFLOW, &[&lead, &rating, &status, &doc])
                .await?
        } else {
            tx.execute(sql::UPDATE_WORKFLOW, &[&lead, &rating, &status, &doc, &rev])
                .await?
        };
        if written == 0 {
            return Ok(false);
        }
        for entry in &save.log {
            insert_log(&tx, lead, entry).await?;
        }
        for t in &save.new_tasks {
            tx.execute(
                sql::INSERT_TASK,
                &[
                    &t.id,
                    &t.lead,
                    &t.owner,
                    &state_word(t.open),
                    &t.due.as_micros(),
                    &doc_json(&t.doc),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn save_task_once(&self, t: &Task, log: &LogEntry) -> TxResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let written = tx
            .execute(
                sql::UPDATE_TASK,
                &[
                    &t.id,
                    &t.owner,
                    &state_word(t.open),
                    &t.due.as_micros(),
                    &doc_json(&t.doc),
                    &t.rev,
                ],
            )
            .await?;
        if written == 0 {
            return Ok(false);
        }
        insert_log(&tx, &t.lead, log).await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) async fn init_workflows(c: &impl GenericClient, items: &[(String, Workflow)]) -> TxResult<()> {
    let (mut leads, mut ratings, mut statuses, mut docs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (lead, wf) in items {
        let (rating, status) = workflow_columns(wf);
        leads.push(lead.as_str());
        ratings.push(rating);
        statuses.push(status);
        docs.push(doc_json(wf));
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO workflow (lead, rating, status, rev, doc) \
             SELECT u.lead, u.rating, u.status, 1, u.doc \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(lead, rating, status, doc) \
             WHERE EXISTS (SELECT 1 FROM leads l WHERE l.id = u.lead) ON CONFLICT (lead) DO NOTHING",
        )
        .await?;
    c.execute(&stmt, &[&leads, &ratings, &statuses, &docs]).await?;
    Ok(())
}

pub(super) async fn lead_log(c: &impl GenericClient, lead: &str) -> TxResult<Vec<LogEntry>> {
    let stmt = c.prepare_cached(sql::SELECT_LOG).await?;
    let mut out = Vec::new();
    for row in c.query(&stmt, &[&lead]).await? {
        let detail: String = row.try_get(3)?;
        out.push(LogEntry {
            at: Timestamp::from_micros(row.try_get(0)?),
            actor: row.try_get(1)?,
            kind: row.try_get(2)?,
            detail: serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("a log line: {e}")))?,
        });
    }
    Ok(out)
}

fn task_from_row(r: &Row) -> TxResult<Task> {
    let state: String = r.try_get(3)?;
    let doc: String = r.try_get(6)?;
    Ok(task_from_parts(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        &state,
        r.try_get(4)?,
        r.try_get(5)?,
        &doc,
    )?)
}

pub(super) async fn list_tasks(c: &impl GenericClient, q: &TaskQuery) -> TxResult<Vec<Task>> {
    let (sql, args) = task_list_sql(q, '$');
    let boxed: Vec<Box<dyn ToSql + Sync + Send>> = args
        .into_iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                SqlValue::Text(t) => Box::new(t),
                SqlValue::Int(i) => Box::new(i),
                SqlValue::Real(r) => Box::new(r),
                SqlValue::Bool(b) => Box::new(b),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|a| &**a as _).collect();
    let stmt = c.prepare_cached(&sql).await?;
    c.query(&stmt, &params).await?.iter().map(task_from_row).collect()
}

pub(super) async fn get_task(c: &impl GenericClient, id: &str) -> TxResult<Option<Task>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {TASK_SELECT} FROM tasks WHERE id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(task_from_row)
        .transpose()
}
