//! Reads, each on a pooled connection outside any explicit transaction.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use leadscore_core::{Event, Timestamp};
use tokio_postgres::types::ToSql;

use super::{LEAD_SELECT, TxResult, lead_from_row};
use crate::StoreError;
use crate::leads::{ListSql, SqlValue};
use crate::records::*;
use crate::rescore::properties_from_json;

pub(super) async fn lead(c: &impl GenericClient, id: &str) -> TxResult<Option<LeadRecord>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = $1"))
        .await?;
    match c.query_opt(&stmt, &[&id]).await? {
        Some(row) => Ok(Some(lead_from_row(&row)?.0)),
        None => Ok(None),
    }
}

pub(super) async fn leads(c: &impl GenericClient, ids: &[String]) -> TxResult<HashMap<String, LeadRecord>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ANY($1)"))
        .await?;
    let mut out = HashMap::with_capacity(ids.len());
    for row in c.query(&stmt, &[&ids]).await? {
        let r = lead_from_row(&row)?.0;
        out.insert(r.lead.id().to_owned(), r);
    }
    Ok(out)
}

pub(super) async fn list(
    c: &impl GenericClient,
    q: &LeadQuery,
) -> TxResult<(Vec<LeadRecord>, Option<Cursor>)> {
    let list = ListSql::new(q, '$');
    let args: Vec<Box<dyn ToSql + Sync + Send>> = list
        .args
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                SqlValue::Text(t) => Box::new(t.clone()),
                SqlValue::Int(i) => Box::new(*i),
                SqlValue::Real(r) => Box::new(*r),
                SqlValue::Bool(b) => Box::new(*b),
            }
        })
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| &**a as _).collect();
    let stmt = c.prepare_cached(&list.sql(LEAD_SELECT)).await?;
    let mut leads = Vec::new();
    for row in c.query(&stmt, &params).await? {
        leads.push(lead_from_row(&row)?.0);
    }
    Ok(list.page(leads, q.order))
}

pub(super) async fn events(c: &impl GenericClient, id: &str) -> TxResult<Vec<Event>> {
    let stmt = c
        .prepare_cached(&format!("{EVENT_SELECT} WHERE lead = $1 ORDER BY seq"))
        .await?;
    let mut out = Vec::new();
    for r in c.query(&stmt, &[&id]).await? {
        out.push(event_from_row(&r)?);
    }
    Ok(out)
}

const EVENT_SELECT: &str = "SELECT id, type, occurred_at, properties, lead FROM events";

fn event_from_row(r: &tokio_postgres::Row) -> TxResult<Event> {
    Ok(Event {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        occurred_at: Timestamp::from_micros(r.try_get(2)?),
        properties: properties_from_json(r.try_get::<_, Option<&str>>(3)?),
        lead: r.try_get(4)?,
    })
}

pub(super) async fn leads_events(
    c: &impl GenericClient,
    ids: &[String],
) -> TxResult<HashMap<String, Vec<Event>>> {
    let stmt = c
        .prepare_cached(&format!("{EVENT_SELECT} WHERE lead = ANY($1) ORDER BY lead, seq"))
        .await?;
    let mut out: HashMap<String, Vec<Event>> = HashMap::new();
    for r in c.query(&stmt, &[&ids]).await? {
        let e = event_from_row(&r)?;
        out.entry(e.lead.clone()).or_default().push(e);
    }
    Ok(out)
}

pub(super) async fn history(c: &impl GenericClient, id: &str) -> TxResult<Vec<HistoryEntry>> {
    let stmt = c
        .prepare_cached("SELECT at, score, band, mql, model, cause FROM history WHERE lead = $1 ORDER BY seq")
        .await?;
    let mut out = Vec::new();
    for r in c.query(&stmt, &[&id]).await? {
        let cause: &str = r.try_get(5)?;
        out.push(HistoryEntry {
            at: Timestamp::from_micros(r.try_get(0)?).to_string(),
            score: r.try_get(1)?,
            band: r.try_get(2)?,
            mql: r.try_get(3)?,
            model: r.try_get(4)?,
            cause: serde_json::from_str(cause)
                .map_err(|e| StoreError::Corrupt(format!("history cause: {e}")))?,
        });
    }
    Ok(out)
}

pub(super) async fn models(c: &impl GenericClient, name: Option<&str>) -> TxResult<Vec<ModelRecord>> {
    let stmt = c
        .prepare_cached(
            "SELECT name, toml, created_at, active, activated_at, rescore FROM models \
             WHERE $1::text IS NULL OR name = $1 ORDER BY created_at, name",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&stmt, &[&name]).await? {
        out.push(ModelRecord {
            name: r.try_get(0)?,
            toml: r.try_get(1)?,
            created_at: Timestamp::from_micros(r.try_get(2)?).to_string(),
            active: r.try_get(3)?,
            activated_at: r
                .try_get::<_, Option<i64>>(4)?
                .map(|t| Timestamp::from_micros(t).to_string()),
            rescore: r
                .try_get::<_, Option<&str>>(5)?
                .and_then(|s| serde_json::from_str(s).ok()),
        });
    }
    Ok(out)
}

pub(super) async fn token(c: &impl GenericClient, hash: &str) -> TxResult<Option<TokenRecord>> {
    let stmt = c
        .prepare_cached("SELECT hash, role, user_name, created_at FROM tokens WHERE hash = $1")
        .await?;
    match c.query_opt(&stmt, &[&hash]).await? {
        Some(r) => Ok(Some(TokenRecord {
            hash: r.try_get(0)?,
            role: r.try_get(1)?,
            user: r.try_get(2)?,
            created_at: Timestamp::from_micros(r.try_get(3)?),
        })),
        None => Ok(None),
    }
}
