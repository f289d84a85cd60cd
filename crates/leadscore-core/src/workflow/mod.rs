//! The rep's qualification work beside the score: the first evaluation of a
//! new lead and its proposed rating, the rep's rating, the qualification
//! framework (BANT by default), the care status with its follow-ups.
//!
//! Like the rest of the core this does no IO: callers pass the lead, the
//! model, the moment and who acts; they get back the new state, the follow-up
//! tasks to create and the log lines to keep. The score is never changed by
//! any of it: qualification is shown beside the score, not mixed into it.

pub mod qualification;
pub mod rating;
pub mod status;

use serde::{Deserialize, Serialize};

pub use qualification::{Answer, Framework, QualificationState, QualificationStatus};
pub use rating::{Evaluation, Proposal, Rating, RatingPolicy, Signals};
pub use status::{FollowUp, Status, StatusChange, StatusState, TransitionError};

/// Everything a rep has recorded on one lead, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// The rep's rating, or `None` while nobody has rated the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<RatingSet>,
    #[serde(default)]
    pub status: StatusState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualification: Option<QualificationState>,
    /// The evaluation made when the lead arrived (created or imported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_evaluation: Option<Evaluation>,
}

/// A rating set by hand: by whom, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingSet {
    pub rating: Rating,
    pub by: String,
    /// RFC 3339.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A calendar date or a moment, as a person types it: `2027-03-01` (midnight
/// UTC) or RFC 3339.
pub fn parse_day_or_time(s: &str) -> Option<crate::Timestamp> {
    let s = s.trim();
    if s.len() == 10 {
        return crate::Timestamp::parse(&format!("{s}T00:00:00Z")).ok();
    }
    crate::Timestamp::parse(s).ok()
}
