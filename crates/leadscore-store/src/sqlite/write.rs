//! What the writer thread does: every write, with its rescoring.

use std::collections::HashMap;
use std::sync::Arc;

use leadscore_core::{Event, FitOutcome, Lead, Score, StdField, Timestamp};
use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};

use super::{LEAD_DATA_SELECT, LEAD_SELECT, LEAD_SELECT_LEN, Writer, lead_from_row};
use crate::leads::{Target, apply_patch, attributes_json, merge_new, rank, search_text};
use crate::records::*;
use crate::rescore::{
    ActiveModel, CompactEvent, EventRow, StoredRow, compact_score_json, properties_json, worth_recording,
    write_compact_score_json,
};
use crate::{LEAD_COLUMNS, Result, StoreError, email_key, new_lead_id};

/// Leads rescored per writer transaction while a model is activated, so
/// ingest goes on in between.
pub(super) const RESCORE_CHUNK: usize = 10_000;

/// Leads of a rescoring chunk scored at once: the next part is scored on
/// the pool while the writer writes the last one.
const SCORE_PART: usize = 1_000;

/// Leads of a part scored by one task of the pool, their scores' JSON in
/// one buffer.
const SCORE_TASK: usize = 125;

/// Below this many missing leads, a run is loaded lead by lead.
const BULK_LOAD_FROM: usize = 64;

/// A lead's new score, ready to store: the model that gave it, the columns
/// beside the score, and the score as stored (`J`: the text, or where it
/// lies in a buffer of many).
struct Scored<'m, J = String> {
    model: &'m ActiveModel,
    score: f64,
    band: &'m str,
    grade: &'static str,
    mql: bool,
    json: J,
}

impl<'m> Scored<'m> {
    /// `as_of` is the scoring moment as text (formatted once for many leads).
    fn new(model: &'m ActiveModel, score: &Score, as_of: &str) -> Scored<'m> {
        Scored::with_json(model, score, compact_score_json(model, score, as_of))
    }
}

impl<'m> Scored<'m, std::ops::Range<usize>> {
    /// The score with its text appended to `buffer`.
    fn in_buffer(model: &'m ActiveModel, score: &Score, as_of: &str, buffer: &mut Vec<u8>) -> Self {
        let from = buffer.len();
        write_compact_score_json(buffer, model, score, as_of);
        Scored::with_json(model, score, from..buffer.len())
    }

    /// The score with its text, from the buffer it was written to.
    fn placed<'b>(&self, buffer: &'b str) -> Scored<'m, &'b str> {
        Scored {
            model: self.model,
            score: self.score,
            band: self.band,
            grade: self.grade,
            mql: self.mql,
            json: &buffer[self.json.clone()],
        }
    }
}

impl<'m, J> Scored<'m, J> {
    fn with_json(model: &'m ActiveModel, score: &Score, json: J) -> Self {
        Scored {
            model,
            score: score.score,
            band: score.band_name(&model.model),
            grade: score.grade.as_str(),
            mql: score.mql,
            json,
        }
    }
}

/// A lead touched by an ingest batch: its row state, whether its cache entry
/// was current before the inserts, and the ids of its new events.
type Touched = (RowState, bool, Vec<String>);

/// What a rescored lead's cache entry gets once its chunk is written: where
/// its score went, the model that scored it with the score, band and MQL
/// written (`None`: unscored), and the lead's fit outcome when the scoring
/// evaluated it.
type Kept<'a> = (
    &'a Arc<str>,
    ScoreTarget<'a>,
    Option<(&'a ActiveModel, f64, &'a str, bool)>,
    Option<FitOutcome>,
);

/// A lead of a rescoring chunk: its id (the cache's key when the cache
/// knows its row), its row state, and the model that scored it and as of
/// when (from its stored score).
type ChunkRow = (Arc<str>, RowState, Option<Arc<str>>, Option<Timestamp>);

