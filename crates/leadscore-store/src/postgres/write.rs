//! Every write, each in one transaction with its rescoring.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{GenericClient, Transaction};
use leadscore_core::{Event, Lead, StdField, Timestamp};
use tokio_postgres::types::ToSql;

use super::{Fail, LEAD_SELECT, MODEL_LOCK, PgStore, RowState, TxResult, lead_from_row, stamp};
use crate::leads::{Target, apply_patch, attributes_json, merge_new, rank, search_text};
use crate::records::*;
use crate::rescore::{ActiveSet, EventRow, properties_json, stored_score, worth_recording};
use crate::{LEAD_COLUMNS, StoreError, email_key, new_lead_id};

/// Leads rescored per transaction while a model is activated, so ingest
/// goes on in between (their rows stay locked for the whole transaction).
pub(super) const RESCORE_CHUNK: usize = 1000;

/// A cache entry touched by a committed transaction: current at `stamp` if
/// it still carries that transaction's `mark`.
#[derive(Debug)]
pub(super) struct Settled {
    pub id: String,
    pub mark: i64,
    pub stamp: i64,
}

/// An event stored by the current transaction.
#[derive(Debug)]
struct NewEvent<'a> {
    kind: &'a str,
    properties: Option<String>,
    at: Timestamp,
    seq: i64,
}

/// A lead to rescore in the current transaction; its row is locked.
#[derive(Debug)]
struct Rescore<'a> {
    id: String,
    state: RowState,
    /// Its data now.
    lead: Lead,
    /// Its data changed in this transaction.
    edited: bool,
    /// Created in this transaction: no stored events.
    created: bool,
    /// Events stored by this transaction, in ingest order.
    new_events: Vec<NewEvent<'a>>,
    cause: Cause,
}

/// A lead's stored events as read for scoring: type, properties, time, seq.
type RawEvent = (String, Option<String>, i64, i64);

/// Locks the leads with these ids (those that exist), in id order.
async fn lock_leads(tx: &Transaction<'_>, ids: &[&str]) -> TxResult<HashMap<String, (LeadRecord, RowState)>> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {LEAD_SELECT} FROM leads WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
        ))
        .await?;
    let mut out = HashMap::with_capacity(ids.len());
    for row in tx.query(&stmt, &[&ids]).await? {
        let (record, state) = lead_from_row(&row)?;
        out.insert(record.id().to_owned(), (record, state));
    }
    Ok(out)
}

/// Locks one lead and reads it.
async fn lock_lead(tx: &Transaction<'_>, id: &str) -> TxResult<Option<(LeadRecord, RowState)>> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {LEAD_SELECT} FROM leads WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .await?;
    match tx.query_opt(&stmt, &[&id]).await? {
        Some(row) => Ok(Some(lead_from_row(&row)?)),
        None => Ok(None),
    }
}

/// The stored events of these leads, each lead's in ingest order.
async fn read_events(tx: &Transaction<'_>, ids: &[&str]) -> TxResult<HashMap<String, Vec<RawEvent>>> {
    let stmt = tx
        .prepare_cached(
            "SELECT lead, type, properties, occurred_at, seq FROM events WHERE lead = ANY($1) ORDER BY lead, seq",
        )
        .await?;
    let mut out: HashMap<String, Vec<RawEvent>> =
        ids.iter().map(|id| ((*id).to_owned(), Vec::new())).collect();
    for row in tx.query(&stmt, &[&ids]).await? {
        let lead: String = row.try_get(0)?;
        let event = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        out.entry(lead).or_default().push(event);
    }
    Ok(out)
}

