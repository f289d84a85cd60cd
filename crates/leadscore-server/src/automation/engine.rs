//! The automation engine: evaluates each lead against the triggers,
//! routing, nurture and aging rules, and saves what it decided together
//! with the lead's automation state. Touched leads are taken in batches:
//! read with one query of each kind, decided one by one, saved in one
//! transaction (each save as if alone).
//!
//! Evaluating a lead is idempotent: the state remembers which triggers held
//! (and since when), so a trigger fires once when its conditions start (or
//! stop) holding, however often the lead is looked at. That is what makes the
//! rest simple: any lead may be looked at any time. Leads are looked at
//!
//! - when a request changed them (the routes `touch` them),
//! - when their `next_at` comes: the next moment their band or MQL changes
//!   as time passes (decay, windows, events dated ahead), an SLA runs out,
//!   or a cold lead's time to go on the nurture list comes,
//! - at start and after a model activation, when the automation has not yet
//!   seen them as they are (a stop between a write and its evaluation loses
//!   nothing).
//!
//! Most evaluations change nothing but the lead's version the state was
//! last found right for (an event that moves no band, no trigger). Those are
//! not saved one by one: the engine keeps them in memory and records them in
//! bulk every few seconds and at shutdown ([`SeenMark`]). A stop before that
//! costs only a second look at those leads at the next start.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadscore_core::workflow::Status;
use leadscore_core::{Event, Lead, LeadData, StdField, Timestamp};
use leadscore_store::automation::{
    AutomationRecord, AutomationSave, Happening, LoadChange, Notification, Saved, SeenMark,
};
use leadscore_store::{LeadRecord, LogEntry, StoreError, Task, TaskDoc, WorkflowRecord, new_task_id};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::config::{ActionSpec, Edge, Rules};
use super::routing;
use crate::AppState;

const MICROS_PER_HOUR: f64 = 3_600_000_000.0;
/// Batches of leads evaluated at once.
const PARALLEL: usize = 4;
/// Leads evaluated together: read in bulk, saved in one transaction.
const BATCH: usize = 64;
/// How long touched leads wait for others to fill a batch: under a steady
/// stream of single events, batches of one or two leads each cost a read
/// transaction and a write of their own; waiting this long (nothing a
/// person would notice in a notification) lets them share.
const LINGER: Duration = Duration::from_millis(20);
/// Where the fingerprint of the settings last used is kept.
const SETTINGS_KEY: &str = "settings_fingerprint";
/// How often the leads found unchanged are recorded (see [`Handle::flush`]).
const MARK_EVERY: Duration = Duration::from_secs(2);
/// Leads recorded as seen in one transaction.
const MARKS_AT_ONCE: usize = 200;
/// Who the lead log names for what automation did.
pub const ACTOR: &str = "automation";

/// What the routes hold: touch leads after a write; ask for a sweep.
#[derive(Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<String>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    pub rules: Arc<Rules>,
    /// Wakes the sweep (after a model activation's rescoring).
    pub sweep: Notify,
    /// Wakes the webhook sender (new deliveries were saved).
    pub outbox: Notify,
    /// Leads evaluated and found unchanged, not yet recorded.
    marks: Mutex<HashMap<String, SeenMark>>,
}

