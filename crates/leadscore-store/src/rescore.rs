//! Scoring inside the store: both adapters rescore a lead in the same
//! transaction that changes it, with the code here, so a stored score is
//! always the engine's answer for the stored lead and events.
//!
//! `LeadCache` keeps each touched lead's data and events in a compact form so
//! rescoring on every ingest does not reread the lead's whole event history.
//! It is only an optimisation: an entry is used only while its `version`
//! equals the lead row's (read under the transaction's lock), so a change made
//! by another process or server instance makes the entry reload.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use leadscore_core::{Contribution, FitOutcome, Hit, Lead, RuleKind, Score, ScoringModel, Timestamp};

use crate::records::{BreakdownEntry, Cause, StoredScore};

/// The model that scores leads, parsed once.
#[derive(Debug, Clone)]
pub struct ActiveModel {
    /// Shared, so that a clone (one per scored lead on some paths) allocates nothing.
    pub name: Arc<str>,
    pub model: Arc<ScoringModel>,
}

impl ActiveModel {
    pub fn parse(name: &str, toml: &str) -> Result<ActiveModel, leadscore_core::ModelError> {
        let model = ScoringModel::from_toml(toml, &format!("model `{name}`"))?;
        Ok(ActiveModel {
            name: name.into(),
            model: Arc::new(model),
        })
    }
}

/// The active models, in the order they are tried on a lead: those with an
/// `applies_to` condition first, then those without (which take every
/// lead), each group in activation order. A lead is scored by the first
/// model that applies to it; when none does, it is not scored.
#[derive(Debug, Clone)]
pub struct ActiveSet {
    pub members: Vec<ActiveModel>,
}

impl ActiveSet {
    /// The set of `members` given in activation order; `None` when empty.
    pub fn of(members: Vec<ActiveModel>) -> Option<ActiveSet> {
        if members.is_empty() {
            return None;
        }
        let (mut conditional, rest): (Vec<_>, Vec<_>) =
            members.into_iter().partition(|m| m.model.applies_to.is_some());
        conditional.extend(rest);
        Some(ActiveSet { members: conditional })
    }

    /// The model that scores `lead`.
    pub fn for_lead(&self, lead: &Lead) -> Option<&ActiveModel> {
        self.members.iter().find(|m| m.model.applies_to_lead(lead))
    }

    pub fn find(&self, name: &str) -> Option<&ActiveModel> {
        self.members.iter().find(|m| &*m.name == name)
    }

    /// Was `lead` scored by the model of this set that scores it, as of
    /// `since` or later? (See [`scored_since`].)
    pub fn scored_since(
        &self,
        lead: &Lead,
        scored_by: Option<&str>,
        scored_as_of: Option<Timestamp>,
        since: Timestamp,
    ) -> bool {
        self.for_lead(lead)
            .is_some_and(|m| scored_since(scored_by, scored_as_of, &m.name, since))
    }

    /// Could a lead scored so be current? (Cheap: no lead data needed.)
    pub fn may_be_current(
        &self,
        scored_by: Option<&str>,
        scored_as_of: Option<Timestamp>,
        since: Timestamp,
    ) -> bool {
        self.members
            .iter()
            .any(|m| scored_since(scored_by, scored_as_of, &m.name, since))
    }
}

/// A stored model, parsed once per name (models never change under a name):
/// `parsed` keeps the models parsed so far, and `toml` gives the model's
/// text, asked for only the first time its name is seen.
pub fn parse_once(
    parsed: &std::sync::Mutex<Vec<ActiveModel>>,
    name: &str,
    toml: impl FnOnce() -> Result<String, crate::StoreError>,
) -> Result<ActiveModel, crate::StoreError> {
    let mut parsed = parsed.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = parsed.iter().find(|m| &*m.name == name) {
        return Ok(m.clone());
    }
    let model = ActiveModel::parse(name, &toml()?).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    parsed.push(model.clone());
    Ok(model)
}

/// The engine's score in the stored (and served) form.
pub fn stored_score(model: &ActiveModel, score: &Score, as_of: Timestamp) -> StoredScore {
    let m = &model.model;
    StoredScore {
        score: score.score,
        fit: score.fit,
        engagement: score.engagement,
        band: score.band_name(m).to_owned(),
        grade: score.grade.as_str().to_owned(),
        mql: score.mql,
        breakdown: score.breakdown.iter().map(|c| entry(m, c)).collect(),
        model: model.name.to_string(),
        as_of: as_of.to_string(),
    }
}

