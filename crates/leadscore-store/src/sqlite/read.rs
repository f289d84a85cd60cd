//! Reads, on the pool of read-only connections.

use std::sync::Mutex;

use leadscore_core::{Event, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use super::{LEAD_SELECT, lead_from_row};
use crate::leads::like_pattern;
use crate::records::*;
use crate::rescore::{ActiveModel, properties_from_json};
use crate::{Result, StoreError};

pub(super) fn lead(c: &Connection, id: &str) -> Result<Option<LeadRecord>> {
    Ok(
        c.prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], lead_from_row)
            .optional()?,
    )
}

pub(super) fn list(c: &Connection, q: &LeadQuery) -> Result<(Vec<LeadRecord>, Option<Cursor>)> {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(b) = &q.band {
        conds.push(format!("band = {}", arg(b.clone().into())));
    }
    if let Some(g) = &q.grade {
        conds.push(format!("grade = {}", arg(g.clone().into())));
    }
    if let Some(m) = q.mql {
        conds.push(format!("mql = {}", arg(i64::from(m).into())));
    }
    if let Some(o) = &q.owner {
        conds.push(format!("owner = {}", arg(o.clone().into())));
    }
    if let Some(t) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
        conds.push(format!("search LIKE {} ESCAPE '\\'", arg(like_pattern(t).into())));
    }
    let order = match (&q.order, &q.after) {
        (LeadOrder::Score, after) => {
            if let Some(Cursor::Score { score, id }) = after {
                let r = arg(score.unwrap_or(crate::leads::UNSCORED_RANK).into());
                let i = arg(id.clone().into());
                conds.push(format!("(rank < {r} OR (rank = {r} AND id > {i}))"));
            }
            "rank DESC, id"
        }
        (LeadOrder::Created, after) => {
            if let Some(Cursor::Created { at, id }) = after {
                let a = arg((*at).into());
                let i = arg(id.clone().into());
                conds.push(format!("(created_at < {a} OR (created_at = {a} AND id > {i}))"));
            }
            "created_at DESC, id"
        }
    };
    let limit = q.limit.clamp(1, 1000);
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {LEAD_SELECT} FROM leads {filter} ORDER BY {order} LIMIT {}",
        limit + 1
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut leads: Vec<LeadRecord> = stmt
        .query_map(rusqlite::params_from_iter(args), lead_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next = if leads.len() > limit {
        leads.truncate(limit);
        leads.last().map(|l| Cursor::after(q.order, l))
    } else {
        None
    };
    Ok((leads, next))
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

/// The active model, parsed once per name (models never change under a name).
pub(super) fn active_model(c: &Connection, parsed: &Mutex<Vec<ActiveModel>>) -> Result<Option<ActiveModel>> {
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT name, toml FROM models WHERE active = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((name, toml)) = row else { return Ok(None) };
    let mut parsed = parsed.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = parsed.iter().find(|m| m.name == name) {
        return Ok(Some(m.clone()));
    }
    let model = ActiveModel::parse(&name, &toml).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    parsed.push(model.clone());
    Ok(Some(model))
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
