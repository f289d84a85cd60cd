//! What the writer thread does: every write, with its rescoring.

use std::collections::HashMap;

use leadscore_core::{Event, Lead, StdField, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::{LEAD_SELECT, Writer, lead_from_row};
use crate::leads::{Target, apply_patch, attributes_json, merge_new, rank, search_text};
use crate::records::*;
use crate::rescore::{EventRow, properties_json, stored_score, worth_recording};
use crate::{LEAD_COLUMNS, Result, StoreError, email_key, new_lead_id};

/// Leads rescored per writer transaction while a model is activated, so
/// ingest goes on in between.
pub(super) const RESCORE_CHUNK: usize = 5000;

/// A lead touched by an ingest batch: its row state, whether its cache entry
/// was current before the inserts, and the ids of its new events.
type Touched = (RowState, bool, Vec<String>);

/// A lead's row state the writer needs before rescoring it.
struct RowState {
    version: i64,
    last: Option<(f64, String, bool)>,
}

impl Writer {
    fn row_state(&self, id: &str) -> Result<Option<RowState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, score_json IS NOT NULL, rank, band, mql FROM leads WHERE id = ?1",
        )?;
        Ok(stmt
            .query_row([id], |r| {
                let scored: bool = r.get(1)?;
                Ok(RowState {
                    version: r.get(0)?,
                    last: if scored {
                        Some((
                            r.get(2)?,
                            r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            r.get::<_, Option<bool>>(4)?.unwrap_or(false),
                        ))
                    } else {
                        None
                    },
                })
            })
            .optional()?)
    }

    /// Makes the cache entry for `id` current at `version`, reading the lead
    /// and its events when it is not.
    fn ensure_cached(&mut self, id: &str, version: i64) -> Result<()> {
        if self.cache.current(id, version).is_some() {
            return Ok(());
        }
        let record = self
            .conn
            .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], lead_from_row)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT type, properties, occurred_at, seq FROM events WHERE lead = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut raw: Vec<(String, Option<String>, i64, i64)> = Vec::new();
        while let Some(r) = rows.next()? {
            raw.push((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        }
        self.cache.load(
            record.lead,
            version,
            raw.iter().map(|(k, p, at, seq)| EventRow {
                kind: k,
                properties: p.as_deref(),
                at: Timestamp::from_micros(*at),
                seq: *seq,
            }),
        );
        Ok(())
    }

    /// Rescores a cached lead, stores the score with the new version, and
    /// records the change in its history when it is worth recording.
    fn store_score(
        &mut self,
        id: &str,
        version: i64,
        last: Option<(f64, String, bool)>,
        now: Timestamp,
        cause: &Cause,
    ) -> Result<()> {
        let chosen = match &self.active {
            Some(set) => {
                let lead = self.cache.lead(id).ok_or_else(|| {
                    StoreError::Database(format!("internal: lead `{id}` is not loaded for scoring"))
                })?;
                set.for_lead(lead).cloned()
            }
            None => None,
        };
        let Some(model) = chosen else {
            // No model is active, or none applies to this lead: unscored.
            self.conn
                .prepare_cached(
                    "UPDATE leads SET version = ?2, rank = ?3, band = NULL, grade = NULL, mql = NULL, \
                     score_json = NULL WHERE id = ?1",
                )?
                .execute(params![id, version, crate::leads::UNSCORED_RANK])?;
            self.cache.set_version(id, version);
            return Ok(());
        };
        let activated;
        let cause = match cause {
            // After an activation each lead's entry names the model that scored it.
            Cause::ModelActivated { .. } => {
                activated = Cause::ModelActivated {
                    model: model.name.clone(),
                };
                &activated
            }
            other => other,
        };
        let score = self.cache.score(id, &model, now).expect("the lead is cached");
        let stored = stored_score(&model, &score, now);
        let json = serde_json::to_string(&stored).expect("a score serializes");
        self.conn
            .prepare_cached(
                "UPDATE leads SET version = ?2, rank = ?3, band = ?4, grade = ?5, mql = ?6, score_json = ?7 \
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                version,
                stored.score,
                stored.band,
                stored.grade,
                stored.mql,
                json
            ])?;
        self.cache.set_version(id, version);
        if worth_recording(last.as_ref().map(|(s, b, m)| (*s, b.as_str(), *m)), &stored) {
            self.conn
                .prepare_cached(
                    "INSERT INTO history (lead, at, score, band, mql, model, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    id,
                    now.as_micros(),
                    stored.score,
                    stored.band,
                    stored.mql,
                    model.name,
                    serde_json::to_string(cause).expect("a cause serializes")
                ])?;
        }
        Ok(())
    }

    pub(super) fn ingest(&mut self, events: &[Event], now: Timestamp) -> Result<Vec<IngestStatus>> {
        let mut statuses = Vec::with_capacity(events.len());
        // Per lead of this batch: its row state (None: unknown), whether its
        // cache entry was current before the inserts, and the new event ids.
        let mut leads: HashMap<&str, Option<Touched>> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for e in events {
            if !leads.contains_key(e.lead.as_str()) {
                let state = self.row_state(&e.lead)?.map(|s| {
                    let fresh = self.cache.current(&e.lead, s.version).is_some();
                    (s, fresh, Vec::new())
                });
                leads.insert(&e.lead, state);
            }
            let Some((_, fresh, ids)) = leads.get_mut(e.lead.as_str()).and_then(Option::as_mut) else {
                statuses.push(IngestStatus::Rejected(format!("unknown lead `{}`", e.lead)));
                continue;
            };
            let props = properties_json(&e.properties);
            let inserted = self
                .conn
                .prepare_cached(
                    "INSERT INTO events (id, lead, type, occurred_at, properties, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    e.id,
                    e.lead,
                    e.kind,
                    e.occurred_at.as_micros(),
                    props,
                    now.as_micros()
                ])?;
            if inserted == 0 {
                statuses.push(IngestStatus::Duplicate);
                continue;
            }
            if ids.is_empty() {
                order.push(&e.lead);
            }
            ids.push(e.id.clone());
            if *fresh {
                let seq = self.conn.last_insert_rowid();
                self.cache.push_event(
                    &e.lead,
                    EventRow {
                        kind: &e.kind,
                        properties: props.as_deref(),
                        at: e.occurred_at,
                        seq,
                    },
                );
            }
            statuses.push(IngestStatus::Accepted);
        }
        for id in order {
            let Some(Some((state, fresh, ids))) = leads.remove(id) else {
                continue;
            };
            if !fresh {
                // Read with the new events already in.
                self.ensure_cached(id, state.version)?;
            }
            self.store_score(
                id,
                state.version + 1,
                state.last,
                now,
                &Cause::Events { events: ids },
            )?;
        }
        Ok(statuses)
    }

    pub(super) fn write_lead(
        &mut self,
        new: NewLead,
        on_conflict: OnConflict,
        now: Timestamp,
    ) -> Result<LeadWrite> {
        let key = email_key(new.lead.get(StdField::Email));
        let given_id = new.lead.get(StdField::Id).map(str::to_owned);
        let by_id = match &given_id {
            Some(id) => self.row_state(id)?.map(|_| id.clone()),
            None => None,
        };
        let by_email: Option<String> = match &key {
            Some(k) => self
                .conn
                .prepare_cached("SELECT id FROM leads WHERE email_key = ?1")?
                .query_row([k], |r| r.get(0))
                .optional()?,
            None => None,
        };
        match (Target::of(by_id, by_email), on_conflict) {
            (Target::Clash { existing }, _) => Ok(LeadWrite::Conflict {
                existing,
                by: ConflictKey::Email,
            }),
            (Target::Existing { id, by }, OnConflict::Refuse) => Ok(LeadWrite::Conflict { existing: id, by }),
            (Target::Existing { id: existing, .. }, OnConflict::Update) => {
                let record = self.lead_for_update(&existing)?;
                let mut lead = record.lead.clone();
                let mut owner = record.owner.clone();
                if merge_new(&mut lead, &mut owner, &new) {
                    self.save_edit(&record, lead, owner, now)?;
                }
                Ok(LeadWrite::Updated(existing))
            }
            (Target::New, _) => {
                let mut lead = new.lead;
                let id = given_id.unwrap_or_else(new_lead_id);
                lead.set(StdField::Id, id.clone());
                self.insert_lead(&lead, new.owner.as_deref(), key.as_deref(), now)?;
                self.cache.load(lead, 1, []);
                self.store_score(&id, 1, None, now, &Cause::Created)?;
                Ok(LeadWrite::Created(id))
            }
        }
    }

    fn insert_lead(
        &mut self,
        lead: &Lead,
        owner: Option<&str>,
        key: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let cols = LEAD_COLUMNS.join(", ");
        let marks = (1..=15).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "INSERT INTO leads ({cols}, attributes, email_key, owner, search, created_at, updated_at, version, rank) \
             VALUES ({marks}, ?16, ?17, ?18, ?19, ?20, ?20, 0, ?21)"
        ))?;
        let mut values = lead_values(lead, key, owner);
        values.push(now.as_micros().into());
        values.push(rank(None).into());
        stmt.execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    fn lead_for_update(&mut self, id: &str) -> Result<LeadRecord> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], lead_from_row)?)
    }

    /// Stores an edited lead (data and owner), then rescores it.
    fn save_edit(
        &mut self,
        before: &LeadRecord,
        lead: Lead,
        owner: Option<String>,
        now: Timestamp,
    ) -> Result<()> {
        let id = before.id().to_owned();
        let key = email_key(lead.get(StdField::Email));
        if let Some(k) = &key {
            let other: Option<String> = self
                .conn
                .prepare_cached("SELECT id FROM leads WHERE email_key = ?1 AND id <> ?2")?
                .query_row(params![k, id], |r| r.get(0))
                .optional()?;
            if let Some(other) = other {
                return Err(StoreError::Conflict(other));
            }
        }
        let sets = LEAD_COLUMNS
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let mut values = lead_values(&lead, key.as_deref(), owner.as_deref());
        values.push(now.as_micros().into());
        self.conn
            .prepare_cached(&format!(
                "UPDATE leads SET {sets}, attributes = ?16, email_key = ?17, owner = ?18, search = ?19, \
                 updated_at = ?20 WHERE id = ?1"
            ))?
            .execute(rusqlite::params_from_iter(values))?;
        let state = self.row_state(&id)?.expect("the lead exists");
        self.ensure_cached(&id, state.version)?;
        self.cache.set_lead(lead, state.version);
        self.store_score(&id, state.version + 1, state.last, now, &Cause::LeadEdited)
    }

    pub(super) fn update_lead(
        &mut self,
        id: &str,
        patch: &LeadPatch,
        now: Timestamp,
    ) -> Result<Option<LeadRecord>> {
        let Some(record) = self
            .conn
            .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], lead_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        let mut lead = record.lead.clone();
        let mut owner = record.owner.clone();
        if apply_patch(&mut lead, &mut owner, patch) {
            self.save_edit(&record, lead, owner, now)?;
        }
        Ok(Some(self.lead_for_update(id)?))
    }

    /// Rescores up to `limit` leads with ids after `after`; returns how many
    /// and the last id (`None` when there are no more).
    pub(super) fn rescore_chunk(
        &mut self,
        after: &str,
        limit: usize,
        now: Timestamp,
        done: u64,
        total: u64,
    ) -> Result<(u64, Option<String>)> {
        let Some(set) = self.active.clone() else {
            return Ok((0, None));
        };
        let ids: Vec<(String, RowStateRaw, Option<String>, Option<String>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, version, score_json IS NOT NULL, rank, band, mql, \
                 json_extract(score_json, '$.model'), json_extract(score_json, '$.as_of') \
                 FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, f64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<bool>>(5)?,
                    ),
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        // Each lead's entry names the model that scored it (see `store_score`).
        let cause = Cause::ModelActivated { model: String::new() };
        for (id, (version, scored, rank, band, mql), scored_by, scored_as_of) in &ids {
            // Scored by an active model as of the activation or later (a write
            // after the activation): already current; rescoring as of `now`
            // would set it back and drop events that happened since.
            let (by, as_of) = (scored_by.as_deref(), scored_as_of.as_deref());
            self.ensure_cached(id, *version)?;
            if set.may_be_current(by, as_of, now)
                && let Some(lead) = self.cache.lead(id)
                && set.scored_since(lead, by, as_of, now)
            {
                continue;
            }
            let last = scored.then(|| (*rank, band.clone().unwrap_or_default(), mql.unwrap_or(false)));
            self.store_score(id, version + 1, last, now, &cause)?;
        }
        let n = ids.len() as u64;
        self.record_rescore(done + n, total.max(done + n), false)?;
        let last = (ids.len() == limit)
            .then(|| ids.last().map(|(id, ..)| id.clone()))
            .flatten();
        Ok((n, last))
    }

    /// Rescores leads because time passed (see `Store::refresh_scores`).
    pub(super) fn refresh(&mut self, ids: &[String], now: Timestamp) -> Result<()> {
        for id in ids {
            let Some(state) = self.row_state(id)? else {
                continue;
            };
            self.ensure_cached(id, state.version)?;
            self.store_score(id, state.version + 1, state.last, now, &Cause::TimePassed)?;
        }
        Ok(())
    }

    pub(super) fn record_rescore(&mut self, done: u64, total: u64, finished: bool) -> Result<()> {
        let progress = RescoreProgress {
            done,
            total,
            finished,
        };
        self.conn.execute(
            "UPDATE models SET rescore = ?1 WHERE active = 1",
            [serde_json::to_string(&progress).expect("progress serializes")],
        )?;
        Ok(())
    }
}

type RowStateRaw = (i64, bool, f64, Option<String>, Option<bool>);

/// A lead's stored values in the order of the statements above: the standard
/// columns, then attributes, e-mail key, owner and search text (`?1`..`?19`).
fn lead_values(lead: &Lead, key: Option<&str>, owner: Option<&str>) -> Vec<rusqlite::types::Value> {
    let mut values: Vec<rusqlite::types::Value> = StdField::ALL
        .into_iter()
        .map(|f| {
            lead.get(f)
                .map_or(rusqlite::types::Value::Null, |v| v.to_owned().into())
        })
        .collect();
    values.push(attributes_json(lead).into());
    values.push(key.map(str::to_owned).into());
    values.push(owner.map(str::to_owned).into());
    values.push(search_text(lead).into());
    values
}