impl Handle {
    pub fn new(rules: Rules) -> Handle {
        let (tx, rx) = mpsc::unbounded_channel();
        Handle {
            tx,
            rx: Mutex::new(Some(rx)),
            rules: Arc::new(rules),
            sweep: Notify::new(),
            outbox: Notify::new(),
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// Asks for these leads to be evaluated soon.
    pub fn touch<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) {
        if !self.rules.settings.enabled {
            return;
        }
        for id in ids {
            let _ = self.tx.send(id.into());
        }
    }

    /// Remembers that a lead was found unchanged as it is at `mark.lead_version`.
    fn mark(&self, mark: SeenMark) {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        match marks.get(&mark.lead) {
            Some(m) if m.rev == mark.rev && m.lead_version >= mark.lead_version => {}
            _ => {
                marks.insert(mark.lead.clone(), mark);
            }
        }
    }

    /// Records the leads found unchanged since the last flush, so that the
    /// sweeps do not look at them again. Failing, they stay for the next.
    pub async fn flush(&self, store: &Arc<dyn leadscore_store::Store>) {
        let taken = std::mem::take(&mut *self.marks.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.is_empty() {
            return;
        }
        let marks: Vec<SeenMark> = taken.into_values().collect();
        // In short transactions, so that the writes waiting behind them
        // (a client's events) do not wait long.
        for (i, chunk) in marks.chunks(MARKS_AT_ONCE).enumerate() {
            if let Err(e) = store.automation().mark_seen(chunk).await {
                let rest = &marks[i * MARKS_AT_ONCE..];
                tracing::warn!(error = %e, leads = rest.len(), "could not record the leads automation found unchanged; it tries again");
                let mut back = self.marks.lock().unwrap_or_else(|p| p.into_inner());
                for m in rest {
                    back.entry(m.lead.clone()).or_insert_with(|| m.clone());
                }
                return;
            }
        }
    }

    fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What the engine remembers of a lead between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seen {
    pub band: Option<String>,
    pub mql: bool,
    pub rating: Option<String>,
    pub status: Option<String>,
    pub owner: Option<String>,
    /// Triggers whose conditions hold, and since when (microseconds).
    pub holding: BTreeMap<String, i64>,
    /// Untouched-for-too-long triggers that fired in the current holding.
    pub fired: BTreeSet<String>,
    /// Since when the lead has been in a cold band.
    pub cold_since: Option<i64>,
}

/// The lead as triggers see it: its fields, and the score and the rep's
/// work under the names `score`, `fit`, `engagement`, `band`, `grade`,
/// `mql`, `rating`, `status` and `owner`.
struct Facts<'a> {
    lead: &'a Lead,
    more: HashMap<&'static str, String>,
}

impl LeadData for Facts<'_> {
    fn get(&self, field: StdField) -> Option<&str> {
        self.lead.get(field)
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        match self.more.get(name) {
            Some(v) => Some(v),
            None => self.lead.attribute(name),
        }
    }
}

/// The ids that `records` holds, in the order of `ids`.
fn still_there(ids: &[String], records: &HashMap<String, LeadRecord>) -> Vec<String> {
    ids.iter()
        .filter(|id| records.contains_key(*id))
        .cloned()
        .collect()
}

/// What an evaluation reads about a lead.
struct Read {
    record: LeadRecord,
    events: Vec<Event>,
    workflow: WorkflowRecord,
    stored: AutomationRecord,
    /// When the score will next change by itself (band or MQL), if ever soon.
    next_at: Vec<Timestamp>,
}

/// The evaluation of one lead in progress: what it will save.
struct Plan {
    save: AutomationSave,
    owner: Option<String>,
    assigned_here: bool,
    nurture: Option<Timestamp>,
}

fn micros_hours(h: f64) -> i64 {
    (h * MICROS_PER_HOUR).round() as i64
}

fn after_hours(rules: &Rules, from: Timestamp, hours: f64, working: bool) -> Timestamp {
    if working {
        rules
            .calendar
            .add_working(from, (hours * 60.0).round().max(0.0) as u64)
    } else {
        Timestamp::from_micros(from.as_micros() + micros_hours(hours))
    }
}

/// The moment of the lead's latest contact: an activity logged by a rep
/// (a call, meeting, e-mail or quote; a missed meeting is no contact).
fn last_contact(events: &[Event]) -> Option<Timestamp> {
    events
        .iter()
        .filter(|e| e.properties.contains_key(crate::wire::LOGGED_BY) && e.kind != "meeting_missed")
        .map(|e| e.occurred_at)
        .max()
}

fn closed(status: Status) -> bool {
    matches!(status, Status::Converted | Status::Disqualified | Status::Lost)
}

/// The automation engine of one server instance.
#[derive(Debug, Clone)]
pub struct Engine {
    state: AppState,
    handle: Arc<Handle>,
}

impl Engine {
    pub fn new(state: AppState) -> Engine {
        let handle = state.automation.clone();
        Engine { state, handle }
    }

    fn rules(&self) -> &Rules {
        &self.handle.rules
    }

    /// Evaluates a lead until its save goes through (someone else saving in
    /// between, or a rep filling up, makes it look again).
    pub async fn process(&self, id: &str) -> Result<(), StoreError> {
        let mut full = HashSet::new();
        for _ in 0..16 {
            match self.evaluate(id, &full).await? {
                None | Some(Saved::Done) => return Ok(()),
                Some(Saved::Changed) => {}
                Some(Saved::Full(rep)) => {
                    full.insert(rep);
                }
            }
        }
        tracing::warn!("a lead's automation state kept changing; it is looked at again later");
        Ok(())
    }