/// What the pool gives back for one lead of a rescoring part: `None` when
/// the lead is already current, else its new score (`None`: unscored) and
/// its fit outcome when the scoring evaluated it.
type Rescored<'m> = Option<(Option<Scored<'m, std::ops::Range<usize>>>, Option<FitOutcome>)>;

/// A lead's row state the writer needs before rescoring it.
struct RowState {
    /// The row's own key: read in the same transaction as the write that
    /// uses it, so it is the row's (rowids change only in a `VACUUM`).
    rowid: i64,
    version: i64,
    last: Option<(f64, Arc<str>, bool)>,
}

/// The lead row a new score goes to: the lead's id (for its history and
/// cache entry), the row's rowid (the row is updated through it, not
/// through the id's index a second time) and the row's new version.
#[derive(Clone, Copy)]
struct ScoreTarget<'a> {
    id: &'a str,
    rowid: i64,
    version: i64,
}

impl RowState {
    fn of(row: &StoredRow) -> RowState {
        RowState {
            rowid: row.key,
            version: row.version,
            last: row.last.clone(),
        }
    }

    /// Where the lead's next score goes: this row, one version on.
    fn next<'a>(&self, id: &'a str) -> ScoreTarget<'a> {
        ScoreTarget {
            id,
            rowid: self.rowid,
            version: self.version + 1,
        }
    }
}

