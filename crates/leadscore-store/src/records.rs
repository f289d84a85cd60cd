//! What the store keeps and hands back: leads with their current score,
//! history entries, models, tokens. Plain data; the adapters convert their
//! rows into these.

use leadscore_core::{Lead, Timestamp};
use serde::{Deserialize, Serialize};

/// A lead as stored: its explicit data, owner, bookkeeping and current score.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRecord {
    pub lead: Lead,
    pub owner: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped on every change of the lead or its events.
    pub version: i64,
    /// `None` until a model is active.
    pub score: Option<StoredScore>,
}

impl LeadRecord {
    pub fn id(&self) -> &str {
        self.lead.id()
    }
}

/// A score as stored and served: the engine's numbers plus which model gave
/// them and as of when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredScore {
    pub score: f64,
    pub fit: f64,
    pub engagement: f64,
    pub band: String,
    pub grade: String,
    pub mql: bool,
    pub breakdown: Vec<BreakdownEntry>,
    pub model: String,
    pub as_of: String,
}

/// One line of a score's explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakdownEntry {
    pub rule: String,
    pub kind: String,
    pub label: String,
    pub points: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub events: Option<u32>,
}

/// A new lead (or, with upsert, the values to merge into an existing one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewLead {
    /// Standard fields and attributes; the id may be blank (the store makes one).
    pub lead: Lead,
    pub owner: Option<String>,
}

/// What to do when a new lead's id or e-mail already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Refuse it, naming the existing lead.
    Refuse,
    /// Merge the given values into the existing lead.
    Update,
}

/// The outcome of writing one lead.
#[derive(Debug, Clone, PartialEq)]
pub enum LeadWrite {
    Created(String),
    Updated(String),
    /// Refused: a lead with this id or e-mail exists.
    Conflict {
        existing: String,
        by: ConflictKey,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKey {
    Id,
    Email,
}

impl ConflictKey {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConflictKey::Id => "id",
            ConflictKey::Email => "email",
        }
    }
}

/// A change to a lead: `Some(None)` clears a field, `None` leaves it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadPatch {
    pub fields: Vec<(leadscore_core::StdField, Option<String>)>,
    pub attributes: Vec<(String, Option<String>)>,
    pub owner: Option<Option<String>>,
}

/// What happened to one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestStatus {
    Accepted,
    Duplicate,
    Rejected(String),
}

/// One change of a lead's score, band or MQL, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub at: String,
    pub score: f64,
    pub band: String,
    pub mql: bool,
    pub model: String,
    pub cause: Cause,
}

/// Why a lead's score changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// Events arrived (their ids).
    Events { events: Vec<String> },
    /// A model was activated.
    ModelActivated { model: String },
    /// The lead was created.
    Created,
    /// The lead's data was edited.
    LeadEdited,
    /// Time passed (decay and windows).
    TimePassed,
}

/// Filters, order and page for listing leads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadQuery {
    pub band: Option<String>,
    pub grade: Option<String>,
    pub mql: Option<bool>,
    pub owner: Option<String>,
    /// The rep's rating (`rating` column of the workflow).
    pub rating: Option<String>,
    /// The care status (`new` also matches leads nobody has worked on).
    pub status: Option<String>,
    /// Only leads whose (rating, band, MQL) is one of these: the rep's
    /// rating and the score disagree (see `RatingPolicy::disagreeing_pairs`).
    pub flagged: Option<Vec<(String, String, bool)>>,
    /// Case-insensitive substring of name, company or e-mail.
    pub text: Option<String>,
    pub order: LeadOrder,
    pub limit: usize,
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeadOrder {
    /// Best score first (unscored last), ties by id.
    #[default]
    Score,
    /// Newest first, ties by id.
    Created,
}

/// Where a page ends: the sort key of its last lead.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    Score { score: Option<f64>, id: String },
    Created { at: i64, id: String },
}

impl Cursor {
    pub fn after(order: LeadOrder, last: &LeadRecord) -> Cursor {
        match order {
            LeadOrder::Score => Cursor::Score {
                score: last.score.as_ref().map(|s| s.score),
                id: last.id().to_owned(),
            },
            LeadOrder::Created => Cursor::Created {
                at: last.created_at.as_micros(),
                id: last.id().to_owned(),
            },
        }
    }

    /// An opaque text form for URLs.
    pub fn encode(&self) -> String {
        let raw = match self {
            Cursor::Score { score: Some(s), id } => format!("s:{s}:{id}"),
            Cursor::Score { score: None, id } => format!("s::{id}"),
            Cursor::Created { at, id } => format!("c:{at}:{id}"),
        };
        hex::encode(raw.as_bytes())
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(hex::decode(text).ok()?).ok()?;
        let (kind, rest) = raw.split_once(':')?;
        let (key, id) = rest.split_once(':')?;
        let id = id.to_owned();
        match kind {
            "s" if key.is_empty() => Some(Cursor::Score { score: None, id }),
            "s" => Some(Cursor::Score {
                score: Some(key.parse().ok()?),
                id,
            }),
            "c" => Some(Cursor::Created {
                at: key.parse().ok()?,
                id,
            }),
            _ => None,
        }
    }
}

/// A stored scoring model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRecord {
    pub name: String,
    #[serde(skip)]
    pub toml: String,
    pub created_at: String,
    pub active: bool,
    pub activated_at: Option<String>,
    pub rescore: Option<RescoreProgress>,
}

/// How far the rescoring after an activation has come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescoreProgress {
    pub done: u64,
    pub total: u64,
    pub finished: bool,
}

/// What storing a model did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutModel {
    Created,
    /// The same name with the same text was already stored.
    Unchanged,
    /// The name is taken by a different model.
    NameTaken,
}

/// An API token as stored: only the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: String,
    pub role: String,
    pub user: Option<String>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor::Score {
                score: Some(45.75),
                id: "L:1".into(),
            },
            Cursor::Score {
                score: None,
                id: "x".into(),
            },
            Cursor::Created {
                at: -5,
                id: "VN-1".into(),
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(Cursor::decode("zz"), None);
        assert_eq!(Cursor::decode("abc"), None);
    }
}