/// Records the progress of the rescoring of the activation at `since` on
/// the active models, unless a later activation (here or in another
/// instance) has begun its own: it must not mark the later one's progress.
pub(super) async fn record_rescore(
    c: &impl GenericClient,
    done: u64,
    total: u64,
    finished: bool,
    since: Timestamp,
) -> TxResult<()> {
    let progress = RescoreProgress {
        done,
        total,
        finished,
    };
    let json = serde_json::to_string(&progress).expect("progress serializes");
    c.execute(
        "UPDATE models SET rescore = $1 WHERE active AND NOT EXISTS \
         (SELECT 1 FROM models WHERE active AND activated_at > $2)",
        &[&json, &since.as_micros()],
    )
    .await?;
    Ok(())
}

/// Has a model been activated after `since` (the activation a rescoring
/// belongs to)?
async fn superseded(c: &impl GenericClient, since: Timestamp) -> TxResult<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM models WHERE active AND activated_at > $1)",
            &[&since.as_micros()],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// The values of the standard lead columns (`LEAD_COLUMNS` order).
fn column_values(lead: &Lead) -> Vec<Option<&str>> {
    StdField::ALL.into_iter().map(|f| lead.get(f)).collect()
}

impl PgStore {
    /// Scores the given locked leads with `model` as of `now` and stores the
    /// scores with their new versions and, when worth it, history rows.
    /// Returns what to settle in the cache after the commit.
    async fn rescore(
        &self,
        tx: &Transaction<'_>,
        items: &[Rescore<'_>],
        model: Option<&ActiveSet>,
        now: Timestamp,
    ) -> TxResult<Vec<Settled>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let Some(set) = model else {
            let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
            let stmt = tx
                .prepare_cached("UPDATE leads SET version = version + 1 WHERE id = ANY($1)")
                .await?;
            tx.execute(&stmt, &[&ids]).await?;
            let mut cache = self.cache();
            for id in ids {
                cache.remove(id);
            }
            return Ok(Vec::new());
        };
        // Safe at any moment here: the loop below reads again what a clear took.
        self.cache().trim();
        let mark = self.next_mark();
        let mut scores: Vec<Option<StoredScore>> = vec![None; items.len()];
        // The model that scores each lead; `None`: no active model applies to it.
        let chosen: Vec<Option<&crate::ActiveModel>> =
            items.iter().map(|it| set.for_lead(&it.lead)).collect();
        let mut pending: Vec<usize> = (0..items.len()).filter(|&i| chosen[i].is_some()).collect();
        let mut stored: HashMap<String, Vec<RawEvent>> = HashMap::new();
        while !pending.is_empty() {
            // Leads whose cache entry is not current: read their events
            // (the new ones included), then score all in one go under the
            // cache's lock, so no other transaction's clear() comes between.
            let need: Vec<&str> = {
                let mut cache = self.cache();
                pending
                    .iter()
                    .map(|&i| &items[i])
                    .filter(|it| {
                        !it.created
                            && !stored.contains_key(&it.id)
                            && cache.current(&it.id, it.state.stamp()).is_none()
                    })
                    .map(|it| it.id.as_str())
                    .collect()
            };
            if !need.is_empty() {
                stored.extend(read_events(tx, &need).await?);
            }
            let mut cache = self.cache();
            pending.retain(|&i| {
                let it = &items[i];
                let current = it.state.stamp();
                if it.created {
                    cache.load(it.lead.clone(), current, []);
                } else if cache.current(&it.id, current).is_some() {
                    for e in &it.new_events {
                        cache.push_event(
                            &it.id,
                            EventRow {
                                kind: e.kind,
                                properties: e.properties.as_deref(),
                                at: e.at,
                                seq: e.seq,
                            },
                        );
                    }
                    if it.edited {
                        cache.set_lead(it.lead.clone(), current);
                    }
                } else if let Some(events) = stored.get(&it.id) {
                    cache.load(
                        it.lead.clone(),
                        current,
                        events.iter().map(|(kind, props, at, seq)| EventRow {
                            kind,
                            properties: props.as_deref(),
                            at: Timestamp::from_micros(*at),
                            seq: *seq,
                        }),
                    );
                } else {
                    // Current when looked at, forgotten since: read it.
                    return true;
                }
                let model = chosen[i].expect("only leads with a model are pending");
                let Some(score) = cache.score(&it.id, model, now) else {
                    return true;
                };
                scores[i] = Some(stored_score(model, &score, now));
                cache.set_version(&it.id, mark);
                false
            });
        }

        let n = items.len();
        let (mut ids, mut versions, mut ranks, mut bands, mut grades, mut mqls, mut jsons) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut h_ids, mut h_scores, mut h_bands, mut h_mqls, mut h_causes, mut h_models) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let mut settled = Vec::with_capacity(n);
        for (it, score) in items.iter().zip(&scores) {
            ids.push(it.id.as_str());
            versions.push(it.state.version + 1);
            let Some(score) = score.as_ref() else {
                // No active model applies to this lead: it is not scored.
                ranks.push(crate::leads::UNSCORED_RANK);
                bands.push(None);
                grades.push(None);
                mqls.push(None);
                jsons.push(None);
                self.cache().remove(&it.id);
                continue;
            };
            ranks.push(score.score);
            bands.push(Some(score.band.as_str()));
            grades.push(Some(score.grade.as_str()));
            mqls.push(Some(score.mql));
            jsons.push(Some(serde_json::to_string(score).expect("a score serializes")));
            let last = it.state.last.as_ref().map(|(s, b, m)| (*s, b.as_str(), *m));
            if worth_recording(last, (score.score, score.band.as_str(), score.mql)) {
                let cause = match &it.cause {
                    // After an activation each lead's entry names the model that scored it.
                    Cause::ModelActivated { .. } => Cause::ModelActivated {
                        model: score.model.clone(),
                    },
                    other => other.clone(),
                };
                h_ids.push(it.id.as_str());
                h_scores.push(score.score);
                h_bands.push(score.band.as_str());
                h_mqls.push(score.mql);
                h_causes.push(serde_json::to_string(&cause).expect("a cause serializes"));
                h_models.push(score.model.as_str());
            }
            settled.push(Settled {
                id: it.id.clone(),
                mark,
                stamp: stamp(it.state.incarnation, it.state.version + 1),
            });
        }
        let stmt = tx
            .prepare_cached(
                "UPDATE leads AS l SET version = u.version, rank = u.rank, band = u.band, grade = u.grade, \
                 mql = u.mql, score_json = u.json \
                 FROM UNNEST($1::text[], $2::int8[], $3::float8[], $4::text[], $5::text[], $6::bool[], $7::text[]) \
                 AS u(id, version, rank, band, grade, mql, json) WHERE l.id = u.id",
            )
            .await?;
        tx.execute(&stmt, &[&ids, &versions, &ranks, &bands, &grades, &mqls, &jsons])
            .await?;
        if !h_ids.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO history (lead, at, score, band, mql, model, cause) \
                     SELECT u.lead, $6, u.score, u.band, u.mql, u.model, u.cause \
                     FROM UNNEST($1::text[], $2::float8[], $3::text[], $4::bool[], $5::text[], $7::text[]) \
                     AS u(lead, score, band, mql, cause, model)",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &h_ids,
                    &h_scores,
                    &h_bands,
                    &h_mqls,
                    &h_causes,
                    &now.as_micros(),
                    &h_models,
                ],
            )
            .await?;
        }
        Ok(settled)
    }

    pub(super) async fn ingest_once(&self, events: &[Event], now: Timestamp) -> TxResult<Vec<IngestStatus>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut lead_ids: Vec<&str> = events.iter().map(|e| e.lead.as_str()).collect();
        lead_ids.sort_unstable();
        lead_ids.dedup();
        let mut locked = lock_leads(&tx, &lead_ids).await?;
        let model = self.scoring_model(&tx).await?;

        // Which events to insert: the first of each id among those of known leads.
        let mut statuses: Vec<Option<IngestStatus>> = vec![None; events.len()];
        let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
        let mut candidates: Vec<usize> = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            if !locked.contains_key(&e.lead) {
                statuses[i] = Some(IngestStatus::Rejected(format!("unknown lead `{}`", e.lead)));
            } else if !seen.insert(&e.id) {
                statuses[i] = Some(IngestStatus::Duplicate);
            } else {
                candidates.push(i);
            }
        }
        let props: Vec<Option<String>> = candidates
            .iter()
            .map(|&i| properties_json(&events[i].properties))
            .collect();
        let mut inserted: HashMap<String, i64> = HashMap::with_capacity(candidates.len());
        if !candidates.is_empty() {
            let ids: Vec<&str> = candidates.iter().map(|&i| events[i].id.as_str()).collect();
            let leads: Vec<&str> = candidates.iter().map(|&i| events[i].lead.as_str()).collect();
            let kinds: Vec<&str> = candidates.iter().map(|&i| events[i].kind.as_str()).collect();
            let ats: Vec<i64> = candidates
                .iter()
                .map(|&i| events[i].occurred_at.as_micros())
                .collect();
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO events (id, lead, type, occurred_at, properties, received_at) \
                     SELECT u.id, u.lead, u.type, u.at, u.props, $6 \
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[]) \
                     WITH ORDINALITY AS u(id, lead, type, at, props, n) ORDER BY u.n \
                     ON CONFLICT (id) DO NOTHING RETURNING id, seq",
                )
                .await?;
            for row in tx
                .query(&stmt, &[&ids, &leads, &kinds, &ats, &props, &now.as_micros()])
                .await?
            {
                inserted.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }

        // Per touched lead, in order of first accepted event: its new events.
        let mut order: Vec<&str> = Vec::new();
        let mut new_events: HashMap<&str, (Vec<String>, Vec<NewEvent<'_>>)> = HashMap::new();
        for (&i, props) in candidates.iter().zip(props) {
            let e = &events[i];
            let Some(&seq) = inserted.get(&e.id) else {
                statuses[i] = Some(IngestStatus::Duplicate);
                continue;
            };
            statuses[i] = Some(IngestStatus::Accepted);
            let entry = new_events.entry(e.lead.as_str()).or_insert_with(|| {
                order.push(e.lead.as_str());
                Default::default()
            });
            entry.0.push(e.id.clone());
            entry.1.push(NewEvent {
                kind: &e.kind,
                properties: props,
                at: e.occurred_at,
                seq,
            });
        }
        let mut items = Vec::with_capacity(order.len());
        for id in order {
            let (ids, mut evs) = new_events.remove(id).unwrap_or_default();
            let Some((record, state)) = locked.remove(id) else {
                continue;
            };
            evs.sort_by_key(|e| e.seq);
            items.push(Rescore {
                id: id.to_owned(),
                state,
                lead: record.lead,
                edited: false,
                created: false,
                new_events: evs,
                cause: Cause::Events { events: ids },
            });
        }
        let settled = self.rescore(&tx, &items, model.as_ref(), now).await?;
        tx.commit().await?;
        self.settle(settled);
        Ok(statuses
            .into_iter()
            .map(|s| s.unwrap_or(IngestStatus::Duplicate))
            .collect())
    }

    pub(super) async fn write_leads_once(
        &self,
        leads: &[NewLead],
        on_conflict: OnConflict,
        now: Timestamp,
    ) -> TxResult<Vec<LeadWrite>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Lock every existing lead the batch names, in id order, before
        // changing any: two batches naming the same leads never deadlock.
        let ids: Vec<&str> = leads.iter().filter_map(|l| l.lead.get(StdField::Id)).collect();
        let keys: Vec<String> = leads
            .iter()
            .filter_map(|l| email_key(l.lead.get(StdField::Email)))
            .collect();
        if !ids.is_empty() || !keys.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "SELECT id FROM leads WHERE id = ANY($1) OR email_key = ANY($2) ORDER BY id FOR NO KEY UPDATE",
                )
                .await?;
            tx.query(&stmt, &[&ids, &keys]).await?;
        }
        let model = self.scoring_model(&tx).await?;
        let mut out = Vec::with_capacity(leads.len());
        let mut batch = LeadBatch::default();
        for new in leads {
            out.push(
                self.write_lead(&tx, new, on_conflict, model.as_ref(), now, &mut batch)
                    .await?,
            );
        }
        self.score_created(&tx, &mut batch, model.as_ref(), now).await?;
        tx.commit().await?;
        self.settle(batch.settled);
        Ok(out)
    }

    /// Scores the leads created so far in a batch, all in one go.
    async fn score_created(
        &self,
        tx: &Transaction<'_>,
        batch: &mut LeadBatch<'_>,
        model: Option<&ActiveSet>,
        now: Timestamp,
    ) -> TxResult<()> {
        if !batch.created.is_empty() {
            let items = std::mem::take(&mut batch.created);
            batch.settled.extend(self.rescore(tx, &items, model, now).await?);
        }
        Ok(())
    }

    async fn write_lead(
        &self,
        tx: &Transaction<'_>,
        new: &NewLead,
        on_conflict: OnConflict,
        model: Option<&ActiveSet>,
        now: Timestamp,
        batch: &mut LeadBatch<'_>,
    ) -> TxResult<LeadWrite> {
        let key = email_key(new.lead.get(StdField::Email));
        let given_id = new.lead.get(StdField::Id);
        let stmt = tx
            // Two equality lookups, not one `OR`: a plan made while the table
            // was small would otherwise scan it for every lead of a big import.
            .prepare_cached(
                "SELECT id, email_key FROM leads WHERE id = $1 \
                 UNION ALL SELECT id, email_key FROM leads WHERE email_key = $2",
            )
            .await?;
        let (mut by_id, mut by_email) = (None, None);
        for row in tx.query(&stmt, &[&given_id, &key]).await? {
            let (id, k): (String, Option<String>) = (row.try_get(0)?, row.try_get(1)?);
            if key.is_some() && k == key {
                by_email = Some(id.clone());
            }
            if given_id == Some(id.as_str()) {
                by_id = Some(id);
            }
        }
        match (Target::of(by_id, by_email), on_conflict) {
            (Target::Clash { existing }, _) => Ok(LeadWrite::Conflict {
                existing,
                by: ConflictKey::Email,
            }),
            (Target::Existing { id, by }, OnConflict::Refuse) => Ok(LeadWrite::Conflict { existing: id, by }),
            (Target::Existing { id, .. }, OnConflict::Update) => {
                // The lead may be one created earlier in this batch: score
                // those first, so the edit builds on their stored state.
                self.score_created(tx, batch, model, now).await?;
                let Some((record, state)) = lock_lead(tx, &id).await? else {
                    // Deleted meanwhile: try again from the start.
                    return Err(Fail::Retry(format!("lead `{id}` vanished during an upsert")));
                };
                let mut lead = record.lead.clone();
                let mut owner = record.owner.clone();
                if merge_new(&mut lead, &mut owner, new) {
                    let done = self.save_edit(tx, &id, state, lead, owner, model, now).await?;
                    batch.settled.extend(done);
                }
                Ok(LeadWrite::Updated(id))
            }
            (Target::New, _) => {
                let mut lead = new.lead.clone();
                let id = given_id.map_or_else(new_lead_id, str::to_owned);
                lead.set(StdField::Id, id.clone());
                let cols = LEAD_COLUMNS.join(", ");
                let marks = (1..=15).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                let stmt = tx
                    .prepare_cached(&format!(
                        "INSERT INTO leads ({cols}, attributes, email_key, owner, search, created_at, updated_at, \
                         version, rank) VALUES ({marks}, $16, $17, $18, $19, $20, $20, 0, $21) RETURNING incarnation"
                    ))
                    .await?;
                let values = column_values(&lead);
                let (attributes, search) = (attributes_json(&lead), search_text(&lead));
                let mut params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
                let (created, unranked) = (now.as_micros(), rank(None));
                params.extend::<[&(dyn ToSql + Sync); 6]>([
                    &attributes,
                    &key,
                    &new.owner,
                    &search,
                    &created,
                    &unranked,
                ]);
                let incarnation: i64 = tx.query_one(&stmt, &params).await?.try_get(0)?;
                let item = Rescore {
                    id: id.clone(),
                    state: RowState {
                        incarnation,
                        version: 0,
                        last: None,
                    },
                    lead,
                    edited: true,
                    created: true,
                    new_events: Vec::new(),
                    cause: Cause::Created,
                };
                batch.created.push(item);
                Ok(LeadWrite::Created(id))
            }
        }
    }

    /// Stores an edited lead (data and owner), then rescores it.
    #[allow(clippy::too_many_arguments)]
    async fn save_edit(
        &self,
        tx: &Transaction<'_>,
        id: &str,
        state: RowState,
        lead: Lead,
        owner: Option<String>,
        model: Option<&ActiveSet>,
        now: Timestamp,
    ) -> TxResult<Vec<Settled>> {
        let key = email_key(lead.get(StdField::Email));
        if let Some(k) = &key {
            let stmt = tx
                .prepare_cached("SELECT id FROM leads WHERE email_key = $1 AND id <> $2")
                .await?;
            if let Some(row) = tx.query_opt(&stmt, &[k, &id]).await? {
                return Err(Fail::Store(StoreError::Conflict(row.try_get(0)?)));
            }
        }
        let sets = LEAD_COLUMNS
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let stmt = tx
            .prepare_cached(&format!(
                "UPDATE leads SET {sets}, attributes = $16, email_key = $17, owner = $18, search = $19, \
                 updated_at = $20 WHERE id = $1"
            ))
            .await?;
        let values = column_values(&lead);
        let (attributes, search, updated) = (attributes_json(&lead), search_text(&lead), now.as_micros());
        let mut params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        params.extend::<[&(dyn ToSql + Sync); 5]>([&attributes, &key, &owner, &search, &updated]);
        tx.execute(&stmt, &params).await?;
        let item = Rescore {
            id: id.to_owned(),
            state,
            lead,
            edited: true,
            created: false,
            new_events: Vec::new(),
            cause: Cause::LeadEdited,
        };
        self.rescore(tx, &[item], model, now).await
    }

    pub(super) async fn update_lead_once(
        &self,
        id: &str,
        patch: &LeadPatch,
        now: Timestamp,
    ) -> TxResult<Option<LeadRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some((record, state)) = lock_lead(&tx, id).await? else {
            return Ok(None);
        };
        let model = self.scoring_model(&tx).await?;
        let mut lead = record.lead.clone();
        let mut owner = record.owner.clone();
        if !apply_patch(&mut lead, &mut owner, patch) {
            return Ok(Some(record));
        }
        let settled = self
            .save_edit(&tx, id, state, lead, owner, model.as_ref(), now)
            .await?;
        let stmt = tx
            .prepare_cached(&format!("SELECT {LEAD_SELECT} FROM leads WHERE id = $1"))
            .await?;
        let (after, _) = lead_from_row(&tx.query_one(&stmt, &[&id]).await?)?;
        tx.commit().await?;
        self.settle(settled);
        Ok(Some(after))
    }

    pub(super) async fn activate_once(
        &self,
        name: &str,
        now: Timestamp,
        alongside: bool,
    ) -> TxResult<Timestamp> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Waits for the transactions scoring with the old model, and makes a
        // second activation at once wait for this one.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MODEL_LOCK])
            .await?;
        // Later than every activation before it (see `Store::activate_model`).
        let latest: Option<i64> = tx
            .query_one("SELECT max(activated_at) FROM models", &[])
            .await?
            .try_get(0)?;
        let at = crate::activation_time(now, latest);
        let found = tx
            .execute(
                "UPDATE models SET active = TRUE, activated_at = $2, rescore = NULL WHERE name = $1",
                &[&name, &at.as_micros()],
            )
            .await?;
        if found == 0 {
            return Err(Fail::Store(StoreError::NotFound(format!("model `{name}`"))));
        }
        if alongside {
            // The progress of the rescoring that follows is the set's.
            tx.execute("UPDATE models SET rescore = NULL WHERE active", &[])
                .await?;
        } else {
            tx.execute(
                "UPDATE models SET active = FALSE WHERE name <> $1 AND active",
                &[&name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(at)
    }

    /// Rescores up to `limit` leads with ids after `after`; returns how many
    /// and the last id (`None` when there are no more).
    pub(super) async fn rescore_chunk(
        &self,
        after: &str,
        limit: usize,
        now: Timestamp,
        done: u64,
        total: u64,
    ) -> TxResult<(u64, Option<String>)> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // None active, or a newer activation has its own rescoring (here or
        // in another instance): this one stops here.
        if self.active(&tx).await?.is_none() || superseded(&tx, now).await? {
            return Ok((0, None));
        }
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {LEAD_SELECT} FROM leads WHERE id > $1 ORDER BY id LIMIT $2 FOR NO KEY UPDATE"
            ))
            .await?;
        let rows = tx.query(&stmt, &[&after, &(limit as i64)]).await?;
        // Read after the locks: the model any later writer also sees.
        let Some(model) = self.scoring_model(&tx).await? else {
            return Ok((0, None));
        };
        // Each lead's history entry names the model that scored it (see `rescore`).
        let cause = Cause::ModelActivated { model: String::new() };
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let (record, state) = lead_from_row(row)?;
            let score = record.score.as_ref();
            if model.scored_since(
                &record.lead,
                score.map(|s| s.model.as_str()),
                score.and_then(|s| Timestamp::parse(&s.as_of).ok()),
                now,
            ) {
                continue;
            }
            items.push(Rescore {
                id: record.id().to_owned(),
                state,
                lead: record.lead,
                edited: false,
                created: false,
                new_events: Vec::new(),
                cause: cause.clone(),
            });
        }
        let settled = self.rescore(&tx, &items, Some(&model), now).await?;
        let n = rows.len() as u64;
        record_rescore(&tx, done + n, total.max(done + n), false, now).await?;
        let last = match rows.last() {
            Some(row) if rows.len() == limit => Some(row.try_get::<_, String>(0)?),
            _ => None,
        };
        tx.commit().await?;
        self.settle(settled);
        Ok((n, last))
    }
}