/// The engine's score as the SQLite adapter stores it: [`stored_score`]'s
/// fields as JSON, but the explanation keeps of each line only the rule's kind and
/// place in the model, its points and its events; [`read_stored`] gives back
/// the served form, with the rule ids and labels of the model the score
/// names (a stored model never changes under its name). The text is about a
/// third of the served JSON's length and a lead row half its size, which
/// every write of a score rewrites: a rescoring of every lead, and each
/// ingest's touched leads.
pub fn compact_score_json(model: &ActiveModel, score: &Score, as_of: &str) -> String {
    let mut out = Vec::with_capacity(192 + 24 * score.breakdown.len());
    write_compact_score_json(&mut out, model, score, as_of);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// [`compact_score_json`] appended to `out`, so that many scores can share
/// one buffer (a rescoring's scores are made on the pool and freed by the
/// writer: one block each cost the writer a lock of the pool thread's arena
/// per score).
pub fn write_compact_score_json(out: &mut Vec<u8>, model: &ActiveModel, score: &Score, as_of: &str) {
    let m = &model.model;
    let view = CompactView {
        score: score.score,
        fit: score.fit,
        engagement: score.engagement,
        band: score.band_name(m),
        grade: score.grade.as_str(),
        mql: score.mql,
        parts: PartsView(score),
        model: &model.name,
        as_of,
    };
    serde_json::to_writer(out, &view).expect("a score serializes");
}

/// The compact stored form (see [`compact_score_json`]); `model` and
/// `as_of` keep their names and meaning, which the SQLite adapter reads in
/// SQL.
#[derive(Serialize)]
struct CompactView<'a> {
    score: f64,
    fit: f64,
    engagement: f64,
    band: &'a str,
    grade: &'a str,
    mql: bool,
    parts: PartsView<'a>,
    model: &'a str,
    as_of: &'a str,
}

/// A compact explanation line: the rule's kind (0 fit, 1 behavior), its
/// place among the model's rules of that kind, the points, and for a
/// behavior rule the events counted (`null` for a fit rule).
type Part = (u8, usize, f64, Option<u32>);

struct PartsView<'a>(&'a Score);

impl Serialize for PartsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.breakdown.iter().map(|c| -> Part {
            match c.kind {
                RuleKind::Fit => (0, c.index, c.points, None),
                RuleKind::Behavior => (1, c.index, c.points, c.events),
            }
        }))
    }
}

/// A stored score's text in either form: the served JSON (`breakdown`; the
/// PostgreSQL adapter's, and SQLite rows written before the compact form) or
/// the compact one (`parts`).
#[derive(serde::Deserialize)]
struct StoredText {
    score: f64,
    fit: f64,
    engagement: f64,
    band: String,
    grade: String,
    mql: bool,
    #[serde(default)]
    breakdown: Option<Vec<BreakdownEntry>>,
    #[serde(default)]
    parts: Option<Vec<Part>>,
    model: String,
    as_of: String,
}

/// Reads a stored score's text, in either form (see [`StoredText`]);
/// `model` finds the model a compact score names, for its rules' ids and
/// labels. An error says what is wrong with the text.
pub fn read_stored(
    text: &str,
    model: impl FnOnce(&str) -> Option<ActiveModel>,
) -> Result<StoredScore, String> {
    let t: StoredText = serde_json::from_str(text).map_err(|e| format!("stored score: {e}"))?;
    let breakdown = match (t.breakdown, t.parts) {
        (Some(entries), _) => entries,
        (None, Some(parts)) => {
            let found = model(&t.model).ok_or_else(|| format!("stored score: no model `{}`", t.model))?;
            let m = &found.model;
            parts
                .into_iter()
                .map(|(kind, index, points, events)| {
                    let (kind, rules) = match kind {
                        0 => (RuleKind::Fit, m.fit.len()),
                        1 => (RuleKind::Behavior, m.behavior.len()),
                        other => return Err(format!("stored score: rule kind {other}")),
                    };
                    if index >= rules {
                        return Err(format!(
                            "stored score: model `{}` has no {} rule {index}",
                            t.model,
                            kind.as_str()
                        ));
                    }
                    let c = Contribution {
                        kind,
                        index,
                        points,
                        events,
                    };
                    Ok(entry(m, &c))
                })
                .collect::<Result<_, _>>()?
        }
        (None, None) => return Err("stored score: no explanation".into()),
    };
    Ok(StoredScore {
        score: t.score,
        fit: t.fit,
        engagement: t.engagement,
        band: t.band,
        grade: t.grade,
        mql: t.mql,
        breakdown,
        model: t.model,
        as_of: t.as_of,
    })
}