impl Writer {
    /// The models stored scores name, read through the writer's connection.
    fn models(&self) -> super::Models<'_> {
        super::Models {
            conn: &self.conn,
            parsed: &self.parsed,
        }
    }

    fn row_state(&self, id: &str) -> Result<Option<RowState>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {ROW_STATE} FROM leads WHERE id = ?1"))?;
        Ok(stmt.query_row([id], read_row_state).optional()?)
    }

    /// Makes the cache entry for `id` current at `version`, reading the lead
    /// and its events when it is not.
    fn ensure_cached(&mut self, id: &str, version: i64) -> Result<()> {
        if self.cache.current(id, version).is_some() {
            return Ok(());
        }
        let record = self
            .conn
            .prepare_cached(&format!("SELECT {LEAD_DATA_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], |r| lead_from_row(r, self.models()))?;
        let raw: Vec<StoredEvent> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_SELECT} FROM events WHERE lead = ?1 ORDER BY seq"
            ))?
            .query_map([id], |r| stored_event(r, 0))?
            .collect::<rusqlite::Result<_>>()?;
        self.cache.load(record.lead, version, raw.iter().map(event_row));
        Ok(())
    }

    /// Makes the cache entries of a run of leads (`(id, version)`, ascending
    /// ids) current. When many are missing, the leads and their events are
    /// read with one range query each (the lead table's id index and the
    /// events table, both in id order) instead of two lookups per lead.
    fn load_range<'a>(&mut self, leads: impl Iterator<Item = (&'a str, i64)>) -> Result<()> {
        let missing: Vec<(&str, i64)> = leads
            .filter(|(id, version)| self.cache.current(id, *version).is_none())
            .collect();
        let (Some(first), Some(last)) = (missing.first(), missing.last()) else {
            return Ok(());
        };
        if missing.len() < BULK_LOAD_FROM {
            for (id, version) in missing {
                self.ensure_cached(id, version)?;
            }
            return Ok(());
        }
        let records: Vec<LeadRecord> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {LEAD_DATA_SELECT} FROM leads WHERE id >= ?1 AND id <= ?2 ORDER BY id"
            ))?
            .query_map([first.0, last.0], |r| lead_from_row(r, self.models()))?
            .collect::<rusqlite::Result<_>>()?;
        let rows: Vec<(String, StoredEvent)> = self
            .conn
            .prepare_cached(&format!(
                "SELECT lead, {EVENT_SELECT} FROM events WHERE lead >= ?1 AND lead <= ?2 ORDER BY lead, seq"
            ))?
            .query_map([first.0, last.0], |r| Ok((r.get(0)?, stored_event(r, 1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Both lists are in lead order: walk them together.
        let mut rows = rows.iter().peekable();
        for record in records {
            let mut events = Vec::new();
            while let Some((lead, event)) = rows.next_if(|(lead, _)| lead.as_str() <= record.id()) {
                if lead == record.id() {
                    events.push(event);
                }
            }
            if self.cache.current(record.id(), record.version).is_none() {
                let version = record.version;
                self.cache
                    .load(record.lead, version, events.into_iter().map(event_row));
            }
        }
        Ok(())
    }

    /// Fills a cold cache (after a start) with every lead and its events in
    /// two sequential scans: the leads, then the events in the order they
    /// are stored (by lead), walked together. Reading 10,000 leads at a
    /// time instead looks each lead up through the id index (a page read
    /// per lead, all over the table). Skipped (`None`) when the events would
    /// not fit the cache's bound; else how many leads and events were read.
    /// Runs inside the writer's transaction, so the rows and versions read
    /// are those the writes after it change.
    pub(super) fn fill_cache(&mut self) -> Result<Option<(u64, u64)>> {
        let stored: i64 = self
            .conn
            .query_row("SELECT last FROM event_seq", [], |r| r.get(0))?;
        if self.cache.events() + stored as usize > crate::rescore::MAX_CACHED_EVENTS {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        // With each its row's state and who scored it, as of when: what the
        // writes that follow need of the row (see `LeadCache::stored_row`).
        let mut records: Vec<(LeadRecord, StoredRow)> = self
            .conn
            .prepare(&format!(
                "SELECT {LEAD_DATA_SELECT}, {ROW_STATE}, score_json ->> '$.model', score_json ->> '$.as_of' \
                 FROM leads"
            ))?
            .query_map([], |r| {
                let models = self.models();
                let from = LEAD_SELECT_LEN;
                let state = read_row_state_at(r, from)?;
                let as_of = r.get_ref(from + ROW_STATE_LEN + 1)?.as_str_or_null()?;
                let row = StoredRow {
                    key: state.rowid,
                    version: state.version,
                    last: state.last,
                    model: r.get::<_, Option<String>>(from + ROW_STATE_LEN)?.map(Arc::from),
                    as_of: as_of.and_then(|t| Timestamp::parse(t).ok()),
                };
                Ok((lead_from_row(r, models)?, row))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // In the events' order (SQLite compares text bytewise, as Rust does).
        records.sort_unstable_by(|a, b| a.0.id().cmp(b.0.id()));
        let read = records.len();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT lead, {EVENT_SELECT} FROM events ORDER BY lead, seq"
        ))?;
        let mut rows = stmt.query([])?;
        let mut row = rows.next()?;
        let mut events_read = 0u64;
        for (record, mut stored) in records {
            let mut events: Vec<CompactEvent> = Vec::new();
            while let Some(r) = row {
                let lead = text(r.get_ref(0)?)?;
                if lead > record.id() {
                    break;
                }
                // Events of a lead that is gone (none: the foreign key) are skipped.
                if lead == record.id() {
                    let properties = match r.get_ref(2)? {
                        rusqlite::types::ValueRef::Null => None,
                        v => Some(text(v)?),
                    };
                    events_read += 1;
                    events.push(self.cache.compact(EventRow {
                        kind: text(r.get_ref(1)?)?,
                        properties,
                        at: Timestamp::from_micros(r.get(3)?),
                        seq: r.get(4)?,
                    }));
                }
                row = rows.next()?;
            }
            let id = record.id().to_owned();
            if self.cache.current(&id, record.version).is_none() {
                events.shrink_to_fit();
                let version = record.version;
                self.cache.load_compact(record.lead, version, events);
            }
            // One copy of each band's name for all the rows.
            stored.last = stored.last.map(|(s, b, m)| (s, self.cache.band(&b), m));
            self.cache.set_stored_row(&id, stored);
        }
        tracing::debug!(
            leads = read,
            events = events_read,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "filled the lead cache"
        );
        Ok(Some((read as u64, events_read)))
    }

    /// Rescores a cached lead, stores the score with the new version, and
    /// records the change in its history when it is worth recording.
    fn store_score(
        &mut self,
        to: ScoreTarget,
        last: Option<(f64, Arc<str>, bool)>,
        now: Timestamp,
        cause: &Cause,
    ) -> Result<()> {
        let id = to.id;
        let chosen = match &self.active {
            Some(set) => {
                let lead = self.cache.lead(id).ok_or_else(|| {
                    StoreError::Database(format!("internal: lead `{id}` is not loaded for scoring"))
                })?;
                set.for_lead(lead).cloned()
            }
            None => None,
        };
        let now_text = now.to_string();
        let scored = chosen.as_ref().map(|model| {
            let score = self.cache.score(id, model, now).expect("the lead is cached");
            Scored::new(model, &score, &now_text)
        });
        let old = last.as_ref().map(|(s, b, m)| (*s, &**b, *m));
        write_score(&self.conn, to, old, now, cause, scored.as_ref())?;
        let row = stored_row(&mut self.cache, to, scored.as_ref(), now);
        self.cache.set_stored_row(to.id, row);
        Ok(())
    }

    pub(super) fn ingest(&mut self, events: &[Event], now: Timestamp) -> Result<Vec<IngestStatus>> {
        let mut statuses = Vec::with_capacity(events.len());
        // Per lead of this batch: its row state (None: unknown), whether its
        // cache entry was current before the inserts, and the new event ids.
        let mut leads: HashMap<&str, Option<Touched>> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        let first_seq: i64 = self
            .conn
            .prepare_cached("SELECT last FROM event_seq")?
            .query_row([], |r| r.get(0))?;
        let mut seq = first_seq;
        for e in events {
            if !leads.contains_key(e.lead.as_str()) {
                let state = match self.cache.stored_row(&e.lead) {
                    // Its entry is current at the row's version.
                    Some(row) => Some((RowState::of(row), true, Vec::new())),
                    None => self.row_state(&e.lead)?.map(|s| {
                        let fresh = self.cache.current(&e.lead, s.version).is_some();
                        (s, fresh, Vec::new())
                    }),
                };
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
                    "INSERT INTO events (lead, seq, id, type, occurred_at, properties, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    e.lead,
                    seq + 1,
                    e.id,
                    e.kind,
                    e.occurred_at.as_micros(),
                    props,
                    now.as_micros()
                ])?;
            if inserted == 0 {
                statuses.push(IngestStatus::Duplicate);
                continue;
            }
            seq += 1;
            if ids.is_empty() {
                order.push(&e.lead);
            }
            ids.push(e.id.clone());
            if *fresh {
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
        if seq != first_seq {
            self.conn
                .prepare_cached("UPDATE event_seq SET last = ?1")?
                .execute([seq])?;
        }
        for id in order {
            let Some(Some((state, fresh, ids))) = leads.remove(id) else {
                continue;
            };
            if !fresh {
                // Read with the new events already in.
                self.ensure_cached(id, state.version)?;
            }
            self.store_score(state.next(id), state.last, now, &Cause::Events { events: ids })?;
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
                let rowid = self.insert_lead(&lead, new.owner.as_deref(), key.as_deref(), now)?;
                self.cache.load(lead, 1, []);
                let to = ScoreTarget {
                    id: &id,
                    rowid,
                    version: 1,
                };
                self.store_score(to, None, now, &Cause::Created)?;
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
    ) -> Result<i64> {
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
        Ok(self.conn.last_insert_rowid())
    }

    fn lead_for_update(&mut self, id: &str) -> Result<LeadRecord> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = ?1"))?
            .query_row([id], |r| lead_from_row(r, self.models()))?)
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
        self.store_score(state.next(&id), state.last, now, &Cause::LeadEdited)
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
            .query_row([id], |r| lead_from_row(r, self.models()))
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
        // A newer activation has its own rescoring: this one stops here.
        if self.superseded(now)? {
            return Ok((0, None));
        }
        let started = std::time::Instant::now();
        if self.cache.len() as u64 * 2 < total {
            self.fill_cache()?;
        }
        let (ids, known) = self.chunk_rows(after, limit)?;
        let selected = started.elapsed();
        // Known rows are of cached leads.
        if !known {
            self.load_range(ids.iter().map(|(id, state, ..)| (&**id, state.version)))?;
            if let Some((id, ..)) = ids.iter().find(|(id, ..)| !self.cache.contains(id)) {
                return Err(StoreError::Database(format!(
                    "internal: lead `{id}` is not loaded for scoring"
                )));
            }
        }
        let loaded = started.elapsed();
        // Checking, scoring and serializing run on every core, a part ahead
        // of the writes, which follow in order. `None`: the lead is already
        // current (scored by an active model as of the activation or later,
        // by a write after the activation); rescoring it as of `now` would
        // set it back and drop events that happened since.
        let now_text = now.to_string();
        let score = |(id, _, by, as_of): &ChunkRow, buffer: &mut Vec<u8>| -> Rescored<'_> {
            let entry = self.cache.entry(id).expect("the chunk is cached");
            let (lead, by, as_of) = (&entry.lead, by.as_deref(), *as_of);
            if set.may_be_current(by, as_of, now) && set.scored_since(lead, by, as_of, now) {
                return None;
            }
            let Some(model) = set.for_lead(lead) else {
                return Some((None, None));
            };
            let (score, fit) = self.cache.score_entry(entry, model, now);
            Some((Some(Scored::in_buffer(model, &score, &now_text, buffer)), fit))
        };
        // A task's leads, their scores' text in one buffer.
        let score_task = |rows: &[ChunkRow]| {
            let mut buffer = Vec::with_capacity(rows.len() * 256);
            let scored: Vec<Rescored> = rows.iter().map(|row| score(row, &mut buffer)).collect();
            (
                String::from_utf8(buffer).expect("serde_json writes UTF-8"),
                scored,
            )
        };
        // Each lead's entry names the model that scored it (see `write_score`).
        let cause = Cause::ModelActivated { model: String::new() };
        // A part is scored on the pool while the one before is written here;
        // the cache is changed after both (the scoring reads it).
        let (parts, written) = std::sync::mpsc::sync_channel(2);
        let mut kept: Vec<Kept> = Vec::with_capacity(ids.len());
        let wrote: Result<()> = std::thread::scope(|s| {
            // Owned here: a failed write drops it, which stops the scorer.
            let written = written;
            let scorer = std::thread::Builder::new().name("rescore-parts".into());
            scorer
                .spawn_scoped(s, || {
                    // Owned here: a panic drops it, which ends the loop below.
                    let parts = parts;
                    for part in ids.chunks(SCORE_PART) {
                        let results: Vec<_> = part.par_chunks(SCORE_TASK).map(&score_task).collect();
                        if parts.send(results).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| StoreError::Database(format!("cannot start scoring: {e}")))?;
            for part in ids.chunks(SCORE_PART) {
                // No part: the scorer panicked (the scope passes it on).
                let Ok(results) = written.recv() else {
                    return Err(StoreError::Database(
                        "internal: a rescoring part was not scored".into(),
                    ));
                };
                let tasks = part.chunks(SCORE_TASK).zip(results);
                for (rows, (buffer, scored)) in tasks {
                    for ((id, state, ..), result) in rows.iter().zip(scored) {
                        let Some((new, fit)) = result else { continue };
                        let to = state.next(id);
                        let old = state.last.as_ref().map(|(s, b, m)| (*s, &**b, *m));
                        let new = new.as_ref().map(|n| n.placed(&buffer));
                        write_score(&self.conn, to, old, now, &cause, new.as_ref())?;
                        kept.push((
                            id,
                            to,
                            new.as_ref().map(|n| (n.model, n.score, n.band, n.mql)),
                            fit,
                        ));
                    }
                }
            }
            Ok(())
        });
        wrote?;
        for (id, to, scored, fit) in kept {
            let row = StoredRow {
                key: to.rowid,
                version: to.version,
                last: scored.map(|(_, score, band, mql)| (score, self.cache.band(band), mql)),
                model: scored.map(|(model, ..)| model.name.clone()),
                as_of: scored.map(|_| now),
            };
            let fit = scored.zip(fit).map(|((model, ..), fit)| (model, fit));
            self.cache.set_rescored(id, row, fit);
        }
        tracing::debug!(
            leads = ids.len(),
            select_ms = selected.as_secs_f64() * 1e3,
            load_ms = (loaded - selected).as_secs_f64() * 1e3,
            score_and_write_ms = (started.elapsed() - loaded).as_secs_f64() * 1e3,
            "rescored a chunk"
        );
        let n = ids.len() as u64;
        self.record_rescore(done + n, total.max(done + n), false, now)?;
        let last = (ids.len() == limit)
            .then(|| ids.last().map(|(id, ..)| id.to_string()))
            .flatten();
        Ok((n, last))
    }

    /// The leads of a rescoring chunk (ids after `after`, in order): from
    /// what the cache knows of their rows when it knows every one (after the
    /// warm-up and any write, it does), which reads only the id index; else
    /// read from their rows, scores included.
    fn chunk_rows(&mut self, after: &str, limit: usize) -> Result<(Vec<ChunkRow>, bool)> {
        let mut known: Vec<ChunkRow> = Vec::with_capacity(limit);
        let mut all_known = true;
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let mut rows = stmt.query(params![after, limit as i64])?;
            while let Some(r) = rows.next()? {
                // The cache's own key names the lead: no copy of the id.
                let Some((key, row)) = self.cache.stored_row_keyed(text(r.get_ref(0)?)?) else {
                    all_known = false;
                    break;
                };
                let (state, model, as_of) = (RowState::of(row), row.model.clone(), row.as_of);
                known.push((key.clone(), state, model, as_of));
            }
        }
        if all_known {
            return Ok((known, true));
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ROW_STATE}, score_json, id FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            let json = r.get_ref(ROW_STATE_LEN)?.as_str_or_null()?;
            let ScoredBy { model, as_of } = scored_by(json);
            Ok((
                Arc::from(text(r.get_ref(ROW_STATE_LEN + 1)?)?),
                read_row_state(r)?,
                model.map(|m| Arc::from(&*m)),
                as_of.and_then(|t| Timestamp::parse(&t).ok()),
            ))
        })?;
        Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, false))
    }

    /// Rescores leads because time passed (see `Store::refresh_scores`).
    pub(super) fn refresh(&mut self, ids: &[String], now: Timestamp) -> Result<()> {
        for id in ids {
            // The row state and the stored score, in one lookup.
            let Some((state, stored)) = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {ROW_STATE}, score_json FROM leads WHERE id = ?1"
                ))?
                .query_row([id], |r| {
                    Ok((read_row_state(r)?, r.get::<_, Option<String>>(ROW_STATE_LEN)?))
                })
                .optional()?
            else {
                continue;
            };
            let by = scored_by(stored.as_deref());
            if crate::rescore::scored_after(by.as_of.as_deref(), now) {
                continue;
            }
            self.ensure_cached(id, state.version)?;
            let scoring = match (&self.active, self.cache.lead(id)) {
                (Some(set), Some(lead)) => set.for_lead(lead).map(|m| m.name.clone()),
                _ => None,
            };
            let cause = crate::rescore::refresh_cause(by.model.as_deref(), scoring.as_deref());
            self.store_score(state.next(id), state.last, now, &cause)?;
        }
        Ok(())
    }

    /// Builds the leads' sort by score ([`super::RANK_INDEX`]) or drops it.
    pub(super) fn set_rank_index(&mut self, present: bool) -> Result<()> {
        let started = std::time::Instant::now();
        let mut one_block = false;
        if present {
            // With `temp_store = MEMORY` (see `open_conn`) SQLite's sorter
            // allocates every record alone, and its merges chase them all
            // over the heap; with the default it keeps them in one block
            // (up to the cache's size, past it in a temporary file). So the
            // build alone runs with the default: 200,000 leads in 160-185 ms
            // instead of 210-225 (Intel Xeon host). Everything else keeps
            // MEMORY: with the default, the writer's CPU per single event
            // doubled. SQLite refuses the switch inside a transaction once
            // the connection has temporary tables (it has none); the build
            // then runs as before.
            one_block = self.conn.execute_batch("PRAGMA temp_store = DEFAULT").is_ok();
            let mut built = self.conn.execute_batch(super::RANK_INDEX);
            if one_block {
                self.conn.execute_batch("PRAGMA temp_store = MEMORY")?;
                // Past the cache's size (some million leads) the sorter
                // spills to a temporary file; where none can be written,
                // the build runs again all in memory, as it did before.
                if let Err(e) = &built {
                    tracing::warn!(error = %e, "the rank index's build with a temporary file failed; it runs again in memory");
                    built = self.conn.execute_batch(super::RANK_INDEX);
                    one_block = false;
                }
            }
            built?;
        } else {
            self.conn.execute_batch("DROP INDEX IF EXISTS leads_by_rank;")?;
        }
        tracing::debug!(
            present,
            one_block,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "rank index"
        );
        Ok(())
    }

    /// Has a model been activated after `since` (the activation a
    /// rescoring belongs to)?
    fn superseded(&self, since: Timestamp) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM models WHERE active = 1 AND activated_at > ?1)")?
            .query_row([since.as_micros()], |r| r.get(0))?)
    }

    /// Records the progress of the rescoring of the activation at `since`
    /// on the active models, unless a later activation has begun its own:
    /// the rescoring it stopped may still record once, and must not mark the
    /// later one's progress (let alone finished).
    pub(super) fn record_rescore(
        &mut self,
        done: u64,
        total: u64,
        finished: bool,
        since: Timestamp,
    ) -> Result<()> {
        let progress = RescoreProgress {
            done,
            total,
            finished,
        };
        self.conn.execute(
            "UPDATE models SET rescore = ?1 WHERE active = 1 AND NOT EXISTS \
             (SELECT 1 FROM models WHERE active = 1 AND activated_at > ?2)",
            params![
                serde_json::to_string(&progress).expect("progress serializes"),
                since.as_micros()
            ],
        )?;
        Ok(())
    }
}