    /// One evaluation; `None` when the lead is gone.
    async fn evaluate(&self, id: &str, full: &HashSet<String>) -> Result<Option<Saved>, StoreError> {
        let now = self.state.now();
        let Some(read) = self.read(&[id.to_owned()], now).await?.remove(id) else {
            return Ok(None);
        };
        match self.decide(read, now, full).await? {
            Some(save) => Ok(Some(self.save(save).await?)),
            None => Ok(Some(Saved::Done)),
        }
    }

    /// Saves one lead's evaluation; wakes the webhook sender when it
    /// recorded happenings.
    async fn save(&self, save: AutomationSave) -> Result<Saved, StoreError> {
        let outbox = !save.happenings.is_empty();
        let saved = self.state.store.automation().save(save).await?;
        if saved == Saved::Done && outbox {
            self.handle.outbox.notify_one();
        }
        Ok(saved)
    }

    /// Evaluates several leads with one read of each kind and one
    /// transaction for their saves. Never fails as a whole: when the batch
    /// cannot be done together, its leads are evaluated one by one, and a
    /// lead that fails alone is logged and left for the next sweep.
    pub async fn process_batch(&self, ids: &[String]) {
        let alone = match self.try_batch(ids).await {
            Ok(alone) => alone,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    leads = ids.len(),
                    "automation could not evaluate a batch of leads together; it evaluates them one by one"
                );
                ids.to_vec()
            }
        };
        for id in alone {
            if let Err(e) = self.process(&id).await {
                tracing::warn!(error = %e, "automation could not evaluate a lead; it is tried again later");
            }
        }
    }

    /// The batch itself; the leads to evaluate alone afterwards: those whose
    /// save assigns them or changes a rep's load (evaluated again with the
    /// loads as they are then), and those whose save found them changed.
    async fn try_batch(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let now = self.state.now();
        let mut reads = self.read(ids, now).await?;
        let none = HashSet::new();
        let mut saves = Vec::new();
        let mut alone = Vec::new();
        for id in ids {
            let Some(read) = reads.remove(id) else {
                continue; // gone
            };
            match self.decide(read, now, &none).await? {
                None => {}
                Some(save) if save.loads.is_empty() && save.owner.is_none() => saves.push(save),
                Some(_) => alone.push(id.clone()),
            }
        }
        if !saves.is_empty() {
            let outcomes = self.state.store.automation().save_many(&saves).await?;
            let mut outbox = false;
            for (save, saved) in saves.into_iter().zip(outcomes) {
                match saved {
                    Saved::Done => outbox |= !save.happenings.is_empty(),
                    _ => alone.push(save.lead),
                }
            }
            if outbox {
                self.handle.outbox.notify_one();
            }
        }
        Ok(alone)
    }

    /// What an evaluation needs of these leads (leads that are gone are left
    /// out), read in bulk. A lead whose stored score has aged (decay, a
    /// window) is rescored as of `now` first.
    async fn read(&self, ids: &[String], now: Timestamp) -> Result<HashMap<String, Read>, StoreError> {
        let store = &self.state.store;
        let rules = self.rules();
        let settings = &rules.settings;
        let leadscore_store::LeadBundle {
            active,
            mut records,
            mut events,
            mut workflows,
            mut states,
        } = store.lead_bundle(ids).await?;
        let present = still_there(ids, &records);

        // Scores that age: the score as of now, stored if it moved since it
        // was stored; and the next moment the band or MQL will change.
        let mut next: HashMap<String, Vec<Timestamp>> = HashMap::new();
        let mut stale = Vec::new();
        for id in &present {
            let record = &records[id];
            let Some(m) = active.as_ref().and_then(|s| s.for_lead(&record.lead)) else {
                continue;
            };
            let lead_events = events.get(id).map_or(&[][..], Vec::as_slice);
            let fit = m.model.evaluate_fit(&record.lead);
            let hits = m.model.hits_for_events(lead_events);
            let mut scratch = hits.clone();
            let now_score = m.model.score_hits(&fit, &mut scratch, now);
            let band = &m.model.bands[now_score.band].name;
            let moved = record.score.as_ref().is_none_or(|s| {
                s.score != now_score.score || &s.band != band || s.mql != now_score.mql || *s.model != *m.name
            });
            if moved {
                stale.push(id.clone());
            }
            let horizon = Timestamp::from_micros(
                now.as_micros() + i64::from(settings.horizon_days) * 24 * micros_hours(1.0),
            );
            let next_at = next.entry(id.clone()).or_default();
            match m
                .model
                .next_change_with(&fit, &hits, now, horizon, &rules.score_thresholds)
            {
                Some(t) => next_at.push(t),
                // Nothing changes within the horizon: look again then, if
                // anything about the score depends on time at all.
                None if m
                    .model
                    .behavior
                    .iter()
                    .any(|b| b.half_life_days.is_some() || b.window_days.is_some()) =>
                {
                    next_at.push(horizon)
                }
                None => {}
            }
        }
        if !stale.is_empty() {
            store.refresh_scores(&stale, now).await?;
            let mut fresh = store.get_leads(&stale).await?;
            for id in &stale {
                match fresh.remove(id) {
                    Some(r) => records.insert(id.clone(), r),
                    None => records.remove(id),
                };
            }
        }

        let present = still_there(ids, &records);
        Ok(present
            .into_iter()
            .filter_map(|id| {
                let read = Read {
                    record: records.remove(&id)?,
                    events: events.remove(&id).unwrap_or_default(),
                    workflow: workflows.remove(&id).unwrap_or_default(),
                    stored: states.remove(&id).unwrap_or_default(),
                    next_at: next.remove(&id).unwrap_or_default(),
                };
                Some((id, read))
            })
            .collect())
    }

    /// Decides what to do about one lead: `None` when there is nothing new
    /// to save.
    async fn decide(
        &self,
        read: Read,
        now: Timestamp,
        full: &HashSet<String>,
    ) -> Result<Option<AutomationSave>, StoreError> {
        self.state.metrics.automation_evaluated.inc();
        let rules = self.rules();
        let settings = &rules.settings;
        let Read {
            record,
            events,
            workflow,
            stored,
            mut next_at,
        } = read;
        let id = record.lead.id();
        let first_sight = stored.rev == 0;
        let prev: Seen = serde_json::from_value(stored.doc.clone()).unwrap_or_default();
        let wf = &workflow.workflow;
        let status = wf.status.status;
        let rating = wf.rating.as_ref().map(|r| r.rating.as_str().to_owned());
        let score = record.score.as_ref();
        let band = score.map(|s| s.band.clone());
        let mql = score.is_some_and(|s| s.mql);

        let mut more: HashMap<&'static str, String> = HashMap::new();
        if let Some(s) = score {
            more.insert("score", s.score.to_string());
            more.insert("fit", s.fit.to_string());
            more.insert("engagement", s.engagement.to_string());
            more.insert("band", s.band.clone());
            more.insert("grade", s.grade.clone());
        }
        more.insert("mql", mql.to_string());
        more.insert("status", status.as_str().to_owned());
        if let Some(r) = &rating {
            more.insert("rating", r.clone());
        }
        if let Some(o) = &record.owner {
            more.insert("owner", o.clone());
        }
        let facts = Facts {
            lead: &record.lead,
            more,
        };

        let mut seen = Seen {
            band: band.clone(),
            mql,
            rating: rating.clone(),
            status: Some(status.as_str().to_owned()),
            owner: record.owner.clone(),
            ..Seen::default()
        };
        let mut plan = Plan {
            save: AutomationSave {
                lead: id.to_owned(),
                rev: stored.rev,
                now,
                ..AutomationSave::default()
            },
            owner: record.owner.clone(),
            assigned_here: false,
            nurture: stored.nurture_since,
        };

        // Triggers.
        let contact = last_contact(&events);
        let mut firing = Vec::new();
        for t in &rules.triggers {
            let tid = &t.spec.id;
            let holds = t.when.iter().all(|c| c.holds(&facts));
            let was = prev.holding.get(tid).copied();
            match t.spec.untouched_hours {
                None => {
                    let fires = match t.spec.on {
                        Edge::Enter => holds && was.is_none(),
                        Edge::Leave => !holds && was.is_some(),
                    };
                    if fires {
                        firing.push(t);
                    }
                }
                Some(hours) if holds => {
                    let since = Timestamp::from_micros(was.unwrap_or(now.as_micros()));
                    if prev.fired.contains(tid) {
                        seen.fired.insert(tid.clone());
                    } else if contact.is_none_or(|c| c < since) {
                        let deadline = after_hours(rules, since, hours, t.spec.working_hours);
                        if now >= deadline {
                            firing.push(t);
                            seen.fired.insert(tid.clone());
                        } else {
                            next_at.push(deadline);
                        }
                    }
                }
                Some(_) => {}
            }
            if holds {
                seen.holding.insert(tid.clone(), was.unwrap_or(now.as_micros()));
            }
        }
        for t in firing {
            for action in &t.spec.actions {
                self.act(
                    &mut plan,
                    &record,
                    band.as_deref(),
                    status,
                    t.spec.id.as_str(),
                    action,
                    full,
                )
                .await?;
            }
        }

        // Nurture: a lead that stops being MQL, or stays cold, goes on the
        // list; it comes off when it is MQL again (or converted).
        let nurture = &settings.nurture;
        let cold = band
            .as_deref()
            .is_some_and(|b| nurture.cold_bands.iter().any(|c| c == b));
        seen.cold_since = if cold {
            Some(
                prev.cold_since
                    .filter(|_| !first_sight)
                    .unwrap_or(now.as_micros()),
            )
        } else {
            None
        };
        if plan.nurture.is_none() && !closed(status) {
            if nurture.on_leaving_mql && !first_sight && prev.mql && !mql {
                self.nurture(&mut plan, &record, true, None, "left_mql");
            } else if let Some(since) = seen.cold_since {
                let due =
                    Timestamp::from_micros(since + i64::from(nurture.cold_days) * 24 * micros_hours(1.0));
                if now >= due {
                    self.nurture(&mut plan, &record, true, None, "stayed_cold");
                } else {
                    next_at.push(due);
                }
            }
        } else if plan.nurture.is_some()
            && (mql || matches!(status, Status::Converted | Status::Disqualified))
        {
            // Lost deals stay: recycling them is what nurture is for.
            let why = match status {
                _ if mql => "warmed_up",
                Status::Converted => "converted",
                _ => "disqualified",
            };
            self.nurture(&mut plan, &record, false, None, why);
        }

        // What happened, for webhooks.
        let owner_now = plan.owner.clone();
        let mut happenings: Vec<(&str, Value)> = Vec::new();
        if band != prev.band && (band.is_some() || !first_sight) {
            happenings.push(("lead.band_changed", json!({"from": prev.band, "to": band})));
        }
        if mql && (first_sight || !prev.mql) {
            happenings.push(("lead.mql", json!({})));
        }
        if !mql && prev.mql && !first_sight {
            happenings.push(("lead.mql_lost", json!({})));
        }
        if owner_now != prev.owner && (owner_now.is_some() || !first_sight) {
            happenings.push(("lead.assigned", json!({"from": prev.owner, "to": owner_now})));
        }
        if !first_sight && rating != prev.rating {
            happenings.push(("lead.rating_changed", json!({"from": prev.rating, "to": rating})));
        }
        if !first_sight && seen.status != prev.status {
            happenings.push((
                "lead.status_changed",
                json!({"from": prev.status, "to": seen.status}),
            ));
        }
        for (kind, change) in happenings {
            let h = Self::happening(
                now,
                &record,
                owner_now.as_deref(),
                kind,
                json!({"change": change}),
            );
            plan.save.happenings.push(h);
        }
        seen.owner = owner_now.clone();

        // Whose load the lead counts towards: its owner's, while it is open.
        let counted = owner_now
            .clone()
            .filter(|o| !closed(status) && settings.reps.iter().any(|r| &r.name == o));
        if counted != stored.counted_owner {
            if let Some(old) = &stored.counted_owner {
                plan.save.loads.push(LoadChange {
                    rep: old.clone(),
                    delta: -1,
                    capacity: None,
                });
            }
            if let Some(new) = &counted {
                let capacity = settings
                    .reps
                    .iter()
                    .find(|r| &r.name == new)
                    .map(|r| i64::from(r.capacity));
                plan.save.loads.push(LoadChange {
                    rep: new.clone(),
                    delta: 1,
                    capacity: capacity.filter(|_| plan.assigned_here),
                });
            }
        }

        // Built with the version the state was last found right for; the
        // lead's own goes in only when the state is saved.
        let mut save = AutomationSave {
            record: AutomationRecord {
                rev: stored.rev,
                lead_version: stored.lead_version,
                workflow_rev: workflow.rev,
                next_at: next_at.into_iter().filter(|t| *t > now).min(),
                nurture_since: plan.nurture,
                counted_owner: counted,
                doc: serde_json::to_value(&seen).expect("the state serializes"),
            },
            ..plan.save
        };
        // A next look later than the stored one, still to come, is no reason
        // to save: the lead is looked at then, found unchanged, and the
        // later moment is saved (a stored moment that has come always is).
        // A new event usually moves the next look later (a higher score takes
        // longer to decay), so most single events save nothing here.
        let next_at = save.record.next_at;
        if stored
            .next_at
            .is_some_and(|old| old > now && next_at.is_none_or(|new| new >= old))
        {
            save.record.next_at = stored.next_at;
        }
        // Nothing new to say or do: save only when the state moved. When
        // only the lead's version did, that is remembered and recorded in
        // bulk later.
        let unchanged =
            !first_sight && save.record == stored && save.happenings.is_empty() && save.log.is_empty();
        if !unchanged {
            save.record.next_at = next_at;
            save.record.lead_version = record.version;
            return Ok(Some(save));
        }
        if record.version != stored.lead_version {
            self.handle.mark(SeenMark {
                lead: id.to_owned(),
                lead_version: record.version,
                rev: stored.rev,
            });
        }
        Ok(None)
    }

    fn log(&self, plan: &mut Plan, trigger: Option<&str>, action: &str, detail: Value) {
        let mut d = json!({"trigger": trigger, "action": action});
        if let (Some(m), Value::Object(extra)) = (d.as_object_mut(), detail) {
            m.extend(extra);
        }
        plan.save.log.push(LogEntry {
            at: plan.save.now,
            actor: ACTOR.into(),
            kind: "automation".into(),
            detail: d,
        });
    }

    /// A happening at `now`, the moment of the evaluation that saw it.
    fn happening(
        now: Timestamp,
        record: &LeadRecord,
        owner: Option<&str>,
        kind: &str,
        extra: Value,
    ) -> Happening {
        let mut lead = crate::wire::lead_json(record);
        lead["owner"] = json!(owner);
        let mut payload = json!({"type": kind, "occurred_at": now.to_string(), "lead": lead});
        if let (Some(m), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            m.extend(extra);
        }
        Happening {
            id: format!("ev_{}", uuid::Uuid::now_v7().simple()),
            kind: kind.to_owned(),
            lead: Some(record.id().to_owned()),
            occurred_at: now,
            payload,
        }
    }

    fn nurture(&self, plan: &mut Plan, record: &LeadRecord, add: bool, trigger: Option<&str>, why: &str) {
        let on = plan.nurture.is_some();
        if on == add {
            return;
        }
        plan.nurture = add.then_some(plan.save.now);
        let kind = if add {
            "lead.nurture_added"
        } else {
            "lead.nurture_removed"
        };
        self.log(
            plan,
            trigger,
            if add { "nurture_add" } else { "nurture_remove" },
            json!({"reason": why}),
        );
        let h = Self::happening(
            plan.save.now,
            record,
            plan.owner.as_deref(),
            kind,
            json!({"reason": why}),
        );
        plan.save.happenings.push(h);
    }

    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        plan: &mut Plan,
        record: &LeadRecord,
        band: Option<&str>,
        status: Status,
        trigger: &str,
        action: &ActionSpec,
        full: &HashSet<String>,
    ) -> Result<(), StoreError> {
        let rules = self.rules();
        let settings = &rules.settings;
        let now = plan.save.now;
        match action {
            ActionSpec::Assign { strategy, reassign } => {
                let owned_by_rep = plan
                    .owner
                    .as_ref()
                    .is_some_and(|o| settings.reps.iter().any(|r| &r.name == o));
                if closed(status) {
                    self.log(
                        plan,
                        Some(trigger),
                        "assign",
                        json!({"skipped": "the lead is closed"}),
                    );
                    return Ok(());
                }
                if owned_by_rep && !reassign {
                    self.log(
                        plan,
                        Some(trigger),
                        "assign",
                        json!({"skipped": "the lead has a rep", "owner": plan.owner}),
                    );
                    return Ok(());
                }
                let loads: HashMap<String, _> = self
                    .state
                    .store
                    .automation()
                    .loads()
                    .await?
                    .into_iter()
                    .map(|l| (l.rep.clone(), l))
                    .collect();
                let mut exclude = full.clone();
                if *reassign && let Some(o) = &plan.owner {
                    exclude.insert(o.clone());
                }
                match routing::choose(settings, &record.lead, band, *strategy, &loads, &exclude) {
                    Some(rep) => {
                        let from = plan.owner.replace(rep.name.clone());
                        plan.save.owner = Some(plan.owner.clone());
                        plan.assigned_here = true;
                        self.log(
                            plan,
                            Some(trigger),
                            "assign",
                            json!({"from": from, "to": rep.name, "strategy": strategy}),
                        );
                    }
                    None if owned_by_rep => {
                        // An escalation found no other rep: the lead stays.
                        self.log(
                            plan,
                            Some(trigger),
                            "assign",
                            json!({"kept": plan.owner, "reason": "no other rep matches the lead with room to take it"}),
                        );
                    }
                    None => {
                        let fallback = settings.fallback_owner.clone();
                        if plan.owner.as_deref() != Some(&fallback) {
                            plan.owner = Some(fallback.clone());
                            plan.save.owner = Some(plan.owner.clone());
                        }
                        self.log(
                            plan,
                            Some(trigger),
                            "assign",
                            json!({"to": plan.owner, "fallback": true, "reason": "no rep matches the lead with room to take it"}),
                        );
                    }
                }
            }
            ActionSpec::Task {
                title,
                due_hours,
                working_hours,
            } => {
                let due = after_hours(rules, now, *due_hours, *working_hours);
                let task = Task {
                    id: new_task_id(),
                    lead: record.id().to_owned(),
                    owner: plan.owner.clone(),
                    open: true,
                    due,
                    doc: TaskDoc {
                        kind: "automation".into(),
                        title: title.clone(),
                        created_at: now.to_string(),
                        created_by: ACTOR.into(),
                        done_at: None,
                        actions: Vec::new(),
                    },
                    rev: 0,
                };
                self.log(
                    plan,
                    Some(trigger),
                    "task",
                    json!({"task": task.id, "title": title, "due": due.to_string(), "owner": plan.owner}),
                );
                plan.save.tasks.push(task);
            }
            ActionSpec::Notify { to, message } => {
                let recipient = match to.as_str() {
                    "owner" => plan.owner.clone().or_else(|| settings.manager.clone()),
                    "manager" => settings.manager.clone(),
                    name => Some(name.to_owned()),
                };
                let Some(recipient) = recipient else {
                    self.log(
                        plan,
                        Some(trigger),
                        "notify",
                        json!({"skipped": "nobody to notify: no owner and no manager"}),
                    );
                    return Ok(());
                };
                let label = rules
                    .triggers
                    .iter()
                    .find(|t| t.spec.id == trigger)
                    .and_then(|t| t.spec.label.clone())
                    .unwrap_or_else(|| trigger.to_owned());
                let text = message.clone().unwrap_or_else(|| {
                    let s = record.score.as_ref();
                    format!(
                        "{label}: lead {} is {} (score {})",
                        record.id(),
                        s.map_or("unscored", |s| s.band.as_str()),
                        s.map_or("-".to_owned(), |s| s.score.to_string())
                    )
                });
                let n = Notification {
                    id: format!("nt_{}", uuid::Uuid::now_v7().simple()),
                    recipient: recipient.clone(),
                    lead: Some(record.id().to_owned()),
                    at: now,
                    trigger: Some(trigger.to_owned()),
                    message: text.clone(),
                    read_at: None,
                };
                self.log(
                    plan,
                    Some(trigger),
                    "notify",
                    json!({"to": recipient, "notification": n.id}),
                );
                let h = Self::happening(
                    now,
                    record,
                    plan.owner.as_deref(),
                    "lead.notified",
                    json!({"recipient": recipient, "message": text, "trigger": trigger}),
                );
                plan.save.notifications.push(n);
                plan.save.happenings.push(h);
            }
            ActionSpec::Webhook { event } => {
                self.log(plan, Some(trigger), "webhook", json!({"event": event}));
                let h = Self::happening(
                    now,
                    record,
                    plan.owner.as_deref(),
                    event,
                    json!({"trigger": trigger}),
                );
                plan.save.happenings.push(h);
            }
            ActionSpec::Nurture { add } => {
                self.nurture(plan, record, *add, Some(trigger), "trigger");
            }
        }
        Ok(())
    }
}