/// One line of a score's explanation as stored and served.
fn entry(m: &ScoringModel, c: &Contribution) -> BreakdownEntry {
    BreakdownEntry {
        rule: c.rule_id(m).to_owned(),
        kind: c.kind.as_str().to_owned(),
        label: c.label(m).into_owned(),
        points: c.points,
        events: match c.kind {
            RuleKind::Fit => None,
            RuleKind::Behavior => c.events,
        },
    }
}

/// Was a lead already scored by `model` as of `since` or later (by a write
/// after a model's activation)? The rescoring of that activation, which
/// scores as of the activation moment, must then leave it: rescoring it would
/// set it back and drop the events that happened since.
pub fn scored_since(
    scored_by: Option<&str>,
    scored_as_of: Option<Timestamp>,
    model: &str,
    since: Timestamp,
) -> bool {
    scored_by == Some(model) && scored_as_of.is_some_and(|t| t >= since)
}

/// Is a stored score as of a later moment than `now`? Then it is newer than
/// a rescoring "because time passed" as of `now` (decided on an earlier read,
/// or by another instance whose clock is behind) would be: that rescoring
/// would set it back and drop the events between, so it leaves the lead.
pub fn scored_after(scored_as_of: Option<&str>, now: Timestamp) -> bool {
    scored_as_of
        .and_then(|t| Timestamp::parse(t).ok())
        .is_some_and(|t| t > now)
}

/// The cause to record when a lead is rescored because time passed. The lead
/// itself has not changed, so if the model that now scores it is not the one
/// that scored it last, the change is an activation's, and its entry says so
/// (the activation's own rescoring may come later and then find it done).
pub fn refresh_cause(scored_by: Option<&str>, scoring: Option<&str>) -> Cause {
    match scoring {
        Some(model) if scored_by != Some(model) => Cause::ModelActivated {
            model: model.to_owned(),
        },
        _ => Cause::TimePassed,
    }
}

/// Does the new score differ from the old one in what the history records
/// (the score, the band or MQL)?
/// Both are `(score, band, mql)`.
pub fn worth_recording(old: Option<(f64, &str, bool)>, new: (f64, &str, bool)) -> bool {
    old != Some(new)
}

/// Event properties in their stored JSON form (`{"path":"/pricing"}`), or
/// `None` when there are none.
pub fn properties_json(props: &BTreeMap<String, String>) -> Option<String> {
    (!props.is_empty()).then(|| serde_json::to_string(props).expect("string map serializes"))
}

/// The stored JSON form back into properties; anything unreadable is no properties.
pub fn properties_from_json(text: Option<&str>) -> BTreeMap<String, String> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// A hash map with a fast hash (foldhash, seeded per map) for the cache,
/// which is looked up for every stored event when it fills.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One stored event in compact form: interned type and properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactEvent {
    kind: u32,
    props: u32,
    at: Timestamp,
    seq: i64,
}

/// Event types and property sets, each stored once.
#[derive(Debug, Default)]
struct Interner {
    kinds: Vec<String>,
    kind_ids: FastMap<String, u32>,
    props: Vec<BTreeMap<String, String>>,
    prop_ids: FastMap<String, u32>,
}

impl Interner {
    fn kind(&mut self, kind: &str) -> u32 {
        if let Some(&id) = self.kind_ids.get(kind) {
            return id;
        }
        self.kinds.push(kind.to_owned());
        let id = (self.kinds.len() - 1) as u32;
        self.kind_ids.insert(kind.to_owned(), id);
        id
    }

    /// `json` is the stored properties text (`None`: no properties, id 0).
    fn props(&mut self, json: Option<&str>) -> u32 {
        if self.props.is_empty() {
            self.props.push(BTreeMap::new());
        }
        let Some(json) = json else { return 0 };
        if let Some(&id) = self.prop_ids.get(json) {
            return id;
        }
        let map = properties_from_json(Some(json));
        if map.is_empty() {
            return 0;
        }
        self.props.push(map);
        let id = (self.props.len() - 1) as u32;
        self.prop_ids.insert(json.to_owned(), id);
        id
    }
}