/// Makes the allocator tidy up after filling the cache, before the first
/// write rather than in it. Filling frees hundreds of thousands of small
/// blocks; glibc's malloc merges them at the next larger allocation and then
/// sorts them, at most 10,000 in each allocation that finds no exact fit:
/// the first request after a start took 50-120 ms (and every request queued
/// behind it waited as long). Each allocation here of 96 KiB (under the
/// size glibc maps apart) sorts its 10,000; it stops once one is quick.
/// (The `leadscore` binary allocates with mimalloc, where the first is
/// quick; the tests' binaries, and any other embedding, keep glibc's.)
pub(super) fn settle_allocator() {
    for _ in 0..1000 {
        let started = std::time::Instant::now();
        drop(std::hint::black_box(Vec::<u8>::with_capacity(96 * 1024)));
        if started.elapsed() < std::time::Duration::from_micros(20) {
            break;
        }
    }
}

/// The columns [`read_row_state`] reads, first in a query's list.
const ROW_STATE: &str = "rowid, version, score_json IS NOT NULL, rank, band, mql";
/// How many they are: a query's next column is at this index.
const ROW_STATE_LEN: usize = 6;

/// A lead's row state from [`ROW_STATE`]'s columns.
fn read_row_state(r: &rusqlite::Row) -> rusqlite::Result<RowState> {
    read_row_state_at(r, 0)
}

