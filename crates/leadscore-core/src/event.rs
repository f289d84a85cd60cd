//! Events: what a lead did (the implicit data), including activities reps log.

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// Something a lead did. Events with the same `id` are the same event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    /// The lead's id.
    pub lead: String,
    /// The event type, e.g. `email_clicked`.
    pub kind: String,
    pub occurred_at: Timestamp,
    /// Properties as strings (numbers and booleans in their JSON spelling).
    pub properties: BTreeMap<String, String>,
}