/// A lead's data and events as the cache holds them.
#[derive(Debug)]
pub struct CachedLead {
    pub version: i64,
    pub lead: Lead,
    events: Vec<CompactEvent>,
    /// The fit outcome, and the model it was evaluated under (it serves any
    /// model whose fit rules test the same: `ScoringModel::same_fit_tests`).
    fit: Option<(Arc<ScoringModel>, FitOutcome)>,
    /// What the adapter last wrote or read of the lead's row (see
    /// [`StoredRow`]), with the cache's generation of the time.
    row: Option<(u64, StoredRow)>,
}

/// What an adapter knows of a lead's stored row beside its data: enough to
/// write its next score without reading the row first. Trusted only at the
/// entry's version, and only while the cache's row generation is the one it
/// was noted in (an adapter starts a new generation when someone else may
/// have written the database: [`LeadCache::forget_rows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The adapter's key of the row (SQLite: its rowid).
    pub key: i64,
    pub version: i64,
    /// The stored score, band and MQL (`None`: unscored); the band's name
    /// is shared (see [`LeadCache::band`]), so that noting a row allocates
    /// nothing.
    pub last: Option<(f64, Arc<str>, bool)>,
    /// The model that scored it and as of when (the score JSON's `model` and
    /// `as_of`).
    pub model: Option<Arc<str>>,
    pub as_of: Option<Timestamp>,
}

/// At most this many events are cached (about 24 bytes each, plus the leads).
pub const MAX_CACHED_EVENTS: usize = 20_000_000;

/// Touched leads, kept for rescoring (see the module docs).
#[derive(Debug, Default)]
pub struct LeadCache {
    /// Keyed by the lead's id, shared: a rescoring names its leads, and the
    /// journal the changed ones, with the key itself, not a copy.
    leads: FastMap<Arc<str>, CachedLead>,
    interner: Interner,
    /// Events held, for the memory bound.
    events: usize,
    /// The generation of the rows' knowledge (see [`StoredRow`]).
    rows: u64,
    /// Band names, shared by the rows that hold them.
    bands: FastMap<Box<str>, Arc<str>>,
    /// Leads whose entries changed since [`LeadCache::begin`] (`None`: not noted).
    journal: Option<Vec<Arc<str>>>,
}

/// One stored event as an adapter reads it back.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    pub kind: &'a str,
    pub properties: Option<&'a str>,
    pub at: Timestamp,
    pub seq: i64,
}

impl LeadCache {
    /// Starts noting which entries change, for [`LeadCache::undo`].
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    fn note(&mut self, id: &str) {
        if let Some(journal) = &mut self.journal {
            journal.push(id.into());
        }
    }

    /// [`LeadCache::note`] of an entry's own key (no copy of the id).
    fn note_key(&mut self, key: &Arc<str>) {
        if let Some(journal) = &mut self.journal {
            journal.push(key.clone());
        }
    }

    /// Forgets the entries changed since [`LeadCache::begin`]: the write that
    /// changed them was undone, and they may hold what it did. The rest of
    /// the cache stays (they reload from the database when next used).
    pub fn undo(&mut self) {
        for id in self.journal.take().unwrap_or_default() {
            self.remove(&id);
        }
    }

    /// The entry for `id` if it is current (its version is `version`).
    pub fn current(&mut self, id: &str, version: i64) -> Option<&mut CachedLead> {
        self.leads.get_mut(id).filter(|c| c.version == version)
    }