/// [`read_row_state`] of columns starting at `from`.
fn read_row_state_at(r: &rusqlite::Row, from: usize) -> rusqlite::Result<RowState> {
    let scored: bool = r.get(from + 2)?;
    Ok(RowState {
        rowid: r.get(from)?,
        version: r.get(from + 1)?,
        last: if scored {
            Some((
                r.get(from + 3)?,
                Arc::from(r.get_ref(from + 4)?.as_str_or_null()?.unwrap_or_default()),
                r.get::<_, Option<bool>>(from + 5)?.unwrap_or(false),
            ))
        } else {
            None
        },
    })
}

/// A text column, borrowed from the row.
fn text(v: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<&str> {
    v.as_str().map_err(rusqlite::Error::from)
}

/// The event columns the cache needs, in the order `stored_event` reads them.
const EVENT_SELECT: &str = "type, properties, occurred_at, seq";

/// A stored event as read for the cache: type, properties, time, sequence.
type StoredEvent = (String, Option<String>, i64, i64);

/// Reads [`EVENT_SELECT`]'s columns, starting at column `from`.
fn stored_event(r: &rusqlite::Row, from: usize) -> rusqlite::Result<StoredEvent> {
    Ok((r.get(from)?, r.get(from + 1)?, r.get(from + 2)?, r.get(from + 3)?))
}

fn event_row((kind, properties, at, seq): &StoredEvent) -> EventRow<'_> {
    EventRow {
        kind,
        properties: properties.as_deref(),
        at: Timestamp::from_micros(*at),
        seq: *seq,
    }
}