/// Starts the engine's loops; they end when the returned handles are aborted.
pub fn start(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let engine = Engine::new(state.clone());
    if !engine.rules().settings.enabled {
        return Vec::new();
    }
    let Some(rx) = engine.handle.take_receiver() else {
        return Vec::new();
    };
    vec![
        spawn(state, work(engine.clone(), rx)),
        spawn(state, due_loop(engine.clone())),
        spawn(state, sweep_loop(engine.clone())),
        spawn(state, mark_loop(engine.clone())),
        spawn(state, super::tasks::due_tasks_loop(state.clone())),
        spawn(state, super::webhooks::deliver_loop(state.clone())),
    ]
}

/// On the background runtime when there is one (`AppState::background`):
/// the tasks a loop spawns, and the reads it runs off the async threads,
/// stay there.
fn spawn(
    state: &AppState,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    match &state.background {
        Some(runtime) => runtime.spawn(task),
        None => tokio::spawn(task),
    }
}

/// Evaluates touched leads in batches (a few batches at once), each lead
/// by one task at a time.
async fn work(engine: Engine, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut queued: HashSet<String> = HashSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut set: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    // Each task's batch, so that a batch is let go even if its task panicked.
    let mut batches: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
    // Until when a batch short of BATCH leads waits for more (see LINGER).
    let mut fill_until: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(id) => {
                    if queued.insert(id.clone()) {
                        queue.push_back(id);
                    }
                    // Take in whatever else is waiting.
                    while let Ok(id) = rx.try_recv() {
                        if queued.insert(id.clone()) {
                            queue.push_back(id);
                        }
                    }
                    fill_until.get_or_insert_with(|| tokio::time::Instant::now() + LINGER);
                }
                None => break,
            },
            () = tokio::time::sleep_until(fill_until.unwrap_or_else(tokio::time::Instant::now)),
                if fill_until.is_some_and(|t| t > tokio::time::Instant::now()) => {}
            Some(done) = set.join_next_with_id(), if !set.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    Err(e) => {
                        tracing::warn!("an automation batch stopped unexpectedly; its leads are tried again later");
                        e.id()
                    }
                };
                for id in batches.remove(&task).unwrap_or_default() {
                    running.remove(&id);
                }
            }
        }
        let filled = queue.len() >= BATCH || fill_until.is_none_or(|t| t <= tokio::time::Instant::now());
        let mut i = 0;
        while filled && set.len() < PARALLEL && i < queue.len() {
            let mut batch = Vec::new();
            while batch.len() < BATCH && i < queue.len() {
                if running.contains(&queue[i]) {
                    i += 1;
                    continue;
                }
                let id = queue.remove(i).expect("in range");
                queued.remove(&id);
                running.insert(id.clone());
                batch.push(id);
            }
            if batch.is_empty() {
                break;
            }
            let engine = engine.clone();
            let ids = batch.clone();
            let task = set.spawn(async move { engine.process_batch(&ids).await });
            batches.insert(task.id(), batch);
            // What is left starts waiting for its batch to fill.
            fill_until = Some(tokio::time::Instant::now() + LINGER);
        }
        if queue.is_empty() {
            fill_until = None;
        }
        engine
            .state
            .metrics
            .automation_waiting
            .set((queue.len() + running.len()) as i64);
    }
}