    /// Replaces the entry for a lead with data read from the database.
    pub fn load<'a>(&mut self, lead: Lead, version: i64, events: impl IntoIterator<Item = EventRow<'a>>) {
        let events: Vec<CompactEvent> = events.into_iter().map(|e| self.compact(e)).collect();
        self.load_compact(lead, version, events);
    }

    /// [`LeadCache::load`] with events already in compact form (from
    /// [`LeadCache::compact`] of this cache).
    pub fn load_compact(&mut self, lead: Lead, version: i64, events: Vec<CompactEvent>) {
        self.events += events.len();
        let id: Arc<str> = lead.id().into();
        self.note_key(&id);
        let replaced = self.leads.insert(
            id,
            CachedLead {
                version,
                lead,
                events,
                fit: None,
                row: None,
            },
        );
        // A reloaded lead's old events are no longer held.
        self.events -= replaced.map_or(0, |old| old.events.len());
    }

    /// An event in the cache's compact form (its type and properties interned).
    pub fn compact(&mut self, e: EventRow<'_>) -> CompactEvent {
        CompactEvent {
            kind: self.interner.kind(e.kind),
            props: self.interner.props(e.properties),
            at: e.at,
            seq: e.seq,
        }
    }

    /// Adds a newly stored event to a cached lead.
    pub fn push_event(&mut self, id: &str, e: EventRow<'_>) {
        let compact = self.compact(e);
        if let Some(c) = self.leads.get_mut(id) {
            c.events.push(compact);
            self.events += 1;
            self.note(id);
        }
    }

    /// What is known of a cached lead's stored row, if it is trusted: noted
    /// in this generation, at the entry's version.
    pub fn stored_row(&self, id: &str) -> Option<&StoredRow> {
        self.stored_row_keyed(id).map(|(_, row)| row)
    }

    /// [`LeadCache::stored_row`] with the entry's key, which names the lead
    /// without a copy of its id (see [`LeadCache::set_rescored`]).
    pub fn stored_row_keyed(&self, id: &str) -> Option<(&Arc<str>, &StoredRow)> {
        let (key, c) = self.leads.get_key_value(id)?;
        c.row
            .as_ref()
            .filter(|(generation, row)| *generation == self.rows && row.version == c.version)
            .map(|(_, row)| (key, row))
    }

    /// Notes what a cached lead's row now holds (written or read in the
    /// current transaction); the entry moves to the row's version.
    pub fn set_stored_row(&mut self, id: &str, row: StoredRow) {
        if let Some(c) = self.leads.get_mut(id) {
            c.version = row.version;
            c.row = Some((self.rows, row));
            self.note(id);
        }
    }

    /// [`LeadCache::set_stored_row`] and [`LeadCache::keep_fit`] (when the
    /// scoring evaluated the fit) in one lookup, for a lead named by its
    /// key: what a rescoring does for each of its leads.
    pub fn set_rescored(&mut self, key: &Arc<str>, row: StoredRow, fit: Option<(&ActiveModel, FitOutcome)>) {
        let Some(c) = self.leads.get_mut(&**key) else {
            return;
        };
        c.version = row.version;
        c.row = Some((self.rows, row));
        if let Some((model, fit)) = fit {
            c.fit = Some((model.model.clone(), fit));
        }
        self.note_key(key);
    }

    /// The shared copy of a band's name.
    pub fn band(&mut self, name: &str) -> Arc<str> {
        if let Some(b) = self.bands.get(name) {
            return b.clone();
        }
        let b: Arc<str> = name.into();
        self.bands.insert(name.into(), b.clone());
        b
    }

    /// Stops trusting what is known of every row (someone else may have
    /// written them); the entries themselves stay, checked by version.
    pub fn forget_rows(&mut self) {
        self.rows += 1;
    }

    pub fn set_version(&mut self, id: &str, version: i64) {
        if let Some(c) = self.leads.get_mut(id) {
            c.version = version;
            self.note(id);
        }
    }

    /// Replaces a cached lead's data (after an edit); its fit is recomputed.
    pub fn set_lead(&mut self, lead: Lead, version: i64) {
        if self.leads.contains_key(lead.id()) {
            self.note(lead.id());
        }
        if let Some(c) = self.leads.get_mut(lead.id()) {
            c.lead = lead;
            c.version = version;
            c.fit = None;
        }
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(old) = self.leads.remove(id) {
            self.events -= old.events.len();
        }
    }

    /// Forgets everything (after a failed transaction).
    pub fn clear(&mut self) {
        self.leads.clear();
        self.interner = Interner::default();
        self.events = 0;
        if let Some(journal) = &mut self.journal {
            journal.clear();
        }
    }

    /// Keeps memory bounded: past [`MAX_CACHED_EVENTS`] the cache starts
    /// again empty (entries reload from the database as leads are touched).
    /// Call it only between writes, never while a write holds entries.
    pub fn trim(&mut self) {
        if self.events > MAX_CACHED_EVENTS {
            tracing::debug!(events = self.events, "the lead cache is full; it starts again");
            self.clear();
        }
    }

    /// How many leads are held.
    pub fn len(&self) -> usize {
        self.leads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leads.is_empty()
    }

    /// How many events are held.
    pub fn events(&self) -> usize {
        self.events
    }

    pub fn contains(&self, id: &str) -> bool {
        self.leads.contains_key(id)
    }

    /// A cached lead's data.
    pub fn lead(&self, id: &str) -> Option<&Lead> {
        self.leads.get(id).map(|c| &c.lead)
    }

    /// A cached lead's entry: its data, and its scores through
    /// [`LeadCache::score_entry`] without another lookup.
    pub fn entry(&self, id: &str) -> Option<&CachedLead> {
        self.leads.get(id)
    }

    /// Scores a cached lead with `model` as of `now`.
    pub fn score(&mut self, id: &str, model: &ActiveModel, now: Timestamp) -> Option<Score> {
        let (score, fit) = self.score_shared(id, model, now)?;
        if let Some(fit) = fit {
            self.keep_fit(id, model, fit);
        }
        Some(score)
    }

    /// Scores a cached lead without changing the cache, so that many leads
    /// can be scored at once. The lead's fit outcome comes back when it had
    /// to be evaluated, for [`LeadCache::keep_fit`].
    pub fn score_shared(
        &self,
        id: &str,
        model: &ActiveModel,
        now: Timestamp,
    ) -> Option<(Score, Option<FitOutcome>)> {
        let c = self.leads.get(id)?;
        Some(self.score_entry(c, model, now))
    }

    /// [`LeadCache::score_shared`] of an entry already at hand (from
    /// [`LeadCache::entry`]).
    pub fn score_entry(
        &self,
        c: &CachedLead,
        model: &ActiveModel,
        now: Timestamp,
    ) -> (Score, Option<FitOutcome>) {
        match &c.fit {
            Some((by, fit)) if Arc::ptr_eq(by, &model.model) => (self.score_with(c, fit, model, now), None),
            // Evaluated under a model whose fit rules test the same: the
            // same outcome, kept under this model from now on.
            Some((by, fit)) if by.same_fit_tests(&model.model) => {
                (self.score_with(c, fit, model, now), Some(fit.clone()))
            }
            _ => {
                let fit = model.model.evaluate_fit(&c.lead);
                let score = self.score_with(c, &fit, model, now);
                (score, Some(fit))
            }
        }
    }

    /// Remembers a lead's fit outcome under `model` (the fit only changes
    /// with the lead's data, which replaces the entry's memory of it).
    pub fn keep_fit(&mut self, id: &str, model: &ActiveModel, fit: FitOutcome) {
        if let Some(c) = self.leads.get_mut(id) {
            c.fit = Some((model.model.clone(), fit));
        }
    }

    fn score_with(&self, c: &CachedLead, fit: &FitOutcome, model: &ActiveModel, now: Timestamp) -> Score {
        let interner = &self.interner;
        let mut hits = Vec::with_capacity(c.events.len());
        for e in &c.events {
            let kind = &interner.kinds[e.kind as usize];
            if !model.model.cares_about(kind) {
                continue;
            }
            let props = &interner.props[e.props as usize];
            hits.extend(model.model.rules_for_event(kind, props).map(|rule| Hit {
                rule,
                at: e.at,
                seq: e.seq as u64,
            }));
        }
        model.model.score_hits(fit, &mut hits, now)
    }
}