/// What a batch of lead writes has done so far: cache entries to settle at
/// commit, and new leads still to score (scored together, one statement).
#[derive(Default)]
struct LeadBatch<'a> {
    settled: Vec<Settled>,
    created: Vec<Rescore<'a>>,
}

impl PgStore {
    /// Rescores these leads because time passed (see `Store::refresh_scores`).
    pub(super) async fn refresh_once(&self, ids: &[String], now: Timestamp) -> TxResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let locked = lock_leads(&tx, &sorted).await?;
        let model = self.scoring_model(&tx).await?;
        let items: Vec<Rescore<'_>> = locked
            .into_iter()
            .filter(|(_, (record, _))| {
                !crate::rescore::scored_after(record.score.as_ref().map(|s| s.as_of.as_str()), now)
            })
            .map(|(id, (record, state))| {
                let scoring = model.as_ref().and_then(|set| set.for_lead(&record.lead));
                let cause = crate::rescore::refresh_cause(
                    record.score.as_ref().map(|s| s.model.as_str()),
                    scoring.map(|m| &*m.name),
                );
                Rescore {
                    id,
                    state,
                    lead: record.lead,
                    edited: false,
                    created: false,
                    new_events: Vec::new(),
                    cause,
                }
            })
            .collect();
        let settled = self.rescore(&tx, &items, model.as_ref(), now).await?;
        tx.commit().await?;
        self.settle(settled);
        Ok(())
    }
}