/// Records the leads found unchanged, every few seconds.
async fn mark_loop(engine: Engine) {
    loop {
        tokio::time::sleep(MARK_EVERY).await;
        engine.handle.flush(&engine.state.store).await;
    }
}

/// Looks at leads whose `next_at` has come.
async fn due_loop(engine: Engine) {
    let poll = Duration::from_millis(engine.rules().settings.poll_millis);
    loop {
        tokio::time::sleep(poll).await;
        match engine
            .state
            .store
            .automation()
            .due(engine.state.now(), 1000)
            .await
        {
            Ok(ids) => engine.handle.touch(ids),
            Err(e) => tracing::warn!(error = %e, "could not read the leads due for automation"),
        }
    }
}

/// At start, after each model activation and every ten minutes: leads the
/// automation has not seen as they are; and the reps' loads recounted.
async fn sweep_loop(engine: Engine) {
    let automation = engine.state.store.automation();
    // New or changed settings (a trigger added, a rep's territory moved):
    // every lead is looked at once under them.
    let fingerprint = engine.rules().fingerprint;
    match automation.watermark(SETTINGS_KEY).await {
        Ok(Some(f)) if f == fingerprint => {}
        Ok(_) => {
            let mut after = String::new();
            loop {
                match automation.lead_ids(&after, 1000).await {
                    Ok(ids) if ids.is_empty() => break,
                    Ok(ids) => {
                        after = ids.last().cloned().unwrap_or_default();
                        engine.handle.touch(ids);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not list the leads to look at under new settings");
                        break;
                    }
                }
            }
            if let Err(e) = automation.set_meta(SETTINGS_KEY, fingerprint).await {
                tracing::warn!(error = %e, "could not record the automation settings' fingerprint");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the automation settings' fingerprint"),
    }
    loop {
        let reps: Vec<String> = engine
            .rules()
            .settings
            .reps
            .iter()
            .map(|r| r.name.clone())
            .collect();
        if let Err(e) = automation.recount_loads(&reps).await {
            tracing::warn!(error = %e, "could not recount the reps' loads");
        }
        let mut after = String::new();
        loop {
            match automation.unseen_page(&after, 1000).await {
                Ok((ids, next)) => {
                    engine.handle.touch(ids);
                    match next {
                        Some(n) => after = n,
                        None => break,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for leads automation has not seen");
                    break;
                }
            }
        }
        tokio::select! {
            _ = engine.handle.sweep.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
    }
}
