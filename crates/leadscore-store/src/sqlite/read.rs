//! Reads, on the pool of read-only connections.

use std::collections::HashMap;
use std::sync::Mutex;

use leadscore_core::{Event, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use super::{LEAD_SELECT, Models, lead_from_row};
use crate::leads::{ListSql, SqlValue};
use crate::records::*;
use crate::rescore::{ActiveModel, ActiveSet, parse_once, properties_from_json};
use crate::{Result, StoreError};

pub(super) fn lead(c: &Connection, parsed: &Mutex<Vec<ActiveModel>>, id: &str) -> Result<Option<LeadRecord>> {
    let models = Models { conn: c, parsed };
    Ok(
        c.prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], |r| lead_from_row(r, models))
            .optional()?,
    )
}

/// These leads, one cached lookup each (in-process, so no round trips to save).
pub(super) fn leads(
    c: &Connection,
    parsed: &Mutex<Vec<ActiveModel>>,
    ids: &[String],
) -> Result<HashMap<String, LeadRecord>> {
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = lead(c, parsed, id)? {
            out.insert(id.clone(), r);
        }
    }
    Ok(out)
}

pub(super) fn list(
    c: &Connection,
    parsed: &Mutex<Vec<ActiveModel>>,
    q: &LeadQuery,
) -> Result<(Vec<LeadRecord>, Option<Cursor>)> {
    let models = Models { conn: c, parsed };
    let list = ListSql::new(q, '?');
    let args = list.args.iter().map(|v| match v {
        SqlValue::Text(t) => Value::Text(t.clone()),
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Real(r) => Value::Real(*r),
        SqlValue::Bool(b) => Value::Integer(i64::from(*b)),
    });
    let mut stmt = c.prepare_cached(&list.sql(LEAD_SELECT))?;
    let leads: Vec<LeadRecord> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| lead_from_row(r, models))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(list.page(leads, q.order))
}

pub(super) fn events(c: &Connection, id: &str) -> Result<Vec<Event>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, type, occurred_at, properties FROM events WHERE lead = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Event {
            id: r.get(0)?,
            lead: id.to_owned(),
            kind: r.get(1)?,
            occurred_at: Timestamp::from_micros(r.get(2)?),
            properties: properties_from_json(r.get::<_, Option<String>>(3)?.as_deref()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn leads_events(c: &Connection, ids: &[String]) -> Result<HashMap<String, Vec<Event>>> {
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        let evs = events(c, id)?;
        if !evs.is_empty() {
            out.insert(id.clone(), evs);
        }
    }
    Ok(out)
}

pub(super) fn history(c: &Connection, id: &str) -> Result<Vec<HistoryEntry>> {
    let mut stmt = c.prepare_cached(
        "SELECT at, score, band, mql, model, cause FROM history WHERE lead = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, f64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, score, band, mql, model, cause) = row?;
        out.push(HistoryEntry {
            at: Timestamp::from_micros(at).to_string(),
            score,
            band,
            mql,
            model,
            cause: serde_json::from_str(&cause)
                .map_err(|e| StoreError::Corrupt(format!("history cause: {e}")))?,
        });
    }
    Ok(out)
}

pub(super) fn models(c: &Connection, name: Option<&str>) -> Result<Vec<ModelRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT name, toml, created_at, active, activated_at, rescore FROM models \
         WHERE ?1 IS NULL OR name = ?1 ORDER BY created_at, name",
    )?;
    let rows = stmt.query_map([name], |r| {
        Ok(ModelRecord {
            name: r.get(0)?,
            toml: r.get(1)?,
            created_at: Timestamp::from_micros(r.get(2)?).to_string(),
            active: r.get(3)?,
            activated_at: r
                .get::<_, Option<i64>>(4)?
                .map(|t| Timestamp::from_micros(t).to_string()),
            rescore: r
                .get::<_, Option<String>>(5)?
                .and_then(|s| serde_json::from_str(&s).ok()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The names of the active models, in activation order: read from the
/// partial index `models_active` alone, without the models' text.
pub(super) fn active_names(c: &Connection) -> Result<Vec<String>> {
    Ok(
        c.prepare_cached("SELECT name FROM models WHERE active = 1 ORDER BY activated_at, name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    )
}

/// The active models, each parsed once per name (models never change under a name).
pub(super) fn active_model(c: &Connection, parsed: &Mutex<Vec<ActiveModel>>) -> Result<Option<ActiveSet>> {
    models_named(c, parsed, &active_names(c)?)
}

/// The set of these models: a model's text is read and parsed only the first
/// time its name is seen (every read transaction and every write asks).
pub(super) fn models_named(
    c: &Connection,
    parsed: &Mutex<Vec<ActiveModel>>,
    names: &[String],
) -> Result<Option<ActiveSet>> {
    let members = names
        .iter()
        .map(|name| {
            parse_once(parsed, name, || {
                Ok(c.prepare_cached("SELECT toml FROM models WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))?)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ActiveSet::of(members))
}

pub(super) fn token(c: &Connection, hash: &str) -> Result<Option<TokenRecord>> {
    Ok(
        c.prepare_cached("SELECT hash, role, user_name, created_at FROM tokens WHERE hash = ?1")?
            .query_row([hash], |r| {
                Ok(TokenRecord {
                    hash: r.get(0)?,
                    role: r.get(1)?,
                    user: r.get(2)?,
                    created_at: Timestamp::from_micros(r.get(3)?),
                })
            })
            .optional()?,
    )
}