/// Scores a lead from events read straight from the database (no cache).
pub fn score_rows<'a>(
    model: &ActiveModel,
    lead: &Lead,
    events: impl IntoIterator<Item = EventRow<'a>>,
    now: Timestamp,
) -> Score {
    let fit = model.model.evaluate_fit(lead);
    let mut hits = Vec::new();
    for e in events {
        if !model.model.cares_about(e.kind) {
            continue;
        }
        let props = properties_from_json(e.properties);
        hits.extend(model.model.rules_for_event(e.kind, &props).map(|rule| Hit {
            rule,
            at: e.at,
            seq: e.seq as u64,
        }));
    }
    model.model.score_hits(&fit, &mut hits, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(id: &str) -> Lead {
        Lead::new(id)
    }

    fn event(seq: i64) -> EventRow<'static> {
        EventRow {
            kind: "page_viewed",
            properties: None,
            at: Timestamp::from_micros(seq),
            seq,
        }
    }

    #[test]
    fn an_undone_write_forgets_only_the_entries_it_changed() {
        let mut cache = LeadCache::default();
        cache.load(lead("a"), 1, [event(1)]);
        cache.load(lead("b"), 1, [event(2)]);
        cache.load(lead("c"), 1, []);
        cache.begin();
        cache.push_event("a", event(3));
        cache.set_version("c", 2);
        cache.undo();
        assert!(!cache.contains("a"), "a got an event that was undone");
        assert!(!cache.contains("c"), "c got a version that was undone");
        assert!(cache.current("b", 1).is_some(), "b was not touched");
        assert_eq!(cache.events, 1, "only b's event is still held");

        // A write that succeeds keeps its changes; the next one notes afresh.
        cache.begin();
        cache.push_event("b", event(4));
        cache.begin();
        cache.undo();
        assert_eq!(cache.current("b", 1).map(|c| c.events.len()), Some(2));
    }

    #[test]
    fn a_compact_stored_score_reads_back_as_the_served_one() {
        // Rules with and without labels (the label then comes from the id),
        // fit and behavior entries, an escaped character in a label.
        let toml = r#"
            name = "m \"q\""
            [[band]]
            name = "cold"
            from = 0
            [[band]]
            name = "hot"
            from = 10
            [[fit]]
            id = "decision_maker"
            label = "C-level \"or\" director"
            field = "job_title"
            matches = "(?i)ceo"
            points = 10
            [[fit]]
            id = "no_phone"
            field = "phone"
            is = "valid_phone"
            negate = true
            points = -3
            [[behavior]]
            id = "email_click"
            events = ["email_clicked"]
            points = 5.5
            half_life_days = 30
        "#;
        let model = ActiveModel::parse("m \"q\"", toml).unwrap();
        let mut lead = Lead::new("L1");
        lead.set(leadscore_core::StdField::JobTitle, "CEO");
        let mut cache = LeadCache::default();
        let at = Timestamp::parse("2026-10-01T10:00:00Z").unwrap();
        let click = EventRow {
            kind: "email_clicked",
            properties: None,
            at,
            seq: 1,
        };
        cache.load(lead, 1, [click, EventRow { seq: 2, ..click }]);
        for now in [
            "2026-11-01T00:00:00Z",
            "2026-11-01T00:00:00.5Z",
            "2026-09-01T00:00:00Z",
        ] {
            let now = Timestamp::parse(now).unwrap();
            let score = cache.score("L1", &model, now).unwrap();
            // The served JSON (the PostgreSQL adapter's, and SQLite rows of
            // earlier versions) and the compact form read back the same.
            let expected = serde_json::to_string(&stored_score(&model, &score, now)).unwrap();
            let compact = compact_score_json(&model, &score, &now.to_string());
            assert!(
                !compact.contains("C-level") && compact.len() < expected.len(),
                "{compact}"
            );
            let found = |name: &str| (name == "m \"q\"").then(|| model.clone());
            let served = stored_score(&model, &score, now);
            assert_eq!(read_stored(&compact, found), Ok(served.clone()));
            assert_eq!(read_stored(&expected, |_| None), Ok(served));
            assert!(read_stored(&compact, |_| None).unwrap_err().contains("no model"));
            // A part naming a rule the model does not have is an error, not a panic.
            let beyond = compact.replace("[0,0,", "[0,9,");
            assert_ne!(beyond, compact);
            let e = read_stored(&beyond, |_| Some(model.clone())).unwrap_err();
            assert!(e.contains("no fit rule 9"), "{e}");
        }
        let score = cache
            .score("L1", &model, Timestamp::parse("2026-11-01T00:00:00Z").unwrap())
            .unwrap();
        assert_eq!(
            score.breakdown.len(),
            3,
            "fit, fit and behavior entries are compared"
        );
    }

    #[test]
    fn reloading_a_lead_does_not_count_its_events_twice() {
        let mut cache = LeadCache::default();
        cache.load(lead("a"), 1, [event(1), event(2)]);
        cache.load(lead("a"), 2, [event(1), event(2), event(3)]);
        assert_eq!(cache.events, 3);
        cache.remove("a");
        assert_eq!(cache.events, 0);
    }
}