/// What a lead's row holds once [`write_score`] has stored `scored` (`None`:
/// unscored) at `to`, as of `as_of` (its band's name shared through `cache`).
fn stored_row(
    cache: &mut crate::rescore::LeadCache,
    to: ScoreTarget,
    scored: Option<&Scored<'_, impl AsRef<str>>>,
    as_of: Timestamp,
) -> StoredRow {
    StoredRow {
        key: to.rowid,
        version: to.version,
        last: scored.map(|s| (s.score, cache.band(s.band), s.mql)),
        model: scored.map(|s| s.model.name.clone()),
        as_of: scored.map(|_| as_of),
    }
}

/// Which model scored a lead, and as of when: read from the stored score
/// (serde reads just these two fields, skipping the rest, and borrows them
/// from the text when they hold no escapes).
#[derive(Debug, Default, serde::Deserialize)]
struct ScoredBy<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    as_of: Option<std::borrow::Cow<'a, str>>,
}

fn scored_by(score_json: Option<&str>) -> ScoredBy<'_> {
    score_json
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

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

/// Stores a lead's new score (`None`: no active model applies, so it is
/// unscored) with the new version, and records the change in its history
/// when it is worth recording. The lead's cache entry is the caller's to
/// bring to the new version.
fn write_score(
    conn: &rusqlite::Connection,
    to: ScoreTarget,
    last: Option<(f64, &str, bool)>,
    now: Timestamp,
    cause: &Cause,
    scored: Option<&Scored<'_, impl AsRef<str>>>,
) -> Result<()> {
    let ScoreTarget { id, rowid, version } = to;
    let Some(new) = scored else {
        conn.prepare_cached(
            "UPDATE leads SET version = ?2, rank = ?3, band = NULL, grade = NULL, mql = NULL, \
                 score_json = NULL WHERE rowid = ?1",
        )?
        .execute(params![rowid, version, crate::leads::UNSCORED_RANK])?;
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE leads SET version = ?2, rank = ?3, band = ?4, grade = ?5, mql = ?6, score_json = ?7 \
             WHERE rowid = ?1",
    )?
    .execute(params![
        rowid,
        version,
        new.score,
        new.band,
        new.grade,
        new.mql,
        new.json.as_ref()
    ])?;
    if worth_recording(last, (new.score, new.band, new.mql)) {
        let model = &new.model.name;
        // After an activation each lead's entry names the model that scored it.
        let named;
        let cause = match cause {
            Cause::ModelActivated { .. } => {
                named = Cause::ModelActivated {
                    model: model.to_string(),
                };
                &named
            }
            other => other,
        };
        let cause = serde_json::to_string(cause).expect("a cause serializes");
        conn
            .prepare_cached(
                "INSERT INTO history (lead, at, score, band, mql, model, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, now.as_micros(), new.score, new.band, new.mql, &**model, cause])?;
    }
    Ok(())
}
